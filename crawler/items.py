"""Items: what the spiders hand to the pipelines.

A spider yields one `FetchedPage` per article request, whatever happened: a 200 page, a
4xx/5xx page (``error_reason="http_error"``) or a download failure
(``error_reason="fetch_error"``, no response). The pipelines fill in ``archive`` and
``analysis`` on the way to the store.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from extract import PageAnalysis
from store import ArchiveRef, FetchRecord
from store.records import Channel

__all__ = ["Discovery", "FetchedPage"]


@dataclass(frozen=True)
class Discovery:
    """How an article URL was found; rides in the article request's ``cb_kwargs``."""

    source_id: str
    channel: Channel
    discovered_from: str | None               # the feed / sitemap / listing page URL
    entry_id: str | None = None               # feed entry guid / atom:id
    entry_title: str | None = None            # feed entry title, or <news:title>
    entry_published: datetime | None = None   # feed entry date, or <news:publication_date>
    method: str | None = None                 # backfill: sitemap | archive | wayback | ccnews | gdelt
    url: str | None = None                    # the article's own URL when the fetched one is a
    #                                           capture of it (a Wayback replay URL, a WARC record)


@dataclass
class FetchedPage:
    """One article fetch (or failed fetch), with its provenance."""

    discovery: Discovery
    requested_url: str                  # the URL first requested (before redirects)
    final_url: str                      # response.url after redirects (= requested on failure)
    status: int | None                  # None when no response came back
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    body: bytes = field(repr=False)     # (kept out of the repr Scrapy logs for a failed item)
    fetched_at: datetime = field(repr=False)           # tz-aware UTC
    request_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    error_reason: str | None = None     # "http_error" | "fetch_error" (a SkipReason)
    error_detail: str | None = None
    archive: ArchiveRef | None = field(default=None, repr=False)       # set by ArchivePipeline
    analysis: PageAnalysis | None = field(default=None, repr=False)    # set by AnalysePipeline

    @property
    def failed(self) -> bool:
        return self.error_reason is not None

    @property
    def content_type(self) -> str | None:
        for name, value in self.headers:
            if name.lower() == "content-type":
                return value
        return None

    @property
    def body_sha256(self) -> str | None:
        return hashlib.sha256(self.body).hexdigest() if self.status is not None else None

    def fetch_record(self) -> FetchRecord:
        """The HTTP exchange to archive (only for pages that got a response)."""
        if self.status is None:
            raise ValueError(f"{self.requested_url}: no response to archive ({self.error_detail})")
        return FetchRecord(
            requested_url=self.requested_url,
            final_url=self.final_url,
            status=self.status,
            headers=self.headers,
            body=self.body,
            fetched_at=self.fetched_at,
            request_headers=self.request_headers,
        )
