"""parse_sitemap / sitemaps_from_robots on the third-party files in ../shared/fixtures/sitemaps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import extract.sitemaps
from extract import SitemapResult, parse_sitemap, sitemaps_from_robots


@pytest.fixture(scope="module")
def results(shared_fixtures: Path) -> dict[str, SitemapResult]:
    root = shared_fixtures / "sitemaps"
    return {
        p.relative_to(root).as_posix(): parse_sitemap(p.read_bytes(), f"https://www.example.com/{p.name}")
        for p in sorted(root.rglob("*"))
        if p.is_file() and "robots" not in p.parts
    }


def test_every_sitemap_yields_entries_or_invalid_with_a_reason(results: dict[str, SitemapResult]) -> None:
    assert len(results) == 23
    for name, result in results.items():
        if result.kind == "invalid":
            assert result.entries == () and result.detail, name
        else:
            assert result.entries, name
            assert all(e.loc.startswith(("http://", "https://")) for e in result.entries), name
    assert all(r.kind != "invalid" for r in results.values())


@pytest.mark.parametrize(
    ("name", "kind", "count"),
    [
        ("crawler-commons/sitemaps/extension/hebdenbridgetimes-articles-sitemap.xml", "urlset", 74),
        ("crawler-commons/sitemaps/extension/shinpaideshou-news-sitemap.xml", "urlset", 3),
        ("crawler-commons/sitemaps/extension/sitemap-news.xml", "urlset", 2),
        ("crawler-commons/sitemaps/sitemap.index.xml", "sitemapindex", 15),
        ("crawler-commons/sitemaps/sitemap.badns.xml", "urlset", 2),
        ("crawler-commons/sitemaps/sitemap.txt", "text", 2),
        ("crawler-commons/sitemaps/sitemap-with-bom.txt", "text", 2),
        ("crawler-commons/sitemaps/sitemap.txt.gz", "text", 5),
        ("crawler-commons/sitemaps/xmlSitemap.gz", "urlset", 5),
        ("crawler-commons/sitemaps/atom.xml", "urlset", 1),   # an Atom feed used as a sitemap
        ("trafilatura/sitemap.xml", "urlset", 84),
        ("trafilatura/sitemap.xml.gz", "urlset", 84),
        ("trafilatura/sitemap2.xml", "sitemapindex", 2),
        ("news-crawl/sitemap-news.xml", "urlset", 1),
    ],
)
def test_kinds_and_counts(results: dict[str, SitemapResult], name: str, kind: str, count: int) -> None:
    assert (results[name].kind, len(results[name].entries)) == (kind, count)


def test_news_sitemap_publication_dates_and_titles(results: dict[str, SitemapResult]) -> None:
    shinpai = results["crawler-commons/sitemaps/extension/shinpaideshou-news-sitemap.xml"]
    assert [(e.news_publication_date, e.news_title) for e in shinpai.entries] == [
        (datetime(2017, 4, 25, 10, 0, 36, tzinfo=UTC), "Job Opening: Reischauer Policy Research Fellow"),
        (
            datetime(2017, 4, 24, 10, 0, 33, tzinfo=UTC),
            "Call for Papers: Nation, Gender and History, Asian Cinemas in Perspective",
        ),
        (
            datetime(2017, 4, 24, 10, 0, 10, tzinfo=UTC),
            "Job Opening: Lecturer in Japanese Studies, University of Leeds",
        ),
    ]
    (google,) = results["news-crawl/sitemap-news.xml"].entries
    assert google.loc == "http://www.example.com/business/article55.html"
    assert google.news_publication_date == datetime(2008, 12, 23, tzinfo=UTC)
    assert google.news_title == "Companies A, B in Merger Talks"
    example = results["crawler-commons/sitemaps/extension/sitemap-news.xml"]
    dates = [e.news_publication_date for e in example.entries]
    assert dates == [datetime(2008, 12, 23, tzinfo=UTC), datetime(2025, 5, 27, tzinfo=UTC)]


def test_index_with_bare_urls_and_cdata(results: dict[str, SitemapResult]) -> None:
    bare = results["crawler-commons/sitemaps/sitemap.index.xml"].entries
    assert bare[0].loc == "https://example.com/sitemap.jss?portalCode=10260&lang=en"
    assert bare[-1].loc == "https://example.com/sitemap.jss?portalCode=10570&lang=en"
    cdata = results["trafilatura/sitemap2.xml"].entries
    assert [(e.loc, e.lastmod) for e in cdata] == [
        ("http://www.example.com/sitemap1.xml.gz", datetime(2004, 10, 1, 18, 23, 17, tzinfo=UTC)),
        ("http://www.example.com/sitemap2.xml.gz", datetime(2005, 1, 1, tzinfo=UTC)),
    ]


def test_lastmod_with_offsets_becomes_utc(results: dict[str, SitemapResult]) -> None:
    hebden = results["crawler-commons/sitemaps/extension/hebdenbridgetimes-articles-sitemap.xml"].entries
    assert all(e.lastmod is not None and e.lastmod.tzinfo is UTC for e in hebden)
    assert results["trafilatura/sitemap.xml"].entries[0].lastmod == datetime(2016, 11, 21, tzinfo=UTC)


def test_gzip_bomb_is_refused(shared_fixtures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = (shared_fixtures / "compressed" / "scrapy" / "bomb-gzip.bin").read_bytes()   # 28 KB -> 11.5 MB
    monkeypatch.setattr(extract.sitemaps, "MAX_DECOMPRESSED_BYTES", 10 * 1024 * 1024)
    result = parse_sitemap(bomb, "https://www.example.com/sitemap.xml.gz")
    assert result.kind == "invalid"
    assert result.detail is not None and "expands beyond 10 MB" in result.detail


@pytest.mark.parametrize(
    ("name", "sitemaps"),
    [
        (
            "sitemap-robots.txt",
            [
                "http://domain.com/sitemap.xml",
                "http://domain.com/dir/my-sitemap.xml",          # the line that forgot "Sitemap:"
                "http://domain.com/dir/MixedCased-sitemap.xml",  # case preserved
            ],
        ),
        ("sitemap-robots-dedup.txt", ["http://example.org/sitemap.xml"]),
        ("relative-sitemap-robots.txt", ["https://www.example.com/sitemap.xml"]),
        ("www.flot.com-robots.txt", ["http://flot.com/sitemap_index.xml"]),
        ("twitter.com-robots.txt", []),
    ],
)
def test_sitemaps_from_robots(shared_fixtures: Path, name: str, sitemaps: list[str]) -> None:
    text = (shared_fixtures / "sitemaps" / "crawler-commons" / "robots" / name).read_text(encoding="utf-8")
    assert sitemaps_from_robots(text, "https://www.example.com/robots.txt") == sitemaps
