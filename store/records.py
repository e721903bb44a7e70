"""Frozen records the crawler hands to the store (and the store hands back)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
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
    method: str | None = None            # backfill: sitemap | archive | wayback | ccnews | gdelt

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


# ---------------------------------------------------------------- what the store hands back


@dataclass(frozen=True)
class ArchivedResponse:
    """A response read back from the WARC archive, as the crawler stored it.

    ``body`` is the decoded body Scrapy gave the crawler (Content-Encoding already undone);
    ``headers`` are the response headers as fetched, in order.
    """

    url: str                               # WARC-Target-URI: the final URL
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    requested_url: str | None = None       # WARC-Requested-URI when it differed, else the URL
    fetched_at: datetime | None = None     # WARC-Date, tz-aware UTC
    record_id: str | None = None
    ref: ArchiveRef | None = None          # where the record lives (set by iter_records)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True)
class CandidateRow:
    """One line of the review queue."""

    id: int
    document_id: int
    status: str                  # new | accepted | rejected | duplicate | unflagged
    score: float | None
    lang: str | None
    title: str | None
    url: str                     # final URL of the fetched page
    canonical_url: str
    source_id: str
    published: datetime | None
    queued_at: datetime
    story_id: int | None
    story_size: int = 1          # candidates in the same story (near-copies), this one included
    duplicate_count: int = 0     # verbatim copies found at other URLs
    narratives: tuple[str, ...] = ()
    channel: str | None = None   # how the page was discovered: feed | sitemap | listing | backfill | manual


QUEUE_SORTS = ("date", "score")
QUEUE_DATE_FIELDS = ("published", "queued")


@dataclass(frozen=True)
class QueueQuery:
    """Every filter the CLI, the web UI and its API offer on the queue; all optional.

    ``since``/``until`` are UTC days, inclusive. With ``dates="published"`` they apply to the
    publication date (the time it was queued when the page has none); with ``"queued"`` to the
    time the candidate was queued. ``ids`` restricts to a selection (exports).
    """

    status: str | None = None
    since: date | None = None
    until: date | None = None
    dates: str = "published"
    lang: str | None = None
    source_id: str | None = None
    channel: str | None = None
    narrative: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    sort: str = "date"
    descending: bool = True
    limit: int | None = 200
    offset: int = 0
    ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class QueueFacets:
    """The values the queue's filter controls offer (what is stored, sorted)."""

    languages: tuple[str, ...]
    sources: tuple[str, ...]
    channels: tuple[str, ...]
    narratives: tuple[str, ...]


@dataclass(frozen=True)
class WeekCount:
    week: date          # Monday of the ISO week (UTC) of publication, else of queueing
    key: str            # "all", a language code, or a narrative tag
    candidates: int     # candidates that week (every status but 'unflagged')
    accepted: int       # of which accepted


@dataclass(frozen=True)
class Overview:
    weeks: tuple[date, ...]                 # every week from the first to the last, gaps included
    totals: tuple[WeekCount, ...]           # key "all", one per week
    by_language: tuple[WeekCount, ...]      # only weeks with candidates
    by_narrative: tuple[WeekCount, ...]


@dataclass(frozen=True)
class DecisionRow:
    id: int
    candidate_id: int
    decision: str                # accept | reject | duplicate
    status: str                  # the candidate status it set
    note: str | None
    decided_by: str | None
    decided_at: datetime


@dataclass(frozen=True)
class DocumentSummary:
    """Another stored page related to a candidate (a verbatim copy or a story member)."""

    document_id: int
    url: str
    title: str | None
    source_id: str
    published: datetime | None
    fetched_at: datetime
    candidate_id: int | None = None
    status: str | None = None    # the candidate's status, when it is one


@dataclass(frozen=True)
class CandidateDetail:
    """Everything a researcher sees about one candidate."""

    id: int
    document_id: int
    status: str
    score: float | None
    lang: str | None
    title: str | None
    url: str
    canonical_url: str
    source_id: str
    author: str | None
    sitename: str | None
    published: datetime | None
    queued_at: datetime
    fetched_at: datetime
    text: str | None
    verdict: dict[str, Any] | None           # Verdict.to_dict(), matches included
    provenance: dict[str, Any]               # Provenance.to_dict()
    decisions: tuple[DecisionRow, ...]       # oldest first
    duplicates: tuple[DocumentSummary, ...]  # verbatim copies linked to this page
    story_id: int | None
    story: tuple[DocumentSummary, ...]       # story members (this one included), earliest first


@dataclass(frozen=True)
class RunRow:
    id: int
    kind: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    sources: tuple[str, ...]
    per_source: dict[str, SourceRunStats] = field(default_factory=dict)


@dataclass(frozen=True)
class RescoreItem:
    """A stored document whose raw response can be re-analysed from the archive."""

    document_id: int
    provenance: Provenance       # provenance.archive is set
    archive: ArchiveRef
    candidate_id: int | None
    candidate_status: str | None
    flagged: bool = False        # the stored verdict's flag (verbatim copies too, which have no candidate)
    score: float | None = None
