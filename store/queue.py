"""The review queue API: every query the crawler, the CLI and the web UI run on the store.

Functions take a ``Session`` (from ``store.make_session_factory``). Functions that write
(``start_run``, ``finish_run``, ``record_page``, ``record_decision``, ``update_analysis``)
commit their own transaction and roll it back on error; the others only read.
The write side of crawling (``record_page``, ``update_analysis``, ``known_urls``) lives in
``store/ingest.py`` and the crawl-run records in ``store/runs.py``; both are re-exported here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from store.errors import DecisionError, StoreError
from store.ingest import known_urls, record_page, update_analysis
from store.models import (
    CANDIDATE_STATUSES,
    Candidate,
    CandidateNarrative,
    Decision,
    Document,
    utcnow,
)
from store.overview import weekly_overview
from store.query import apply_filters, apply_order, apply_page, make_query
from store.records import (
    ArchiveRef,
    CandidateDetail,
    CandidateRow,
    DecisionRow,
    DocumentSummary,
    Provenance,
    QueueFacets,
    QueueQuery,
    RescoreItem,
)
from store.runs import finish_run, latest_runs, run_stats, start_run

__all__ = [
    "DECISIONS",
    "candidate_counts",
    "count_candidates",
    "finish_run",
    "get_candidate",
    "iter_documents_for_rescore",
    "iter_export",
    "known_urls",
    "latest_runs",
    "list_candidates",
    "queue_facets",
    "record_decision",
    "record_page",
    "run_stats",
    "start_run",
    "update_analysis",
    "weekly_overview",
]

logger = logging.getLogger(__name__)

# decision -> the candidate status it sets
DECISIONS = {
    "accept": "accepted",
    "reject": "rejected",
    "duplicate": "duplicate",
    "translate": "needs_translation",
}
_BATCH = 500


# ---------------------------------------------------------------- the queue


def list_candidates(
    session: Session, query: QueueQuery | None = None, **legacy: Any
) -> list[CandidateRow]:
    """Queued candidates matching ``query`` (see QueueQuery), newest first by default.

    The date order is by publication date, falling back to the time it was queued when the
    page has no date (so an undated find is not buried below years-old ones), then queued
    time, then id. The older keyword arguments (status, since, lang, limit) still work.
    """
    query = make_query(query, **legacy)
    members = aliased(Candidate)
    story_size = (
        select(func.count(members.id))
        .where(members.story_id == Candidate.story_id)
        .correlate(Candidate)
        .scalar_subquery()
    )
    copies = aliased(Document)
    duplicate_count = (
        select(func.count(copies.id))
        .where(copies.duplicate_of_document_id == Candidate.document_id)
        .correlate(Candidate)
        .scalar_subquery()
    )
    stmt = select(Candidate, Document.final_url, Document.canonical_url, story_size,
                  duplicate_count).join(Document, Document.id == Candidate.document_id)
    stmt = apply_page(apply_order(apply_filters(stmt, query), query), query)
    rows = session.execute(stmt).all()
    tags = _narratives_of(session, [row[0].id for row in rows])
    return [
        CandidateRow(
            id=c.id,
            document_id=c.document_id,
            status=c.status,
            score=c.score,
            lang=c.lang,
            title=c.title,
            url=final_url,
            canonical_url=canonical_url,
            source_id=c.source_id,
            published=c.published,
            queued_at=c.queued_at,
            story_id=c.story_id,
            story_size=int(size) if c.story_id is not None else 1,
            duplicate_count=int(dups),
            narratives=tags.get(c.id, ()),
            channel=c.channel,
        )
        for c, final_url, canonical_url, size, dups in rows
    ]


def _narratives_of(session: Session, candidate_ids: list[int]) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = {}
    for start in range(0, len(candidate_ids), _BATCH):
        chunk = candidate_ids[start : start + _BATCH]
        for candidate_id, tag in session.execute(
            select(CandidateNarrative.candidate_id, CandidateNarrative.narrative)
            .where(CandidateNarrative.candidate_id.in_(chunk))
            .order_by(CandidateNarrative.candidate_id, CandidateNarrative.narrative)
        ):
            found.setdefault(candidate_id, []).append(tag)
    return {key: tuple(value) for key, value in found.items()}


def count_candidates(session: Session, query: QueueQuery | None = None, **legacy: Any) -> int:
    """How many candidates match ``query`` (its limit and offset ignored)."""
    query = make_query(query, **legacy)
    stmt = apply_filters(select(func.count(Candidate.id)), query)
    return int(session.execute(stmt).scalar_one())


def candidate_counts(session: Session, query: QueueQuery | None = None) -> dict[str, int]:
    """How many candidates are in each status (every status present, zero included).

    With ``query``, among the candidates matching its other filters (its status is ignored,
    so the counts can label a status filter).
    """
    counts = dict.fromkeys(CANDIDATE_STATUSES, 0)
    stmt = select(Candidate.status, func.count(Candidate.id)).group_by(Candidate.status)
    if query is not None:
        stmt = apply_filters(stmt, make_query(query), ignore_status=True)
    for status, count in session.execute(stmt):
        counts[status] = int(count)
    return counts


def queue_facets(session: Session) -> QueueFacets:
    """The languages, sources, channels and narratives present in the queue, sorted."""

    def distinct(column: Any) -> tuple[str, ...]:
        values = session.scalars(select(column).where(column.is_not(None)).distinct())
        return tuple(sorted(str(v) for v in values))

    return QueueFacets(
        languages=distinct(Candidate.lang),
        sources=distinct(Candidate.source_id),
        channels=distinct(Candidate.channel),
        narratives=distinct(CandidateNarrative.narrative),
    )


def get_candidate(session: Session, candidate_id: int) -> CandidateDetail | None:
    """Everything about one candidate, or None when there is no such candidate."""
    candidate = session.get(Candidate, candidate_id)
    if candidate is None:
        return None
    document = session.get_one(Document, candidate.document_id)
    decisions = session.scalars(
        select(Decision).where(Decision.candidate_id == candidate_id).order_by(Decision.id)
    )
    copies = session.scalars(
        select(Document)
        .where(Document.duplicate_of_document_id == document.id)
        .order_by(func.coalesce(Document.published, Document.fetched_at), Document.id)
    )
    story: tuple[DocumentSummary, ...] = ()
    if candidate.story_id is not None:
        members = session.execute(
            select(Document, Candidate)
            .join(Candidate, Candidate.document_id == Document.id)
            .where(Candidate.story_id == candidate.story_id)
            .order_by(func.coalesce(Document.published, Document.fetched_at), Document.id)
        )
        story = tuple(_summary(doc, member) for doc, member in members)
    return CandidateDetail(
        id=candidate.id,
        document_id=document.id,
        status=candidate.status,
        score=candidate.score,
        lang=candidate.lang,
        title=candidate.title,
        url=document.final_url,
        canonical_url=document.canonical_url,
        source_id=document.source_id,
        author=document.author,
        sitename=document.sitename,
        published=candidate.published,
        queued_at=candidate.queued_at,
        fetched_at=document.fetched_at,
        text=document.text,
        verdict=document.verdict,
        provenance=_provenance(document).to_dict(),
        decisions=tuple(_decision_row(d) for d in decisions),
        duplicates=tuple(_summary(doc, None) for doc in copies),
        story_id=candidate.story_id,
        story=story,
    )


def record_decision(
    session: Session,
    candidate_id: int,
    decision: str,
    *,
    note: str | None = None,
    by: str | None = None,
) -> DecisionRow:
    """Append a researcher's decision (see DECISIONS) and set the candidate's status.

    Earlier decisions are kept: the history is append-only.
    """
    key = decision.strip().lower() if isinstance(decision, str) else decision
    if key not in DECISIONS:
        raise DecisionError(
            f"invalid decision {decision!r} for candidate {candidate_id}; "
            f"use one of: {', '.join(DECISIONS)}"
        )
    candidate = session.scalars(
        select(Candidate).where(Candidate.id == candidate_id).with_for_update()
    ).first()
    if candidate is None:
        session.rollback()
        raise DecisionError(
            f"no candidate with id {candidate_id}; list the queue to find its id"
        )
    row = Decision(
        candidate_id=candidate_id,
        decision=key,
        status=DECISIONS[key],
        note=note,
        decided_by=by,
        decided_at=utcnow(),
    )
    candidate.status = DECISIONS[key]
    session.add(row)
    try:
        session.flush()
        result = _decision_row(row)
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        raise StoreError(f"could not record the decision on candidate {candidate_id}: {exc}") from exc
    except BaseException:
        session.rollback()
        raise
    return result


# ---------------------------------------------------------------- export and rescore


def iter_export(
    session: Session,
    query: QueueQuery | None = None,
    *,
    include_text: bool = False,
    **legacy: Any,
) -> Iterator[dict[str, Any]]:
    """Candidates as flat dicts (for CSV, JSON lines, citations), in queue order, with provenance.

    Every candidate matching ``query`` (no limit unless the query sets one; the older keyword
    arguments status, since, lang still work). Dates are ISO 8601 strings; the latest decision
    (if any) is included; ``include_text`` adds the extracted text.
    """
    query = make_query(query if query is not None else QueueQuery(limit=None), **legacy)
    latest = (
        select(Decision.candidate_id, func.max(Decision.id).label("decision_id"))
        .group_by(Decision.candidate_id)
        .subquery()
    )
    stmt = (
        select(Candidate, Document, Decision)
        .join(Document, Document.id == Candidate.document_id)
        .outerjoin(latest, latest.c.candidate_id == Candidate.id)
        .outerjoin(Decision, Decision.id == latest.c.decision_id)
    )
    stmt = apply_page(apply_order(apply_filters(stmt, query), query), query)
    for candidate, document, decision in session.execute(
        stmt.execution_options(yield_per=_BATCH)
    ):
        yield _export_row(candidate, document, decision, include_text)


def _export_row(
    candidate: Candidate, document: Document, decision: Decision | None, include_text: bool
) -> dict[str, Any]:
    verdict = document.verdict or {}
    terms = dict.fromkeys(str(m.get("term")) for m in verdict.get("matches", []))
    row: dict[str, Any] = {
        "candidate_id": candidate.id,
        "document_id": document.id,
        "status": candidate.status,
        "score": candidate.score,
        "lang": candidate.lang,
        "title": candidate.title,
        "url": document.final_url,
        "published": _iso(candidate.published),
        "queued_at": _iso(candidate.queued_at),
        "story_id": candidate.story_id,
        "author": document.author,
        "sitename": document.sitename,
        "matched_terms": "; ".join(terms),
        "narratives": "; ".join(str(n) for n in verdict.get("narratives", [])),
        "explanation": verdict.get("explanation"),
        "decision": decision.decision if decision else None,
        "decision_note": decision.note if decision else None,
        "decided_by": decision.decided_by if decision else None,
        "decided_at": _iso(decision.decided_at) if decision else None,
    }
    for key, value in _provenance(document).to_dict().items():
        if key == "archive":
            for part in ("path", "offset", "length", "record_id"):
                row[f"archive_{part}"] = value[part] if value else None
        else:
            row[key] = value
    if include_text:
        row["text"] = document.text
    return row


def iter_documents_for_rescore(
    session: Session, *, batch_size: int = _BATCH
) -> Iterator[RescoreItem]:
    """Every stored document with an archived response, in id order.

    Reads in batches of ``batch_size`` by id, so the caller may call ``update_analysis``
    (which commits) between items.
    """
    last_id = 0
    while True:
        rows = session.execute(
            select(Document, Candidate.id, Candidate.status)
            .outerjoin(Candidate, Candidate.document_id == Document.id)
            .where(Document.archive_path.is_not(None), Document.id > last_id)
            .order_by(Document.id)
            .limit(batch_size)
        ).all()
        if not rows:
            return
        items = []  # built before yielding: the caller's commits expire the loaded rows
        for document, candidate_id, candidate_status in rows:
            provenance = _provenance(document)
            assert provenance.archive is not None  # the query selects archived documents
            items.append(
                RescoreItem(
                    document_id=document.id,
                    provenance=provenance,
                    archive=provenance.archive,
                    candidate_id=candidate_id,
                    candidate_status=candidate_status,
                    flagged=bool(document.flagged),
                    score=document.score,
                )
            )
        yield from items
        last_id = items[-1].document_id


# ---------------------------------------------------------------- row -> record


def _provenance(document: Document) -> Provenance:
    archive = None
    if document.archive_path is not None:
        archive = ArchiveRef(
            path=document.archive_path,
            offset=int(document.archive_offset or 0),
            length=int(document.archive_length or 0),
            record_id=document.archive_record_id or "",
        )
    return Provenance(
        source_id=document.source_id,
        channel=document.channel,  # type: ignore[arg-type]  # stored from a Channel
        discovered_from=document.discovered_from,
        entry_id=document.entry_id,
        entry_title=document.entry_title,
        entry_published=document.entry_published,
        requested_url=document.requested_url,
        final_url=document.final_url,
        canonical_url=document.canonical_url,
        http_status=document.http_status,
        fetched_at=document.fetched_at,
        body_sha256=document.body_sha256,
        archive=archive,
        extractor=document.extractor,
        extractor_version=document.extractor_version,
        rules_version=document.rules_version,
        run_id=document.run_id,
        method=document.method,
    )


def _summary(document: Document, candidate: Candidate | None) -> DocumentSummary:
    return DocumentSummary(
        document_id=document.id,
        url=document.final_url,
        title=document.title,
        source_id=document.source_id,
        published=document.published,
        fetched_at=document.fetched_at,
        candidate_id=candidate.id if candidate else None,
        status=candidate.status if candidate else None,
    )


def _decision_row(decision: Decision) -> DecisionRow:
    return DecisionRow(
        id=decision.id,
        candidate_id=decision.candidate_id,
        decision=decision.decision,
        status=decision.status,
        note=decision.note,
        decided_by=decision.decided_by,
        decided_at=decision.decided_at,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
