"""The state of `dwatch backfill` runs: jobs, discovery units and discovered articles.

A backfill is a job keyed by its normalised arguments (`job_key`): restarted with the same
arguments, `start_job` returns the job that did not finish, so the crawler skips the units it
finished (`unit_done`) and requests the articles still pending (`pending_articles`) without
re-running their discovery. Every function takes a Session; those that write commit.

    with session_factory() as session:
        job = start_job(session, BackfillArgs(since, until, ("bbc",), ("sitemap",), (), plan=False))
        if not unit_done(session, job.id, "sitemap:https://bbc.example/sitemap.xml"):
            ...
            add_articles(session, job.id, [BackfillArticle(...), ...])
            finish_unit(session, job.id, "sitemap:https://bbc.example/sitemap.xml", found=12)
        mark_article(session, job.id, canonical_url, "fetched")
        finish_job(session, job.id, "done")
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from store.errors import StoreError
from store.models import (
    BACKFILL_ARTICLE_STATUSES,
    BACKFILL_JOB_STATUSES,
    BACKFILL_UNIT_STATUSES,
    BackfillArticleModel,
    BackfillJobModel,
    BackfillUnitModel,
    utcnow,
)

__all__ = [
    "ARTICLE_STATUSES",
    "JOB_STATUSES",
    "UNIT_STATUSES",
    "BackfillArgs",
    "BackfillArticle",
    "BackfillJob",
    "BackfillUnit",
    "add_articles",
    "article_counts",
    "finish_job",
    "finish_unit",
    "get_unit",
    "job_counts",
    "job_key",
    "mark_article",
    "pending_articles",
    "start_job",
    "unit_done",
]

logger = logging.getLogger(__name__)

JOB_STATUSES = BACKFILL_JOB_STATUSES
UNIT_STATUSES = BACKFILL_UNIT_STATUSES
ARTICLE_STATUSES = BACKFILL_ARTICLE_STATUSES


@dataclass(frozen=True)
class BackfillArgs:
    """What a backfill was asked for (`dwatch backfill` arguments, sources and methods resolved)."""

    since: date
    until: date
    sources: tuple[str, ...]
    methods: tuple[str, ...]
    warcs: tuple[str, ...] = ()
    plan: bool = False


@dataclass(frozen=True)
class BackfillJob:
    id: int
    key: str
    since: date
    until: date
    sources: tuple[str, ...]
    methods: tuple[str, ...]
    warcs: tuple[str, ...]
    status: str                      # running | done | interrupted | failed
    created_at: datetime
    finished_at: datetime | None = None
    resumed: bool = False            # start_job returned an earlier, unfinished job


@dataclass(frozen=True)
class BackfillUnit:
    """What a job recorded about one discovery unit (``detail``: where it led, an offset, an error)."""

    unit: str
    status: str                      # pending | done | failed
    found: int
    detail: str | None
    updated_at: datetime


@dataclass(frozen=True)
class BackfillArticle:
    """One discovered article: ``url`` is what is fetched (e.g. a Wayback capture of it)."""

    canonical_url: str
    url: str
    source_id: str
    method: str
    discovered_from: str | None = None
    entry_id: str | None = None
    entry_title: str | None = None
    entry_published: datetime | None = None
    status: str = "pending"          # pending | fetched | out_of_range | failed | seen


def job_key(args: BackfillArgs) -> str:
    """sha256 of the normalised arguments: dates, sorted sources, methods and WARC files."""
    normal = {
        "since": args.since.isoformat(),
        "until": args.until.isoformat(),
        "sources": sorted(set(args.sources)),
        "methods": sorted(set(args.methods)),
        "warcs": sorted(set(args.warcs)),
    }
    return hashlib.sha256(json.dumps(normal, sort_keys=True).encode("utf-8")).hexdigest()


@contextmanager
def _writing(session: Session, action: str) -> Iterator[None]:
    try:
        yield
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        raise StoreError(f"could not {action}: {getattr(exc, 'orig', None) or exc}") from exc
    except BaseException:
        session.rollback()
        raise


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"invalid {what} status {value!r}; use one of: {', '.join(allowed)}")


def _job(row: BackfillJobModel, *, resumed: bool = False) -> BackfillJob:
    return BackfillJob(
        id=row.id,
        key=row.key,
        since=row.since,
        until=row.until,
        sources=tuple(str(s) for s in row.sources),
        methods=tuple(str(m) for m in row.methods),
        warcs=tuple(str(w) for w in row.warcs),
        status=row.status,
        created_at=row.created_at,
        finished_at=row.finished_at,
        resumed=resumed,
    )


def start_job(session: Session, args: BackfillArgs) -> BackfillJob:
    """The unfinished job with the same arguments (resumed, status back to running), or a new one."""
    key = job_key(args)
    with _writing(session, f"start the backfill {args.since}..{args.until}"):
        row = session.scalars(
            select(BackfillJobModel)
            .where(BackfillJobModel.key == key, BackfillJobModel.status != "done")
            .order_by(BackfillJobModel.id.desc())
            .limit(1)
        ).first()
        resumed = row is not None
        if row is None:
            row = BackfillJobModel(
                key=key,
                since=args.since,
                until=args.until,
                sources=sorted(set(args.sources)),
                methods=sorted(set(args.methods)),
                warcs=sorted(set(args.warcs)),
                created_at=utcnow(),
                status="running",
            )
            session.add(row)
        else:
            row.status = "running"
            row.finished_at = None
        session.flush()
        job = _job(row, resumed=resumed)
    return job


def finish_job(session: Session, job_id: int, status: str) -> None:
    """Set a job's status; any but ``running`` stamps its finished_at."""
    _check(status, JOB_STATUSES, "job")
    with _writing(session, f"finish backfill job {job_id}"):
        session.execute(
            update(BackfillJobModel)
            .where(BackfillJobModel.id == job_id)
            .values(status=status, finished_at=None if status == "running" else utcnow())
        )


def unit_done(session: Session, job_id: int, unit: str) -> bool:
    """True when the job finished this discovery unit (it is not requested again)."""
    status = session.scalars(
        select(BackfillUnitModel.status).where(
            BackfillUnitModel.job_id == job_id, BackfillUnitModel.unit == unit
        )
    ).first()
    return status == "done"


def get_unit(session: Session, job_id: int, unit: str) -> BackfillUnit | None:
    """The recorded state of one unit of the job, or None when it was never recorded."""
    row = session.get(BackfillUnitModel, (job_id, unit))
    if row is None:
        return None
    return BackfillUnit(unit=row.unit, status=row.status, found=row.found, detail=row.detail,
                        updated_at=row.updated_at)


def finish_unit(
    session: Session,
    job_id: int,
    unit: str,
    *,
    found: int,
    status: str = "done",
    detail: str | None = None,
) -> None:
    """Record a unit's outcome (``pending`` keeps it to be redone, with ``detail`` such as an offset)."""
    _check(status, UNIT_STATUSES, "unit")
    with _writing(session, f"record backfill unit {unit!r} of job {job_id}"):
        row = session.get(BackfillUnitModel, (job_id, unit))
        if row is None:
            session.add(BackfillUnitModel(
                job_id=job_id, unit=unit, status=status, found=found, detail=detail, updated_at=utcnow()
            ))
        else:
            row.status, row.found, row.detail, row.updated_at = status, found, detail, utcnow()


def _insert_ignore(session: Session, values: dict[str, Any]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING of one article row; 1 when inserted, else 0."""
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        make_insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        stmt = (
            make_insert(BackfillArticleModel).values(**values).on_conflict_do_nothing()
            .returning(BackfillArticleModel.canonical_url)
        )
        return 0 if session.execute(stmt).scalar_one_or_none() is None else 1
    # pragma: no cover - the store runs on SQLite or PostgreSQL
    if session.get(BackfillArticleModel, (values["job_id"], values["canonical_url"])) is not None:
        return 0
    session.execute(insert(BackfillArticleModel).values(**values))
    return 1


def add_articles(session: Session, job_id: int, rows: Sequence[BackfillArticle]) -> int:
    """Record discovered articles; one already recorded in this job is left as it is.

    Returns how many rows were new.
    """
    for row in rows:
        _check(row.status, ARTICLE_STATUSES, "article")
    added = 0
    with _writing(session, f"record {len(rows)} discovered article(s) of backfill job {job_id}"):
        now = utcnow()
        for row in rows:
            added += _insert_ignore(session, {
                "job_id": job_id,
                "canonical_url": row.canonical_url,
                "url": row.url,
                "source_id": row.source_id,
                "method": row.method,
                "discovered_from": row.discovered_from,
                "entry_id": row.entry_id,
                "entry_title": row.entry_title,
                "entry_published": row.entry_published,
                "status": row.status,
                "updated_at": now,
            })
    return added


def _article(row: BackfillArticleModel) -> BackfillArticle:
    return BackfillArticle(
        canonical_url=row.canonical_url,
        url=row.url,
        source_id=row.source_id,
        method=row.method,
        discovered_from=row.discovered_from,
        entry_id=row.entry_id,
        entry_title=row.entry_title,
        entry_published=row.entry_published,
        status=row.status,
    )


def pending_articles(session: Session, job_id: int) -> list[BackfillArticle]:
    """The job's articles not fetched yet (discovered before the job was stopped), oldest first."""
    rows = session.scalars(
        select(BackfillArticleModel)
        .where(BackfillArticleModel.job_id == job_id, BackfillArticleModel.status == "pending")
        .order_by(BackfillArticleModel.updated_at, BackfillArticleModel.canonical_url)
    )
    return [_article(row) for row in rows]


def mark_article(session: Session, job_id: int, canonical_url: str, status: str) -> None:
    """Set what became of one discovered article (fetched, out_of_range, failed, seen)."""
    _check(status, ARTICLE_STATUSES, "article")
    with _writing(session, f"mark article {canonical_url} of backfill job {job_id}"):
        session.execute(
            update(BackfillArticleModel)
            .where(BackfillArticleModel.job_id == job_id, BackfillArticleModel.canonical_url == canonical_url)
            .values(status=status, updated_at=utcnow())
        )


def job_counts(session: Session, job_id: int) -> dict[str, int]:
    """Units and articles of a job by status: ``units``, ``units_done``, ..., ``articles``,
    ``articles_pending``, ``articles_fetched``, ... (every status present, zero included)."""
    counts = {"units": 0, **{f"units_{s}": 0 for s in UNIT_STATUSES}}
    counts.update({"articles": 0, **{f"articles_{s}": 0 for s in ARTICLE_STATUSES}})
    for status, number in session.execute(
        select(BackfillUnitModel.status, func.count())
        .where(BackfillUnitModel.job_id == job_id)
        .group_by(BackfillUnitModel.status)
    ):
        counts[f"units_{status}"] = int(number)
        counts["units"] += int(number)
    for status, number in session.execute(
        select(BackfillArticleModel.status, func.count())
        .where(BackfillArticleModel.job_id == job_id)
        .group_by(BackfillArticleModel.status)
    ):
        counts[f"articles_{status}"] = int(number)
        counts["articles"] += int(number)
    return counts


def article_counts(session: Session, job_id: int) -> dict[tuple[str, str], dict[str, int]]:
    """The job's articles by (source id, method) and status (only the statuses present)."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    for source_id, method, status, number in session.execute(
        select(BackfillArticleModel.source_id, BackfillArticleModel.method, BackfillArticleModel.status,
               func.count())
        .where(BackfillArticleModel.job_id == job_id)
        .group_by(BackfillArticleModel.source_id, BackfillArticleModel.method, BackfillArticleModel.status)
    ):
        out.setdefault((source_id, method), {})[status] = int(number)
    return out
