"""analyse_page / analyse_text: the pipeline the crawler, `dwatch classify` and `dwatch rescore` share.

Uses a tiny rule set written for these tests (fixtures/rules-mini.yaml), not config/rules.yaml.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import extract
import extract.article
from extract import (
    PageAnalysis,
    RuleSet,
    Skip,
    analyse_page,
    analyse_text,
    band_keys,
    estimate_similarity,
    load_rules,
    minhash_signature,
    scored_text,
    text_fingerprint,
)

FIXTURES = Path(__file__).parent / "fixtures"
PAGES = FIXTURES / "pages"
URL = "https://dispatch.example.org/world/2024/03/04/former-fighter-escape"
FRENCH_URL = "https://dispatch.example.org/fr/cafe"


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(FIXTURES / "rules-mini.yaml")


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


def assert_offsets_point_at_the_text(analysis: PageAnalysis) -> None:
    assert analysis.article is not None and analysis.verdict is not None
    scored = scored_text(analysis.article.title, analysis.article.text)
    for match in analysis.verdict.matches:
        assert scored[match.start : match.end] == match.text


def test_flagged_english_story(rules: RuleSet) -> None:
    analysis = analyse_page(page("defector-story.html"), URL, "text/html; charset=utf-8", rules)
    assert analysis.outcome == "extracted" and analysis.skip is None
    assert analysis.article is not None
    assert analysis.article.title == "Former fighter describes escape from Islamic State"
    assert analysis.lang is not None and analysis.lang.lang == "en"
    verdict = analysis.verdict
    assert verdict is not None
    assert (verdict.flagged, verdict.score, verdict.lang) == (True, 1.0, "en")
    assert verdict.rules_version == "mini-1"
    found = {(m.term, m.text) for m in verdict.matches}
    assert found >= {("islamic state", "Islamic State"), ("fled", "fled")}
    assert_offsets_point_at_the_text(analysis)
    # duplicate keys of the body text
    assert analysis.text_sha256 == text_fingerprint(analysis.article.text)
    assert analysis.minhash == minhash_signature(analysis.article.text)
    assert analysis.minhash_bands == band_keys(analysis.minhash)
    assert len(analysis.minhash_bands) == 16


def test_flagged_arabic_story(rules: RuleSet) -> None:
    analysis = analyse_page(page("arabic-story.html"), "https://dispatch.example.org/ar/1", None, rules)
    assert analysis.lang is not None and analysis.lang.lang == "ar"
    assert analysis.verdict is not None and analysis.verdict.flagged
    assert {m.term for m in analysis.verdict.matches} >= {"داعش", "هرب"}
    assert_offsets_point_at_the_text(analysis)


def test_prefilter_skips_without_running_trafilatura(rules: RuleSet, monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("trafilatura ran on a prefiltered page")

    monkeypatch.setattr(extract.article.trafilatura, "bare_extraction", must_not_run)
    analysis = analyse_page(page("cp1252-meta.html"), FRENCH_URL, "text/html", rules)
    assert analysis == PageAnalysis(
        "skipped", None, Skip("prefiltered", "no rule of rules version mini-1 can match this page"),
        None, None, None,
    )


def test_without_prefilter_the_page_is_scored(rules: RuleSet) -> None:
    analysis = analyse_page(page("cp1252-meta.html"), FRENCH_URL, "text/html", rules, use_prefilter=False)
    assert analysis.outcome == "extracted"
    assert analysis.lang is not None and analysis.lang.lang == "fr"
    assert analysis.verdict is not None and analysis.verdict.flagged is False
    assert analysis.verdict.matches == ()


@pytest.mark.parametrize("name", sorted(p.name for p in PAGES.iterdir()))
def test_prefilter_never_hides_a_flag(rules: RuleSet, name: str) -> None:
    with_prefilter = analyse_page(page(name), URL, "text/html", rules)
    without = analyse_page(page(name), URL, "text/html", rules, use_prefilter=False)
    if with_prefilter.skip == Skip("prefiltered", "no rule of rules version mini-1 can match this page"):
        assert without.verdict is None or not without.verdict.flagged
    else:
        assert with_prefilter == without


def test_too_short_page_keeps_what_is_known(rules: RuleSet) -> None:
    body = (
        b"<html><head><title>Escape</title></head><body><article><h1>Escape</h1>"
        b"<p>A man who fought for the Islamic State fled across the desert, officials said.</p>"
        b"</article></body></html>"
    )
    analysis = analyse_page(body, URL, "text/html", rules)
    assert analysis.outcome == "skipped"
    assert analysis.skip is not None and analysis.skip.reason == "too_short"
    assert analysis.verdict is None                                  # never scored
    assert analysis.article is not None and "fled across the desert" in analysis.article.text
    assert analysis.lang is not None and analysis.lang.lang == "en"
    assert analysis.text_sha256 == text_fingerprint(analysis.article.text)
    assert len(analysis.minhash_bands) == 16


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"", "text/html", "empty"),
        (b"%PDF-1.4 Islamic State fled", "application/pdf", "not_html"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", None, "not_html"),
    ],
)
def test_unusable_bodies(rules: RuleSet, body: bytes, content_type: str | None, reason: str) -> None:
    analysis = analyse_page(body, URL, content_type, rules)
    assert analysis.outcome == "skipped"
    assert (analysis.article, analysis.lang, analysis.verdict) == (None, None, None)
    assert analysis.text_sha256 is None
    assert analysis.skip is not None and analysis.skip.reason == reason


def test_analyse_text_syndicated_copies(rules: RuleSet) -> None:
    def read(name: str) -> tuple[str, str]:
        title, _, body = (FIXTURES / "dedup" / f"{name}.txt").read_text(encoding="utf-8").partition("\n\n")
        return title, body

    original = analyse_text(read("wire_original")[1], read("wire_original")[0], rules)
    copy = analyse_text(read("wire_syndicated")[1], read("wire_syndicated")[0], rules)
    other = analyse_text(read("same_topic_other_story")[1], read("same_topic_other_story")[0], rules)
    for analysis in (original, copy):
        assert analysis.outcome == "extracted" and analysis.verdict is not None and analysis.verdict.flagged
        assert_offsets_point_at_the_text(analysis)
    assert original.article is not None and original.article.title == read("wire_original")[0]
    assert original.text_sha256 != copy.text_sha256
    assert set(original.minhash_bands) & set(copy.minhash_bands)
    assert estimate_similarity(original.minhash, copy.minhash) > 0.6
    assert not set(original.minhash_bands) & set(other.minhash_bands)
    # the other story names the group but nobody leaves it in the same paragraph
    assert other.verdict is not None and other.verdict.flagged is False


def test_analyse_text_has_no_minimum_length(rules: RuleSet) -> None:
    analysis = analyse_text("He fled the Islamic State in 2017.", None, rules)
    assert analysis.outcome == "extracted"
    assert analysis.verdict is not None and analysis.verdict.flagged
    assert analyse_text("  \n ", "A title", rules).skip == Skip("empty", "the text is empty")


def test_public_api_matches_the_contract() -> None:
    contract = {
        "canonicalize_url", "parse_feed", "parse_sitemap", "extract_article", "detect_language",
        "load_rules", "evaluate", "could_match", "text_fingerprint", "minhash_signature", "band_keys",
        "estimate_similarity", "analyse_page", "analyse_text", "RuleSet", "RulesError", "FeedEntry",
        "FeedResult", "SitemapEntry", "SitemapResult", "Article", "Skip", "LanguageGuess", "Match",
        "Contribution", "Verdict", "PageAnalysis", "scored_text",
    }
    assert contract <= set(extract.__all__)
    assert all(hasattr(extract, name) for name in extract.__all__)


def test_shipped_rules_flag_the_defector_stories() -> None:
    """The pipeline with config/rules.yaml: first-hand defector accounts are flagged."""
    shipped = load_rules(Path(__file__).resolve().parents[2] / "config" / "rules.yaml")
    for name, lang in (("defector-story.html", "en"), ("arabic-story.html", "ar")):
        analysis = analyse_page(page(name), URL, "text/html", shipped)
        assert analysis.verdict is not None and analysis.verdict.flagged, name
        assert analysis.verdict.lang == lang and analysis.verdict.rules_version == shipped.version
        assert_offsets_point_at_the_text(analysis)
    teaser = analyse_page(page("teaser.html"), URL, "text/html", shipped)
    assert teaser.verdict is None and teaser.skip is not None
