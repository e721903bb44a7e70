"""Scrapy settings of a crawl, built from the project's typed `CrawlSettings`.

Polite by default (robots.txt, a per-domain delay, AutoThrottle, a User-Agent with a
contact URL, size and time limits on every download); the knobs live in settings.yaml.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from config import CrawlSettings

__all__ = ["ARTICLE_ERROR_STATUSES", "scrapy_settings"]

# Statuses article callbacks receive so a 4xx/5xx page is recorded as http_error. Not
# ``handle_httpstatus_all``: that would also switch off RedirectMiddleware for 3xx.
ARTICLE_ERROR_STATUSES = range(400, 600)

PIPELINES = {
    "crawler.pipelines.ArchivePipeline": 100,
    "crawler.pipelines.AnalysePipeline": 200,
    "crawler.pipelines.StorePipeline": 300,
}
DOWNLOADER_MIDDLEWARES = {
    # before RobotsTxtMiddleware (100): skip known URLs and refuse unsafe ones first
    "crawler.middlewares.IncrementalMiddleware": 30,
    "crawler.middlewares.SafeUrlMiddleware": 40,
    # after RetryMiddleware (550) on the way in, before it on the way out: 429/503 wait, then retry
    "crawler.retry_after.RetryAfterMiddleware": 560,
}
# Scrapy's default RETRY_HTTP_CODES without 429 and 503, which RetryAfterMiddleware handles
RETRY_HTTP_CODES = [500, 502, 504, 522, 524, 408]
EXTENSIONS = {
    "crawler.extensions.ErrorCounter": 500,
}


def scrapy_settings(crawl: CrawlSettings, *, install_log_handler: bool = False) -> dict[str, Any]:
    """The Scrapy settings dict of one crawl (shared by every crawler of the run).

    `install_log_handler`: let Scrapy install its root log handler at ``crawl.log_level``
    (for callers that have not configured logging themselves).
    """
    return {
        "BOT_NAME": "defector-watch",
        "USER_AGENT": crawl.user_agent,
        "ROBOTSTXT_OBEY": crawl.obey_robots,
        "DOWNLOAD_DELAY": crawl.download_delay,
        "DOWNLOAD_DELAY_JITTER": 0.5,
        "AUTOTHROTTLE_ENABLED": crawl.autothrottle,
        "AUTOTHROTTLE_START_DELAY": max(crawl.download_delay, 1.0),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.concurrent_requests_per_domain,
        "DOWNLOAD_TIMEOUT": crawl.download_timeout,
        "DOWNLOAD_MAXSIZE": crawl.download_maxsize,
        "DOWNLOAD_WARNSIZE": crawl.download_maxsize // 2,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": 1,
        "RETRY_HTTP_CODES": list(RETRY_HTTP_CODES),
        "REDIRECT_MAX_TIMES": 5,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "LOG_LEVEL": crawl.log_level,
        "LOG_INSTALL_ROOT_HANDLER": install_log_handler,
        "STATS_DUMP": False,
        "REQUEST_FINGERPRINTER_CLASS": "crawler.fingerprint.CanonicalUrlFingerprinter",
        "ITEM_PIPELINES": dict(PIPELINES),
        "DOWNLOADER_MIDDLEWARES": dict(DOWNLOADER_MIDDLEWARES),
        "EXTENSIONS": dict(EXTENSIONS),
        "DWATCH_ALLOW_PRIVATE_ADDRESSES": crawl.allow_private_addresses,
        "DWATCH_MAX_ARTICLES": crawl.max_articles_per_source,
    }
