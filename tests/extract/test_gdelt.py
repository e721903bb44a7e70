"""extract.gdelt: the DOC 2.0 API's artlist answers, its refusals, and the time slices asked for.

The answers are written for these tests in the documented format (mode=artlist&format=json):
{"articles": [{"url", "url_mobile", "title", "seendate", "socialimage", "domain", "language",
"sourcecountry"}]}, "{}" when nothing matched, and GDELT's plain-text refusals.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract.gdelt import (
    GDELT_MAX_RECORDS,
    MIN_SLICE,
    GdeltArticle,
    GdeltError,
    GdeltFormatError,
    GdeltQueryRejected,
    GdeltRateLimited,
    TimeSlice,
    artlist_url,
    parse_artlist,
    parse_seendate,
    plan_slices,
)

API = "https://api.gdeltproject.org/api/v2/doc/doc"
URL = (API + "?query=%22islamic+state%22+defector&mode=artlist&format=json&maxrecords=250"
       "&startdatetime=20150101000000&enddatetime=20150107235959")

ARTLIST = """{"articles": [
 {"url": "https://www.example-times.com/world/2015/01/03/leaving-the-caliphate",
  "url_mobile": "https://m.example-times.com/world/2015/01/03/leaving-the-caliphate",
  "title": "Leaving the caliphate :  a former fighter speaks",
  "seendate": "20150103T121500Z",
  "socialimage": "https://www.example-times.com/img/lead.jpg",
  "domain": "example-times.com", "language": "English", "sourcecountry": "United Kingdom"},
 {"url": "https://akhbar.example.net/2015/01/05/\u0645\u0646\u0634\u0642",
  "url_mobile": "", "title": "\u0645\u0646\u0634\u0642 \u0639\u0646 \u062f\u0627\u0639\u0634",
  "seendate": "20150105T234500Z", "socialimage": "",
  "domain": "akhbar.example.net", "language": "Arabic", "sourcecountry": "Jordan"},
 {"url": "", "title": "no link", "seendate": "20150106T000000Z"},
 {"url": "/relative/path", "title": "relative", "seendate": "20150106T001500Z"},
 {"url": "https://blog.example.org/p?id=7", "title": "", "seendate": "not a date"}
]}"""


def test_artlist_rows_become_articles() -> None:
    result = parse_artlist(ARTLIST.encode(), URL)
    assert result.articles == (
        GdeltArticle(
            url="https://www.example-times.com/world/2015/01/03/leaving-the-caliphate",
            title="Leaving the caliphate : a former fighter speaks",
            seen=datetime(2015, 1, 3, 12, 15, tzinfo=UTC),
            domain="example-times.com",
            language="English",
            source_country="United Kingdom",
            url_mobile="https://m.example-times.com/world/2015/01/03/leaving-the-caliphate",
            social_image="https://www.example-times.com/img/lead.jpg",
        ),
        GdeltArticle(
            url="https://akhbar.example.net/2015/01/05/منشق",
            title="منشق عن داعش",
            seen=datetime(2015, 1, 5, 23, 45, tzinfo=UTC),
            domain="akhbar.example.net",
            language="Arabic",
            source_country="Jordan",
        ),
        GdeltArticle(url="https://blog.example.org/p?id=7", title=None, seen=None),
    )
    assert result.rows == 5
    assert result.dropped == 2
    assert result.detail == "2 rows without an http(s) url dropped"
    assert not result.full()


@pytest.mark.parametrize("body", [b"{}", b"  {}\n", b'{"articles": []}', b"\xef\xbb\xbf{}"])
def test_nothing_found(body: bytes) -> None:
    result = parse_artlist(body, URL)
    assert (result.articles, result.rows, result.dropped, result.detail) == ((), 0, 0, None)


def test_full_answer_holds_the_cap() -> None:
    def answer(n: int) -> bytes:
        rows = [{"url": f"https://news.example.com/a/{i}", "title": f"t{i}", "seendate": "20150103T121500Z"}
                for i in range(n)]
        return json.dumps({"articles": rows}).encode()

    assert parse_artlist(answer(GDELT_MAX_RECORDS), URL).full()
    assert not parse_artlist(answer(GDELT_MAX_RECORDS - 1), URL).full()
    assert parse_artlist(answer(10), URL).full(maxrecords=10)


def test_invalid_escapes_and_control_characters_are_repaired() -> None:
    body = (b'{"articles": [{"url": "https://news.example.com/a",'
            b' "title": "He said \\\'no\\\'\tthen\x01left", "seendate": "20150103T121500Z"}]}')
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)   # what a strict reader makes of GDELT's answer
    result = parse_artlist(body, URL)
    assert [a.title for a in result.articles] == ["He said \\'no\\' then left"]
    assert result.detail == "2 invalid JSON escapes repaired"


def test_rate_limit_text_is_a_typed_error() -> None:
    body = (b"Please limit requests to one every 5 seconds or contact kalev.leetaru5@gmail.com"
            b" for larger queries.")
    with pytest.raises(GdeltRateLimited) as caught:
        parse_artlist(body, URL)
    error = caught.value
    assert error.seconds == 5.0
    assert error.url == URL
    assert error.text.startswith("Please limit requests to one every 5 seconds")
    assert str(error).startswith(f"GDELT DOC API {URL}: rate limited ('Please limit requests")
    assert "backfill.gdelt_delay at 5 seconds or more" in str(error)


def test_rate_limit_in_an_html_page_is_still_a_rate_limit() -> None:
    body = b"<html><body><p>Too Many Requests</p></body></html>"
    with pytest.raises(GdeltRateLimited) as caught:
        parse_artlist(body, URL)
    assert caught.value.seconds is None
    assert caught.value.text == "Too Many Requests"


@pytest.mark.parametrize(
    "said",
    ["Your search contained a keyword that was too short.", "The specified phrase is too short."],
)
def test_rejected_query_names_the_query_and_the_fix(said: str) -> None:
    with pytest.raises(GdeltQueryRejected) as caught:
        parse_artlist(said.encode() + b"\n", URL)
    error = caught.value
    assert error.query == '"islamic state" defector'
    assert error.text == said
    assert str(error) == (
        f"GDELT DOC API {URL}: GDELT rejected the query '\"islamic state\" defector': {said!r}; "
        "change it in backfill.gdelt_queries (keywords of 3+ letters, quoted phrases of 2+ words, "
        "operators as GDELT documents them)"
    )
    assert isinstance(error, GdeltError) and isinstance(error, ValueError)


def test_html_page_is_a_format_error() -> None:
    body = b"<!DOCTYPE html><html><head><title>Not Found</title></head><body><h1>Not Found</h1></body></html>"
    with pytest.raises(GdeltFormatError) as caught:
        parse_artlist(body, URL)
    assert caught.value.text == "Not Found Not Found"
    assert "an HTML page instead of the JSON article list" in str(caught.value)
    assert "check that backfill.gdelt_url is the DOC 2.0 endpoint" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "an empty answer (not even {}); the request was cut or the endpoint is wrong"),
        (b'{"articles": [{"url": "https://news.example.com/a", "ti',
         "broken JSON at line 1 column 53 (Unterminated string starting at; near"),
        (b'{"timeline": [{"series": "Volume Intensity", "data": []}]}',
         "a JSON object without 'articles' (keys: timeline); the request must ask mode=artlist&format=json"),
        (b'{"articles": {"url": "https://news.example.com/a"}}', "'articles' is a JSON dict, not a list"),
        (b'[{"url": "https://news.example.com/a"}]', "a JSON list instead of an object with 'articles'"),
    ],
)
def test_other_answers_are_format_errors(body: bytes, says: str) -> None:
    with pytest.raises(GdeltFormatError) as caught:
        parse_artlist(body, URL)
    assert says in str(caught.value)
    assert str(caught.value).startswith(f"GDELT DOC API {URL}: ")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_parse_or_raise_a_gdelt_error(body: bytes) -> None:
    try:
        result = parse_artlist(body, URL)
    except GdeltError as exc:
        assert str(exc).startswith(f"GDELT DOC API {URL}: ")
    else:
        assert result.rows >= len(result.articles) == result.rows - result.dropped


def test_parse_seendate() -> None:
    assert parse_seendate("20150103T121500Z") == datetime(2015, 1, 3, 12, 15, tzinfo=UTC)
    assert parse_seendate(" 20241231T235959Z ") == datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)
    for bad in ("2015-01-03T12:15:00Z", "20150132T121500Z", "20150103T121500", "", None, 20150103):
        assert parse_seendate(bad) is None


# ---------------------------------------------------------------- time slices


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)   # type: ignore[arg-type, misc]


def test_plan_slices_cover_the_days_inclusive() -> None:
    slices = plan_slices(date(2015, 1, 1), date(2015, 1, 20), 7)
    assert slices == [
        TimeSlice(utc(2015, 1, 1), utc(2015, 1, 8)),
        TimeSlice(utc(2015, 1, 8), utc(2015, 1, 15)),
        TimeSlice(utc(2015, 1, 15), utc(2015, 1, 21)),
    ]
    assert [(s.startdatetime, s.enddatetime) for s in slices] == [
        ("20150101000000", "20150107235959"),
        ("20150108000000", "20150114235959"),
        ("20150115000000", "20150120235959"),
    ]
    assert slices[0].key == "20150101000000:20150107235959"
    assert str(slices[2]) == "2015-01-15 00:00..2015-01-21 00:00 UTC"
    assert plan_slices(date(2015, 3, 1), date(2015, 3, 1), 7) == [TimeSlice(utc(2015, 3, 1), utc(2015, 3, 2))]


def test_plan_slices_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="until 2014-12-31 is before since 2015-01-01"):
        plan_slices(date(2015, 1, 1), date(2014, 12, 31), 7)
    with pytest.raises(ValueError, match="backfill.gdelt_slice_days must be at least 1, got 0"):
        plan_slices(date(2015, 1, 1), date(2015, 1, 31), 0)
    with pytest.raises(TypeError, match="takes dates"):
        plan_slices(utc(2015, 1, 1), date(2015, 1, 31), 7)
    with pytest.raises(ValueError, match="tz-aware"):
        TimeSlice(datetime(2015, 1, 1), datetime(2015, 1, 2))   # noqa: DTZ001


def test_a_week_splits_at_whole_hours_down_to_one_hour() -> None:
    week = TimeSlice(utc(2015, 1, 1), utc(2015, 1, 8))
    first, second = week.halves() or ()
    assert (first, second) == (TimeSlice(utc(2015, 1, 1), utc(2015, 1, 4, 12)),
                               TimeSlice(utc(2015, 1, 4, 12), utc(2015, 1, 8)))
    lengths = []
    span: TimeSlice | None = week
    while span is not None:
        lengths.append(span.end - span.start)
        halves = span.halves()
        span = halves[0] if halves else None
    assert [length // MIN_SLICE for length in lengths] == [168, 84, 42, 21, 10, 5, 2, 1]
    assert TimeSlice(utc(2015, 1, 1), utc(2015, 1, 1, 1)).halves() is None
    assert TimeSlice(utc(2015, 1, 1), utc(2015, 1, 1, 0, 30)).halves() is None
    assert TimeSlice(utc(2015, 1, 1), utc(2015, 1, 1, 1, 30)).halves() == (
        TimeSlice(utc(2015, 1, 1), utc(2015, 1, 1, 1)), TimeSlice(utc(2015, 1, 1, 1), utc(2015, 1, 1, 1, 30)))


@given(st.integers(min_value=1, max_value=24 * 31), st.integers(min_value=0, max_value=59))
def test_halves_tile_their_slice(hours: int, minutes: int) -> None:
    span = TimeSlice(utc(2016, 2, 28), utc(2016, 2, 28) + timedelta(hours=hours, minutes=minutes))
    halves = span.halves()
    if span.end - span.start <= MIN_SLICE:
        assert halves is None
        return
    assert halves is not None
    first, second = halves
    assert first.start == span.start and first.end == second.start and second.end == span.end
    assert (first.end - first.start) % MIN_SLICE == timedelta(0)     # cut at a whole hour
    assert first.enddatetime < second.startdatetime                   # no second asked twice


def test_artlist_url() -> None:
    span = TimeSlice(utc(2015, 1, 1), utc(2015, 1, 8))
    url = artlist_url(API, '"islamic state" defector', span)
    assert url == URL
    assert parse_qs(urlsplit(url).query) == {
        "query": ['"islamic state" defector'], "mode": ["artlist"], "format": ["json"],
        "maxrecords": ["250"], "startdatetime": ["20150101000000"], "enddatetime": ["20150107235959"],
    }
    assert artlist_url("http://127.0.0.1:8080/doc?key=1", "isis", span, maxrecords=50).startswith(
        "http://127.0.0.1:8080/doc?key=1&query=isis&mode=artlist&format=json&maxrecords=50&")
    with pytest.raises(ValueError, match="an empty GDELT query"):
        artlist_url(API, "  ", span)
    with pytest.raises(ValueError, match="maxrecords must be 1..250, got 251"):
        artlist_url(API, "isis", span, maxrecords=251)
