"""Per-source counters kept in each crawler's Scrapy stats, and their run-summary form.

One crawler crawls one source, so a crawler's stats are that source's counts. The keys
below are the ones `run_crawl` turns into a `SourceRunStats` row of the run record.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from scrapy.statscollectors import StatsCollector

from store.records import SourceRunStats

logger = logging.getLogger(__name__)

PREFIX = "dwatch/"
DISCOVERED = PREFIX + "discovered"          # distinct article URLs found by the spider
FETCHED = PREFIX + "fetched"                # article responses received (any status)
ALREADY_SEEN = PREFIX + "already_seen"      # skipped: canonical URL already stored
EXTRACTED = PREFIX + "extracted"            # stored with an extracted article
FLAGGED = PREFIX + "flagged"                # stored and flagged by the rules
ERRORS = PREFIX + "errors"                  # source errors, failed articles, dropped items
FIRST_ERROR = PREFIX + "first_error"
SOURCE_OK = PREFIX + "source_documents_ok"  # feeds / sitemaps / listing pages read fine
DUPLICATE_IN_RUN = PREFIX + "duplicate_in_run"
OVER_LIMIT = PREFIX + "over_limit"
DUPLICATES = PREFIX + "verbatim_duplicates"
STORED = PREFIX + "stored"
FILTERED = PREFIX + "filtered_links"        # links outside allow/deny patterns or the site
EMPTY_SOURCE_DOCUMENTS = PREFIX + "empty_source_documents"   # valid feeds/sitemaps with no entry
NOT_DUE = PREFIX + "not_due"                # feeds/sitemaps skipped: polled recently (adaptive interval)
NOT_MODIFIED = PREFIX + "not_modified"      # feeds/sitemaps answered 304 Not Modified: not parsed
UNCHANGED_BODY = PREFIX + "unchanged_body"  # feeds/sitemaps answered 200 with the last body: not parsed


SOURCE_ID = PREFIX + "source_id"          # set when the spider opens: error log lines carry it


def skipped_key(reason: str) -> str:
    return f"{PREFIX}skipped/{reason}"


def failed_key(reason: str) -> str:
    return f"{PREFIX}failed/{reason}"


def record_error(stats: StatsCollector, message: str, *, level: int = logging.WARNING) -> None:
    """Count one error of this source; the first one is kept verbatim for the run summary.

    Source errors log at WARNING; one article's failure (`level=logging.INFO`) is only counted.
    """
    stats.inc_value(ERRORS)
    if stats.get_value(FIRST_ERROR) is None:
        stats.set_value(FIRST_ERROR, message)
    logger.log(level, "%s", message, extra={"source_id": stats.get_value(SOURCE_ID)})


def counters(stats: Mapping[str, Any]) -> dict[str, int]:
    """Every numeric dwatch/* counter of one crawler, without the prefix (for the run summary)."""
    return {
        key.removeprefix(PREFIX): int(value)
        for key, value in sorted(stats.items())
        if key.startswith(PREFIX) and isinstance(value, int) and not isinstance(value, bool)
    }


def source_run_stats(stats: Mapping[str, Any]) -> SourceRunStats:
    """The run-record row of one crawler's stats."""
    first = stats.get(FIRST_ERROR)
    return SourceRunStats(
        discovered=int(stats.get(DISCOVERED, 0)),
        fetched=int(stats.get(FETCHED, 0)),
        already_seen=int(stats.get(ALREADY_SEEN, 0)),
        extracted=int(stats.get(EXTRACTED, 0)),
        flagged=int(stats.get(FLAGGED, 0)),
        errors=int(stats.get(ERRORS, 0)),
        first_error=str(first) if first is not None else None,
    )
