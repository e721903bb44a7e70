"""The ccnews method: CC-NEWS WARC files read from a local path or downloaded in Range requests.

The WARC files are written here with warcio: records of several hosts, crawled inside and
outside the window, not HTML, a revisit, a request record and a truncated last record. The last
test reads the two real news WARC files of ../shared/fixtures/warc in place.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from store import make_engine, make_session_factory, queue
from store.models import Document
from store.records import QueueQuery
from tests.backfill.servers import (
    OTHER_STORY,
    FixtureServer,
    Reply,
    ServedRequest,
    article_html,
    run_backfill_cli,
    start_backfill_cli,
    write_config,
)

pytestmark = pytest.mark.slow

SINCE, UNTIL = "2014-01-01", "2015-12-31"
WINDOW = ("--since", SINCE, "--until", UNTIL, "--via", "ccnews")
SOURCES = [
    {"id": "gazette", "name": "The Test Gazette", "kind": "feed", "urls": ["https://gazette.example/feed.xml"]},
    {"id": "courier", "name": "The Courier", "kind": "feed", "urls": ["https://www.courier.example/rss"],
     "hosts": ["courier.example"]},
]
WARC_TYPE = {"Content-Type": "application/warc"}


@dataclass(frozen=True)
class Rec:
    url: str
    date: str                       # WARC-Date
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    kind: str = "response"


@dataclass(frozen=True)
class Written:
    data: bytes
    ids: dict[str, str]             # URL -> WARC-Record-ID of its response record
    offsets: list[int]              # where each record starts


def story(title: str, published: str | None, lead: str, *, other: bool = False) -> bytes:
    page = article_html(title, published, lead=lead, paragraphs=OTHER_STORY) if other else article_html(
        title, published, lead=lead)
    return page.encode("utf-8")


def write_warc(records: list[Rec], *, truncate_last: bool = False) -> Written:
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True)
    ids: dict[str, str] = {}
    offsets = []
    for rec in records:
        offsets.append(out.tell())
        headers = {"WARC-Date": rec.date}
        if rec.kind == "warcinfo":
            record = writer.create_warcinfo_record("CC-NEWS-test.warc.gz", {"software": "test"})
        elif rec.kind == "revisit":
            record = writer.create_revisit_record(rec.url, "sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", rec.url,
                                                  rec.date, warc_headers_dict=headers)
        elif rec.kind == "request":
            http = StatusAndHeaders("GET / HTTP/1.1", [("User-Agent", "CCBot")], is_http_request=True)
            record = writer.create_warc_record(rec.url, "request", http_headers=http,
                                               warc_headers_dict=headers)
        else:
            http = StatusAndHeaders("200 OK", [("Content-Type", rec.content_type)], protocol="HTTP/1.1")
            record = writer.create_warc_record(rec.url, "response", payload=io.BytesIO(rec.body),
                                               length=len(rec.body), http_headers=http,
                                               warc_headers_dict=headers)
            ids[rec.url] = record.rec_headers.get_header("WARC-Record-ID")
        writer.write_record(record)
    data = out.getvalue()
    if truncate_last:
        data = data[: offsets[-1] + (len(data) - offsets[-1]) // 2]
    return Written(data, ids, offsets)


MIXED = [
    Rec("", "2016-03-01T00:00:00Z", kind="warcinfo"),
    Rec("https://gazette.example/2014/03/defector-raqqa", "2014-03-10T10:00:00Z",
        story("Why I left Raqqa", "2014-03-10T08:00:00+00:00", "In March, ")),
    Rec("https://gazette.example/2014/03/defector-raqqa", "2014-03-10T10:00:00Z", kind="request"),
    Rec("https://www.gazette.example/2015/11/second-defector", "2015-11-21T06:00:00Z",
        story("A second defector speaks", "2015-11-20", "In November, ")),
    Rec("https://news.courier.example/2014/07/courier-defector", "2014-07-02T12:00:00Z",
        story("Leaving the caliphate", "2014-07-01", "In July, ")),
    Rec("https://gazette.example/2015/07/road-repairs", "2015-07-04T12:00:00Z",
        story("Road repairs", "2015-07-04", "", other=True)),
    Rec("https://elsewhere.example/2014/05/elsewhere-defector", "2014-05-05T05:00:00Z",     # no source's host
        story("Elsewhere", "2014-05-05", "Elsewhere, ")),
    Rec("https://gazette.example/2013/05/earlier-defector", "2013-05-02T00:00:00Z",         # crawled before
        story("Too early", "2013-05-01", "Earlier, ")),
    Rec("https://gazette.example/2016/02/later-defector", "2016-01-01T00:00:00Z",           # crawled after
        story("Too late", "2015-12-31", "Later, ")),
    Rec("https://gazette.example/2014/09/recrawled-old-defector", "2014-09-01T00:00:00Z",   # page of 2013
        story("An old account of defection", "2013-02-02T10:00:00+00:00", "Back then, ")),
    Rec("https://gazette.example/logo.png", "2014-04-04T00:00:00Z", b"\x89PNG\r\n\x1a\n", "image/png"),
    Rec("https://gazette.example/2014/03/defector-raqqa", "2014-04-10T10:00:00Z", kind="revisit"),
    Rec("https://gazette.example/2015/12/truncated-defector", "2015-12-01T00:00:00Z",
        story("Cut short", "2015-12-01", "Cut, ")),
]
QUEUED = {   # URL -> source
    "https://gazette.example/2014/03/defector-raqqa": "gazette",
    "https://www.gazette.example/2015/11/second-defector": "gazette",
    "https://news.courier.example/2014/07/courier-defector": "courier",
}
STORED = {*QUEUED, "https://gazette.example/2015/07/road-repairs",
          "https://gazette.example/2014/09/recrawled-old-defector"}


def story_url(i: int) -> str:
    return f"https://gazette.example/2015/{1 + i % 12:02d}/story-{i}"


def many_stories(n: int) -> list[Rec]:
    """`n` flagged stories of the gazette, crawled (and published) across the window."""
    return [Rec(story_url(i), f"2015-{1 + i % 12:02d}-15T09:00:00Z",
                story(f"Defector story {i}", f"2015-{1 + i % 12:02d}-15", f"Story number {i}. "))
            for i in range(n)]


def db_path(data_dir: Path) -> Path:
    return data_dir / "dwatch.sqlite3"


def stored_documents(data_dir: Path) -> dict[str, Document]:
    engine = make_engine(f"sqlite:///{db_path(data_dir)}")
    try:
        with make_session_factory(engine)() as session:
            rows = session.scalars(select(Document)).all()
            for row in rows:
                session.expunge(row)
            return {row.canonical_url: row for row in rows}
    finally:
        engine.dispose()


def count_documents(data_dir: Path) -> int:
    """Documents stored so far (read while a backfill subprocess writes; 0 before the store exists)."""
    if not db_path(data_dir).exists():
        return 0
    with sqlite3.connect(f"file:{db_path(data_dir)}?mode=ro", uri=True, timeout=5) as con:
        try:
            return int(con.execute("select count(*) from documents").fetchone()[0])
        except sqlite3.OperationalError:     # the migrations have not created the table yet
            return 0


def ranges(server: FixtureServer, path: str) -> list[tuple[int, int]]:
    """The byte ranges requested for `path`, in order."""
    out = []
    for request in server.log:
        if request.path == path:
            match = re.fullmatch(r"bytes=(\d+)-(\d+)", request.headers.get("range", ""))
            assert match is not None, f"a request for {path} without a byte range: {request.headers}"
            out.append((int(match[1]), int(match[2])))
    return out


@pytest.fixture
def mixed() -> Written:
    return write_warc(MIXED, truncate_last=True)


# ---------------------------------------------------------------- exactly the in-range records


@pytest.mark.parametrize("where", ["path", "url"])
def test_exactly_the_in_range_records_of_the_sources_hosts_reach_the_queue(
    where: str, mixed: Written, tmp_path: Path
) -> None:
    local = tmp_path / "CC-NEWS-20160301.warc.gz"
    local.write_bytes(mixed.data)
    with FixtureServer({"/crawl-data/CC-NEWS-20160301.warc.gz": Reply(200, WARC_TYPE, mixed.data)}) as server:
        warc = str(local) if where == "path" else server.url("/crawl-data/CC-NEWS-20160301.warc.gz")
        config = write_config(tmp_path / "config", SOURCES, backfill={"ccnews_chunk_bytes": 1024})
        outcome = run_backfill_cli(config, tmp_path / "data", *WINDOW, "--warc", warc)
        asked = ranges(server, "/crawl-data/CC-NEWS-20160301.warc.gz")

    assert outcome.returncode == 0, outcome.stderr[-3000:]
    if where == "url":   # contiguous 1 KiB chunks, each asked once: never the whole file at once
        assert asked == [(start, start + 1023) for start in range(0, len(mixed.data), 1024)]
    else:
        assert asked == []
    assert outcome.stdout.splitlines()[:5] == [
        "source   method  discovered  in range  out of range  already stored  fetched  flagged  errors",
        "-------  ------  ----------  --------  ------------  --------------  -------  -------  ------",
        "ccnews   ccnews  0           0         0             0               0        0        1",
        "courier  ccnews  1           1         0             0               1        1        0",
        "gazette  ccnews  4           4         1             0               4        2        0",
    ]
    shown = str(local) if where == "path" else warc
    # the truncated last record: an error that names the file and the record's offset
    assert f"WARC file {shown}, record at byte offset {mixed.offsets[-1]}: " in outcome.stderr

    documents = stored_documents(tmp_path / "data")
    assert set(documents) == STORED
    engine = make_engine(f"sqlite:///{db_path(tmp_path / 'data')}")
    try:
        with make_session_factory(engine)() as session:
            queued = queue.list_candidates(session, QueueQuery(limit=None))
            assert {c.url: c.source_id for c in queued} == QUEUED
            assert {c.channel for c in queued} == {"backfill"}
            raqqa = next(c for c in queued if c.url.endswith("/defector-raqqa"))
            detail = queue.get_candidate(session, raqqa.id)
            assert detail is not None
            provenance = {k: detail.provenance[k] for k in (
                "source_id", "channel", "method", "discovered_from", "entry_id", "requested_url",
                "final_url", "http_status", "fetched_at")}
            assert provenance == {
                "source_id": "gazette", "channel": "backfill", "method": "ccnews", "discovered_from": shown,
                "entry_id": mixed.ids["https://gazette.example/2014/03/defector-raqqa"],
                "requested_url": "https://gazette.example/2014/03/defector-raqqa",
                "final_url": "https://gazette.example/2014/03/defector-raqqa",
                "http_status": 200, "fetched_at": "2014-03-10T10:00:00+00:00",
            }
    finally:
        engine.dispose()
    old = documents["https://gazette.example/2014/09/recrawled-old-defector"]
    assert (old.outcome, old.reason, old.detail, old.flagged) == (
        "skipped", "out_of_range", "published 2013-02-02, outside 2014-01-01..2015-12-31", False)
    assert documents["https://gazette.example/2015/07/road-repairs"].flagged is False
    assert {(d.channel, d.method) for d in documents.values()} == {("backfill", "ccnews")}
    assert not list((tmp_path / "data" / "backfill" / "ccnews").glob("*"))    # the spool was deleted


def test_records_are_stored_while_the_file_is_still_downloading(tmp_path: Path) -> None:
    written = write_warc(many_stories(40))
    data_dir = tmp_path / "data"
    stored_at_request: list[int] = []

    def warc(request: ServedRequest) -> Reply:
        stored_at_request.append(count_documents(data_dir))
        return Reply(200, WARC_TYPE, written.data)

    with FixtureServer({"/many.warc.gz": warc}) as server:
        config = write_config(tmp_path / "config", SOURCES, backfill={"ccnews_chunk_bytes": 4096})
        outcome = run_backfill_cli(config, data_dir, *WINDOW, "--warc", server.url("/many.warc.gz"))
        asked = ranges(server, "/many.warc.gz")

    assert outcome.returncode == 0, outcome.stderr[-3000:]
    assert asked == [(start, start + 4095) for start in range(0, len(written.data), 4096)]
    assert len(asked) >= 10
    # before the last chunk was even asked for, most of the records were already read and stored
    assert stored_at_request == sorted(stored_at_request)
    assert stored_at_request[0] == 0 and stored_at_request[-1] >= 30
    assert len(stored_documents(data_dir)) == 40


# ---------------------------------------------------------------- servers that ignore Range


def test_a_server_that_ignores_range_is_read_when_the_file_fits_in_download_maxsize(
    mixed: Written, tmp_path: Path
) -> None:
    with FixtureServer({"/whole.warc.gz": Reply(200, WARC_TYPE, mixed.data, ranges=False)}) as server:
        config = write_config(tmp_path / "config", SOURCES, backfill={"ccnews_chunk_bytes": 1024})
        outcome = run_backfill_cli(config, tmp_path / "data", *WINDOW, "--warc", server.url("/whole.warc.gz"))
        assert server.hits("/whole.warc.gz") == 1
    assert outcome.returncode == 0, outcome.stderr[-3000:]
    assert set(stored_documents(tmp_path / "data")) == STORED


def test_a_server_that_ignores_range_with_a_file_over_download_maxsize_is_a_clear_error(
    tmp_path: Path
) -> None:
    written = write_warc(many_stories(20))
    assert len(written.data) > 8192
    with FixtureServer({"/big.warc.gz": Reply(200, WARC_TYPE, written.data, ranges=False)}) as server:
        url = server.url("/big.warc.gz")
        config = write_config(tmp_path / "config", SOURCES, crawl={"download_maxsize": 8192},
                              backfill={"ccnews_chunk_bytes": 4096})
        outcome = run_backfill_cli(config, tmp_path / "data", *WINDOW, "--warc", url)
    assert outcome.returncode == 1, outcome.stdout + outcome.stderr[-3000:]
    assert f"discovery document {url}: the download was cancelled: Expected to receive {len(written.data)} " \
           "bytes which is larger than download max size (8192)" in outcome.stderr
    assert ("the server sent more than the 4096 bytes asked for (it ignores Range requests?). Download the "
            "file and pass its local path with --warc, or raise crawl.download_maxsize") in outcome.stderr
    assert stored_documents(tmp_path / "data") == {}


def test_a_missing_local_file_is_a_clear_error(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", SOURCES)
    missing = tmp_path / "nowhere.warc.gz"
    outcome = run_backfill_cli(config, tmp_path / "data", *WINDOW, "--warc", str(missing))
    assert outcome.returncode == 1
    assert (f"discovery document {missing}: cannot open the WARC file: No such file or directory; give an "
            "existing path or an http(s) URL with --warc") in outcome.stderr


# ---------------------------------------------------------------- a killed backfill resumes


def unit_rows(data_dir: Path) -> dict[str, tuple[str, str | None]]:
    if not db_path(data_dir).exists():
        return {}
    with sqlite3.connect(f"file:{db_path(data_dir)}?mode=ro", uri=True, timeout=5) as con:
        try:
            return {unit: (status, detail) for unit, status, detail in
                    con.execute("select unit, status, detail from backfill_units")}
        except sqlite3.OperationalError:
            return {}


def wait_for(check: Any, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def two_files(tmp_path: Path, mixed: Written) -> Iterator[tuple[FixtureServer, Path, Written]]:
    """A small local WARC file and a big one served slowly, chunk by chunk."""
    big = write_warc(many_stories(40))
    local = tmp_path / "small.warc.gz"
    local.write_bytes(mixed.data)
    with FixtureServer({"/big.warc.gz": Reply(200, WARC_TYPE, big.data, delay=0.15)}) as server:
        yield server, local, big


def test_a_killed_backfill_resumes_without_reading_anything_twice(
    two_files: tuple[FixtureServer, Path, Written], tmp_path: Path
) -> None:
    server, local, big = two_files
    url = server.url("/big.warc.gz")
    data_dir = tmp_path / "data"
    config = write_config(tmp_path / "config", SOURCES, backfill={"ccnews_chunk_bytes": 2048})
    args = (*WINDOW, "--warc", str(local), "--warc", url)

    proc = start_backfill_cli(config, data_dir, *args)
    try:
        def killable() -> bool:
            units = unit_rows(data_dir)
            small = units.get(f"ccnews:{local}")
            return small is not None and small[0] == "done" and len(ranges(server, "/big.warc.gz")) >= 5
        wait_for(killable, "the small file read and 5 chunks of the big one asked for")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    first_run = ranges(server, "/big.warc.gz")
    assert 5 <= len(first_run) < len(range(0, len(big.data), 2048))         # killed mid-download
    status, detail = unit_rows(data_dir)[f"ccnews:{url}"]
    assert status == "pending" and detail is not None
    before = stored_documents(data_dir)
    assert set(before) >= STORED                                          # the small file is done
    local.write_bytes(b"")   # were the finished file read again, it would now be an error

    server.clear_log()
    outcome = run_backfill_cli(config, data_dir, *args)
    assert outcome.returncode == 0, outcome.stderr[-3000:]
    assert outcome.stdout.splitlines()[-1].endswith(", resumed) 2014-01-01..2015-12-31 via ccnews: ok")
    assert "cannot open" not in outcome.stderr and "not a WARC record" not in outcome.stderr
    second_run = ranges(server, "/big.warc.gz")
    # the download went on where the spool ended: at most the chunk in flight when killed is asked again
    assert second_run[0][0] in (first_run[-1][0], first_run[-1][1] + 1)
    starts = [start for start, _ in first_run + second_run]
    assert len(starts) - len(set(starts)) <= 1
    assert sorted(set(starts)) == list(range(0, len(big.data), 2048))
    after = stored_documents(data_dir)
    assert set(after) == STORED | {story_url(i) for i in range(40)}
    # nothing stored twice: the documents of the first run are the same rows
    assert all(after[url].id == before[url].id for url in before)
    assert {status for status, _ in unit_rows(data_dir).values()} == {"done"}


# ---------------------------------------------------------------- real news WARC files


def responses(path: Path) -> dict[str, tuple[str, str]]:
    """URL -> (WARC-Record-ID, sha256 of the payload) of every response (an independent reading)."""
    with path.open("rb") as handle:
        return {r.rec_headers.get_header("WARC-Target-URI"): (
                    r.rec_headers.get_header("WARC-Record-ID"),
                    hashlib.sha256(r.content_stream().read()).hexdigest())
                for r in ArchiveIterator(handle) if r.rec_type == "response"}


def test_real_news_warc_files_from_a_url_and_a_path(shared_fixtures: Path, tmp_path: Path) -> None:
    folder = shared_fixtures / "warc" / "WebArticleCurator"
    articles = folder / "next_page_of_article.warc.gz"
    listings = folder / "extract_article_urls_from_page.warc.gz"
    if not articles.is_file() or not listings.is_file():
        pytest.skip(f"the WebArticleCurator WARC files are not in {folder}")
    sources = [
        {"id": "444", "name": "444", "kind": "feed", "urls": ["https://444.hu/feed"]},
        {"id": "telex", "name": "Telex", "kind": "feed", "urls": ["https://telex.hu/rss"]},
        {"id": "blikk", "name": "Blikk", "kind": "feed", "urls": ["https://www.blikk.hu/rss"]},
    ]
    with FixtureServer({"/articles.warc.gz": Reply(200, WARC_TYPE, articles.read_bytes())}) as server:
        url = server.url("/articles.warc.gz")
        config = write_config(tmp_path / "config", sources, backfill={"ccnews_chunk_bytes": 64 * 1024})
        outcome = run_backfill_cli(config, tmp_path / "data", "--since", "2021-01-01",
                                   "--until", "2022-02-28", "--via", "ccnews", "--warc", url,
                                   "--warc", str(listings))
        assert len(ranges(server, "/articles.warc.gz")) == -(-articles.stat().st_size // (64 * 1024))
    assert outcome.returncode == 0, outcome.stderr[-3000:]
    documents = stored_documents(tmp_path / "data")
    # crawled from 2021-01-01 to 2022-02-28 on the three sources' hosts (telex.hu's 2022-06 pages are not)
    expected = {
        "https://444.hu/2014/03/02/mindjart-kezdodik-az-oscar-dij-atadas": ("444", url),
        "https://444.hu/2014/03/23/real-madrid-barcelona-elo?page=7": ("444", url),
        "https://telex.hu/koronavirus/2021/01/21/oltasprogramrol-es-vakcinaigazolasrol-is-kerdezzuk-a-kormanyt/elo":
            ("telex", url),
        "https://444.hu/2014/03/02/mindjart-kezdodik-az-oscar-dij-atadas?page=4": ("444", url),
        "https://444.hu/2014/03/23/real-madrid-barcelona-elo": ("444", url),
        "https://telex.hu/rovat/koronavirus?oldal=126": ("telex", str(listings)),
        "https://telex.hu/rovat/koronavirus?oldal=4": ("telex", str(listings)),
        "https://www.blikk.hu/archivum/online?date=2020-06-01&page=2": ("blikk", str(listings)),
        "https://www.blikk.hu/archivum/online?date=2020-06-01&page=4": ("blikk", str(listings)),
    }
    assert {u: (d.source_id, d.discovered_from) for u, d in documents.items()} == expected
    written = {**responses(articles), **responses(listings)}
    for document in documents.values():
        record_id, payload_sha256 = written[document.final_url]
        assert (document.channel, document.method, document.entry_id) == ("backfill", "ccnews", record_id)
        assert (document.http_status, document.body_sha256) == (200, payload_sha256)
        assert document.archive_path is not None       # the record was archived like any fetched page
    oscar = documents["https://444.hu/2014/03/02/mindjart-kezdodik-az-oscar-dij-atadas"]
    assert oscar.fetched_at == datetime(2021, 2, 6, 17, 29, 56, 814901, tzinfo=UTC)     # its WARC-Date
