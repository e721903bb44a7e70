"""Exceptions of the crawler package.

`CrawlError` is what callers of `run_crawl` / `rescore` catch (the CLI turns it into a
`click.ClickException`). The `IgnoreRequest` subclasses are raised by the downloader
middlewares to drop an article request on purpose; each carries a message that says why,
and the article errback tells them apart from real fetch failures.
"""

from __future__ import annotations

from scrapy.exceptions import IgnoreRequest

__all__ = [
    "AlreadySeen",
    "ArticleLimitReached",
    "CrawlError",
    "DuplicateInRun",
    "RefusedUrl",
    "SkippedRequest",
]


class CrawlError(Exception):
    """A crawl or rescore cannot start: unknown source ids, bad rules file, unusable store.

    The message names what is wrong and how to fix it.
    """


class SkippedRequest(IgnoreRequest):
    """An article request dropped on purpose before download (counted, not an error)."""


class AlreadySeen(SkippedRequest):
    """The article's canonical URL is already in the store (incremental crawling)."""


class DuplicateInRun(SkippedRequest):
    """Another source of the same run already requested this canonical URL."""


class ArticleLimitReached(SkippedRequest):
    """The source reached its max_articles cap of new articles for this run."""


class RefusedUrl(IgnoreRequest):
    """A URL refused for safety: not http(s), or a private/loopback address (SSRF guard).

    Unlike `SkippedRequest` this is a failure: it is recorded with its reason.
    """
