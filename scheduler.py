"""The long-running service: APScheduler starts each scheduled crawl as its own process.

    dwatch scheduler [--config DIR]        # or: python -m scheduler [--config DIR]

One job per source group of ``settings.schedule`` (cron or interval, with jitter; a source in
no group is crawled on ``schedule.default``) runs ``python -m cli crawl --source ID ...`` in a
child process and waits for it: ``max_instances=1`` and ``coalesce`` mean a group never has
two crawls at once and missed runs collapse into one, run only within
``misfire_grace_seconds``. The jobs live in the project's database (APScheduler's
SQLAlchemyJobStore, table ``apscheduler_jobs``), so a restart keeps each job's next run time:
a run missed while the service was down runs once on start, none runs twice. A job whose
timing or sources changed in the config is replaced; a job of a removed group is dropped.

With a shared frontier (``frontier.redis_url`` / DWATCH_REDIS_URL) a group's job feeds its
sources' start documents to Redis instead (``crawler.frontier.feed_frontier``): the ``dwatch
worker`` processes, on this machine or others, do the crawling.

A daily job writes (and mails, when SMTP is configured) the digest of the previous day's new
candidates through ``review.digest.write_digest`` at ``schedule.digest_at``.

Every ``heartbeat_seconds`` the service writes ``<data_dir>/scheduler-heartbeat.json``
(``{"pid", "at", "state", "jobs", "running"}``); `dwatch health` reads it. A lock file keeps a
second scheduler off the same data directory.

SIGTERM or SIGINT: no new crawl starts; a running crawl may finish within
``crawl_grace_seconds``, else it gets SIGTERM (Scrapy stops cleanly, the run is closed in the
store), and the service exits 0.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from config import Settings
from config.settings import ScheduleGroup

logger = logging.getLogger("scheduler")

__all__ = ["HEARTBEAT_FILE", "CrawlScheduler", "JobSpec", "SchedulerError", "main", "run"]

HEARTBEAT_FILE = "scheduler-heartbeat.json"
LOCK_FILE = "scheduler.lock"
TERM_TIMEOUT = 60.0        # after SIGTERM, how long a crawl may take to close before a second one
KILL_TIMEOUT = 15.0        # after the second SIGTERM (Scrapy's forced stop), before SIGKILL

# The scheduler running in this process. Jobs in the database name module-level functions
# ("scheduler:crawl_job") with plain arguments; those functions find the live service here.
_live: CrawlScheduler | None = None


class SchedulerError(Exception):
    """The scheduler cannot start (store unreachable, another scheduler on the same data)."""


@dataclass(frozen=True)
class JobSpec:
    """One job the config asks for; `fingerprint` tells whether a stored job still matches."""

    id: str
    name: str
    func: str
    trigger: Any
    kwargs: dict[str, Any] = field(default_factory=dict)


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _trigger(group: ScheduleGroup, tz: ZoneInfo) -> Any:
    if group.cron is not None:
        trigger = CronTrigger.from_crontab(group.cron, timezone=tz)
        trigger.jitter = group.jitter_seconds or None
        return trigger
    return IntervalTrigger(seconds=group.interval_seconds, jitter=group.jitter_seconds or None, timezone=tz)


def job_specs(settings: Settings, *, digest: bool) -> list[JobSpec]:
    """The jobs `settings` asks for: one crawl job per group with enabled sources, the digest."""
    schedule = settings.schedule
    tz = ZoneInfo(schedule.timezone)
    enabled = [s.id for s in settings.enabled_sources()]
    specs = []
    for name, (group, sources) in schedule.groups_for(enabled).items():
        timing = group.model_dump(exclude={"sources"})
        specs.append(JobSpec(
            id=f"crawl:{name}",
            name=f"crawl {name} ({', '.join(sources)})",
            func="scheduler:crawl_job",
            trigger=_trigger(group, tz),
            kwargs={"group": name, "sources": sources,
                    "fingerprint": _fingerprint(timing, sources, schedule.timezone)},
        ))
    if digest and schedule.digest_at is not None:
        hour, minute = (int(part) for part in schedule.digest_at.split(":"))
        specs.append(JobSpec(
            id="digest",
            name=f"daily digest at {schedule.digest_at} {schedule.timezone}",
            func="scheduler:digest_job",
            trigger=CronTrigger(hour=hour, minute=minute, timezone=tz),
            kwargs={"fingerprint": _fingerprint(schedule.digest_at, schedule.timezone)},
        ))
    return specs


def crawl_job(group: str, sources: list[str], fingerprint: str = "") -> None:
    """APScheduler entry: crawl one group in a child process (see CrawlScheduler.run_group)."""
    if _live is None:
        logger.error("crawl of group %s: no scheduler is running in this process", group)
        return
    _live.run_group(group, sources)


def digest_job(fingerprint: str = "") -> None:
    """APScheduler entry: write and send yesterday's digest (see CrawlScheduler.run_digest)."""
    if _live is None:
        logger.error("digest: no scheduler is running in this process")
        return
    _live.run_digest()


def _digest_module() -> Any | None:
    try:
        return importlib.import_module("review.digest")
    except ImportError as exc:
        logger.warning("no daily digest: review.digest cannot be imported (%s)", exc)
        return None


class CrawlScheduler:
    """APScheduler on the database job store, plus the crawl processes it started."""

    def __init__(self, settings: Settings, *, python: str = sys.executable) -> None:
        self.settings = settings
        self.python = python
        self._lock = threading.Lock()
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._signalled: set[int] = set()     # pids of crawls this service sent a signal to
        self._stopping = threading.Event()
        self._scheduler: BackgroundScheduler | None = None
        self._engine: Any = None
        self._lock_file: IO[str] | None = None

    # ------------------------------------------------------------------ starting

    def start(self) -> None:
        """Take the data-dir lock, migrate the store, sync the stored jobs with the config, run."""
        from store import StoreError, make_engine, upgrade_database

        self._take_lock()
        try:
            upgrade_database(self.settings.database_url)
            self._engine = make_engine(self.settings.database_url)
        except StoreError as exc:
            raise SchedulerError(f"store {self.settings.masked()['database_url']}: {exc}") from exc
        specs = job_specs(self.settings, digest=_digest_module() is not None)
        schedule = self.settings.schedule
        self._scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self._engine)},
            executors={"default": ThreadPoolExecutor(max_workers=len(specs) + 1)},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": schedule.misfire_grace_seconds},
            timezone=ZoneInfo(schedule.timezone),
        )
        self._scheduler.start(paused=True)
        self._sync_jobs(specs)
        self._scheduler.resume()
        if not specs:
            logger.warning("nothing to schedule: no enabled source in %s", self.settings.config_dir)

    def _take_lock(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.settings.data_dir / LOCK_FILE
        handle = path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise SchedulerError(
                f"another scheduler (pid {holder}) is running on {self.settings.data_dir}; "
                "stop it first (two would crawl every source twice)"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def _sync_jobs(self, specs: list[JobSpec]) -> None:
        assert self._scheduler is not None
        schedule = self.settings.schedule
        stored = {job.id: job for job in self._scheduler.get_jobs()}
        for spec in specs:
            job = stored.pop(spec.id, None)
            if job is not None and job.kwargs.get("fingerprint") == spec.kwargs["fingerprint"]:
                self._scheduler.modify_job(
                    spec.id, name=spec.name, coalesce=True, max_instances=1,
                    misfire_grace_time=schedule.misfire_grace_seconds,
                )
                logger.info("job %s kept from the store; next run %s", spec.id, job.next_run_time)
                continue
            added = self._scheduler.add_job(
                spec.func, spec.trigger, id=spec.id, name=spec.name, kwargs=spec.kwargs,
                replace_existing=True,
            )
            logger.info("job %s %s; next run %s", spec.id, "replaced" if job else "added",
                        added.next_run_time)
        for job_id in stored:
            self._scheduler.remove_job(job_id)
            logger.info("job %s removed: no longer in the config", job_id)

    # ------------------------------------------------------------------ the jobs

    def crawl_command(self, sources: Sequence[str]) -> list[str]:
        args = [self.python, "-m", "cli", "crawl", "--config", str(self.settings.config_dir)]
        for source_id in sources:
            args += ["--source", source_id]
        return args

    def run_group(self, group: str, sources: Sequence[str]) -> int | None:
        """Crawl `sources` in a child process and wait; None when stopping (nothing started).

        With a shared frontier (frontier.redis_url) the group's start documents are fed to the
        `dwatch worker` processes instead (`feed_frontier`): 0 when fed, 1 when that failed.
        """
        if self.settings.frontier.redis_url is not None:
            return None if self._stopping.is_set() else self.feed_group(group, sources)
        with self._lock:
            if self._stopping.is_set():
                logger.info("crawl of group %s not started: the scheduler is stopping", group)
                return None
            # a new session: a Ctrl-C on the terminal reaches the scheduler, not the crawl
            proc = subprocess.Popen(self.crawl_command(sources), start_new_session=True)
            self._children[group] = proc
        logger.info("crawl of group %s started (pid %s): %s", group, proc.pid, " ".join(sources))
        try:
            code = proc.wait()
        finally:
            with self._lock:
                self._children.pop(group, None)
        if proc.pid in self._signalled:
            logger.warning("crawl of group %s (pid %s) stopped by the scheduler; exit code %s",
                           group, proc.pid, code)
        elif code == 0:
            logger.info("crawl of group %s (pid %s) finished", group, proc.pid)
        else:
            logger.error("crawl of group %s (pid %s) exited with %s", group, proc.pid, code)
        return code

    def feed_group(self, group: str, sources: Sequence[str]) -> int:
        """Feed the group's sources to the shared frontier (crawler.frontier.feed_frontier)."""
        from crawler.frontier import feed_frontier

        try:
            fed = feed_frontier(self.settings, list(sources))
        except Exception:  # a scheduler job: log the traceback, keep the service running
            logger.exception("feeding group %s (%s) to the shared frontier failed", group, " ".join(sources))
            return 1
        logger.info("group %s fed to the shared frontier: %d start document(s) of %s", group, fed,
                    " ".join(sources))
        return 0

    def run_digest(self) -> None:
        module = _digest_module()
        if module is None:
            return
        day = datetime.now(ZoneInfo(self.settings.schedule.timezone)).date() - timedelta(days=1)
        try:
            result = module.write_digest(self.settings, day, send=True)
        except Exception:  # a scheduler job: log the traceback, keep the service running
            logger.exception("digest of %s failed", day)
            return
        # counts and paths only: the candidates' titles are crawled (hostile) text
        logger.info("digest of %s written: %d candidates in %s; %s", day, len(result.items),
                    result.html_path, result.delivery)

    # ------------------------------------------------------------------ heartbeat

    def running(self) -> dict[str, int]:
        with self._lock:
            return {group: proc.pid for group, proc in self._children.items()}

    def write_heartbeat(self, state: str = "running") -> None:
        """<data_dir>/scheduler-heartbeat.json, replaced atomically; skipped if the store is down."""
        jobs: list[dict[str, Any]] = []
        if self._scheduler is not None and self._scheduler.running:
            try:
                jobs = [{"id": job.id, "name": job.name,
                         "next_run_time": job.next_run_time.isoformat() if job.next_run_time else None}
                        for job in self._scheduler.get_jobs()]
            except SQLAlchemyError as exc:
                logger.error("no heartbeat: the job store cannot be read: %s", exc)
                return
        beat = {"pid": os.getpid(), "at": datetime.now(UTC).isoformat(), "state": state,
                "jobs": jobs, "running": self.running()}
        path = self.settings.data_dir / HEARTBEAT_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(beat, indent=1), encoding="utf-8")
        os.replace(tmp, path)

    # ------------------------------------------------------------------ stopping

    def stop(self) -> None:
        """Start no more crawls, give running ones the grace period, then SIGTERM them."""
        self._stopping.set()
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.pause()
        grace = self.settings.schedule.crawl_grace_seconds
        if self.running():
            logger.info("waiting up to %ss for running crawls: %s", grace, self.running())
        self._wait_children(grace)
        for attempt, (sig, timeout) in enumerate(((signal.SIGTERM, TERM_TIMEOUT),
                                                  (signal.SIGTERM, KILL_TIMEOUT),
                                                  (signal.SIGKILL, KILL_TIMEOUT))):
            with self._lock:
                alive = [(g, p) for g, p in self._children.items() if p.poll() is None]
            if not alive:
                break
            for group, proc in alive:
                log = logger.error if sig == signal.SIGKILL else logger.warning
                log("crawl of group %s (pid %s) still running: sending %s (%d)",
                    group, proc.pid, sig.name, attempt + 1)
                self._signalled.add(proc.pid)
                proc.send_signal(sig)
            self._wait_children(timeout)
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        if self._engine is not None:
            self._engine.dispose()

    def _wait_children(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(p.poll() is not None for p in self._children.values()):
                    return
            time.sleep(0.1)

    def release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def run(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT; 0 after a clean stop, 2 when the service cannot start."""
    global _live
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    service = CrawlScheduler(settings)
    _live = service
    try:
        try:
            service.start()
        except SchedulerError as exc:
            logger.error("%s", exc)
            service.stop()
            return 2
        logger.info("scheduler running (pid %s); heartbeat in %s", os.getpid(),
                    settings.data_dir / HEARTBEAT_FILE)
        while not stop.is_set():
            service.write_heartbeat()
            stop.wait(settings.schedule.heartbeat_seconds)
        service.stop()
        service.write_heartbeat(state="stopped")
        logger.info("scheduler stopped")
        return 0
    finally:
        _live = None
        service.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def configure_logging(settings: Settings) -> None:
    """The project's log format (config/logs.py: JSON lines with run_id/source_id, or text) at INFO."""
    from config.logs import configure_logging as configure

    configure(settings.log_format, logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    from config import ConfigError, load_settings

    parser = argparse.ArgumentParser(prog="python -m scheduler", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=None, help="config directory")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    return run(settings)


if __name__ == "__main__":
    # jobs in the store refer to "scheduler:...", so the live service must be in that module
    import scheduler as _module

    raise SystemExit(_module.main())
