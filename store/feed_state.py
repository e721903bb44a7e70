"""Poll state of feeds and sitemaps: validators, body hash and an adaptive polling interval.

One row per (source id, URL) in ``feed_state``. The crawler reads a source's rows when its
spider starts (`load_feed_states`), sends the stored validators back as a conditional
request, and records every poll it completed (`record_poll`):

- ``changed``: a new body was read and parsed (also the first poll of a URL);
- ``not_modified``: the server answered 304 Not Modified;
- ``same_body``: the server answered 200 but the body's sha256 equals the stored one (servers
  that ignore or mangle validators).

The interval adapts to how often the document changes (`next_interval`): it halves after a
change and grows 1.5x after an unchanged poll, clamped to [min_minutes, max_minutes]; a new
URL starts at min_minutes. A failed fetch or an unreadable document records nothing, so the
URL stays due and its error is reported again on the next run.

Several crawler processes may poll one URL (workers of a shared frontier): `record_poll`
locks the row it updates (SELECT ... FOR UPDATE; SQLite: the write lock) and inserts a URL's
first row with ON CONFLICT DO NOTHING, so no poll is lost and two first polls make one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from sqlalchemy import Insert, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.errors import StoreError
from store.models import FeedState, utcnow

__all__ = [
    "DUE_SLACK",
    "GROWTH",
    "SHRINK",
    "DocumentKind",
    "FeedStateRow",
    "PollOutcome",
    "load_feed_states",
    "next_interval",
    "record_poll",
]

PollOutcome = Literal["changed", "not_modified", "same_body"]
DocumentKind = Literal["feed", "urlset", "sitemapindex", "text"]

GROWTH = 1.5      # interval factor after an unchanged poll
SHRINK = 0.5      # interval factor after a change
# A document is due this fraction of its interval early, so a crawl scheduled at about the
# same period (with jitter) does not miss it by a minute and wait a whole extra period.
DUE_SLACK = 0.1


@dataclass(frozen=True)
class FeedStateRow:
    """The stored poll state of one feed or sitemap URL of a source."""

    source_id: str
    url: str
    kind: str
    etag: str | None
    last_modified: str | None
    body_sha256: str | None
    checked_at: datetime
    changed_at: datetime | None
    next_poll_at: datetime
    interval_minutes: float
    polls: int
    changes: int

    def due_at(self) -> datetime:
        """When the document may be polled again (next_poll_at less the slack)."""
        return self.next_poll_at - timedelta(minutes=self.interval_minutes * DUE_SLACK)

    def is_due(self, now: datetime) -> bool:
        return now >= self.due_at()


def next_interval(
    current: float | None, *, changed: bool, min_minutes: float, max_minutes: float
) -> float:
    """The polling interval (minutes) after a poll: halved on change, 1.5x when unchanged, clamped.

    `current` is None for a URL polled for the first time: it starts at `min_minutes`.
    """
    if min_minutes < 0 or min_minutes > max_minutes:
        raise ValueError(
            "poll bounds must satisfy 0 <= min_minutes <= max_minutes, "
            f"got {min_minutes:g} and {max_minutes:g}"
        )
    if current is None:
        return float(min_minutes)
    proposed = current * (SHRINK if changed else GROWTH)
    return float(min(max(proposed, min_minutes), max_minutes))


def _row(state: FeedState) -> FeedStateRow:
    return FeedStateRow(
        source_id=state.source_id,
        url=state.url,
        kind=state.kind,
        etag=state.etag,
        last_modified=state.last_modified,
        body_sha256=state.body_sha256,
        checked_at=state.checked_at,
        changed_at=state.changed_at,
        next_poll_at=state.next_poll_at,
        interval_minutes=state.interval_minutes,
        polls=state.polls,
        changes=state.changes,
    )


def load_feed_states(session: Session, source_id: str) -> dict[str, FeedStateRow]:
    """Every stored poll state of one source, by URL."""
    rows = session.scalars(select(FeedState).where(FeedState.source_id == source_id))
    return {row.url: _row(row) for row in rows}


def record_poll(
    session: Session,
    *,
    source_id: str,
    url: str,
    outcome: PollOutcome,
    kind: DocumentKind | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
    body_sha256: str | None = None,
    min_minutes: float,
    max_minutes: float,
    now: datetime | None = None,
) -> FeedStateRow:
    """Record one completed poll of `url` and schedule the next one; commits.

    Validators given replace the stored ones (a 304 may carry a fresh ETag); for
    ``not_modified`` and ``same_body`` the stored body hash is kept. ``changed`` needs
    `kind`; its `body_sha256` (what was parsed) and validators replace the stored ones, and
    without them the next poll is unconditional and parsed whatever it returns.
    """
    if outcome not in get_args(PollOutcome):
        known = ", ".join(get_args(PollOutcome))
        raise StoreError(f"feed {url}: poll outcome {outcome!r} is not one of {known}")
    if outcome == "changed" and kind is None:
        raise StoreError(f"feed {url}: a 'changed' poll needs the document kind (feed, urlset, ...)")
    now = now or utcnow()
    state = _locked_state(session, source_id, url)
    if state is None and outcome == "changed":
        interval = next_interval(None, changed=True, min_minutes=min_minutes, max_minutes=max_minutes)
        first = _insert_first_poll(session, {
            "source_id": source_id, "url": url, "kind": kind, "etag": etag,
            "last_modified": last_modified, "body_sha256": body_sha256, "checked_at": now,
            "changed_at": now, "next_poll_at": now + timedelta(minutes=interval),
            "interval_minutes": interval, "polls": 1, "changes": 1,
        })
        if first is not None:
            session.commit()
            return _row(session.get_one(FeedState, first))
        state = _locked_state(session, source_id, url)   # another process polled it first
    if state is None:
        raise StoreError(
            f"feed {url} of source {source_id}: no stored state, so it cannot be {outcome}; "
            "record its first poll as 'changed'"
        )
    previous = state.interval_minutes
    changed = outcome == "changed"
    interval = next_interval(previous, changed=changed, min_minutes=min_minutes, max_minutes=max_minutes)
    if kind is not None:
        state.kind = kind
    if changed:
        state.body_sha256 = body_sha256
        state.changed_at = now
        state.changes += 1
        state.etag, state.last_modified = etag, last_modified   # the new body's validators, or none
    else:
        state.etag = etag or state.etag
        state.last_modified = last_modified or state.last_modified
    state.checked_at = now
    state.interval_minutes = interval
    state.next_poll_at = now + timedelta(minutes=interval)
    state.polls += 1
    session.commit()
    return _row(state)


def _locked_state(session: Session, source_id: str, url: str) -> FeedState | None:
    """The row of (source_id, url), locked until commit, as stored now (never a stale copy).

    PostgreSQL locks the row (FOR UPDATE). SQLite has no row locks, and Python's sqlite3 reads
    outside a transaction until the first write: a no-op UPDATE first takes the database's
    write lock, so the read that follows is the latest and nobody writes before our commit.
    """
    where = (FeedState.source_id == source_id, FeedState.url == url)
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(FeedState).where(*where).values(polls=FeedState.polls))
    return session.scalar(
        select(FeedState).where(*where).with_for_update().execution_options(populate_existing=True)
    )


def _insert_first_poll(session: Session, values: dict[str, object]) -> int | None:
    """Insert a URL's first row; its id, or None when another process's row is already there."""
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        make_insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        stmt: Insert = make_insert(FeedState).values(**values).on_conflict_do_nothing(
            index_elements=["source_id", "url"]
        )
        return session.execute(stmt.returning(FeedState.id)).scalar_one_or_none()
    try:
        with session.begin_nested():
            return session.execute(insert(FeedState).values(**values).returning(FeedState.id)).scalar_one()
    except IntegrityError:
        return None
