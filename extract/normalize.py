"""Text normalisation for rule matching, with a map back to the original characters.

Every character is folded on its own, so the fold of a string is the concatenation of the
folds of its characters. That makes two promises cheap to keep:

* a match found in the folded text maps back to a span of the original text
  (``NormalizedText.span``), and
* if a text contains a substring, the fold of the text contains the fold of that substring,
  which is what lets the prefilter (extract/prefilter.py) test the raw page instead of the
  extracted article without losing recall.

Per character, in order: Unicode compatibility decomposition (NFKD, the decomposing half
of NFKC), case folding, removal of combining marks (Latin diacritics é->e, ö->o, ş->s;
Arabic harakat; Cyrillic ё->е), removal of invisible format characters (soft hyphen,
zero-width joiners, bidi marks), control characters other than white space and the
Arabic tatweel, then a small table of letter
variants: Turkish dotless ı and dotted İ -> i, Arabic أ إ آ ٱ -> ا, ة -> ه, ى -> ي,
ؤ -> و, ئ -> ي, Persian ی ک -> ي ك, typographic apostrophes -> '. Finally the result is
recomposed (NFC) so that Hangul syllables survive.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["NormalizedText", "fold", "fold_char", "normalize", "fold_keep_case"]

# Letter variants folded after decomposition and case folding (targets are already folded).
_VARIANTS: dict[str, str] = {
    "ı": "i",        # Turkish dotless i (İ decomposes to i + combining dot, which is dropped)
    "ٱ": "ا",        # alef wasla
    "ة": "ه",        # taa marbuta -> haa
    "ى": "ي",        # alef maqsura -> yaa
    "ی": "ي",        # Persian yeh
    "ے": "ي",        # Urdu yeh barree
    "ک": "ك",        # Persian keheh
    "ـ": "",         # tatweel (kashida)
    "’": "'",
    "‘": "'",
    "ʼ": "'",
    "ʻ": "'",
    "`": "'",
    "´": "'",
    "′": "'",
}
# After NFKD, أ إ آ ؤ ئ are a base letter plus a combining hamza/madda, which is dropped.

_DROP_CATEGORIES = frozenset({"Mn", "Me", "Cf"})
_ASCII_DROPPED = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")  # ASCII controls that are not space


def _fold_piece(piece: str, casefold: bool) -> str:
    decomposed = unicodedata.normalize("NFKD", piece)
    if casefold:
        decomposed = unicodedata.normalize("NFKD", decomposed.casefold())
    out = []
    for ch in decomposed:
        category = unicodedata.category(ch)
        if category in _DROP_CATEGORIES or (category == "Cc" and not ch.isspace()):
            continue
        out.append(_VARIANTS.get(ch, ch))
    return unicodedata.normalize("NFC", "".join(out))


def fold_char(ch: str) -> str:
    """Fold one character for matching; may return "" (dropped) or several characters."""
    return _TABLE[ord(ch)]


def _fold_one(ch: str, casefold: bool) -> str:
    if ch.isascii():
        if ch == "`":
            return "'"
        if ch.isprintable() or ch.isspace():
            return ch.lower() if casefold else ch
        return ""  # ASCII control characters
    return _fold_piece(ch, casefold=casefold)


class _FoldTable(dict[int, str]):
    """A str.translate table that folds characters on first sight and remembers them."""

    def __init__(self, casefold: bool) -> None:
        super().__init__()
        self.casefold = casefold

    def __missing__(self, key: int) -> str:
        value = _fold_one(chr(key), self.casefold)
        self[key] = value
        return value


_TABLE = _FoldTable(casefold=True)
_TABLE_KEEP_CASE = _FoldTable(casefold=False)


def fold(text: str) -> str:
    """Fold a whole string (no offset map); equal to ``normalize(text).text``."""
    return text.translate(_TABLE)


def fold_keep_case(text: str) -> str:
    """Like ``fold`` but without case folding: used to check case-sensitive terms."""
    return text.translate(_TABLE_KEEP_CASE)


@dataclass(frozen=True)
class NormalizedText:
    """Folded text plus, for each folded character, the index of its original character."""

    original: str
    text: str
    index: tuple[int, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a [start, end) span of the folded text back to the original text.

        The original span includes combining marks that follow its last character.
        """
        if start >= end:
            pos = self.index[start] if start < len(self.index) else len(self.original)
            return pos, pos
        o_end = self.index[end - 1] + 1
        limit = self.index[end] if end < len(self.index) else len(self.original)
        while o_end < limit and unicodedata.category(self.original[o_end]) in ("Mn", "Me"):
            o_end += 1
        return self.index[start], o_end

    def position(self, original_pos: int) -> int:
        """The first folded position at or after an original character position."""
        from bisect import bisect_left

        return bisect_left(self.index, original_pos)


def normalize(text: str) -> NormalizedText:
    """Fold ``text`` for matching and keep the map from folded to original positions."""
    if text.isascii() and not _ASCII_DROPPED.search(text):
        return NormalizedText(text, fold(text), tuple(range(len(text))))
    pieces: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        folded = _TABLE[ord(ch)]
        if folded:
            pieces.append(folded)
            if len(folded) == 1:
                index.append(i)
            else:
                index.extend([i] * len(folded))
    return NormalizedText(text, "".join(pieces), tuple(index))
