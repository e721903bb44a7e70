"""SitemapSpider: sitemaps, sitemap indexes (recursively), Google News sitemaps, robots.txt.

A source URL ending in ``/robots.txt`` is read for its ``Sitemap:`` lines. Sitemap indexes
are followed newest child first, at most `MAX_CHILD_SITEMAPS` children per index and
`MAX_INDEX_DEPTH` levels deep; the article URLs of a sitemap are requested newest first
(``<news:publication_date>``, else ``<lastmod>``), at most `MAX_URLS_PER_SITEMAP` of them,
so a site's archive sitemap of 50,000 old URLs does not flood the scheduler. The source's
``max_articles`` caps how many new articles are fetched.

Sitemaps are polled conditionally (SourceSpider.poll_request): one not due is not requested,
an unchanged one (304, or the same body as last time) is not parsed. A sitemap index is
re-read on every run (it is small, and how new child sitemaps are found); its children are
each polled on their own.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Response

from crawler import runstats
from crawler.spiders.base import SourceSpider
from extract import SitemapEntry, parse_sitemap, sitemaps_from_robots

logger = logging.getLogger(__name__)

__all__ = ["MAX_CHILD_SITEMAPS", "MAX_INDEX_DEPTH", "MAX_URLS_PER_SITEMAP", "SitemapSpider"]

MAX_INDEX_DEPTH = 3
MAX_CHILD_SITEMAPS = 25
MAX_URLS_PER_SITEMAP = 1000

_OLDEST = datetime.min.replace(tzinfo=UTC)


def _when(entry: SitemapEntry) -> datetime:
    return entry.news_publication_date or entry.lastmod or _OLDEST


def newest_first(entries: tuple[SitemapEntry, ...]) -> list[SitemapEntry]:
    return sorted(entries, key=_when, reverse=True)


def is_robots_url(url: str) -> bool:
    return urlsplit(url).path.rstrip("/").endswith("/robots.txt")


class SitemapSpider(SourceSpider):
    """Reads a source's sitemaps (or robots.txt) and requests the articles they list."""

    channel = "sitemap"
    source_label = "sitemap"

    async def start(self) -> AsyncIterator[Any]:
        for url in self.source.urls:
            if is_robots_url(url):
                yield self.source_request(url, self.parse_robots)
            else:
                request = self.poll_request(url, self.parse_sitemap, depth=0)
                if request is not None:
                    yield request

    def parse_robots(self, response: Response) -> Iterator[scrapy.Request]:
        text = response.body.decode("utf-8", errors="replace").lstrip("\ufeff")
        sitemaps = sitemaps_from_robots(text, response.url)
        if not sitemaps:
            self.source_error(response.url, "robots.txt lists no 'Sitemap:' line")
            return
        self.source_ok()
        for url in sitemaps:
            request = self.poll_request(url, self.parse_sitemap, depth=0)
            if request is not None:
                yield request

    def parse_sitemap(self, response: Response, depth: int) -> Iterator[scrapy.Request]:
        if self.unchanged(response):
            return
        result = parse_sitemap(response.body, response.url)
        if result.kind == "invalid":
            self.source_error(response.url, f"not a sitemap: {result.detail or 'unreadable document'}")
            return
        self.source_ok(response, result.kind)
        if result.kind == "sitemapindex":
            if depth >= MAX_INDEX_DEPTH:
                self.source_error(
                    response.url, f"sitemap index nested deeper than {MAX_INDEX_DEPTH} levels; not followed"
                )
                return
            children = newest_first(result.entries)
            if len(children) > MAX_CHILD_SITEMAPS:
                logger.info("%s: %s lists %d sitemaps; following the newest %d",
                            self.name, response.url, len(children), MAX_CHILD_SITEMAPS,
                            extra=self.log_extra)
            for child in children[:MAX_CHILD_SITEMAPS]:
                request = self.poll_request(child.loc, self.parse_sitemap, depth=depth + 1)
                if request is not None:
                    yield request
            return
        entries = newest_first(result.entries)
        if not entries:
            self.stats.inc_value(runstats.EMPTY_SOURCE_DOCUMENTS)
        if len(entries) > MAX_URLS_PER_SITEMAP:
            logger.info("%s: %s lists %d URLs; requesting the newest %d",
                        self.name, response.url, len(entries), MAX_URLS_PER_SITEMAP,
                        extra=self.log_extra)
        for entry in entries[:MAX_URLS_PER_SITEMAP]:
            request = self.article_request(
                entry.loc,
                discovered_from=response.url,
                entry_title=entry.news_title,
                entry_published=entry.news_publication_date,
            )
            if request is not None:
                yield request
