"""`dwatch health`: is this deployment working? Each check says ok or why not.

Checks, in order: the store is reachable, its schema is at the newest Alembic revision, the
scheduler's heartbeat file (``<data_dir>/scheduler-heartbeat.json``, written by scheduler.py)
is fresh, and the latest crawl runs are not all failing. Nothing here writes: a health probe
never migrates or creates a database.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from store.engine import alembic_config, current_revision, head_revision, make_engine
from store.errors import StoreError
from store.models import CrawlRun, CrawlRunSource, utcnow
from store.source_health import ENABLE_KIND

if TYPE_CHECKING:
    from config import Settings

__all__ = ["HEARTBEAT_FILE", "Check", "HealthReport", "check_health", "read_heartbeat"]

logger = logging.getLogger(__name__)

HEARTBEAT_FILE = "scheduler-heartbeat.json"
NOT_COUNTED = (ENABLE_KIND,)                  # marker runs are not crawls
NOT_COUNTED_STATUSES = ("running", "skipped")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str

    def line(self) -> str:
        return f"{'ok' if self.ok else 'FAIL':<5} {self.name}: {self.message}"


@dataclass(frozen=True)
class HealthReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def lines(self) -> list[str]:
        return [check.line() for check in self.checks]

    @property
    def reasons(self) -> list[str]:
        return [f"{check.name}: {check.message}" for check in self.checks if not check.ok]


def check_health(
    settings: Settings,
    *,
    max_heartbeat_age: float = 120.0,
    require_scheduler: bool = False,
    failed_runs: int = 3,
    now: datetime | None = None,
) -> HealthReport:
    """Run every check against ``settings`` (see the module doc); ``now`` defaults to the clock."""
    now = now or utcnow()
    shown_url = str(settings.masked()["database_url"])
    heartbeat = _heartbeat(settings.data_dir / HEARTBEAT_FILE, max_heartbeat_age, require_scheduler, now)
    engine, problem = _reachable(settings.database_url)
    if engine is None:
        unreachable = "not checked: the store is unreachable"
        checks = [Check("store", False, f"{shown_url}: {problem}"), Check("migrations", False, unreachable),
                  heartbeat, Check("runs", False, unreachable)]
    else:
        try:
            checks = [Check("store", True, f"{shown_url} reachable"), _migrations(settings.database_url),
                      heartbeat, _runs(engine, failed_runs)]
        finally:
            engine.dispose()
    return HealthReport(tuple(checks))


def _reachable(url: str) -> tuple[Engine | None, str]:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        return None, f"invalid database URL: {exc}"
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:" \
            and not parsed.database.startswith("file:") and not Path(parsed.database).is_file():
        return None, ("the SQLite database file does not exist; run `dwatch db upgrade` "
                      "(or check DWATCH_DATA_DIR / DWATCH_DATABASE_URL)")
    try:
        engine = make_engine(url)
    except (StoreError, SQLAlchemyError, ImportError) as exc:
        return None, f"cannot open: {exc}"
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = getattr(exc, "orig", None) or exc
        return None, f"cannot connect: {reason}"
    return engine, ""


def _migrations(url: str) -> Check:
    try:
        current = current_revision(url)
    except SQLAlchemyError as exc:
        return Check("migrations", False, f"cannot read the schema revision: {exc}")
    head = head_revision()
    if current == head:
        return Check("migrations", True, f"schema at the newest revision {head}")
    if current is None:
        return Check("migrations", False,
                     f"the database was never migrated (code expects {head}); run `dwatch db upgrade`")
    try:
        known = ScriptDirectory.from_config(alembic_config()).get_revision(current) is not None
    except CommandError:
        known = False
    if not known:
        return Check("migrations", False,
                     f"the database is at revision {current}, unknown to this code (head {head}): "
                     "it was migrated by a newer version; run that version or restore a backup")
    return Check("migrations", False,
                 f"the database is at revision {current}, the code expects {head}; "
                 "run `dwatch db upgrade`")


def read_heartbeat(path: Path) -> tuple[datetime, dict[str, Any]]:
    """The time of the scheduler's last heartbeat in ``path`` and the whole record.

    ValueError says what is wrong with the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    at = data.get("at") if isinstance(data, dict) else None
    if not isinstance(at, str):
        raise ValueError(f"{path} has no 'at' timestamp (expected {{\"pid\": .., \"at\": ISO-8601}})")
    try:
        when = datetime.fromisoformat(at)
    except ValueError as exc:
        raise ValueError(f"{path}: 'at' is not an ISO-8601 time: {at!r}") from exc
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)), data


def _heartbeat(path: Path, max_age: float, required: bool, now: datetime) -> Check:
    if not path.exists():
        message = f"no scheduler has ever run here (no {path})"
        if required:
            return Check("scheduler", False, message + "; start it with `dwatch scheduler`")
        return Check("scheduler", True, message + "; not required (--require-scheduler to insist)")
    try:
        at, beat = read_heartbeat(path)
    except ValueError as exc:
        return Check("scheduler", False, str(exc))
    age = (now - at).total_seconds()
    when = at.astimezone(UTC).isoformat(timespec="seconds")
    if beat.get("state") == "stopped":
        # a clean shutdown: fails like a missing scheduler, or once the heartbeat is stale
        message = f"the scheduler (pid {beat.get('pid')}) was stopped at {when}"
        return Check("scheduler", not required and age <= max_age, message)
    if age > max_age:
        return Check("scheduler", False,
                     f"heartbeat is stale: last at {when}, {age:.0f}s ago (limit {max_age:.0f}s); "
                     "the scheduler has stopped or hangs")
    jobs = beat.get("jobs")
    detail = f", pid {beat.get('pid')}" + (f", {len(jobs)} job(s)" if isinstance(jobs, list) else "")
    return Check("scheduler", True, f"heartbeat {max(age, 0):.0f}s ago (limit {max_age:.0f}s){detail}")


def _runs(engine: Engine, failed_runs: int) -> Check:
    try:
        with Session(engine) as session:
            runs = session.scalars(
                select(CrawlRun)
                .where(CrawlRun.kind.not_in(NOT_COUNTED), CrawlRun.status.not_in(NOT_COUNTED_STATUSES))
                .order_by(CrawlRun.started_at.desc(), CrawlRun.id.desc())
                .limit(failed_runs)
            ).all()
            if not runs:
                return Check("runs", True, "no crawl run recorded yet")
            if any(run.status != "failed" for run in runs):
                latest = runs[0]
                return Check("runs", True, f"latest run #{latest.id} {latest.status} "
                             f"at {latest.started_at.isoformat(timespec='seconds')}")
            errors = {
                (row.run_id, row.source_id): row.first_error
                for row in session.scalars(
                    select(CrawlRunSource).where(CrawlRunSource.run_id.in_([r.id for r in runs]))
                )
            }
    except SQLAlchemyError as exc:
        return Check("runs", False, f"cannot read the crawl runs: {exc}")
    described = []
    for run in runs:
        first = next((err for (run_id, _), err in sorted(errors.items()) if run_id == run.id and err), None)
        described.append(f"#{run.id} at {run.started_at.isoformat(timespec='seconds')}"
                         + (f" ({first})" if first else ""))
    return Check("runs", False, f"the last {len(runs)} run(s) failed: " + "; ".join(described))
