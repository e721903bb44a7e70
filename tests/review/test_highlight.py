"""review.highlight: a verdict's matches marked in the escaped text, at exactly their offsets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lxml.html
import pytest

from extract import analyse_text, load_rules, scored_text
from review.highlight import HighlightedText, highlight_text

RULES = Path(__file__).resolve().parents[2] / "config" / "rules.yaml"


def _match(full: str, text: str, rule: str, occurrence: int = 0) -> dict[str, Any]:
    start = -1
    for _ in range(occurrence + 1):
        start = full.index(text, start + 1)
    return {"term": text.lower(), "rule": rule, "start": start, "end": start + len(text),
            "text": text}


def _mark(rules: str, label: str, inner: str) -> str:
    return f'<mark class="m" data-rule="{rules}" title="{label}">{inner}</mark>'


def test_small_case_exact_html() -> None:
    title, text = "A defector speaks", "He left the group.\n\nHe defected in 2017.\nThen he fled."
    full = scored_text(title, text)
    result = highlight_text(title, text, [
        _match(full, "defector", "defector_nouns"),
        _match(full, "defected", "leaving"),
        _match(full, "fled", "leaving"),
    ])
    assert result == HighlightedText(
        title_html=f"A {_mark('defector_nouns', 'rule defector_nouns', 'defector')} speaks",
        body_html=(
            "<p>He left the group.</p>\n"
            f"<p>He {_mark('leaving', 'rule leaving', 'defected')} in 2017.</p>\n"
            f"<p>Then he {_mark('leaving', 'rule leaving', 'fled')}.</p>"
        ),
        unplaced=(),
    )


def test_without_title_offsets_are_into_the_body() -> None:
    text = "  First paragraph.  \n \n\nHe deserted.\n\n\n"
    result = highlight_text(None, text, [_match(text, "deserted", "leaving")])
    assert result.title_html == ""
    assert result.body_html == (
        f"<p>First paragraph.</p>\n<p>He {_mark('leaving', 'rule leaving', 'deserted')}.</p>"
    )
    # a blank title is not part of the scored text either
    assert highlight_text("   ", text, [_match(text, "deserted", "leaving")]).body_html == \
        result.body_html


def test_hostile_text_inside_and_around_a_match_is_escaped() -> None:
    title = '<img src=x onerror="alert(1)">'
    text = "<script>alert(1)</script> he <b>defected</b>\" & left"
    full = scored_text(title, text)
    matches = [
        _match(full, "<script>alert(1)</script>", "a\"><script>x</script>"),
        _match(full, "<b>defected</b>\"", "leaving"),
        _match(full, "onerror", "r&d"),
    ]
    result = highlight_text(title, text, matches)
    assert result.title_html == (
        '&lt;img src=x ' + _mark("r&amp;d", "rule r&amp;d", "onerror")
        + '=&#34;alert(1)&#34;&gt;'
    )
    assert result.body_html == (
        "<p>"
        + _mark("a&#34;&gt;&lt;script&gt;x&lt;/script&gt;",
                "rule a&#34;&gt;&lt;script&gt;x&lt;/script&gt;",
                "&lt;script&gt;alert(1)&lt;/script&gt;")
        + " he " + _mark("leaving", "rule leaving", "&lt;b&gt;defected&lt;/b&gt;&#34;")
        + " &amp; left</p>"
    )
    root = lxml.html.fragment_fromstring(result.body_html, create_parent="div")
    assert [e.tag for e in root.iter()] == ["div", "p", "mark", "mark"]
    assert root.text_content() == text


def test_overlapping_and_nested_matches_merge_into_one_mark() -> None:
    text = "He was an Islamic State fighter until he left."
    matches = [
        _match(text, "Islamic State", "is_names"),
        _match(text, "State fighter", "membership"),       # overlaps the first
        _match(text, "Islamic", "is_names"),               # nested in the first, same rule
        _match(text, "fighter", "former"),                 # nested in the second
        _match(text, "until", "other"),                    # touches nothing
        _match(text, "until he", "other2"),                # same start, longer
    ]
    result = highlight_text(None, text, matches)
    assert result.body_html == (
        "<p>He was an "
        + _mark("is_names membership former", "rules is_names, membership, former",
                "Islamic State fighter")
        + " " + _mark("other other2", "rules other, other2", "until he") + " left.</p>"
    )
    assert result.unplaced == ()


def test_a_match_across_a_paragraph_break_is_split_not_broken() -> None:
    title, text = "He left", "IS.\n\nHe left IS."
    full = scored_text(title, text)
    across = {"term": "quote", "rule": "testimony", "start": 9, "end": 16, "text": full[9:16]}
    result = highlight_text(title, text, [across])
    assert result.title_html == "He left"                       # ends before the match
    assert result.body_html == (
        f"<p>{_mark('testimony', 'rule testimony', 'IS.')}</p>\n"
        f"<p>{_mark('testimony', 'rule testimony', 'He')} left IS.</p>"
    )
    # a span from the title into the body is split the same way
    title_to_body = {"term": "q", "rule": "quote", "start": 3, "end": 11, "text": full[3:11]}
    result = highlight_text(title, text, [title_to_body])
    assert result.title_html == f"He {_mark('quote', 'rule quote', 'left')}"
    assert result.body_html == f"<p>{_mark('quote', 'rule quote', 'IS')}.</p>\n<p>He left IS.</p>"


def test_matches_that_do_not_fit_the_text_are_listed_not_placed() -> None:
    text = "He defected in 2017."
    stale = [
        {"term": "defect*", "rule": "leaving", "start": 3, "end": 11, "text": "defected"},  # fits
        {"term": "deserted", "rule": "leaving", "start": 3, "end": 11, "text": "deserted"},
        {"term": "fled", "rule": "leaving", "start": 40, "end": 44, "text": "fled"},
        {"term": "isis", "rule": "is_names", "start": 5, "end": 2, "text": "ISIS"},
        {"term": "isis", "rule": "is_names", "start": -4, "end": 0, "text": "ISIS"},
        {"term": "escaped", "rule": "leaving", "start": "3", "end": 10, "text": "escaped"},
        {"term": "former", "rule": "former"},
        {"term": "fled", "rule": "leaving", "start": 50, "end": 54, "text": "fled"},   # same words
    ]
    result = highlight_text(None, text, stale)
    assert result.body_html == f"<p>He {_mark('leaving', 'rule leaving', 'defected')} in 2017.</p>"
    assert result.unplaced == ("deserted", "fled", "ISIS", "escaped", "former")


def test_arabic_offsets_are_python_string_indexes() -> None:
    title = "منشق عن داعش يروي قصته"
    text = "قال المنشق إنه هرب من الرقة بعد أن فقد إيمانه بالتنظيم.\n\nوهو يعيش الآن في تركيا."
    full = scored_text(title, text)
    matches = [_match(full, "منشق", "defector_nouns"), _match(full, "داعش", "is_names"),
               _match(full, "المنشق", "defector_nouns"), _match(full, "هرب من", "leaving"),
               _match(full, "الرقة", "is_places")]
    result = highlight_text(title, text, matches)
    assert result.unplaced == ()
    assert result.title_html == (
        f"{_mark('defector_nouns', 'rule defector_nouns', 'منشق')} عن "
        f"{_mark('is_names', 'rule is_names', 'داعش')} يروي قصته"
    )
    assert result.body_html == (
        f"<p>قال {_mark('defector_nouns', 'rule defector_nouns', 'المنشق')} إنه "
        f"{_mark('leaving', 'rule leaving', 'هرب من')} "
        f"{_mark('is_places', 'rule is_places', 'الرقة')} بعد أن فقد إيمانه بالتنظيم.</p>\n"
        "<p>وهو يعيش الآن في تركيا.</p>"
    )


def test_control_characters_and_lone_surrogates_cannot_reach_the_page() -> None:
    text = "He\x00 left\ud800 \x1b[31m IS"
    result = highlight_text(None, text, [_match(text, "IS", "is_names")])
    assert result.body_html == (
        f"<p>He\ufffd left\ufffd \ufffd[31m {_mark('is_names', 'rule is_names', 'IS')}</p>"
    )
    result.body_html.encode("utf-8")


DEFECTOR_TITLE = "Former Islamic State fighter tells how he defected"
DEFECTOR_TEXT = (
    "A former Islamic State fighter who defected from the group in 2017 says he escaped from "
    "Raqqa after growing disillusioned with its leaders.\n\n"
    "\"I joined ISIS because I believed their promises, but I saw them kill Muslims,\" he told us. "
    "\"I deserted one night and walked to the Turkish border.\"\n\n"
    "He now lives in Gaziantep and speaks to young men about why he left the caliphate."
)


def test_a_real_verdict_from_the_real_rules_is_fully_placed() -> None:
    if not RULES.is_file():
        pytest.skip(f"rules file not found at {RULES}")
    analysis = analyse_text(DEFECTOR_TEXT, DEFECTOR_TITLE, load_rules(RULES))
    assert analysis.verdict is not None and analysis.verdict.flagged
    stored = json.loads(json.dumps(analysis.verdict.to_dict()))     # as the store keeps it
    matches = stored["matches"]
    assert len(matches) >= 10

    result = highlight_text(DEFECTOR_TITLE, DEFECTOR_TEXT, matches)

    assert result.unplaced == ()
    marks = [
        (m.text_content(), set(m.get("data-rule").split(" ")))
        for html in (result.title_html, result.body_html)
        for m in lxml.html.fragment_fromstring(html or "-", create_parent="div").iter("mark")
    ]
    # These matches never partly overlap, so every distinct span is one mark, in text order,
    # holding exactly the match's text and naming every rule that matched it.
    spans: dict[tuple[int, int], set[str]] = {}
    for m in matches:
        spans.setdefault((m["start"], m["end"]), set()).add(m["rule"])
    full = scored_text(DEFECTOR_TITLE, DEFECTOR_TEXT)
    assert marks == [(full[s:e], rules) for (s, e), rules in sorted(spans.items())]
    assert {m["text"] for m in matches} == {text for text, _ in marks}
    assert [text for text, _ in marks[:4]] == ["Former", "Islamic State", "fighter", "tells"]
    # the visible text is the article, unchanged
    body = lxml.html.fragment_fromstring(result.body_html, create_parent="div")
    assert [p.text_content() for p in body.iter("p")] == DEFECTOR_TEXT.split("\n\n")
    assert lxml.html.fragment_fromstring(result.title_html, create_parent="div").text_content() \
        == DEFECTOR_TITLE
