"""FeedSpider: RSS/Atom/RDF/JSON feeds -> article requests carrying the feed entry.

Feeds are polled conditionally (SourceSpider.poll_request): a feed not due is not requested,
an unchanged one (304, or the same body as last time) is neither parsed nor followed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.http import Response

from crawler import runstats
from crawler.spiders.base import SourceSpider
from extract import FeedEntry, parse_feed

logger = logging.getLogger(__name__)

__all__ = ["FeedSpider", "response_headers"]

_OLDEST = datetime.min.replace(tzinfo=UTC)


def response_headers(response: Response) -> dict[str, str]:
    """The response headers as a plain dict (first value of each), for extract's parsers."""
    out: dict[str, str] = {}
    for key, values in response.headers.items():
        if values:
            name = key.decode("latin-1") if isinstance(key, bytes) else str(key)
            value = values[0]
            out[name] = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return out


def content_type_of(response: Response) -> str:
    raw = response.headers.get("Content-Type")
    if not raw:
        return "no Content-Type"
    return raw.decode("latin-1").split(";")[0].strip() or "no Content-Type"


def newest_first(entries: tuple[FeedEntry, ...]) -> list[FeedEntry]:
    """Entries by publication date, newest first (undated ones keep their feed order, last)."""
    return sorted(entries, key=lambda e: e.published or _OLDEST, reverse=True)


class FeedSpider(SourceSpider):
    """Fetches each feed URL of a source; each entry's link becomes an article request."""

    channel = "feed"
    source_label = "feed"

    async def start(self) -> AsyncIterator[Any]:
        for url in self.source.urls:
            request = self.poll_request(url, self.parse_feed)
            if request is not None:
                yield request

    def parse_feed(self, response: Response) -> Iterator[scrapy.Request]:
        if self.unchanged(response):
            return
        result = parse_feed(response.body, response.url, response_headers(response))
        if result.problem == "not_a_feed":
            reason = f"not a feed (got {content_type_of(response)})"
            self.source_error(response.url, f"{reason}: {result.detail}" if result.detail else reason)
            return
        if result.problem == "malformed":
            self.source_error(response.url, f"malformed feed: {result.detail or 'unreadable XML'}")
            return
        self.source_ok(response, "feed")
        if result.problem == "empty":
            self.stats.inc_value(runstats.EMPTY_SOURCE_DOCUMENTS)
            logger.info("%s: feed %s has no entries with a link: %s", self.name, response.url, result.detail,
                        extra=self.log_extra)
            return
        if result.bozo:
            logger.info("%s: feed %s is malformed but readable: %s", self.name, response.url, result.detail,
                        extra=self.log_extra)
        for entry in newest_first(result.entries):
            request = self.article_request(
                entry.link,
                discovered_from=response.url,
                entry_id=entry.entry_id,
                entry_title=entry.title,
                entry_published=entry.published,
            )
            if request is not None:
                yield request
