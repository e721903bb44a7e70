"""The sitemap backfill method: sitemap indexes, Google News sitemaps and lastmod, by date.

Which sitemaps: the source's ``sitemaps``; else a sitemap source's own URLs; else its site's
robots.txt ``Sitemap:`` lines (``/sitemap.xml`` when robots.txt names none). Sitemap indexes
are followed (children whose ``<lastmod>`` is before the window are skipped: nothing in them
changed since), `MAX_INDEX_DEPTH` levels deep. Each article is dated by its
``<news:publication_date>``, else its ``<lastmod>``, and filtered to the window before anything
is fetched; an undated one (text sitemaps) is fetched and its page's date decides.

Units: ``sitemap:<url>`` per sitemap, index or robots.txt. An index or robots.txt records the
sitemaps it led to (JSON in the unit's detail), so a resumed job requests only those not done.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit, urlunsplit

import scrapy
from scrapy.http import Response

from crawler import runstats
from crawler.items import FetchedPage
from crawler.spiders.sitemaps import is_robots_url
from extract import parse_sitemap, sitemaps_from_robots

if TYPE_CHECKING:
    from crawler.backfill.spider import BackfillSpider

logger = logging.getLogger(__name__)

__all__ = ["MAX_CHILD_SITEMAPS", "MAX_INDEX_DEPTH", "SitemapMethod", "default_sitemaps"]

MAX_INDEX_DEPTH = 3
MAX_CHILD_SITEMAPS = 5000
NAME = "sitemap"


def _site_url(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def default_sitemaps(urls: list[str]) -> list[str]:
    """robots.txt of each site of `urls` (its Sitemap: lines are followed)."""
    return list(dict.fromkeys(_site_url(url, "/robots.txt") for url in urls))


class SitemapMethod:
    name: ClassVar[str] = NAME
    per_source: ClassVar[bool] = True

    def __init__(self, spider: BackfillSpider) -> None:
        self.spider = spider

    def sitemap_urls(self) -> list[str]:
        source = self.spider.source
        if source.sitemaps:
            return list(source.sitemaps)
        if source.kind == "sitemap":
            return list(source.urls)
        return default_sitemaps(source.urls)

    def start(self) -> Iterator[scrapy.Request | FetchedPage]:
        for url in self.sitemap_urls():
            yield from self._document(url, depth=0)

    # ------------------------------------------------------------ requests (resume-aware)

    def _document(self, url: str, *, depth: int) -> Iterator[scrapy.Request]:
        """The request for a sitemap / index / robots.txt; a done index leads to its children."""
        unit = f"{NAME}:{url}"
        done = self.spider.unit_state(unit)
        if done is not None and done.status == "done":
            for child in json.loads(done.detail) if done.detail else []:
                yield from self._document(str(child), depth=depth + 1)
            return
        robots = is_robots_url(url)
        callback = self.parse_robots if robots else self.parse_sitemap
        request = self.spider.discovery_request(url, callback, unit=unit, method=NAME, depth=depth)
        if request is not None:
            if robots:   # no robots.txt is no error: /sitemap.xml is tried instead
                request.meta["handle_httpstatus_list"] = [404, 410]
            yield request

    # ------------------------------------------------------------ callbacks

    def parse_robots(self, response: Response, depth: int) -> Iterator[scrapy.Request]:
        found: list[str] = []
        if response.status < 400:
            text = response.body.decode("utf-8", errors="replace").lstrip("\ufeff")
            found = sitemaps_from_robots(text, response.url)
        if not found:
            found = [_site_url(response.url, "/sitemap.xml")]
            logger.info("%s: %s names no sitemap; trying %s", self.spider.name, response.url, found[0],
                        extra=self.spider.log_extra)
        self.spider.source_ok()
        self.spider.unit_finished(self.spider.unit_of(response), 0, detail=json.dumps(found))
        for url in found:
            yield from self._document(url, depth=depth + 1)

    def parse_sitemap(self, response: Response, depth: int) -> Iterator[scrapy.Request]:
        spider = self.spider
        unit = spider.unit_of(response)
        result = parse_sitemap(response.body, response.url)
        if result.kind == "invalid":
            spider.discovery_error(response.url, f"not a sitemap: {result.detail or 'unreadable document'}",
                                   method=NAME)
            return
        spider.source_ok()
        if result.kind == "sitemapindex":
            if depth >= MAX_INDEX_DEPTH:
                spider.discovery_error(
                    response.url, f"sitemap index nested deeper than {MAX_INDEX_DEPTH} levels; not followed",
                    method=NAME)
                return
            window = spider.window
            children = [c.loc for c in result.entries if c.lastmod is None or not window.before(c.lastmod)]
            skipped = len(result.entries) - len(children)
            if skipped:
                logger.info("%s: %s: %d child sitemap(s) last modified before %s skipped", spider.name,
                            response.url, skipped, spider.window.since, extra=spider.log_extra)
            children = list(dict.fromkeys(children))[:MAX_CHILD_SITEMAPS]
            spider.unit_finished(unit, 0, detail=json.dumps(children))
            for child in children:
                yield from self._document(child, depth=depth + 1)
            return
        if not result.entries:
            spider.stats.inc_value(runstats.EMPTY_SOURCE_DOCUMENTS)
        for entry in result.entries:
            request = spider.backfill_article(
                entry.loc,
                method=NAME,
                discovered_from=response.url,
                published=entry.news_publication_date or entry.lastmod,
                title=entry.news_title,
            )
            if request is not None:
                yield request
        spider.unit_finished(unit, len(result.entries))
