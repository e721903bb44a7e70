"""Testimony signals: quotations, and first-person words spoken inside them.

A defector's own account shows in the text as quoted speech in the first person ("I joined
in 2014", «Je voulais partir», „Ich habe ...“, — Я решил уйти). General reporting about IS
quotes officials and experts too, but rarely in the first person about leaving.

Quotation marks come from rules.yaml (``testimony.quote_marks``: pairs of opening and
closing characters, folded like the text). A straight or typographic apostrophe only opens
a quote after a space or bracket and only closes one before a non-letter, so "don't" is not
a quote. A paragraph that opens with a dash (Russian, Swedish, Spanish dialogue) is speech.
In a question-and-answer interview (two or more short paragraphs that end in a question
mark), the paragraph answering a question is the interviewee's speech.
"""

from __future__ import annotations

from extract.matching import Hit, Layout
from extract.normalize import fold

__all__ = ["quote_spans", "quote_hits", "first_person_in_quotes"]

_DASHES = ("-", "–", "—", "―")
_QUESTION_MARKS = ("?", "؟", "？")
_QUESTION_MAX_WORDS = 40     # interview questions are short; a long paragraph is narrative
_MIN_QUESTIONS = 2           # one question paragraph can be rhetorical; an interview has several
_AMBIGUOUS = {"'"}


def _opens(text: str, i: int) -> bool:
    before = text[i - 1] if i > 0 else " "
    after = text[i + 1] if i + 1 < len(text) else " "
    return (before.isspace() or before in "([{—–-:") and not after.isspace()


def _closes(text: str, i: int) -> bool:
    before = text[i - 1] if i > 0 else " "
    after = text[i + 1] if i + 1 < len(text) else " "
    return not before.isspace() and not after.isalnum()


def _answers(text: str, paragraphs: list[tuple[int, int]]) -> set[int]:
    """Indexes of paragraphs that answer an interview question (see the module doc)."""
    def is_question(start: int, end: int) -> bool:
        body = text[start:end].strip()
        return body.endswith(_QUESTION_MARKS) and len(body.split()) <= _QUESTION_MAX_WORDS
    questions = [is_question(a, b) for a, b in paragraphs]
    if sum(questions) < _MIN_QUESTIONS:
        return set()
    return {i for i in range(1, len(paragraphs)) if questions[i - 1] and not questions[i]
            and text[paragraphs[i][0]:paragraphs[i][1]].strip()}


def quote_spans(
    layout: Layout, marks: tuple[tuple[str, str], ...], dash_speech: bool = True,
    interview_answers: bool = False,
) -> list[tuple[int, int]]:
    """[start, end) spans of quoted speech in the folded text, within paragraphs."""
    text = layout.norm.text
    closers: dict[str, set[str]] = {}
    for opening, closing in marks:
        closers.setdefault(fold(opening) or opening, set()).add(fold(closing) or closing)
    spans: list[tuple[int, int]] = []
    bounds = [*layout.paragraph_starts, len(text)]
    paragraphs = list(zip(bounds, bounds[1:], strict=False))
    answers = _answers(text, paragraphs) if interview_answers else set()
    for index, (p_start, p_end) in enumerate(paragraphs):
        para_start = p_start
        while para_start < p_end and text[para_start].isspace():
            para_start += 1
        if index in answers:
            spans.append((para_start, p_end))
            continue
        if dash_speech and para_start < p_end and text[para_start] in _DASHES:
            spans.append((para_start, p_end))
            continue
        i = para_start
        while i < p_end:
            ch = text[i]
            if ch in closers and (ch not in _AMBIGUOUS or _opens(text, i)):
                end = _find_close(text, i + 1, p_end, closers[ch])
                if end is not None:
                    spans.append((i, end + 1))
                    i = end + 1
                    continue
                if ch not in _AMBIGUOUS and ch not in {c for cs in closers.values() for c in cs}:
                    spans.append((i, p_end))  # an unclosed quote runs to the paragraph end
                    break
            i += 1
    return spans


def _find_close(text: str, start: int, stop: int, closing: set[str]) -> int | None:
    for j in range(start, stop):
        ch = text[j]
        if ch in closing and (ch not in _AMBIGUOUS or _closes(text, j)):
            return j
    return None


def quote_hits(spans: list[tuple[int, int]]) -> list[Hit]:
    """One hit per quotation (the signal ``quote``)."""
    return [Hit("quote", start, end) for start, end in spans]


def first_person_in_quotes(spans: list[tuple[int, int]], pronouns: list[Hit]) -> list[Hit]:
    """One hit per quotation containing a first-person word, at that word
    (the signal ``quoted_first_person``)."""
    hits: list[Hit] = []
    j = 0
    ordered = sorted(pronouns, key=lambda h: h.start)
    for start, end in spans:
        while j < len(ordered) and ordered[j].start < start:
            j += 1
        if j < len(ordered) and ordered[j].end <= end:
            hit = ordered[j]
            hits.append(Hit(f"quoted first person: {hit.term}", hit.start, hit.end))
    return hits
