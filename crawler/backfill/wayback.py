"""The Wayback Machine backfill method: the CDX index of a source's URL prefixes, then the captures.

For each prefix of the source (``wayback_prefixes``; default: the host of its first URL + "/")
one CDX query (extract/cdx.py) asks for the HTML captures with status 200 taken in the window,
one per URL (``collapse=urlkey``), ``backfill.wayback_page_size`` rows a page, the next page by
its resumption key. Every capture is an article: its ORIGINAL URL is the document's URL (what
dedup, the queue and the researchers see), while what is fetched is the capture itself,
``<wayback_replay_url><timestamp>id_/<original>`` (the page as archived, without the Wayback
toolbar), kept as requested/final URL in the provenance. A capture's timestamp is not the
publication date, so no listing date is passed on: the page's own date decides whether it is
in the window (an article captured in 2014 may have been published in 2013).

Politeness: the CDX and replay hosts get their own download slot settings, one request at a
time and ``backfill.wayback_delay`` seconds apart (unless ``DOWNLOAD_SLOTS`` configures them),
left alone by AutoThrottle. 429/503 answers are waited out by `crawler.retry_after`.

Units: ``wayback:<source>:<prefix>:<resumeKey or ''>``, one per CDX page. A finished page
records the key of the next one in its unit's detail (none: it was the last), so a resumed job
walks the finished pages in the store and asks only for the first page not done.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

import scrapy
from scrapy.http import Response

from crawler import runstats
from crawler.backfill.spider import wayback_prefixes
from crawler.items import FetchedPage
from extract.cdx import CdxCapture, CdxError, cdx_query_url, parse_cdx_json, replay_url

if TYPE_CHECKING:
    from crawler.backfill.spider import BackfillSpider

logger = logging.getLogger(__name__)

__all__ = ["MAX_PAGES", "NAME", "ROWS_SKIPPED", "WaybackMethod", "wayback_unit"]

NAME = "wayback"
MAX_PAGES = 10_000                    # CDX pages per prefix: a server that keeps paging is stopped
ROWS_SKIPPED = runstats.PREFIX + "backfill/wayback_rows_skipped"   # unreadable or non-HTML-200 rows
HTML_TYPES = ("text/html", "application/xhtml+xml")


def wayback_unit(source_id: str, prefix: str, resume_key: str | None) -> str:
    """The discovery unit of one CDX page (the first page has no resumption key)."""
    return f"{NAME}:{source_id}:{prefix}:{resume_key or ''}"


class WaybackMethod:
    """CDX pages of each prefix -> one article request per capture (see the module doc)."""

    name: ClassVar[str] = NAME
    per_source: ClassVar[bool] = True

    def __init__(self, spider: BackfillSpider) -> None:
        self.spider = spider
        options = spider.backfill_settings
        self.cdx_url = options.wayback_cdx_url
        self.replay_url = options.wayback_replay_url
        self.page_size = options.wayback_page_size
        self.delay = options.wayback_delay

    def start(self) -> Iterator[scrapy.Request | FetchedPage]:
        self._configure_slots()
        for prefix in wayback_prefixes(self.spider.source):
            request = self._page_request(prefix, None, pages=0)
            if request is not None:
                yield request

    # ------------------------------------------------------------ politeness

    def _configure_slots(self) -> None:
        """One request at a time to the CDX and replay hosts, `wayback_delay` seconds apart."""
        downloader = self.spider.crawler.engine.downloader
        for url in (self.cdx_url, self.replay_url):
            key = downloader.get_slot_key(scrapy.Request(url))
            if key in downloader.slots:
                continue       # already in use by this crawler: its settings stay as they are
            downloader.per_slot_settings.setdefault(key, {"concurrency": 1, "delay": self.delay, "jitter": 0})

    def _polite(self, request: scrapy.Request) -> scrapy.Request:
        request.meta["autothrottle_dont_adjust_delay"] = True
        return request

    # ------------------------------------------------------------ CDX pages (resume-aware)

    def _page_request(self, prefix: str, resume_key: str | None, *, pages: int) -> scrapy.Request | None:
        """The request for the first page of `prefix` from `resume_key` on that this job has not done."""
        spider = self.spider
        walked: set[str] = set()
        while True:
            unit = wayback_unit(spider.source.id, prefix, resume_key)
            done = spider.unit_state(unit)
            if done is None or done.status != "done":
                break
            if not done.detail:
                return None                              # the last page of the prefix is done
            if done.detail in walked or pages >= MAX_PAGES:
                return None
            walked.add(done.detail)
            resume_key, pages = done.detail, pages + 1
        if pages >= MAX_PAGES:
            spider.discovery_error(self.cdx_url, f"{prefix}: more than {MAX_PAGES} CDX pages; stopped",
                                   method=NAME)
            return None
        url = cdx_query_url(self.cdx_url, prefix, since=spider.window.since, until=spider.window.until,
                            limit=self.page_size, resume_key=resume_key)
        request = spider.discovery_request(url, self.parse_cdx, unit=unit, method=NAME, prefix=prefix,
                                           resume_key=resume_key, pages=pages)
        return self._polite(request) if request is not None else None

    def parse_cdx(self, response: Response, prefix: str, resume_key: str | None,
                  pages: int) -> Iterator[scrapy.Request]:
        spider = self.spider
        unit = spider.unit_of(response)
        try:
            page = parse_cdx_json(response.body, response.url)
        except CdxError as exc:
            spider.discovery_error(response.url, str(exc), method=NAME)
            return
        spider.source_ok()
        if page.problems:
            self._skipped(response.url, len(page.problems), "; ".join(page.problems))
        found = 0
        for capture in page.captures:
            if not self._wanted(capture, response.url):
                continue
            found += 1
            request = spider.backfill_article(
                capture.original,
                method=NAME,
                discovered_from=response.url,
                fetch_url=replay_url(self.replay_url, capture),
            )
            if request is not None:
                yield self._polite(request)
        next_key = page.resume_key
        if next_key is not None and next_key == resume_key:
            spider.discovery_error(response.url, f"the CDX server answered the same resumeKey {next_key!r} "
                                   "again; the rest of this prefix is not read", method=NAME)
            next_key = None
        spider.unit_finished(unit, found, detail=next_key)
        logger.info("%s: CDX page %d of %s: %d captures%s", spider.name, pages + 1, prefix, found,
                    ", more to come" if next_key else "", extra=spider.log_extra)
        if next_key is not None:
            request = self._page_request(prefix, next_key, pages=pages + 1)
            if request is not None:
                yield request

    def _wanted(self, capture: CdxCapture, url: str) -> bool:
        """HTML captures with status 200 (what the query's filters asked for; some servers ignore them)."""
        mimetype = (capture.mimetype or "text/html").split(";")[0].strip().lower()
        if capture.statuscode in (None, 200) and mimetype in HTML_TYPES:
            return True
        self._skipped(url, 1, f"capture of {capture.original} is {capture.statuscode} {mimetype}, "
                              "not an HTML page with status 200")
        return False

    def _skipped(self, url: str, count: int, why: str) -> None:
        self.spider.stats.inc_value(ROWS_SKIPPED, count)
        logger.warning("%s: CDX answer %s: %d row(s) skipped: %s", self.spider.name, url, count, why,
                       extra=self.spider.log_extra)
