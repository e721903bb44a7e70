"""End to end: crawl the demo site (demo/site) from 127.0.0.1, twice, then rescore.

Each crawl runs in its own process (crawl_process.crawl); the fixture server runs in this
one and logs every request it answers. The ground truth is demo/expected.json; the expected
provenance is read from the site's own feeds, sitemaps and files.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy.orm import Session

from config import Settings, load_settings
from demo import SITE_DIR, FixtureServer, RecordedRequest, load_expected, render_template, serve_directory
from demo import write_config as write_demo_config
from extract import canonicalize_url, load_rules
from store import (
    ArchiveRef,
    CandidateDetail,
    WarcArchive,
    open_session,
    queue,
)
from tests.crawler.crawl_process import RULES, CrawlOutcome, crawl

pytestmark = pytest.mark.slow

EXPECTED = load_expected()
ARTICLE_PATHS = set(EXPECTED)
SOURCE_URLS = {   # the source documents of each demo source (demo/sources.yaml)
    "demo-news-rss": ["/feeds/news.rss"],
    "demo-world-atom": ["/feeds/world.atom"],
    "demo-sitemap": ["/sitemap_index.xml", "/sitemaps/news.xml", "/sitemaps/articles.xml"],
    "demo-institute": ["/reports/", "/reports/page/2/"],
}
ATOM = "{http://www.w3.org/2005/Atom}"
SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"


@dataclass
class DemoCrawl:
    server: FixtureServer
    settings: Settings
    first: CrawlOutcome
    first_log: list[RecordedRequest]
    first_window: tuple[datetime, datetime]
    first_candidates: dict[int, str]          # candidate id -> path, after the first crawl
    second: CrawlOutcome
    second_log: list[RecordedRequest]


def store_session(settings: Settings) -> AbstractContextManager[Session]:
    return open_session(settings.database_url)


def candidates(settings: Settings) -> dict[int, CandidateDetail]:
    with store_session(settings) as session:
        rows = queue.list_candidates(session, limit=1000)
        details = {row.id: queue.get_candidate(session, row.id) for row in rows}
    return {cid: detail for cid, detail in details.items() if detail is not None}


def path_of(url: str) -> str:
    return urlsplit(url).path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoCrawl]:
    base = tmp_path_factory.mktemp("demo-crawl")
    with serve_directory(SITE_DIR) as server:
        config_dir = write_demo_config(base / "config", server.base_url)
        shutil.copyfile(RULES, config_dir / "rules.yaml")
        data_dir = base / "data"
        settings = load_settings(config_dir, env={"DWATCH_DATA_DIR": str(data_dir)})
        started = datetime.now(UTC)
        first = crawl(config_dir, data_dir)
        window = (started, datetime.now(UTC))
        assert first.returncode == 0, first.stderr[-3000:]
        first_log = server.requests.snapshot()
        server.requests.clear()
        first_candidates = {cid: path_of(c.url) for cid, c in candidates(settings).items()}
        second = crawl(config_dir, data_dir)
        assert second.returncode == 0, second.stderr[-3000:]
        second_log = server.requests.snapshot()
        server.requests.clear()
        yield DemoCrawl(server, settings, first, first_log, window, first_candidates, second, second_log)


# ------------------------------------------------------------------ the first crawl


def test_first_crawl_fetches_every_article_once_and_reports_every_source(demo: DemoCrawl) -> None:
    article_requests = [r for r in demo.first_log if r.bare_path in ARTICLE_PATHS]
    # 16 pages, each fetched once: the utm/#fragment link and the page listed by a feed AND
    # the sitemap included
    assert sorted(r.bare_path for r in article_requests) == sorted(ARTICLE_PATHS)
    assert {r.method for r in article_requests} == {"GET"}
    user_agents = {r.headers.get("User-Agent") for r in demo.first_log}
    assert user_agents == {demo.settings.crawl.user_agent}
    assert "+https://" in demo.settings.crawl.user_agent   # a contact URL
    assert demo.first.summary["status"] == "ok"
    assert demo.first.summary["ok"] is True
    stats = demo.first.summary["per_source"]
    assert set(stats) == set(SOURCE_URLS)
    assert all(s["errors"] == 0 and s["first_error"] is None for s in stats.values())
    assert (stats["demo-news-rss"]["discovered"], stats["demo-news-rss"]["fetched"]) == (4, 4)
    assert (stats["demo-world-atom"]["discovered"], stats["demo-world-atom"]["fetched"]) == (5, 5)
    assert (stats["demo-institute"]["discovered"], stats["demo-institute"]["fetched"]) == (3, 3)
    assert stats["demo-sitemap"]["discovered"] == 5
    assert sum(s["fetched"] for s in stats.values()) == 16
    assert sum(s["extracted"] for s in stats.values()) == 16
    flagged_pages = [p for p in EXPECTED.values() if p.flagged]
    assert sum(s["flagged"] for s in stats.values()) == len(flagged_pages)


def test_the_queue_holds_exactly_the_expected_candidates(demo: DemoCrawl) -> None:
    queued = candidates(demo.settings)
    by_path = {path_of(c.url): c for c in queued.values()}
    originals = {p.path for p in EXPECTED.values() if p.flagged and not p.duplicate_of}
    copies = {p.path: p.duplicate_of for p in EXPECTED.values() if p.duplicate_of}
    # of the verbatim pair, whichever page the crawl stored first is queued, the other linked
    for copy, original in copies.items():
        assert copy in by_path or original in by_path, f"neither {original} nor its copy {copy} is queued"
        assert not (copy in by_path and original in by_path), f"both {original} and its copy are queued"
        kept, linked = (copy, original) if copy in by_path else (original, copy)
        assert [path_of(d.url) for d in by_path[kept].duplicates] == [linked]
        originals = (originals - {original}) | {kept}
    assert set(by_path) == originals
    assert all(c.status == "new" for c in queued.values())
    # the near-copy (wire version) is queued in the same story as the original report
    pairs = {(p.path, p.story_with) for p in EXPECTED.values() if p.story_with}
    for a, b in pairs:
        assert by_path[a].story_id == by_path[b].story_id
        assert {path_of(m.url) for m in by_path[a].story} == {a, b}
    for path, candidate in by_path.items():
        assert candidate.lang == EXPECTED[path].lang, path


def _feed_entries(base_url: str) -> dict[str, dict[str, Any]]:
    """Entry id, title and date of every feed item, read from the site's feed files."""
    entries: dict[str, dict[str, Any]] = {}
    rss = ET.fromstring(render_template((SITE_DIR / "feeds/news.rss.tmpl").read_text("utf-8"), base_url))
    for item in rss.iter("item"):
        entries[path_of(item.findtext("link", ""))] = {
            "source_id": "demo-news-rss", "discovered_from": base_url + "/feeds/news.rss",
            "link": item.findtext("link"), "entry_id": item.findtext("guid"),
            "entry_title": item.findtext("title"),
            "entry_published": parsedate_to_datetime(item.findtext("pubDate", "")).astimezone(UTC),
        }
    atom = ET.fromstring(render_template((SITE_DIR / "feeds/world.atom.tmpl").read_text("utf-8"), base_url))
    for entry in atom.iter(ATOM + "entry"):
        link = entry.find(ATOM + "link[@rel='alternate']")
        assert link is not None
        entries[path_of(link.attrib["href"])] = {
            "source_id": "demo-world-atom", "discovered_from": base_url + "/feeds/world.atom",
            "link": link.attrib["href"], "entry_id": entry.findtext(ATOM + "id"),
            "entry_title": entry.findtext(ATOM + "title"),
            "entry_published": datetime.fromisoformat(entry.findtext(ATOM + "published", "")),
        }
    return entries


def _sitemap_entries(base_url: str) -> dict[str, dict[str, dict[str, Any]]]:
    """{article path: {sitemap URL: what that sitemap says about it}}."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for name in ("news", "articles"):
        url = f"{base_url}/sitemaps/{name}.xml"
        text = render_template((SITE_DIR / f"sitemaps/{name}.xml.tmpl").read_text("utf-8"), base_url)
        for node in ET.fromstring(text).iter(SM + "url"):
            published = node.findtext(f"{NEWS}news/{NEWS}publication_date")
            found.setdefault(path_of(node.findtext(SM + "loc", "")), {})[url] = {
                "entry_title": node.findtext(f"{NEWS}news/{NEWS}title"),
                "entry_published": datetime.fromisoformat(published) if published else None,
            }
    return found


def _listing_pages(base_url: str) -> dict[str, str]:
    """{article path: URL of the listing page that links it}."""
    pages = {}
    for listing in ("/reports/", "/reports/page/2/"):
        html = (SITE_DIR / listing.lstrip("/") / "index.html").read_text("utf-8")
        for path in EXPECTED:
            if path.startswith("/reports/") and f'href="{path}"' in html:
                pages[path] = base_url + listing
    return pages


def test_every_candidate_has_complete_and_correct_provenance(demo: DemoCrawl) -> None:
    base = demo.server.base_url
    feeds, sitemaps, listings = _feed_entries(base), _sitemap_entries(base), _listing_pages(base)
    rules_version = load_rules(RULES).version
    archive = WarcArchive(demo.settings.archive_dir)
    queued = candidates(demo.settings)
    assert queued
    for candidate in queued.values():
        path = path_of(candidate.url)
        prov = candidate.provenance
        served = (SITE_DIR / path.lstrip("/")).read_bytes()
        expected = EXPECTED[path]
        assert prov["source_id"] in expected.sources, path
        assert prov["channel"] == expected.channels[expected.sources.index(prov["source_id"])], path
        if prov["channel"] == "feed":
            entry = feeds[path]
            assert prov["source_id"] == entry["source_id"]
            assert prov["discovered_from"] == entry["discovered_from"]
            assert prov["entry_id"] == entry["entry_id"]
            assert prov["entry_title"] == entry["entry_title"]
            assert datetime.fromisoformat(prov["entry_published"]) == entry["entry_published"]
            assert prov["requested_url"] == entry["link"]           # as linked (utm_*, #fragment)
        elif prov["channel"] == "sitemap":
            said = sitemaps[path][prov["discovered_from"]]   # one of the sitemaps that list it
            assert prov["entry_id"] is None
            assert prov["entry_title"] == said["entry_title"]
            published = prov["entry_published"]
            assert (datetime.fromisoformat(published) if published else None) == said["entry_published"]
            assert prov["requested_url"] == base + path
        else:
            assert prov["discovered_from"] == listings[path]
            assert (prov["entry_id"], prov["entry_title"], prov["entry_published"]) == (None, None, None)
            assert prov["requested_url"] == base + path
        # no redirects on the demo site; a #fragment is never sent, so the response URL has none
        assert prov["final_url"] == prov["requested_url"].split("#")[0]
        assert prov["canonical_url"] == canonicalize_url(base + path) == candidate.canonical_url
        assert prov["http_status"] == 200
        fetched_at = datetime.fromisoformat(prov["fetched_at"])
        assert fetched_at.utcoffset() is not None and fetched_at.utcoffset().total_seconds() == 0
        assert demo.first_window[0] <= fetched_at <= demo.first_window[1]
        assert prov["body_sha256"] == hashlib.sha256(served).hexdigest()
        stored = archive.read(ArchiveRef(**prov["archive"]))
        assert stored.body == served
        assert (stored.status, stored.url) == (200, prov["final_url"])
        assert stored.header("Content-Type") == "text/html; charset=utf-8"
        assert prov["extractor"] == "trafilatura"
        assert prov["extractor_version"] == version("trafilatura")
        assert prov["rules_version"] == rules_version
        assert candidate.verdict is not None and candidate.verdict["rules_version"] == rules_version
        assert prov["run_id"] == demo.first.summary["run_id"]
        assert candidate.title == expected.title


# ------------------------------------------------------------------ the second crawl


def test_second_crawl_fetches_no_article_again_and_adds_nothing(demo: DemoCrawl) -> None:
    refetched = sorted({r.bare_path for r in demo.second_log} & ARTICLE_PATHS)
    assert refetched == []
    # feeds and sitemaps polled minutes ago are not due yet (adaptive polling, see
    # tests/crawler/test_conditional.py): not requested. The sitemap index and the listing
    # pages are read again (new entries are found there).
    fetched = {r.bare_path for r in demo.second_log}
    polled = {"/feeds/news.rss", "/feeds/world.atom", "/sitemaps/news.xml", "/sitemaps/articles.xml"}
    assert fetched & polled == set()
    assert {"/sitemap_index.xml", *SOURCE_URLS["demo-institute"]} <= fetched
    stats = demo.second.summary["per_source"]
    assert demo.second.summary["status"] == "ok"
    for source_id, row in stats.items():
        assert row["fetched"] == row["extracted"] == row["flagged"] == row["errors"] == 0, source_id
    assert stats["demo-institute"]["already_seen"] == stats["demo-institute"]["discovered"] > 0
    not_due = {sid: demo.second.counters(sid).get("not_due", 0) for sid in SOURCE_URLS}
    assert not_due == {"demo-news-rss": 1, "demo-world-atom": 1, "demo-sitemap": 2, "demo-institute": 0}
    now = {cid: path_of(c.url) for cid, c in candidates(demo.settings).items()}
    assert now == demo.first_candidates
    with store_session(demo.settings) as session:
        runs = queue.latest_runs(session, 5)
    assert [(r.id, r.status) for r in runs[:2]] == [
        (demo.second.summary["run_id"], "ok"), (demo.first.summary["run_id"], "ok")
    ]
    assert runs[1].per_source["demo-news-rss"].fetched == 4


# ------------------------------------------------------------------ rescoring


def _rules_variant(target: Path, version: str, *, threshold: float | None = None,
                   full_score: float | None = None) -> None:
    """config/rules.yaml with another version (and scoring), edited as text to keep it verbatim."""
    text = RULES.read_text("utf-8")
    text, count = re.subn(r'(?m)^version: .*$', f'version: "{version}"', text, count=1)
    assert count == 1
    for key, value in (("threshold", threshold), ("full_score", full_score)):
        if value is not None:
            text, count = re.subn(rf"(?m)^(\s+{key}:\s*)[0-9.]+", rf"\g<1>{value}", text, count=1)
            assert count == 1, key
    target.write_text(text, "utf-8")


def test_rescore_after_a_rules_change_updates_verdicts_without_any_request(
    demo: DemoCrawl, tmp_path: Path
) -> None:
    from crawler import rescore

    # on a copy of the crawled data: rules under which nothing can reach the threshold
    data_dir, config_dir = tmp_path / "data", tmp_path / "config"
    shutil.copytree(demo.settings.data_dir, data_dir)
    shutil.copytree(demo.settings.config_dir, config_dir)
    _rules_variant(config_dir / "rules.yaml", "test-strict", threshold=1.0, full_score=1000.0)
    settings = load_settings(config_dir, env={"DWATCH_DATA_DIR": str(data_dir)})
    before = {path_of(c.url): c.status for c in candidates(settings).values()}
    assert before and set(before.values()) == {"new"}
    requests_before = len(demo.server.requests)

    strict = rescore(settings)

    assert len(demo.server.requests) == requests_before      # no HTTP request at all
    assert (strict.rules_version, strict.documents, strict.errors) == ("test-strict", 16, 0)
    # pages, not candidates: the verbatim copy is flagged too (linked, not queued)
    flagged_pages = sum(1 for page in EXPECTED.values() if page.flagged)
    assert (strict.unflagged, strict.newly_flagged) == (flagged_pages, 0)
    assert strict.changed >= flagged_pages   # every flagged page, and any page whose score moved
    after = candidates(settings)
    assert {path_of(c.url): c.status for c in after.values()} == dict.fromkeys(before, "unflagged")
    for candidate in after.values():
        assert candidate.verdict is not None and candidate.verdict["rules_version"] == "test-strict"
        assert candidate.verdict["flagged"] is False
        assert candidate.provenance["rules_version"] == "test-strict"
        assert candidate.provenance["http_status"] == 200       # the fetch provenance is kept

    # back to the shipped rules (as a new version): the same stories are queued again
    _rules_variant(config_dir / "rules.yaml", "test-back")
    back = rescore(load_settings(config_dir, env={"DWATCH_DATA_DIR": str(data_dir)}))
    assert len(demo.server.requests) == requests_before
    # every flagged page is flagged again, the verbatim copy too (it stays linked, not queued)
    assert (back.rules_version, back.newly_flagged, back.unflagged) == ("test-back", flagged_pages, 0)
    assert {path_of(c.url): c.status for c in candidates(settings).values()} == before
    # the same rules again: nothing changes
    again = rescore(load_settings(config_dir, env={"DWATCH_DATA_DIR": str(data_dir)}))
    assert (again.documents, again.newly_flagged, again.unflagged, again.changed) == (16, 0, 0, 0)
