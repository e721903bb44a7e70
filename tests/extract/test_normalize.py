"""The matching normaliser: every folding rule, and offsets that map back to the original."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from extract.normalize import fold, fold_keep_case, normalize


@pytest.mark.parametrize(
    ("original", "folded"),
    [
        # case folding, including Turkish dotted and dotless i
        ("İSTANBUL", "istanbul"),
        ("IŞİD", "isid"),
        ("ışid", "isid"),
        ("Iğdır", "igdir"),
        ("Straße", "strasse"),
        # Latin diacritics
        ("été déçu", "ete decu"),
        ("Kämpfer över ş ğ ç ñ", "kampfer over s g c n"),
        # compatibility forms (NFKC)
        ("ﬁghter", "fighter"),
        ("ＩＳＩＳ", "isis"),
        # Arabic letter variants, harakat and tatweel
        ("أإآٱ", "اااا"),
        ("الدولة الإسلامية", "الدوله الاسلاميه"),
        ("مُنْشَقّ", "منشق"),
        ("داعـــش", "داعش"),
        ("مستشفى مسؤول رئيس", "مستشفي مسوول رييس"),
        # Cyrillic ё
        ("ушёл Ёлка", "ушел елка"),
        # typographic apostrophes, invisible characters
        ("Da’esh Daʼesh Da`esh", "da'esh da'esh da'esh"),
        ("Da\u00adesh Da\u200besh Da\u200desh", "daesh daesh daesh"),
        ("a\x07b", "ab"),
    ],
)
def test_fold_variants(original: str, folded: str) -> None:
    assert fold(original) == folded
    assert normalize(original).text == folded


def test_fold_keep_case_keeps_capitals_but_folds_the_rest() -> None:
    assert fold_keep_case("IŞİD és IS") == "ISID es IS"
    assert fold_keep_case("ИГ ёж") == "ИГ еж"


def test_offsets_map_folded_spans_back_to_the_original() -> None:
    original = "Der Straße-Kämpfer aus İzmir verließ den IŞİD."
    norm = normalize(original)
    for word, surface in [("strasse", "Straße"), ("kampfer", "Kämpfer"),
                          ("izmir", "İzmir"), ("isid", "IŞİD"), ("verliess", "verließ")]:
        start = norm.text.index(word)
        o_start, o_end = norm.span(start, start + len(word))
        assert original[o_start:o_end] == surface


def test_offsets_skip_dropped_characters() -> None:
    original = "قال مُنْشَقّ عن داعـــش"
    norm = normalize(original)
    start = norm.text.index("داعش")
    o_start, o_end = norm.span(start, start + 4)
    assert original[o_start:o_end] == "داعـــش"
    start = norm.text.index("منشق")
    assert original[slice(*norm.span(start, start + 4))] == "مُنْشَقّ"


def test_ascii_text_keeps_identity_offsets() -> None:
    norm = normalize("ISIS Defector")
    assert norm.text == "isis defector"
    assert norm.index == tuple(range(13))


@given(st.text(max_size=60))
def test_fold_is_per_character(text: str) -> None:
    """The fold of a text is the concatenation of the folds of its characters: the property
    the prefilter relies on (a substring of the page stays a substring after folding)."""
    assert fold(text) == "".join(fold(ch) for ch in text)
    norm = normalize(text)
    assert norm.text == fold(text)
    assert len(norm.index) == len(norm.text)
    assert list(norm.index) == sorted(norm.index)
    for i, orig in enumerate(norm.index):
        assert fold(text[orig]).find(norm.text[i]) >= 0
