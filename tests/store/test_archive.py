"""The WARC archive: byte-exact round trips, standard WARC headers, rotation, killed crawls."""

from __future__ import annotations

import gzip
import logging
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from store import ArchiveError, WarcArchive, iter_records
from store.records import ArchivedResponse, ArchiveRef, FetchRecord

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
REAL_WARC = FIXTURES / "warc" / "WebArticleCurator" / "next_page_of_article.warc.gz"
NAME = re.compile(r"^dwatch-\d{8}T\d{6}Z-\d+-\d{5}\.warc\.gz$")


def _fetch(n: int = 0, **overrides: object) -> FetchRecord:
    values: dict[str, object] = {
        "requested_url": f"http://news.example.org/story/{n}?utm_source=rss",
        "final_url": f"https://news.example.org/story/{n}",
        "status": 200,
        "headers": (
            ("Content-Type", "text/html; charset=utf-8"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("Content-Encoding", "gzip"),
            ("X-Note", "déjà vu"),
        ),
        "body": b"<html><body>\xe2\x80\x9cI left\xe2\x80\x9d \x00\xff binary tail\r\n\r\n",
        "fetched_at": datetime(2024, 5, 2, 8, 30, 15, 250000, tzinfo=UTC),
        "request_headers": (("User-Agent", "defector-watch (+https://example.org/about)"),),
    }
    values.update(overrides)
    return FetchRecord(**values)  # type: ignore[arg-type]


def test_round_trip_is_exact(tmp_path: Path) -> None:
    archive = WarcArchive(tmp_path / "archive")
    fetches = [
        _fetch(0),
        _fetch(1, status=404, headers=(), body=b""),
        _fetch(2, status=599, final_url="http://news.example.org/story/2?utm_source=rss",
               body=os.urandom(50_000)),
    ]

    refs = [archive.write(fetch) for fetch in fetches]
    archive.close()

    for fetch, ref in zip(fetches, refs, strict=True):
        got = archive.read(ref)
        assert got == ArchivedResponse(
            url=fetch.final_url,
            status=fetch.status,
            headers=fetch.headers,
            body=fetch.body,
            requested_url=fetch.requested_url,
            fetched_at=fetch.fetched_at,
            record_id=ref.record_id,
            ref=ref,
        )
    assert archive.read(refs[0]).header("content-encoding") == "gzip"
    assert refs[0].path == refs[2].path and NAME.match(refs[0].path)
    assert refs[0].offset < refs[1].offset < refs[2].offset


def test_records_are_standard_warc_1_1_readable_by_warcio(tmp_path: Path) -> None:
    archive = WarcArchive(tmp_path)
    ref = archive.write(_fetch(7))
    archive.close()

    with (tmp_path / ref.path).open("rb") as handle:
        records = [
            (r.rec_type, r.rec_headers, r.http_headers, r.content_stream().read())
            for r in ArchiveIterator(handle)
        ]

    assert [r[0] for r in records] == ["warcinfo", "response", "request"]
    _, warc, http, body = records[1]
    assert warc.protocol == "WARC/1.1"
    assert warc.get_header("WARC-Target-URI") == "https://news.example.org/story/7"
    assert warc.get_header("WARC-Requested-URI") == "http://news.example.org/story/7?utm_source=rss"
    assert warc.get_header("WARC-Date") == "2024-05-02T08:30:15.250000Z"
    assert warc.get_header("WARC-Record-ID") == ref.record_id
    assert warc.get_header("WARC-Dwatch-Payload") == "decoded"
    # the decoded body is not announced as gzip to other tools; the original header is kept
    assert http.get_header("Content-Encoding") is None
    assert http.get_header("X-Dwatch-Orig-Content-Encoding") == "gzip"
    assert http.statusline == "200 OK"
    assert body == _fetch(7).body
    _, request_warc, request_http, _ = records[2]
    assert request_warc.get_header("WARC-Concurrent-To") == ref.record_id
    assert request_warc.get_header("WARC-Target-URI") == "https://news.example.org/story/7"
    assert (request_http.protocol, request_http.statusline) == ("GET", "/story/7 HTTP/1.1")
    assert request_http.get_header("User-Agent") == "defector-watch (+https://example.org/about)"
    # gzip per record: the response record alone is one complete gzip member
    raw = (tmp_path / ref.path).read_bytes()[ref.offset : ref.offset + ref.length]
    assert gzip.decompress(raw).startswith(b"WARC/1.1\r\nWARC-Type: response\r\n")


def test_requested_uri_is_only_written_when_it_differs(tmp_path: Path) -> None:
    archive = WarcArchive(tmp_path)
    url = "https://news.example.org/same"
    ref = archive.write(_fetch(requested_url=url, final_url=url))
    archive.close()
    with (tmp_path / ref.path).open("rb") as handle:
        response = [r for r in ArchiveIterator(handle) if r.rec_type == "response"][0]
        assert response.rec_headers.get_header("WARC-Requested-URI") is None
    assert archive.read(ref).requested_url == url


def test_files_rotate_by_size_and_every_record_stays_readable(tmp_path: Path) -> None:
    archive = WarcArchive(tmp_path, max_bytes=15_000)  # two 8 kB records per file
    fetches = [_fetch(n, body=os.urandom(8_000)) for n in range(6)]

    refs = [archive.write(fetch) for fetch in fetches]
    archive.close()

    paths = sorted({ref.path for ref in refs})
    assert len(paths) == 3 and all(NAME.match(p) for p in paths)
    assert [p.rsplit("-", 1)[1] for p in paths] == [
        "00000.warc.gz", "00001.warc.gz", "00002.warc.gz"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == paths
    assert [archive.read(ref).body for ref in refs] == [f.body for f in fetches]
    listed = [r for path in paths for r in archive.iter_records(path)]
    assert [r.ref for r in listed] == refs


def test_two_writers_in_one_directory_never_share_a_file(tmp_path: Path) -> None:
    first, second = WarcArchive(tmp_path), WarcArchive(tmp_path)
    ref_a = first.write(_fetch(1))
    ref_b = second.write(_fetch(2))
    first.close()
    second.close()
    assert ref_a.path != ref_b.path
    assert first.read(ref_b).body == second.read(ref_a).body == _fetch(0).body


def test_a_killed_crawl_leaves_every_completed_record_readable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive = WarcArchive(tmp_path)
    refs = [archive.write(_fetch(n, body=os.urandom(30_000))) for n in range(3)]
    archive.close()
    path = tmp_path / refs[0].path
    cut = refs[2].offset + refs[2].length // 2  # the third response was half written
    path.write_bytes(path.read_bytes()[:cut])

    assert archive.read(refs[0]).url == "https://news.example.org/story/0"
    assert archive.read(refs[1]).url == "https://news.example.org/story/1"
    with pytest.raises(ArchiveError, match=r"is truncated: \d+ of \d+ bytes on disk"):
        archive.read(refs[2])
    with caplog.at_level(logging.WARNING, logger="store.archive"):
        listed = list(archive.iter_records(refs[0].path))
    assert [r.ref for r in listed] == refs[:2]
    assert "bytes after the last complete record" in caplog.text


def test_bad_refs_and_bad_input_are_clear_errors(tmp_path: Path) -> None:
    archive = WarcArchive(tmp_path)
    ref = archive.write(_fetch(1))
    archive.close()
    with pytest.raises(ArchiveError, match="must be relative to the archive directory"):
        archive.read(ArchiveRef("../../etc/passwd", 0, 10, "x"))
    with pytest.raises(ArchiveError, match="expected <urn:uuid:other>; the archive file was"):
        archive.read(ArchiveRef(ref.path, ref.offset, ref.length, "<urn:uuid:other>"))
    with pytest.raises(ArchiveError, match="cannot read WARC file"):
        archive.read(ArchiveRef("missing.warc.gz", 0, 10, "x"))
    with pytest.raises(ArchiveError, match="fetched_at 2024-05-02T00:00:00 has no time zone"):
        archive.write(_fetch(fetched_at=datetime(2024, 5, 2)))
    with pytest.raises(ArchiveError, match="header 'X-Bad' contains a line break"):
        archive.write(_fetch(headers=(("X-Bad", "a\r\nInjected: 1"),)))


@pytest.mark.skipif(not REAL_WARC.is_file(), reason=f"shared WARC fixture absent: {REAL_WARC}")
def test_iter_records_reads_a_real_third_party_warc() -> None:
    """25 response records (index.hu, telex.hu, ...); chunking and gzip decoded for reuse."""
    records = list(iter_records(REAL_WARC))

    assert len(records) == 25
    assert {r.status for r in records} == {200}
    assert all(r.url.startswith(("http://", "https://")) for r in records)
    assert all(b"<html" in r.body[:5000].lower() for r in records)
    first = records[0]
    assert first.ref is not None and first.ref.path == str(REAL_WARC)
    again = WarcArchive(REAL_WARC.parent).read(
        ArchiveRef(REAL_WARC.name, first.ref.offset, first.ref.length, first.ref.record_id)
    )
    assert (again.url, again.body) == (first.url, first.body)


def test_a_failed_write_is_reported_and_the_next_record_starts_a_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = WarcArchive(tmp_path)
    kept = archive.write(_fetch(1))

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("store.archive.os.fsync", disk_full)
    with pytest.raises(ArchiveError, match=r"cannot archive https://news\.example\.org/story/2 .*"
                       r"No space left on device; check free disk space"):
        archive.write(_fetch(2))
    monkeypatch.undo()
    after = archive.write(_fetch(3))
    archive.close()

    assert after.path != kept.path
    assert archive.read(kept).url == "https://news.example.org/story/1"
    assert archive.read(after).url == "https://news.example.org/story/3"
