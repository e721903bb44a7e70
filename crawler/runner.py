"""`run_crawl`: one crawl of the configured sources, in ONE Scrapy `CrawlerProcess`.

Each enabled source gets its own crawler (the spider class by ``source.kind``), all in the
same process and reactor, sharing the store, the WARC archive, the loaded rules and the run
id. The call blocks until every crawler is done. **Call it once per process**: Twisted's
reactor cannot be restarted, so a second call raises `CrawlError`; the scheduler, the CLI
and the tests run each crawl in a fresh process.

    python -m crawler.runner --config DIR [--source ID ...]   # prints the summary as JSON
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.crawler import Crawler, CrawlerProcess

from config.logs import RUN_ID, configure_logging
from crawler import runstats
from crawler.context import CONTEXT_SETTING, SOURCE_SETTING, RunContext
from crawler.errors import CrawlError
from crawler.settings import scrapy_settings
from crawler.spiders import SPIDERS_BY_KIND
from store.records import SourceRunStats

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session
    from twisted.python.failure import Failure

    from config import Settings, SourceConfig
    from extract import RuleSet

logger = logging.getLogger(__name__)

__all__ = ["RunSummary", "collect_stats", "load_ruleset", "main", "run_crawl", "select_sources",
           "skip_unhealthy"]


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    per_source: dict[str, SourceRunStats]
    status: str            # "ok" | "partial" (some errors) | "failed" (nothing crawled) | "interrupted"
    #                        | "skipped" (every selected source backed off or disabled)
    rules_version: str
    counters: dict[str, dict[str, int]] = field(default_factory=dict)   # per source: dwatch/* stats

    @property
    def ok(self) -> bool:
        """False only when nothing could be crawled at all (the CLI then exits non-zero)."""
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "ok": self.ok,
            "rules_version": self.rules_version,
            "per_source": {sid: asdict(st) for sid, st in self.per_source.items()},
            "counters": self.counters,
        }


def select_sources(settings: Settings, source_ids: Sequence[str] | None) -> list[SourceConfig]:
    """The sources to crawl: the given ids (even disabled ones), or every enabled source."""
    if not source_ids:
        chosen = settings.enabled_sources()
        if not chosen:
            raise CrawlError(
                f"no enabled source in {settings.config_dir / 'sources.yaml'}; "
                "add one or set 'enabled: true'"
            )
        return chosen
    known = {s.id: s for s in settings.sources}
    unknown = [sid for sid in source_ids if sid not in known]
    if unknown:
        raise CrawlError(
            f"unknown source id(s): {', '.join(unknown)}; known ids: {', '.join(sorted(known)) or '(none)'}"
        )
    return [known[sid] for sid in dict.fromkeys(source_ids)]


def load_ruleset(settings: Settings) -> RuleSet:
    from extract import RulesError, load_rules

    try:
        return load_rules(settings.rules_path)
    except RulesError as exc:
        raise CrawlError(f"cannot load the rules: {exc}") from exc
    except OSError as exc:
        raise CrawlError(f"cannot read the rules file {settings.rules_path}: {exc}") from exc


def open_store(settings: Settings) -> Engine:
    """An engine on the migrated store; a store that cannot be reached is a CrawlError."""
    from store import StoreError, make_engine, upgrade_database

    try:
        upgrade_database(settings.database_url)
        return make_engine(settings.database_url)
    except StoreError as exc:
        raise CrawlError(f"store {settings.masked()['database_url']}: {exc}") from exc


def _reactor_already_ran() -> bool:
    reactor = sys.modules.get("twisted.internet.reactor")
    return bool(getattr(reactor, "_startedBefore", False))


def _crawl_crashed(stats_by_source: dict[str, str], source_id: str, failure: Failure) -> None:
    logger.error("crawler of source %s crashed: %s", source_id, failure.getTraceback())
    stats_by_source[source_id] = f"crawler crashed: {failure.getErrorMessage()}"


def _stats_of(crawler: Crawler) -> dict[str, Any]:
    """The crawler's stats; empty when it crashed before its stats collector existed."""
    collector = crawler._stats  # the public attribute raises RuntimeError until the crawl starts
    return dict(collector.get_stats()) if collector is not None else {}


def collect_stats(
    crawlers: dict[str, Crawler], crashed: dict[str, str]
) -> tuple[dict[str, SourceRunStats], dict[str, dict[str, int]]]:
    """Per source: the run record's counters and the dwatch/* stats; a crash counts as an error."""
    per_source: dict[str, SourceRunStats] = {}
    counters: dict[str, dict[str, int]] = {}
    for source_id, crawler in crawlers.items():
        stats = _stats_of(crawler)
        per_source[source_id] = runstats.source_run_stats(stats)
        counters[source_id] = runstats.counters(stats)
        if source_id in crashed:
            row = per_source[source_id]
            row.errors += 1
            row.first_error = row.first_error or crashed[source_id]
    return per_source, counters


def _run_status(per_source: dict[str, SourceRunStats]) -> str:
    worked = [st for st in per_source.values() if st.fetched > 0 or st.errors == 0]
    if not worked:
        return "failed"
    return "ok" if all(st.errors == 0 for st in per_source.values()) else "partial"


def skip_unhealthy(session: Session, sources: list[SourceConfig]) -> list[SourceConfig]:
    """The sources not backed off or disabled after failed runs (store.source_health); logs the rest."""
    from store.source_health import source_health

    blocked = {h.source_id: h for h in source_health(session, [s.id for s in sources]) if h.blocked}
    for source_id, health in blocked.items():
        logger.warning("skipping source %s: %s (last error: %s); `dwatch sources` shows why, "
                       "`dwatch sources --enable %s` re-enables it", source_id, health.blocked,
                       health.last_error or "-", source_id, extra={"source_id": source_id})
    return [s for s in sources if s.id not in blocked]


def run_crawl(
    settings: Settings, source_ids: Sequence[str] | None = None, *, run_kind: str = "crawl"
) -> RunSummary:
    """Crawl the sources once into the store; blocks; once per process (see the module doc)."""
    from store import WarcArchive, make_session_factory, queue

    if _reactor_already_ran():
        raise CrawlError(
            "run_crawl can run only once per process (Twisted's reactor cannot restart); "
            "start each crawl in a new process"
        )
    sources = select_sources(settings, source_ids)
    ruleset = load_ruleset(settings)
    engine = open_store(settings)
    try:
        session_factory = make_session_factory(engine)
        with session_factory() as session:
            sources = skip_unhealthy(session, sources)
            run_id = queue.start_run(session, kind=run_kind, sources=[s.id for s in sources])
        if not sources:
            with session_factory() as session:
                queue.finish_run(session, run_id, per_source={}, status="skipped")
            logger.warning("run %s: every selected source is backed off or disabled; nothing crawled",
                           run_id, extra={"run_id": run_id})
            return RunSummary(run_id=run_id, per_source={}, status="skipped", rules_version=ruleset.version)
        context = RunContext(
            run_id=run_id,
            session_factory=session_factory,
            archive=WarcArchive(settings.archive_dir),
            ruleset=ruleset,
            crawl=settings.crawl,
        )
        crashed: dict[str, str] = {}
        crawlers: dict[str, Crawler] = {}
        status = "failed"
        per_source: dict[str, SourceRunStats] = {}
        counters: dict[str, dict[str, int]] = {}
        run_token = RUN_ID.set(run_id)     # every log line of this run carries its id (config.logs)
        try:
            logger.info("run %s: crawling %s", run_id, ", ".join(s.id for s in sources))
            # Scrapy's own log handler only when the caller configured no logging
            install = not logging.getLogger().handlers
            process = CrawlerProcess(scrapy_settings(settings.crawl, install_log_handler=install))
            for source in sources:
                crawler = process.create_crawler(SPIDERS_BY_KIND[source.kind])
                crawler.settings.set(SOURCE_SETTING, source, priority="cmdline")
                crawler.settings.set(CONTEXT_SETTING, context, priority="cmdline")
                deferred = process.crawl(crawler)
                deferred.addErrback(functools.partial(_crawl_crashed, crashed, source.id))
                crawlers[source.id] = crawler
            process.start()
            per_source, counters = collect_stats(crawlers, crashed)
            status = _run_status(per_source)
            stopped = [sid for sid, c in crawlers.items() if _stats_of(c).get("finish_reason") == "shutdown"]
            if stopped and status != "failed":
                status = "interrupted"      # SIGTERM/SIGINT: what was fetched is stored, the rest next run
                logger.warning("run %s interrupted by a signal while crawling %s", run_id, ", ".join(stopped))
        finally:
            with session_factory() as session:
                queue.finish_run(session, run_id, per_source=per_source, status=status)
            close = getattr(context.archive, "close", None)
            if callable(close):
                close()
            logger.info("run %s finished: %s", run_id, status)
            RUN_ID.reset(run_token)
    finally:
        engine.dispose()
    return RunSummary(
        run_id=run_id, per_source=per_source, status=status, rules_version=ruleset.version, counters=counters
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one crawl (or rescore) and print its summary as JSON; exit 1 when nothing was crawled."""
    from config import ConfigError, load_settings

    parser = argparse.ArgumentParser(prog="python -m crawler.runner", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=None, help="config directory")
    parser.add_argument("--source", action="append", default=None, metavar="ID", help="only this source")
    parser.add_argument("--rescore", action="store_true", help="re-analyse the archive instead of crawling")
    args = parser.parse_args(argv)
    configure_logging(os.environ.get("DWATCH_LOG_FORMAT", "text"), logging.WARNING)
    try:
        settings = load_settings(args.config)
        configure_logging(settings.log_format, logging.WARNING)
        if args.rescore:
            from crawler.rescore import rescore

            print(json.dumps(rescore(settings).to_dict()))
            return 0
        summary = run_crawl(settings, args.source)
    except (ConfigError, CrawlError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary.to_dict()))
    return 0 if summary.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
