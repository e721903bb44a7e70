"""`run_backfill`: fill the queue with what the sources published between two dates.

One Scrapy `CrawlerProcess` (once per process, like `run_crawl`): one `BackfillSpider`
crawler per selected source running its per-source methods (sitemap, archive, wayback), plus
one crawler for the source-less methods (gdelt, ccnews). Pages go through the daily crawl's
pipelines (archive -> analyse) and `BackfillStorePipeline`. The job's state in the store
(store/backfill.py) makes a killed backfill, restarted with the same arguments, resume without
fetching anything twice; ``--plan`` discovers and counts but fetches no article and records
nothing. A `crawl_runs` row of kind "backfill" keeps the per-source counts.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from scrapy.crawler import Crawler, CrawlerProcess

from config.logs import RUN_ID
from crawler import runstats
from crawler.backfill.methods import DEFAULT_METHODS, METHODS
from crawler.backfill.progress import Progress, Tally
from crawler.backfill.spider import (
    BACKFILL_SETTING,
    DISCOVERY_ERRORS,
    METHODS_SETTING,
    BackfillContext,
    BackfillSpider,
    host_owners,
)
from crawler.context import CONTEXT_SETTING, SOURCE_SETTING, RunContext
from crawler.errors import CrawlError
from crawler.runner import (
    _crawl_crashed,
    _reactor_already_ran,
    _stats_of,
    load_ruleset,
    open_store,
    select_sources,
)
from crawler.settings import scrapy_settings
from store.backfill import BackfillArgs
from store.records import SourceRunStats

if TYPE_CHECKING:
    from config import Settings, SourceConfig

logger = logging.getLogger(__name__)

__all__ = ["BackfillArgs", "BackfillSummary", "backfill_scrapy_settings", "resolve_args", "run_backfill"]

COLUMNS = (("discovered", "discovered"), ("in_range", "in range"), ("out_of_range", "out of range"),
           ("already_stored", "already stored"), ("fetched", "fetched"), ("flagged", "flagged"),
           ("errors", "errors"))
PLAN_COLUMNS = (("discovered", "discovered"), ("in_range", "in range"), ("out_of_range", "out of range"),
                ("already_stored", "already stored"), ("requested", "to fetch"))


@dataclass(frozen=True)
class BackfillSummary:
    status: str                     # ok | partial | failed | interrupted (as a crawl run's)
    since: date
    until: date
    sources: tuple[str, ...]
    methods: tuple[str, ...]
    plan: bool
    run_id: int | None              # None for --plan (nothing recorded)
    job_id: int | None
    resumed: bool = False           # an earlier job with the same arguments was continued
    rows: tuple[tuple[str, str, dict[str, int]], ...] = ()   # (source id, method, counters)
    first_errors: dict[str, str] = field(default_factory=dict)   # per crawler

    @property
    def ok(self) -> bool:
        """False only when nothing could be crawled at all (the CLI then exits 1)."""
        return self.status != "failed"

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _source, _method, counts in self.rows:
            for key, value in counts.items():
                out[key] = out.get(key, 0) + value
        return out

    def table(self) -> tuple[list[str], list[list[str]]]:
        """Headers and rows (one per source and method, then the total) for printing."""
        columns = PLAN_COLUMNS if self.plan else COLUMNS
        rows = [[sid, method, *(str(counts.get(key, 0)) for key, _ in columns)]
                for sid, method, counts in self.rows]
        totals = self.totals()
        rows.append(["total", "", *(str(totals.get(key, 0)) for key, _ in columns)])
        return ["source", "method", *(label for _, label in columns)], rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "ok": self.ok, "plan": self.plan, "since": self.since.isoformat(),
            "until": self.until.isoformat(), "sources": list(self.sources), "methods": list(self.methods),
            "run_id": self.run_id, "job_id": self.job_id, "resumed": self.resumed,
            "rows": [{"source_id": s, "method": m, **c} for s, m, c in self.rows],
            "totals": self.totals(), "first_errors": self.first_errors,
        }


def resolve_args(settings: Settings, args: BackfillArgs) -> BackfillArgs:
    """The arguments with sources and methods resolved (what the job key is made of); CrawlError."""
    if args.since > args.until:
        raise CrawlError(f"--since {args.since} is after --until {args.until}; give the earlier date first")
    sources = select_sources(settings, args.sources or None)
    options = settings.backfill
    warcs = tuple(args.warcs) or tuple(options.ccnews_files)
    if args.methods:
        unknown = [m for m in args.methods if m not in METHODS]
        if unknown:
            raise CrawlError(f"unknown backfill method(s): {', '.join(unknown)}; "
                             f"use --via with some of: {', '.join(METHODS)}")
        methods = list(dict.fromkeys(args.methods))
    else:
        methods = [m for m in DEFAULT_METHODS if m in METHODS]
        if warcs and "ccnews" in METHODS:
            methods.append("ccnews")
        if options.gdelt_queries and "gdelt" in METHODS:
            methods.append("gdelt")
    if "ccnews" in methods and not warcs:
        raise CrawlError("--via ccnews needs CC-NEWS WARC files: --warc PATH_OR_URL, or "
                         "backfill.ccnews_files in settings.yaml")
    if args.warcs and "ccnews" not in methods:
        raise CrawlError("--warc files are read by the ccnews method; add ccnews to --via")
    if "gdelt" in methods and not options.gdelt_queries:
        raise CrawlError("--via gdelt needs keyword queries: backfill.gdelt_queries in settings.yaml")
    return BackfillArgs(
        since=args.since, until=args.until, sources=tuple(s.id for s in sources), methods=tuple(methods),
        warcs=warcs if "ccnews" in methods else (), plan=args.plan,
    )


def backfill_scrapy_settings(settings: Settings, *, install_log_handler: bool = False) -> dict[str, Any]:
    """The crawl's Scrapy settings with the backfill's store step and without the daily article cap.

    The daily `IncrementalMiddleware` is left out: BackfillSpider itself skips stored and
    already requested URLs, within backfill.max_articles per source and method.
    """
    out = scrapy_settings(settings.crawl, install_log_handler=install_log_handler)
    out["DOWNLOADER_MIDDLEWARES"] = {**out["DOWNLOADER_MIDDLEWARES"],
                                     "crawler.middlewares.IncrementalMiddleware": None}
    out["ITEM_PIPELINES"] = {**out["ITEM_PIPELINES"], "crawler.pipelines.StorePipeline": None,
                             "crawler.backfill.pipelines.BackfillStorePipeline": 300}
    out["DWATCH_MAX_ARTICLES"] = settings.backfill.max_articles
    return out


def _sourceless_source(methods: Sequence[str]) -> SourceConfig:
    from config import SourceConfig

    return SourceConfig(id="backfill-" + "-".join(methods), name=f"backfill: {', '.join(methods)}",
                        kind="feed", urls=["https://backfill.invalid/"])


def _status(crawlers: dict[str, Crawler], crashed: dict[str, str]) -> str:
    stats = {name: _stats_of(crawler) for name, crawler in crawlers.items()}
    worked = [name for name, st in stats.items() if name not in crashed and (
        st.get(runstats.SOURCE_OK, 0) or st.get(runstats.FETCHED, 0) or not st.get(runstats.ERRORS, 0))]
    if not worked:
        return "failed"
    if any(st.get("finish_reason") == "shutdown" for st in stats.values()):
        return "interrupted"
    return "ok" if not crashed and all(not st.get(runstats.ERRORS, 0) for st in stats.values()) else "partial"


def _per_source(tally: Tally, first_errors: dict[str, str]) -> dict[str, SourceRunStats]:
    out: dict[str, SourceRunStats] = {}
    for source_id, _method, counts in tally.rows():
        row = out.setdefault(source_id, SourceRunStats(first_error=first_errors.get(source_id)))
        row.discovered += counts["discovered"]
        row.fetched += counts["fetched"]
        row.already_seen += counts["already_stored"]
        row.extracted += counts["extracted"]
        row.flagged += counts["flagged"]
        row.errors += counts["errors"]
    return out


def run_backfill(
    settings: Settings, args: BackfillArgs, *, progress: Progress | None = None
) -> BackfillSummary:
    """Backfill the window into the store (or only plan it); blocks; once per process."""
    from store import WarcArchive, make_session_factory, queue
    from store import backfill as state

    if _reactor_already_ran():
        raise CrawlError("run_backfill can run only once per process (Twisted's reactor cannot restart); "
                         "start each backfill in a new process")
    args = resolve_args(settings, args)
    sources = [s for s in settings.sources if s.id in args.sources]
    ruleset = load_ruleset(settings)
    engine = open_store(settings)
    try:
        factory = make_session_factory(engine)
        job: state.BackfillJob | None = None
        run_id: int | None = None
        if not args.plan:
            with factory() as session:
                job = state.start_job(session, args)
                run_id = queue.start_run(session, kind="backfill", sources=list(args.sources))
            logger.info("backfill job %s %s (%s): %s via %s", job.id, "resumed" if job.resumed else "started",
                        f"{args.since}..{args.until}", ", ".join(args.sources), ", ".join(args.methods))
        tally = Tally(progress=progress)
        backfill = BackfillContext(
            args=args, settings=settings.backfill, session_factory=factory, tally=tally,
            job_id=job.id if job else None, owners=host_owners(settings.sources), data_dir=settings.data_dir,
        )
        archive = WarcArchive(settings.archive_dir)
        context = RunContext(run_id=run_id or 0, session_factory=factory, archive=archive, ruleset=ruleset,
                             crawl=settings.crawl)
        crawlers: dict[str, Crawler] = {}
        crashed: dict[str, str] = {}
        status = "failed"
        token = RUN_ID.set(run_id) if run_id is not None else None
        try:
            install = not logging.getLogger().handlers
            process = CrawlerProcess(backfill_scrapy_settings(settings, install_log_handler=install))
            per_source = tuple(m for m in args.methods if METHODS[m].per_source)
            sourceless = tuple(m for m in args.methods if not METHODS[m].per_source)
            plan: list[tuple[SourceConfig, tuple[str, ...], bool]] = [(s, per_source, False) for s in sources
                                                                      if per_source]
            if sourceless:
                plan.append((_sourceless_source(sourceless), sourceless, True))
            for source, methods, is_sourceless in plan:
                crawler = process.create_crawler(BackfillSpider)
                for name, value in ((SOURCE_SETTING, source), (CONTEXT_SETTING, context),
                                    (BACKFILL_SETTING, backfill), (METHODS_SETTING, methods),
                                    ("DWATCH_BACKFILL_SOURCELESS", is_sourceless)):
                    crawler.settings.set(name, value, priority="cmdline")
                deferred = process.crawl(crawler)
                deferred.addErrback(functools.partial(_crawl_crashed, crashed, source.id))
                crawlers[source.id] = crawler
            process.start()
            status = _status(crawlers, crashed)
        finally:
            tally.close()
            first_errors = {name: str(_stats_of(c).get(runstats.FIRST_ERROR)) for name, c in crawlers.items()
                            if _stats_of(c).get(runstats.FIRST_ERROR)}
            first_errors.update(crashed)
            if job is not None and run_id is not None:
                unfinished = any(_stats_of(c).get(DISCOVERY_ERRORS) for c in crawlers.values())
                job_status = status if status in ("failed", "interrupted") else (
                    "failed" if unfinished or crashed else "done")
                with factory() as session:
                    run_stats = _per_source(tally, first_errors)
                    queue.finish_run(session, run_id, per_source=run_stats, status=status)
                    state.finish_job(session, job.id, job_status)
                if job_status != "done":
                    logger.warning("backfill job %s left %s: run the same command again to continue it",
                                   job.id, job_status)
            archive.close()
            if token is not None:
                RUN_ID.reset(token)
    finally:
        engine.dispose()
    return BackfillSummary(
        status=status, since=args.since, until=args.until, sources=args.sources, methods=args.methods,
        plan=args.plan, run_id=run_id, job_id=job.id if job else None, resumed=bool(job and job.resumed),
        rows=tuple(tally.rows()), first_errors=first_errors,
    )
