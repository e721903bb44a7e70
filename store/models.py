"""SQLAlchemy 2.0 models: the whole schema of the store.

The schema changes only through Alembic migrations (``store/migrations/versions``); a test
checks that the migrated schema and these models agree.

Tables:
  crawl_runs / crawl_run_sources  one row per crawl run, per-source counters
  documents       one row per canonical URL ever fetched (or failed): analysis + provenance
  minhash_bands   LSH band keys of extracted documents, to find near-copies
  stories         groups of near-copy candidates (every candidate belongs to one)
  candidates      the review queue: one row per flagged, non-duplicate document
  candidate_narratives  the narrative tags of each candidate (the queue's narrative filter)
  decisions       append-only history of researchers' decisions
  feed_state      per source and feed/sitemap URL: validators, body hash, adaptive poll times
  backfill_jobs / backfill_units / backfill_articles  the state of `dwatch backfill` runs, so a
                  killed backfill resumes and fetches nothing twice (store/backfill.py)
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ColumnElement,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "BACKFILL_ARTICLE_STATUSES",
    "BACKFILL_JOB_STATUSES",
    "BACKFILL_UNIT_STATUSES",
    "CANDIDATE_STATUSES",
    "DOCUMENT_OUTCOMES",
    "BackfillArticleModel",
    "BackfillJobModel",
    "BackfillUnitModel",
    "Base",
    "Candidate",
    "CandidateNarrative",
    "CrawlRun",
    "CrawlRunSource",
    "Decision",
    "Document",
    "FeedState",
    "MinhashBand",
    "Story",
    "UtcDateTime",
    "utcnow",
]

CANDIDATE_STATUSES = ("new", "accepted", "rejected", "duplicate", "needs_translation", "unflagged")
DOCUMENT_OUTCOMES = ("extracted", "skipped", "failed")
BACKFILL_JOB_STATUSES = ("running", "done", "interrupted", "failed")
BACKFILL_UNIT_STATUSES = ("pending", "done", "failed")
BACKFILL_ARTICLE_STATUSES = ("pending", "fetched", "out_of_range", "failed", "seen")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back tz-aware (UTC).

    SQLite has no time-zone type and drops tzinfo; PostgreSQL stores ``timestamptz``.
    Naive datetimes are refused: their zone is unknown, so storing them would lie.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given to the store; pass a tz-aware "
                "datetime (e.g. datetime.now(UTC) or value.replace(tzinfo=UTC))"
            )
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class CrawlRun(Base):
    __tablename__ = "crawl_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(32))
    sources: Mapped[list[Any]]

    __table_args__ = (Index(None, "started_at"),)


class CrawlRunSource(Base):
    __tablename__ = "crawl_run_sources"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("crawl_runs.id", ondelete="CASCADE"), primary_key=True
    )
    source_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    discovered: Mapped[int] = mapped_column(Integer, default=0)
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    already_seen: Mapped[int] = mapped_column(Integer, default=0)
    extracted: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    first_error: Mapped[str | None] = mapped_column(Text)


class Story(Base):
    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # use_alter: documents.story_id points back here (a cycle); the FK is added after both exist
    first_document_id: Mapped[int | None] = mapped_column(
        ForeignKey("documents.id", use_alter=True, ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    canonical_url: Mapped[str] = mapped_column(Text, unique=True)
    requested_url: Mapped[str] = mapped_column(Text)
    final_url: Mapped[str] = mapped_column(Text)
    http_status: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    # analysis
    title: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(Text)
    published: Mapped[datetime | None]
    sitename: Mapped[str | None] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    text_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    minhash: Mapped[list[Any] | None]
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    score: Mapped[float | None] = mapped_column(Float)
    verdict: Mapped[dict[str, Any] | None]
    narratives: Mapped[list[Any] | None]
    rules_version: Mapped[str | None] = mapped_column(String(100))
    extractor: Mapped[str | None] = mapped_column(String(100))
    extractor_version: Mapped[str | None] = mapped_column(String(100))
    duplicate_of_document_id: Mapped[int | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL"), index=True
    )
    story_id: Mapped[int | None] = mapped_column(
        ForeignKey("stories.id", ondelete="SET NULL"), index=True
    )
    # provenance
    source_id: Mapped[str] = mapped_column(String(100), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    # how it was found within its channel: NULL for daily crawls (the channel says it), else the
    # backfill method (sitemap | archive | wayback | ccnews | gdelt)
    method: Mapped[str | None] = mapped_column(String(16))
    discovered_from: Mapped[str | None] = mapped_column(Text)
    entry_id: Mapped[str | None] = mapped_column(Text)
    entry_title: Mapped[str | None] = mapped_column(Text)
    entry_published: Mapped[datetime | None]
    fetched_at: Mapped[datetime]
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    archive_path: Mapped[str | None] = mapped_column(Text)
    archive_offset: Mapped[int | None] = mapped_column(BigInteger)
    archive_length: Mapped[int | None] = mapped_column(BigInteger)
    archive_record_id: Mapped[str | None] = mapped_column(String(100))
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("crawl_runs.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "outcome IN ('extracted', 'skipped', 'failed')", name="outcome"
        ),
    )


class MinhashBand(Base):
    __tablename__ = "minhash_bands"

    band_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Candidate(Base):
    __tablename__ = "candidates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), unique=True
    )
    # claims the text: a second verbatim copy cannot become a candidate, even under races
    text_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(24), default="new")
    score: Mapped[float | None] = mapped_column(Float)
    lang: Mapped[str | None] = mapped_column(String(16), index=True)
    title: Mapped[str | None] = mapped_column(Text)
    source_id: Mapped[str] = mapped_column(String(100), index=True)
    # how the page was discovered (documents.channel, copied so the queue filters without a join)
    channel: Mapped[str | None] = mapped_column(String(16), index=True)
    published: Mapped[datetime | None] = mapped_column(index=True)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    story_id: Mapped[int | None] = mapped_column(
        ForeignKey("stories.id", ondelete="SET NULL"), index=True
    )

    __table_args__ = (
        CheckConstraint(
            "status IN ('new', 'accepted', 'rejected', 'duplicate', 'needs_translation', "
            "'unflagged')",
            name="status",
        ),
        Index(None, "status", "queued_at"),
        Index(None, "score"),
    )


# The queue's date: publication, else the time it was queued (store/query.py when_column). Its
# order and ranges are served by an index on it, alone and after each equality filter of the
# queue (migration 0005; figures in bench/README.md). SQLite cannot reflect expression indexes,
# so a migration that rebuilds candidates in batch mode on SQLite must create them again.
def _pub_or_queued() -> ColumnElement[datetime]:
    return func.coalesce(Candidate.published, Candidate.queued_at)


Index("ix_candidates_pub_or_queued", _pub_or_queued())
Index("ix_candidates_status_pub_or_queued", Candidate.status, _pub_or_queued())
Index("ix_candidates_lang_pub_or_queued", Candidate.lang, _pub_or_queued())
Index("ix_candidates_channel_pub_or_queued", Candidate.channel, _pub_or_queued())
Index("ix_candidates_source_id_pub_or_queued", Candidate.source_id, _pub_or_queued())


class CandidateNarrative(Base):
    """One narrative tag of a candidate (from its verdict), for filtering and the overview."""

    __tablename__ = "candidate_narratives"

    candidate_id: Mapped[int] = mapped_column(
        ForeignKey("candidates.id", ondelete="CASCADE"), primary_key=True
    )
    narrative: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class Decision(Base):
    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    candidate_id: Mapped[int] = mapped_column(
        ForeignKey("candidates.id", ondelete="CASCADE"), index=True
    )
    decision: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class FeedState(Base):
    """What the last poll of one feed or sitemap URL of a source found (store/feed_state.py).

    ``etag`` / ``last_modified`` are the validators the server sent (raw header values, sent
    back as If-None-Match / If-Modified-Since); ``body_sha256`` is the hash of the last body
    parsed, for servers that answer 200 with an unchanged body. ``kind`` is what the document
    turned out to be: feed, urlset, text (sitemap) or sitemapindex (an index is re-read on every run).
    """

    __tablename__ = "feed_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(String(100))
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    checked_at: Mapped[datetime]
    changed_at: Mapped[datetime | None]
    next_poll_at: Mapped[datetime]
    interval_minutes: Mapped[float] = mapped_column(Float)
    polls: Mapped[int] = mapped_column(Integer, default=0)
    changes: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        UniqueConstraint("source_id", "url"),
        Index(None, "next_poll_at"),
    )


def _in(values: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class BackfillJobModel(Base):
    """One `dwatch backfill` invocation; ``key`` (sha256 of its normalised arguments) finds it again.

    A job not ``done`` is resumed by the next backfill with the same arguments.
    """

    __tablename__ = "backfill_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    since: Mapped[date]
    until: Mapped[date]
    sources: Mapped[list[Any]]
    methods: Mapped[list[Any]]
    warcs: Mapped[list[Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="running")

    __table_args__ = (CheckConstraint(_in(BACKFILL_JOB_STATUSES), name="status"),)


class BackfillUnitModel(Base):
    """One discovery unit of a job (a sitemap, a listing page, a CDX page, a GDELT slice, a WARC file).

    A ``done`` unit is not requested again when the job resumes.
    """

    __tablename__ = "backfill_units"

    job_id: Mapped[int] = mapped_column(
        ForeignKey("backfill_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    unit: Mapped[str] = mapped_column(Text, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    found: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (CheckConstraint(_in(BACKFILL_UNIT_STATUSES), name="status"),)


class BackfillArticleModel(Base):
    """One article a job discovered: what to fetch (``url``) and what became of it (``status``)."""

    __tablename__ = "backfill_articles"

    job_id: Mapped[int] = mapped_column(
        ForeignKey("backfill_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    canonical_url: Mapped[str] = mapped_column(Text, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    source_id: Mapped[str] = mapped_column(String(100))
    method: Mapped[str] = mapped_column(String(16))
    discovered_from: Mapped[str | None] = mapped_column(Text)
    entry_id: Mapped[str | None] = mapped_column(Text)
    entry_title: Mapped[str | None] = mapped_column(Text)
    entry_published: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint(_in(BACKFILL_ARTICLE_STATUSES), name="status"),
        Index(None, "job_id", "status"),
    )
