"""extract.cdx on answers in the CDX server's documented output=json format.

The answers below follow wayback-cdx-server/README.md (github.com/internetarchive/wayback):
a header row, capture rows, and with showResumeKey an empty row then the resumption key.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest

from extract.cdx import CdxCapture, CdxError, CdxPage, cdx_query_url, parse_cdx_json, replay_url

QUERY = "http://cdx.test/cdx/search/cdx?url=news.example.org/&output=json"
HEADER = ["urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length"]


def answer(*rows: list[str]) -> bytes:
    return json.dumps([HEADER, *rows]).encode()


def test_captures_and_resume_key() -> None:
    body = (
        b'[["urlkey","timestamp","original","mimetype","statuscode","digest","length"],\n'
        b' ["org,example,news)/2014/03/left-raqqa", "20140312081500", '
        b'"http://news.example.org:80/2014/03/left-raqqa", "text/html", "200", '
        b'"Q4YULN754FHV2U6Q5JUT6Q2P57WEWNNY", "9415"],\n'
        b' ["org,example,news)/2015/01/return", "20150107230000", '
        b'"https://news.example.org/2015/01/return?ref=home", "text/html", "200", '
        b'"XAHDNHZ5P3GSSSNJ3DMEOJF7BMCCPZR3", "10402"],\n'
        b" [],\n"
        b' ["org%2Cexample%2Cnews%29%2F2015%2F01%2Freturn+20150107230000%21"]]'
    )
    page = parse_cdx_json(body, QUERY)
    assert page == CdxPage(
        captures=(
            CdxCapture(
                timestamp=datetime(2014, 3, 12, 8, 15, tzinfo=UTC),
                original="http://news.example.org:80/2014/03/left-raqqa",
                mimetype="text/html",
                statuscode=200,
                digest="Q4YULN754FHV2U6Q5JUT6Q2P57WEWNNY",
            ),
            CdxCapture(
                timestamp=datetime(2015, 1, 7, 23, 0, tzinfo=UTC),
                original="https://news.example.org/2015/01/return?ref=home",
                mimetype="text/html",
                statuscode=200,
                digest="XAHDNHZ5P3GSSSNJ3DMEOJF7BMCCPZR3",
            ),
        ),
        resume_key="org%2Cexample%2Cnews%29%2F2015%2F01%2Freturn+20150107230000%21",
        fields=tuple(HEADER),
    )
    assert page.captures[0].wayback_timestamp == "20140312081500"


def test_last_page_has_no_resume_key_and_empty_answer_has_nothing() -> None:
    page = parse_cdx_json(answer(["k", "20140101000000", "http://a.example/x", "text/html", "200", "D", "1"]),
                          QUERY)
    assert page.resume_key is None
    assert [c.original for c in page.captures] == ["http://a.example/x"]
    assert parse_cdx_json(b"[]", QUERY) == CdxPage(captures=(), resume_key=None, fields=())
    # a header alone (nothing matched the filters) and a trailing empty row without a key
    assert parse_cdx_json(answer(), QUERY).captures == ()
    assert parse_cdx_json(json.dumps([HEADER, []]).encode(), QUERY).resume_key is None


def test_custom_field_order_and_revisit_status() -> None:
    body = json.dumps([["original", "timestamp", "statuscode"],
                       ["http://a.example/y", "20150505050505", "-"]]).encode()
    page = parse_cdx_json(body, QUERY)
    assert page.captures == (
        CdxCapture(timestamp=datetime(2015, 5, 5, 5, 5, 5, tzinfo=UTC), original="http://a.example/y",
                   mimetype=None, statuscode=None, digest=None),
    )


def test_bad_rows_are_skipped_and_named_the_good_ones_kept() -> None:
    body = answer(
        ["k", "2014", "http://a.example/short-stamp", "text/html", "200", "D", "1"],
        ["k", "20141332000000", "http://a.example/month-13", "text/html", "200", "D", "1"],
        ["k", "20140101000000", "mailto:x@example.org", "text/html", "200", "D", "1"],
        ["k", "20140101000000", "http://a.example/too-few"],
        ["k", "20140202020202", "http://a.example/good", "text/html", "200", "D", "1"],
    )
    page = parse_cdx_json(body, QUERY)
    assert [c.original for c in page.captures] == ["http://a.example/good"]
    assert page.problems == (
        "row 2: timestamp '2014' is not YYYYMMDDhhmmss",
        "row 3: timestamp '20141332000000' is not a valid date and time",
        "row 4: original 'mailto:x@example.org' is not an absolute http(s) URL",
        "1 more unreadable rows",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "is empty; a query without results answers []"),
        (b"org,example)/ 20140101000000 http://example.org/ text/html 200 D 1",
         "is not JSON (plain-text CDX? add output=json)"),
        (b'{"error": "Blocked Site Error"}', 'expected a JSON array of rows, got a dict {"error"'),
        (b'[["urlkey","mimetype"],["k","text/html"]]', "no 'timestamp' or 'original' field"),
        (b"[[1,2,3]]", "the first row must list the field names"),
        (b'[["timestamp","original"],[],["key"],["extra"]]',
         'after the empty row only the resumption key row (["<key>"]) may follow'),
        (b'[["timestamp","original"],["20140101000000","http://a.example/"],[],[7]]',
         "only the resumption key row"),
    ],
)
def test_malformed_answers_raise_with_the_query_and_the_reason(body: bytes, message: str) -> None:
    with pytest.raises(CdxError) as raised:
        parse_cdx_json(body, QUERY)
    assert f"CDX answer from {QUERY}" in str(raised.value)
    assert message in str(raised.value)


def test_query_url_asks_for_html_200_captures_in_the_window() -> None:
    url = cdx_query_url("http://cdx.test/cdx/search/cdx", "news.example.org/", since=date(2014, 1, 1),
                        until=date(2015, 12, 31), limit=500)
    parts = urlsplit(url)
    assert (parts.netloc, parts.path) == ("cdx.test", "/cdx/search/cdx")
    assert parse_qsl(parts.query) == [
        ("url", "news.example.org/"), ("matchType", "prefix"), ("output", "json"),
        ("from", "20140101"), ("to", "20151231235959"), ("collapse", "urlkey"),
        ("filter", "statuscode:200"), ("filter", "mimetype:text/html"),
        ("showResumeKey", "true"), ("limit", "500"),
    ]


def test_resume_key_is_sent_as_printed() -> None:
    key = "org%2Cexample%29%2F+20140101000000%21"
    url = cdx_query_url("http://cdx.test/cdx", "example.org/", since=date(2014, 1, 1),
                        until=date(2014, 1, 31), limit=2, resume_key=key)
    assert url.endswith("&limit=2&resumeKey=org%2Cexample%29%2F+20140101000000%21")
    assert dict(parse_qsl(urlsplit(url).query))["resumeKey"] == "org,example)/ 20140101000000!"
    with pytest.raises(ValueError, match="page size must be at least 1"):
        cdx_query_url("http://cdx.test/cdx", "example.org/", since=date(2014, 1, 1),
                      until=date(2014, 1, 31), limit=0)


def test_replay_url_is_the_identity_capture() -> None:
    capture = CdxCapture(timestamp=datetime(2014, 3, 12, 8, 15, tzinfo=UTC),
                         original="http://news.example.org:80/2014/03/left-raqqa?x=1",
                         mimetype="text/html", statuscode=200, digest="D")
    expected = "https://web.archive.org/web/20140312081500id_/http://news.example.org:80/2014/03/left-raqqa?x=1"
    assert replay_url("https://web.archive.org/web/", capture) == expected
    assert replay_url("https://web.archive.org/web", capture) == expected
