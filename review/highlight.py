"""The candidate page's text with the verdict's matched terms marked.

A stored verdict (``Verdict.to_dict()``) lists its matches with offsets into
``extract.scored_text(title, text)`` (the title, a blank line, the body). Every piece of
crawled text is escaped; a match becomes

    <mark class="m" data-rule="RULE" title="rule RULE">matched text</mark>

Overlapping matches are merged into one mark naming every rule (``data-rule="r1 r2"``,
``title="rules r1, r2"``), so marks never nest or cross. Every line of the body becomes a
``<p>`` (trafilatura puts one paragraph on each line; hand-written text separates them with
blank lines, which are skipped); a mark that spans a line break is split into one mark per
paragraph. A match whose offsets fall outside the text, or
whose span is not the text it recorded (a verdict computed on another version of the text),
is not placed: it is listed in ``HighlightedText.unplaced`` so the page can say so.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from extract import scored_text

__all__ = ["HighlightedText", "highlight_text"]

logger = logging.getLogger(__name__)

# Paragraph breaks: a line break, with any blank lines after it (spaces-only lines are blank).
_PARAGRAPH_BREAK = re.compile(r"\n(?:[^\S\n]*\n)*")
# Characters a page must not carry: C0/C1 controls (but tab and newline), lone surrogates
# (they cannot be encoded for the response), U+FFFE/U+FFFF. Each becomes one U+FFFD, so
# offsets stay put.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class HighlightedText:
    title_html: Markup            # the escaped title with its marks (no wrapping element)
    body_html: Markup             # <p> per paragraph, marks inside
    unplaced: tuple[str, ...]     # the matches that could not be placed, as their recorded text


@dataclass(frozen=True)
class _Mark:
    start: int
    end: int
    rules: tuple[str, ...]


def _describe(match: Mapping[str, Any]) -> str:
    """How the page names a match it could not place: its recorded text, else its term."""
    for key in ("text", "term"):
        value = match.get(key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
    return repr({k: match.get(k) for k in ("term", "rule", "start", "end")})


def _place(full: str, matches: Sequence[Mapping[str, Any]]) -> tuple[list[_Mark], tuple[str, ...]]:
    """The valid matches as merged, sorted marks; the others described."""
    spans: list[tuple[int, int, str]] = []
    unplaced: list[str] = []
    for match in matches:
        start, end, text = match.get("start"), match.get("end"), match.get("text")
        if (
            isinstance(start, int) and isinstance(end, int) and isinstance(text, str)
            and not isinstance(start, bool) and not isinstance(end, bool)
            and 0 <= start < end <= len(full) and full[start:end] == text
        ):
            spans.append((start, end, str(match.get("rule") or "")))
        else:
            description = _describe(match)
            if description not in unplaced:
                unplaced.append(description)
    if unplaced:
        logger.debug("%d matches do not fit this text", len(unplaced))
    marks: list[_Mark] = []
    for start, end, rule in sorted(spans):
        last = marks[-1] if marks else None
        if last is not None and start < last.end:        # overlaps: one mark for both
            rules = last.rules if rule in last.rules or not rule else (*last.rules, rule)
            marks[-1] = _Mark(last.start, max(last.end, end), rules)
        else:
            marks.append(_Mark(start, end, (rule,) if rule else ()))
    return marks, tuple(unplaced)


def _text(segment: str) -> Markup:
    """A piece of crawled text, escaped, its single line breaks as <br>."""
    lines = _UNSAFE.sub("\ufffd", segment).replace("\r", "").split("\n")
    return Markup("<br>\n").join(escape(line) for line in lines)


def _mark_open(rules: tuple[str, ...]) -> Markup:
    names = " ".join(rules)
    label = {0: "matched term", 1: f"rule {names}"}.get(len(rules), "rules " + ", ".join(rules))
    return Markup('<mark class="m" data-rule="{}" title="{}">').format(
        _UNSAFE.sub("\ufffd", names), _UNSAFE.sub("\ufffd", label)
    )


def _render(full: str, start: int, end: int, marks: Sequence[_Mark]) -> Markup:
    """``full[start:end]`` escaped, with the parts of ``marks`` inside it marked."""
    parts: list[Markup] = []
    pos = start
    for mark in marks:
        lo, hi = max(mark.start, start), min(mark.end, end)
        if lo >= hi:
            continue
        parts.append(_text(full[pos:lo]))
        parts.append(_mark_open(mark.rules) + _text(full[lo:hi]) + Markup("</mark>"))
        pos = hi
    parts.append(_text(full[pos:end]))
    return Markup("").join(parts)


def _paragraphs(full: str, start: int) -> list[tuple[int, int]]:
    """The (start, end) of every non-blank paragraph of ``full[start:]``, trimmed."""
    spans = []
    pos = start
    for brk in [*_PARAGRAPH_BREAK.finditer(full, start), None]:
        stop = brk.start() if brk is not None else len(full)
        chunk = full[pos:stop]
        if chunk.strip():
            lead = len(chunk) - len(chunk.lstrip())
            spans.append((pos + lead, pos + len(chunk.rstrip())))
        if brk is not None:
            pos = brk.end()
    return spans


def highlight_text(
    title: str | None, text: str, matches: Sequence[Mapping[str, Any]]
) -> HighlightedText:
    """The title and body as safe HTML with ``matches`` (a verdict's ``"matches"``) marked."""
    full = scored_text(title, text)
    marks, unplaced = _place(full, matches)
    if title and len(full) == len(title) + len(text) + 2:   # the title is part of the scored text
        title_html = _render(full, 0, len(title), marks)
        body_start = len(full) - len(text)
    else:
        title_html = _text(title or "")
        body_start = 0
    body = [Markup("<p>") + _render(full, lo, hi, marks) + Markup("</p>")
            for lo, hi in _paragraphs(full, body_start)]
    return HighlightedText(title_html, Markup("\n").join(body), unplaced)
