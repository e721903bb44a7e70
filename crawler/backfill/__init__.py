"""`dwatch backfill`: discover and fetch what the sources published in a date range.

    summary = run_backfill(settings, BackfillArgs(since, until, sources=(), methods=(), warcs=(), plan=False))

Methods (crawler/backfill/methods.py): sitemap, archive, wayback, ccnews, gdelt. The articles go
through the daily crawl's extraction, filter, dedup and provenance (channel "backfill", the
method in ``Provenance.method``); the job's state (store/backfill.py) makes it resumable.
"""

from __future__ import annotations

from crawler.backfill.methods import DEFAULT_METHODS, METHODS, BackfillMethod
from crawler.backfill.progress import Progress, Tally
from crawler.backfill.runner import BackfillArgs, BackfillSummary, resolve_args, run_backfill
from crawler.backfill.spider import BackfillContext, BackfillSpider, DateWindow

__all__ = [
    "DEFAULT_METHODS",
    "METHODS",
    "BackfillArgs",
    "BackfillContext",
    "BackfillMethod",
    "BackfillSpider",
    "BackfillSummary",
    "DateWindow",
    "Progress",
    "Tally",
    "resolve_args",
    "run_backfill",
]
