"""Duplicate keys for article texts: exact copies and near copies (syndication).

* `text_fingerprint`: sha256 of the normalised text (NFKC, case-folded, whitespace
  collapsed): the same story republished verbatim, whatever its markup or spacing.
* `minhash_signature`: a 64-value MinHash (datasketch, fixed seed) over word 5-shingles of the
  normalised text, or character 5-grams for scripts written without spaces (Chinese,
  Japanese, Thai, Lao, Khmer, Burmese); stable across processes and machines.
* `band_keys`: LSH keys, 16 bands of 4 rows. Two texts share a key with probability
  1 - (1 - s^4)^16 for Jaccard similarity s: ~99% at s=0.7, ~64% at s=0.5, ~12% at s=0.3.
* `estimate_similarity`: the Jaccard estimate of two signatures (share of equal values).
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata

import numpy as np
from datasketch import MinHash

from extract.errors import SignatureError

logger = logging.getLogger(__name__)

__all__ = [
    "BANDS",
    "NUM_PERM",
    "ROWS",
    "SEED",
    "SHINGLE",
    "band_keys",
    "estimate_similarity",
    "minhash_signature",
    "normalise_text",
    "shingles",
    "text_fingerprint",
]

NUM_PERM = 64
SEED = 1
SHINGLE = 5
BANDS = 16
ROWS = 4

_SPACE_RE = re.compile(r"\s+")
_WORD_RE = re.compile(r"\w+")
# Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar: scripts without spaces between words
_UNSPACED_RE = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f\u0e80-\u0eff"
    "\u1780-\u17ff\u1000-\u109f]"
)


def normalise_text(text: str) -> str:
    """NFKC, case-folded, every run of whitespace collapsed to one space, trimmed."""
    return _SPACE_RE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_fingerprint(text: str) -> str:
    """sha256 hex of the normalised text: equal for verbatim copies."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def _unspaced(text: str) -> bool:
    letters = sum(ch.isalpha() for ch in text)
    return bool(letters) and len(_UNSPACED_RE.findall(text)) > 0.3 * letters


def shingles(text: str) -> set[str]:
    """The shingle set a signature is computed over (empty for a text without words)."""
    norm = normalise_text(text)
    if _unspaced(norm):
        chars = "".join(_WORD_RE.findall(norm))
        if len(chars) <= SHINGLE:
            return {chars} if chars else set()
        return {chars[i : i + SHINGLE] for i in range(len(chars) - SHINGLE + 1)}
    words = _WORD_RE.findall(norm)
    if len(words) <= SHINGLE:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def minhash_signature(text: str) -> tuple[int, ...]:
    """A MinHash signature of `text` (NUM_PERM values); () for a text without words."""
    grams = shingles(text)
    if not grams:
        return ()
    minhash = MinHash(num_perm=NUM_PERM, seed=SEED)
    minhash.update_batch([g.encode("utf-8") for g in sorted(grams)])
    values: np.ndarray = minhash.hashvalues
    return tuple(int(v) for v in values)


def band_keys(signature: tuple[int, ...]) -> tuple[str, ...]:
    """LSH band keys "bNN:<16 hex>" of a signature; () for an empty signature."""
    if not signature:
        return ()
    if len(signature) != BANDS * ROWS:
        raise SignatureError(
            f"a signature of {len(signature)} values cannot be cut into {BANDS} bands of {ROWS}; "
            f"compute it with minhash_signature (num_perm={NUM_PERM})"
        )
    keys = []
    for band in range(BANDS):
        rows = signature[band * ROWS : (band + 1) * ROWS]
        digest = hashlib.blake2b(
            b"".join(v.to_bytes(8, "big") for v in rows), digest_size=8
        ).hexdigest()
        keys.append(f"b{band:02d}:{digest}")
    return tuple(keys)


def estimate_similarity(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Estimated Jaccard similarity of the texts behind two signatures (0.0 if either is empty)."""
    if not a or not b:
        return 0.0
    if len(a) != len(b):
        raise SignatureError(f"signatures of different lengths ({len(a)} and {len(b)}) cannot be compared")
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
