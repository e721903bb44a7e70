"""Language identification with langdetect, made deterministic.

langdetect samples n-grams at random; `detect_language` seeds its factory (seed 0) on every
call, so the same text always gets the same answer. Nothing is seeded at import time.
"""

from __future__ import annotations

import logging

from langdetect import DetectorFactory, LangDetectException, detect_langs

from extract.types import LanguageGuess

logger = logging.getLogger(__name__)

__all__ = ["MAX_CHARS", "MIN_LETTERS", "UNDETERMINED", "detect_language", "normalise_code"]

MAX_CHARS = 5000   # the first characters are enough, and keep long pages cheap
MIN_LETTERS = 12   # fewer letters than this is a guess, not a detection
UNDETERMINED = LanguageGuess("und", 0.0)


def normalise_code(code: str) -> str:
    """langdetect's code as ISO 639-1: "zh-cn"/"zh-tw" -> "zh"; other codes unchanged."""
    return code.split("-", 1)[0].lower()


def detect_language(text: str) -> LanguageGuess:
    """The most probable language of `text`, or "und" (probability 0.0) when undetermined."""
    sample = text[:MAX_CHARS]
    if sum(ch.isalpha() for ch in sample) < MIN_LETTERS:
        return UNDETERMINED
    DetectorFactory.seed = 0
    try:
        guesses = detect_langs(sample)
    except LangDetectException as exc:
        logger.debug("langdetect gave up: %s", exc)
        return UNDETERMINED
    if not guesses:
        return UNDETERMINED
    best = guesses[0]
    return LanguageGuess(normalise_code(str(best.lang)), float(best.prob))
