"""Downloader middlewares and the request fingerprinter, on Request objects (no network).

The incremental middleware runs against a real migrated SQLite store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scrapy import Request
from scrapy.utils.test import get_crawler

from config import CrawlSettings, SourceConfig
from crawler import runstats
from crawler.context import CONTEXT_SETTING, SOURCE_SETTING, RunContext
from crawler.errors import AlreadySeen, ArticleLimitReached, DuplicateInRun, RefusedUrl
from crawler.fingerprint import CanonicalUrlFingerprinter
from crawler.middlewares import IncrementalMiddleware, SafeUrlMiddleware, non_public_reason
from crawler.spiders import FeedSpider
from extract import load_rules
from store import (
    PageRecord,
    Provenance,
    WarcArchive,
    make_engine,
    make_session_factory,
    queue,
    upgrade_database,
)

RULES = Path(__file__).resolve().parents[2] / "config" / "rules.yaml"

# ------------------------------------------------------------------ SSRF guard


def check(url: str, *, allow_private: bool = False) -> None:
    asyncio.run(SafeUrlMiddleware(allow_private).process_request(Request(url)))


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8080/admin", "127.0.0.1 is a loopback address"),
        ("http://[::1]/x", "::1 is a loopback address"),
        ("http://10.1.2.3/feed.xml", "10.1.2.3 is a private address"),
        ("http://192.168.0.10/", "192.168.0.10 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1 is a private address"),
        ("http://localhost:6800/", "localhost is a loopback name"),
        ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
    ],
)
def test_non_public_hosts_are_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(RefusedUrl) as refused:
        check(url)
    assert str(refused.value) == (
        f"refused {url}: {why} (set crawl.allow_private_addresses: true in settings.yaml to allow it)"
    )


def test_private_addresses_pass_when_allowed_and_public_literals_always() -> None:
    check("http://127.0.0.1:8080/feed.xml", allow_private=True)
    check("https://93.184.215.14/news/")          # a public address literal: no DNS needed
    assert non_public_reason("8.8.8.8") is None
    assert non_public_reason("fd00::1") == "private"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/feed.xml", "file:///etc/passwd", "data:text/html,hi"])
def test_non_http_urls_are_refused_even_when_private_addresses_are_allowed(url: str) -> None:
    with pytest.raises(RefusedUrl, match="only http and https URLs are fetched"):
        check(url, allow_private=True)


# ------------------------------------------------------------------ fingerprints


def test_one_fingerprint_per_canonical_url_but_redirect_hops_differ() -> None:
    fp = CanonicalUrlFingerprinter().fingerprint
    base = fp(Request("https://news.example.org/a.html"))
    assert fp(Request("https://NEWS.example.org:443/a.html?utm_source=rss&utm_medium=feed#top")) == base
    assert fp(Request("https://news.example.org/a.html?fbclid=xyz")) == base
    assert fp(Request("https://news.example.org/b.html")) != base
    assert fp(Request("https://news.example.org/a.html?page=2")) != base
    assert fp(Request("https://news.example.org/a.html", method="HEAD")) != base
    # /a.html?utm_source=rss redirected to /a.html must not be dropped as a duplicate of itself
    redirected = Request("https://news.example.org/a.html",
                         meta={"redirect_urls": ["https://news.example.org/a.html?utm_source=rss"]})
    assert fp(redirected) != base


# ------------------------------------------------------------------ incremental crawling

STORED = "https://news.example.org/2026/11/stored.html"


def _store_page(session_factory: object, url: str) -> None:
    provenance = Provenance(
        source_id="other-source", channel="feed", discovered_from="https://news.example.org/feed.xml",
        entry_id=None, entry_title=None, entry_published=None, requested_url=url, final_url=url,
        canonical_url=url, http_status=404, fetched_at=datetime(2026, 11, 20, tzinfo=UTC),
        body_sha256=None, archive=None, extractor=None, extractor_version=None, rules_version=None,
    )
    with session_factory() as session:  # type: ignore[operator]
        queue.record_page(session, PageRecord(provenance, "failed", "http_error", "HTTP 404 Not Found"))


@pytest.fixture
def context(tmp_path: Path) -> Iterator[RunContext]:
    url = f"sqlite:///{tmp_path / 'dwatch.sqlite3'}"
    upgrade_database(url)
    engine = make_engine(url)
    session_factory = make_session_factory(engine)
    _store_page(session_factory, STORED)
    yield RunContext(
        run_id=1, session_factory=session_factory, archive=WarcArchive(tmp_path / "archive"),
        ruleset=load_rules(RULES), crawl=CrawlSettings(max_articles_per_source=2),
    )
    engine.dispose()


def incremental(context: RunContext, **source_fields: object) -> tuple[IncrementalMiddleware, dict[str, int]]:
    source = SourceConfig(id="news", name="News", kind="feed", urls=["https://news.example.org/feed.xml"],
                          **source_fields)  # type: ignore[arg-type]
    crawler = get_crawler(FeedSpider, {SOURCE_SETTING: source, CONTEXT_SETTING: context})
    middleware = IncrementalMiddleware.from_crawler(crawler)
    return middleware, crawler.stats.get_stats()


def article(url: str, **meta: object) -> Request:
    return Request(url, meta={"dwatch_role": "article", **meta})


def test_known_urls_are_skipped_and_counted_as_already_seen(context: RunContext) -> None:
    middleware, stats = incremental(context)
    with pytest.raises(AlreadySeen, match="is already stored"):
        middleware.process_request(article(STORED + "?utm_campaign=x#comments"))
    assert stats[runstats.ALREADY_SEEN] == 1
    assert middleware.process_request(article("https://news.example.org/2026/11/new.html")) is None
    # feeds, sitemaps and listing pages are refetched every run
    assert middleware.process_request(Request(STORED, meta={"dwatch_role": "source"})) is None


def test_the_source_cap_counts_new_articles_and_runs_share_claimed_urls(context: RunContext) -> None:
    first, first_stats = incremental(context)
    admitted = article("https://news.example.org/1.html")
    first.process_request(admitted)
    first.process_request(article("https://news.example.org/2.html"))
    with pytest.raises(ArticleLimitReached, match="max_articles=2"):
        first.process_request(article("https://news.example.org/3.html"))
    assert first_stats[runstats.OVER_LIMIT] == 1
    # a retry or a redirect hop of an admitted request is not counted again
    assert first.process_request(admitted.replace()) is None            # a retry: same meta
    assert first.process_request(
        admitted.replace(url="https://news.example.org/1-moved.html",
                         meta={**admitted.meta, "redirect_urls": [admitted.url]})
    ) is None
    with pytest.raises(AlreadySeen, match="redirect target"):
        first.process_request(
            admitted.replace(url=STORED, meta={**admitted.meta, "redirect_urls": [admitted.url]})
        )

    second, second_stats = incremental(context, max_articles=5)
    with pytest.raises(DuplicateInRun):
        second.process_request(article("https://news.example.org/2.html?utm_source=other"))
    assert second_stats[runstats.DUPLICATE_IN_RUN] == 1
    assert second.process_request(article("https://news.example.org/3.html")) is None


def test_without_a_run_context_the_middleware_is_switched_off() -> None:
    from scrapy.exceptions import NotConfigured

    source = SourceConfig(id="news", name="News", kind="feed", urls=["https://news.example.org/feed.xml"])
    crawler = get_crawler(FeedSpider, {SOURCE_SETTING: source})
    with pytest.raises(NotConfigured, match="DWATCH_CONTEXT"):
        IncrementalMiddleware.from_crawler(crawler)
