"""Conditional, adaptive polling of a source's feeds and sitemaps.

A `FeedPoller` belongs to one spider (one source). Before a feed or sitemap is requested it
says whether the URL is due (`not_due_reason`) and which validators to send
(`conditional_headers`: If-None-Match / If-Modified-Since from the last poll). When the
answer arrives, `classify` tells an unchanged document (304 Not Modified, or 200 with the
body hash stored last time) from a changed one. `record` stores an unchanged poll in
``feed_state`` (store/feed_state.py), which also moves the URL's next poll time; a changed
document is stored only when the crawl has finished (`defer`, then `flush`), so a crawl
stopped half-way reads it again next time instead of losing the articles it lists.

The first poll of a URL and a crawl with ``crawl.force_poll`` (``dwatch crawl --force``)
always fetch. A sitemap index is re-read on every run without validators (it is how new and
changed child sitemaps are found; each child is polled on its own).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from store.feed_state import DocumentKind, FeedStateRow, PollOutcome, load_feed_states, record_poll
from store.models import utcnow

if TYPE_CHECKING:
    from scrapy.http import Response
    from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

__all__ = ["POLL_META", "FeedPoller", "body_sha256", "polled_url"]

POLL_META = "dwatch_poll"   # request meta: the URL whose poll state this response answers


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def polled_url(response: Response) -> str | None:
    """The polled URL a response answers (before any redirect), or None for other requests."""
    value = response.meta.get(POLL_META)
    return value if isinstance(value, str) else None


def _header(response: Response, name: str) -> str | None:
    raw = response.headers.get(name)
    if not raw:
        return None
    return raw.decode("latin-1").strip() or None


def _minutes(delta_seconds: float) -> str:
    minutes = delta_seconds / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


class FeedPoller:
    """The poll state of one source's feeds and sitemaps, read and written through the store."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        source_id: str,
        *,
        min_minutes: float,
        max_minutes: float,
        force: bool = False,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session_factory = session_factory
        self.source_id = source_id
        self.min_minutes = min_minutes
        self.max_minutes = max_minutes
        self.force = force
        self.clock = clock
        self._states: dict[str, FeedStateRow] | None = None
        self._pending: dict[str, _Poll] = {}

    def state(self, url: str) -> FeedStateRow | None:
        if self._states is None:
            with self.session_factory() as session:
                self._states = load_feed_states(session, self.source_id)
        return self._states.get(url)

    def not_due_reason(self, url: str) -> str | None:
        """Why `url` is not fetched in this run, or None when it is due."""
        state = self.state(url)
        if state is None or self.force or state.kind == "sitemapindex":
            return None
        now = self.clock()
        if state.is_due(now):
            return None
        return (
            f"not due until {state.next_poll_at.isoformat(timespec='seconds')} "
            f"(polled {_minutes((now - state.checked_at).total_seconds())} ago, "
            f"every {_minutes(state.interval_minutes * 60)}; "
            f"last change {state.changed_at.isoformat(timespec='seconds') if state.changed_at else 'never'})"
        )

    def conditional_headers(self, url: str) -> dict[str, str]:
        """If-None-Match / If-Modified-Since for `url` from its last poll ({} for an index)."""
        state = self.state(url)
        if state is None or state.kind == "sitemapindex":
            return {}
        headers: dict[str, str] = {}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        return headers

    def classify(self, response: Response) -> PollOutcome:
        """not_modified (304), same_body (200 with the stored hash) or changed."""
        url = polled_url(response) or response.url
        state = self.state(url)
        if response.status == 304:
            return "not_modified"
        if state is not None and state.body_sha256 == body_sha256(response.body):
            return "same_body"
        return "changed"

    def record(
        self, response: Response, outcome: PollOutcome, kind: DocumentKind | None = None
    ) -> FeedStateRow:
        """Store an unchanged poll (or a changed one at once); returns the new state."""
        url = polled_url(response) or response.url
        poll = _Poll(url, outcome, kind, _header(response, "ETag"), _header(response, "Last-Modified"),
                     body_sha256(response.body) if outcome == "changed" else None, self.clock())
        return self._write(poll)

    def defer(self, response: Response, kind: DocumentKind) -> None:
        """Note a changed document that is being parsed; stored by `flush` when the crawl ends."""
        url = polled_url(response) or response.url
        self._pending[url] = _Poll(url, "changed", kind, _header(response, "ETag"),
                                   _header(response, "Last-Modified"), body_sha256(response.body),
                                   self.clock())

    def flush(self, *, finished: bool, complete: bool) -> int:
        """Store the changed documents of this crawl; returns how many were stored.

        Not `finished` (the crawl was stopped): nothing is stored, so the documents are due and
        parsed again next run and no article they list is lost. Not `complete` (some articles
        were left for later, e.g. over max_articles): stored without validators or hash, so the
        next poll parses them again and finds the rest.
        """
        pending, self._pending = list(self._pending.values()), {}
        if not finished:
            if pending:
                logger.info("%s: crawl stopped; %d changed feed(s)/sitemap(s) will be read again next run",
                            self.source_id, len(pending))
            return 0
        for poll in pending:
            if not complete:
                poll = _Poll(poll.url, poll.outcome, poll.kind, None, None, None, poll.at)
            self._write(poll)
        return len(pending)

    def _write(self, poll: _Poll) -> FeedStateRow:
        with self.session_factory() as session:
            row = record_poll(
                session,
                source_id=self.source_id,
                url=poll.url,
                outcome=poll.outcome,
                kind=poll.kind,
                etag=poll.etag,
                last_modified=poll.last_modified,
                body_sha256=poll.body_sha256,
                min_minutes=self.min_minutes,
                max_minutes=self.max_minutes,
                now=poll.at,
            )
        if self._states is not None:
            self._states[poll.url] = row
        logger.debug("%s: %s polled (%s); next poll %s",
                     self.source_id, poll.url, poll.outcome, row.next_poll_at)
        return row


@dataclass(frozen=True)
class _Poll:
    url: str
    outcome: PollOutcome
    kind: DocumentKind | None
    etag: str | None
    last_modified: str | None
    body_sha256: str | None
    at: datetime
