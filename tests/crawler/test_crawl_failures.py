"""End to end: sources and articles that fail are reported with their reasons; the rest is crawled.

The demo site is served from 127.0.0.1 with a few canned answers on top (a feed that links a
missing page, a closed port and a redirect). Each crawl runs in its own process.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from config import load_settings
from demo import SITE_DIR, FixtureServer, serve_directory
from extract import canonicalize_url
from store import ArchiveRef, WarcArchive, make_engine, make_session_factory
from store.models import Document
from tests.crawler.crawl_process import REPO, closed_port, crawl, write_config

pytestmark = pytest.mark.slow

YAZIDI = "/news/2026/11/yazidi-survivor-rebuilds-life.html"
BROKEN_FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Broken links</title><link>{{BASE_URL}}/</link>
<item><title>A story that was taken down</title><link>{{BASE_URL}}/news/2026/11/taken-down.html</link>
  <guid>broken-1</guid><pubDate>Mon, 23 Nov 2026 10:00:00 +0000</pubDate></item>
<item><title>A story on a dead server</title><link>http://127.0.0.1:%(port)d/story.html</link>
  <guid>broken-2</guid><pubDate>Sun, 22 Nov 2026 10:00:00 +0000</pubDate></item>
<item><title>A story that moved</title><link>{{BASE_URL}}/old/yazidi.html?utm_source=rss</link>
  <guid>broken-3</guid><pubDate>Sat, 21 Nov 2026 10:00:00 +0000</pubDate></item>
</channel></rss>
"""


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with serve_directory(SITE_DIR) as running:
        yield running


def feed(source_id: str, url: str) -> dict[str, object]:
    return {"id": source_id, "name": source_id, "kind": "feed", "urls": [url]}


def documents(database_url: str) -> dict[str, Document]:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            rows = list(session.scalars(select(Document)))
            session.expunge_all()
    finally:
        engine.dispose()
    return {row.canonical_url: row for row in rows}


def test_failing_sources_and_articles_are_reported_while_the_rest_is_crawled(
    server: FixtureServer, tmp_path: Path
) -> None:
    base, dead = server.base_url, closed_port()
    server.set_response("/feeds/broken.rss", body=BROKEN_FEED % {"port": dead},
                        headers={"Content-Type": "application/rss+xml"})
    server.set_response("/old/yazidi.html", status=301, headers={"Location": YAZIDI})
    config_dir = write_config(tmp_path / "config", [
        feed("good", base + "/feeds/news.rss"),
        feed("unreachable", f"http://127.0.0.1:{dead}/feed.xml"),
        feed("html-not-feed", base + "/index.html"),
        feed("gone", base + "/feeds/gone.rss"),
        feed("broken-links", base + "/feeds/broken.rss"),
    ])
    outcome = crawl(config_dir, tmp_path / "data")

    assert outcome.returncode == 0, outcome.stderr[-3000:]   # something was crawled
    assert outcome.summary["status"] == "partial"
    good = outcome.source("good")
    assert (good["fetched"], good["extracted"], good["errors"], good["first_error"]) == (4, 4, 0, None)

    unreachable = outcome.source("unreachable")
    assert (unreachable["fetched"], unreachable["errors"]) == (0, 1)
    assert unreachable["first_error"].startswith(
        f"feed http://127.0.0.1:{dead}/feed.xml: cannot fetch: DownloadConnectionRefusedError: "
        "Connection was refused by other side"
    )
    html = outcome.source("html-not-feed")
    assert (html["discovered"], html["errors"]) == (0, 1)
    assert html["first_error"].startswith(f"feed {base}/index.html: not a feed (got text/html)")
    assert outcome.source("gone")["first_error"] == f"feed {base}/feeds/gone.rss: HTTP 404 Not Found"

    broken = outcome.source("broken-links")
    assert (broken["discovered"], broken["fetched"], broken["errors"]) == (3, 2, 2)
    assert broken["first_error"] is not None

    settings = load_settings(config_dir, env={"DWATCH_DATA_DIR": str(tmp_path / "data")})
    stored = documents(settings.database_url)
    taken_down = stored[canonicalize_url(base + "/news/2026/11/taken-down.html")]
    assert (taken_down.outcome, taken_down.reason) == ("failed", "http_error")
    assert taken_down.detail == "HTTP 404 Not Found"
    assert taken_down.http_status == 404
    assert (taken_down.entry_id, taken_down.entry_title) == ("broken-1", "A story that was taken down")
    error_page = WarcArchive(settings.archive_dir).read(
        ArchiveRef(taken_down.archive_path or "", taken_down.archive_offset or 0,
                   taken_down.archive_length or 0, taken_down.archive_record_id or "")
    )
    assert error_page.status == 404 and b"404" in error_page.body     # the error page is evidence
    assert taken_down.body_sha256 == hashlib.sha256(error_page.body).hexdigest()

    dead_story = stored[f"http://127.0.0.1:{dead}/story.html"]
    assert (dead_story.outcome, dead_story.reason) == ("failed", "fetch_error")
    assert (dead_story.detail or "").startswith(
        "DownloadConnectionRefusedError: Connection was refused by other side"
    )
    assert (dead_story.http_status, dead_story.archive_path, dead_story.body_sha256) == (None, None, None)

    moved = stored[canonicalize_url(base + YAZIDI)]
    assert moved.requested_url == base + "/old/yazidi.html?utm_source=rss"
    assert moved.final_url == base + YAZIDI
    assert (moved.outcome, moved.http_status, moved.entry_id) == ("extracted", 200, "broken-3")
    assert moved.body_sha256 == hashlib.sha256((SITE_DIR / YAZIDI.lstrip("/")).read_bytes()).hexdigest()
    assert server.requests.count("/old/yazidi.html") == 1 and server.requests.count(YAZIDI) == 1


def test_a_crawl_where_nothing_could_be_crawled_exits_non_zero(server: FixtureServer, tmp_path: Path) -> None:
    dead = closed_port()
    config_dir = write_config(tmp_path / "config", [
        feed("unreachable", f"http://127.0.0.1:{dead}/feed.xml"),
        feed("html-not-feed", server.base_url + "/about.html"),
    ])
    outcome = crawl(config_dir, tmp_path / "data")
    assert outcome.returncode == 1
    assert (outcome.summary["status"], outcome.summary["ok"]) == ("failed", False)
    assert {sid: row["errors"] for sid, row in outcome.summary["per_source"].items()} == {
        "unreachable": 1, "html-not-feed": 1
    }


def test_robots_txt_and_the_size_limit_are_respected(server: FixtureServer, tmp_path: Path) -> None:
    base = server.base_url
    small_feed = """<?xml version="1.0"?><rss version="2.0"><channel><title>Small</title>
<item><title>Forbidden</title><link>{{BASE_URL}}/private/forbidden.html</link></item>
<item><title>Too big</title><link>{{BASE_URL}}/news/2026/11/yazidi-survivor-rebuilds-life.html</link></item>
</channel></rss>"""
    server.set_response("/feeds/small.rss", body=small_feed, headers={"Content-Type": "application/rss+xml"})
    server.set_response("/robots.txt", body="User-agent: *\nDisallow: /private/\n")
    config_dir = write_config(tmp_path / "config", [feed("small", base + "/feeds/small.rss")],
                              crawl={"download_maxsize": 2048, "obey_robots": True})
    outcome = crawl(config_dir, tmp_path / "data")

    row = outcome.source("small")
    assert (row["discovered"], row["fetched"], row["errors"]) == (2, 0, 2)
    assert server.requests.count("/private/forbidden.html") == 0     # robots.txt said no
    settings = load_settings(config_dir, env={"DWATCH_DATA_DIR": str(tmp_path / "data")})
    stored = documents(settings.database_url)
    # forbidden by robots.txt: not fetched and not stored (a later robots.txt may allow it)
    assert canonicalize_url(base + "/private/forbidden.html") not in stored
    too_big = stored[canonicalize_url(base + YAZIDI)]
    assert (too_big.outcome, too_big.reason, too_big.http_status) == ("failed", "fetch_error", None)
    assert "2048" in (too_big.detail or ""), too_big.detail     # says which limit was hit


def test_loopback_sources_are_refused_by_default_and_a_second_crawl_in_one_process_is_refused(
    server: FixtureServer, tmp_path: Path
) -> None:
    config_dir = write_config(tmp_path / "config", [feed("local", server.base_url + "/feeds/news.rss")],
                              crawl={"allow_private_addresses": False})
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from config import load_settings\n"
        "from crawler import CrawlError, run_crawl\n"
        "settings = load_settings(Path(sys.argv[1]))\n"
        "print(json.dumps(run_crawl(settings).to_dict()))\n"
        "try:\n"
        "    run_crawl(settings)\n"
        "except CrawlError as exc:\n"
        "    print('second crawl:', exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWATCH_")}
    env["DWATCH_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.run([sys.executable, "-c", script, str(config_dir)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ScrapyDeprecationWarning" not in proc.stderr, proc.stderr[-3000:]
    first_line, second_line = proc.stdout.strip().splitlines()
    summary = json.loads(first_line)
    assert summary["status"] == "failed"
    assert summary["per_source"]["local"]["first_error"] == (
        f"feed {server.base_url}/feeds/news.rss: refused {server.base_url}/feeds/news.rss: 127.0.0.1 is "
        "a loopback address (set crawl.allow_private_addresses: true in settings.yaml to allow it)"
    )
    assert len(server.requests) == 0          # not even robots.txt was requested
    assert second_line == (
        "second crawl: run_crawl can run only once per process (Twisted's reactor cannot restart); "
        "start each crawl in a new process"
    )
