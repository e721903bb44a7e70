"""The registry of backfill discovery methods: `dwatch backfill --via NAME` runs `METHODS[NAME]`.

A method is a class built with the spider it runs in; `start()` yields the first requests
(discovery requests, see `BackfillSpider.discovery_request`) or pages that need no fetch.
``per_source`` methods run once per selected source (in that source's spider); the others
(gdelt, ccnews) run once in a spider of their own, their articles attributed to sources by host.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar, Protocol

import scrapy

from crawler.backfill.archive import ArchiveMethod
from crawler.backfill.ccnews import CCNewsMethod
from crawler.backfill.gdelt import GdeltMethod
from crawler.backfill.sitemap import SitemapMethod
from crawler.backfill.wayback import WaybackMethod
from crawler.items import FetchedPage

if TYPE_CHECKING:
    from crawler.backfill.spider import BackfillSpider

__all__ = ["DEFAULT_METHODS", "METHODS", "BackfillMethod"]


class BackfillMethod(Protocol):
    name: ClassVar[str]
    per_source: ClassVar[bool]

    def __init__(self, spider: BackfillSpider) -> None: ...

    def start(self) -> Iterator[scrapy.Request | FetchedPage]: ...


# one line per method; `--via` accepts these names
METHODS: dict[str, type[BackfillMethod]] = {
    "sitemap": SitemapMethod,
    "archive": ArchiveMethod,
    "gdelt": GdeltMethod,
    "ccnews": CCNewsMethod,
    "wayback": WaybackMethod,
}

# what runs without --via (when registered): ccnews joins with --warc / backfill.ccnews_files,
# gdelt with backfill.gdelt_queries (crawler/backfill/runner.py decides)
DEFAULT_METHODS = ("sitemap", "archive", "wayback")
