"""Run `dwatch worker` processes against a site, Redis and a store; read what they left.

    config_dir = write_config(tmp / "config", server.sources(), prefix=prefix)
    feed(config_dir, env)                                  # feed_frontier, in this process
    procs = [start_worker(config_dir, env, tmp / f"w{i}") for i in range(4)]
    outcomes = [finish(p) for p in procs]                  # exit code, stdout, stderr
    queue_state(env["DWATCH_DATABASE_URL"])                # what the store holds, port-independent
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import yaml
from sqlalchemy import select

from config import load_settings
from crawler.frontier import feed_frontier
from store import make_engine, make_session_factory
from store.models import Candidate, CandidateNarrative, CrawlRun, Document

REPO = Path(__file__).resolve().parents[2]
LOCAL_CRAWL = {"allow_private_addresses": True, "download_delay": 0, "autothrottle": False}

__all__ = ["QueueState", "WorkerProcess", "feed", "queue_state", "start_worker", "write_config"]


def write_config(config_dir: Path, sources: list[dict[str, Any]], *, prefix: str, lease_seconds: int = 5,
                 idle_seconds: float = 3) -> Path:
    """sources.yaml, rules.yaml (the project's) and settings.yaml with a local crawl and `frontier:`."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}, sort_keys=False),
                                             encoding="utf-8")
    (config_dir / "settings.yaml").write_text(yaml.safe_dump({
        "crawl": LOCAL_CRAWL,
        "frontier": {"key_prefix": prefix, "lease_seconds": lease_seconds, "idle_seconds": idle_seconds},
    }), encoding="utf-8")
    shutil.copyfile(REPO / "config" / "rules.yaml", config_dir / "rules.yaml")
    return config_dir


def worker_env(data_dir: Path, database_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWATCH_")}
    env.update({"DWATCH_DATA_DIR": str(data_dir), "DWATCH_DATABASE_URL": database_url,
                "DWATCH_REDIS_URL": redis_url})
    return env


def feed(config_dir: Path, env: dict[str, str]) -> int:
    return feed_frontier(load_settings(config_dir, env=env))


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    _files: tuple[IO[bytes], IO[bytes]]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            for handle in self._files:
                handle.close()

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


def start_worker(config_dir: Path, env: dict[str, str], log_dir: Path, *args: str) -> WorkerProcess:
    """`python -m cli worker --config DIR --exit-when-idle ARGS` with stdout/stderr in files of log_dir."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out = (log_dir / "stdout.txt").open("wb")
    err = (log_dir / "stderr.txt").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "worker", "--config", str(config_dir), "--exit-when-idle", *args],
        cwd=REPO, env=env, stdout=out, stderr=err,
    )
    return WorkerProcess(proc, log_dir / "stdout.txt", log_dir / "stderr.txt", (out, err))


def wait_until(condition: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass(frozen=True)
class QueueState:
    """What a crawl left in the store, without anything that depends on the port or the order."""

    documents: dict[str, tuple[str, bool]]          # article path -> (outcome, flagged)
    candidates: Counter[tuple[str, float, str | None, str, tuple[str, ...]]]   # (title, score, lang,
    #                                                  status, narratives) of each candidate
    copies: Counter[str]                            # candidate title -> documents linked as its copies
    runs: list[tuple[str, str]]                     # (kind, status) of each crawl run, in order


def queue_state(database_url: str) -> QueueState:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            documents = {urlsplit(d.canonical_url).path: (d.outcome, d.flagged)
                         for d in session.scalars(select(Document))}
            narratives: dict[int, list[str]] = {}
            for row in session.scalars(select(CandidateNarrative)):
                narratives.setdefault(row.candidate_id, []).append(row.narrative)
            candidates: Counter[tuple[str, float, str | None, str, tuple[str, ...]]] = Counter(
                (c.title or "", round(c.score, 6), c.lang, c.status, tuple(sorted(narratives.get(c.id, ()))))
                for c in session.scalars(select(Candidate)))
            by_document = {c.document_id: c.title or "" for c in session.scalars(select(Candidate))}
            copies: Counter[str] = Counter(
                by_document[d.duplicate_of_document_id] for d in session.scalars(
                    select(Document).where(Document.duplicate_of_document_id.is_not(None))))
            runs = [(r.kind, r.status) for r in session.scalars(select(CrawlRun).order_by(CrawlRun.id))]
    finally:
        engine.dispose()
    return QueueState(documents, candidates, copies, runs)
