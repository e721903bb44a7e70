"""Article extraction with trafilatura: bytes of a fetched page in, `Article` or typed `Skip` out.

Order of work in `extract_article(body, url, content_type)`:

1. sniff (`sniff_body`): an empty body is Skip("empty"); a content type that is not HTML,
   XHTML or plain text (an octet-stream whose body is markup passes), or a body that is
   binary (NUL bytes, PDF/ZIP/GZIP/image magic) is Skip("not_html");
2. decode (`decode_body`): byte-order mark, valid UTF-8, then the charset of the
   Content-Type, then the page's own <meta charset> / http-equiv, then detection (w3lib +
   charset_normalizer);
3. extract (`extract_markup`): trafilatura's `bare_extraction` with metadata and without
   comments. No main text is Skip("no_article"), text under `MIN_TEXT_LENGTH` characters is
   Skip("too_short"), trafilatura raising is Skip("extraction_error", <what it raised>).

A text/plain body that is not markup goes to `article_from_text`, which also serves .txt
files given by hand (`dwatch classify`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import trafilatura
from charset_normalizer import from_bytes
from lxml import etree
from w3lib.encoding import html_to_unicode

from extract.types import Article, Skip

logger = logging.getLogger(__name__)

__all__ = [
    "EXTRACTOR",
    "MIN_TEXT_LENGTH",
    "Extraction",
    "article_from_text",
    "decode_body",
    "extract_article",
    "extract_markup",
    "extraction",
    "extraction_of_decoded",
    "is_plain_text",
    "sniff_body",
    "split_headline",
    "text_extraction",
]

EXTRACTOR = "trafilatura"
MIN_TEXT_LENGTH = 250  # characters of main text; below this a page is a teaser, a stub or an error page

_HTML_TYPES = ("text/html", "application/xhtml+xml", "application/vnd.wap.xhtml+xml")
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an office document)"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"RIFF", "a RIFF (WebP/WAV/AVI) file"),
    (b"ID3", "an MP3 file"),
    (b"OggS", "an Ogg file"),
    (b"\x1a\x45\xdf\xa3", "a Matroska/WebM file"),
    (b"wOFF", "a web font"),
    (b"wOF2", "a web font"),
)
# generic types some servers send for everything: accepted when the body is markup
_UNLABELLED_TYPES = ("application/octet-stream", "binary/octet-stream")
_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff")
_MARKUP_RE = re.compile(rb"<\s*(?:!doctype|html|head|body|p|div|article|title)\b", re.IGNORECASE)
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?")
_DATE_PARAMS = {"extensive_search": False, "original_date": True}
_LINES_RE = re.compile(r"[ \t\r\f\v]+")
_BLANKS_RE = re.compile(r"\n{3,}")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def sniff_body(body: bytes, content_type: str | None) -> Skip | None:
    """Skip("empty") or Skip("not_html") when the body cannot be a web page, else None."""
    if not body or not body.strip():
        return Skip("empty", "the response body is empty")
    media = _media_type(content_type)
    unlabelled = media in _UNLABELLED_TYPES and _looks_like_markup(body)
    if media and media not in _HTML_TYPES and media != "text/plain" and not unlabelled:
        return Skip("not_html", f"content type {media!r} is not HTML, XHTML or plain text")
    if body.startswith(_UTF16_32_BOMS):
        return None  # UTF-16/32 text has NULs by design; the BOM says so
    for magic, what in _MAGIC:
        if body.startswith(magic):
            return Skip("not_html", f"the body is {what}, not an HTML page")
    if b"\x00" in body[:4096]:
        return Skip("not_html", "the body holds NUL bytes: binary data, not an HTML page")
    return None


def _detect_encoding(data: bytes) -> str | None:
    best = from_bytes(data[:65536]).best()
    return best.encoding if best is not None else None


def decode_body(body: bytes, content_type: str | None) -> str:
    """Decode a page: BOM, valid UTF-8, the Content-Type charset, <meta charset>, detection.

    A body that decodes as UTF-8 and holds non-ASCII bytes is UTF-8 whatever it declares:
    text in another encoding is practically never valid UTF-8, while pages and servers that
    still announce ISO-8859-1 or GB2312 for UTF-8 content are common. (A pure-ASCII body
    follows its declaration, which matters for 7-bit encodings such as ISO-2022-JP.)
    """
    if not body.startswith((b"\xef\xbb\xbf", *_UTF16_32_BOMS)) and not body.isascii():
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            pass
    _encoding, text = html_to_unicode(
        content_type, body, default_encoding="utf-8", auto_detect_fun=_detect_encoding
    )
    return text


def _looks_like_markup(body: bytes) -> bool:
    return _MARKUP_RE.search(body[:4096]) is not None


def _parse_date(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    match = _DATE_RE.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second = (int(p) if p else 0 for p in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    return text or None


def _tidy_text(text: str) -> str:
    lines = (_LINES_RE.sub(" ", line).strip() for line in text.splitlines())
    return _BLANKS_RE.sub("\n\n", "\n".join(lines)).strip()


def _without_heading(text: str, title: str | None) -> str:
    """Drop a first line that repeats the title: the title is scored once, on its own."""
    first, _, rest = text.partition("\n")
    if title and " ".join(first.split()).casefold() == title.casefold():
        return rest.strip()
    return text


@dataclass(frozen=True)
class Extraction:
    """What one extraction learned: the article (also when too short) and the skip, if any."""

    article: Article | None
    skip: Skip | None

    @property
    def result(self) -> Article | Skip:
        if self.skip is not None:
            return self.skip
        assert self.article is not None
        return self.article


def _length_check(article: Article, min_length: int) -> Extraction:
    if len(article.text) < min_length:
        detail = f"{len(article.text)} characters of main text, fewer than {min_length}"
        return Extraction(article, Skip("too_short", detail))
    return Extraction(article, None)


def extract_markup(markup: str, url: str, *, min_length: int = MIN_TEXT_LENGTH) -> Extraction:
    """Run trafilatura on decoded HTML; the article is kept even when it is too short."""
    try:
        document: Any = trafilatura.bare_extraction(
            markup,
            url=url or None,
            with_metadata=True,
            include_comments=False,
            include_tables=True,
            include_images=False,
            include_links=False,
            # no guessing from bare years in the text: a date comes from markup or metadata
            date_extraction_params=_DATE_PARAMS,
        )
    # trafilatura handles its own parse errors; what escapes is a bug on a hostile page,
    # recorded as a typed skip so the page is counted and kept rather than crashing the crawl
    except (
        ValueError, TypeError, LookupError, AttributeError, AssertionError, RecursionError, etree.LxmlError
    ) as exc:
        logger.warning("trafilatura raised on %s: %r", url, exc)
        return Extraction(None, Skip("extraction_error", f"{type(exc).__name__}: {exc}"))
    if document is None:
        return Extraction(None, Skip("no_article", "trafilatura found no main text"))
    title = _clean(getattr(document, "title", None))
    text = _without_heading(_tidy_text(str(getattr(document, "text", "") or "")), title)
    if not text:
        return Extraction(None, Skip("no_article", "trafilatura found no main text"))
    article = Article(
        url=url,
        title=title,
        author=_clean(getattr(document, "author", None)),
        published=_parse_date(getattr(document, "date", None)),
        sitename=_clean(getattr(document, "sitename", None)),
        text=text,
        extractor=EXTRACTOR,
        extractor_version=trafilatura.__version__,
    )
    return _length_check(article, min_length)


_HEADLINE_MAX_CHARS = 200
_HEADLINE_MAX_WORDS = 30


def split_headline(body: str) -> tuple[str | None, str]:
    """A plain text's headline and the rest, when its first paragraph reads as one.

    A saved article usually starts with its headline: one line, at most 200 characters and 30
    words, not ending in a full stop, followed by more text. Anything else has no headline.
    """
    first, sep, rest = body.partition("\n\n")
    if (not sep or not rest.strip() or "\n" in first or len(first) > _HEADLINE_MAX_CHARS
            or len(first.split()) > _HEADLINE_MAX_WORDS or first.rstrip().endswith((".", ":", ";", ","))):
        return None, body
    return first.strip(), rest.strip()


def text_extraction(text: str, url: str, title: str | None = None, *, min_length: int = 0,
                    find_headline: bool = False) -> Extraction:
    """Plain text as an article (the Extraction form of `article_from_text`).

    `find_headline`: with no title given, a first line that reads as a headline is the title.
    """
    body = _tidy_text(text.removeprefix("\ufeff"))
    if not body:
        return Extraction(None, Skip("empty", "the text is empty"))
    if title is None and find_headline:
        title, body = split_headline(body)
    article = Article(
        url=url,
        title=_clean(title),
        author=None,
        published=None,
        sitename=None,
        text=body,
        extractor="plain-text",
        extractor_version="1",
    )
    return _length_check(article, min_length)


def article_from_text(
    text: str, url: str, title: str | None = None, *, min_length: int = 0, find_headline: bool = False
) -> Article | Skip:
    """An Article from plain text (a .txt file, a text/plain response).

    No minimum length by default: text given by hand is scored whatever its length. The
    crawler's text/plain path passes `min_length=MIN_TEXT_LENGTH`.
    """
    return text_extraction(text, url, title, min_length=min_length, find_headline=find_headline).result


def is_plain_text(body: bytes, content_type: str | None) -> bool:
    """A text/plain response that is not HTML served with the wrong type."""
    return _media_type(content_type) == "text/plain" and not _looks_like_markup(body)


def extraction_of_decoded(decoded: str, url: str, *, plain: bool = False) -> Extraction:
    """Extract from an already decoded page (`plain`: treat it as text, not HTML)."""
    if plain:
        return text_extraction(decoded, url, min_length=MIN_TEXT_LENGTH, find_headline=True)
    return extract_markup(decoded, url)


def extraction(body: bytes, url: str, content_type: str | None = None) -> Extraction:
    """`extract_article` that also returns a too-short article (for analyse_page)."""
    skip = sniff_body(body, content_type)
    if skip is not None:
        return Extraction(None, skip)
    decoded = decode_body(body, content_type)
    return extraction_of_decoded(decoded, url, plain=is_plain_text(body, content_type))


def extract_article(body: bytes, url: str, content_type: str | None = None) -> Article | Skip:
    """Extract the main article of a fetched page; never raises on bad input."""
    return extraction(body, url, content_type).result
