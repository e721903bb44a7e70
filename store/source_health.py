"""Source health from the stored crawl-run history: failures in a row, backoff, silence, yield.

Nothing new is stored for it: a source's state is computed from ``crawl_run_sources`` (one row
per source per finished run), ``documents`` and ``candidates``. A source *run* failed when it
had errors and fetched nothing (the rule `run_crawl` uses for a whole run).

- ``backoff_after`` failed runs in a row (default 3): the source is backed off, i.e. skipped
  until ``last failure + backoff_base * 2 ** (failures - backoff_after)`` (capped);
- ``disable_after`` failed runs in a row (default 8): disabled until an operator re-enables it
  (``dwatch sources --enable ID``), which is recorded as a marker run of kind
  ``source-enable`` listing the source: failures before the marker no longer count;
- a source that yielded articles before and has had none for ``silent_after`` although its
  runs succeed is flagged *silent* (a redesigned site, a frozen feed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, not_, select
from sqlalchemy.orm import Session

from store.models import Candidate, CrawlRun, CrawlRunSource, Document, utcnow

__all__ = [
    "ENABLE_KIND",
    "SourceHealth",
    "SourcePolicy",
    "enable_source",
    "source_health",
]

logger = logging.getLogger(__name__)

ENABLE_KIND = "source-enable"
BACKFILL_KIND = "backfill"   # crawl_runs.kind of `dwatch backfill` (crawler/backfill/runner.py)
HISTORY_LIMIT = 100          # newest source runs read per source (enough to count failures)


@dataclass(frozen=True)
class SourcePolicy:
    """When a failing source is backed off or disabled, and when a quiet one counts as silent."""

    backoff_after: int = 3
    disable_after: int = 8
    backoff_base: timedelta = timedelta(hours=6)
    backoff_max: timedelta = timedelta(days=7)
    silent_after: timedelta = timedelta(days=14)
    yield_window: timedelta = timedelta(days=28)

    def __post_init__(self) -> None:
        if not 1 <= self.backoff_after < self.disable_after:
            raise ValueError(
                f"source policy: need 1 <= backoff_after ({self.backoff_after}) < disable_after "
                f"({self.disable_after})"
            )

    def backoff(self, failures: int) -> timedelta:
        """How long a source with ``failures`` failed runs in a row is skipped (zero below the limit)."""
        if failures < self.backoff_after:
            return timedelta(0)
        doublings = min(failures - self.backoff_after, 30)
        grown: timedelta = self.backoff_base * (2**doublings)
        return min(grown, self.backoff_max)


@dataclass(frozen=True)
class SourceHealth:
    """One source's standing, as `dwatch sources` shows it and `run_crawl` obeys it."""

    source_id: str
    state: str                          # ok | failing | backed-off | disabled | silent
    reason: str                         # the state in words (shown after the state)
    last_success: datetime | None
    last_new_article: datetime | None
    consecutive_failures: int
    last_error: str | None
    articles_per_week: float
    candidates_per_week: float
    backed_off_until: datetime | None = None
    blocked: str | None = None          # why run_crawl skips it (backed off / disabled by failures)

    @property
    def describe(self) -> str:
        return self.state if not self.reason else f"{self.state}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "source_id": self.source_id,
            "state": self.state,
            "reason": self.reason,
            "last_success": _iso(self.last_success),
            "last_new_article": _iso(self.last_new_article),
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "articles_per_week": self.articles_per_week,
            "candidates_per_week": self.candidates_per_week,
            "backed_off_until": _iso(self.backed_off_until),
        }


def enable_source(session: Session, source_id: str, *, at: datetime | None = None) -> int:
    """Re-enable a backed-off or disabled source: a marker run; earlier failures stop counting."""
    when = at or utcnow()
    marker = CrawlRun(kind=ENABLE_KIND, started_at=when, finished_at=when, status="ok",
                      sources=[source_id])
    session.add(marker)
    session.commit()
    logger.warning("source %s re-enabled by an operator (marker run %s)", source_id, marker.id,
                   extra={"source_id": source_id})
    return marker.id


def source_health(
    session: Session,
    source_ids: Iterable[str],
    *,
    policy: SourcePolicy | None = None,
    now: datetime | None = None,
    config_disabled: Sequence[str] = (),
) -> list[SourceHealth]:
    """The health of each source in ``source_ids`` (in that order) at ``now`` (default: the clock)."""
    policy = policy or SourcePolicy()
    now = now or utcnow()
    ids = list(dict.fromkeys(source_ids))
    since = now - policy.yield_window
    weeks = policy.yield_window / timedelta(weeks=1)
    last_success = _grouped(session, select(CrawlRunSource.source_id, func.max(_run_time()))
                            .join(CrawlRun, CrawlRun.id == CrawlRunSource.run_id)
                            .where(CrawlRunSource.source_id.in_(ids), not_(_failed_clause()), _daily()))
    extracted = and_(Document.source_id.in_(ids), Document.outcome == "extracted")
    last_article = _grouped(session, select(Document.source_id, func.max(Document.created_at))
                            .where(extracted))
    articles = _grouped(session, select(Document.source_id, func.count())
                        .where(extracted, Document.created_at >= since))
    candidates = _grouped(session, select(Candidate.source_id, func.count())
                          .where(Candidate.source_id.in_(ids), Candidate.queued_at >= since))
    enabled_at = _enable_markers(session, ids)
    out = []
    for source_id in ids:
        failures, last_failure, last_error = _failures_in_a_row(session, source_id,
                                                                 enabled_at.get(source_id))
        state, reason, until, blocked = _state(
            policy, now, source_id, failures, last_failure, last_error,
            last_success.get(source_id), last_article.get(source_id),
            source_id in config_disabled,
        )
        out.append(SourceHealth(
            source_id=source_id, state=state, reason=reason,
            last_success=last_success.get(source_id), last_new_article=last_article.get(source_id),
            consecutive_failures=failures, last_error=last_error,
            articles_per_week=round(articles.get(source_id, 0) / weeks, 2),
            candidates_per_week=round(candidates.get(source_id, 0) / weeks, 2),
            backed_off_until=until, blocked=blocked,
        ))
    return out


def _state(
    policy: SourcePolicy, now: datetime, source_id: str, failures: int, last_failure: datetime | None,
    last_error: str | None, last_success: datetime | None, last_article: datetime | None,
    config_disabled: bool,
) -> tuple[str, str, datetime | None, str | None]:
    error = f"; last error: {last_error}" if last_error else ""
    if failures >= policy.disable_after:
        reason = (f"failed {failures} runs in a row{error}; "
                  f"re-enable with `dwatch sources --enable {source_id}`")
        return "disabled", reason, None, f"disabled after {failures} failed runs in a row"
    if config_disabled:
        return "disabled", "enabled: false in sources.yaml", None, None
    if failures >= policy.backoff_after and last_failure is not None:
        until = last_failure + policy.backoff(failures)
        if now < until:
            reason = f"until {_iso(until)} after {failures} failed runs in a row{error}"
            return "backed-off", reason, until, f"backed off until {_iso(until)} after {failures} " \
                                                "failed runs in a row"
    if failures:
        return "failing", f"{failures} failed run(s) in a row{error}", None, None
    if (last_article is not None and last_success is not None and last_success > last_article
            and now - last_article >= policy.silent_after):
        days = (now - last_article).days
        return "silent", f"used to yield, nothing new for {days} days", None, None
    return "ok", "" if last_success is not None else "not crawled yet", None, None


def _failures_in_a_row(
    session: Session, source_id: str, enabled_at: datetime | None
) -> tuple[int, datetime | None, str | None]:
    """Failed runs of the source since its last good run (or re-enable marker), newest first."""
    query = (select(_run_time(), CrawlRunSource.errors, CrawlRunSource.fetched, CrawlRunSource.first_error)
             .join(CrawlRun, CrawlRun.id == CrawlRunSource.run_id)
             .where(CrawlRunSource.source_id == source_id, CrawlRun.finished_at.is_not(None), _daily())
             .order_by(CrawlRun.started_at.desc(), CrawlRun.id.desc()).limit(HISTORY_LIMIT))
    failures, last_failure, last_error = 0, None, None
    for at, errors, fetched, first_error in session.execute(query):
        if enabled_at is not None and at <= enabled_at:
            break
        if not (errors > 0 and fetched == 0):
            break
        if failures == 0:
            last_failure, last_error = at, first_error
        failures += 1
    return failures, last_failure, last_error


def _enable_markers(session: Session, ids: list[str]) -> dict[str, datetime]:
    wanted = set(ids)
    latest: dict[str, datetime] = {}
    for sources, at in session.execute(
        select(CrawlRun.sources, CrawlRun.started_at).where(CrawlRun.kind == ENABLE_KIND)
    ):
        for source_id in sources or []:
            if source_id in wanted and (source_id not in latest or at > latest[source_id]):
                latest[source_id] = at
    return latest


def _run_time() -> Any:
    return func.coalesce(CrawlRun.finished_at, CrawlRun.started_at)


def _daily() -> ColumnElement[bool]:
    """Daily crawls only: a backfill (Wayback, GDELT, old sitemaps) says nothing of a source's feeds."""
    return CrawlRun.kind != BACKFILL_KIND


def _failed_clause() -> Any:
    return and_(CrawlRunSource.errors > 0, CrawlRunSource.fetched == 0)


def _grouped(session: Session, query: Any) -> dict[str, Any]:
    return {key: value for key, value in session.execute(query.group_by(query.selected_columns[0]))}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None
