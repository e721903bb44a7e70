"""The demo site is well-formed and demo/expected.json describes it exactly.

Feeds are parsed with feedparser and sitemaps with lxml from the bytes the demo server
sends; listing links are selected with the CSS selector of demo/sources.yaml (parsel, as
Scrapy does); articles are extracted with trafilatura.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest
import trafilatura
import yaml
from langdetect import DetectorFactory, detect
from lxml import etree
from parsel import Selector

from demo import (
    EXPECTED_FILE,
    SITE_DIR,
    SOURCES_TEMPLATE,
    ExpectedPage,
    FixtureServer,
    load_expected,
    render_template,
    serve_directory,
    write_config,
)

SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"
SITE_NAV = {"/", "/news/", "/world/", "/reports/", "/about.html"}


@pytest.fixture(scope="module")
def server() -> Iterator[FixtureServer]:
    with serve_directory(SITE_DIR) as running:
        yield running


@pytest.fixture(scope="module")
def expected() -> dict[str, ExpectedPage]:
    return load_expected()


@pytest.fixture(scope="module")
def sources() -> dict[str, dict[str, object]]:
    data = yaml.safe_load(SOURCES_TEMPLATE.read_text(encoding="utf-8"))
    return {entry["id"]: entry for entry in data["sources"]}


def get(server: FixtureServer, target: str) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(target)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def site_path(server: FixtureServer, url: str) -> str:
    assert url.startswith(server.base_url + "/"), url
    return urlsplit(url).path


def feed_entries(server: FixtureServer, path: str) -> feedparser.FeedParserDict:
    status, headers, body = get(server, path)
    assert status == 200
    parsed = feedparser.parse(body, response_headers=headers)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def sitemap_urls(server: FixtureServer, path: str) -> list[etree._Element]:
    status, headers, body = get(server, path)
    assert status == 200
    assert headers["content-type"] == "application/xml; charset=utf-8"
    root = etree.fromstring(body)
    assert root.tag == f"{SM}urlset"
    return list(root.iter(f"{SM}url"))


def listing_links(server: FixtureServer, selector: str, path: str) -> tuple[list[str], str | None]:
    status, _, body = get(server, path)
    assert status == 200
    page = Selector(text=body.decode("utf-8"))
    links = [a.attrib["href"] for a in page.css(selector)]
    return links, page.css('a[rel="next"]::attr(href)').get()


def discovered(
    server: FixtureServer, sources: dict[str, dict[str, object]]
) -> dict[str, set[tuple[str, str]]]:
    """Article path -> {(channel, source id)}, read from the feeds, sitemaps and listing."""
    found: dict[str, set[tuple[str, str]]] = {}

    def add(url: str, channel: str, source: str) -> None:
        found.setdefault(site_path(server, url), set()).add((channel, source))

    for entry in feed_entries(server, "/feeds/news.rss").entries:
        add(entry.link, "feed", "demo-news-rss")
    for entry in feed_entries(server, "/feeds/world.atom").entries:
        add(entry.link, "feed", "demo-world-atom")
    status, _, body = get(server, "/sitemap_index.xml")
    assert status == 200
    for loc in etree.fromstring(body).iter(f"{SM}loc"):
        for url in sitemap_urls(server, site_path(server, loc.text or "")):
            add(url.findtext(f"{SM}loc") or "", "sitemap", "demo-sitemap")
    selector = str(sources["demo-institute"]["link_selector"])
    page: str | None = "/reports/"
    while page:
        links, page = listing_links(server, selector, page)
        for href in links:
            add(server.base_url + href, "listing", "demo-institute")
    return found


# ------------------------------------------------------------------ ground truth vs. files


def article_files() -> set[str]:
    return {
        "/" + p.relative_to(SITE_DIR).as_posix()
        for p in SITE_DIR.rglob("*.html")
        if re.search(r"/\d{4}/\d{2}/", p.as_posix())
    }


def test_expected_json_lists_exactly_the_article_pages(expected: dict[str, ExpectedPage]) -> None:
    assert set(expected) == article_files()
    assert 14 <= len(expected) <= 18


def test_ground_truth_covers_the_required_cases(expected: dict[str, ExpectedPage]) -> None:
    defectors = [p for p in expected.values() if p.flagged]
    assert all(p.kind == "defector" for p in defectors)
    stories = {
        frozenset({p.path, p.story_with or p.path}) for p in defectors if not p.duplicate_of
    }
    assert len(stories) == 6   # distinct accounts: copies and wire versions count once
    assert {p.lang for p in defectors} == {"en", "fr", "ar", "de", "id"}
    lookalikes = {p.kind for p in expected.values() if not p.flagged}
    assert lookalikes == {
        "attack_report", "yazidi_captive", "regime_defector", "north_korea_defector",
        "is_trial", "policy_mention", "boko_haram_defector", "unrelated",
    }
    assert {p.lang for p in expected.values() if not p.flagged} == {"en", "fr"}


def test_duplicate_is_a_byte_identical_copy_found_through_another_channel(
    expected: dict[str, ExpectedPage],
) -> None:
    copies = [p for p in expected.values() if p.duplicate_of]
    assert [(p.path, p.duplicate_of) for p in copies] == [(
        "/partner/2026/11/aussteiger-kanonenfutter-bericht.html",
        "/de/2026/11/aussteiger-kanonenfutter-bericht.html",
    )]
    copy, original = copies[0], expected[str(copies[0].duplicate_of)]
    assert SITE_DIR.joinpath(copy.path[1:]).read_bytes() == SITE_DIR.joinpath(
        original.path[1:]).read_bytes()
    assert (copy.channel, original.channel) == ("feed", "sitemap")
    assert copy.flagged and original.flagged


def test_near_copy_pair_shares_most_text_but_not_the_headline(
    expected: dict[str, ExpectedPage],
) -> None:
    pairs = {(p.path, p.story_with) for p in expected.values() if p.story_with}
    first = "/news/2026/11/deir-ezzor-former-fighter-wrong-war.html"
    wire = "/wire/2026/11/ex-islamic-state-fighter-says-group-fought-rebels-not-assad.html"
    assert pairs == {(first, wire), (wire, first)}
    assert (expected[first].channel, expected[wire].channel) == ("feed", "sitemap")
    assert expected[first].title != expected[wire].title
    texts = [extract(path).text or "" for path in (first, wire)]

    def shingles(text: str) -> set[tuple[str, ...]]:
        words = text.lower().split()
        return {tuple(words[i:i + 5]) for i in range(len(words) - 4)}

    a, b = shingles(texts[0]), shingles(texts[1])
    assert 0.8 < len(a & b) / len(a | b) < 1.0
    assert "(Meridian Wire)" in texts[1] and "(Meridian Wire)" not in texts[0]


# ------------------------------------------------------------------ discovery channels


def test_channels_and_sources_match_what_the_site_links(
    server: FixtureServer,
    expected: dict[str, ExpectedPage],
    sources: dict[str, dict[str, object]],
) -> None:
    found = discovered(server, sources)
    assert set(found) == set(expected)
    for path, page in expected.items():
        assert {c for c, _ in found[path]} == set(page.channels), path
        assert {s for _, s in found[path]} == set(page.sources), path
        assert page.channel in page.channels, path
    twice = [p.path for p in expected.values() if len(p.sources) > 1]
    assert twice == ["/news/2026/11/islamic-state-member-sentenced-hague.html"]
    assert expected[twice[0]].sources == ("demo-news-rss", "demo-sitemap")


def test_rss_feed(server: FixtureServer, expected: dict[str, ExpectedPage]) -> None:
    status, headers, _ = get(server, "/feeds/news.rss")
    assert headers["content-type"] == "application/rss+xml; charset=utf-8"
    feed = feed_entries(server, "/feeds/news.rss")
    assert feed.version == "rss20"
    assert feed.feed.title == "Meridian Dispatch: News"
    links = [entry.link for entry in feed.entries]
    tracked = [link for link in links if "utm_" in link]
    assert tracked == [
        server.base_url + "/news/2026/11/deir-ezzor-former-fighter-wrong-war.html"
        "?utm_source=rss&utm_medium=feed&utm_campaign=news-desk#story-top"
    ]
    for entry in feed.entries:
        page = expected[site_path(server, entry.link)]
        assert entry.title == page.title
        assert entry.id.startswith("meridian-dispatch-news-")
        assert entry.published_parsed is not None
        assert entry.author


def test_atom_feed_has_entries_in_other_languages(
    server: FixtureServer, expected: dict[str, ExpectedPage]
) -> None:
    feed = feed_entries(server, "/feeds/world.atom")
    assert feed.version == "atom10"
    langs = [entry.get("language") or entry.title_detail.language for entry in feed.entries]
    paths = [site_path(server, entry.link) for entry in feed.entries]
    assert langs == [expected[p].lang for p in paths]
    assert set(langs) == {"fr", "ar", "de", "id"}
    for entry, path in zip(feed.entries, paths, strict=True):
        assert entry.id.startswith("tag:meridian-dispatch.example,2026-11-")
        assert entry.title.removeprefix("Partner: ") == expected[path].title


def test_robots_and_sitemaps(server: FixtureServer, expected: dict[str, ExpectedPage]) -> None:
    status, headers, body = get(server, "/robots.txt")
    assert (status, headers["content-type"]) == (200, "text/plain; charset=utf-8")
    lines = body.decode().splitlines()
    assert "User-agent: *" in lines and "Allow: /" in lines
    assert f"Sitemap: {server.base_url}/sitemap_index.xml" in lines

    root = etree.fromstring(get(server, "/sitemap_index.xml")[2])
    assert root.tag == f"{SM}sitemapindex"
    children = [site_path(server, loc.text or "") for loc in root.iter(f"{SM}loc")]
    assert children == ["/sitemaps/news.xml", "/sitemaps/articles.xml"]

    for url in sitemap_urls(server, "/sitemaps/articles.xml"):
        path = site_path(server, url.findtext(f"{SM}loc") or "")
        assert url.findtext(f"{SM}lastmod") == expected[path].published
    news = sitemap_urls(server, "/sitemaps/news.xml")
    assert len(news) == 2
    for url in news:
        path = site_path(server, url.findtext(f"{SM}loc") or "")
        assert url.findtext(f"{NEWS}news/{NEWS}publication_date") == expected[path].published
        assert url.findtext(f"{NEWS}news/{NEWS}title") == expected[path].title
        assert url.findtext(f"{NEWS}news/{NEWS}publication/{NEWS}language") == expected[path].lang


def test_listing_selector_picks_only_publications_across_two_pages(
    server: FixtureServer, sources: dict[str, dict[str, object]]
) -> None:
    listing = sources["demo-institute"]
    selector = str(listing["link_selector"])
    patterns = listing["allow_patterns"]
    assert isinstance(patterns, list) and len(patterns) == 1
    allow = str(patterns[0])
    first, next_page = listing_links(server, selector, "/reports/")
    assert first == [
        "/reports/2026/11/why-they-left-testimonies.html",
        "/reports/2026/11/euphrates-water-local-governance.html",
    ]
    assert next_page == "/reports/page/2/"
    second, after = listing_links(server, selector, next_page)
    assert (second, after) == (["/reports/2026/10/repatriation-al-hol-policy-options.html"], None)
    page = Selector(text=get(server, "/reports/")[2].decode())
    others = set(page.css("a::attr(href)").getall()) - set(first)
    assert others >= SITE_NAV
    assert "/about.html#events" in others and "/reports/?type=report" in others
    assert all(re.search(allow, server.base_url + href) for href in first + second)
    assert not any(re.search(allow, server.base_url + href) for href in others)


def test_every_link_on_every_page_resolves(server: FixtureServer) -> None:
    targets: set[str] = set()
    for html_file in SITE_DIR.rglob("*.html"):
        page = Selector(text=html_file.read_text(encoding="utf-8"))
        for ref in page.css("a::attr(href), link::attr(href), script::attr(src)").getall():
            if ref.startswith("/"):
                targets.add(ref.split("#", 1)[0])
    for target in ("/robots.txt", "/sitemap_index.xml", "/sitemaps/news.xml",
                   "/sitemaps/articles.xml", "/feeds/news.rss", "/feeds/world.atom"):
        targets.add(target)
    assert len(targets) > 30
    broken = [t for t in sorted(targets) if get(server, t)[0] != 200]
    assert broken == []


def test_no_placeholder_is_left_in_served_files(server: FixtureServer) -> None:
    for template in SITE_DIR.rglob("*.tmpl"):
        path = "/" + template.relative_to(SITE_DIR).as_posix().removesuffix(".tmpl")
        body = get(server, path)[2].decode()
        assert "{{" not in body and server.base_url in body, path


# ------------------------------------------------------------------ articles


def extract(path: str) -> trafilatura.settings.Document:
    body = SITE_DIR.joinpath(path.lstrip("/")).read_bytes()
    doc = trafilatura.bare_extraction(body, url="http://127.0.0.1:8000" + path, with_metadata=True)
    assert isinstance(doc, trafilatura.settings.Document), path
    return doc


@pytest.mark.parametrize("path", sorted(load_expected()))
def test_trafilatura_extracts_each_article(path: str, expected: dict[str, ExpectedPage]) -> None:
    page = expected[path]
    doc = extract(path)
    text = doc.text or ""
    assert 200 <= len(text.split()) <= 800
    assert doc.date == page.published[:10]
    assert doc.title == page.title
    assert doc.author
    for boilerplate in ("Most read", "Sign up", "Copy link", "fictional outlet"):
        assert boilerplate not in text
    html = SITE_DIR.joinpath(path.lstrip("/")).read_text(encoding="utf-8")
    assert f'<html lang="{page.lang}"' in html
    assert f'<time datetime="{page.published}"' in html
    DetectorFactory.seed = 0
    assert detect(text) == page.lang


def test_key_sentences_of_the_defector_accounts(expected: dict[str, ExpectedPage]) -> None:
    key = {
        "/news/2026/11/deir-ezzor-former-fighter-wrong-war.html":
            "I left because I understood it was a lie",
        "/fr/2026/11/revenante-raqqa-chair-a-canon.html":
            "Nous n’étions que de la chair à canon",
        "/de/2026/11/aussteiger-kanonenfutter-bericht.html":
            "Für die Emire waren wir Kanonenfutter",
        "/ar/2026/11/mosul-diwan-former-employee-testimony.html":
            "انشق عن التنظيم",
        "/id/2026/11/kisah-mantan-anggota-isis-pulang.html":
            "Saya keluar dari kelompok itu",
        "/reports/2026/11/why-they-left-testimonies.html":
            "We were the cannon fodder",
    }
    for path, sentence in key.items():
        assert expected[path].flagged
        assert sentence in (extract(path).text or ""), path


# ------------------------------------------------------------------ config


def test_write_config_renders_sources_that_the_config_loader_accepts(
    tmp_path: Path, server: FixtureServer
) -> None:
    config = pytest.importorskip("config", reason="config package (load_settings) not available")
    target = write_config(tmp_path / "demo-config", server.base_url)
    assert "{{" not in (target / "sources.yaml").read_text(encoding="utf-8")
    settings = config.load_settings(target, env={"DWATCH_DATA_DIR": str(tmp_path / "data")})
    assert settings.crawl.allow_private_addresses is True
    assert settings.crawl.download_delay == 0
    assert settings.crawl.autothrottle is False
    by_id = {s.id: s for s in settings.sources}
    assert {k: (s.kind, s.urls) for k, s in by_id.items()} == {
        "demo-news-rss": ("feed", [server.base_url + "/feeds/news.rss"]),
        "demo-world-atom": ("feed", [server.base_url + "/feeds/world.atom"]),
        "demo-sitemap": ("sitemap", [server.base_url + "/sitemap_index.xml"]),
        "demo-institute": ("listing", [server.base_url + "/reports/"]),
    }
    assert by_id["demo-institute"].follow_pages == 1
    assert all(s.enabled for s in settings.sources)
    for source in settings.sources:
        assert get(server, source.urls[0])[0] == 200


def test_render_template_rejects_a_bare_host() -> None:
    with pytest.raises(ValueError, match="must start with http"):
        render_template("{{BASE_URL}}/x", "127.0.0.1:8000")
    assert render_template("{{BASE_URL}}/x", "http://127.0.0.1:8000/") == "http://127.0.0.1:8000/x"


def test_load_expected_names_an_incomplete_entry(tmp_path: Path) -> None:
    bad = tmp_path / "expected.json"
    bad.write_text('{"/a.html": {"flagged": true}}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"'/a.html' lacks lang, kind"):
        load_expected(bad)
    assert load_expected(EXPECTED_FILE)
