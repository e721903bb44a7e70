"""parse_sitemap and sitemaps_from_robots on sitemaps written for these tests."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest

import extract.sitemaps
from extract import SitemapEntry, parse_sitemap, sitemaps_from_robots
from extract.sitemaps import parse_w3c_datetime

SITEMAPS = Path(__file__).parent / "fixtures" / "sitemaps"
BASE = "https://dispatch.example.org/sitemap.xml"


def read(name: str) -> bytes:
    return (SITEMAPS / name).read_bytes()


def test_google_news_sitemap() -> None:
    result = parse_sitemap(read("news-sitemap.xml"), BASE)
    assert result.kind == "urlset"
    assert result.entries == (
        SitemapEntry(
            loc="https://dispatch.example.org/world/2024/06/01/defector-interview",
            lastmod=datetime(2024, 6, 1, 7, 20, tzinfo=UTC),
            news_publication_date=datetime(2024, 6, 1, 6, 0, tzinfo=UTC),
            news_title='"I had to get out": a defector\'s interview',
        ),
        SitemapEntry(
            loc="https://dispatch.example.org/world/2024/06/01/market-report",   # whitespace trimmed
            lastmod=None,
            news_publication_date=datetime(2024, 6, 1, tzinfo=UTC),
            news_title="Market report & outlook",
        ),
    )
    assert result.detail == "1 <url> entries without an http(s) <loc> dropped"   # the mailto: entry


def test_sitemap_index_with_relative_and_bare_locs() -> None:
    result = parse_sitemap(read("sitemap-index.xml"), BASE)
    assert result.kind == "sitemapindex"
    assert [(e.loc, e.lastmod) for e in result.entries] == [
        ("https://dispatch.example.org/sitemaps/news.xml", datetime(2024, 6, 1, 10, 21, tzinfo=UTC)),
        ("https://dispatch.example.org/sitemaps/2024-05.xml.gz", datetime(2024, 5, 1, tzinfo=UTC)),
        ("https://dispatch.example.org/sitemaps/2024-04.xml.gz", None),
    ]


def test_text_sitemap_with_bom_and_crlf() -> None:
    result = parse_sitemap(read("sitemap.txt"), "https://dispatch.example.org/sitemap.txt")
    assert result.kind == "text"
    assert [e.loc for e in result.entries] == ["https://dispatch.example.org/a", "https://dispatch.example.org/b"]
    assert result.detail == "1 lines that are not URLs ignored"


def test_wrong_namespace_is_tolerated() -> None:
    result = parse_sitemap(read("wrong-namespace.xml"), BASE)
    assert result.kind == "urlset"
    assert [(e.loc, e.lastmod) for e in result.entries] == [
        ("https://dispatch.example.org/old-1", datetime(2009, 11, 5, tzinfo=UTC)),
        ("https://dispatch.example.org/old-2", None),
    ]


def test_entities_are_never_expanded() -> None:
    # an entity "bomb" and an external file entity: neither is expanded, the clean entry survives
    result = parse_sitemap(read("entity-expansion.xml"), BASE)
    assert [e.loc for e in result.entries] == ["https://dispatch.example.org/plain"]
    assert result.detail == "2 <url> entries without an http(s) <loc> dropped"


@pytest.mark.parametrize("name", ["news-sitemap.xml", "sitemap-index.xml", "sitemap.txt"])
def test_gzip_bodies_parse_like_the_plain_ones(name: str) -> None:
    plain = parse_sitemap(read(name), BASE)
    assert parse_sitemap(gzip.compress(read(name)), BASE) == plain


def test_multi_member_gzip() -> None:
    body = gzip.compress(b"https://dispatch.example.org/a\n") + gzip.compress(b"https://dispatch.example.org/b\n")
    assert [e.loc for e in parse_sitemap(body, BASE).entries] == [
        "https://dispatch.example.org/a",
        "https://dispatch.example.org/b",
    ]


def test_truncated_gzip_keeps_the_complete_lines() -> None:
    urls = [f"https://dispatch.example.org/story-{i:05d}" for i in range(3000)]
    body = gzip.compress("\n".join(urls).encode() + b"\n")
    result = parse_sitemap(body[: len(body) // 2], BASE)
    assert result.kind == "text"
    assert result.detail is not None and result.detail.startswith("truncated gzip body")
    locs = [e.loc for e in result.entries]
    assert 0 < len(locs) < 3000
    assert locs == urls[: len(locs)]   # a prefix of the list, no half URL at the end


def test_gzip_beyond_the_cap_is_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract.sitemaps, "MAX_DECOMPRESSED_BYTES", 1024 * 1024)
    body = gzip.compress(read("news-sitemap.xml") + b" " * (2 * 1024 * 1024), compresslevel=1)
    result = parse_sitemap(body, BASE)
    assert (result.kind, result.entries) == ("invalid", ())
    assert result.detail is not None and "expands beyond 1 MB" in result.detail


def test_default_cap_is_50_megabytes() -> None:
    body = gzip.compress(b"<urlset>" + b" " * (50 * 1024 * 1024), compresslevel=1)
    result = parse_sitemap(body, BASE)
    assert result.kind == "invalid"
    assert result.detail is not None and "expands beyond 50 MB" in result.detail


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b"\x1f\x8b\x08\x00garbage", "corrupt or truncated gzip body"),
        (b"<html><body><h1>Page not found</h1></body></html>", "root element <html>"),
        (b"<rss version='2.0'><channel><title>x</title></channel></rss>", "feed without usable entries"),
        (b"Sorry, nothing here.\nTry again later.", "neither XML nor a text sitemap"),
        (b"\x00\x01\x02binary", "binary body"),
    ],
)
def test_bad_bodies_are_invalid_with_a_reason(body: bytes, reason: str) -> None:
    result = parse_sitemap(body, BASE)
    assert (result.kind, result.entries) == ("invalid", ())
    assert result.detail is not None and reason in result.detail


def test_feed_used_as_sitemap() -> None:
    feed = (Path(__file__).parent / "fixtures" / "feeds" / "rss2.xml").read_bytes()
    result = parse_sitemap(feed, "https://wire.example.org/rss.xml")
    assert result.kind == "urlset"
    assert [e.loc for e in result.entries][1] == "https://wire.example.org/2024/03/06/returnees-trials"
    assert result.entries[1].lastmod == datetime(2024, 3, 6, 17, 40, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-05", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-17", datetime(2024, 5, 17, tzinfo=UTC)),
        ("2024-05-17T10:20+02:00", datetime(2024, 5, 17, 8, 20, tzinfo=UTC)),
        ("2024-05-17T10:20:30.45Z", datetime(2024, 5, 17, 10, 20, 30, 450000, tzinfo=UTC)),
        ("2024-05-17 10:20:30", datetime(2024, 5, 17, 10, 20, 30, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_w3c_datetimes(value: str | None, expected: datetime | None) -> None:
    assert parse_w3c_datetime(value) == expected


def test_sitemaps_from_robots() -> None:
    robots = (
        "User-agent: *\nDisallow: /private/\n\n"
        "SITEMAP: /sitemaps/index.xml\n"
        "sitemap:https://cdn.example.org/news.xml  # our news sitemap\n"
        "Sitemap: https://dispatch.example.org/sitemaps/index.xml\n"
        "Site-map: https://dispatch.example.org/Old-Sitemap.xml\n"
        "Allow: /public/\n"
    )
    assert sitemaps_from_robots(robots, "https://dispatch.example.org/robots.txt") == [
        "https://dispatch.example.org/sitemaps/index.xml",
        "https://cdn.example.org/news.xml",
        "https://dispatch.example.org/Old-Sitemap.xml",
    ]
    assert sitemaps_from_robots("User-agent: *\nDisallow:\n", "https://dispatch.example.org/robots.txt") == []


def test_unbound_namespace_prefix() -> None:
    body = (
        b"<?xml version='1.0'?><sm:urlset><sm:url><sm:loc>https://dispatch.example.org/p</sm:loc>"
        b"<sm:lastmod>2024-01-02</sm:lastmod></sm:url></sm:urlset>"
    )
    result = parse_sitemap(body, BASE)
    assert result.kind == "urlset"
    assert result.entries == (
        SitemapEntry("https://dispatch.example.org/p", datetime(2024, 1, 2, tzinfo=UTC)),
    )
    assert result.detail is not None and "XML errors recovered" in result.detail
