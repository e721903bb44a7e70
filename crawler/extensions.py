"""Extensions: unexpected errors inside a crawl are counted as the source's errors.

An exception in a spider callback (``spider_error``) or a pipeline that is not a
``DropItem`` (``item_error``) is logged by Scrapy with its traceback; `ErrorCounter` also
counts it in the source's stats so the run summary shows it, and the crawl goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy import signals

from crawler import runstats

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from twisted.python.failure import Failure

__all__ = ["ErrorCounter"]


class ErrorCounter:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        extension = cls(crawler)
        crawler.signals.connect(extension.spider_error, signal=signals.spider_error)
        crawler.signals.connect(extension.item_error, signal=signals.item_error)
        return extension

    def spider_error(self, failure: Failure, response: Any, spider: Any) -> None:
        url = getattr(response, "url", "?")
        runstats.record_error(self.crawler.stats, f"internal error reading {url}: {_describe(failure)}")

    def item_error(self, item: Any, response: Any, spider: Any, failure: Failure) -> None:
        url = getattr(item, "final_url", getattr(response, "url", "?"))
        runstats.record_error(
            self.crawler.stats, f"internal error processing {url} in the pipelines: {_describe(failure)}"
        )


def _describe(failure: Failure) -> str:
    return f"{type(failure.value).__name__}: {failure.getErrorMessage()}"
