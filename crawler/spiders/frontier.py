"""The spiders of `dwatch worker`: each source's spider, fed from the shared frontier.

A `FrontierSpider` is the source's own spider (feed, sitemap or listing: the same parsing, the
same article requests) with what working from a shared, leased queue needs:

- it starts with nothing; when idle it takes the start documents `feed_frontier` put into Redis
  (``<prefix>:<source>:start_urls``, RedisSpider-style) and requests them as a scheduled run
  would first (feeds and sitemaps polled: not due -> not requested, conditional headers);
- feeds, sitemaps and listing pages are requested with ``dont_filter`` (read on every feed);
  which article was requested before is the shared dupefilter's business, not this process's;
- a changed feed's or sitemap's poll is stored when its request is finished, i.e. once the
  requests it led to are in the shared queue (crawler/leases.py), so a worker killed after
  parsing it leaves it to be parsed again instead of losing its articles;
- its errbacks end their request's lease (crawler/leases.py: `LeaseTracker`);
- when idle with ``exit_when_idle`` it closes once its source has had nothing queued, to read or
  in flight in any worker for ``frontier.idle_seconds``; otherwise it waits for the next feed;
- when closed, what this worker still holds of the source goes back to the queue.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import redis
import scrapy
from scrapy import signals
from scrapy.exceptions import DontCloseSpider, IgnoreRequest

from crawler import runstats
from crawler.context import context_from
from crawler.errors import RefusedUrl, SkippedRequest
from crawler.fingerprint import canonical_or_none
from crawler.leases import FrontierContext, frontier_context, leases_of
from crawler.polling import FeedPoller, polled_url
from crawler.spiders.base import SourceSpider
from crawler.spiders.feeds import FeedSpider
from crawler.spiders.listings import ListingSpider
from crawler.spiders.sitemaps import SitemapSpider, is_robots_url
from store.errors import StoreError

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure

    from crawler.items import FetchedPage
    from store.feed_state import DocumentKind

logger = logging.getLogger(__name__)

__all__ = ["FRONTIER_SPIDERS", "FrontierFeedSpider", "FrontierListingSpider", "FrontierSitemapSpider",
           "FrontierSpider"]

SEEDS_PER_TAKE = 16


class FrontierSpider(SourceSpider):
    """What the worker's spiders add to a source's spider: start documents and leases from Redis."""

    frontier: FrontierContext
    _idle_since: float | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.frontier = frontier_context(crawler.settings)
        crawler.signals.connect(spider._idle, signal=signals.spider_idle)
        crawler.signals.connect(spider._requeue_left, signal=signals.spider_closed)
        return spider

    async def start(self) -> AsyncIterator[Any]:
        """Nothing: the start documents come from the frontier when the crawler is idle."""
        return
        yield  # pragma: no cover - makes this an async generator

    def seed_request(self, url: str) -> scrapy.Request | None:
        """The request a scheduled run makes first for start document `url` (None: not due)."""
        raise NotImplementedError

    # ------------------------------------------------------------ the source's documents

    def source_request(self, url: str, callback: Any, **cb_kwargs: Any) -> scrapy.Request:
        request = super().source_request(url, callback, **cb_kwargs)
        request.dont_filter = True     # polled on every feed, never "seen before"
        return request

    def article_request(self, url: str, **kwargs: Any) -> scrapy.Request | None:
        # the shared dupefilter decides what was requested before, not this process's memory
        canonical = canonical_or_none(url)
        if canonical is not None:
            self._discovered.discard(canonical)
        return super().article_request(url, **kwargs)

    def source_ok(self, response: Response | None = None, kind: DocumentKind | None = None) -> None:
        """A changed feed/sitemap's poll is stored once the requests it led to are in the queue."""
        poller = self.poller
        if (response is None or kind is None or poller is None or polled_url(response) is None
                or poller.classify(response) != "changed"):
            super().source_ok(response, kind)
            return
        self.stats.inc_value(runstats.SOURCE_OK)
        record = functools.partial(self._record_poll, poller, response, kind)
        leases = leases_of(self.crawler)
        if leases is None:
            record()
        else:
            leases.after(response.request, record)

    def _record_poll(self, poller: FeedPoller, response: Response, kind: DocumentKind) -> None:
        try:
            poller.record(response, "changed", kind)
        except StoreError as exc:     # polled again next time: nothing lost
            self.source_error(response.url, f"poll state not stored: {exc}")

    # ------------------------------------------------------------ failures end leases too

    def _stopping(self, failure: Failure) -> bool:
        """A request dropped because the crawl stops: it stays leased and goes back to the queue."""
        exc = failure.value
        return (not self.crawler.engine.running and isinstance(exc, IgnoreRequest)
                and not isinstance(exc, SkippedRequest | RefusedUrl))

    def article_failed(self, failure: Failure) -> FetchedPage | None:
        page = super().article_failed(failure)
        leases = leases_of(self.crawler)
        request = getattr(failure, "request", None)
        if leases is None or request is None or self._stopping(failure):
            return page
        if page is not None:
            leases.expect(request, page)
        # not fetched (robots.txt, ...) is worth another try; skipped (already stored) is not
        leases.complete(request, forget=page is None and not isinstance(failure.value, SkippedRequest))
        return page

    def source_failed(self, failure: Failure) -> None:
        super().source_failed(failure)
        leases = leases_of(self.crawler)
        request = getattr(failure, "request", None)
        if leases is not None and request is not None and not self._stopping(failure):
            leases.complete(request)

    # ------------------------------------------------------------ idle: read the feed, maybe stop

    def _take_seeds(self) -> int:
        urls = self.frontier.frontier.pop_seeds(self.source.id, SEEDS_PER_TAKE)
        if not urls:
            return 0
        context = context_from(self.crawler.settings)
        if context is not None:     # poll state as the other workers left it
            crawl = context.crawl
            self.poller = FeedPoller(context.session_factory, self.source.id,
                                     min_minutes=crawl.min_poll_minutes, max_minutes=crawl.max_poll_minutes,
                                     force=crawl.force_poll)
        for url in urls:
            if url not in self.source.urls:
                logger.warning("%s: start document %s is no longer in sources.yaml; not fetched",
                               self.name, url, extra=self.log_extra)
                continue
            request = self.seed_request(url)
            if request is not None:
                self.crawler.engine.crawl(request)
        return len(urls)

    def _idle(self) -> None:
        """spider_idle: take fed start documents; close only when exiting when idle, after idle_seconds."""
        try:
            if self._take_seeds() or not self.frontier.exit_when_idle:
                self._idle_since = None
                raise DontCloseSpider
            if self.frontier.frontier.pending(self.source.id) > 0:
                self._idle_since = None
                raise DontCloseSpider
        except redis.RedisError as exc:
            logger.warning("%s: the shared frontier cannot be read: %s; trying again", self.name, exc,
                           extra=self.log_extra)
            raise DontCloseSpider from exc
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
        if now - self._idle_since < self.frontier.idle_seconds:
            raise DontCloseSpider
        logger.info("%s: nothing queued or in flight for %gs; this worker stops crawling it",
                    self.name, self.frontier.idle_seconds, extra=self.log_extra)

    def _requeue_left(self, reason: str) -> None:
        """spider_closed: whatever this worker still holds for the source goes back to the queue."""
        try:
            moved = self.frontier.frontier.requeue(self.source.id, self.frontier.worker_id)
        except redis.RedisError as exc:
            logger.error("%s: cannot give back this worker's requests (%s); another worker takes them "
                         "once this one's heartbeat expires", self.name, exc, extra=self.log_extra)
            return
        if moved:
            logger.info("%s: %d unfinished request(s) back in the shared queue (%s)",
                        self.name, moved, reason, extra=self.log_extra)


class FrontierFeedSpider(FrontierSpider, FeedSpider):
    def seed_request(self, url: str) -> scrapy.Request | None:
        return self.poll_request(url, self.parse_feed)


class FrontierSitemapSpider(FrontierSpider, SitemapSpider):
    def seed_request(self, url: str) -> scrapy.Request | None:
        if is_robots_url(url):
            return self.source_request(url, self.parse_robots)
        return self.poll_request(url, self.parse_sitemap, depth=0)


class FrontierListingSpider(FrontierSpider, ListingSpider):
    def seed_request(self, url: str) -> scrapy.Request | None:
        return self.source_request(url, self.parse_listing, page=1)


FRONTIER_SPIDERS: dict[str, type[FrontierSpider]] = {
    "feed": FrontierFeedSpider,
    "sitemap": FrontierSitemapSpider,
    "listing": FrontierListingSpider,
}
