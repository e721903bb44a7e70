"""The JSON API under /api: list, get, decide, export, overview and facets (see /openapi.json).

The same filters as the queue page (review/web/filters.py), with ``limit``/``offset`` instead
of pages. Errors are ``{"detail": "..."}``: 404 for an unknown candidate, 422 for a bad value
(naming the parameter and the accepted values or format).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from review.export import EXPORT_FORMATS
from review.web.downloads import export_response
from review.web.errors import WebError
from review.web.filters import STATUSES, QueueFilter, parse_date, parse_filter
from review.web.pages import DB, candidate_or_404, check_decision, reviewer_name, today
from review.web.schemas import (
    CandidateDetailOut,
    CandidateList,
    CandidateOut,
    DecisionIn,
    DecisionOut,
    ErrorOut,
    FacetsOut,
    OverviewOut,
    detail_out,
)
from store import queue

__all__ = ["router"]

logger = logging.getLogger(__name__)

ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}, 422: {"model": ErrorOut}}
FILTER_DOC = (
    "Filters (query parameters, all optional): range=today|7d|all (default today: queued today, "
    "UTC), or since/until=YYYY-MM-DD with dates=published|queued; status, lang, source, "
    "narrative, channel, min_score (0-1); sort=date|score, order=desc|asc."
)
router = APIRouter(prefix="/api", tags=["queue"], responses=ERRORS)

def api_filter(
    request: Request,
    range: Annotated[str | None, Query(description="today (default) | 7d | all")] = None,
    since: Annotated[str | None, Query(description="YYYY-MM-DD (UTC, inclusive)")] = None,
    until: Annotated[str | None, Query(description="YYYY-MM-DD (UTC, inclusive)")] = None,
    dates: Annotated[str | None, Query(description="published (default) | queued")] = None,
    status: Annotated[str | None, Query(description=" | ".join(STATUSES))] = None,
    lang: Annotated[str | None, Query(description="ISO 639-1 code, e.g. ar")] = None,
    source: Annotated[str | None, Query(description="a source id")] = None,
    narrative: Annotated[str | None, Query(description="a narrative tag")] = None,
    channel: Annotated[str | None, Query(description="feed | sitemap | listing | backfill | manual")] = None,
    min_score: Annotated[str | None, Query(description="a number from 0 to 1")] = None,
    sort: Annotated[str | None, Query(description="date (default) | score")] = None,
    order: Annotated[str | None, Query(description="desc (default) | asc")] = None,
) -> QueueFilter:
    """The queue filter (declared here so /openapi.json lists it; parsed like the pages')."""
    return parse_filter(request.query_params, today=today())


Filter = Annotated[QueueFilter, Depends(api_filter)]


@router.get("/candidates", response_model=CandidateList, summary="List candidates",
            description="The queue under a filter. " + FILTER_DOC)
def list_candidates(
    filt: Filter,
    session: DB,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CandidateList:
    query = filt.query(limit=limit, offset=offset)
    rows = queue.list_candidates(session, query)
    return CandidateList(
        items=[CandidateOut.model_validate(row, from_attributes=True) for row in rows],
        total=queue.count_candidates(session, query),
        counts=queue.candidate_counts(session, query),
        limit=limit,
        offset=offset,
    )


@router.get("/candidates/{candidate_id}", response_model=CandidateDetailOut, summary="One candidate",
            description="Everything about a candidate: text, verdict, provenance, decisions, "
            "its story (earliest first) and verbatim copies.")
def get_candidate(candidate_id: int, session: DB) -> CandidateDetailOut:
    return detail_out(candidate_or_404(session, candidate_id))


@router.post("/candidates/{candidate_id}/decision", response_model=DecisionOut, summary="Decide",
             description="Record a decision (accept, reject, duplicate, translate) with a note. "
             "Browsers send the session's CSRF token in X-CSRF-Token; Bearer/Basic clients "
             "need none.")
def decide(request: Request, candidate_id: int, body: DecisionIn, session: DB) -> DecisionOut:
    key = check_decision(body.decision)
    candidate_or_404(session, candidate_id)
    by = (body.by or "").strip() or reviewer_name(request) or None
    row = queue.record_decision(session, candidate_id, key, note=(body.note or "").strip() or None,
                                by=by)
    logger.info("candidate %s: decision %s by %s (API)", candidate_id, row.decision, row.decided_by)
    return DecisionOut.model_validate(row, from_attributes=True)


@router.get("/export", summary="Export a selection", response_class=StreamingResponse,
            description="Streams the selection as format=csv|jsonl|csl-json|ris. The selection "
            "is ids=1,2,3 (ticked rows) when given, else every candidate matching the filter. "
            "text=1 adds the extracted text (csv, jsonl). " + FILTER_DOC,
            responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {},
                                         "application/vnd.citationstyles.csl+json": {},
                                         "application/x-research-info-systems": {}}}})
def export(
    request: Request,
    filt: Filter,
    format: Annotated[str, Query(description=" | ".join(EXPORT_FORMATS))] = "csv",
    ids: Annotated[str | None, Query(description="a selection of candidate ids: 1,2,3")] = None,
    text: Annotated[bool, Query(description="include the extracted text")] = False,
) -> StreamingResponse:
    return export_response(request, today())


@router.get("/overview", response_model=OverviewOut, summary="Candidates per week",
            description="Candidates and accepted ones per ISO week (publication week, else the "
            "week queued), in all, by language and by narrative. since/until=YYYY-MM-DD.")
def overview(request: Request, session: DB) -> OverviewOut:
    since = parse_date("since", request.query_params.get("since"))
    until = parse_date("until", request.query_params.get("until"))
    if since and until and since > until:
        raise WebError(422, f"since {since.isoformat()} is after until {until.isoformat()}: "
                       "the date range is empty")
    return OverviewOut.model_validate(queue.weekly_overview(session, since=since, until=until),
                                      from_attributes=True)


@router.get("/facets", response_model=FacetsOut, summary="Filter values",
            description="The values the filters accept: statuses, decisions, and the languages, "
            "sources, channels and narratives present in the store.")
def facets(session: DB) -> FacetsOut:
    found = queue.queue_facets(session)
    return FacetsOut(
        statuses=list(STATUSES),
        decisions=dict(queue.DECISIONS),
        languages=list(found.languages),
        sources=list(found.sources),
        channels=list(found.channels),
        narratives=list(found.narratives),
        export_formats=list(EXPORT_FORMATS),
    )

