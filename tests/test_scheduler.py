"""The scheduler as operators run it: `python -m scheduler` against the demo site on 127.0.0.1.

One service life story (each crawl is a real `python -m cli crawl` child process). The
scheduled group is the demo's publications listing: a listing is fetched on every run (feeds
and sitemaps are polled only when due), so a crawl in flight is visible on the fixture server.
  1. start; the group (every 4 s, shorter than a crawl) crawls back to back, never two runs
     at once; SIGTERM while a crawl runs: the crawl finishes within the grace period, exit 0;
  2. down long enough to miss two fire times; restart (as `dwatch scheduler`): the stored
     job (same trigger, same due time) runs once at once, a second scheduler on the same
     data is refused; SIGTERM with no grace: the crawl is stopped cleanly, exit 0;
  3. the store: every run closed, runs of one source never overlap, each spawn made one run,
     the listing's candidates each queued once.
"""

from __future__ import annotations

import os
import pickle
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

import scheduler
from config import load_settings
from demo import SITE_DIR, FixtureServer, load_expected, serve_directory, write_config

REPO = Path(__file__).resolve().parents[1]
INTERVAL = 4
SOURCE = "demo-institute"


def write_settings(config_dir: Path, *, grace: float) -> None:
    settings = {
        "crawl": {"allow_private_addresses": True, "download_delay": 0, "autothrottle": False},
        "schedule": {
            "default": {"every_minutes": 600},
            "groups": {"reports": {"every_seconds": INTERVAL, "sources": [SOURCE]}},
            "digest_at": None,
            "heartbeat_seconds": 0.5,
            "crawl_grace_seconds": grace,
        },
    }
    (config_dir / "settings.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


@pytest.fixture()
def services() -> Iterator[list[Service]]:
    """Scheduler processes a test started; any still running at the end is stopped."""
    started: list[Service] = []
    yield started
    for service in started:
        if service.proc.poll() is None:
            service.proc.send_signal(signal.SIGTERM)
            try:
                service.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                service.proc.kill()
                service.proc.wait()


def start_scheduler(config_dir: Path, data_dir: Path, name: str, *command: str) -> Service:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWATCH_")}
    env["DWATCH_DATA_DIR"] = str(data_dir)
    log_path = data_dir.parent / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", *(command or ("scheduler",)), "--config", str(config_dir)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    return Service(proc, log_path)


def wait_for(what: str, check: Callable[[], Any], service: Service, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if service.proc.poll() is not None:
            pytest.fail(f"scheduler exited ({service.proc.returncode}) waiting for {what}:\n"
                        + service.log()[-3000:])
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n{service.log()[-3000:]}")


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError as exc:   # tables not migrated yet
            if "no such table" in str(exc):
                return []
            raise


def group_runs(db: Path) -> list[tuple[int, str, str | None, str]]:
    return [tuple(r) for r in query(  # type: ignore[misc]
        db, "SELECT id, started_at, finished_at, status FROM crawl_runs "
            f"WHERE sources LIKE '%{SOURCE}%' ORDER BY started_at")]


def stored_job(db: Path, job_id: str) -> tuple[float, Any]:
    sql = f"SELECT next_run_time, job_state FROM apscheduler_jobs WHERE id = '{job_id}'"
    ((next_run, state),) = query(db, sql)
    return next_run, pickle.loads(state)["trigger"]


def log_times(log: str, pattern: str) -> list[datetime]:
    return [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
            for m in re.finditer(r"^(\S+ \S+) \w+ scheduler: " + pattern, log, re.M)]


@pytest.fixture()
def slow_server() -> Iterator[tuple[FixtureServer, dict[str, float]]]:
    """The demo site; answers take `delay["s"]` seconds once a test sets it."""
    delay = {"s": 0.0}
    with serve_directory(SITE_DIR) as server:
        build = server.build_reply

        def slow_reply(target: str) -> Any:
            time.sleep(delay["s"])
            return build(target)

        server.build_reply = slow_reply  # type: ignore[method-assign]
        yield server, delay


def crawl_in_flight(db: Path, server: FixtureServer, runs_before: int) -> Callable[[], bool]:
    """True once a new run of the group is open and its crawler has asked the site for something."""
    requests_before = len(server.requests)

    def check() -> bool:
        runs = group_runs(db)
        return len(runs) > runs_before and runs[-1][2] is None and len(server.requests) > requests_before

    return check


@pytest.mark.slow
def test_scheduler_runs_restarts_and_stops_cleanly(
    tmp_path: Path, slow_server: tuple[FixtureServer, dict[str, float]], services: list[Service]
) -> None:
    server, delay = slow_server
    config_dir = write_config(tmp_path / "config", server.base_url)
    write_settings(config_dir, grace=60)
    data_dir = tmp_path / "data"
    db = data_dir / "dwatch.sqlite3"
    heartbeat = data_dir / scheduler.HEARTBEAT_FILE

    # ---- 1. crawls back to back, never overlapping; SIGTERM waits for the running crawl
    first = start_scheduler(config_dir, data_dir, "first")
    services.append(first)
    beat = wait_for("a heartbeat", lambda: heartbeat.exists() and yaml.safe_load(heartbeat.read_text()),
                    first, timeout=30)
    assert beat["pid"] == first.proc.pid and beat["state"] == "running"
    assert sorted(job["id"] for job in beat["jobs"]) == ["crawl:default", "crawl:reports"]
    assert datetime.fromisoformat(beat["at"]) > datetime.now(UTC) - timedelta(seconds=10)
    wait_for("a finished run", lambda: len([r for r in group_runs(db) if r[2]]) >= 1, first)
    delay["s"] = 1.0
    wait_for("the next crawl in flight", crawl_in_flight(db, server, len(group_runs(db))), first)
    assert yaml.safe_load(heartbeat.read_text())["running"]["reports"] > 0
    assert first.stop() == 0, first.log()[-3000:]
    log = first.log()
    assert "waiting up to 60.0s for running crawls" in log
    assert "sending SIGTERM" not in log
    *_, (_, _, finished, status) = group_runs(db)
    assert finished is not None and status == "ok"      # the crawl ran to its end
    assert yaml.safe_load(heartbeat.read_text())["state"] == "stopped"
    due, trigger = stored_job(db, "crawl:reports")

    # ---- 2. down past two fire times; the restarted service runs the stored job once, at once
    time.sleep(max(0.0, due + 2 * INTERVAL + 0.5 - time.time()))
    write_settings(config_dir, grace=0)
    runs_before = len(group_runs(db))
    second = start_scheduler(config_dir, data_dir, "second", "cli", "scheduler")   # `dwatch scheduler`
    services.append(second)
    wait_for("a crawl in flight after the restart", crawl_in_flight(db, server, runs_before), second)
    log = second.log()
    assert f"job crawl:reports kept from the store; next run {datetime.fromtimestamp(due, UTC)}" in log
    assert stored_job(db, "crawl:reports")[1].start_date == trigger.start_date   # same job, same cadence
    (ready,) = log_times(log, r"scheduler running")
    (spawned,) = log_times(log, r"crawl of group reports started")
    assert (spawned - ready).total_seconds() < INTERVAL / 2    # the missed run, not the next one

    other = subprocess.run([sys.executable, "-m", "scheduler", "--config", str(config_dir)], cwd=REPO,
                           env={**os.environ, "DWATCH_DATA_DIR": str(data_dir)},
                           capture_output=True, text=True, timeout=60)
    assert other.returncode == 2
    assert f"another scheduler (pid {second.proc.pid}) is running on {data_dir}" in other.stderr

    assert second.stop() == 0, second.log()[-3000:]
    log = second.log()
    assert re.search(r"crawl of group reports \(pid \d+\) still running: sending SIGTERM", log)
    assert "sending SIGKILL" not in log
    assert re.search(r"crawl of group reports \(pid \d+\) stopped by the scheduler; exit code 0", log)
    assert len(log_times(log, r"crawl of group reports started")) == 1
    *_, (_, _, finished, status) = group_runs(db)
    assert finished is not None and status == "interrupted"     # stopped mid-crawl, and recorded so

    # ---- 3. the store is consistent
    runs = group_runs(db)
    spawns = len(log_times(first.log() + second.log(), r"crawl of group reports started"))
    assert len(runs) == spawns >= 3
    open_runs = "SELECT id, status FROM crawl_runs WHERE finished_at IS NULL OR status = 'running'"
    assert query(db, open_runs) == []
    for (_, _, previous_end, _), (_, start, _, _) in zip(runs, runs[1:], strict=False):
        assert previous_end is not None and start >= previous_end, runs
    urls = [urlsplit(u).path for (u,) in query(
        db, "SELECT d.canonical_url FROM candidates c JOIN documents d ON d.id = c.document_id")]
    expected = {p for p, page in load_expected().items() if page.flagged and SOURCE in page.sources}
    assert sorted(urls) == sorted(expected)


# ------------------------------------------------------------------ jobs from the config


def test_job_specs_follow_the_schedule(tmp_path: Path) -> None:
    config_dir = write_config(tmp_path / "config", "http://127.0.0.1:9")
    (config_dir / "settings.yaml").write_text(yaml.safe_dump({"schedule": {
        "groups": {"feeds": {"cron": "15 */6 * * *", "jitter_seconds": 90,
                             "sources": ["demo-news-rss", "demo-world-atom"]}},
        "timezone": "Europe/Berlin",
    }}), encoding="utf-8")
    settings = load_settings(config_dir, env={"DWATCH_DATA_DIR": str(tmp_path / "data")})
    specs = {spec.id: spec for spec in scheduler.job_specs(settings, digest=True)}
    assert list(specs) == ["crawl:feeds", "crawl:default", "digest"]
    feeds, default, digest = specs["crawl:feeds"], specs["crawl:default"], specs["digest"]
    assert feeds.kwargs["sources"] == ["demo-news-rss", "demo-world-atom"]
    assert str(feeds.trigger) == "cron[month='*', day='*', day_of_week='*', hour='*/6', minute='15']"
    assert feeds.trigger.jitter == 90
    assert default.kwargs["sources"] == ["demo-sitemap", "demo-institute"]
    assert default.trigger.interval == timedelta(hours=6) and default.trigger.jitter == 300
    assert str(digest.trigger) == "cron[hour='7', minute='0']"
    assert str(digest.trigger.timezone) == "Europe/Berlin"
    assert "digest" not in {spec.id for spec in scheduler.job_specs(settings, digest=False)}
    # the fingerprint changes with the timing, so a changed schedule replaces the stored job
    (config_dir / "settings.yaml").write_text(yaml.safe_dump({"schedule": {
        "groups": {"feeds": {"cron": "45 */6 * * *", "sources": ["demo-news-rss", "demo-world-atom"]}},
        "timezone": "Europe/Berlin",
    }}), encoding="utf-8")
    changed = load_settings(config_dir, env={"DWATCH_DATA_DIR": str(tmp_path / "data")})
    again = {spec.id: spec for spec in scheduler.job_specs(changed, digest=True)}
    assert again["crawl:feeds"].kwargs["fingerprint"] != feeds.kwargs["fingerprint"]
    assert again["crawl:default"].kwargs["fingerprint"] == default.kwargs["fingerprint"]


def test_crawl_command_is_one_process_per_group(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path / "c", "http://127.0.0.1:9"),
                             env={"DWATCH_DATA_DIR": str(tmp_path / "d")})
    service = scheduler.CrawlScheduler(settings, python="/venv/bin/python")
    assert service.crawl_command(["a", "b"]) == [
        "/venv/bin/python", "-m", "cli", "crawl", "--config", str(settings.config_dir),
        "--source", "a", "--source", "b",
    ]


def test_digest_job_writes_yesterday_and_sends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(write_config(tmp_path / "c", "http://127.0.0.1:9"),
                             env={"DWATCH_DATA_DIR": str(tmp_path / "d")})
    calls: list[tuple[Any, date, bool]] = []
    result = SimpleNamespace(items=(), html_path=tmp_path / "d.html", delivery="not sent: no SMTP settings")
    stand_in = SimpleNamespace(write_digest=lambda s, day, *, send: calls.append((s, day, send)) or result)
    monkeypatch.setattr(scheduler, "_digest_module", lambda: stand_in)
    scheduler.CrawlScheduler(settings).run_digest()
    assert calls == [(settings, datetime.now(UTC).date() - timedelta(days=1), True)]


def test_without_the_digest_module_the_job_is_left_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "review.digest", None)   # import review.digest -> ImportError
    assert scheduler._digest_module() is None
    assert "no daily digest: review.digest cannot be imported" in caplog.text


# ------------------------------------------------------------------ with a shared frontier


def test_with_a_shared_frontier_a_group_is_fed_to_the_workers_not_crawled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import redis

    from crawler.frontier import Frontier, FrontierKeys
    from tests.services import redis_url

    url = redis_url()
    prefix = f"dwt-sched-{os.getpid()}-{time.monotonic_ns()}"
    config_dir = write_config(tmp_path / "c", "http://127.0.0.1:9")
    (config_dir / "settings.yaml").write_text(yaml.safe_dump({"frontier": {"key_prefix": prefix}}),
                                              encoding="utf-8")
    env = {"DWATCH_DATA_DIR": str(tmp_path / "d"), "DWATCH_REDIS_URL": url}
    settings = load_settings(config_dir, env=env)
    urls = {source.id: source.urls for source in settings.sources}

    def no_crawl(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a crawl process was started: {args}")

    monkeypatch.setattr(scheduler.subprocess, "Popen", no_crawl)
    service = scheduler.CrawlScheduler(settings)
    frontier = Frontier(redis.Redis.from_url(url), FrontierKeys(prefix), lease_seconds=300)
    try:
        with caplog.at_level("INFO", logger="scheduler"):
            assert service.run_group("feeds", ["demo-news-rss", "demo-world-atom"]) == 0
        assert frontier.pop_seeds("demo-news-rss", 10) == urls["demo-news-rss"]
        assert frontier.pop_seeds("demo-world-atom", 10) == urls["demo-world-atom"]
        assert frontier.pop_seeds("demo-sitemap", 10) == []      # not in the group
        fed = "group feeds fed to the shared frontier: 2 start document(s) of demo-news-rss demo-world-atom"
        assert fed in caplog.text
        # Redis gone: the job logs why and the service goes on
        broken = settings.model_copy(update={"frontier": settings.frontier.model_copy(
            update={"redis_url": "redis://127.0.0.1:1/0"})})
        with caplog.at_level("INFO", logger="scheduler"):
            assert scheduler.CrawlScheduler(broken).run_group("feeds", ["demo-news-rss"]) == 1
        assert "feeding group feeds (demo-news-rss) to the shared frontier failed" in caplog.text
        assert "cannot reach Redis at redis://127.0.0.1:1/0" in caplog.text
    finally:
        keys = list(frontier.client.scan_iter(match=f"{prefix}:*"))
        if keys:
            frontier.client.delete(*keys)
        frontier.close()
