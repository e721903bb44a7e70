"""Item pipelines: archive the raw response -> analyse it -> store it (in that order).

Each reads the shared `RunContext` in ``from_crawler`` and raises `NotConfigured` without
one. A failure with one item becomes ``DropItem(reason)`` plus counted error; the crawl goes
on. The store writes one page in one transaction, so nothing is half-written.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import DropItem, NotConfigured

from crawler import runstats
from crawler.context import RunContext, context_from
from crawler.items import FetchedPage
from crawler.recording import page_record, provenance_of
from extract import analyse_page
from store import queue
from store.errors import StoreError

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

__all__ = ["AnalysePipeline", "ArchivePipeline", "StorePipeline"]


class _ContextPipeline:
    def __init__(self, context: RunContext, stats: StatsCollector) -> None:
        self.context = context
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        context = context_from(crawler.settings)
        if context is None:
            raise NotConfigured("no DWATCH_CONTEXT (pipelines run inside crawler.run_crawl)")
        return cls(context, crawler.stats)

    def drop(self, page: FetchedPage, stage: str, exc: Exception) -> DropItem:
        message = f"article {page.final_url}: {stage} failed: {exc}"
        self.stats.inc_value(f"{runstats.PREFIX}dropped/{stage}")
        runstats.record_error(self.stats, message)
        return DropItem(message)


class ArchivePipeline(_ContextPipeline):
    """Write every response (200 or not) to the WARC archive; sets ``page.archive``."""

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, FetchedPage) or item.status is None:
            return item
        try:
            item.archive = self.context.archive.write(item.fetch_record())
        except (StoreError, OSError) as exc:
            raise self.drop(item, "archive", exc) from exc
        return item


class AnalysePipeline(_ContextPipeline):
    """extract.analyse_page with the run's rules; sets ``page.analysis`` (not for failures)."""

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, FetchedPage) or item.failed:
            return item
        item.analysis = analyse_page(item.body, item.final_url, item.content_type, self.context.ruleset)
        if item.analysis.skip is not None:
            self.stats.inc_value(runstats.skipped_key(item.analysis.skip.reason))
        return item


class StorePipeline(_ContextPipeline):
    """One transaction per page: document, candidate + provenance when flagged, dedup links."""

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, FetchedPage):
            return item
        provenance = provenance_of(
            item, rules_version=self.context.ruleset.version, run_id=self.context.run_id
        )
        failure = (item.error_reason, item.error_detail) if item.error_reason is not None else None
        record = page_record(provenance, item.analysis, failure=failure)
        try:
            with self.context.session_factory() as session:
                outcome = queue.record_page(session, record)
        except StoreError as exc:
            raise self.drop(item, "store", exc) from exc
        self.stats.inc_value(runstats.STORED)
        if record.outcome == "failed":
            self.stats.inc_value(runstats.failed_key(record.reason or "unknown"))
        if record.outcome == "extracted":
            self.stats.inc_value(runstats.EXTRACTED)
        if record.flagged:
            self.stats.inc_value(runstats.FLAGGED)
        if outcome.duplicate_of is not None:
            self.stats.inc_value(runstats.DUPLICATES)
        return item
