"""Crawl-run records: one row per run, per-source counters. Re-exported by ``store.queue``."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.errors import StoreError
from store.models import CrawlRun, CrawlRunSource, utcnow
from store.records import RunRow, SourceRunStats

__all__ = ["finish_run", "latest_runs", "run_stats", "start_run"]


def start_run(session: Session, *, kind: str = "crawl", sources: Sequence[str]) -> int:
    """Open a crawl run (status ``running``) and return its id."""
    run = CrawlRun(kind=kind, started_at=utcnow(), status="running", sources=list(sources))
    session.add(run)
    session.flush()
    run_id = run.id
    session.commit()
    return run_id


def finish_run(
    session: Session, run_id: int, *, per_source: dict[str, SourceRunStats], status: str
) -> None:
    """Close run ``run_id`` with its final ``status`` (e.g. ok, partial, failed) and counters."""
    run = session.get(CrawlRun, run_id)
    if run is None:
        raise StoreError(f"no crawl run with id {run_id}; start one with store.queue.start_run")
    if not status or len(status) > 32:
        raise StoreError(f"run {run_id}: status {status!r} must be 1-32 characters (e.g. 'ok')")
    for source_id, stats in per_source.items():
        session.merge(
            CrawlRunSource(
                run_id=run_id,
                source_id=source_id,
                discovered=stats.discovered,
                fetched=stats.fetched,
                already_seen=stats.already_seen,
                extracted=stats.extracted,
                flagged=stats.flagged,
                errors=stats.errors,
                first_error=stats.first_error,
            )
        )
    run.finished_at = utcnow()
    run.status = status
    session.commit()


def run_stats(session: Session, run_id: int) -> dict[str, SourceRunStats]:
    """Per-source counters of run ``run_id`` (empty until the run is finished)."""
    rows = session.scalars(
        select(CrawlRunSource)
        .where(CrawlRunSource.run_id == run_id)
        .order_by(CrawlRunSource.source_id)
    )
    return {row.source_id: _stats(row) for row in rows}


def latest_runs(session: Session, limit: int = 20) -> list[RunRow]:
    """The ``limit`` most recently started runs, newest first, with per-source counters."""
    runs = session.scalars(
        select(CrawlRun).order_by(CrawlRun.started_at.desc(), CrawlRun.id.desc()).limit(limit)
    ).all()
    per_run: dict[int, dict[str, SourceRunStats]] = {run.id: {} for run in runs}
    if runs:
        for row in session.scalars(
            select(CrawlRunSource)
            .where(CrawlRunSource.run_id.in_(per_run))
            .order_by(CrawlRunSource.source_id)
        ):
            per_run[row.run_id][row.source_id] = _stats(row)
    return [
        RunRow(
            id=run.id,
            kind=run.kind,
            started_at=run.started_at,
            finished_at=run.finished_at,
            status=run.status,
            sources=tuple(run.sources),
            per_source=per_run[run.id],
        )
        for run in runs
    ]


def _stats(row: CrawlRunSource) -> SourceRunStats:
    return SourceRunStats(
        discovered=row.discovered,
        fetched=row.fetched,
        already_seen=row.already_seen,
        extracted=row.extracted,
        flagged=row.flagged,
        errors=row.errors,
        first_error=row.first_error,
    )
