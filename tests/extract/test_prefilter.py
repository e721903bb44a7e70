"""The prefilter is recall-safe: a page whose text the rules would flag always passes it."""

from __future__ import annotations

import html
import html.entities
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extract.prefilter import could_match, page_text
from extract.rules import RuleSet, evaluate, load_rules

REPO = Path(__file__).resolve().parents[2]
RULESETS = {
    "shipped": load_rules(REPO / "config" / "rules.yaml"),
    "features": load_rules(Path(__file__).resolve().parent / "fixtures" / "rules" / "features.yaml"),
}

STORY = (
    "<html><head><title>Former IS fighter tells why he left</title></head><body>"
    "<p>Abu Omar defected from the Islamic State in 2016.</p>"
    "<p>&quot;I joined because I believed them,&quot; he told us.</p></body></html>"
)


def test_unrelated_pages_are_skipped() -> None:
    rules = RULESETS["shipped"]
    page = ("<html><head><style>.left{float:left}</style><script>if (x) { is = 1 }</script>"
            "</head><body><p>The council met on Tuesday to discuss the new bus lanes.</p>"
            "<p>Residents left early.</p></body></html>")
    assert not could_match(rules, page)


def test_a_testimony_rule_that_can_flag_alone_keeps_every_page() -> None:
    """features.yaml lets quoted first-person speech alone reach the threshold, and quotes
    are not anchored to terms, so no page can be ruled out."""
    assert could_match(RULESETS["features"], "<p>The council met on Tuesday.</p>")


def test_a_defector_page_passes() -> None:
    assert could_match(RULESETS["shipped"], STORY)
    assert evaluate(RULESETS["shipped"], "Former IS fighter tells why he left",
                    "Abu Omar defected from the Islamic State in 2016.", "en").flagged


@pytest.mark.parametrize(
    "page",
    [
        # a word split by inline tags, and entities in every form
        "<p>He de<b>fect</b>ed from Da<i>e</i>sh in 2016.</p>",
        "<p>He d&#101;fected from Da&#x65;sh &amp; left.</p>",
        # the title only in og:title or in JSON-LD with \\u escapes
        '<meta property="og:title" content="He defected from Daesh"><p>nothing</p>',
        '<script type="application/ld+json">{"headline": "He defected from \\u0044aesh"}</script>',
        # Arabic with an entity inside the word and a clitic
        "<p>&#1575;&#1606;&#1588;&#1602; عن ل&#1583;اعش</p>",
    ],
)
def test_tricky_markup_passes(page: str) -> None:
    rules = RULESETS["features"]
    assert could_match(rules, page)


def test_page_text_drops_scripts_styles_and_comments_but_keeps_json_ld() -> None:
    text = page_text('<!-- Daesh --><style>p{}</style><script>var a="defected"</script>'
                     '<script type="application/ld+json">{"a": "\\u0646"}</script><p>x&eacute;</p>')
    assert "Daesh" not in text and "defected" not in text
    assert "ن" in text and "xé" in text


# ---------------------------------------------------------------- the property

_FILLER_ALPHABET = st.sampled_from(
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    + list("éèöüşğçıİñøåæß") + list("абвгдеёжзийклмнопрстуИГ") + list("ابتثجحدذرسشصطعفقكلمنهويةأإآ")
    + list("中文한국") + ["\u00ad", "\u200b", "\u064e"]
)
_FILLER = st.text(_FILLER_ALPHABET, min_size=1, max_size=9)
_PUNCT = st.sampled_from([".", ",", ":", ";", "!", "?", "-", "—", "«", "»", "„", "“", "”", '"',
                          "'", "’", "(", ")", "&", "<", ">", "\n", "\n\n"])
_LANGS = ["en", "ar", "fr", "de", "nl", "sv", "da", "no", "tr", "ru", "es", "it", "pt", "id",
          "und", "xx"]


def _surface(term: Any, draw: Any) -> str:
    """A text that the term matches (stems get an ending, word endings a start)."""
    text = term.keep_case if term.case_sensitive else term.source
    words = []
    for word in text.split(" "):
        if word.endswith("*"):
            word = word.rstrip("*") + draw(st.sampled_from(["", "ed", "ors", "ов", "ون"]))
        words.append(word)
    out = " ".join(words)
    if term.infix:
        out = draw(st.sampled_from(["", "IS-", "Dschihad"])) + out.lstrip("*")
    return out


def _lexicon_kinds(rules: RuleSet) -> tuple[list[str], list[str]]:
    """Lexicons that can add points, and the others (negative contexts, narratives)."""
    positive: set[str] = set()
    for rule in rules.rules:
        if rule.weight > 0:
            for group in (*rule.all, *rule.anywhere, *(w.group for w in rule.weighted)):
                positive.update(group.lexicons)
    if rules.testimony.first_person:
        positive.add(rules.testimony.first_person)
    return sorted(positive), sorted(set(rules.lexicons) - positive)


@st.composite
def stories(draw: Any, rules: RuleSet) -> tuple[str, str | None, list[str]]:
    lang = draw(st.sampled_from(_LANGS))
    positive, negative = _lexicon_kinds(rules)
    pieces: list[str] = []
    for _ in range(draw(st.integers(3, 24))):
        kind = draw(st.sampled_from(["term", "term", "term", "filler", "punct", "quote"]))
        if kind == "term":
            pool = negative if negative and draw(st.integers(0, 9)) == 0 else positive
            lexicon = rules.lexicons[draw(st.sampled_from(pool))]
            _, terms = lexicon.select(rules.languages_for(lang))
            pieces.append(_surface(draw(st.sampled_from(terms)), draw))
        elif kind == "filler":
            pieces.append(draw(_FILLER))
        elif kind == "punct":
            pieces.append(draw(_PUNCT))
        else:
            pieces.append('"I ' + draw(_FILLER) + ' ich я أنا"')
    text = " ".join(pieces)
    paragraphs = [p for p in re.split(r"\n+", text) if p.strip()] or ["x"]
    title = None
    if draw(st.booleans()) and len(paragraphs) > 1:
        title = paragraphs.pop(0)
    return lang, title, paragraphs


def _encode(text: str, draw: Any) -> str:
    """HTML for a text node: entities of every kind and inline tags inside words."""
    out = []
    for ch in text:
        choice = draw(st.integers(0, 19))
        if choice == 0:
            out.append(f"&#{ord(ch)};")
        elif choice == 1:
            out.append(f"&#x{ord(ch):x};")
        elif choice == 2 and ord(ch) in html.entities.codepoint2name:
            out.append(f"&{html.entities.codepoint2name[ord(ch)]};")
        elif choice == 3:
            out.append(draw(st.sampled_from(["<b>", "</b>", '<span class="left is">', "</span>",
                                             "<!-- IS -->", "<i>"])) + html.escape(ch))
        else:
            out.append(html.escape(ch))
    return "".join(out)


@st.composite
def pages(draw: Any, rules: RuleSet) -> tuple[str, str | None, str, str]:
    lang, title, paragraphs = draw(stories(rules))
    head = ""
    if title is not None:
        where = draw(st.sampled_from(["title", "og", "jsonld", "h1"]))
        if where == "title":
            head = f"<title>{_encode(title, draw)}</title>"
        elif where == "og":
            head = f'<meta property="og:title" content="{html.escape(title, quote=True)}">'
        elif where == "jsonld":
            head = ('<script type="application/ld+json">'
                    + json.dumps({"headline": title}).replace("</", "<\\/") + "</script>")
        else:
            head = f"<h1>{_encode(title, draw)}</h1>"
    body = []
    for paragraph in paragraphs:
        body.append(f"<p>{_encode(paragraph, draw)}</p>")
        body.append(draw(st.sampled_from(["", "\n", "<script>var is = 'left';</script>",
                                          "<style>.x{left:0}</style>", "<br/>", "<div>"])))
    raw = f"<html><head>{head}</head><body>{''.join(body)}</body></html>"
    return lang, title, "\n".join(paragraphs), raw


_PROPERTY = settings(max_examples=150, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("name", ["shipped", "features"])
def test_flagged_implies_could_match(name: str) -> None:
    rules = RULESETS[name]
    flagged: list[bool] = []

    @_PROPERTY
    @given(pages(rules))
    def check(page: tuple[str, str | None, str, str]) -> None:
        lang, title, text, raw = page
        verdict = evaluate(rules, title, text, lang)
        flagged.append(verdict.flagged)
        if verdict.flagged:
            assert could_match(rules, raw), raw

    check()
    # the property is not vacuous: the generator does produce flagged stories
    assert sum(flagged) >= 5, f"only {sum(flagged)} of {len(flagged)} generated stories flagged"
