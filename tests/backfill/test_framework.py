"""The backfill framework: resume after a kill, dedup against the store, politeness, exit codes,
and the pieces (window, progress bar, settings, source attribution, out-of-range records)."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from scrapy.http import HtmlResponse
from sqlalchemy import select

from config import ConfigError, load_settings
from crawler.backfill import BackfillArgs, DateWindow, Progress, Tally, resolve_args
from crawler.backfill.archive import archive_periods, date_in_url, dated_links
from crawler.backfill.pipelines import outside_window
from crawler.backfill.spider import host_owners, owner_of, site_hosts, wayback_prefixes
from crawler.errors import CrawlError
from store import make_engine, make_session_factory, queue
from store.models import BackfillArticleModel, BackfillJobModel, Document
from store.records import QueueQuery
from tests.backfill.servers import (
    DEFECTOR_STORY,
    OTHER_STORY,
    FixtureServer,
    Reply,
    article_html,
    html_reply,
    run_backfill_cli,
    start_backfill_cli,
    write_config,
    xml_reply,
)
from tests.store.pages import make_page

RANGE = ("--since", "2014-01-01", "--until", "2015-12-31")
NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def _urlset(urls: list[str], lastmod: str = "2015-03-01") -> str:
    items = "".join(f"<url><loc>{u}</loc><lastmod>{lastmod}</lastmod></url>" for u in urls)
    return f'<?xml version="1.0"?><urlset {NS}>{items}</urlset>'


def _index(urls: list[str]) -> str:
    items = "".join(f"<sitemap><loc>{u}</loc></sitemap>" for u in urls)
    return f'<?xml version="1.0"?><sitemapindex {NS}>{items}</sitemapindex>'


def _db(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'dwatch.sqlite3'}"


def _stored(data_dir: Path) -> set[str]:
    """Canonical URLs of the stored documents, read with plain sqlite3 while a backfill writes."""
    path = data_dir / "dwatch.sqlite3"
    if not path.exists():
        return set()
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return {row[0] for row in connection.execute("SELECT canonical_url FROM documents")}
    except sqlite3.OperationalError:      # the schema is not there yet
        return set()
    finally:
        connection.close()


# ---------------------------------------------------------------- resume after SIGKILL


@pytest.fixture
def slow_site() -> Iterator[FixtureServer]:
    """A sitemap index, three sitemaps of eight articles each; every article takes 0.25 s to serve."""
    with FixtureServer() as server:
        children = []
        for part in range(3):
            paths = [f"/news/2015/part{part}-story{n}" for n in range(8)]
            children.append(server.url(f"/sitemaps/part{part}.xml"))
            server.route(f"/sitemaps/part{part}.xml", xml_reply(_urlset([server.url(p) for p in paths])))
            for n, path in enumerate(paths):
                story = article_html(f"Story {part}-{n}", "2015-03-01", lead=f"Part {part}, story {n}. ",
                                     paragraphs=OTHER_STORY if n % 2 else DEFECTOR_STORY)
                server.route(path, Reply(200, {"Content-Type": "text/html; charset=utf-8"}, story.encode(),
                                         delay=0.25))
        server.route("/sitemap_index.xml", xml_reply(_index(children)))
        yield server


@pytest.mark.slow
def test_a_killed_backfill_resumes_and_requests_nothing_twice(
    slow_site: FixtureServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", [
        {"id": "gazette", "name": "Gazette", "kind": "sitemap",
         "urls": [slow_site.url("/sitemap_index.xml")]},
    # one request at a time (Scrapy 2.19 only holds concurrent_requests_per_domain with a delay set)
    ], crawl={"concurrent_requests_per_domain": 1, "download_delay": 0.05})
    data = tmp_path / "data"

    process = start_backfill_cli(config, data, *RANGE, "--via", "sitemap")
    deadline = time.monotonic() + 120
    while len(_stored(data)) < 6:
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the backfill stored nothing in 120 s"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    stored_at_kill = _stored(data)
    first_run = Counter(slow_site.paths())
    assert 6 <= len(stored_at_kill) < 24          # killed mid-way

    outcome = run_backfill_cli(config, data, *RANGE, "--via", "sitemap")

    assert outcome.returncode == 0, outcome.stderr[-3000:]
    assert outcome.stdout.splitlines()[-1] == (
        "backfill run 2 (job 1, resumed) 2014-01-01..2015-12-31 via sitemap: ok")
    assert len(_stored(data)) == 24
    requests = Counter(p for p in slow_site.paths() if p != "/robots.txt")   # robots.txt: once per process
    assert set(requests) == {"/sitemap_index.xml"} | {f"/sitemaps/part{i}.xml" for i in range(3)} | {
        f"/news/2015/part{i}-story{n}" for i in range(3) for n in range(8)}
    twice = {path for path, count in requests.items() if count > 1}
    # only what was in flight when the process died (requested, not stored) is asked for again
    assert len(twice) <= 2, twice
    assert all(first_run[path] == 1 and slow_site.url(path) not in stored_at_kill for path in twice), twice
    assert all(count <= 2 for count in requests.values())

    engine = make_engine(_db(data))
    try:
        with make_session_factory(engine)() as session:
            jobs = session.scalars(select(BackfillJobModel)).all()
            assert [(j.id, j.status) for j in jobs] == [(1, "done")]
            statuses = Counter(session.scalars(select(BackfillArticleModel.status)))
            assert statuses == {"fetched": 24}
            queued = queue.list_candidates(session, QueueQuery(limit=None))
            assert len(queued) == 12 and {c.channel for c in queued} == {"backfill"}
    finally:
        engine.dispose()


# ---------------------------------------------------------------- dedup against the store


@pytest.mark.slow
def test_pages_a_daily_crawl_or_an_earlier_backfill_stored_are_not_fetched_again(tmp_path: Path) -> None:
    with FixtureServer() as server:
        u = server.url
        articles = ["/news/2014/05/first", "/news/2014/06/second", "/news/2014/07/third"]
        for n, path in enumerate(articles):
            page = article_html(f"Story {n}", f"2014-0{5 + n}-10", lead=f"Story {n}. ")
            server.route(path, html_reply(page))
        items = "".join(f"<item><title>Story {n}</title><link>{u(p)}</link><guid>{u(p)}</guid></item>"
                        for n, p in enumerate(articles[:2]))
        server.route("/feed.xml", Reply(200, {"Content-Type": "application/rss+xml"},
                                        f'<?xml version="1.0"?><rss version="2.0"><channel><title>G</title>'
                                        f"{items}</channel></rss>".encode()))
        server.route("/sitemap.xml", xml_reply(_urlset([u(p) for p in articles], lastmod="2014-08-01")))
        config = write_config(tmp_path / "config", [
            {"id": "gazette-feed", "name": "Gazette feed", "kind": "feed", "urls": [u("/feed.xml")]},
            {"id": "gazette", "name": "Gazette", "kind": "sitemap", "urls": [u("/sitemap.xml")]},
        ])
        data = tmp_path / "data"
        from tests.crawler.crawl_process import crawl

        daily = crawl(config, data, "--source", "gazette-feed")
        assert daily.returncode == 0 and daily.source("gazette-feed")["fetched"] == 2, daily.stderr[-2000:]

        first = run_backfill_cli(config, data, *RANGE, "--source", "gazette", "--via", "sitemap")
        second = run_backfill_cli(config, data, *RANGE, "--source", "gazette", "--via", "sitemap")
        hits = {path: server.hits(path) for path in articles}

    assert first.returncode == 0 and second.returncode == 0, first.stderr[-2000:] + second.stderr[-2000:]
    assert hits == dict.fromkeys(articles, 1)     # every article fetched once, by whichever came first
    assert first.stdout.splitlines()[2] == (
        "gazette  sitemap  3           3         0             2               1        1        0")
    assert second.stdout.splitlines()[2] == (              # the earlier backfill's page too
        "gazette  sitemap  3           3         0             3               0        0        0")
    assert second.stdout.splitlines()[-1].startswith("backfill run 3 (job 2) ")   # job 1 was done: a new job
    engine = make_engine(_db(data))
    try:
        with make_session_factory(engine)() as session:
            rows = session.execute(select(Document.canonical_url, Document.channel, Document.method)
                                   .order_by(Document.canonical_url)).all()
            found = [(url.removeprefix(server.base_url), channel, method) for url, channel, method in rows]
            assert found == [
                ("/news/2014/05/first", "feed", None), ("/news/2014/06/second", "feed", None),
                ("/news/2014/07/third", "backfill", "sitemap")]
            seen = session.execute(select(BackfillArticleModel.job_id, BackfillArticleModel.status)).all()
            assert Counter(seen) == {(1, "seen"): 2, (1, "fetched"): 1, (2, "seen"): 3}
    finally:
        engine.dispose()


# ---------------------------------------------------------------- politeness


@pytest.mark.slow
def test_the_download_delay_applies_to_backfill_requests(tmp_path: Path) -> None:
    with FixtureServer() as server:
        paths = [f"/news/2015/story-{n}" for n in range(4)]
        for n, path in enumerate(paths):
            server.route(path, html_reply(article_html(f"Story {n}", "2015-02-02", lead=f"{n}. ")))
        server.route("/sitemap.xml", xml_reply(_urlset([server.url(p) for p in paths])))
        config = write_config(tmp_path / "config", [
            {"id": "gazette", "name": "Gazette", "kind": "sitemap", "urls": [server.url("/sitemap.xml")]},
        ], crawl={"download_delay": 0.6, "autothrottle": False, "concurrent_requests_per_domain": 4})
        outcome = run_backfill_cli(config, tmp_path / "data", *RANGE, "--via", "sitemap")
        times = [r.at for r in server.log]
    assert outcome.returncode == 0, outcome.stderr[-3000:]
    assert len(times) == 6            # robots.txt, the sitemap, four articles
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # Scrapy spreads the delay over 0.5x..1.5x of download_delay: never closer than 0.3 s
    assert min(gaps) >= 0.28, gaps


# ---------------------------------------------------------------- exit codes and arguments


@pytest.mark.slow
def test_nothing_crawled_exits_1_and_the_failed_job_is_resumed_once_the_site_answers(tmp_path: Path) -> None:
    with FixtureServer({"/sitemap.xml": Reply(500, {}, b"down")}) as server:
        server.route("/news/2015/only", html_reply(article_html("Only story", "2015-01-01")))
        config = write_config(tmp_path / "config", [
            {"id": "gazette", "name": "Gazette", "kind": "sitemap", "urls": [server.url("/sitemap.xml")]}])
        down = run_backfill_cli(config, tmp_path / "data", *RANGE, "--via", "sitemap")
        server.route("/sitemap.xml", xml_reply(_urlset([server.url("/news/2015/only")])))
        up = run_backfill_cli(config, tmp_path / "data", *RANGE, "--via", "sitemap")
    assert down.returncode == 1
    assert down.stdout.splitlines()[-1] == "backfill run 1 (job 1) 2014-01-01..2015-12-31 via sitemap: failed"
    assert "discovery document http://127.0.0.1:" in down.stderr and "/sitemap.xml: HTTP 500" in down.stderr
    assert up.returncode == 0, up.stderr[-3000:]
    assert up.stdout.splitlines()[-1] == (
        "backfill run 2 (job 1, resumed) 2014-01-01..2015-12-31 via sitemap: ok")


@pytest.mark.slow
def test_bad_arguments_and_settings_exit_2_with_a_clear_message(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", [
        {"id": "gazette", "name": "Gazette", "kind": "sitemap", "urls": ["https://gazette.example/sitemap.xml"]}])
    backwards = run_backfill_cli(config, tmp_path / "data", "--since", "2015-12-31", "--until", "2014-01-01")
    assert backwards.returncode == 2
    assert ("Error: --since 2015-12-31 is after --until 2014-01-01; give the earlier date first"
            in backwards.stderr)

    (config / "settings.yaml").write_text("backfill:\n  wayback_delay: -1\n  max_artcles: 10\n")
    bad = run_backfill_cli(config, tmp_path / "data", *RANGE)
    assert bad.returncode == 2
    assert ("settings.yaml:2: backfill, field 'wayback_delay': Input should be greater than or equal to 0"
            in bad.stderr)
    assert "settings.yaml:3: backfill, field 'max_artcles': unknown field (a typo?)" in bad.stderr


def test_arguments_are_resolved_and_checked(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", [
        {"id": "gazette", "name": "Gazette", "kind": "sitemap", "urls": ["https://gazette.example/sitemap.xml"]},
        {"id": "bulletin", "name": "Bulletin", "kind": "feed", "urls": ["https://bulletin.example/rss"],
         "enabled": False},
    ])
    settings = load_settings(config, env={"DWATCH_DATA_DIR": str(tmp_path / "data")})
    base = BackfillArgs(date(2014, 1, 1), date(2015, 12, 31), (), (), ())

    resolved = resolve_args(settings, base)
    assert resolved.sources == ("gazette",)                      # every enabled source
    assert resolved.methods[:2] == ("sitemap", "archive")        # the defaults registered so far
    assert resolve_args(settings, replace(base, sources=("bulletin",), methods=("archive", "archive"))) == (
        replace(base, sources=("bulletin",), methods=("archive",)))
    with pytest.raises(CrawlError, match=r"^unknown backfill method\(s\): nope; use --via with some of: si"):
        resolve_args(settings, replace(base, methods=("sitemap", "nope")))
    with pytest.raises(CrawlError, match=r"unknown source id\(s\): ghost; known ids: bulletin, gazette"):
        resolve_args(settings, replace(base, sources=("ghost",)))
    with pytest.raises(CrawlError, match="--warc files are read by the ccnews method; add ccnews to --via"):
        resolve_args(settings, replace(base, methods=("sitemap",), warcs=("cc.warc.gz",)))


# ---------------------------------------------------------------- the pieces


def test_the_window_is_inclusive_and_judged_in_utc() -> None:
    window = DateWindow(date(2014, 1, 1), date(2015, 12, 31))
    assert str(window) == "2014-01-01..2015-12-31"
    assert window.contains(None) is None
    assert window.contains(date(2014, 1, 1)) is True and window.contains(date(2015, 12, 31)) is True
    assert window.contains(datetime(2015, 12, 31, 23, 59, tzinfo=UTC)) is True
    assert window.contains(datetime.fromisoformat("2016-01-01T00:30:00+02:00")) is True    # 22:30 UTC
    assert window.contains(datetime.fromisoformat("2014-01-01T00:30:00+02:00")) is False   # 2013 in UTC
    assert window.before(date(2013, 12, 31)) and not window.before(date(2016, 6, 1))


def test_a_page_dated_outside_the_window_is_recorded_but_never_queued() -> None:
    window = DateWindow(date(2014, 1, 1), date(2015, 12, 31))
    page = make_page("https://gazette.example/news/old", published=datetime(2013, 5, 1, tzinfo=UTC))
    assert page.flagged
    record = outside_window(page, window, None)
    assert (record.outcome, record.reason, record.detail, record.flagged, record.narratives) == (
        "skipped", "out_of_range", "published 2013-05-01, outside 2014-01-01..2015-12-31", False, ())
    assert (record.title, record.text, record.verdict) == (page.title, page.text, page.verdict)
    undated = replace(page, published=None)
    assert outside_window(undated, window, datetime(2016, 2, 1, tzinfo=UTC)).detail == (
        "listed 2016-02-01, outside 2014-01-01..2015-12-31")
    assert outside_window(undated, window, None) is undated                       # unknown: kept
    inside = replace(page, published=datetime(2014, 5, 1, tzinfo=UTC))
    assert outside_window(inside, window, None) is inside


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_progress_bar_shows_counts_and_an_eta() -> None:
    clock = _Clock()
    out = io.StringIO()
    tally = Tally(progress=Progress(out, tty=True, min_interval=0, clock=clock))
    tally.add("gazette", "sitemap", "requested", 40)
    clock.now += 20
    tally.add("gazette", "sitemap", "fetched", 10)
    tally.add("gazette", "sitemap", "out_of_range", 3)
    assert out.getvalue().split("\r")[-1] == (
        "backfill [#####---------------]  10/40 fetched · 3 out of range · ETA 0:01:00")
    tally.add("gazette", "sitemap", "fetched", 30)
    tally.close()
    assert out.getvalue().endswith(
        "\rbackfill [####################]  40/40 fetched · 3 out of range · in 0:00:20\n")

    plain = io.StringIO()
    progress = Progress(plain, tty=False, plain_interval=10, clock=clock)
    progress.update(1, 10, {})
    clock.now += 5
    progress.update(2, 10, {})           # within 10 s of the last line: not written
    clock.now += 6
    progress.update(3, 10, {"errors": 1})
    assert plain.getvalue().splitlines() == [
        "backfill [##------------------]   1/10 fetched",
        "backfill [######--------------]   3/10 fetched · 1 errors · ETA 0:00:26",
    ]
    with pytest.raises(ValueError, match="unknown backfill counter 'fetchd'"):
        tally.add("gazette", "sitemap", "fetchd")


def test_backfill_settings_and_source_fields_are_validated(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", [{
        "id": "gazette", "name": "Gazette", "kind": "feed", "urls": ["https://www.gazette.example/rss"],
        "sitemaps": ["https://www.gazette.example/sitemap_index.xml"],
        "archive_urls": ["https://www.gazette.example/{yyyy}/{mm}/"],
        "wayback_prefixes": ["gazette.example/news/"], "hosts": ["gazette.example", "m.gazette.example"],
    }], backfill={"gdelt_queries": ['"islamic state" defector'], "max_articles": 50})
    settings = load_settings(config, env={"DWATCH_DATA_DIR": str(tmp_path / "data")})
    assert settings.backfill.gdelt_queries == ['"islamic state" defector']
    assert (settings.backfill.max_articles, settings.backfill.wayback_page_size) == (50, 500)
    source = settings.sources[0]
    assert site_hosts(source) == ("gazette.example", "m.gazette.example")
    assert wayback_prefixes(source) == ("gazette.example/news/",)
    plain = source.model_copy(update={"hosts": [], "wayback_prefixes": []})
    assert site_hosts(plain) == ("gazette.example",)
    assert wayback_prefixes(plain) == ("www.gazette.example/",)

    for field, value, message in (
        ("archive_urls", ["https://x.example/{year}/"], "unknown placeholder {year}; use {page}"),
        ("archive_urls", ["https://x.example/{yyyy}?page={page}"], "use either {page} or date placeholders"),
        ("sitemaps", ["/sitemap.xml"], "'/sitemap.xml' is not an absolute http(s) URL"),
        ("hosts", ["https://x.example"], "'https://x.example' is not a lower-case host name"),
    ):
        write_config(config, [{"id": "gazette", "name": "Gazette", "kind": "feed",
                               "urls": ["https://x.example/rss"], field: value}])
        with pytest.raises(ConfigError, match=rf"sources.yaml:\d+: source 'gazette', field '{field}.*"
                                              + message.replace("(", r"\(").replace(")", r"\)")
                                              .replace("{", r"\{").replace("}", r"\}")):
            load_settings(config)


def test_articles_of_source_less_methods_belong_to_the_source_of_their_host(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", [
        {"id": "gazette", "name": "Gazette", "kind": "feed", "urls": ["https://www.gazette.example/rss"]},
        {"id": "bulletin", "name": "Bulletin", "kind": "feed", "urls": ["https://bulletin.example/rss"],
         "hosts": ["bulletin.example", "bulletin-news.example"]},
    ])
    owners = host_owners(load_settings(config).sources)
    assert owners == {"gazette.example": "gazette", "bulletin.example": "bulletin",
                      "bulletin-news.example": "bulletin"}
    assert owner_of("https://gazette.example/2014/story", owners) == "gazette"
    assert owner_of("http://WWW.Gazette.example./x", owners) == "gazette"
    assert owner_of("https://video.bulletin-news.example/x", owners) == "bulletin"   # a subdomain
    assert owner_of("https://elsewhere.example/x", owners) is None


def test_archive_helpers_date_items_and_enumerate_periods() -> None:
    assert date_in_url("https://x.example/news/2014/03/09/story") == datetime(2014, 3, 9, tzinfo=UTC)
    assert date_in_url("https://x.example/2015-11-30-story.html") == datetime(2015, 11, 30, tzinfo=UTC)
    assert date_in_url("https://x.example/news/2014/13/09/story") is None
    assert date_in_url("https://x.example/news/2014/03/story") is None
    window = DateWindow(date(2013, 11, 20), date(2014, 2, 3))
    assert archive_periods("https://x.example/{yyyy}/{mm}/", window) == [
        ("https://x.example/2014/02/", date(2014, 2, 1), date(2014, 2, 28)),
        ("https://x.example/2014/01/", date(2014, 1, 1), date(2014, 1, 31)),
        ("https://x.example/2013/12/", date(2013, 12, 1), date(2013, 12, 31)),
        ("https://x.example/2013/11/", date(2013, 11, 1), date(2013, 11, 30)),
    ]
    assert [p[0] for p in archive_periods("https://x.example/{yyyy}/", window)] == [
        "https://x.example/2014/", "https://x.example/2013/"]
    assert len(archive_periods("https://x.example/{yyyy}/{mm}/{dd}/", window)) == 76
    body = (b'<ul><li><a href="/a">First</a><time datetime="2014-05-01T10:00:00+02:00">1 May</time></li>'
            b'<li><a href="/news/2013/02/01/b">Second</a></li>'
            b'<li><a href="/c"><img alt=""></a> <a href="/c">Third <b>story</b></a></li></ul>'
            b'<p><time datetime="2012-01-01">not an item</time></p>')
    response = HtmlResponse("https://x.example/list", body=body, encoding="utf-8")
    assert dated_links(response, "li") == [
        ("https://x.example/a", "First", datetime(2014, 5, 1, 8, 0, tzinfo=UTC)),
        ("https://x.example/news/2013/02/01/b", "Second", datetime(2013, 2, 1, tzinfo=UTC)),
        ("https://x.example/c", None, None),
        ("https://x.example/c", "Third story", None),
    ]
