"""The Scrapy side of the shared frontier: scrapy-redis wired to leases that lose nothing.

- `FrontierScheduler` (SCHEDULER): scrapy-redis's Scheduler on the worker's Redis client, one
  queue per source, persistent (SCHEDULER_PERSIST). It hands each request it queues over to the
  `LeaseTracker` of the request that produced it.
- `LeasedPriorityQueue` (SCHEDULER_QUEUE_CLASS): scrapy-redis's PriorityQueue whose ``pop``
  leases the request to this worker (`Frontier.pop`) and marks it with a token
  (``meta["dwatch_lease"]``); ``push`` of a request still carrying a token (a redirect or a retry
  of a leased one) ends that lease in the same transaction.
- `SourceDupeFilter` (DUPEFILTER_CLASS): scrapy-redis's RFPDupeFilter keyed per source with the
  project's canonical-URL fingerprints (crawler/fingerprint.py).
- `LeaseTracker` + `LeaseMiddleware` (a spider middleware next to the engine): a leased request
  is finished, and acked, once its callback's (or errback's) output is complete, each item it
  gave has left the pipelines (item_scraped / item_dropped / item_error) and each request it
  gave is in the queue or refused by the dupefilter. Until then it stays leased: a worker
  killed at any point leaves it to be requeued.
- `FrontierIncrementalMiddleware`: the daily crawl's IncrementalMiddleware without the per-run
  claims and cap (a worker runs for days): an article already stored is not fetched.

An article that ends up not stored, or stored as a failure worth another try (network error,
408, 429, 5xx: store.ingest's rule), is forgotten by the dupefilter, so the next feed of its
source requests it again, as the next `dwatch crawl` would.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import redis
from scrapy import Request, signals
from scrapy.exceptions import NotConfigured
from scrapy.settings import BaseSettings
from scrapy.utils.misc import load_object
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler

from crawler import runstats
from crawler.errors import AlreadySeen, RefusedUrl
from crawler.fingerprint import canonical_or_none
from crawler.frontier import Frontier
from crawler.items import FetchedPage
from crawler.middlewares import ADMITTED, IncrementalMiddleware, is_article
from store.ingest import RETRYABLE_STATUSES

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

__all__ = [
    "FRONTIER_SETTING",
    "LEASE_META",
    "FrontierContext",
    "FrontierIncrementalMiddleware",
    "FrontierScheduler",
    "LeaseMiddleware",
    "LeaseTracker",
    "LeasedPriorityQueue",
    "SourceDupeFilter",
    "frontier_context",
    "frontier_from",
    "leases_of",
]

FRONTIER_SETTING = "DWATCH_FRONTIER"
LEASE_META = "dwatch_lease"               # the token of a leased request
FINGERPRINTS_META = "dwatch_frontier_fps"  # dupefilter fingerprints the request was admitted under
QUEUE_POLL_SECONDS = 1.0                   # how often an idle crawler looks at the shared queue
# what reading back a queued request can raise (a callback or class this code no longer has, ...)
_UNREADABLE = (pickle.UnpicklingError, EOFError, ValueError, AttributeError, TypeError, ImportError)


@dataclass
class FrontierContext:
    """What every crawler of one worker process shares (crawler setting ``DWATCH_FRONTIER``)."""

    frontier: Frontier
    worker_id: str
    exit_when_idle: bool = False
    idle_seconds: float = 30.0

    def __deepcopy__(self, memo: dict[int, Any]) -> FrontierContext:
        return self    # Scrapy deep-copies settings; a shared resource is never copied


def frontier_from(settings: BaseSettings) -> FrontierContext | None:
    value = settings.get(FRONTIER_SETTING)
    return value if isinstance(value, FrontierContext) else None


def frontier_context(settings: BaseSettings) -> FrontierContext:
    """The worker's FrontierContext; a clear error when the crawler has none."""
    context = frontier_from(settings)
    if context is None:
        raise ValueError(
            f"crawler setting {FRONTIER_SETTING} is missing; start workers through crawler.worker.run_worker"
        )
    return context


def leases_of(crawler: Crawler) -> LeaseTracker | None:
    """The lease tracker of a crawler's running FrontierScheduler (None before it opens, or none)."""
    engine = getattr(crawler, "engine", None)
    scheduler = engine.scheduler if engine is not None else None
    return scheduler.leases if isinstance(scheduler, FrontierScheduler) else None


# ---------------------------------------------------------------- leases


@dataclass
class _Work:
    fingerprints: list[str]
    outputs: set[int] = field(default_factory=set)
    complete: bool = False
    forget: bool = False
    then: list[Callable[[], object]] = field(default_factory=list)


class LeaseTracker:
    """Which leased requests of one crawler still have output on its way; acks the finished ones."""

    def __init__(self, finish: Callable[[str, list[str]], None]) -> None:
        self._finish = finish          # (token, fingerprints to forget)
        self._work: dict[str, _Work] = {}
        self._owner: dict[int, tuple[object, str]] = {}   # id(output) -> (output, token)

    def _entry(self, request: Request | None) -> str | None:
        if request is None:
            return None
        token = request.meta.get(LEASE_META)
        if not isinstance(token, str):
            return None
        if token not in self._work:
            self._work[token] = _Work(list(request.meta.get(FINGERPRINTS_META, ())))
        return token

    def expect(self, request: Request | None, output: object) -> None:
        """`output` (an item or a request) of leased `request` is on its way."""
        token = self._entry(request)
        if token is not None and output is not None:
            self._work[token].outputs.add(id(output))
            self._owner[id(output)] = (output, token)

    def after(self, request: Request | None, action: Callable[[], object]) -> None:
        """Run `action` when `request` is finished (before its ack; never if it is requeued)."""
        token = self._entry(request)
        if token is not None:
            self._work[token].then.append(action)
        else:
            action()

    def complete(self, request: Request | None, *, forget: bool = False) -> None:
        """All the output of leased `request` was given (`forget`: its fetch is worth another try)."""
        token = self._entry(request)
        if token is not None:
            self._work[token].complete = True
            self._work[token].forget |= forget
            self._maybe_finish(token)

    def settle(self, output: object, *, forget: bool = False) -> None:
        """An output reached its end: an item left the pipelines, a request was queued or refused."""
        owned = self._owner.pop(id(output), None)
        if owned is None or owned[0] is not output:
            return
        work = self._work.get(owned[1])
        if work is not None:
            work.outputs.discard(id(output))
            work.forget |= forget
            self._maybe_finish(owned[1])

    def _maybe_finish(self, token: str) -> None:
        work = self._work[token]
        if not work.complete or work.outputs:
            return
        del self._work[token]
        for action in work.then:
            action()
        self._finish(token, work.fingerprints if work.forget else [])

    def __len__(self) -> int:
        return len(self._work)


def worth_retrying(page: FetchedPage) -> bool:
    """store.known_urls' rule: a failure the next crawl fetches again."""
    if page.error_reason == "fetch_error":
        return True
    status = page.status
    return page.failed and status is not None and (status in RETRYABLE_STATUSES or status >= 500)


class LeaseMiddleware:
    """Spider middleware next to the engine: tells the LeaseTracker what each response gave."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if frontier_from(crawler.settings) is None:
            raise NotConfigured("no shared frontier (only crawler.run_worker sets one up)")
        return cls(crawler)

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        leases = leases_of(self.crawler)
        request = response.request
        if leases is None or request is None or LEASE_META not in request.meta:
            async for output in result:
                yield output
            return
        try:
            async for output in result:
                leases.expect(request, output)
                yield output
        finally:
            leases.complete(request)

    def process_spider_exception(self, response: Response, exception: Exception) -> None:
        leases = leases_of(self.crawler)
        if leases is not None:
            leases.complete(response.request)     # failed for good: the error is counted
        return None


# ---------------------------------------------------------------- scrapy-redis, leased


class LeasedPriorityQueue(PriorityQueue):  # type: ignore[misc]  # scrapy-redis ships no types
    """scrapy-redis's PriorityQueue; `pop` leases, `push` hands a lease over, `ack` ends one."""

    def __init__(self, server: Any, spider: Spider, key: str, serializer: Any = None) -> None:
        super().__init__(server, spider, key, serializer)
        context = frontier_context(spider.crawler.settings)
        self.frontier = context.frontier
        self.worker_id = context.worker_id
        self.source_id = spider.name

    def __len__(self) -> int:
        return int(self.server.zcard(self.key))

    def push(self, request: Request) -> None:
        token = request.meta.pop(LEASE_META, None)
        handoff = (self.worker_id, token) if isinstance(token, str) else None
        self.frontier.push(self.source_id, -request.priority, self._encode_request(request), handoff=handoff)

    def pop(self, timeout: int = 0) -> Request | None:
        while True:
            token = uuid4().hex
            data = self.frontier.pop(self.source_id, self.worker_id, token)
            if data is None:
                return None
            try:
                request: Request = self._decode_request(data)
            except _UNREADABLE as exc:
                # e.g. a callback this code no longer has: dropped with its bytes in the log
                logger.error("%s: dropping a queued request that cannot be read back (%s: %s): %r",
                             self.source_id, type(exc).__name__, exc, data[:300])
                self.ack(token)
                continue
            request.meta[LEASE_META] = token
            return request

    def ack(self, token: str) -> None:
        self.frontier.ack(self.source_id, self.worker_id, token)


class SourceDupeFilter(RFPDupeFilter):  # type: ignore[misc]
    """scrapy-redis's RFPDupeFilter, one set per source, on canonical-URL fingerprints."""

    def __init__(self, server: Any, key: str, fingerprinter: Any, debug: bool = False) -> None:
        super().__init__(server, key, debug)
        self.fingerprinter = fingerprinter

    @classmethod
    def from_spider(cls, spider: Spider) -> Self:
        context = frontier_context(spider.crawler.settings)
        debug = spider.crawler.settings.getbool("DUPEFILTER_DEBUG")
        return cls(context.frontier.client, context.frontier.keys.dupefilter(spider.name),
                   spider.crawler.request_fingerprinter, debug=debug)

    def request_fingerprint(self, request: Request) -> str:
        return bytes(self.fingerprinter.fingerprint(request)).hex()

    def request_seen(self, request: Request) -> bool:
        fingerprint = self.request_fingerprint(request)
        if self.server.sadd(self.key, fingerprint) == 0:
            return True
        request.meta.setdefault(FINGERPRINTS_META, []).append(fingerprint)
        return False


class FrontierScheduler(Scheduler):  # type: ignore[misc]
    """scrapy-redis's Scheduler on the worker's frontier, with a LeaseTracker (see the module doc)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        context = frontier_context(crawler.settings)
        keys = context.frontier.keys
        scheduler = cls(
            server=context.frontier.client,
            persist=True,
            queue_key=keys.requests("%(spider)s"),
            queue_cls=crawler.settings.get("SCHEDULER_QUEUE_CLASS", "crawler.leases.LeasedPriorityQueue"),
            dupefilter_key=keys.dupefilter("%(spider)s"),
            dupefilter_cls=crawler.settings.get("DUPEFILTER_CLASS", "crawler.leases.SourceDupeFilter"),
        )
        scheduler.stats = crawler.stats
        scheduler.crawler = crawler
        scheduler.leases = LeaseTracker(scheduler._finished)
        crawler.signals.connect(scheduler._item_stored, signal=signals.item_scraped)
        crawler.signals.connect(scheduler._item_lost, signal=signals.item_dropped)
        crawler.signals.connect(scheduler._item_lost, signal=signals.item_error)
        crawler.signals.connect(scheduler._callback_failed, signal=signals.spider_error)
        return scheduler

    def open(self, spider: Spider) -> None:
        """scrapy-redis's open, without its deprecated Spider.log() call."""
        self.spider = spider
        self.queue = load_object(self.queue_cls)(server=self.server, spider=spider,
                                                 key=self.queue_key % {"spider": spider.name},
                                                 serializer=self.serializer)
        self.df: Any = load_object(self.dupefilter_cls).from_spider(spider)
        queued = len(self.queue)
        if queued:
            logger.info("%s: joining a shared crawl, %d request(s) queued", spider.name, queued)
        # the engine asks an idle scheduler again every 5 s by default; other workers fill this queue
        self.crawler.engine._SLOT_HEARTBEAT_INTERVAL = QUEUE_POLL_SECONDS

    def enqueue_request(self, request: Request) -> bool:
        """Queue `request` in Redis (a RedisError propagates: the request it came from stays leased)."""
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            token = request.meta.pop(LEASE_META, None)
            if isinstance(token, str):      # a redirect to a page already queued: nothing left to do
                self.queue.ack(token)
            self.leases.settle(request)
            return False
        self.queue.push(request)
        self.leases.settle(request)
        self.stats.inc_value("scheduler/enqueued/redis")
        return True

    def has_pending_requests(self) -> bool:
        try:
            return len(self) > 0
        except redis.RedisError as exc:   # not idle: next_request tries again
            logger.warning("%s: cannot read the shared queue: %s", self.spider.name, exc)
            return True

    def next_request(self) -> Request | None:
        try:
            request: Request | None = self.queue.pop()
        except redis.RedisError as exc:
            logger.warning("%s: cannot take a request from the shared queue: %s; trying again",
                           self.spider.name, exc)
            return None
        if request is not None:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def _finished(self, token: str, forget: list[str]) -> None:
        try:
            if forget:
                self.queue.frontier.forget(self.spider.name, forget)
            self.queue.ack(token)
        except redis.RedisError as exc:   # it stays leased: done again after this worker stops
            logger.warning("%s: cannot mark a finished request done in the shared queue: %s",
                           self.spider.name, exc)

    def _item_stored(self, item: Any) -> None:
        self.leases.settle(item, forget=isinstance(item, FetchedPage) and worth_retrying(item))

    def _item_lost(self, item: Any) -> None:
        self.leases.settle(item, forget=True)

    def _callback_failed(self, failure: Any, response: Any) -> None:
        """A callback or errback raised: the request failed for good (the error is counted)."""
        self.leases.complete(getattr(response, "request", None))


class FrontierIncrementalMiddleware(IncrementalMiddleware):
    """Skip article requests whose canonical URL is already stored; no per-run claims or cap."""

    def process_request(self, request: Request) -> None:
        if not is_article(request):
            return None
        canonical = canonical_or_none(request.url)
        if canonical is None:
            raise RefusedUrl(f"refused {request.url!r}: not an absolute http(s) URL")
        if request.meta.get(ADMITTED) and not request.meta.get("redirect_urls"):
            return None      # a retry of a request admitted before
        if self._known(canonical):
            self.stats.inc_value(runstats.ALREADY_SEEN)
            raise AlreadySeen(f"{canonical} is already stored")
        request.meta[ADMITTED] = True
        return None
