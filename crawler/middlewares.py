"""Downloader middlewares: incremental crawling and the SSRF guard.

`IncrementalMiddleware` drops article requests whose canonical URL is already stored
(counted as already_seen), that another source of the run already requested, or that go
beyond the source's max_articles cap of new articles. `SafeUrlMiddleware` refuses URLs that
are not http(s) and, unless ``crawl.allow_private_addresses``, hosts that are or resolve to
private, loopback, link-local or otherwise non-public addresses. Both see redirected
requests too (a redirect re-enters the middleware chain), so a public feed cannot redirect
the crawler into the local network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.exceptions import NotConfigured

from crawler import runstats
from crawler.context import RunContext, context_from, source_from
from crawler.errors import AlreadySeen, ArticleLimitReached, DuplicateInRun, RefusedUrl
from crawler.fingerprint import canonical_or_none
from store import queue

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

__all__ = ["IncrementalMiddleware", "SafeUrlMiddleware", "non_public_reason"]


ADMITTED = "dwatch_admitted"


def is_article(request: Request) -> bool:
    return request.meta.get("dwatch_role") == "article"


class IncrementalMiddleware:
    """Skip known, duplicate and over-the-cap article requests before they are downloaded."""

    def __init__(self, context: RunContext, stats: StatsCollector, max_articles: int) -> None:
        self.context = context
        self.stats = stats
        self.max_articles = max_articles
        self.admitted = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        context = context_from(crawler.settings)
        if context is None:
            raise NotConfigured("no DWATCH_CONTEXT (only crawler.run_crawl sets up incremental crawling)")
        source = source_from(crawler.settings)
        cap = source.max_articles or context.crawl.max_articles_per_source
        return cls(context, crawler.stats, cap)

    def _known(self, canonical: str) -> bool:
        with self.context.session_factory() as session:
            return bool(queue.known_urls(session, [canonical]))

    def process_request(self, request: Request) -> None:
        if not is_article(request):
            return None
        canonical = canonical_or_none(request.url)
        if canonical is None:
            raise RefusedUrl(f"refused {request.url!r}: not an absolute http(s) URL")
        if request.meta.get(ADMITTED):
            # a retry or a redirect hop of a request admitted before: not counted again, but
            # a redirect to a page already stored needs no download
            if request.meta.get("redirect_urls") and self._known(canonical):
                self.stats.inc_value(runstats.ALREADY_SEEN)
                raise AlreadySeen(f"{canonical} (redirect target) is already stored")
            return None
        if self._known(canonical):
            self.stats.inc_value(runstats.ALREADY_SEEN)
            raise AlreadySeen(f"{canonical} is already stored")
        if canonical in self.context.claimed:
            self.stats.inc_value(runstats.DUPLICATE_IN_RUN)
            raise DuplicateInRun(f"{canonical} was already requested by another source in this run")
        if self.admitted >= self.max_articles:
            self.stats.inc_value(runstats.OVER_LIMIT)
            raise ArticleLimitReached(f"max_articles={self.max_articles} new articles reached")
        self.admitted += 1
        self.context.claimed.add(canonical)
        request.meta[ADMITTED] = True   # copied onto retries and redirects of this request
        return None


_NON_PUBLIC_CHECKS = (
    ("loopback", "is_loopback"),
    ("link-local", "is_link_local"),
    ("unspecified", "is_unspecified"),
    ("multicast", "is_multicast"),
    ("private", "is_private"),
    ("reserved", "is_reserved"),
)


def non_public_reason(address: str) -> str | None:
    """"loopback", "private", ... when `address` (an IP literal) is not a public address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for name, prop in _NON_PUBLIC_CHECKS:
        if getattr(ip, prop):
            return name
    return None


class SafeUrlMiddleware:
    """Refuse non-http(s) URLs and non-public hosts (unless crawl.allow_private_addresses)."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._verdicts: dict[str, str | None] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler.settings.getbool("DWATCH_ALLOW_PRIVATE_ADDRESSES"))

    async def process_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            raise RefusedUrl(f"refused {request.url!r}: only http and https URLs are fetched")
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise RefusedUrl(f"refused {request.url!r}: no host name")
        if self.allow_private:
            return None
        reason = await self._host_verdict(host)
        if reason is not None:
            raise RefusedUrl(
                f"refused {request.url}: {host} {reason} "
                "(set crawl.allow_private_addresses: true in settings.yaml to allow it)"
            )
        return None

    async def _host_verdict(self, host: str) -> str | None:
        if host in self._verdicts:
            return self._verdicts[host]
        kind = non_public_reason(host)
        verdict = f"is {_a(kind)} address" if kind is not None else None
        if verdict is None and (host == "localhost" or host.endswith(".localhost")):
            verdict = "is a loopback name"
        if verdict is None and not _is_ip_literal(host):
            verdict = await _resolved_verdict(host)
        self._verdicts[host] = verdict
        return verdict


def _a(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


async def _resolved_verdict(host: str) -> str | None:
    """Resolve `host` (in a thread, via asyncio); a phrase when any of its addresses is not public.

    A name that does not resolve is let through: the download then fails with its DNS error.
    """
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        logger.debug("cannot resolve %s for the address check: %s", host, exc)
        return None
    for info in infos:
        reason = non_public_reason(str(info[4][0]))
        if reason is not None:
            return f"resolves to {info[4][0]}, {_a(reason)} address"
    return None
