"""Archived raw HTML made inert before the review UI shows it.

A crawled page is hostile input. The UI never serves the archived bytes as HTML from its own
origin: it shows ``sanitize_archived_html(body, ...)`` instead, under ``ARCHIVE_CSP``. The raw
copy stays downloadable exactly as fetched (as an attachment, never rendered).

    html = sanitize_archived_html(archived.body, content_type=archived.headers.get("Content-Type"),
                                  base_url=archived.url)

The cleaning is nh3 (the Python binding of the Rust sanitiser ammonia), with an allow-list:

* text and structure tags only; code-bearing elements (script, style, iframe, object, embed,
  svg, math, template, noscript, title) are dropped *with* their content; anything else that
  is not allowed (form, input, button, meta, link, base, ...) loses its tag and keeps its text;
* no ``on*`` handlers, no ``style``, no ``class``/``id``, no ``srcset``/``background``: only the
  few attributes listed in ``_ATTRIBUTES``;
* links keep http, https and mailto targets only, relative ones resolved against ``base_url`` so
  they point to the original site (never to our origin), and carry
  ``rel="noopener noreferrer nofollow"``;
* no remote loads: an ``<img>`` whose ``src`` is not an inline ``data:image/...`` raster is
  replaced by its alt text in brackets (``[alt]``, or nothing), so opening the page contacts
  no one.
"""

from __future__ import annotations

import codecs
import html
import logging
import re
from typing import Literal

import charset_normalizer
import nh3

__all__ = ["ARCHIVE_CSP", "decode_html", "sanitize_archived_html"]

logger = logging.getLogger(__name__)

# Sent as the Content-Security-Policy header of the sanitised view. Defence in depth: if the
# sanitiser ever let something through, the browser still refuses to act on it.
ARCHIVE_CSP = "; ".join(
    (
        "default-src 'none'",      # nothing loads: no script, font, media, frame, fetch, worker
        "img-src data:",           # the only images are inline data: URLs (no tracking pixels)
        "style-src 'none'",        # no stylesheets, no <style>, no style= (CSS can load and leak)
        "base-uri 'none'",         # a smuggled <base href> cannot re-point relative URLs
        "form-action 'none'",      # a smuggled form cannot post anywhere
        "frame-ancestors 'self'",  # only our own pages may frame it (no clickjacking elsewhere)
        "sandbox",                 # a unique opaque origin: no scripts, forms, popups, cookies
    )
)

_TAGS = {
    "a", "abbr", "article", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup",
    "dd", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "li", "ol", "p", "pre", "q", "section", "small", "span", "strong", "sub",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "ul",
}
# Dropped with everything inside them: their content is code, markup for another parser, or
# fallback shown only when the real (remote) thing fails to load.
_CLEAN_CONTENT_TAGS = {
    "script", "style", "iframe", "object", "embed", "svg", "math", "template", "noscript",
    "title", "frame", "frameset", "applet", "audio", "video", "canvas", "textarea", "select",
}
_ATTRIBUTES = {
    "*": {"lang", "dir", "title"},
    "a": {"href", "hreflang"},
    "img": {"src", "alt"},
    "ol": {"start", "reversed"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
}
_LINK_SCHEMES = {"http", "https", "mailto"}
# "data" is let through the scheme check only for images; _keep_attribute drops it on links.
_URL_SCHEMES = _LINK_SCHEMES | {"data"}
_LINK_REL = "noopener noreferrer nofollow"

_INLINE_IMAGE = re.compile(r"data:image/(?:png|gif|jpeg|jpg|webp|avif|bmp)[;,]", re.IGNORECASE)
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")
_URL_IGNORED = re.compile(r"[\t\n\r]")   # the URL parser drops these anywhere in a URL
_CT_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([\w.:\-]+)""", re.IGNORECASE)
_META_CHARSET = re.compile(
    rb"""<meta[^>]*?charset\s*=\s*["']?\s*([\w.:\-]+)""", re.IGNORECASE
)
# An <img> as html5ever serialises nh3's output: every attribute double-quoted, '"' as &quot;.
_IMG_TAG = re.compile(r'<img((?: [a-z\-]+="[^"]*")*)>')
_ATTR = re.compile(r' ([a-z\-]+)="([^"]*)"')
_PRESCAN_BYTES = 4096
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))
# WHATWG encoding labels that browsers read differently from Python's codec of the same name.
_BROWSER_ALIASES = {
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "l1": "cp1252",
    "iso8859-1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252", "iso-8859-9": "cp1254",
    "tis-620": "cp874", "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
    "shift_jis": "cp932", "x-sjis": "cp932", "euc-kr": "cp949", "ks_c_5601-1987": "cp949",
    # a page saying utf-16 in a <meta> cannot be utf-16 (the meta itself was ASCII)
    "utf-16": "utf-8", "utf-16le": "utf-8", "utf-16be": "utf-8",
}


def _codec(label: str | None, *, from_meta: bool = False) -> str | None:
    """The Python codec for a declared charset label, or None when Python has no such codec."""
    if not label:
        return None
    name = label.strip().lower()
    if name in _BROWSER_ALIASES and (from_meta or not name.startswith("utf-16")):
        name = _BROWSER_ALIASES[name]
    try:
        return codecs.lookup(name).name
    except LookupError:
        logger.debug("unknown charset label %r", label)
        return None


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """``body`` as text: BOM, then the Content-Type charset, then ``<meta charset>``, then a guess.

    Never raises: undecodable bytes become U+FFFD, as in a browser.
    """
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(name, errors="replace")
    header = _CT_CHARSET.search(content_type or "")
    codec = _codec(header.group(1) if header else None)
    if codec is None:
        meta = _META_CHARSET.search(body[:_PRESCAN_BYTES])
        codec = _codec(meta.group(1).decode("ascii", "replace") if meta else None, from_meta=True)
    if codec is not None:
        return body.decode(codec, errors="replace")
    best = charset_normalizer.from_bytes(body).best()
    if best is not None:
        return str(best)
    return body.decode("utf-8", errors="replace")


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    """nh3's attribute filter, run on the raw value after the scheme check: the last word."""
    if tag == "img" and attribute == "src":
        # Remote (or relative) images would be fetched by the reader's browser: drop them.
        return value if _INLINE_IMAGE.match(value.strip()) else None
    if attribute == "href":
        url = _URL_IGNORED.sub("", value).strip()   # as the browser would read it
        scheme = _SCHEME.match(url)
        if scheme is not None and scheme.group(1).lower() not in _LINK_SCHEMES:
            return None   # data:text/html and any other scheme that survived the scheme list
        return url
    return value


def _image_as_text(tag: re.Match[str]) -> str:
    """An <img> left without a src becomes its alt text in brackets (or nothing)."""
    attributes = dict(_ATTR.findall(tag.group(1)))
    if "src" in attributes:
        return tag.group(0)
    alt = " ".join(html.unescape(attributes.get("alt", "")).split())
    return f"[{html.escape(alt)}]" if alt else ""


_RelativePolicy = Literal["deny"] | tuple[Literal["rewrite_with_base"], str]


def _relative_policy(base_url: str | None) -> _RelativePolicy:
    """Resolve relative URLs against the page's own absolute http(s) URL, or drop them."""
    if base_url:
        scheme = _SCHEME.match(base_url.strip())
        if scheme is not None and scheme.group(1).lower() in ("http", "https"):
            return ("rewrite_with_base", base_url.strip())
    return "deny"


def _cleaner(base_url: str | None) -> nh3.Cleaner:
    def build(relative: _RelativePolicy) -> nh3.Cleaner:
        return nh3.Cleaner(
            tags=_TAGS,
            clean_content_tags=_CLEAN_CONTENT_TAGS,
            attributes=_ATTRIBUTES,
            attribute_filter=_keep_attribute,
            strip_comments=True,
            link_rel=_LINK_REL,
            url_schemes=_URL_SCHEMES,
            url_relative=relative,
        )

    try:
        return build(_relative_policy(base_url))
    except ValueError:   # ammonia could not parse the base URL
        logger.warning("base URL %r cannot resolve links; relative links dropped", base_url)
        return build("deny")


def sanitize_archived_html(
    body: bytes, *, content_type: str | None = None, base_url: str | None = None
) -> str:
    """The archived page as an inert HTML fragment (see the module docstring for the rules).

    ``content_type`` is the archived response's Content-Type header (for its charset);
    ``base_url`` the URL the page was fetched from (its relative links are resolved against it;
    without it they are dropped). Serve the result with ``ARCHIVE_CSP``.
    """
    text = decode_html(body, content_type)
    # Lone surrogates cannot be encoded for the response; NUL is not HTML.
    text = text.encode("utf-8", errors="replace").decode("utf-8").replace("\x00", "\ufffd")
    return _IMG_TAG.sub(_image_as_text, _cleaner(base_url).clean(text))
