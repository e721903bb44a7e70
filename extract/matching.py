"""Terms, their compiled patterns, and the layout of a scored text (zones, sentences, words).

A term is written in rules.yaml as plain text:

* ``defector``           whole word (word boundaries work in every script: ``\\w`` is Unicode)
* ``defect*``            trailing ``*``: a stem, matches defect, defected, defectors, ...
* ``*aussteiger``        leading ``*``: may end a compound (IS-Aussteiger, Dschihadaussteiger)
* ``исламск* государств*`` a phrase; each word may end with ``*``
* ``islamic state``      a phrase: spaces match 1-3 non-word characters (space, newline,
  dash), but not a full stop, ! ? or ;
* ``al-shabaab``          a hyphen matches 0-3 non-word characters (al shabaab, alshabaab)
* ``da'esh``              an apostrophe matches any apostrophe (' ’ ʼ ` fold to ')
* ``{term: IS, case_sensitive: true}``  exact capitals (the English verb "is" is not IS), and
  never inside a run of capitalised words (a shouted headline "WHAT IS LEFT").

Matching runs on folded text (extract/normalize.py). Arabic terms tolerate the clitic
prefixes و ف ب ك ل and the article ال in front (والمنشق, للدولة).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

from extract.normalize import NormalizedText, fold, fold_keep_case

__all__ = ["Anchor", "Term", "Hit", "Layout", "TermMatcher", "parse_term", "term_anchors"]

_FLEX_SPACE = r"[^\w.!?;؟。]{1,3}"   # a phrase does not run across the end of a sentence
_FLEX_JOIN = r"[^\w.!?;؟。]{0,3}"
_ARABIC = re.compile(r"[\u0600-\u06ff]")
_AR_ARTICLE = "ال"
_AR_CONJ = "(?:و|ف)?"


@dataclass(frozen=True)
class Term:
    source: str                  # as written in rules.yaml (without the map form)
    core: str                    # folded text without the * markers
    stem: bool = False           # trailing *: may continue inside the word
    infix: bool = False          # leading *: may start inside the word
    case_sensitive: bool = False
    keep_case: str = ""          # for case-sensitive terms: the unfolded-case core

    @property
    def arabic(self) -> bool:
        return bool(_ARABIC.match(self.core))

    def pattern(self) -> str:
        pieces = re.split(r"(\s+|-)", self.core)
        body = []
        for piece in pieces:
            if not piece:
                continue
            if piece.isspace():
                body.append(_FLEX_SPACE)
            elif piece == "-":
                body.append(_FLEX_JOIN)
            elif piece.endswith("*"):
                body.append(re.escape(piece.rstrip("*")) + r"\w*")
            else:
                body.append(re.escape(piece))
        core = "".join(body)
        if self.arabic and not self.infix:
            if self.core.startswith(_AR_ARTICLE):
                rest_pat = core[len(re.escape(_AR_ARTICLE)):]
                core = f"(?:{_AR_CONJ}(?:[بك]?{_AR_ARTICLE}|لل){rest_pat})"
            else:
                core = f"(?:{_AR_CONJ}(?:[بك]?{_AR_ARTICLE}|لل|[بكل])?{core})"
        head = r"(?<!\w)\w*?" if self.infix else r"(?<!\w)"
        tail = "" if self.stem else r"(?!\w)"
        return head + core + tail


def parse_term(text: str, case_sensitive: bool = False) -> Term:
    """Build a Term from its rules.yaml spelling; raises ValueError when it is malformed."""
    raw = text.strip()
    infix = raw.startswith("*")
    inner = raw[1:].strip() if infix else raw
    core = re.sub(r"\s+", " ", fold(inner)).strip()
    if not re.search(r"\w", core):
        raise ValueError(f"term {text!r} has no letters or digits")
    if re.search(r"\*(?=\w)|\*\*|(?<!\w)\*", core):
        raise ValueError(f"term {text!r} has a '*' that is not at the start or end of a word")
    keep = fold_keep_case(inner).replace("*", "") if case_sensitive else ""
    return Term(raw, core, stem=core.endswith("*"), infix=infix, case_sensitive=case_sensitive,
                keep_case=keep)


@dataclass(frozen=True)
class Anchor:
    """A piece of text that every match of a term contains (used by the prefilter)."""

    text: str               # folded (or, when case_sensitive, folded keeping case)
    word_start: bool        # the piece always starts a word (no word character before it)
    case_sensitive: bool = False


def term_anchors(term: Term) -> tuple[Anchor, ...]:
    """The pieces of ``term`` that every one of its matches contains, in order."""
    source = term.keep_case if term.case_sensitive else term.core.replace("*", "")
    tokens = re.split(r"([^\w']+)", source)
    anchors: list[Anchor] = []
    clitics = term.arabic and not term.infix
    for i in range(0, len(tokens), 2):
        piece = tokens[i]
        if not piece:
            continue
        if i == 0:
            starts = not term.infix and not clitics
            if clitics and piece.startswith(_AR_ARTICLE) and len(piece) > len(_AR_ARTICLE):
                piece = piece[len(_AR_ARTICLE):]
        else:
            starts = not re.fullmatch(r"-+", tokens[i - 1])
        anchors.append(Anchor(piece, starts, term.case_sensitive))
    return tuple(anchors) or (Anchor(source, False, term.case_sensitive),)


@dataclass(frozen=True)
class Hit:
    """A term (or signal) found in the folded text, in folded positions."""

    term: str       # the term as written in rules.yaml, or the signal name
    start: int
    end: int


_WORD = re.compile(r"\w+")
_CAPS_WORD = re.compile(r"[^\W\d_]{2,}")


def _shouting(original: str, start: int, end: int) -> bool:
    """True when the neighbouring words of [start, end) are all in capitals."""
    before = re.findall(r"\w+", original[max(0, start - 40):start])
    after = re.findall(r"\w+", original[end:end + 40])
    neighbours = ([before[-1]] if before else []) + ([after[0]] if after else [])
    if not neighbours:
        return False
    return all(_CAPS_WORD.fullmatch(w) and w.isupper() for w in neighbours)


class TermMatcher:
    """All occurrences of a set of terms, found word by word.

    Terms are indexed by their first word (or its stem); at each word of the text only the
    terms indexed under that word (or a prefix of it, or, for Arabic, the word without up to
    four clitic letters) are tried, each with its own anchored pattern. Word-ending terms
    (``*aussteiger``) share one regex. At each position the longest match wins and matches
    do not overlap.
    """

    def __init__(self, terms: tuple[Term, ...]) -> None:
        unique: dict[tuple[str, bool, bool, bool], Term] = {}
        for t in terms:
            unique.setdefault((t.core, t.stem, t.infix, t.case_sensitive), t)
        self._exact: dict[str, list[tuple[Term, re.Pattern[str]]]] = {}
        self._stems: dict[str, list[tuple[Term, re.Pattern[str]]]] = {}
        self._longest_stem = 0
        self._seen: dict[str, list[tuple[Term, re.Pattern[str]]]] = {}
        infix = []
        for term in unique.values():
            if term.infix or not re.match(r"\w", term.core):
                infix.append(term)  # found by one shared regex
                continue
            compiled = re.compile(term.pattern())
            key = re.match(r"\w*\*?", term.core).group(0)  # type: ignore[union-attr]
            if term.arabic and key.startswith(_AR_ARTICLE) and len(key) > len(_AR_ARTICLE):
                key = key[len(_AR_ARTICLE):]
            if key.endswith("*"):
                key = key[:-1]
                self._stems.setdefault(key, []).append((term, compiled))
                self._longest_stem = max(self._longest_stem, len(key))
            else:
                self._exact.setdefault(key, []).append((term, compiled))
        self._infix: tuple[re.Pattern[str], list[Term]] | None = None
        if infix:
            infix.sort(key=lambda t: (-len(t.core), t.core))
            alternation = "|".join(f"({t.pattern()})" for t in infix)
            self._infix = (re.compile(alternation), infix)

    def _candidates(self, word: str) -> list[tuple[Term, re.Pattern[str]]]:
        cached = self._seen.get(word)
        if cached is not None:
            return cached
        if len(self._seen) > 100_000:
            self._seen.clear()
        keys = [word]
        if _ARABIC.match(word):
            keys += [word[k:] for k in range(1, min(5, len(word)))]
        found: list[tuple[Term, re.Pattern[str]]] = []
        for key in keys:
            found += self._exact.get(key, ())
            if self._stems:
                for n in range(1, min(len(key), self._longest_stem) + 1):
                    found += self._stems.get(key[:n], ())
        self._seen[word] = found
        return found

    def find(self, norm: NormalizedText) -> list[Hit]:
        text = norm.text
        hits: list[Hit] = []
        last_end = 0
        for word in _WORD.finditer(text):
            if word.start() < last_end:
                continue
            best: tuple[int, Term] | None = None
            for term, pattern in self._candidates(word.group(0)):
                m = pattern.match(text, word.start())
                if m is None or (best is not None and m.end() <= best[0]):
                    continue
                if term.case_sensitive and not self._case_ok(term, norm, m.start(), m.end()):
                    continue
                best = (m.end(), term)
            if best is not None:
                hits.append(Hit(best[1].source, word.start(), best[0]))
                last_end = best[0]
        if self._infix is not None:
            regex, terms = self._infix
            for m in regex.finditer(text):
                hits.append(Hit(terms[(m.lastindex or 1) - 1].source, m.start(), m.end()))
        hits.sort(key=lambda h: (h.start, h.end))
        return hits

    @staticmethod
    def _case_ok(term: Term, norm: NormalizedText, start: int, end: int) -> bool:
        o_start, o_end = norm.span(start, end)
        surface = fold_keep_case(norm.original[o_start:o_end])
        if re.sub(r"\W", "", term.keep_case) not in re.sub(r"\W", "", surface):
            return False
        return not (term.keep_case.isupper() and _shouting(norm.original, o_start, o_end))


_SENTENCE_END = re.compile(r"[.!?؟।。！？]+[\"'”»)\]]*\s+|\n")
_PARAGRAPH_END = re.compile(r"\n\s*")


@dataclass
class Layout:
    """Where things are in a folded scored text: zones, paragraphs, sentences, words."""

    norm: NormalizedText
    title_end: int                 # folded position where the title ends (0: no title)
    lead_end: int                  # folded position where the lead ends
    paragraph_starts: list[int] = field(default_factory=list)
    sentence_starts: list[int] = field(default_factory=list)
    word_starts: list[int] = field(default_factory=list)

    @classmethod
    def build(
        cls, norm: NormalizedText, title_chars: int, lead_paragraphs: int, lead_min_words: int = 0
    ) -> Layout:
        text = norm.text
        title_end = norm.position(title_chars) if title_chars else 0
        paragraphs = [0] + [m.end() for m in _PARAGRAPH_END.finditer(text)]
        sentences = sorted(set(paragraphs + [m.end() for m in _SENTENCE_END.finditer(text)]))
        body_paras = [p for p in paragraphs if p >= title_end and p < len(text)]
        if title_end:
            body_paras = [p for p in body_paras if p > title_end]
        # The lead is the first `lead_paragraphs` real paragraphs; short lines before and
        # between them (kickers, headings, a repeated headline, datelines) belong to it but
        # do not count, so a kicker cannot push the opening paragraph out of the lead.
        lead_end = len(text)
        counted = 0
        for i, start in enumerate(body_paras):
            end = body_paras[i + 1] if i + 1 < len(body_paras) else len(text)
            if len(_WORD.findall(text, start, end)) >= lead_min_words:
                counted += 1
            if counted >= lead_paragraphs:
                lead_end = end
                break
        words = [m.start() for m in _WORD.finditer(text)]
        return cls(norm, title_end, lead_end, paragraphs, sentences, words)

    def paragraph(self, pos: int) -> int:
        return bisect_right(self.paragraph_starts, pos) - 1

    def sentence(self, pos: int) -> int:
        return bisect_right(self.sentence_starts, pos) - 1

    def word(self, pos: int) -> int:
        return bisect_right(self.word_starts, pos) - 1

    def zone(self, pos: int) -> str:
        if pos < self.title_end:
            return "title"
        return "lead" if pos < self.lead_end else "body"
