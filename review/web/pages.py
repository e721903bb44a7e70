"""The HTML pages: the queue, a candidate, its raw and sanitised archived copies, the overview,
the export download, and the login form.

Every page works without JavaScript (plain links and forms); static/app.js adds keyboard
triage on top. Store access goes through ``store.queue`` with the request's session.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from review.charts import weekly_bars_svg, weekly_lines_svg
from review.highlight import highlight_text
from review.sanitize import ARCHIVE_CSP, sanitize_archived_html
from review.web.downloads import archived_response, export_response, raw_response
from review.web.errors import WebError
from review.web.filters import CHANNELS, PAGE_SIZE, STATUSES, QueueFilter, parse_date, parse_filter
from review.web.security import CSRF_FIELD
from review.web.sessions import SessionData, session_cookie
from store import CandidateDetail, queue
from store.records import Overview, WeekCount

__all__ = [
    "DB", "REVIEWER_COOKIE", "candidate_or_404", "check_decision", "db_session", "render",
    "reviewer_name", "router", "today",
]

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
REVIEWER_COOKIE = "dwatch_reviewer"
DECISION_LABELS = {"accept": "Accept", "reject": "Reject", "duplicate": "Duplicate",
                   "translate": "Needs translation"}
DECISION_KEYS = {"accept": "a", "reject": "r", "duplicate": "d", "translate": "t"}


def today() -> date:
    return datetime.now(UTC).date()


def db_session(request: Request) -> Iterator[Session]:
    """One store session per request."""
    with request.app.state.session_factory() as session:
        yield session


DB = Annotated[Session, Depends(db_session)]


def render(
    request: Request, template: str, context: Mapping[str, Any], *,
    status_code: int = 200, headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    state: Any = request.state
    session: SessionData | None = getattr(state, "session", None)
    values = {
        "request": request,
        "csrf_token": session.csrf if session else "",
        "csrf_field": CSRF_FIELD,
        "identity": getattr(state, "identity", None),
        "auth_enabled": request.app.state.auth is not None,
        "reviewer": reviewer_name(request),
        "decision_labels": DECISION_LABELS,
        "decision_keys": DECISION_KEYS,
        **context,
    }
    html = request.app.state.templates.get_template(template).render(values)
    return HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))


def reviewer_name(request: Request) -> str:
    """Who is deciding: the logged-in user, else the name this browser last decided as."""
    identity = getattr(request.state, "identity", None)
    if identity and identity != "token":
        return str(identity)
    return unquote(request.cookies.get(REVIEWER_COOKIE, ""))[:200]


def remember_reviewer(response: Response, name: str | None) -> None:
    if name:
        response.set_cookie(REVIEWER_COOKIE, quote(name[:200], safe=""), max_age=365 * 86400,
                            httponly=True, samesite="strict")


# ---------------------------------------------------------------- the queue


@router.get("/", response_class=HTMLResponse)
def queue_page(request: Request, session: DB) -> HTMLResponse:
    filt = parse_filter(request.query_params, today=today())
    query = filt.query()
    rows = queue.list_candidates(session, query)
    total = queue.count_candidates(session, query)
    pages = max(1, -(-total // PAGE_SIZE))
    return render(request, "queue.html", {
        "filter": filt,
        "rows": rows,
        "first_index": query.offset,
        "total": total,
        "pages": pages,
        "counts": queue.candidate_counts(session, query),
        "facets": queue.queue_facets(session),
        "statuses": STATUSES,
        "channels": CHANNELS,
        "today": today(),
    })


# ---------------------------------------------------------------- one candidate


@dataclass(frozen=True)
class Neighbours:
    """Where a candidate sits in the filtered queue, and the candidates before and after it."""

    position: int | None          # 0-based index in the filter, None when not in it (any more)
    total: int
    prev_id: int | None = None
    next_id: int | None = None
    prev_index: int | None = None
    next_index: int | None = None


def neighbours(session: Session, filt: QueueFilter, candidate_id: int, index: int | None) -> Neighbours:
    """The previous and next candidate of ``candidate_id`` in ``filt`` (``index``: where the
    link said it was; a decided candidate may have left the filter, then its old place counts)."""
    total = queue.count_candidates(session, filt.query(limit=None, offset=0))
    if index is not None and index >= 0:
        start = max(index - 1, 0)
        window = [r.id for r in queue.list_candidates(session, filt.query(limit=3, offset=start))]
        if candidate_id in window:
            at = start + window.index(candidate_id)
            return _around(session, filt, at, total, at)
        # it left the filter (decided): the one now at its index comes next
        return _around(session, filt, index, total, None)
    ids = [r.id for r in queue.list_candidates(session, filt.query(limit=None, offset=0))]
    if candidate_id in ids:
        at = ids.index(candidate_id)
        return _around(session, filt, at, total, at)
    return Neighbours(None, total)


def _around(session: Session, filt: QueueFilter, at: int, total: int, position: int | None) -> Neighbours:
    before = at - 1
    after = at + 1 if position is not None else at
    prev_rows = queue.list_candidates(session, filt.query(limit=1, offset=before)) if before >= 0 else []
    next_rows = queue.list_candidates(session, filt.query(limit=1, offset=after)) if after < total else []
    return Neighbours(
        position=position, total=total,
        prev_id=prev_rows[0].id if prev_rows else None,
        next_id=next_rows[0].id if next_rows else None,
        prev_index=before if prev_rows else None,
        next_index=after if next_rows else None,
    )


def _index(request: Request) -> int | None:
    raw = request.query_params.get("i", "")
    return int(raw) if raw.isdigit() else None


def candidate_or_404(session: Session, candidate_id: int) -> CandidateDetail:
    detail = queue.get_candidate(session, candidate_id)
    if detail is None:
        raise WebError(404, f"there is no candidate {candidate_id}; go back to the queue to find one")
    return detail


@router.get("/candidates/{candidate_id}", response_class=HTMLResponse)
def candidate_page(request: Request, candidate_id: int, session: DB) -> HTMLResponse:
    detail = candidate_or_404(session, candidate_id)
    filt = parse_filter(request.query_params, today=today())
    nav = neighbours(session, filt, candidate_id, _index(request))
    verdict = detail.verdict or {}
    highlighted = highlight_text(detail.title, detail.text or "", verdict.get("matches") or [])
    terms = list(dict.fromkeys(str(m.get("text") or m.get("term")) for m in verdict.get("matches") or []))
    back = filt.params() + ([("i", str(nav.position))] if nav.position is not None else [])
    return render(request, "candidate.html", {
        "c": detail,
        "verdict": verdict,
        "highlighted": highlighted,
        "terms": terms,
        "filter": filt,
        "nav": nav,
        "back": urlencode(back),
        "decided": request.query_params.get("decided"),
    })


@router.post("/candidates/{candidate_id}/decision")
def decide_form(
    request: Request,
    candidate_id: int,
    session: DB,
    decision: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
    by: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> Response:
    """The no-JavaScript decision form: record, then back to the candidate page (303)."""
    key = check_decision(decision)
    candidate_or_404(session, candidate_id)
    reviewer = by.strip() or reviewer_name(request) or None
    row = queue.record_decision(session, candidate_id, key, note=note.strip() or None, by=reviewer)
    logger.info("candidate %s: decision %s by %s", candidate_id, row.decision, row.decided_by)
    params = [(k, v) for k, v in parse_qsl(back, keep_blank_values=True) if k != "decided"]
    target = f"/candidates/{candidate_id}?" + urlencode([*params, ("decided", key)])
    response = RedirectResponse(target, status_code=303)
    remember_reviewer(response, reviewer)
    return response


def check_decision(decision: str) -> str:
    key = decision.strip().lower()
    if key not in queue.DECISIONS:
        raise WebError(422, f"unknown decision {decision!r}; use one of: {', '.join(queue.DECISIONS)}")
    return key


@router.get("/candidates/{candidate_id}/raw")
def raw_copy(request: Request, candidate_id: int, session: DB) -> Response:
    detail = candidate_or_404(session, candidate_id)
    return raw_response(request.app.state.settings, detail)


@router.get("/candidates/{candidate_id}/archived", response_class=HTMLResponse)
def archived_copy(request: Request, candidate_id: int, session: DB) -> HTMLResponse:
    detail = candidate_or_404(session, candidate_id)
    archived = archived_response(request.app.state.settings, detail)
    body = sanitize_archived_html(
        archived.body, content_type=archived.header("content-type"), base_url=archived.url
    )
    # The one place crawled markup reaches a page: nh3-sanitised, served under ARCHIVE_CSP
    # (sandboxed, nothing loads) and framed by the candidate page in <iframe sandbox>.
    page = Markup(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Archived copy of candidate "
        "{id} (sanitised)</title></head><body>{body}</body></html>"
    ).format(id=candidate_id, body=Markup(body))
    return HTMLResponse(str(page), headers={
        "Content-Security-Policy": ARCHIVE_CSP, "X-Frame-Options": "SAMEORIGIN",
    })


# ---------------------------------------------------------------- overview and export


def week_series(weeks: tuple[date, ...], counts: tuple[WeekCount, ...], field: str = "candidates",
                ) -> dict[str, list[int]]:
    """One list per key, aligned with ``weeks`` (zeros where a key has no row)."""
    position = {week: i for i, week in enumerate(weeks)}
    series: dict[str, list[int]] = {}
    for row in counts:
        values = series.setdefault(row.key, [0] * len(weeks))
        if row.week in position:
            values[position[row.week]] = int(getattr(row, field))
    return series


def overview_charts(ov: Overview) -> dict[str, Markup]:
    totals = week_series(ov.weeks, ov.totals)
    accepted = week_series(ov.weeks, ov.totals, "accepted")
    lines = {"candidates": totals.get("all", [0] * len(ov.weeks)),
             "accepted": accepted.get("all", [0] * len(ov.weeks))}
    return {
        "weekly": weekly_lines_svg(ov.weeks, lines, title="Candidates and accepted stories per week"),
        "language": weekly_bars_svg(ov.weeks, week_series(ov.weeks, ov.by_language),
                                    title="Candidates per week by language"),
        # lines, not stacked bars: a story can carry several narratives, so they do not add up
        "narrative": weekly_lines_svg(ov.weeks, week_series(ov.weeks, ov.by_narrative),
                                      title="Candidates per week by narrative"),
    }


@router.get("/overview", response_class=HTMLResponse)
def overview_page(request: Request, session: DB) -> HTMLResponse:
    since = parse_date("since", request.query_params.get("since"))
    until = parse_date("until", request.query_params.get("until"))
    if since and until and since > until:
        raise WebError(422, f"since {since.isoformat()} is after until {until.isoformat()}: "
                       "the date range is empty")
    ov = queue.weekly_overview(session, since=since, until=until)
    return render(request, "overview.html", {
        "ov": ov, "since": since, "until": until, "charts": overview_charts(ov),
        "languages": week_series(ov.weeks, ov.by_language),
        "languages_accepted": week_series(ov.weeks, ov.by_language, "accepted"),
        "narratives": week_series(ov.weeks, ov.by_narrative),
        "narratives_accepted": week_series(ov.weeks, ov.by_narrative, "accepted"),
    })


@router.get("/export")
def export_page(request: Request) -> Response:
    return export_response(request, today())


# ---------------------------------------------------------------- login


def _safe_next(target: str) -> str:
    """Only a path on this site (never //host or a scheme): no open redirect."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return render(request, "login.html", {"next": _safe_next(request.query_params.get("next", "/")),
                                          "error": None})


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    token: Annotated[str, Form()] = "",
    user: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    auth = request.app.state.auth
    if auth is None:
        return RedirectResponse(_safe_next(next), status_code=303)
    identity: str | None = None
    if token and auth.check_token(token):
        identity = "token"
    elif user and auth.check_password(user, password):
        identity = user
    if identity is None:
        logger.warning("failed login from %s", request.client.host if request.client else "?")
        return render(request, "login.html", {
            "next": _safe_next(next), "error": "That token, or that user and password, is not right.",
        }, status_code=401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    # a new session (and CSRF token) at login: a session fixed before login is worth nothing
    response.headers.append("set-cookie", session_cookie(
        SessionData.new(identity), request.state.cookie_key, secure=request.url.scheme == "https"))
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    response = RedirectResponse("/login" if request.app.state.auth else "/", status_code=303)
    response.headers.append("set-cookie", session_cookie(
        SessionData.new(), request.state.cookie_key, secure=request.url.scheme == "https"))
    return response
