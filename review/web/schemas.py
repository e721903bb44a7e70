"""The JSON API's request and response models (pydantic), as /openapi.json documents them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ArchiveOut",
    "CandidateDetailOut",
    "CandidateList",
    "CandidateOut",
    "ContributionOut",
    "DecisionIn",
    "DecisionOut",
    "DocumentOut",
    "ErrorOut",
    "FacetsOut",
    "MatchOut",
    "OverviewOut",
    "ProvenanceOut",
    "VerdictOut",
    "WeekCountOut",
]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorOut(BaseModel):
    detail: str = Field(description="What went wrong and how to fix it")


class CandidateOut(_Out):
    """One line of the queue."""

    id: int
    document_id: int
    status: str = Field(description="new | accepted | rejected | duplicate | needs_translation | unflagged")
    score: float | None
    lang: str | None
    title: str | None
    url: str = Field(description="final URL of the fetched page")
    canonical_url: str
    source_id: str
    channel: str | None = Field(description="how the page was discovered: feed | sitemap | listing | ...")
    published: datetime | None
    queued_at: datetime
    story_id: int | None
    story_size: int = Field(description="candidates in the same story (near-copies), this one included")
    duplicate_count: int = Field(description="verbatim copies found at other URLs")
    narratives: list[str]


class CandidateList(BaseModel):
    items: list[CandidateOut]
    total: int = Field(description="candidates matching the filter (all pages)")
    counts: dict[str, int] = Field(description="candidates per status among those matching the "
                                   "other filters (the status filter ignored)")
    limit: int
    offset: int


class DecisionIn(BaseModel):
    decision: str = Field(description="accept | reject | duplicate | translate (needs translation)")
    note: str | None = Field(default=None, max_length=10_000)
    by: str | None = Field(default=None, max_length=200,
                           description="who decided (default: the logged-in user)")


class DecisionOut(_Out):
    id: int
    candidate_id: int
    decision: str
    status: str = Field(description="the candidate status it set")
    note: str | None
    decided_by: str | None
    decided_at: datetime


class MatchOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    term: str
    rule: str
    start: int = Field(description="offset into title + '\\n\\n' + text")
    end: int
    text: str


class ContributionOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    rule: str
    weight: float
    reason: str


class VerdictOut(BaseModel):
    """Why the page was flagged, as the rules said when it was analysed."""

    model_config = ConfigDict(extra="allow")
    flagged: bool
    score: float
    lang: str
    rules_version: str
    matches: list[MatchOut] = []
    contributions: list[ContributionOut] = []
    negatives: list[ContributionOut] = Field(
        default=[], description="negative contexts that lowered or cancelled a rule")
    narratives: list[str] = []
    explanation: str = ""


class ArchiveOut(BaseModel):
    path: str = Field(description="WARC file, relative to the archive directory")
    offset: int
    length: int
    record_id: str


class ProvenanceOut(BaseModel):
    """Source -> discovery (feed / sitemap / listing) -> HTTP fetch -> archived raw copy."""

    source_id: str
    channel: str
    discovered_from: str | None
    entry_id: str | None
    entry_title: str | None
    entry_published: datetime | None
    requested_url: str
    final_url: str
    canonical_url: str
    http_status: int | None
    fetched_at: datetime
    body_sha256: str | None
    archive: ArchiveOut | None
    extractor: str | None
    extractor_version: str | None
    rules_version: str | None
    run_id: int | None = None
    method: str | None = None    # backfill: sitemap | archive | wayback | ccnews | gdelt


class DocumentOut(_Out):
    """Another stored page of the same story, or a verbatim copy."""

    document_id: int
    url: str
    title: str | None
    source_id: str
    published: datetime | None
    fetched_at: datetime
    candidate_id: int | None
    status: str | None


class CandidateDetailOut(_Out):
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
    verdict: VerdictOut | None
    provenance: ProvenanceOut
    decisions: list[DecisionOut] = Field(description="oldest first")
    duplicates: list[DocumentOut] = Field(description="verbatim copies of this page elsewhere")
    story_id: int | None
    story: list[DocumentOut] = Field(description="the story's pages (near-copies), earliest first")
    raw_url: str = Field(description="the archived response, byte for byte")
    archived_url: str = Field(description="the archived page, sanitised")


class WeekCountOut(_Out):
    week: date = Field(description="Monday of the ISO week (UTC)")
    key: str
    candidates: int
    accepted: int


class OverviewOut(_Out):
    weeks: list[date]
    totals: list[WeekCountOut]
    by_language: list[WeekCountOut]
    by_narrative: list[WeekCountOut]


class FacetsOut(BaseModel):
    statuses: list[str]
    decisions: dict[str, str] = Field(description="decision -> the status it sets")
    languages: list[str]
    sources: list[str]
    channels: list[str]
    narratives: list[str]
    export_formats: list[str]


def detail_out(detail: Any) -> CandidateDetailOut:
    """A store CandidateDetail as the API's model (with its download links)."""
    data = {name: getattr(detail, name) for name in CandidateDetailOut.model_fields
            if name not in ("raw_url", "archived_url")}
    data["raw_url"] = f"/candidates/{detail.id}/raw"
    data["archived_url"] = f"/candidates/{detail.id}/archived"
    return CandidateDetailOut.model_validate(data, from_attributes=True)
