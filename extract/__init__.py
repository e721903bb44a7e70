"""extract: pure functions from fetched bytes (or text) to frozen records.

No network, no database, no Scrapy, nothing of the project outside this package. The
records are in extract/types.py; the contract is in docs/architecture.md.
"""

from __future__ import annotations

from extract.analysis import analyse_page, analyse_text
from extract.article import MIN_TEXT_LENGTH, article_from_text, extract_article
from extract.dedup import band_keys, estimate_similarity, minhash_signature, text_fingerprint
from extract.errors import ExtractError, InvalidURLError, SignatureError
from extract.feeds import parse_feed
from extract.language import detect_language
from extract.prefilter import could_match
from extract.quality import QualityReport, below_floors, format_report, load_corpus, score_corpus
from extract.rules import RulesError, RuleSet, evaluate, load_rules, scored_text
from extract.sitemaps import parse_sitemap, sitemaps_from_robots
from extract.types import (
    Article,
    Contribution,
    FeedEntry,
    FeedResult,
    LanguageGuess,
    Match,
    PageAnalysis,
    SitemapEntry,
    SitemapResult,
    Skip,
    Verdict,
)
from extract.urls import canonicalize_url, same_site

__all__ = [
    "QualityReport",
    "below_floors",
    "format_report",
    "load_corpus",
    "score_corpus",
    "MIN_TEXT_LENGTH",
    "Article",
    "Contribution",
    "ExtractError",
    "FeedEntry",
    "FeedResult",
    "InvalidURLError",
    "LanguageGuess",
    "Match",
    "PageAnalysis",
    "RuleSet",
    "RulesError",
    "SignatureError",
    "SitemapEntry",
    "SitemapResult",
    "Skip",
    "Verdict",
    "analyse_page",
    "analyse_text",
    "article_from_text",
    "band_keys",
    "canonicalize_url",
    "could_match",
    "detect_language",
    "estimate_similarity",
    "evaluate",
    "extract_article",
    "load_rules",
    "minhash_signature",
    "parse_feed",
    "parse_sitemap",
    "same_site",
    "scored_text",
    "sitemaps_from_robots",
    "text_fingerprint",
]
