"""The queue's filters, sort and paging as SQL: one place for every listing, count and export.

``QueueQuery`` (store/records.py) is what the CLI, the web UI and its API pass; the functions
here validate it (clear errors naming the field and the accepted values) and apply it to a
``select`` over ``Candidate``. Only store/queue.py and store/overview.py call them.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, exists, func, select

from store.errors import StoreError
from store.models import CANDIDATE_STATUSES, Candidate, CandidateNarrative
from store.records import QUEUE_DATE_FIELDS, QUEUE_SORTS, QueueQuery

__all__ = ["apply_filters", "apply_order", "apply_page", "make_query", "when_column"]

_Stmt = TypeVar("_Stmt", bound="Select[*tuple[Any, ...]]")


def make_query(query: QueueQuery | None = None, **legacy: Any) -> QueueQuery:
    """``query``, or one built from the older keyword arguments (status, since, lang, limit)."""
    unknown = set(legacy) - {"status", "since", "lang", "limit"}
    if unknown:
        raise TypeError(f"unexpected queue filter(s) {sorted(unknown)}; pass a QueueQuery")
    if query is None:
        query = QueueQuery()
    # a None filter means "any"; a None limit means "no limit"
    given = {key: value for key, value in legacy.items() if value is not None or key == "limit"}
    query = replace(query, **given) if given else query
    _check(query)
    return query


def _check(query: QueueQuery) -> None:
    if query.status is not None and query.status not in CANDIDATE_STATUSES:
        raise StoreError(
            f"unknown candidate status {query.status!r}; use one of {', '.join(CANDIDATE_STATUSES)}"
        )
    if query.sort not in QUEUE_SORTS:
        raise StoreError(f"unknown sort {query.sort!r}; use one of {', '.join(QUEUE_SORTS)}")
    if query.dates not in QUEUE_DATE_FIELDS:
        raise StoreError(
            f"unknown date field {query.dates!r}; use one of {', '.join(QUEUE_DATE_FIELDS)}"
        )
    for name in ("min_score", "max_score"):
        value = getattr(query, name)
        if value is not None and not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise StoreError(f"{name} must be a number from 0 to 1, not {value!r}")
    if query.since and query.until and query.since > query.until:
        raise StoreError(
            f"the date range is empty: since {query.since.isoformat()} is after "
            f"until {query.until.isoformat()}"
        )
    if query.limit is not None and query.limit < 0 or query.offset < 0:
        raise StoreError("limit and offset must not be negative")


def when_column(query: QueueQuery) -> ColumnElement[Any]:
    """The time the date range and the date sort use."""
    if query.dates == "queued":
        return Candidate.queued_at.expression
    return func.coalesce(Candidate.published, Candidate.queued_at)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def apply_filters(stmt: _Stmt, query: QueueQuery, *, ignore_status: bool = False) -> _Stmt:
    """``stmt`` (a select over Candidate) narrowed by every filter of ``query``."""
    if query.status is not None and not ignore_status:
        stmt = stmt.where(Candidate.status == query.status)
    when = when_column(query)
    if query.since is not None:
        stmt = stmt.where(when >= _day_start(query.since))
    if query.until is not None:
        stmt = stmt.where(when < _day_start(query.until + timedelta(days=1)))
    if query.lang:
        stmt = stmt.where(Candidate.lang == query.lang.strip().lower())
    if query.source_id:
        stmt = stmt.where(Candidate.source_id == query.source_id)
    if query.channel:
        stmt = stmt.where(Candidate.channel == query.channel)
    if query.narrative:
        stmt = stmt.where(exists(
            select(CandidateNarrative.candidate_id).where(
                CandidateNarrative.candidate_id == Candidate.id,
                CandidateNarrative.narrative == query.narrative,
            )
        ))
    if query.min_score is not None:
        stmt = stmt.where(Candidate.score >= query.min_score)
    if query.max_score is not None:
        stmt = stmt.where(Candidate.score <= query.max_score)
    if query.ids:
        stmt = stmt.where(Candidate.id.in_(query.ids))
    return stmt


def apply_order(stmt: _Stmt, query: QueueQuery) -> _Stmt:
    """Sort by date (publication, else queueing) or by score; ties by queued time, then id."""
    key = Candidate.score if query.sort == "score" else when_column(query)
    if query.descending:
        order = [key.desc().nulls_last(), Candidate.queued_at.desc(), Candidate.id.desc()]
    else:
        order = [key.asc().nulls_last(), Candidate.queued_at.asc(), Candidate.id.asc()]
    return stmt.order_by(*order)


def apply_page(stmt: _Stmt, query: QueueQuery) -> _Stmt:
    if query.offset:
        stmt = stmt.offset(query.offset)
    if query.limit is not None:
        stmt = stmt.limit(query.limit)
    return stmt
