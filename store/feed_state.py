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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from sqlalchemy import select
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
    state = session.scalar(
        select(FeedState).where(FeedState.source_id == source_id, FeedState.url == url)
    )
    if state is None:
        if outcome != "changed":
            raise StoreError(
                f"feed {url} of source {source_id}: no stored state, so it cannot be {outcome}; "
                "record its first poll as 'changed'"
            )
        state = FeedState(source_id=source_id, url=url, polls=0, changes=0)
        session.add(state)
        previous: float | None = None
    else:
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
