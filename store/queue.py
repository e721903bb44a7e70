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
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from store.errors import DecisionError, StoreError
from store.ingest import known_urls, record_page, update_analysis
from store.models import CANDIDATE_STATUSES, Candidate, Decision, Document, utcnow
from store.records import (
    ArchiveRef,
    CandidateDetail,
    CandidateRow,
    DecisionRow,
    DocumentSummary,
    Provenance,
    RescoreItem,
)
from store.runs import finish_run, latest_runs, run_stats, start_run

__all__ = [
    "DECISIONS",
    "candidate_counts",
    "finish_run",
    "get_candidate",
    "iter_documents_for_rescore",
    "iter_export",
    "known_urls",
    "latest_runs",
    "list_candidates",
    "record_decision",
    "record_page",
    "run_stats",
    "start_run",
    "update_analysis",
]

logger = logging.getLogger(__name__)

DECISIONS = {"accept": "accepted", "reject": "rejected", "duplicate": "duplicate"}
_BATCH = 500
_Stmt = TypeVar("_Stmt", bound="Select[*tuple[Any, ...]]")


# ---------------------------------------------------------------- the queue


def list_candidates(
    session: Session,
    *,
    status: str | None = None,
    since: date | None = None,
    lang: str | None = None,
    limit: int | None = 200,
) -> list[CandidateRow]:
    """Queued candidates, newest first.

    Order: by publication date, falling back to the time it was queued when the page has no
    date (so an undated find is not buried below years-old ones), then queued time, then id.
    ``since`` keeps candidates published or queued on or after that day (UTC).
    """
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
    stmt = _filtered(stmt, status=status, since=since, lang=lang)
    if limit is not None:
        stmt = stmt.limit(limit)
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
        )
        for c, final_url, canonical_url, size, dups in session.execute(stmt)
    ]


def _filtered(
    stmt: _Stmt, *, status: str | None, since: date | None, lang: str | None
) -> _Stmt:
    if status is not None:
        if status not in CANDIDATE_STATUSES:
            raise StoreError(
                f"unknown candidate status {status!r}; use one of {', '.join(CANDIDATE_STATUSES)}"
            )
        stmt = stmt.where(Candidate.status == status)
    if since is not None:
        start = datetime.combine(since, time.min, tzinfo=UTC)
        stmt = stmt.where(or_(Candidate.published >= start, Candidate.queued_at >= start))
    if lang is not None:
        stmt = stmt.where(Candidate.lang == lang.strip().lower())
    return stmt.order_by(
        func.coalesce(Candidate.published, Candidate.queued_at).desc(),
        Candidate.queued_at.desc(),
        Candidate.id.desc(),
    )


def candidate_counts(session: Session) -> dict[str, int]:
    """How many candidates are in each status (every status present, zero included)."""
    counts = dict.fromkeys(CANDIDATE_STATUSES, 0)
    for status, count in session.execute(
        select(Candidate.status, func.count(Candidate.id)).group_by(Candidate.status)
    ):
        counts[status] = int(count)
    return counts


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
    """Append a researcher's decision (accept, reject, duplicate) and set the candidate's status.

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
    *,
    status: str | None = None,
    since: date | None = None,
    lang: str | None = None,
    include_text: bool = False,
) -> Iterator[dict[str, Any]]:
    """Candidates as flat dicts (for CSV or JSON lines), in queue order, with full provenance.

    Dates are ISO 8601 strings; the latest decision (if any) is included; ``include_text``
    adds the extracted text.
    """
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
    stmt = _filtered(stmt, status=status, since=since, lang=lang)
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
