"""Request fingerprints on canonical URLs, so one article is fetched once per run.

The same article reached through two feeds, with ``utm_*`` parameters or a ``#fragment``,
has one canonical URL (`extract.canonicalize_url`) and so one fingerprint: Scrapy's
duplicate filter drops the second request.

The number of redirect hops is part of the fingerprint: ``/a?utm_source=rss`` redirecting
to ``/a`` is one canonical URL, and without the hop count the duplicate filter would drop
the redirected request and the article would never be fetched.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from scrapy import Request

from extract import InvalidURLError, canonicalize_url

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

__all__ = ["CanonicalUrlFingerprinter", "canonical_or_none"]


def canonical_or_none(url: str) -> str | None:
    try:
        return canonicalize_url(url)
    except InvalidURLError:
        return None


class CanonicalUrlFingerprinter:
    """REQUEST_FINGERPRINTER_CLASS: method, canonical URL, body and redirect hop count."""

    def __init__(self) -> None:
        self._cache: WeakKeyDictionary[Request, bytes] = WeakKeyDictionary()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls()

    def fingerprint(self, request: Request) -> bytes:
        cached = self._cache.get(request)
        if cached is not None:
            return cached
        url = canonical_or_none(request.url) or request.url
        hops = len(request.meta.get("redirect_urls", ()))
        digest = hashlib.sha1(usedforsecurity=False)
        for part in (request.method.encode("ascii"), url.encode("utf-8"), str(hops).encode("ascii")):
            digest.update(part)
            digest.update(b"\0")
        digest.update(request.body or b"")
        value = digest.digest()
        self._cache[request] = value
        return value
