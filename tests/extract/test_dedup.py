"""Duplicate keys: verbatim fingerprints and MinHash/LSH near-copy detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from extract import band_keys, estimate_similarity, minhash_signature, text_fingerprint
from extract.dedup import BANDS, NUM_PERM, shingles
from extract.errors import SignatureError

STORIES = Path(__file__).parent / "fixtures" / "dedup"


def story(name: str) -> tuple[str, str]:
    """(headline, body) of a story file: the headline, a blank line, the body."""
    headline, _, body = (STORIES / f"{name}.txt").read_text(encoding="utf-8").partition("\n\n")
    return headline, body


def test_fingerprint_ignores_spacing_case_and_compatibility_forms() -> None:
    a = "Former fighter   describes escape\n\nfrom the group."
    b = "FORMER FIGHTER describes escape from the group.  "
    c = "Ｆormer ﬁghter describes escape from the group."   # fullwidth F, fi ligature (NFKC)
    assert text_fingerprint(a) == text_fingerprint(b) == text_fingerprint(c)
    assert len(text_fingerprint(a)) == 64 and int(text_fingerprint(a), 16) >= 0
    assert text_fingerprint(a) != text_fingerprint("Former fighter describes escape from a group.")


def test_signature_is_stable() -> None:
    _, body = story("wire_original")
    signature = minhash_signature(body)
    assert len(signature) == NUM_PERM
    assert signature == minhash_signature(body)
    assert all(isinstance(v, int) and 0 <= v < 2**32 for v in signature)
    assert signature == minhash_signature(" ".join(body.split()).upper())   # normalised first


def test_signature_values_are_pinned() -> None:
    # stored band keys must match the ones computed next year: a changed seed, hash function
    # or shingling would silently split every story group in the database
    signature = minhash_signature("A man who spent three years with the group said he fled.")
    assert signature[:3] == (312140887, 208777138, 378986382)
    assert band_keys(signature)[0] == "b00:efea3f8cea4efd6a"


def test_syndicated_copy_with_new_headline_and_edits_is_a_near_copy() -> None:
    original_title, original = story("wire_original")
    copy_title, copy = story("wire_syndicated")
    assert original_title != copy_title
    assert text_fingerprint(original) != text_fingerprint(copy)   # not verbatim
    a, b = minhash_signature(original), minhash_signature(copy)
    similarity = estimate_similarity(a, b)
    assert similarity > 0.6
    shared = set(band_keys(a)) & set(band_keys(b))
    assert len(shared) >= 1
    # the estimate is close to the true Jaccard similarity of the shingle sets
    sa, sb = shingles(original), shingles(copy)
    assert abs(similarity - len(sa & sb) / len(sa | sb)) < 0.15


def test_different_stories_on_the_same_topic_are_not_near_copies() -> None:
    _, original = story("wire_original")
    _, other = story("same_topic_other_story")
    a, b = minhash_signature(original), minhash_signature(other)
    assert estimate_similarity(a, b) < 0.2
    assert set(band_keys(a)).isdisjoint(band_keys(b))


def test_band_keys_format() -> None:
    keys = band_keys(minhash_signature(story("wire_original")[1]))
    assert len(keys) == BANDS
    assert [k[:4] for k in keys] == [f"b{i:02d}:" for i in range(BANDS)]
    assert all(len(k) == 4 + 16 and int(k[4:], 16) >= 0 for k in keys)


def test_unspaced_scripts_use_character_shingles() -> None:
    chinese = "前战士向记者讲述了他离开组织的原因。他说他不再相信那些承诺，于是在夜里穿越沙漠逃走。"
    grams = shingles(chinese)
    assert "前战士向记" in grams and all(len(g) == 5 for g in grams)
    edited = chinese.replace("夜里", "晚上")
    assert estimate_similarity(minhash_signature(chinese), minhash_signature(edited)) > 0.5
    thai = "อดีตนักรบเล่าให้ผู้สื่อข่าวฟังว่าเขาออกจากกลุ่มหลังจากสองปีเพราะไม่เชื่อคำสัญญาอีกต่อไป"
    assert all(len(g) == 5 for g in shingles(thai))


def test_short_and_empty_texts() -> None:
    assert shingles("Three short words") == {"three short words"}
    assert minhash_signature("") == () and minhash_signature(" .,;! ") == ()
    assert band_keys(()) == ()
    assert estimate_similarity((), minhash_signature("some words here")) == 0.0


def test_mismatched_signatures_raise() -> None:
    signature = minhash_signature(story("wire_original")[1])
    with pytest.raises(SignatureError, match="different lengths"):
        estimate_similarity(signature, signature[:32])
    with pytest.raises(SignatureError, match="cannot be cut into 16 bands"):
        band_keys(signature[:10])
