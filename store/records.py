"""Frozen records the crawler hands to the store (and the store hands back)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Channel = Literal["feed", "sitemap", "listing", "backfill", "manual"]


@dataclass(frozen=True)
class ArchiveRef:
    """Where a raw response lives: a WARC file (relative to the archive dir) and byte range."""

    path: str
    offset: int
    length: int
    record_id: str


@dataclass(frozen=True)
class FetchRecord:
    """One HTTP exchange as fetched by Scrapy, ready to archive."""

    requested_url: str
    final_url: str
    status: int
    headers: tuple[tuple[str, str], ...]   # response headers, in order
    body: bytes
    fetched_at: datetime                   # tz-aware UTC
    request_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Provenance:
    source_id: str
    channel: Channel
    discovered_from: str | None          # feed / sitemap / listing page URL that led here
    entry_id: str | None                 # feed entry id (guid / atom:id)
    entry_title: str | None
    entry_published: datetime | None
    requested_url: str
    final_url: str
    canonical_url: str
    http_status: int | None
    fetched_at: datetime
    body_sha256: str | None
    archive: ArchiveRef | None
    extractor: str | None
    extractor_version: str | None
    rules_version: str | None
    run_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if isinstance(value, datetime):
                out[key] = value.isoformat()
            elif isinstance(value, ArchiveRef):
                out[key] = dict(value.__dict__)
            else:
                out[key] = value
        return out


@dataclass(frozen=True)
class PageRecord:
    """Everything known about one fetched (or failed) page, written in one transaction."""

    provenance: Provenance
    outcome: Literal["extracted", "skipped", "failed"]
    reason: str | None                   # SkipReason for skipped/failed
    detail: str | None = None
    title: str | None = None
    author: str | None = None
    published: datetime | None = None
    sitename: str | None = None
    text: str | None = None
    lang: str | None = None
    text_sha256: str | None = None
    minhash: tuple[int, ...] = field(default=())
    minhash_bands: tuple[str, ...] = field(default=())
    flagged: bool = False
    score: float | None = None
    verdict: dict[str, Any] | None = None   # Verdict.to_dict()
    narratives: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class RecordOutcome:
    document_id: int
    created: bool                        # False when the canonical URL was already stored
    candidate_id: int | None             # set when the page is (now) a queued candidate
    duplicate_of: int | None = None      # candidate id of the earlier verbatim copy
    story_id: int | None = None          # story group (near-copies), earliest first


@dataclass
class SourceRunStats:
    discovered: int = 0
    fetched: int = 0
    already_seen: int = 0
    extracted: int = 0
    flagged: int = 0
    errors: int = 0
    first_error: str | None = None
