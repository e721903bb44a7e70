"""`RetryAfterMiddleware`: back off when a server says "too many requests" (429) or "unavailable" (503).

Scrapy's own RetryMiddleware retries such answers at once, which a rate-limited server (the
Wayback Machine, GDELT) answers with another 429. This middleware takes those statuses over
(crawler/settings.py removes them from ``RETRY_HTTP_CODES``):

- With a ``Retry-After`` header, delta-seconds (``Retry-After: 120``) or an HTTP-date
  (``Retry-After: Wed, 21 Oct 2015 07:28:00 GMT``, counted from the response's ``Date``
  header when it has one, so a skewed server clock does not matter), the host is left alone
  that long; without one, for ``DWATCH_RETRY_BACKOFF`` seconds doubled on every further
  retry. Either wait is capped by ``DWATCH_RETRY_AFTER_MAX_WAIT``.
- The request is then retried, at most ``DWATCH_RETRY_AFTER_TIMES`` times; after that the
  429/503 response goes on to the spider, which records it as an error.
- Only that host waits: the retry and every other request to the same host wait in
  ``process_request`` (an asyncio/Twisted timer, never a blocking sleep), while requests to
  other hosts go on. The pauses are shared by every crawler of the process (`HostPauses`):
  the sources of one run that fetch from the same host (all Wayback captures come from
  web.archive.org) all respect its pause. A crawl being stopped stops waiting: the waiting
  requests are dropped (``IgnoreRequest``) rather than sent to a server that asked for a pause.
- Each 429/503 answer is logged and counted: ``dwatch/rate_limited`` (in the run summary's
  counters), ``dwatch/rate_limited_gave_up``, and Scrapy-style ``retry_after/*`` stats.

``dont_retry`` in a request's meta switches it off for that request, like RetryMiddleware.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from time import monotonic
from typing import TYPE_CHECKING

from scrapy import Request, signals
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response
from scrapy.utils.asyncio import sleep as scrapy_sleep
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.response import response_status_message

from crawler import runstats

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

__all__ = [
    "BACKOFF_SETTING",
    "CODES_SETTING",
    "DEFAULT_CODES",
    "HostPauses",
    "MAX_WAIT_SETTING",
    "RATE_LIMITED",
    "RATE_LIMITED_GAVE_UP",
    "RETRIES_META",
    "TIMES_SETTING",
    "RetryAfterMiddleware",
    "process_pauses",
    "retry_after_seconds",
]

CODES_SETTING = "DWATCH_RETRY_AFTER_CODES"
TIMES_SETTING = "DWATCH_RETRY_AFTER_TIMES"
MAX_WAIT_SETTING = "DWATCH_RETRY_AFTER_MAX_WAIT"
BACKOFF_SETTING = "DWATCH_RETRY_BACKOFF"
DEFAULT_CODES = (429, 503)
DEFAULT_TIMES = 3
DEFAULT_MAX_WAIT = 300.0
DEFAULT_BACKOFF = 5.0

RETRIES_META = "retry_after_times"     # how many times this request was retried after a 429/503
RATE_LIMITED = runstats.PREFIX + "rate_limited"
RATE_LIMITED_GAVE_UP = runstats.PREFIX + "rate_limited_gave_up"
STATS_PREFIX = "retry_after/"
POLL_SECONDS = 1.0      # a waiting request checks this often whether the crawl is being stopped

_DELTA_SECONDS = re.compile(r"^\s*(\d+)\s*$")

Sleep = Callable[[float], Awaitable[None]]


def retry_after_seconds(value: str | None, *, date: str | None = None,
                        now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` value asks to wait; None when absent or unreadable.

    An HTTP-date counts from `date` (the response's ``Date`` header) when readable, else from
    `now` (default: the current UTC time); a date in the past means 0.
    """
    if value is None or not value.strip():
        return None
    delta = _DELTA_SECONDS.match(value)
    if delta is not None:
        return float(delta.group(1))
    retry_at = _http_date(value)
    if retry_at is None:
        return None
    base = _http_date(date) if date else None
    if base is None:
        base = now if now is not None else datetime.now(UTC)
    return max(0.0, (retry_at - base).total_seconds())


def _http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _host(request: Request) -> str:
    return urlparse_cached(request).hostname or ""


def _header(response: Response, name: str) -> str | None:
    raw = response.headers.get(name)
    return raw.decode("latin-1") if raw is not None else None


class HostPauses:
    """Hosts that asked to be left alone, and until when (on `clock`, monotonic seconds)."""

    def __init__(self, clock: Callable[[], float] = monotonic) -> None:
        self.clock = clock
        self._until: dict[str, float] = {}

    def pause(self, host: str, seconds: float) -> None:
        """Leave `host` alone for `seconds` from now (a longer pause already set is kept)."""
        until = self.clock() + seconds
        self._until[host] = max(until, self._until.get(host, until))

    def remaining(self, host: str) -> float:
        """Seconds `host` still waits (0: it may be fetched from)."""
        until = self._until.get(host)
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            del self._until[host]
            return 0.0
        return left


_process_pauses: list[HostPauses] = []


def process_pauses() -> HostPauses:
    """The pauses shared by every crawler of this process (one crawl per process: see crawler.runner)."""
    if not _process_pauses:
        _process_pauses.append(HostPauses())
    return _process_pauses[0]


class RetryAfterMiddleware:
    """Wait out 429/503 answers (Retry-After or exponential backoff) per host, then retry a few times."""

    def __init__(
        self,
        crawler: Crawler,
        *,
        codes: frozenset[int] = frozenset(DEFAULT_CODES),
        max_times: int = DEFAULT_TIMES,
        max_wait: float = DEFAULT_MAX_WAIT,
        backoff: float = DEFAULT_BACKOFF,
        pauses: HostPauses | None = None,
        sleep: Sleep = scrapy_sleep,
    ) -> None:
        if max_times < 0 or max_wait < 0 or backoff < 0:
            raise ValueError(
                f"{TIMES_SETTING}={max_times}, {MAX_WAIT_SETTING}={max_wait}, {BACKOFF_SETTING}={backoff}: "
                "none may be negative"
            )
        self.crawler = crawler
        self.codes = codes
        self.max_times = max_times
        self.max_wait = max_wait
        self.backoff = backoff
        self.pauses = pauses if pauses is not None else process_pauses()
        self._sleep = sleep
        self._engine_started = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        if not settings.getbool("RETRY_ENABLED"):
            raise NotConfigured("RETRY_ENABLED is off")
        codes = frozenset(int(c) for c in settings.getlist(CODES_SETTING, list(DEFAULT_CODES)))
        if not codes:
            raise NotConfigured(f"{CODES_SETTING} is empty")
        middleware = cls(
            crawler,
            codes=codes,
            max_times=settings.getint(TIMES_SETTING, DEFAULT_TIMES),
            max_wait=settings.getfloat(MAX_WAIT_SETTING, DEFAULT_MAX_WAIT),
            backoff=settings.getfloat(BACKOFF_SETTING, DEFAULT_BACKOFF),
        )
        crawler.signals.connect(middleware._started, signal=signals.engine_started)
        return middleware

    def _started(self) -> None:
        self._engine_started = True

    @property
    def stopping(self) -> bool:
        """True once the crawl is being stopped (a signal, the CLI): nobody should wait any more."""
        return self._engine_started and not self.crawler.crawling

    # ------------------------------------------------------------ the wait

    async def process_request(self, request: Request) -> None:
        """Hold a request to a host that asked for a pause until the pause is over."""
        host = _host(request)
        while (remaining := self.pauses.remaining(host)) > 0:
            if self.stopping:
                raise IgnoreRequest(
                    f"not fetched: the crawl stopped while {host} asked to wait {remaining:.0f} s more"
                )
            await self._sleep(min(remaining, POLL_SECONDS))
        return None

    # ------------------------------------------------------------ the answer

    def process_response(self, request: Request, response: Response) -> Request | Response:
        if response.status not in self.codes or request.meta.get("dont_retry", False):
            return response
        stats = self.crawler.stats
        stats.inc_value(RATE_LIMITED)
        stats.inc_value(f"{STATS_PREFIX}reason_count/{response.status}")
        retries = int(request.meta.get(RETRIES_META, 0))
        key = _host(request)
        wait, why = self.wait_seconds(response, retries)
        self.pauses.pause(key, wait)
        reason = response_status_message(response.status)
        if retries >= self.max_times:
            stats.inc_value(RATE_LIMITED_GAVE_UP)
            stats.inc_value(f"{STATS_PREFIX}max_reached")
            logger.warning("%s answered %s %d times; gave up on %s (%s)", key, reason, retries + 1,
                           request.url, why)
            return response
        retry = request.copy()
        retry.meta[RETRIES_META] = retries + 1
        retry.dont_filter = True
        stats.inc_value(f"{STATS_PREFIX}count")
        stats.inc_value(f"{STATS_PREFIX}wait_seconds", math.ceil(wait))
        logger.info("%s answered %s to %s; waiting %.1f s (%s) before retry %d of %d", key, reason,
                    request.url, wait, why, retries + 1, self.max_times)
        return retry

    def wait_seconds(self, response: Response, retries: int) -> tuple[float, str]:
        """How long the host should be left alone after `response`, and why (for the log)."""
        header = _header(response, "Retry-After")
        asked = retry_after_seconds(header, date=_header(response, "Date"))
        if asked is not None:
            why = f"Retry-After: {header}"
            wait = asked
        else:
            wait = self.backoff * (2 ** retries)
            why = (f"unreadable Retry-After {header!r}" if header is not None else "no Retry-After") + \
                f", backoff {wait:g} s"
        if wait > self.max_wait:
            why += f", capped at {MAX_WAIT_SETTING}={self.max_wait:g}"
            wait = self.max_wait
        return wait, why
