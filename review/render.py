"""The digest as Markdown, plain text (the e-mail's text part) and HTML.

Every value that came from a crawled page is hostile: it is cleaned (control characters,
lone surrogates and bidi overrides removed, whitespace collapsed), then escaped for the
format: backslash escapes for Markdown (which would otherwise pass HTML and links through),
``html.escape`` for HTML. Links are made only from absolute http(s) URLs.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from review.digest import DigestItem

__all__ = ["clean_text", "link_url", "md_escape", "render_html", "render_markdown", "render_text"]

# C0/C1 controls, lone surrogates, the XML-illegal U+FFFE/U+FFFF, and bidi embeddings,
# overrides and isolates (they can reorder the rest of a line around a title).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u202a-\u202e\u2066-\u2069]")
_SPACE = re.compile(r"\s+")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>&~])")
_URL_SAFE = ":/?#[]@!$&'*+,;=%~-._"  # parentheses, spaces, quotes, <, > and ` get %-encoded


def clean_text(value: object) -> str:
    """A crawled value as one safe line of text (no controls, no bidi overrides)."""
    if value is None:
        return ""
    text = _UNSAFE.sub(" ", str(value))
    return _SPACE.sub(" ", text).strip()


def md_escape(value: object) -> str:
    """Clean text with every Markdown/HTML-significant character backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", clean_text(value))


def link_url(url: str) -> str | None:
    """``url`` percent-encoded for a link target, or None unless it is absolute http(s)."""
    cleaned = clean_text(url)
    parts = urlsplit(cleaned)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(cleaned, safe=_URL_SAFE)


def _day_heading(day: date, items: Sequence[DigestItem]) -> str:
    count = len(items)
    noun = "candidate" if count == 1 else "candidates"
    return f"{count} new {noun} queued on {day.isoformat()} (UTC)"


def _score(item: DigestItem) -> str:
    return f"{item.score:.2f}" if item.score is not None else "-"


def _day(value: datetime | None) -> str:
    return value.date().isoformat() if value is not None else "-"


# ---------------------------------------------------------------- Markdown and text


def render_markdown(day: date, items: Sequence[DigestItem], generated: datetime) -> str:
    lines = [f"# defector-watch digest {day.isoformat()}", ""]
    if not items:
        lines += [f"No new candidates were queued on {day.isoformat()} (UTC).", ""]
    else:
        lines += [_day_heading(day, items) + ", highest score first.", ""]
    for number, item in enumerate(items, 1):
        title = md_escape(item.title) or "(no title)"
        target = link_url(item.url)
        url = f"[{md_escape(item.url)}]({target})" if target else md_escape(item.url)
        lines += [
            f"## {number}. {title}",
            "",
            f"- candidate: #{item.candidate_id} (`dwatch show {item.candidate_id}`)",
            f"- source: {md_escape(item.source_id)}",
            f"- language: {md_escape(item.lang or '-')}",
            f"- score: {_score(item)}",
            f"- narratives: {md_escape(', '.join(item.narratives) or '-')}",
            f"- published: {_day(item.published)}",
            f"- URL: {url}",
        ]
        if item.status != "new":
            lines.append(f"- status: {md_escape(item.status)}")
        if item.explanation:
            lines.append(f"- why: {md_escape(item.explanation)}")
        lines.append("")
    lines.append(f"Generated {generated:%Y-%m-%d %H:%M} UTC by defector-watch.")
    return "\n".join(lines) + "\n"


def render_text(day: date, items: Sequence[DigestItem], generated: datetime) -> str:
    """The plain-text e-mail body (text/plain renders nothing, so cleaning is enough)."""
    lines = [f"defector-watch digest {day.isoformat()}", ""]
    if not items:
        lines += [f"No new candidates were queued on {day.isoformat()} (UTC).", ""]
    else:
        lines += [_day_heading(day, items) + ", highest score first.", ""]
    for number, item in enumerate(items, 1):
        lines += [
            f"{number}. {clean_text(item.title) or '(no title)'}",
            f"   candidate #{item.candidate_id}  source {clean_text(item.source_id)}  "
            f"language {clean_text(item.lang or '-')}  score {_score(item)}",
            f"   narratives: {clean_text(', '.join(item.narratives)) or '-'}",
            f"   published: {_day(item.published)}",
            f"   {clean_text(item.url)}",
        ]
        if item.status != "new":
            lines.append(f"   status: {clean_text(item.status)}")
        if item.explanation:
            lines.append(f"   why: {clean_text(item.explanation)}")
        lines.append("")
    lines.append(f"Generated {generated:%Y-%m-%d %H:%M} UTC by defector-watch.")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- HTML

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;"
    "color:#222}h2{font-size:1.1rem;margin:1.6rem 0 .3rem}dl{display:grid;"
    "grid-template-columns:max-content 1fr;gap:.15rem .8rem;margin:0}dt{color:#666}"
    "dd{margin:0;overflow-wrap:anywhere}footer{color:#888;margin-top:2rem;font-size:.85rem}"
)
_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def _h(value: object) -> str:
    return html.escape(clean_text(value), quote=True)


def _html_item(number: int, item: DigestItem) -> str:
    target = link_url(item.url)
    title = _h(item.title) or "(no title)"
    heading = (
        f'<a href="{html.escape(target, quote=True)}" rel="noopener noreferrer nofollow">{title}</a>'
        if target
        else title
    )
    url = (
        f'<a href="{html.escape(target, quote=True)}" rel="noopener noreferrer nofollow">'
        f"{_h(item.url)}</a>"
        if target
        else _h(item.url)
    )
    rows = [
        ("candidate", f"#{item.candidate_id} (<code>dwatch show {item.candidate_id}</code>)"),
        ("source", _h(item.source_id)),
        ("language", _h(item.lang or "-")),
        ("score", _score(item)),
        ("narratives", _h(", ".join(item.narratives) or "-")),
        ("published", _day(item.published)),
        ("URL", url),
    ]
    if item.status != "new":
        rows.append(("status", _h(item.status)))
    if item.explanation:
        rows.append(("why", f'<span dir="auto">{_h(item.explanation)}</span>'))
    body = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows)
    return (
        f'<article id="candidate-{item.candidate_id}"><h2 dir="auto">{number}. {heading}</h2>'
        f"<dl>{body}</dl></article>"
    )


def render_html(day: date, items: Sequence[DigestItem], generated: datetime) -> str:
    title = f"defector-watch digest {day.isoformat()}"
    if items:
        intro = html.escape(_day_heading(day, items)) + ", highest score first."
    else:
        intro = f"No new candidates were queued on {day.isoformat()} (UTC)."
    entries = "\n".join(_html_item(n, item) for n, item in enumerate(items, 1))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{title}</h1>\n<p>{intro}</p>\n"
        + (f"<main>\n{entries}\n</main>\n" if items else "")
        + f"<footer>Generated {generated:%Y-%m-%d %H:%M} UTC by defector-watch.</footer>\n"
        "</body>\n</html>\n"
    )
