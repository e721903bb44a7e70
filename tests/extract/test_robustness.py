"""Bad input never raises: cut, corrupted or random bytes give a typed outcome."""

from __future__ import annotations

import gzip
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extract import Article, Skip, extract_article, parse_feed, parse_sitemap

FIXTURES = Path(__file__).parent / "fixtures"
SUFFIXES = (".xml", ".rdf", ".json", ".html", ".txt")
SAMPLES = sorted(p for p in FIXTURES.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
CONTENT_TYPES = st.sampled_from(
    [
        None, "text/html", "application/json", "text/xml; charset=utf-16",
        "application/rss+xml; charset=bogus", "text/plain", "application/octet-stream",
    ]
)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    body = draw(st.sampled_from(SAMPLES)).read_bytes()
    how = draw(st.sampled_from(["cut", "flip", "gzip-cut", "random"]))
    if how == "cut":
        return body[: draw(st.integers(0, len(body)))]
    if how == "flip":
        data = bytearray(body)
        changes = st.lists(st.tuples(st.integers(0, len(body) - 1), st.integers(0, 255)), max_size=20)
        for index, value in draw(changes):
            data[index] = value
        return bytes(data)
    if how == "gzip-cut":
        packed = gzip.compress(body)
        return packed[: draw(st.integers(0, len(packed)))]
    return draw(st.binary(max_size=400))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=damaged(), content_type=CONTENT_TYPES)
def test_damaged_input_gives_typed_outcomes(body: bytes, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else None
    feed = parse_feed(body, "https://damaged.example/feed", headers)
    assert feed.entries or (feed.problem in ("not_a_feed", "malformed", "empty") and feed.detail)
    assert all(e.link.startswith(("http://", "https://")) for e in feed.entries)

    sitemap = parse_sitemap(body, "https://damaged.example/sitemap.xml")
    if sitemap.kind == "invalid":
        assert sitemap.entries == () and sitemap.detail
    assert all(e.loc.startswith(("http://", "https://")) for e in sitemap.entries)

    article = extract_article(body, "https://damaged.example/a", content_type)
    assert isinstance(article, Article | Skip)
    if isinstance(article, Skip):
        assert article.reason in ("empty", "not_html", "too_short", "no_article", "extraction_error")
    else:
        assert len(article.text) >= 250
