"""Sitemap parsing: XML urlsets and sitemap indexes, Google News sitemaps, text sitemaps.

`parse_sitemap(body, url)` never raises on bad input. Gzip bodies are decompressed with a
hard cap (`MAX_DECOMPRESSED_BYTES`). XML is read with lxml in recover mode with entity
resolution and network access switched off, and element names are matched by local name,
so sitemaps that use a wrong or missing namespace still parse. An RSS/Atom feed submitted as
a sitemap (sitemaps.org allows it) is read with feedparser and its links come back as a
urlset. Anything else is `kind="invalid"` with a `detail` that says why.

`sitemaps_from_robots(robots_txt, base_url)` lists the sitemaps a robots.txt announces.
"""

from __future__ import annotations

import logging
import re
import zlib
from datetime import UTC, datetime

from lxml import etree

from extract.types import SitemapEntry, SitemapResult
from extract.urls import absolute_http_url

logger = logging.getLogger(__name__)

__all__ = ["MAX_DECOMPRESSED_BYTES", "parse_sitemap", "parse_w3c_datetime", "sitemaps_from_robots"]

MAX_DECOMPRESSED_BYTES = 50 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_BOMS = (b"\xef\xbb\xbf",)
_FEED_ROOTS = frozenset({"rss", "feed", "rdf"})
_W3C_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?$")
_ROBOTS_SITEMAP = re.compile(r"^\s*site-?map\s*:\s*(\S+)", re.IGNORECASE)
_BARE_URL = re.compile(r"^\s*(https?://\S+)\s*$", re.IGNORECASE)


class _TooLarge(Exception):
    pass


def _gunzip(body: bytes, limit: int) -> tuple[bytes, bool]:
    """Decompress every gzip member of `body`, refusing to produce more than `limit` bytes.

    Returns the data and whether the stream ended properly (False: truncated or corrupt tail).
    """
    out = bytearray()
    data = body
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        out += inflater.decompress(data, limit - len(out) + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise _TooLarge
        out += inflater.flush()
        if not inflater.eof:
            return bytes(out), False
        data = inflater.unused_data
        if not data.startswith(_GZIP_MAGIC):
            return bytes(out), True


def parse_w3c_datetime(value: str | None) -> datetime | None:
    """A W3C datetime (YYYY, YYYY-MM, YYYY-MM-DD, with time and zone) as tz-aware UTC.

    Dates without a time are midnight UTC; times without a zone are taken as UTC.
    Returns None for anything unreadable.
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    partial = _W3C_PARTIAL.match(text)
    try:
        if partial:
            return datetime(int(partial.group(1)), int(partial.group(2) or 1), 1, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _local(tag: object) -> str:
    """Local name of an element tag: "{ns}url", "ns:url" (an unbound prefix kept by recover
    mode) and "url" all give "url"; comments and other nodes give ""."""
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2].rpartition(":")[2].lower()


def _child_text(element: etree._Element, name: str) -> str | None:
    """Text of the first child called `name`; None when absent or when it holds an entity
    reference (entities are never expanded, so such a value is incomplete)."""
    for child in element:
        if _local(child.tag) == name:
            if any(isinstance(node, etree._Entity) for node in child.iter()):
                return None
            return "".join(child.itertext()).strip() or None
    return None


def _news(element: etree._Element) -> tuple[datetime | None, str | None]:
    for child in element:
        if _local(child.tag) == "news":
            return parse_w3c_datetime(_child_text(child, "publication_date")), _child_text(child, "title")
    return None, None


def _parse_text(text: str, url: str) -> SitemapResult:
    entries: list[SitemapEntry] = []
    skipped = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        loc = absolute_http_url(line, url) if line.lower().startswith(("http://", "https://")) else None
        if loc is None:
            skipped += 1
        else:
            entries.append(SitemapEntry(loc=loc))
    if not entries:
        return SitemapResult("invalid", (), "neither XML nor a text sitemap (one http(s) URL per line)")
    detail = f"{skipped} lines that are not URLs ignored" if skipped else None
    return SitemapResult("text", tuple(entries), detail)


def _from_feed(body: bytes, url: str) -> SitemapResult:
    from extract.feeds import parse_feed

    feed = parse_feed(body, url)
    if not feed.entries:
        why = f"an RSS/Atom feed without usable entries ({feed.problem}: {feed.detail})"
        return SitemapResult("invalid", (), why)
    entries = tuple(SitemapEntry(loc=e.link, lastmod=e.published) for e in feed.entries)
    return SitemapResult("urlset", entries, "an RSS/Atom feed used as a sitemap (allowed by sitemaps.org)")


def _parse_xml(body: bytes, url: str) -> SitemapResult:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, recover=True,
        remove_comments=True, remove_pis=True, load_dtd=False,
    )
    try:
        root = etree.fromstring(body, parser=parser)
    except (etree.XMLSyntaxError, ValueError) as exc:
        return SitemapResult("invalid", (), f"unreadable XML: {exc}")
    if root is None:
        return SitemapResult("invalid", (), "unreadable XML: no root element")
    kind = _local(root.tag)
    if kind in _FEED_ROOTS:
        return _from_feed(body, url)
    if kind not in ("urlset", "sitemapindex"):
        hint = " (an HTML page, e.g. a soft 404)" if kind == "html" else ""
        return SitemapResult("invalid", (), f"root element <{kind}> is not <urlset> or <sitemapindex>{hint}")
    wanted = "url" if kind == "urlset" else "sitemap"
    entries: list[SitemapEntry] = []
    dropped = 0
    for element in root:
        if _local(element.tag) != wanted:
            continue
        # some generators put the bare URL in <sitemap>/<url> without <loc>
        has_loc = any(_local(child.tag) == "loc" for child in element)
        raw_loc = _child_text(element, "loc") if has_loc else (element.text or "").strip() or None
        loc = absolute_http_url(raw_loc, url)
        if loc is None:
            dropped += 1
            continue
        published, title = _news(element) if kind == "urlset" else (None, None)
        lastmod = parse_w3c_datetime(_child_text(element, "lastmod"))
        entries.append(
            SitemapEntry(loc=loc, lastmod=lastmod, news_publication_date=published, news_title=title)
        )
    detail = f"{dropped} <{wanted}> entries without an http(s) <loc> dropped" if dropped else None
    recovered = [str(e) for e in parser.error_log][:3]
    if recovered:
        detail = "; ".join(filter(None, [detail, "XML errors recovered: " + " | ".join(recovered)]))
    return SitemapResult("sitemapindex" if kind == "sitemapindex" else "urlset", tuple(entries), detail)


def parse_sitemap(body: bytes, url: str) -> SitemapResult:
    """Parse a sitemap fetched from `url` (XML, text or gzip of either)."""
    truncated = False
    if body.startswith(_GZIP_MAGIC):
        try:
            body, complete = _gunzip(body, MAX_DECOMPRESSED_BYTES)
        except _TooLarge:
            limit_mb = MAX_DECOMPRESSED_BYTES // (1024 * 1024)
            return SitemapResult(
                "invalid", (), f"gzip body expands beyond {limit_mb} MB; sitemaps are limited "
                "to 50 MB uncompressed, so the site should split it into a sitemap index",
            )
        except zlib.error as exc:
            return SitemapResult("invalid", (), f"corrupt gzip body: {exc}")
        if not complete and not body:
            return SitemapResult("invalid", (), "corrupt or truncated gzip body: nothing decompressed")
        truncated = not complete
        if truncated and b"\n" in body:
            body = body[: body.rindex(b"\n") + 1]   # the last line may be cut mid-URL
    result = _parse_body(body, url)
    if truncated and result.kind != "invalid":
        note = "truncated gzip body: entries up to the cut"
        detail = "; ".join(filter(None, [note, result.detail]))
        return SitemapResult(result.kind, result.entries, detail)
    return result


def _parse_body(body: bytes, url: str) -> SitemapResult:
    for bom in _BOMS:
        body = body.removeprefix(bom)
    stripped = body.lstrip()
    if not stripped:
        return SitemapResult("invalid", (), "empty body")
    if stripped.startswith(b"<"):
        return _parse_xml(stripped, url)
    if b"\x00" in stripped[:1024]:
        return SitemapResult("invalid", (), "binary body: neither XML nor a text sitemap")
    return _parse_text(stripped.decode("utf-8", errors="replace"), url)


def sitemaps_from_robots(robots_txt: str, base_url: str) -> list[str]:
    """Sitemap URLs announced in a robots.txt, in order, deduplicated, resolved against `base_url`.

    Besides `Sitemap:` lines (any case, anywhere in the file) a line that is nothing but an
    absolute http(s) URL is taken as a sitemap too, as crawler-commons does: a forgotten
    `Sitemap:` prefix is a common mistake, and robots.txt has no other use for such a line.
    """
    found: list[str] = []
    for line in robots_txt.splitlines():
        line = line.split("#", 1)[0]
        match = _ROBOTS_SITEMAP.match(line) or _BARE_URL.match(line)
        if not match:
            continue
        url = absolute_http_url(match.group(1), base_url)
        if url and url not in found:
            found.append(url)
    return found
