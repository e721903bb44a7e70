"""parse_feed on feeds written for these tests (tests/extract/fixtures/feeds)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from extract import FeedEntry, parse_feed

FEEDS = Path(__file__).parent / "fixtures" / "feeds"


def read(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def test_rss2_entries_links_dates_and_summaries() -> None:
    result = parse_feed(
        read("rss2.xml"), "https://wire.example.org/rss.xml", {"Content-Type": "application/rss+xml"}
    )
    assert result.problem is None
    assert result.bozo is False
    assert result.feed_title == "Meridian Wire – Middle East"
    assert result.entries == (
        FeedEntry(
            link="https://wire.example.org/2024/03/04/former-fighter-escape?utm_source=rss&utm_medium=feed",
            entry_id="wire-2024-0304-001",
            title="Former fighter describes escape from militant group",
            published=datetime(2024, 3, 4, 8, 15, tzinfo=UTC),  # +0100 in the feed
            summary="A man who spent three years with the group says he fled after being ordered to guard "
            "a prison.",
        ),
        FeedEntry(
            link="https://wire.example.org/2024/03/06/returnees-trials",  # relative link resolved
            entry_id="https://wire.example.org/2024/03/06/returnees-trials",
            title="Returnees face long wait for trials",
            published=datetime(2024, 3, 6, 17, 40, tzinfo=UTC),
            summary=None,
        ),
    )
    # the item without a link and the ftp:// item are dropped, and counted
    assert result.detail == "2 entries without a usable http(s) link dropped"


def test_atom_xml_base_html_title_and_updated_fallback() -> None:
    result = parse_feed(read("atom.xml"), "https://blog.example.net/research/atom.xml")
    assert result.problem is None and result.bozo is False
    assert result.feed_title == "Research notes"
    first, second = result.entries
    assert first.link == "https://blog.example.net/research/posts/interviews-with-returnees"
    assert first.title == "Interviews with returnees"        # markup removed
    assert first.summary == "What former members told us."
    assert first.entry_id == "tag:blog.example.net,2024:/research/42"
    assert first.published == datetime(2024, 5, 1, 20, 30, tzinfo=UTC)   # published, not updated
    # no <link>: the id is the permalink; no <published>: <updated> is used
    assert second.link == "https://blog.example.net/research/posts/updated-only"
    assert second.published == datetime(2024, 4, 20, 14, 0, tzinfo=UTC)


def test_rss1_rdf() -> None:
    result = parse_feed(read("rss1.rdf"), "https://institute.example.org/rss")
    assert result.problem is None
    assert [(e.title, e.link, e.published) for e in result.entries] == [
        (
            "Leaving the caliphate: a study of exit paths",
            "https://institute.example.org/papers/leaving-the-caliphate",
            datetime(2023, 11, 15, 9, 0, tzinfo=UTC),
        )
    ]


@pytest.mark.parametrize("content_type", ["application/feed+json", "application/json", None, "text/plain"])
def test_json_feed(content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else None
    result = parse_feed(read("feed.json"), "https://monitor.example.com/feed.json", headers)
    assert result.problem is None and result.bozo is False
    assert result.feed_title == "Monitor & Review"
    assert result.entries == (
        FeedEntry(
            link="https://monitor.example.com/stories/1001",
            entry_id="m-1001",
            title="A defector's account",
            published=datetime(2024, 2, 10, 9, 0, tzinfo=UTC),
            summary="He said he left in 2017.",
        ),
        FeedEntry(
            link="https://elsewhere.example.net/story",
            entry_id="m-1002",
            title="Linked elsewhere",
            published=datetime(2024, 2, 11, 9, 0, tzinfo=UTC),   # date_modified when no date_published
            summary="A story on another site.",
        ),
    )
    assert result.detail == "1 entry without a usable http(s) link dropped"


def test_html_page_is_not_a_feed() -> None:
    result = parse_feed(read("html_page.html"), "https://wire.example.org/", {"Content-Type": "text/html"})
    assert result.entries == ()
    assert result.problem == "not_a_feed"
    assert result.detail is not None and "root element <html>" in result.detail
    assert "link rel=alternate" in result.detail


def test_truncated_feed_keeps_what_arrived() -> None:
    result = parse_feed(read("truncated.xml"), "https://cut.example.org/rss")
    assert result.bozo is True
    assert result.problem is None
    assert [(e.title, e.link) for e in result.entries] == [("First story survived", "https://cut.example.org/first")]
    assert result.detail is not None and "no element found" in result.detail


def test_feed_cut_before_any_item_is_malformed() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Cut</title><item><title>Half'
    result = parse_feed(body, "https://cut.example.org/rss")
    assert (result.entries, result.problem, result.bozo) == ((), "malformed", True)


def test_valid_feed_without_items_is_empty() -> None:
    result = parse_feed(read("empty_channel.xml"), "https://quiet.example.org/rss")
    assert (result.entries, result.problem, result.bozo) == ((), "empty", False)
    assert result.feed_title == "Nothing new"


@pytest.mark.parametrize(
    ("body", "problem", "detail"),
    [
        (b"", "not_a_feed", "empty body"),
        (b"   \n", "not_a_feed", "empty body"),
        (b'{"version": "1", "data": []}', "not_a_feed", "JSON document without a jsonfeed.org version"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": [', "malformed", "invalid JSON"),
        (b"<products><product id='1'/></products>", "not_a_feed", "root element <products>"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not_a_feed", "no XML element"),
    ],
)
def test_bad_input_gives_a_typed_problem(body: bytes, problem: str, detail: str) -> None:
    result = parse_feed(body, "https://example.org/feed")
    assert result.entries == ()
    assert result.problem == problem
    assert result.detail is not None and detail in result.detail


def test_charset_from_headers_is_honoured() -> None:
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Haber</title>'
        "<item><title>Örgütten ayrılan şahıs konuştu</title><link>https://haber.example.com.tr/1</link></item>"
        "</channel></rss>"
    ).encode("iso-8859-9")
    headers = {"content-type": "text/xml; charset=iso-8859-9"}
    result = parse_feed(body, "https://haber.example.com.tr/rss", headers)
    assert [e.title for e in result.entries] == ["Örgütten ayrılan şahıs konuştu"]
