"""The base spider: one source, its source documents and the article requests they lead to.

Spiders only discover and fetch. Subclasses read their source documents (feeds, sitemaps,
listing pages) with `extract/` parsers and call `article_request` for each article link;
this class turns article responses, 4xx/5xx pages and download failures into
`FetchedPage` items, and failures of source documents into counted source errors.

Feeds and sitemaps are polled (`poll_request`): conditional requests, skipped when not due,
and an unchanged answer (`unchanged`: 304, or the body hash of the last poll) is not parsed.
The poll state lives in the store (crawler/polling.py); without a run context (a spider
built on its own, e.g. in unit tests) every document is fetched and parsed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar

import scrapy
from scrapy import Spider, signals
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler import runstats
from crawler.context import context_from, source_from
from crawler.errors import RefusedUrl, SkippedRequest
from crawler.fingerprint import canonical_or_none
from crawler.items import Discovery, FetchedPage
from crawler.polling import POLL_META, FeedPoller, polled_url
from crawler.settings import ARTICLE_ERROR_STATUSES
from extract import same_site

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

    from config import SourceConfig
    from store.feed_state import DocumentKind
    from store.records import Channel

logger = logging.getLogger(__name__)

__all__ = ["SourceSpider", "describe_failure", "status_text"]


def status_text(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def describe_failure(failure: Failure) -> str:
    """One line for a failed request: the exception's type and message."""
    exc = failure.value
    if isinstance(exc, HttpError):
        return status_text(exc.response.status)
    message = str(exc).strip() or failure.getErrorMessage()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _header_pairs(headers: Any) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for key, values in headers.items():
        name = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        for value in values:
            pairs.append((name, value.decode("latin-1") if isinstance(value, bytes) else str(value)))
    return tuple(pairs)


def _requested_url(response: Response) -> str:
    request = response.request
    if request is None:
        return response.url
    chain = request.meta.get("redirect_urls") or [request.url]
    return str(chain[0])


class SourceSpider(scrapy.Spider):
    """Crawls one configured source (``DWATCH_SOURCE`` in the crawler settings)."""

    channel: ClassVar[Channel]
    source_label: ClassVar[str] = "source"         # how source documents are named in errors
    same_site_by_default: ClassVar[bool] = False   # article links must be on the source's site

    def __init__(self, source: SourceConfig, max_articles: int, **kwargs: Any) -> None:
        super().__init__(name=source.id, **kwargs)
        self.source = source
        self.max_articles = source.max_articles or max_articles
        self._allow = [re.compile(p) for p in source.allow_patterns]
        self._deny = [re.compile(p) for p in source.deny_patterns]
        self._discovered: set[str] = set()
        self.poller: FeedPoller | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        kwargs.setdefault("source", source_from(crawler.settings))
        kwargs.setdefault("max_articles", crawler.settings.getint("DWATCH_MAX_ARTICLES", 200))
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._record_source_id, signal=signals.spider_opened)
        context = context_from(crawler.settings)
        if context is not None:
            spider.poller = FeedPoller(
                context.session_factory,
                spider.source.id,
                min_minutes=context.crawl.min_poll_minutes,
                max_minutes=context.crawl.max_poll_minutes,
                force=context.crawl.force_poll,
            )
        return spider

    @property
    def stats(self) -> StatsCollector:
        return self.crawler.stats

    def _record_source_id(self, spider: Spider) -> None:
        """The source id in the stats, so runstats.record_error's log lines carry it."""
        self.stats.set_value(runstats.SOURCE_ID, self.source.id)

    @property
    def log_extra(self) -> dict[str, str]:
        """``extra=`` for log calls: JSON log lines carry this spider's source id."""
        return {"source_id": self.source.id}

    # ------------------------------------------------------------ source documents

    def source_request(
        self, url: str, callback: Callable[..., Any], **cb_kwargs: Any
    ) -> scrapy.Request:
        """A request for a feed, sitemap, robots.txt or listing page of this source."""
        return scrapy.Request(
            url,
            callback=callback,
            errback=self.source_failed,
            cb_kwargs=cb_kwargs,
            meta={"dwatch_role": "source"},
        )

    def poll_request(
        self, url: str, callback: Callable[..., Any], **cb_kwargs: Any
    ) -> scrapy.Request | None:
        """A conditional request for a feed or sitemap; None when it is not due (logged, counted)."""
        request = self.source_request(url, callback, **cb_kwargs)
        if self.poller is None:
            return request
        reason = self.poller.not_due_reason(url)
        if reason is not None:
            self.stats.inc_value(runstats.NOT_DUE)
            logger.info("%s: %s %s skipped: %s", self.name, self.source_label, url, reason,
                        extra=self.log_extra)
            return None
        for name, value in self.poller.conditional_headers(url).items():
            request.headers[name] = value
        request.meta[POLL_META] = url
        request.meta["handle_httpstatus_list"] = [304]   # HttpErrorMiddleware passes 304 through
        return request

    def unchanged(self, response: Response) -> bool:
        """True when a polled document did not change (304 or same body hash): do not parse it.

        The poll is recorded (its interval grows), counted and logged with its next poll time.
        """
        url = polled_url(response)
        if self.poller is None or url is None:
            return False
        state = self.poller.state(url)
        outcome = self.poller.classify(response)
        if outcome == "changed" or (state is not None and state.kind == "sitemapindex"):
            return False
        if state is None:
            self.source_error(url, "HTTP 304 Not Modified to a request without validators")
            return True
        row = self.poller.record(response, outcome)
        self.stats.inc_value(runstats.NOT_MODIFIED if outcome == "not_modified" else runstats.UNCHANGED_BODY)
        how = "304 Not Modified" if outcome == "not_modified" else "same body as the last poll"
        logger.info("%s: %s %s unchanged (%s), not parsed; next poll after %s",
                    self.name, self.source_label, url, how, row.next_poll_at.isoformat(timespec="seconds"),
                    extra=self.log_extra)
        return True

    def source_error(self, url: str, reason: str) -> None:
        runstats.record_error(self.stats, f"{self.source_label} {url}: {reason}")

    def source_ok(self, response: Response | None = None, kind: DocumentKind | None = None) -> None:
        """Count a source document read fine; a polled one (`response`, `kind`) records its poll.

        A changed document is recorded when the crawl has finished (`closed`).
        """
        self.stats.inc_value(runstats.SOURCE_OK)
        if response is None or kind is None or self.poller is None or polled_url(response) is None:
            return
        outcome = self.poller.classify(response)
        if outcome == "changed":
            self.poller.defer(response, kind)
        else:
            self.poller.record(response, outcome, kind)

    def closed(self, reason: str) -> None:
        """Store the polls of changed feeds/sitemaps once their articles were all requested."""
        if self.poller is None:
            return
        complete = not self.stats.get_value(runstats.OVER_LIMIT)
        self.poller.flush(finished=reason == "finished", complete=complete)

    def source_failed(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        exc = failure.value
        if isinstance(exc, HttpError):
            reason = status_text(exc.response.status)
        elif isinstance(exc, RefusedUrl):
            reason = str(exc)
        elif isinstance(exc, IgnoreRequest):
            reason = f"not fetched: {exc}"
        else:
            reason = f"cannot fetch: {describe_failure(failure)}"
        self.source_error(url, reason)

    # ------------------------------------------------------------ article links

    def accepts(self, url: str, page_url: str) -> bool:
        """Allow/deny patterns; with no allow pattern, listings keep to their own site."""
        if any(p.search(url) for p in self._deny):
            return False
        if self._allow:
            return any(p.search(url) for p in self._allow)
        return same_site(url, page_url) if self.same_site_by_default else True

    def article_request(
        self,
        url: str,
        *,
        discovered_from: str,
        entry_id: str | None = None,
        entry_title: str | None = None,
        entry_published: datetime | None = None,
    ) -> scrapy.Request | None:
        """The request for one discovered article link, or None (filtered or seen in this spider)."""
        canonical = canonical_or_none(url)
        if canonical is None:
            self.stats.inc_value(runstats.FILTERED)
            logger.debug("%s: ignoring link %r (not an absolute http(s) URL)", self.name, url,
                         extra=self.log_extra)
            return None
        if not self.accepts(url, discovered_from):
            self.stats.inc_value(runstats.FILTERED)
            return None
        if canonical in self._discovered:
            return None
        self._discovered.add(canonical)
        self.stats.inc_value(runstats.DISCOVERED)
        discovery = Discovery(
            source_id=self.source.id,
            channel=self.channel,
            discovered_from=discovered_from,
            entry_id=entry_id,
            entry_title=entry_title,
            entry_published=entry_published,
        )
        return scrapy.Request(
            url,
            callback=self.parse_article,
            errback=self.article_failed,
            cb_kwargs={"discovery": discovery},
            meta={
                "dwatch_role": "article",
                "handle_httpstatus_list": ARTICLE_ERROR_STATUSES,
            },
        )

    # ------------------------------------------------------------ article outcomes

    def article_error(self, message: str) -> None:
        runstats.record_error(self.stats, message, level=logging.INFO)

    def parse_article(self, response: Response, discovery: Discovery) -> FetchedPage:
        self.stats.inc_value(runstats.FETCHED)
        page = self._page(response, discovery)
        if page.failed:
            self.article_error(f"article {response.url}: {page.error_detail}")
        return page

    def article_failed(self, failure: Failure) -> FetchedPage | None:
        exc = failure.value
        if isinstance(exc, SkippedRequest):
            return None   # counted by the middleware that skipped it
        request = getattr(failure, "request", None)
        if isinstance(exc, HttpError):
            response = exc.response
            self.stats.inc_value(runstats.FETCHED)
            # a status the callback does not take (e.g. a 3xx without Location): still an http_error
            discovery = response.request.cb_kwargs["discovery"]  # type: ignore[union-attr]
            page = self._page(response, discovery, failed=True)
            self.article_error(f"article {response.url}: {page.error_detail}")
            return page
        if request is None:
            self.article_error(f"article request failed: {describe_failure(failure)}")
            return None
        detail = describe_failure(failure)
        if isinstance(exc, IgnoreRequest) and not isinstance(exc, RefusedUrl):
            # e.g. forbidden by robots.txt: not fetched, nothing to store, retried next run
            self.article_error(f"article {request.url}: not fetched: {exc}")
            return None
        self.article_error(f"article {request.url}: {detail}")
        chain = request.meta.get("redirect_urls") or [request.url]
        return FetchedPage(
            discovery=request.cb_kwargs["discovery"],
            requested_url=str(chain[0]),
            final_url=request.url,
            status=None,
            headers=(),
            body=b"",
            fetched_at=datetime.now(UTC),
            request_headers=_header_pairs(request.headers),
            error_reason="fetch_error",
            error_detail=detail,
        )

    def _page(self, response: Response, discovery: Discovery, *, failed: bool = False) -> FetchedPage:
        failed = failed or response.status >= 400
        request = response.request
        return FetchedPage(
            discovery=discovery,
            requested_url=_requested_url(response),
            final_url=response.url,
            status=response.status,
            headers=_header_pairs(response.headers),
            body=response.body,
            fetched_at=datetime.now(UTC),
            request_headers=_header_pairs(request.headers) if request is not None else (),
            error_reason="http_error" if failed else None,
            error_detail=status_text(response.status) if failed else None,
        )
