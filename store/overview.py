"""The overview's numbers: candidates and accepted stories per week, in all, by language and
by narrative (the web UI's charts and `/api/overview`).

The database groups by UTC day (one row per day, language/narrative and status, so the work
stays in SQL however many candidates there are); the days are then folded into ISO weeks
(Monday first) here. A candidate's day is its publication day, else the day it was queued.
Candidates no longer flagged ('unflagged') are not counted.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from store.models import Candidate, CandidateNarrative
from store.query import apply_filters, when_column
from store.records import Overview, QueueQuery, WeekCount

__all__ = ["week_of", "weekly_overview"]

_Counts = dict[tuple[date, str], list[int]]  # (week, key) -> [candidates, accepted]


def week_of(day: date) -> date:
    """The Monday of ``day``'s ISO week."""
    return day - timedelta(days=day.weekday())


def weekly_overview(
    session: Session, *, since: date | None = None, until: date | None = None
) -> Overview:
    """Candidates and accepted candidates per ISO week, from ``since`` to ``until`` (UTC days)."""
    query = QueueQuery(since=since, until=until, limit=None)
    day = _utc_day(when_column(query), session)
    counted = Candidate.status != "unflagged"

    by_language: _Counts = defaultdict(lambda: [0, 0])
    stmt = apply_filters(
        select(day, Candidate.lang, Candidate.status, func.count(Candidate.id))
        .where(counted)
        .group_by(day, Candidate.lang, Candidate.status),
        query,
    )
    for raw_day, lang, status, count in session.execute(stmt):
        _add(by_language, _as_date(raw_day), lang or "unknown", status, int(count))

    by_narrative: _Counts = defaultdict(lambda: [0, 0])
    stmt = apply_filters(
        select(day, CandidateNarrative.narrative, Candidate.status, func.count(Candidate.id))
        .join(CandidateNarrative, CandidateNarrative.candidate_id == Candidate.id)
        .where(counted)
        .group_by(day, CandidateNarrative.narrative, Candidate.status),
        query,
    )
    for raw_day, narrative, status, count in session.execute(stmt):
        _add(by_narrative, _as_date(raw_day), narrative, status, int(count))

    totals: _Counts = defaultdict(lambda: [0, 0])
    for (week, _key), (candidates, accepted) in by_language.items():
        totals[(week, "all")][0] += candidates
        totals[(week, "all")][1] += accepted
    weeks = _every_week(sorted({week for week, _ in totals}))
    return Overview(
        weeks=weeks,
        totals=tuple(
            WeekCount(week, "all", *totals.get((week, "all"), [0, 0])) for week in weeks
        ),
        by_language=_rows(by_language),
        by_narrative=_rows(by_narrative),
    )


def _utc_day(column: ColumnElement[Any], session: Session) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column, in the session's SQL dialect."""
    if session.get_bind().dialect.name == "postgresql":
        # date() of a timestamptz uses the session time zone: convert to UTC first
        return func.date(func.timezone("UTC", column))
    return func.date(column)  # SQLite stores UTC ISO text; date() reads it


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _add(counts: _Counts, day: date, key: str, status: str, count: int) -> None:
    entry = counts[(week_of(day), key)]
    entry[0] += count
    if status == "accepted":
        entry[1] += count


def _every_week(weeks: list[date]) -> tuple[date, ...]:
    if not weeks:
        return ()
    span = (weeks[-1] - weeks[0]).days // 7
    return tuple(weeks[0] + timedelta(weeks=i) for i in range(span + 1))


def _rows(counts: _Counts) -> tuple[WeekCount, ...]:
    return tuple(
        WeekCount(week, key, candidates, accepted)
        for (week, key), (candidates, accepted) in sorted(counts.items())
    )
