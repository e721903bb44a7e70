"""Whole-page analysis: the one function the crawler, `dwatch classify` and `dwatch rescore` share.

`analyse_page(body, url, content_type, ruleset)` runs, in order:

1. sniff: an empty or binary body is skipped (Skip "empty" / "not_html");
2. prefilter (unless `use_prefilter=False`): when `could_match` proves that no rule can fire
   on the raw page, Skip("prefiltered") without running trafilatura;
3. extraction with trafilatura (Skip "no_article", "too_short", "extraction_error");
4. language detection on the scored text (title + "\\n\\n" + body);
5. the rules (`evaluate`), whose match offsets refer to that same scored text;
6. the duplicate keys of the body text: sha256 fingerprint, MinHash signature, LSH bands.

A skipped page carries what was learned before the skip: a too-short article keeps its
text, language and duplicate keys, but never a verdict.
"""

from __future__ import annotations

import logging

from extract.article import (
    Extraction,
    decode_body,
    extraction_of_decoded,
    is_plain_text,
    sniff_body,
    text_extraction,
)
from extract.dedup import band_keys, minhash_signature, text_fingerprint
from extract.language import detect_language
from extract.prefilter import could_match
from extract.rules import RuleSet, evaluate, scored_text
from extract.types import PageAnalysis, Skip

logger = logging.getLogger(__name__)

__all__ = ["analyse_extraction", "analyse_page", "analyse_text"]


def _skipped(skip: Skip) -> PageAnalysis:
    return PageAnalysis("skipped", None, skip, None, None, None)


def analyse_extraction(extracted: Extraction, ruleset: RuleSet) -> PageAnalysis:
    """Language, verdict and duplicate keys of an extraction (no verdict when it was skipped)."""
    article = extracted.article
    if article is None:
        assert extracted.skip is not None
        return _skipped(extracted.skip)
    lang = detect_language(scored_text(article.title, article.text))
    signature = minhash_signature(article.text)
    if extracted.skip is not None:
        return PageAnalysis(
            "skipped", article, extracted.skip, lang, None,
            text_fingerprint(article.text), band_keys(signature), signature,
        )
    verdict = evaluate(ruleset, article.title, article.text, lang.lang)
    return PageAnalysis(
        "extracted", article, None, lang, verdict,
        text_fingerprint(article.text), band_keys(signature), signature,
    )


def analyse_page(
    body: bytes,
    url: str,
    content_type: str | None,
    ruleset: RuleSet,
    *,
    use_prefilter: bool = True,
) -> PageAnalysis:
    """Analyse one fetched body; never raises on bad input (a typed Skip instead)."""
    skip = sniff_body(body, content_type)
    if skip is not None:
        return _skipped(skip)
    decoded = decode_body(body, content_type)
    if use_prefilter and not could_match(ruleset, decoded):
        return _skipped(
            Skip("prefiltered", f"no rule of rules version {ruleset.version} can match this page")
        )
    extracted = extraction_of_decoded(decoded, url, plain=is_plain_text(body, content_type))
    return analyse_extraction(extracted, ruleset)


def analyse_text(
    text: str, title: str | None, ruleset: RuleSet, *, find_headline: bool = False
) -> PageAnalysis:
    """Analyse text given directly (a .txt file, a stored document being rescored).

    No prefilter and no minimum length: text given explicitly is always scored, unless empty.
    `find_headline`: with no title, a first line that reads as a headline is scored as the title.
    """
    return analyse_extraction(text_extraction(text, "", title, find_headline=find_headline), ruleset)
