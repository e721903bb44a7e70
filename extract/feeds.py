"""Feed parsing: RSS 0.9x/1.0/2.0 and Atom with feedparser, JSON Feed 1.x with json.

`parse_feed(body, url, headers)` never raises on bad input. It returns a `FeedResult` whose
entries have absolute http(s) links (relative links are resolved against the feed URL),
tz-aware UTC dates and plain-text summaries, or, when nothing usable came out, a typed
`problem`:

* "not_a_feed": the document is something else (an HTML page, a product XML file, an
  empty body, JSON that is not a JSON Feed);
* "malformed": a broken feed (truncated XML, invalid JSON) with no usable entries;
* "empty": a valid feed with no entries, or whose entries all lack a usable link.

A malformed feed that still yields entries returns them with `bozo=True` and `detail` set.
feedparser 6.0 reads RSS/Atom/RDF only, so JSON Feed documents are read here with `json`.
"""

from __future__ import annotations

import json
import logging
import re
import time
import xml.sax
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import feedparser
import lxml.html
from lxml.etree import ParserError

from extract.types import FeedEntry, FeedProblem, FeedResult
from extract.urls import absolute_http_url

logger = logging.getLogger(__name__)

__all__ = ["parse_feed", "plain_text"]

_JSON_TYPES = ("application/feed+json", "application/json", "text/json")
_FEED_ROOTS = frozenset({"rss", "feed", "rdf", "channel"})
_ROOT_RE = re.compile(rb"<([A-Za-z][\w.-]*:)?([A-Za-z][\w.-]*)[\s>/]")
_SPACE_RE = re.compile(r"\s+")
_WEEKDAY_RE = re.compile(r"^\s*[^\W\d]+\.?,\s*")
_SOFT_BOZO = (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)
# What feedparser (and the sgmllib/sax machinery under it) may raise on hostile input.
_PARSER_ERRORS = (
    ValueError, TypeError, LookupError, AttributeError, UnicodeError, RecursionError,
    AssertionError, xml.sax.SAXException,
)


def plain_text(markup: str | None) -> str | None:
    """Text content of an HTML fragment, whitespace collapsed; None when nothing is left."""
    if not markup:
        return None
    text = markup
    if "<" in markup or "&" in markup:
        try:
            text = lxml.html.fragment_fromstring(markup, create_parent="div").text_content()
        except (ParserError, ValueError):
            text = re.sub(r"<[^>]*>", " ", markup)
    collapsed = _SPACE_RE.sub(" ", text).strip()
    return collapsed or None


def _from_struct(value: object) -> datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _from_text(value: object) -> datetime | None:
    """An RFC 3339 (JSON Feed) or RFC 822 date as UTC; naive dates are taken as UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (ValueError, TypeError, IndexError):
            return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _result(
    entries: list[FeedEntry],
    feed_title: str | None,
    bozo: bool,
    problem: FeedProblem | None,
    notes: Iterable[str],
) -> FeedResult:
    detail = "; ".join(n for n in notes if n) or None
    return FeedResult(tuple(entries), feed_title, bozo, None if entries else problem, detail)


def _dropped_note(dropped: int) -> str:
    if not dropped:
        return ""
    return f"{dropped} entr{'y' if dropped == 1 else 'ies'} without a usable http(s) link dropped"


# ------------------------------------------------------------------ JSON Feed


def _looks_like_json(body: bytes, content_type: str) -> bool:
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return start == b"{" or (content_type.startswith(_JSON_TYPES) and start != b"<")


def _parse_json_feed(body: bytes, url: str) -> FeedResult:
    try:
        data: Any = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _result([], None, True, "malformed", [f"invalid JSON ({exc}); a JSON Feed must be UTF-8 JSON"])
    if not isinstance(data, dict) or not (
        "jsonfeed.org/version" in str(data.get("version", "")) or isinstance(data.get("items"), list)
    ):
        note = "JSON document without a jsonfeed.org version or items"
        return _result([], None, False, "not_a_feed", [note])
    title = plain_text(data.get("title")) if isinstance(data.get("title"), str) else None
    items = data.get("items")
    if not isinstance(items, list):
        return _result([], title, True, "malformed", ["JSON Feed without an 'items' list"])
    base = str(data.get("feed_url") or url) if isinstance(data.get("feed_url"), str) else url
    entries: list[FeedEntry] = []
    dropped = 0
    for item in items:
        if not isinstance(item, dict):
            dropped += 1
            continue
        link = absolute_http_url(item.get("url"), base) or absolute_http_url(item.get("external_url"), base)
        if link is None:
            dropped += 1
            continue
        summary = item.get("summary") or item.get("content_text") or item.get("content_html")
        entries.append(
            FeedEntry(
                link=link,
                entry_id=str(item["id"]) if item.get("id") not in (None, "") else None,
                title=plain_text(item.get("title")) if isinstance(item.get("title"), str) else None,
                published=_from_text(item.get("date_published")) or _from_text(item.get("date_modified")),
                summary=plain_text(summary) if isinstance(summary, str) else None,
            )
        )
    problem: FeedProblem = "empty"
    return _result(entries, title, False, problem, [_dropped_note(dropped)])


# ------------------------------------------------------------------ RSS / Atom / RDF


def _root_name(body: bytes) -> str | None:
    """Local name of the first element, skipping the XML declaration, comments and doctype."""
    head = re.sub(rb"<!--.*?-->|<\?.*?\?>|<!DOCTYPE[^>]*>", b"", body[:65536], flags=re.DOTALL)
    head = head.replace(b"\x00", b"")  # a crude look through UTF-16/32
    match = _ROOT_RE.search(head)
    return match.group(2).decode("ascii", "replace").lower() if match else None


def _raw(entry: Mapping[str, Any], key: str) -> Any:
    """A field exactly as feedparser stored it, without FeedParserDict's deprecated aliases
    (asking it for `updated` silently answers `published`, with a DeprecationWarning)."""
    return dict.get(entry, key) if isinstance(entry, dict) else entry.get(key)


def _entry_link(entry: Mapping[str, Any], base: str) -> str | None:
    link = absolute_http_url(_raw(entry, "link"), base)
    if link:
        return link
    for candidate in _raw(entry, "links") or ():
        if isinstance(candidate, Mapping) and candidate.get("rel", "alternate") == "alternate":
            link = absolute_http_url(candidate.get("href"), base)
            if link:
                return link
    # Atom ids and RSS guids are often the permalink itself
    entry_id = str(_raw(entry, "id") or "")
    return absolute_http_url(entry_id, base) if entry_id.startswith("http") else None


def _entry_date(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = _from_struct(_raw(entry, key))
        if parsed:
            return parsed
    # feedparser gives up on a localised weekday ("mer, 16 nov 2022 ..."); the rest is RFC 822
    for key in ("published", "updated"):
        raw = _raw(entry, key)
        if isinstance(raw, str) and raw.strip():
            parsed = _from_text(_WEEKDAY_RE.sub("", raw))
            if parsed:
                return parsed
    return None


def _to_entry(entry: Mapping[str, Any], base: str) -> FeedEntry | None:
    link = _entry_link(entry, base)
    if link is None:
        return None
    entry_id = _raw(entry, "id")
    return FeedEntry(
        link=link,
        entry_id=(str(entry_id).strip() or None) if entry_id else None,
        title=plain_text(_raw(entry, "title")),
        published=_entry_date(entry),
        summary=plain_text(_raw(entry, "summary")),
    )


def _response_headers(headers: Mapping[str, str] | None, url: str) -> dict[str, str]:
    lowered = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    # without a content type feedparser flags every document as bozo; RFC 3023 says
    # application/xml means "trust the XML declaration", which is what a bare body needs
    lowered.setdefault("content-type", "application/xml")
    return lowered


def parse_feed(body: bytes, url: str, headers: Mapping[str, str] | None = None) -> FeedResult:
    """Parse a feed body fetched from `url`; `headers` are the HTTP response headers."""
    response_headers = _response_headers(headers, url)
    content_type = response_headers["content-type"].split(";")[0].strip().lower()
    if not body.strip():
        return _result([], None, False, "not_a_feed", ["empty body"])
    if _looks_like_json(body, content_type):
        return _parse_json_feed(body, url)
    try:
        parsed = feedparser.parse(body, response_headers=response_headers)
    except _PARSER_ERRORS as exc:  # feedparser itself is supposed to catch these
        logger.warning("feedparser raised on %s: %r", url, exc)
        return _result([], None, True, "malformed", [f"feedparser raised {type(exc).__name__}: {exc}"])
    bozo = bool(parsed.get("bozo"))
    bozo_exc = parsed.get("bozo_exception")
    bozo_note = f"{type(bozo_exc).__name__}: {bozo_exc}" if bozo else ""
    # a wrong content type or charset label is worth reporting, but the XML itself is sound
    broken = bozo and not isinstance(bozo_exc, _SOFT_BOZO)
    feed_title = plain_text(parsed.feed.get("title")) if parsed.get("feed") else None
    base = str(parsed.get("href") or url)
    entries: list[FeedEntry] = []
    for raw in parsed.entries:
        entry = _to_entry(raw, base)
        if entry is not None:
            entries.append(entry)
    dropped = len(parsed.entries) - len(entries)
    notes = [bozo_note, _dropped_note(dropped)]
    if entries:
        return _result(entries, feed_title, bozo, None, notes)
    root = _root_name(body)
    if not parsed.get("version"):
        if broken and root in _FEED_ROOTS:
            return _result([], feed_title, bozo, "malformed", notes)
        what = f"root element <{root}>" if root else "no XML element"
        hint = "; an HTML page: look for its <link rel=alternate> feed" if root == "html" else ""
        return _result([], feed_title, bozo, "not_a_feed", [f"not RSS, Atom or RDF ({what}){hint}", *notes])
    if broken:
        return _result([], feed_title, bozo, "malformed", notes)
    return _result([], feed_title, bozo, "empty", [*notes, "" if dropped else "the feed has no entries"])
