"""Incremental fetching: conditional polls of feeds and sitemaps, body hashes, adaptive intervals.

Three layers: the pure interval function and the store functions (store/feed_state.py); spider
callbacks fed responses built from bytes with a real FeedPoller on a migrated SQLite store;
and end-to-end crawls (one process each) against demo/server.py on 127.0.0.1, whose request
log shows what the crawler asked for and with which validators. "Time passes" between two
crawls by moving the stored next poll time into the past.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from scrapy import Request
from scrapy.http import Response, XmlResponse
from scrapy.utils.test import get_crawler
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from config import ConfigError, SourceConfig, load_settings
from crawler import runstats
from crawler.polling import FeedPoller
from crawler.spiders import FeedSpider
from demo import SITE_DIR, FixtureServer, serve_directory
from store import StoreError, make_engine, make_session_factory, upgrade_database
from store.feed_state import FeedStateRow, load_feed_states, next_interval, record_poll
from store.models import FeedState
from tests.crawler.crawl_process import crawl, write_config

T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
FEED_URL = "https://news.example.org/feeds/world.rss"
RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>World</title><link>https://news.example.org/</link>
<item><title>A former fighter speaks</title><link>https://news.example.org/2026/11/former-fighter.html</link>
  <guid>world-1</guid><pubDate>Wed, 18 Nov 2026 09:30:00 +0000</pubDate></item>
</channel></rss>
"""
NEWS = "/news/2026/11/"
TEST_FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Conditional test feed</title><link>{{BASE_URL}}/</link>
%s
</channel></rss>
"""
ITEM = "<item><title>%(name)s</title><link>{{BASE_URL}}%(path)s</link><guid>%(path)s</guid></item>"
A = NEWS + "yazidi-survivor-rebuilds-life.html"
B = NEWS + "north-korean-defector-noodle-restaurant.html"
C = NEWS + "deir-ezzor-former-fighter-wrong-war.html"
ARTICLE_PATHS = {str(p.relative_to(SITE_DIR).as_posix()) for p in (SITE_DIR / "news").rglob("*.html")}


def feed_with(*paths: str) -> str:
    return TEST_FEED % "\n".join(ITEM % {"name": p.rsplit("/", 1)[-1], "path": p} for p in paths)


# ------------------------------------------------------------------ the pure interval function


def test_interval_starts_at_the_minimum_grows_when_unchanged_and_halves_when_changed() -> None:
    bounds = {"min_minutes": 30, "max_minutes": 1440}
    assert next_interval(None, changed=True, **bounds) == 30      # a new feed: poll often first
    assert next_interval(None, changed=False, **bounds) == 30
    assert next_interval(30, changed=False, **bounds) == 45
    assert next_interval(45, changed=False, **bounds) == 67.5
    assert next_interval(200, changed=True, **bounds) == 100
    assert next_interval(1000, changed=False, **bounds) == 1440   # clamped to the maximum
    assert next_interval(1440, changed=False, **bounds) == 1440
    assert next_interval(40, changed=True, **bounds) == 30        # clamped to the minimum
    assert next_interval(30, changed=True, **bounds) == 30


def test_a_quiet_feed_reaches_the_maximum_and_a_busy_one_falls_back_to_the_minimum() -> None:
    interval: float | None = None
    seen = []
    for _ in range(12):
        interval = next_interval(interval, changed=False, min_minutes=30, max_minutes=1440)
        seen.append(interval)
    assert seen[:4] == [30, 45, 67.5, 101.25]
    assert seen[-1] == 1440 and all(30 <= i <= 1440 for i in seen)
    for _ in range(6):
        interval = next_interval(interval, changed=True, min_minutes=30, max_minutes=1440)
    assert interval == 30


def test_bad_interval_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="0 <= min_minutes <= max_minutes, got 60 and 30"):
        next_interval(45, changed=False, min_minutes=60, max_minutes=30)


def test_settings_refuse_a_minimum_above_the_maximum(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text("sources: []\n", "utf-8")
    settings_yaml = tmp_path / "settings.yaml"
    settings_yaml.write_text("crawl:\n  min_poll_minutes: 90\n  max_poll_minutes: 60\n", "utf-8")
    with pytest.raises(ConfigError, match=r"min_poll_minutes \(90\) is above max_poll_minutes \(60\)"):
        load_settings(tmp_path, env={"DWATCH_DATA_DIR": str(tmp_path / "data")})
    (tmp_path / "settings.yaml").write_text("crawl:\n  max_poll_minutes: 120\n", "utf-8")
    crawl_settings = load_settings(tmp_path, env={"DWATCH_DATA_DIR": str(tmp_path / "data")}).crawl
    assert (crawl_settings.min_poll_minutes, crawl_settings.max_poll_minutes) == (30, 120)
    assert crawl_settings.force_poll is False


# ------------------------------------------------------------------ the store functions


@pytest.fixture
def session_factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    upgrade_database(url)
    engine = make_engine(url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def test_record_poll_keeps_the_hash_of_the_last_parsed_body_and_moves_the_next_poll(
    session_factory: sessionmaker[Session],
) -> None:
    bounds = {"min_minutes": 30.0, "max_minutes": 1440.0}
    with session_factory() as session:
        first = record_poll(session, source_id="s", url=FEED_URL, outcome="changed", kind="feed",
                            etag='"v1"', last_modified="Mon, 23 Nov 2026 14:05:00 GMT",
                            body_sha256="a" * 64, now=T0, **bounds)
        assert (first.interval_minutes, first.changed_at) == (30, T0)
        assert first.next_poll_at == T0 + timedelta(minutes=30)
        later = T0 + timedelta(minutes=31)
        second = record_poll(session, source_id="s", url=FEED_URL, outcome="not_modified",
                             etag='"v2"', now=later, **bounds)
    assert second == FeedStateRow(
        source_id="s", url=FEED_URL, kind="feed", etag='"v2"',
        last_modified="Mon, 23 Nov 2026 14:05:00 GMT", body_sha256="a" * 64,
        checked_at=later, changed_at=T0, next_poll_at=later + timedelta(minutes=45),
        interval_minutes=45, polls=2, changes=1,
    )
    assert second.is_due(later + timedelta(minutes=41))       # 10% early is due
    assert not second.is_due(later + timedelta(minutes=40))
    with session_factory() as session:
        assert load_feed_states(session, "s") == {FEED_URL: second}
        assert load_feed_states(session, "other") == {}
        with pytest.raises(StoreError, match="no stored state, so it cannot be same_body"):
            record_poll(session, source_id="other", url=FEED_URL, outcome="same_body", **bounds)


# ------------------------------------------------------------------ spider callbacks


def make_spider(poller: FeedPoller) -> FeedSpider:
    source = SourceConfig(id="test-source", name="Test source", kind="feed", urls=[FEED_URL])
    spider = FeedSpider.from_crawler(get_crawler(FeedSpider, {"DWATCH_SOURCE": source}))
    spider.poller = poller
    return spider


def start_requests(spider: FeedSpider) -> list[Request]:
    async def collect() -> list[Request]:
        return [request async for request in spider.start()]

    return asyncio.run(collect())


def answer(request: Request, status: int, body: bytes, **headers: str) -> Response:
    return XmlResponse(FEED_URL, status=status, body=body, request=request,
                       headers={"Content-Type": "application/rss+xml", **headers})


def test_spider_sends_validators_and_does_not_parse_a_304_or_an_identical_body(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [T0]

    def poller(force: bool = False) -> FeedPoller:
        return FeedPoller(session_factory, "test-source", min_minutes=30, max_minutes=1440,
                          force=force, clock=lambda: clock[0])

    spider = make_spider(poller())
    [first] = start_requests(spider)
    assert "If-None-Match" not in first.headers and "If-Modified-Since" not in first.headers
    assert first.meta["handle_httpstatus_list"] == [304]
    requests = list(spider.parse_feed(answer(first, 200, RSS, ETag='"v1"',
                                             **{"Last-Modified": "Mon, 23 Nov 2026 14:05:00 GMT"})))
    assert [r.url for r in requests] == ["https://news.example.org/2026/11/former-fighter.html"]
    spider.closed("finished")        # a changed feed is stored when the crawl has finished

    clock[0] = T0 + timedelta(minutes=10)
    spider = make_spider(poller())
    assert start_requests(spider) == []                       # polled 10 minutes ago: not due
    assert spider.crawler.stats.get_value(runstats.NOT_DUE) == 1
    reason = spider.poller.not_due_reason(FEED_URL) if spider.poller else None
    assert reason == ("not due until 2026-11-24T06:30:00+00:00 (polled 10 min ago, every 30 min; "
                      "last change 2026-11-24T06:00:00+00:00)")

    def no_parsing(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("feedparser must not run on an unchanged feed")

    monkeypatch.setattr("crawler.spiders.feeds.parse_feed", no_parsing)
    spider = make_spider(poller(force=True))
    [forced] = start_requests(spider)
    assert forced.headers.get("If-None-Match") == b'"v1"'
    assert forced.headers.get("If-Modified-Since") == b"Mon, 23 Nov 2026 14:05:00 GMT"
    assert list(spider.parse_feed(answer(forced, 304, b""))) == []
    assert list(spider.parse_feed(answer(forced, 200, RSS, ETag='"stale"'))) == []
    got = spider.crawler.stats.get_stats()
    assert (got[runstats.NOT_MODIFIED], got[runstats.UNCHANGED_BODY]) == (1, 1)
    assert runstats.DISCOVERED not in got and runstats.ERRORS not in got
    with session_factory() as session:
        state = load_feed_states(session, "test-source")[FEED_URL]
    assert (state.polls, state.changes, state.interval_minutes, state.etag) == (3, 1, 67.5, '"stale"')
    assert state.body_sha256 == hashlib.sha256(RSS).hexdigest()


def test_a_changed_feed_is_stored_only_when_the_crawl_finished_and_without_validators_if_incomplete(
    session_factory: sessionmaker[Session],
) -> None:
    def first_poll(closed_reason: str, *, over_limit: bool = False) -> list[Request]:
        spider = make_spider(FeedPoller(session_factory, "test-source", min_minutes=30, max_minutes=1440))
        [request] = start_requests(spider)
        list(spider.parse_feed(answer(request, 200, RSS, ETag='"v1"')))
        if over_limit:
            spider.crawler.stats.inc_value(runstats.OVER_LIMIT)
        spider.closed(closed_reason)
        return [request]

    # stopped mid-crawl (SIGTERM): nothing stored, the feed is read and parsed again next run
    first_poll("shutdown")
    with session_factory() as session:
        assert load_feed_states(session, "test-source") == {}
    # finished, but articles were left over the max_articles cap: no validators, no hash
    first_poll("finished", over_limit=True)
    with session_factory() as session:
        state = load_feed_states(session, "test-source")[FEED_URL]
    assert (state.etag, state.body_sha256, state.polls, state.interval_minutes) == (None, None, 1, 30)
    poller = FeedPoller(session_factory, "test-source", min_minutes=30, max_minutes=1440, force=True)
    assert poller.conditional_headers(FEED_URL) == {}


# ------------------------------------------------------------------ end to end


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with serve_directory(SITE_DIR) as running:
        yield running


def database_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'dwatch.sqlite3'}"


def feed_states(data_dir: Path) -> dict[str, FeedState]:
    """The stored poll states by URL path."""
    engine = make_engine(database_url(data_dir))
    try:
        with make_session_factory(engine)() as session:
            rows = list(session.scalars(select(FeedState)))
            session.expunge_all()
    finally:
        engine.dispose()
    return {urlsplit(row.url).path: row for row in rows}


def time_passes(data_dir: Path, *, interval_minutes: float | None = None) -> None:
    """Every stored document is due now (as if its interval had passed), optionally re-timed."""
    values: dict[str, Any] = {"next_poll_at": datetime.now(UTC) - timedelta(minutes=1)}
    if interval_minutes is not None:
        values["interval_minutes"] = interval_minutes
    engine = make_engine(database_url(data_dir))
    try:
        with make_session_factory(engine)() as session:
            session.execute(update(FeedState).values(**values))
            session.commit()
    finally:
        engine.dispose()


def served(server: FixtureServer, path: str) -> bytes:
    return server.build_reply(path).body


def articles_requested(server: FixtureServer) -> list[str]:
    return sorted(r.bare_path for r in server.requests if r.bare_path.lstrip("/") in ARTICLE_PATHS)


@pytest.mark.slow
def test_an_unchanged_feed_is_not_due_then_answered_304_and_nothing_is_parsed(
    server: FixtureServer, tmp_path: Path
) -> None:
    sources = [
        {"id": "news", "name": "news", "kind": "feed", "urls": [server.url("/feeds/news.rss")]},
        {"id": "sitemap", "name": "sitemap", "kind": "sitemap", "urls": [server.url("/sitemap_index.xml")]},
    ]
    config_dir, data_dir = write_config(tmp_path / "config", sources), tmp_path / "data"
    first = crawl(config_dir, data_dir)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.source("news")["fetched"] == 4
    feed_body = served(server, "/feeds/news.rss")
    feed_headers = server.build_reply("/feeds/news.rss").headers
    states = feed_states(data_dir)
    assert set(states) == {
        "/feeds/news.rss", "/sitemap_index.xml", "/sitemaps/news.xml", "/sitemaps/articles.xml"
    }
    news = states["/feeds/news.rss"]
    assert (news.kind, news.etag) == ("feed", feed_headers["ETag"])
    assert news.last_modified == feed_headers["Last-Modified"]
    assert news.body_sha256 == hashlib.sha256(feed_body).hexdigest()
    assert (news.interval_minutes, news.polls, news.changes) == (30, 1, 1)
    assert news.next_poll_at == news.checked_at + timedelta(minutes=30)
    assert states["/sitemap_index.xml"].kind == "sitemapindex"
    assert states["/sitemaps/news.xml"].kind == "urlset"

    # right after: the feed and the child sitemaps are not due; the index is re-read
    server.requests.clear()
    second = crawl(config_dir, data_dir)
    assert second.returncode == 0, second.stderr[-3000:]
    assert server.requests.paths("GET") == ["/robots.txt", "/sitemap_index.xml"]
    assert second.counters("news")["not_due"] == 1
    assert second.counters("sitemap")["not_due"] == 2
    assert second.summary["status"] == "ok"

    # --force (crawl.force_poll): polled now, conditionally; answered 304 and not parsed
    server.requests.clear()
    write_config(config_dir, sources, crawl={"force_poll": True})
    third = crawl(config_dir, data_dir)
    assert third.returncode == 0, third.stderr[-3000:]
    log = {r.bare_path: r for r in server.requests}
    assert sorted(server.requests.paths("GET")) == [   # each source's crawler reads robots.txt
        "/feeds/news.rss", "/robots.txt", "/robots.txt",
        "/sitemap_index.xml", "/sitemaps/articles.xml", "/sitemaps/news.xml",
    ]
    assert log["/feeds/news.rss"].headers["If-None-Match"] == news.etag
    assert log["/feeds/news.rss"].headers["If-Modified-Since"] == news.last_modified
    assert "If-None-Match" not in log["/sitemap_index.xml"].headers
    assert articles_requested(server) == []
    assert third.counters("news")["not_modified"] == 1
    assert third.counters("sitemap")["not_modified"] == 2
    assert third.source("news")["discovered"] == third.source("sitemap")["discovered"] == 0
    assert third.source("news")["errors"] == third.source("sitemap")["errors"] == 0
    after = feed_states(data_dir)["/feeds/news.rss"]
    assert (after.interval_minutes, after.polls, after.changes) == (45, 2, 1)
    assert after.changed_at == news.changed_at and after.body_sha256 == news.body_sha256


@pytest.mark.slow
def test_a_server_ignoring_validators_is_matched_by_body_hash_and_nothing_is_parsed(
    server: FixtureServer, tmp_path: Path
) -> None:
    body = feed_with(A, B)
    server.set_response("/feeds/cond.rss", body=body, headers={"ETag": '"v1"'})
    sources = [{"id": "cond", "name": "cond", "kind": "feed", "urls": [server.url("/feeds/cond.rss")]}]
    config_dir, data_dir = write_config(tmp_path / "config", sources), tmp_path / "data"
    first = crawl(config_dir, data_dir)
    assert first.returncode == 0, first.stderr[-3000:]
    assert articles_requested(server) == sorted([A, B])

    # the same body under a new ETag: the server answers 200 to If-None-Match "v1"
    server.set_response("/feeds/cond.rss", body=body, headers={"ETag": '"v2"'})
    time_passes(data_dir)
    server.requests.clear()
    second = crawl(config_dir, data_dir)
    assert second.returncode == 0, second.stderr[-3000:]
    assert server.requests.paths("GET") == ["/robots.txt", "/feeds/cond.rss"]
    assert server.requests[1].headers["If-None-Match"] == '"v1"'
    assert second.counters("cond")["unchanged_body"] == 1
    assert "not_modified" not in second.counters("cond")
    assert second.source("cond")["discovered"] == 0
    state = feed_states(data_dir)["/feeds/cond.rss"]
    assert (state.etag, state.interval_minutes, state.polls, state.changes) == ('"v2"', 45, 2, 1)


@pytest.mark.slow
def test_a_changed_feed_is_parsed_its_new_article_fetched_and_its_interval_shrinks(
    server: FixtureServer, tmp_path: Path
) -> None:
    server.set_response("/feeds/cond.rss", body=feed_with(A, B))
    sources = [{"id": "cond", "name": "cond", "kind": "feed", "urls": [server.url("/feeds/cond.rss")]}]
    config_dir, data_dir = write_config(tmp_path / "config", sources), tmp_path / "data"
    first = crawl(config_dir, data_dir)
    assert first.returncode == 0, first.stderr[-3000:]
    old_etag = feed_states(data_dir)["/feeds/cond.rss"].etag

    server.set_response("/feeds/cond.rss", body=feed_with(C, A, B))
    time_passes(data_dir, interval_minutes=200)     # a feed that had been quiet for a while
    server.requests.clear()
    second = crawl(config_dir, data_dir)
    assert second.returncode == 0, second.stderr[-3000:]
    assert server.requests[1].bare_path == "/feeds/cond.rss"
    assert server.requests[1].headers["If-None-Match"] == old_etag
    assert articles_requested(server) == [C]
    stats = second.source("cond")
    assert (stats["discovered"], stats["already_seen"], stats["fetched"], stats["errors"]) == (3, 2, 1, 0)
    state = feed_states(data_dir)["/feeds/cond.rss"]
    new_body = served(server, "/feeds/cond.rss")
    assert state.body_sha256 == hashlib.sha256(new_body).hexdigest()
    assert state.etag == server.build_reply("/feeds/cond.rss").headers["ETag"] != old_etag
    assert (state.interval_minutes, state.polls, state.changes) == (100, 2, 2)
    assert state.changed_at == state.checked_at
