"""`run_worker`: one process that crawls from the shared frontier until stopped (`dwatch worker`).

Like `run_crawl`, one Scrapy crawler per selected source in one `CrawlerProcess`, with the same
pipelines (archive -> analyse -> store) and one ``crawl_runs`` row (kind "worker") for the
whole process. Unlike it, the spiders start with nothing: they read the start documents that
`feed_frontier` put into Redis (RedisSpider-style ``<prefix>:<source>:start_urls``) when they
are idle, and every request goes through the shared, leased queue (crawler/leases.py), so any
number of workers on any number of machines share the work and no page is fetched twice.

A heartbeat thread renews this worker's registration every lease_seconds / 3 and requeues the
requests held by workers whose heartbeat expired. SIGTERM/SIGINT stop the worker cleanly:
requests being fetched are finished, the rest it held go back to the queue, the run is
"interrupted". With ``exit_when_idle`` a crawler stops once its source has had nothing queued,
to read or in flight anywhere for ``frontier.idle_seconds``; the process ends when all have.
Call it once per process (Twisted's reactor cannot restart).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
from scrapy.crawler import Crawler, CrawlerProcess
from sqlalchemy.exc import SQLAlchemyError

from config.logs import RUN_ID
from config.settings import masked_url
from crawler.context import CONTEXT_SETTING, SOURCE_SETTING, RunContext
from crawler.errors import CrawlError
from crawler.frontier import Frontier, WorkerInfo, connect_frontier, new_worker_id, worker_info
from crawler.leases import FRONTIER_SETTING, FrontierContext
from crawler.runner import (
    RunSummary,
    _crawl_crashed,
    _reactor_already_ran,
    _run_status,
    _stats_of,
    collect_stats,
    load_ruleset,
    open_store,
    select_sources,
)
from crawler.settings import scrapy_settings
from crawler.spiders.frontier import FRONTIER_SPIDERS
from store.records import SourceRunStats

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from config import Settings

logger = logging.getLogger(__name__)

__all__ = ["Heartbeat", "WorkerSummary", "run_worker", "worker_scrapy_settings"]


@dataclass(frozen=True)
class WorkerSummary(RunSummary):
    worker_id: str = ""
    requeued: int = 0          # requests this worker held and gave back to the queue when it stopped

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "worker_id": self.worker_id, "requeued": self.requeued}


# ---------------------------------------------------------------- the process


def worker_scrapy_settings(settings: Settings, *, install_log_handler: bool = False) -> dict[str, Any]:
    """The crawl's Scrapy settings with the shared frontier: scrapy-redis scheduler, leases, dupefilter."""
    out = scrapy_settings(settings.crawl, install_log_handler=install_log_handler)
    middlewares = dict(out["DOWNLOADER_MIDDLEWARES"])
    middlewares["crawler.leases.FrontierIncrementalMiddleware"] = middlewares.pop(
        "crawler.middlewares.IncrementalMiddleware")
    out.update({
        "SCHEDULER": "crawler.leases.FrontierScheduler",
        "SCHEDULER_QUEUE_CLASS": "crawler.leases.LeasedPriorityQueue",
        "DUPEFILTER_CLASS": "crawler.leases.SourceDupeFilter",
        "SCHEDULER_PERSIST": True,
        "DOWNLOADER_MIDDLEWARES": middlewares,
        "SPIDER_MIDDLEWARES": {"crawler.leases.LeaseMiddleware": 1},   # next to the engine: sees all output
    })
    return out


class Heartbeat:
    """Renews this worker's registration and reclaims dead workers' requests, in its own thread."""

    def __init__(self, frontier: Frontier, info: WorkerInfo) -> None:
        self.frontier = frontier
        self.info = info
        self.interval = max(0.5, frontier.lease_seconds / 3)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dwatch-heartbeat", daemon=True)

    def start(self) -> dict[str, int]:
        """Register now (before anything is leased), reclaim what dead workers held, then keep beating."""
        self.frontier.beat(self.info)
        reclaimed = self.frontier.reclaim_dead()
        self._thread.start()
        return reclaimed

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.frontier.beat(self.info)
                self.frontier.reclaim_dead()
            except redis.RedisError as exc:
                logger.warning("worker %s: heartbeat failed: %s", self.info.worker_id, exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 10)


def run_worker(
    settings: Settings, source_ids: Sequence[str] | None = None, *, exit_when_idle: bool = False
) -> WorkerSummary:
    """Crawl from the shared frontier until stopped (or idle); blocks; once per process (module doc)."""
    from store import WarcArchive, make_session_factory, queue

    if _reactor_already_ran():
        raise CrawlError("run_worker can run only once per process (Twisted's reactor cannot restart)")
    sources = select_sources(settings, source_ids)
    ruleset = load_ruleset(settings)
    frontier = connect_frontier(settings.frontier)
    heartbeat_frontier = connect_frontier(settings.frontier)    # the heartbeat thread's own client
    engine = _open_shared_store(settings)
    worker_id = new_worker_id()
    ids = [s.id for s in sources]
    per_source: dict[str, SourceRunStats] = {}
    counters: dict[str, dict[str, int]] = {}
    status, requeued = "failed", 0
    try:
        session_factory = make_session_factory(engine)
        with session_factory() as session:
            run_id = queue.start_run(session, kind="worker", sources=ids)
        context = RunContext(run_id=run_id, session_factory=session_factory,
                             archive=WarcArchive(settings.archive_dir), ruleset=ruleset, crawl=settings.crawl)
        shared = FrontierContext(frontier, worker_id, exit_when_idle=exit_when_idle,
                                 idle_seconds=settings.frontier.idle_seconds)
        heartbeat = Heartbeat(heartbeat_frontier, worker_info(worker_id, ids))
        run_token = RUN_ID.set(run_id)
        try:
            try:
                reclaimed = heartbeat.start()
            except redis.RedisError as exc:
                raise CrawlError(f"cannot register with the shared frontier: {exc}") from exc
            logger.info("worker %s (run %s): crawling %s from %s (prefix %s); took back %d request(s) "
                        "of stopped workers", worker_id, run_id, ", ".join(ids),
                        masked_url(settings.frontier.redis_url or ""), frontier.keys.prefix,
                        sum(reclaimed.values()))
            per_source, counters, status = _crawl(settings, sources, context, shared)
        finally:
            heartbeat.stop()
            try:
                requeued = frontier.retire(worker_id, ids)
            except redis.RedisError as exc:
                logger.error("worker %s: cannot deregister (%s); its requests are requeued once its "
                             "heartbeat expires", worker_id, exc)
            with session_factory() as session:
                queue.finish_run(session, run_id, per_source=per_source, status=status)
            context.archive.close()
            logger.info("worker %s (run %s) stopped: %s", worker_id, run_id, status)
            RUN_ID.reset(run_token)
    finally:
        engine.dispose()
        frontier.close()
        heartbeat_frontier.close()
    return WorkerSummary(run_id=run_id, per_source=per_source, status=status, rules_version=ruleset.version,
                         counters=counters, worker_id=worker_id, requeued=requeued)


def _open_shared_store(settings: Settings) -> Engine:
    """open_store, when other workers starting at the same moment may be migrating the same store."""
    from store import StoreError, is_up_to_date, make_engine

    for attempt in range(3):
        try:
            return open_store(settings)
        except CrawlError:
            try:
                if is_up_to_date(settings.database_url):    # another worker's migration won
                    return make_engine(settings.database_url)
            except (StoreError, SQLAlchemyError):
                pass
            if attempt == 2:
                raise
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _crawl(
    settings: Settings, sources: Sequence[Any], context: RunContext, shared: FrontierContext
) -> tuple[dict[str, SourceRunStats], dict[str, dict[str, int]], str]:
    install = not logging.getLogger().handlers
    process = CrawlerProcess(worker_scrapy_settings(settings, install_log_handler=install))
    crashed: dict[str, str] = {}
    crawlers: dict[str, Crawler] = {}
    for source in sources:
        crawler = process.create_crawler(FRONTIER_SPIDERS[source.kind])
        crawler.settings.set(SOURCE_SETTING, source, priority="cmdline")
        crawler.settings.set(CONTEXT_SETTING, context, priority="cmdline")
        crawler.settings.set(FRONTIER_SETTING, shared, priority="cmdline")
        deferred = process.crawl(crawler)
        deferred.addErrback(functools.partial(_crawl_crashed, crashed, source.id))
        crawlers[source.id] = crawler
    process.start()
    per_source, counters = collect_stats(crawlers, crashed)
    status = _run_status(per_source)
    if status != "failed" and any(_stats_of(c).get("finish_reason") == "shutdown" for c in crawlers.values()):
        status = "interrupted"
    return per_source, counters, status
