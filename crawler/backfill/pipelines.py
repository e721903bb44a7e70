"""The store step of a backfill: the window decides, then the page is stored like any other.

`BackfillStorePipeline` takes the place of `crawler.pipelines.StorePipeline` in backfill
crawlers (after archive -> analyse). A page whose own date (else the listing's date) is outside
the window is stored as ``skipped`` / ``out_of_range`` with its title, text, date and verdict,
but never queued (`outside_window`). Each page then settles its row of the job's
``backfill_articles`` (fetched, out_of_range or failed) and the backfill's counters.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured

from crawler import runstats
from crawler.backfill.spider import BackfillContext, DateWindow, backfill_context_from
from crawler.context import RunContext, context_from
from crawler.fingerprint import canonical_or_none
from crawler.items import FetchedPage
from crawler.pipelines import StorePipeline
from crawler.recording import page_record, provenance_of
from store import PageRecord, queue
from store import backfill as state
from store.errors import StoreError

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

__all__ = ["BackfillStorePipeline", "outside_window"]


def outside_window(record: PageRecord, window: DateWindow, listed: datetime | None) -> PageRecord:
    """`record` as skipped/out_of_range when its date (the page's, else the listing's) is outside.

    Only extracted pages are judged; their analysis is kept (a flagged verdict stays in
    ``verdict``) but the page is not flagged, so it is never queued.
    """
    when = record.published or listed
    if record.outcome != "extracted" or when is None or window.contains(when) is not False:
        return record
    source = "published" if record.published is not None else "listed"
    return replace(
        record,
        outcome="skipped",
        reason="out_of_range",
        detail=f"{source} {window.day(when).isoformat()}, outside {window}",
        flagged=False,
        narratives=(),
    )


class BackfillStorePipeline(StorePipeline):
    """One transaction per page (record_page), out-of-range pages recorded but not queued."""

    def __init__(self, context: RunContext, stats: StatsCollector, backfill: BackfillContext) -> None:
        super().__init__(context, stats)
        self.backfill = backfill

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        context = context_from(crawler.settings)
        backfill = backfill_context_from(crawler.settings)
        if context is None or backfill is None:
            raise NotConfigured("no DWATCH_CONTEXT / DWATCH_BACKFILL (only run_backfill sets them)")
        return cls(context, crawler.stats, backfill)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, FetchedPage):
            return item
        context = self.context
        provenance = provenance_of(item, rules_version=context.ruleset.version, run_id=context.run_id)
        failure = (item.error_reason, item.error_detail) if item.error_reason is not None else None
        record = page_record(provenance, item.analysis, failure=failure)
        record = outside_window(record, self.backfill.window, item.discovery.entry_published)
        try:
            with self.context.session_factory() as session:
                outcome = queue.record_page(session, record)
        except StoreError as exc:
            raise self.drop(item, "store", exc) from exc
        self._count(record, outcome.candidate_id)
        self._settle(item, record)
        return item

    def _count(self, record: PageRecord, candidate_id: int | None) -> None:
        source_id, method = record.provenance.source_id, record.provenance.method or "?"
        tally = self.backfill.tally
        self.stats.inc_value(runstats.STORED)
        tally.add(source_id, method, "fetched")
        if record.outcome == "failed":
            self.stats.inc_value(runstats.failed_key(record.reason or "unknown"))
            tally.add(source_id, method, "errors")
        elif record.reason == "out_of_range":
            self.stats.inc_value(runstats.skipped_key("out_of_range"))
            tally.add(source_id, method, "out_of_range")
        if record.outcome == "extracted":
            self.stats.inc_value(runstats.EXTRACTED)
            tally.add(source_id, method, "extracted")
        if record.flagged:
            self.stats.inc_value(runstats.FLAGGED)
            if candidate_id is not None:
                tally.add(source_id, method, "flagged")

    def _settle(self, item: FetchedPage, record: PageRecord) -> None:
        """The article's row in backfill_articles: fetched, out_of_range or failed."""
        job_id = self.backfill.job_id
        if job_id is None:
            return
        status = "failed" if record.outcome == "failed" else (
            "out_of_range" if record.reason == "out_of_range" else "fetched")
        provenance = record.provenance
        # the key the spider recorded it under: the URL it asked for (before any redirect)
        asked = canonical_or_none(item.discovery.url or item.requested_url) or provenance.canonical_url
        row = state.BackfillArticle(
            canonical_url=asked, url=item.requested_url, source_id=provenance.source_id,
            method=provenance.method or "?", discovered_from=provenance.discovered_from,
            entry_id=provenance.entry_id, entry_title=provenance.entry_title,
            entry_published=provenance.entry_published, status=status,
        )
        try:
            with self.context.session_factory() as session:
                if not state.add_articles(session, job_id, [row]):   # else: a page that needed no fetch
                    state.mark_article(session, job_id, asked, status)
        except StoreError as exc:
            logger.warning("backfill job %s: could not mark %s %s: %s", job_id, provenance.canonical_url,
                           status, exc)
