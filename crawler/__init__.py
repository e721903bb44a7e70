"""The Scrapy project: discover articles through feeds, sitemaps and listing pages; fetch them.

    summary = run_crawl(settings)            # once per process (Twisted's reactor cannot restart)
    summary = rescore(settings)              # re-analyse the archive after a rules change

Spiders only discover and fetch; `extract/` parses and scores; `store/` records. Items flow
through the pipelines archive -> analyse -> store (crawler/pipelines.py).
"""

from __future__ import annotations

from crawler.errors import CrawlError
from crawler.items import Discovery, FetchedPage
from crawler.rescore import RescoreSummary, rescore
from crawler.runner import RunSummary, run_crawl

__all__ = [
    "CrawlError",
    "Discovery",
    "FetchedPage",
    "RescoreSummary",
    "RunSummary",
    "rescore",
    "run_crawl",
]
