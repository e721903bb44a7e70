"""The GDELT backfill method: keyword queries to GDELT's DOC 2.0 API, time slice by time slice.

For each query of ``backfill.gdelt_queries`` the window is cut into slices of
``backfill.gdelt_slice_days`` days (`extract.gdelt.plan_slices`) and each slice is one
``mode=artlist&format=json&maxrecords=250`` request. The API returns at most 250 articles, so
a slice whose answer holds 250 is split in two and both halves are asked (recursively, down to
one hour; a one-hour slice still full is kept, logged and counted as capped). Every listed
article is fetched: GDELT's ``seendate`` says when GDELT saw the link, not when it was
published, so no listing date is passed on and the page's own date decides whether it is in
the window (outside: stored as skipped/out_of_range, never queued). Articles belong to the
configured source whose host they are on (`SourceConfig.hosts`), else to the source "gdelt".

A query's first slice is asked alone; the others follow once it was answered, so a query
GDELT rejects ("Your search contained a keyword that was too short") costs one request and
one error, not one per slice.

Politeness: the API requests share their own download slot, one at a time and
``backfill.gdelt_delay`` seconds apart (GDELT asks for one request every 5 seconds), left alone
by AutoThrottle. A 429/503 is waited out by `crawler.retry_after`; GDELT's rate-limit notice
sent as text with HTTP 200 ("Please limit requests to one every 5 seconds") pauses the host
the same way (`retry_after.process_pauses`) and asks again, at most
``DWATCH_RETRY_AFTER_TIMES`` times.

Units: ``gdelt:<query>:<startdatetime>:<enddatetime>`` per slice. A slice is done once its
articles were all listed: at once when its answer was not full, or when both its halves are
done when it was split. A resumed job asks only the slices not done: a split slice whose
halves were not all finished is asked again (one request), and its finished halves are not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Response

from crawler import runstats
from crawler.items import FetchedPage
from crawler.retry_after import (
    DEFAULT_MAX_WAIT,
    DEFAULT_TIMES,
    MAX_WAIT_SETTING,
    TIMES_SETTING,
    process_pauses,
)
from extract.gdelt import (
    GDELT_DOC_EARLIEST,
    GdeltError,
    GdeltQueryRejected,
    GdeltRateLimited,
    TimeSlice,
    artlist_url,
    parse_artlist,
    plan_slices,
)

if TYPE_CHECKING:
    from crawler.backfill.spider import BackfillSpider

logger = logging.getLogger(__name__)

__all__ = ["CAPPED", "NAME", "RATE_LIMITED_TEXT", "SLOT", "SPLITS", "GdeltMethod", "gdelt_unit"]

NAME = "gdelt"
SLOT = "gdelt-api"                   # the download slot of the API requests
ATTEMPT_META = "dwatch_gdelt_attempt"
SPLITS = runstats.PREFIX + "backfill/gdelt_split_slices"            # full answers split in two
CAPPED = runstats.PREFIX + "backfill/gdelt_capped_slices"           # full at one hour: some missed
RATE_LIMITED_TEXT = runstats.PREFIX + "backfill/gdelt_rate_limited"  # the notice sent as HTTP 200
MIN_RATE_LIMIT_WAIT = 1.0


def gdelt_unit(query: str, span: TimeSlice) -> str:
    """The discovery unit of one query and time slice."""
    return f"{NAME}:{query}:{span.key}"


@dataclass
class _Split:
    """A slice split in two, waiting for its halves (``left``) before it is done."""

    parent: str | None      # the unit of the slice it is itself a half of
    found: int              # articles its own (full) answer listed
    left: int = 2


class GdeltMethod:
    """DOC API queries per time slice -> one article request per listed URL (see the module doc)."""

    name: ClassVar[str] = NAME
    per_source: ClassVar[bool] = False

    def __init__(self, spider: BackfillSpider) -> None:
        self.spider = spider
        options = spider.backfill_settings
        self.api_url = options.gdelt_url
        self.queries = list(dict.fromkeys(options.gdelt_queries))
        self.slice_days = options.gdelt_slice_days
        self.delay = options.gdelt_delay
        self._later: dict[str, list[TimeSlice]] = {}     # slices asked once the first one answered
        self._splits: dict[str, _Split] = {}

    def start(self) -> Iterator[scrapy.Request | FetchedPage]:
        spider = self.spider
        window = spider.window
        if window.since < GDELT_DOC_EARLIEST:
            logger.warning("%s: GDELT's DOC 2.0 API indexes news from %s on; slices before it will "
                           "find nothing", spider.name, GDELT_DOC_EARLIEST, extra=spider.log_extra)
        self._configure_slot()
        for query in self.queries:
            slices = plan_slices(window.since, window.until, self.slice_days)
            self._later[query] = slices[1:]
            request = self._ask(query, slices[0], parent=None)
            if request is None:          # done by an earlier run of this job: the query works
                yield from self._release(query)
            else:
                yield request

    # ------------------------------------------------------------ requests (resume-aware)

    def _configure_slot(self) -> None:
        """The API requests: one at a time, `gdelt_delay` seconds apart, whatever their host."""
        downloader = self.spider.crawler.engine.downloader
        downloader.per_slot_settings.setdefault(SLOT, {"concurrency": 1, "delay": self.delay, "jitter": 0})

    def _ask(self, query: str, span: TimeSlice, *, parent: str | None) -> scrapy.Request | None:
        """The request for `query` in `span`; None when this job already finished that slice."""
        url = artlist_url(self.api_url, query, span)
        request = self.spider.discovery_request(url, self.parse_answer, unit=gdelt_unit(query, span),
                                                method=NAME, query=query, span=span, parent=parent)
        if request is None:
            return None
        request.meta["download_slot"] = SLOT
        request.meta["autothrottle_dont_adjust_delay"] = True
        return request

    def _release(self, query: str) -> Iterator[scrapy.Request]:
        """The query's other slices, once its first one was answered (or found done)."""
        for span in self._later.pop(query, []):
            request = self._ask(query, span, parent=None)
            if request is not None:
                yield request

    def _half_done(self, parent: str | None) -> None:
        """One half of `parent` is done; a slice whose halves are both done is done itself."""
        while parent is not None:
            split = self._splits[parent]
            split.left -= 1
            if split.left:
                return
            del self._splits[parent]
            self.spider.unit_finished(parent, split.found, detail="split in two; both halves done")
            parent = split.parent

    # ------------------------------------------------------------ answers

    def parse_answer(self, response: Response, query: str, span: TimeSlice,
                     parent: str | None) -> Iterator[scrapy.Request]:
        spider = self.spider
        unit = spider.unit_of(response)
        try:
            answer = parse_artlist(response.body, response.url)
        except GdeltRateLimited as exc:
            yield from self._rate_limited(response, exc)
            return
        except GdeltQueryRejected as exc:
            dropped = len(self._later.pop(query, []))
            spider.discovery_error(response.url, str(exc), method=NAME)
            logger.warning("%s: GDELT rejected the query %r; its %d other slice(s) are not asked",
                           spider.name, query, dropped, extra=spider.log_extra)
            return
        except GdeltError as exc:
            spider.discovery_error(response.url, str(exc), method=NAME)
            return
        spider.source_ok()
        if answer.detail:
            logger.info("%s: %s: %s", spider.name, response.url, answer.detail, extra=spider.log_extra)
        found = len(answer.articles)
        for article in answer.articles:
            request = spider.backfill_article(article.url, method=NAME, discovered_from=response.url,
                                              title=article.title)
            if request is not None:
                yield request
        halves = span.halves() if answer.full() else None
        if halves is None:
            detail = None
            if answer.full():
                spider.stats.inc_value(CAPPED)
                detail = f"capped: {answer.rows} results in {span}; some articles may be missing"
                logger.warning("%s: %r still lists %d articles in %s, the API's cap; later ones are "
                               "missed (a narrower query finds them)", spider.name, query, answer.rows,
                               span, extra=spider.log_extra)
            spider.unit_finished(unit, found, detail=detail)
            self._half_done(parent)
        else:
            spider.stats.inc_value(SPLITS)
            logger.info("%s: %r lists %d articles in %s, the API's cap: asking %s and %s", spider.name,
                        query, answer.rows, span, halves[0], halves[1], extra=spider.log_extra)
            self._splits[unit] = _Split(parent, found)
            for half in halves:
                request = self._ask(query, half, parent=unit)
                if request is None:
                    self._half_done(unit)
                else:
                    yield request
        yield from self._release(query)

    def _rate_limited(self, response: Response, exc: GdeltRateLimited) -> Iterator[scrapy.Request]:
        """GDELT's rate-limit notice as an answer: pause the API host, then ask again (bounded)."""
        spider = self.spider
        settings = spider.crawler.settings
        attempt = int(response.meta.get(ATTEMPT_META, 0))
        spider.stats.inc_value(RATE_LIMITED_TEXT)
        if attempt >= settings.getint(TIMES_SETTING, DEFAULT_TIMES):
            spider.discovery_error(response.url, f"{exc} (asked {attempt + 1} times; left for the next run)",
                                   method=NAME)
            return
        wait = max(exc.seconds or 0.0, self.delay, MIN_RATE_LIMIT_WAIT) * 2 ** attempt
        wait = min(wait, settings.getfloat(MAX_WAIT_SETTING, DEFAULT_MAX_WAIT))
        process_pauses().pause(urlsplit(response.url).hostname or "", wait)
        logger.info("%s: GDELT asked to slow down (%r); asking %s again in %.1f s", spider.name, exc.text,
                    response.url, wait, extra=spider.log_extra)
        request = response.request
        if request is None:     # never for a callback's response; kept for the type checker
            spider.discovery_error(response.url, f"{exc} (no request to repeat)", method=NAME)
            return
        retry = request.copy()
        retry.meta[ATTEMPT_META] = attempt + 1
        retry.dont_filter = True
        yield retry
