"""extract.warc_records: response records of chosen hosts and dates, from whole or growing WARC files."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from extract.warc_records import WarcCounts, WarcReader, WarcResponse, WarcSelection, matching_host

WINDOW = WarcSelection(
    hosts=frozenset({"example.org", "news.example.net"}),
    crawled_from=datetime(2015, 1, 1, tzinfo=UTC),
    crawled_to=datetime(2015, 12, 31, 23, 59, 59, tzinfo=UTC),
)


@dataclass(frozen=True)
class Rec:
    """One record the test writes: a response unless ``kind`` says otherwise."""

    url: str
    date: str
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: str = "200 OK"
    kind: str = "response"


def page(n: int) -> bytes:
    return (f"<html><head><title>Story {n}</title></head><body><p>Paragraph of story {n}.</p>"
            + "<p>filler text</p>" * 40 + "</body></html>").encode()


def write_warc(records: list[Rec], *, gzip: bool = True) -> tuple[bytes, list[int]]:
    """The WARC file's bytes and the offset where each record starts."""
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=gzip)
    offsets = []
    for rec in records:
        offsets.append(out.tell())
        warc_headers = {"WARC-Date": rec.date}
        if rec.kind == "warcinfo":
            record = writer.create_warcinfo_record("test.warc", {"software": "test"})
        elif rec.kind == "revisit":
            record = writer.create_revisit_record(rec.url, digest="sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                                  refers_to_uri=rec.url, refers_to_date=rec.date,
                                                  warc_headers_dict=warc_headers)
        elif rec.kind == "request":
            http = StatusAndHeaders("GET / HTTP/1.1", [("Host", "example.org")], is_http_request=True)
            record = writer.create_warc_record(rec.url, "request", http_headers=http,
                                               warc_headers_dict=warc_headers)
        else:
            http = StatusAndHeaders(rec.status, [("Content-Type", rec.content_type)], protocol="HTTP/1.1")
            record = writer.create_warc_record(rec.url, "response", payload=io.BytesIO(rec.body),
                                               length=len(rec.body), http_headers=http,
                                               warc_headers_dict=warc_headers)
        writer.write_record(record)
    return out.getvalue(), offsets


MIXED = [
    Rec("", "", kind="warcinfo"),
    Rec("https://www.example.org/2015/a", "2015-03-01T10:00:00Z", page(1)),             # kept
    Rec("https://www.example.org/2015/a", "2015-03-01T10:00:00Z", kind="request"),
    Rec("https://other.example.com/b", "2015-03-02T10:00:00Z", page(2)),                # other host
    Rec("https://example.org/2014/c", "2014-12-31T23:59:59Z", page(3)),                 # before window
    Rec("https://example.org/2016/d", "2016-01-01T00:00:00Z", page(4)),                 # after window
    Rec("https://example.org/logo.png", "2015-04-01T00:00:00Z", b"\x89PNG", "image/png"),  # not HTML
    Rec("https://example.org/2015/a", "2015-05-01T00:00:00Z", kind="revisit"),          # revisit
    Rec("https://example.org/gone", "2015-05-02T00:00:00Z", b"gone", status="404 Not Found"),
    Rec("http://live.news.example.net/e?x=1", "2015-06-01T12:30:00+02:00", page(5)),  # subdomain, kept
    Rec("https://example.org.evil.com/f", "2015-06-02T00:00:00Z", page(6)),             # lookalike host
    Rec("https://example.org/2015/g", "2015-12-31T23:59:59Z", page(7)),                 # last second: kept
]
KEPT = [
    ("https://www.example.org/2015/a", "example.org", datetime(2015, 3, 1, 10, tzinfo=UTC), page(1)),
    ("http://live.news.example.net/e?x=1", "news.example.net", datetime(2015, 6, 1, 10, 30, tzinfo=UTC),
     page(5)),
    ("https://example.org/2015/g", "example.org", datetime(2015, 12, 31, 23, 59, 59, tzinfo=UTC), page(7)),
]


def summary(responses: list[WarcResponse]) -> list[tuple[str, str, datetime, bytes]]:
    return [(r.url, r.host, r.warc_date, r.body) for r in responses]


def read_all(data: bytes, select: WarcSelection = WINDOW, *,
             name: str = "t.warc.gz") -> tuple[WarcReader, list[WarcResponse]]:
    reader = WarcReader(io.BytesIO(data), name=name, select=select)
    return reader, list(reader.read(len(data), final=True))


@pytest.mark.parametrize("gzip", [True, False], ids=["gzip", "plain"])
def test_exactly_the_responses_of_the_hosts_in_the_window(gzip: bool) -> None:
    data, offsets = write_warc(MIXED, gzip=gzip)
    reader, found = read_all(data)
    assert summary(found) == KEPT
    assert [r.offset for r in found] == [offsets[1], offsets[9], offsets[11]]
    assert [r.status for r in found] == [200, 200, 200]
    assert found[0].content_type == "text/html; charset=utf-8"
    assert found[0].record_id.startswith("<urn:uuid:")
    assert found[2].offset + found[2].length <= len(data)
    assert reader.counts == WarcCounts(records=12, responses=9, kept=3, revisits=1, other_types=2,
                                       other_host=2, out_of_window=2, not_html=1, not_ok=1)
    assert reader.problems == []
    assert reader.offset >= offsets[-1]


def test_without_bounds_every_ok_html_response_is_kept() -> None:
    data, _ = write_warc(MIXED)
    _, found = read_all(data, WarcSelection())
    assert [r.host for r in found] == ["example.org", "other.example.com", "example.org", "example.org",
                                       "live.news.example.net", "example.org.evil.com", "example.org"]


def test_a_record_is_a_host_or_its_subdomain_never_a_lookalike() -> None:
    hosts = frozenset({"example.org", "news.example.org"})
    assert matching_host("https://WWW.Example.org:8443/a", hosts) == "example.org"
    assert matching_host("https://www.news.example.org/a", hosts) == "news.example.org"
    assert matching_host("http://a.b.example.org/", hosts) == "example.org"
    assert matching_host("example.org", hosts) == "example.org"
    assert matching_host("https://example.org.evil.com/", hosts) is None
    assert matching_host("https://notexample.org/", hosts) is None
    assert matching_host("not a url", hosts) is None


def test_a_naive_window_bound_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"crawled_from 2015-01-01T00:00:00 has no time zone"):
        WarcSelection(crawled_from=datetime(2015, 1, 1))


# ---------------------------------------------------------------- a file that is still growing

MANY = [Rec(f"https://example.org/2015/{n}", f"2015-02-{1 + n % 27:02d}T08:00:00Z", page(n))
        for n in range(30)]


def read_growing(data: bytes, cuts: list[int], *, name: str = "spool",
                 select: WarcSelection = WINDOW) -> tuple[WarcReader, list[tuple[int, str]]]:
    """Read ``data`` as a spool that grows to each cut in turn; (available, url) per emitted record."""
    spool = io.BytesIO()
    reader = WarcReader(spool, name=name, select=select)
    emitted: list[tuple[int, str]] = []
    previous = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        if cut <= previous:
            continue
        spool.seek(0, io.SEEK_END)
        spool.write(data[previous:cut])   # only the bytes "downloaded" so far are in the spool
        previous = cut
        for response in reader.read(cut, final=cut == len(data)):
            emitted.append((cut, response.url))
    return reader, emitted


@pytest.mark.parametrize("gzip", [True, False], ids=["gzip", "plain"])
def test_a_growing_spool_hands_out_each_record_once_as_soon_as_it_is_complete(gzip: bool) -> None:
    data, offsets = write_warc(MANY, gzip=gzip)
    chunk = 500                                            # records are ~1 KB gzipped, ~3 KB plain
    reader, emitted = read_growing(data, list(range(chunk, len(data), chunk)))
    assert [url for _, url in emitted] == [r.url for r in MANY]
    assert reader.problems == []
    assert reader.counts.kept == 30 and reader.counts.records == 30
    # streamed: each record came out at the first growth step that put a byte beyond its end on disk
    cuts = [*range(chunk, len(data), chunk), len(data)]
    ends = [*offsets[1:], len(data)]
    expected = [min((c for c in cuts if c > end), default=len(data)) for end in ends]
    assert [at for at, _ in emitted] == expected
    assert sum(1 for at, _ in emitted if at < len(data) // 2) >= 10


@settings(max_examples=40, deadline=None)
@given(st.booleans(), st.lists(st.integers(min_value=1, max_value=40_000), max_size=25))
def test_any_growth_pattern_gives_the_same_records_as_one_read(gzip: bool, cuts: list[int]) -> None:
    data, _ = write_warc(MANY[:8], gzip=gzip)
    whole = [r.url for r in read_all(data)[1]]
    reader, emitted = read_growing(data, [c for c in cuts if c < len(data)])
    assert [url for _, url in emitted] == whole == [r.url for r in MANY[:8]]
    assert reader.problems == []
    assert reader.counts.kept == 8


def test_a_new_reader_resumes_at_the_offset_the_last_one_reached() -> None:
    data, offsets = write_warc(MANY[:10])
    first = WarcReader(io.BytesIO(data), name="f", select=WINDOW)
    got = [r.url for r in first.read(offsets[6] + 100, final=False)]
    assert got == [r.url for r in MANY[:6]]
    assert first.offset == offsets[6]                     # the cut record is read again, whole
    second = WarcReader(io.BytesIO(data), name="f", select=WINDOW, start=first.offset)
    rest = [r.url for r in second.read(len(data), final=True)]
    assert rest == [r.url for r in MANY[6:10]]


# ---------------------------------------------------------------- broken files

@pytest.mark.parametrize("gzip", [True, False], ids=["gzip", "plain"])
def test_a_truncated_last_record_waits_while_downloading_and_is_a_problem_at_the_end(gzip: bool) -> None:
    data, offsets = write_warc(MANY[:5], gzip=gzip)
    cut = data[: offsets[4] + (offsets[4] - offsets[3]) // 2]       # the last record half written
    reader = WarcReader(io.BytesIO(cut), name="CC-NEWS-x.warc.gz", select=WINDOW)
    assert [r.url for r in reader.read(len(cut), final=False)] == [r.url for r in MANY[:4]]
    assert reader.problems == [] and reader.offset == offsets[4]
    assert list(reader.read(len(cut), final=True)) == []
    [problem] = reader.problems
    assert problem.offset == offsets[4]
    assert str(problem).startswith(f"WARC file CC-NEWS-x.warc.gz, record at byte offset {offsets[4]}: ")
    assert "short" in problem.detail or "cut" in problem.detail
    assert reader.counts.kept == 4 and reader.counts.problems == 1
    assert reader.offset == len(cut)


@pytest.mark.parametrize("gzip", [True, False], ids=["gzip", "plain"])
def test_a_corrupt_record_is_reported_and_the_next_records_are_still_read(gzip: bool) -> None:
    data, offsets = write_warc(MANY[:6], gzip=gzip)
    broken = bytearray(data)
    broken[offsets[2] + 2 : offsets[2] + 60] = b"A" * 58           # record 3's header is garbage
    reader, found = read_all(bytes(broken), name="broken.warc")
    assert [r.url for r in found] == [MANY[i].url for i in (0, 1, 3, 4, 5)]
    [problem] = reader.problems
    assert problem.offset == offsets[2] or (not gzip and offsets[2] - 4 <= problem.offset <= offsets[2])
    assert "unreadable record" in problem.detail and "skipped to the next record" in problem.detail
    assert all(ch.isprintable() for ch in problem.detail)            # no binary junk in the message
    assert reader.counts.kept == 5 and reader.counts.problems == 1


def test_a_corrupt_record_in_a_growing_file_is_reported_once() -> None:
    data, offsets = write_warc(MANY[:12])
    broken = bytearray(data)
    broken[offsets[3] + 2 : offsets[3] + 40] = b"B" * 38
    reader, emitted = read_growing(bytes(broken), list(range(300, len(data), 300)))
    assert [url for _, url in emitted] == [MANY[i].url for i in range(12) if i != 3]
    assert [p.offset for p in reader.problems] == [offsets[3]]


def test_a_record_with_a_bad_warc_date_is_reported_and_skipped_alone() -> None:
    data, offsets = write_warc([MANY[0], Rec("https://example.org/2015/x", "yesterday", page(9)), MANY[1]])
    reader, found = read_all(data)
    assert [r.url for r in found] == [MANY[0].url, MANY[1].url]
    [problem] = reader.problems
    assert problem.offset == offsets[1]
    assert problem.detail == "WARC-Date 'yesterday' of https://example.org/2015/x is not a date"


def test_a_payload_over_the_limit_is_counted_not_held() -> None:
    data, _ = write_warc(MANY[:3])
    reader, found = read_all(data, WarcSelection(max_body_bytes=len(page(1)) - 1))
    assert found == []
    assert reader.counts.too_large == 3 and reader.problems == []


def test_not_a_warc_file_is_one_clear_problem() -> None:
    data = b"<html>this is a web page, not a WARC file</html>\n" * 50
    reader, found = read_all(data, name="page.html")
    assert found == []
    [problem] = reader.problems
    assert problem.offset == 0 and problem.name == "page.html"
    assert problem.detail == ("not a WARC record: it starts with '<html>this is a web page, not a WARC "
                              "file</html>'; is this a WARC file?")


# ---------------------------------------------------------------- real news WARC files

FIXTURE_2021 = [  # next_page_of_article.warc.gz: the 444.hu and telex.hu pages crawled in 2021
    "https://444.hu/2014/03/02/mindjart-kezdodik-az-oscar-dij-atadas",
    "https://444.hu/2014/03/23/real-madrid-barcelona-elo?page=7",
    "https://telex.hu/koronavirus/2021/01/21/oltasprogramrol-es-vakcinaigazolasrol-is-kerdezzuk-a-kormanyt/elo",
    "https://444.hu/2014/03/02/mindjart-kezdodik-az-oscar-dij-atadas?page=4",
    "https://444.hu/2014/03/23/real-madrid-barcelona-elo",
]


def test_real_news_warc_files_read_whole_and_while_growing(shared_fixtures: Path) -> None:
    folder = shared_fixtures / "warc" / "WebArticleCurator"
    article_file = folder / "next_page_of_article.warc.gz"
    listing_file = folder / "extract_article_urls_from_page.warc.gz"
    if not article_file.is_file() or not listing_file.is_file():
        pytest.skip(f"the WebArticleCurator WARC files are not in {folder}")
    select = WarcSelection(hosts=frozenset({"444.hu", "telex.hu"}),
                           crawled_from=datetime(2021, 1, 1, tzinfo=UTC),
                           crawled_to=datetime(2021, 12, 31, 23, 59, 59, tzinfo=UTC))
    with article_file.open("rb") as handle:
        reader = WarcReader(handle, name=article_file.name, select=select)
        found = list(reader.read(article_file.stat().st_size, final=True))
    assert [r.url for r in found] == FIXTURE_2021
    assert found[2].warc_date == datetime(2021, 1, 30, 12, 42, 47, 582078, tzinfo=UTC)
    assert [r.host for r in found] == ["444.hu", "444.hu", "telex.hu", "444.hu", "444.hu"]
    assert all(r.status == 200 and r.body.lstrip().lower().startswith(b"<!doctype html") for r in found)
    assert "Oscar" in found[0].body.decode("utf-8")
    assert reader.counts == WarcCounts(records=51, responses=25, kept=5, other_types=26, other_host=17,
                                       out_of_window=3)
    assert reader.problems == []

    data = article_file.read_bytes()
    grown, emitted = read_growing(data, list(range(64 * 1024, len(data), 64 * 1024)), name=article_file.name,
                                  select=select)
    assert [url for _, url in emitted] == FIXTURE_2021
    assert emitted[0][0] < len(data) // 2                   # handed out while "downloading"
    assert grown.counts == reader.counts

    everything, _ = read_all(listing_file.read_bytes(), WarcSelection(), name=listing_file.name)
    assert everything.counts.responses == 26
    assert everything.counts.not_html == 1                  # vs.hu's JSON archive API answer
    assert everything.counts.kept == 25 and everything.problems == []
