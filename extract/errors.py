"""Exceptions raised by extract/.

Extraction itself never raises on bad input: a page that holds no article comes back as a
typed `Skip`, a feed or sitemap that cannot be read as a `FeedResult` / `SitemapResult` with
its `problem` / `detail` set. Exceptions are kept for misuse that the caller must fix.
"""

from __future__ import annotations


class ExtractError(Exception):
    """Base class of the errors raised by extract/."""


class InvalidURLError(ExtractError, ValueError):
    """A URL cannot be canonicalised: no http(s) scheme, no host, or a malformed port.

    The message quotes the URL and says what is wrong with it. Feed and sitemap parsing
    already drop such links (and count them), so the crawler only meets this for URLs it
    built itself.
    """


class SignatureError(ExtractError, ValueError):
    """Two MinHash signatures cannot be compared (different lengths)."""
