"""End to end on third-party data (../shared/fixtures, read in place, served from 127.0.0.1).

Every feed of shared/fixtures/feeds is one feed source of one crawl: each must yield entries
or a recorded, typed reason, and the same outcome as parsing its bytes directly. A sample of
shared/fixtures/html pages is crawled as the articles of a listing page: each must be stored
as an article or with a typed reason, with its body archived byte for byte.
Article links found in the feeds are not fetched (they point at real sites): every link is
denied, so the feed test stops at discovery.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import get_args
from urllib.parse import quote

import pytest
from sqlalchemy import select

from config import load_settings
from demo import serve_directory
from demo.server import content_type_for
from extract import canonicalize_url, parse_feed
from extract.types import SkipReason
from store import ArchiveRef, WarcArchive, make_engine, make_session_factory
from store.models import Document
from tests.crawler.crawl_process import crawl, write_config

pytestmark = pytest.mark.slow

HEADER_RE = re.compile(rb"Header:\s*Content-type:\s*([^\r\n]+)", re.IGNORECASE)
SOURCE_ERROR_RE = re.compile(
    r"^feed \S+: (not a feed \(got [^)]+\)(: .+)?|malformed feed: .+|HTTP \d{3}\b.*|cannot fetch: .+)$",
    re.DOTALL,
)
HTML_SAMPLE_PER_COLLECTION = 4


def feed_files(root: Path) -> list[Path]:
    """Every feed document (not feed-rs's expected outputs, not scrapy's compressed copies)."""
    return sorted(
        p for p in (root / "feeds").rglob("*")
        if p.is_file() and not p.name.endswith(".serde.json") and "compressed" not in p.parts
    )


def served_content_type(path: Path, body: bytes) -> tuple[str, bool]:
    """The Content-Type the test server sends, and whether it is a feedparser `Header:` override."""
    header = HEADER_RE.search(body[:2048])
    if header:
        return header.group(1).decode("ascii").strip(), True
    return content_type_for(path.name, body), False


def test_every_shared_feed_crawls_to_entries_or_a_typed_reason(shared_fixtures: Path, tmp_path: Path) -> None:
    files = feed_files(shared_fixtures)
    assert len(files) == 140
    with serve_directory(shared_fixtures) as server:
        sources, by_id = [], {}
        for index, path in enumerate(files):
            relative = path.relative_to(shared_fixtures).as_posix()
            content_type, override = served_content_type(path, path.read_bytes())
            if override:
                server.set_response("/" + relative, headers={"Content-Type": content_type})
            source_id = f"feed-{index:03d}"
            by_id[source_id] = (relative, server.url(quote(relative)), content_type)
            sources.append({"id": source_id, "name": relative, "kind": "feed",
                            "urls": [server.url(quote(relative))], "deny_patterns": ["."]})
        config_dir = write_config(tmp_path / "config", sources, crawl={"obey_robots": False})
        outcome = crawl(config_dir, tmp_path / "data", timeout=280)
        requested = server.requests.paths("GET")

    assert outcome.returncode == 0, outcome.stderr[-3000:]
    assert len(requested) == 140            # each feed once, no article, no robots.txt
    with_entries = 0
    for source_id, (relative, url, content_type) in by_id.items():
        row, counters = outcome.source(source_id), outcome.counters(source_id)
        direct = parse_feed((shared_fixtures / relative).read_bytes(), url, {"Content-Type": content_type})
        links = counters.get("discovered", 0) + counters.get("filtered_links", 0)
        assert row["fetched"] == 0, relative
        if direct.entries:
            with_entries += 1
            assert counters.get("source_documents_ok") == 1, (relative, row["first_error"])
            assert links >= 1, relative
            assert row["errors"] == 0, (relative, row["first_error"])
        elif direct.problem == "empty":
            assert counters.get("empty_source_documents") == 1, (relative, row)
            assert links == 0 and row["errors"] == 0, relative
        else:
            assert row["errors"] == 1, relative
            first_error = row["first_error"]
            assert first_error.startswith(f"feed {url}: "), relative
            assert SOURCE_ERROR_RE.match(first_error), (relative, first_error)
            kind = "not a feed (got " if direct.problem == "not_a_feed" else "malformed feed: "
            assert first_error.startswith(f"feed {url}: {kind}"), (relative, first_error)
    assert with_entries >= 60


def html_sample(root: Path) -> list[Path]:
    """A few pages of each collection, spread over the sorted file list."""
    collections = [
        sorted((root / "html" / "scrapinghub-article-extraction-benchmark" / "html").glob("*.html.gz")),
        sorted((root / "html" / "trafilatura" / "pages").glob("*.html")),
        sorted((root / "html" / "fundus").glob("*/*.html.gz")),
    ]
    sample: list[Path] = []
    for pages in collections:
        step = max(1, len(pages) // HTML_SAMPLE_PER_COLLECTION)
        sample.extend(pages[::step][:HTML_SAMPLE_PER_COLLECTION])
    return sample


@pytest.fixture
def documents_of() -> Iterator[object]:
    engines = []

    def read(database_url: str) -> dict[str, Document]:
        engine = make_engine(database_url)
        engines.append(engine)
        with make_session_factory(engine)() as session:
            rows = list(session.scalars(select(Document)))
            session.expunge_all()
        return {row.canonical_url: row for row in rows}

    yield read
    for engine in engines:
        engine.dispose()


def test_a_sample_of_shared_article_pages_is_stored_with_an_article_or_a_typed_reason(
    shared_fixtures: Path, tmp_path: Path, documents_of: object
) -> None:
    sample = html_sample(shared_fixtures)
    assert len(sample) == 3 * HTML_SAMPLE_PER_COLLECTION
    reasons = set(get_args(SkipReason))
    with serve_directory(shared_fixtures) as server:
        urls = {}
        links = []
        for path in sample:
            target = "/" + quote(path.relative_to(shared_fixtures).as_posix())
            if path.suffix == ".gz":   # gzip-compressed as upstream: served as compressed HTML
                server.set_response(target, headers={"Content-Type": "text/html", "Content-Encoding": "gzip"})
            urls[path] = server.url(target)
            links.append(f'<li><a class="sample" href="{target}">{path.name}</a></li>')
        listing = "<html><body><ul>" + "".join(links) + "</ul></body></html>"
        server.set_response("/sample/index.html", body=listing,
                            headers={"Content-Type": "text/html; charset=utf-8"})
        config_dir = write_config(tmp_path / "config", [{
            "id": "shared-sample", "name": "shared html sample", "kind": "listing",
            "urls": [server.url("/sample/index.html")], "link_selector": "a.sample",
        }], crawl={"obey_robots": False})
        outcome = crawl(config_dir, tmp_path / "data")

    assert outcome.returncode == 0, outcome.stderr[-3000:]
    row = outcome.source("shared-sample")
    assert (row["discovered"], row["fetched"], row["errors"]) == (len(sample), len(sample), 0), row
    settings = load_settings(config_dir, env={"DWATCH_DATA_DIR": str(tmp_path / "data")})
    stored = documents_of(settings.database_url)  # type: ignore[operator]
    archive = WarcArchive(settings.archive_dir)
    outcomes = []
    for path, url in urls.items():
        raw = path.read_bytes()
        body = gzip.decompress(raw) if path.suffix == ".gz" else raw
        document = stored[canonicalize_url(url)]
        outcomes.append((path.name, document.outcome, document.reason, document.lang))
        assert document.http_status == 200, path.name
        assert document.body_sha256 == hashlib.sha256(body).hexdigest(), path.name
        archived = archive.read(ArchiveRef(document.archive_path or "", document.archive_offset or 0,
                                           document.archive_length or 0, document.archive_record_id or ""))
        assert archived.body == body, path.name
        if document.outcome == "extracted":
            assert document.text and len(document.text) >= 100, path.name
            assert document.extractor == "trafilatura" and document.rules_version, path.name
        else:
            assert document.outcome == "skipped", (path.name, document.outcome, document.detail)
            assert document.reason in reasons, (path.name, document.reason)
    # the prefilter skips most pages (no rule term); pages that pass it are extracted
    assert any(outcome == "extracted" for _, outcome, _, _ in outcomes), outcomes
