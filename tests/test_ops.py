"""Operations: `dwatch health`, `dwatch config show`, `dwatch sources`, source backoff, JSON logs.

Run histories are written straight into a migrated temporary store with fixed times, so every
state (failing, backed off, disabled, silent) and every health failure is checked to the word.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from cli import main
from config import load_settings
from config.logs import ContextFilter, bind_run, configure_logging
from crawler import run_crawl
from store import make_engine, make_session_factory, upgrade_database
from store.health import HEARTBEAT_FILE, check_health
from store.models import Candidate, CrawlRun, CrawlRunSource, Document
from store.source_health import SourcePolicy, enable_source, source_health
from tests.crawler.crawl_process import REPO, closed_port, write_config

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
OK = {"fetched": 4, "errors": 0}
PARTIAL = {"fetched": 3, "errors": 2, "first_error": "article https://a.example.org/x: HTTP 404"}


def FAIL(error: str = "feed https://alpha.example.org/feed.xml: HTTP 503") -> dict[str, Any]:  # noqa: N802
    return {"fetched": 0, "errors": 1, "first_error": error}


def _feed(source_id: str, *, enabled: bool = True) -> dict[str, object]:
    return {"id": source_id, "name": source_id, "kind": "feed",
            "urls": [f"https://{source_id}.example.org/feed.xml"], "enabled": enabled}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    config_dir = write_config(tmp_path / "config",
                              [_feed("alpha"), _feed("beta"), _feed("gamma", enabled=False)])
    return {"DWATCH_CONFIG_DIR": str(config_dir), "DWATCH_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def url(env: dict[str, str]) -> str:
    database_url = f"sqlite:///{Path(env['DWATCH_DATA_DIR']) / 'dwatch.sqlite3'}"
    upgrade_database(database_url)
    return database_url


@pytest.fixture
def session(url: str) -> Iterator[Session]:
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        yield session
    engine.dispose()


def add_run(session: Session, at: datetime, per_source: dict[str, dict[str, Any]], *,
            status: str | None = None, kind: str = "crawl") -> int:
    """A finished run that started at `at` and took a minute, with per-source counters."""
    if status is None:
        failed = all(st["errors"] and not st["fetched"] for st in per_source.values())
        status = "failed" if failed else "ok"
    run = CrawlRun(kind=kind, started_at=at, finished_at=at + timedelta(minutes=1), status=status,
                   sources=list(per_source))
    session.add(run)
    session.flush()
    for source_id, st in per_source.items():
        session.add(CrawlRunSource(run_id=run.id, source_id=source_id, **st))
    session.commit()
    return run.id


def add_article(session: Session, source_id: str, at: datetime, *, candidate: bool = False) -> None:
    n = session.scalar(select(Document.id).order_by(Document.id.desc())) or 0
    url = f"https://{source_id}.example.org/story-{n + 1}.html"
    doc = Document(canonical_url=url, requested_url=url, final_url=url, outcome="extracted",
                   source_id=source_id, channel="feed", fetched_at=at, created_at=at, updated_at=at)
    session.add(doc)
    session.flush()
    if candidate:
        session.add(Candidate(document_id=doc.id, source_id=source_id, queued_at=at, text_sha256=url))
    session.commit()


def health_of(session: Session, source_id: str, **kwargs: Any) -> Any:
    kwargs.setdefault("now", NOW)
    return source_health(session, [source_id], **kwargs)[0]


def dwatch(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"DWATCH_DATABASE_URL": None, "DWATCH_LOG_FORMAT": None,
                                                     **env}, catch_exceptions=False)


# ------------------------------------------------------------------ source health and backoff


def test_a_healthy_source_shows_last_success_last_article_and_yield_per_week(session: Session) -> None:
    add_run(session, NOW - timedelta(days=2), {"alpha": OK})
    add_run(session, NOW - timedelta(hours=6), {"alpha": PARTIAL})          # errors, but fetched: a success
    for days in (1, 3, 5, 8, 13, 20):
        add_article(session, "alpha", NOW - timedelta(days=days), candidate=days in (3, 20))
    add_article(session, "alpha", NOW - timedelta(days=40), candidate=True)  # outside the 4-week window
    health = health_of(session, "alpha")
    assert health.state == "ok" and health.reason == "" and health.blocked is None
    assert health.last_success == NOW - timedelta(hours=6) + timedelta(minutes=1)
    assert health.last_new_article == NOW - timedelta(days=1)
    assert health.consecutive_failures == 0
    assert (health.articles_per_week, health.candidates_per_week) == (1.5, 0.5)
    never = health_of(session, "beta")
    assert (never.state, never.reason, never.last_success, never.articles_per_week) == \
        ("ok", "not crawled yet", None, 0.0)


def test_failures_in_a_row_back_off_exponentially_then_disable_with_the_reason(session: Session) -> None:
    add_run(session, NOW - timedelta(days=30), {"alpha": OK})
    start = NOW - timedelta(days=20)
    states = []
    for n in range(1, 9):
        error = f"feed https://alpha.example.org/feed.xml: HTTP 503 (#{n})"
        add_run(session, start + timedelta(days=n), {"alpha": FAIL(error)})
        last = start + timedelta(days=n, minutes=1)
        h = health_of(session, "alpha", now=last + timedelta(minutes=5))
        backoff = h.backed_off_until - last if h.backed_off_until else None
        states.append((h.consecutive_failures, h.state, backoff))
    assert states == [
        (1, "failing", None), (2, "failing", None),
        (3, "backed-off", timedelta(hours=6)), (4, "backed-off", timedelta(hours=12)),
        (5, "backed-off", timedelta(hours=24)), (6, "backed-off", timedelta(hours=48)),
        (7, "backed-off", timedelta(hours=96)), (8, "disabled", None),
    ]
    disabled = health_of(session, "alpha", now=NOW + timedelta(days=365))
    assert disabled.describe == (
        "disabled: failed 8 runs in a row; "
        "last error: feed https://alpha.example.org/feed.xml: HTTP 503 (#8); "
        "re-enable with `dwatch sources --enable alpha`")
    assert disabled.blocked == "disabled after 8 failed runs in a row"
    assert disabled.last_success == NOW - timedelta(days=30) + timedelta(minutes=1)


def test_a_backoff_expires_and_the_source_is_tried_again(session: Session) -> None:
    for hours in (30, 20, 10):
        add_run(session, NOW - timedelta(hours=hours), {"alpha": FAIL()})
    last = NOW - timedelta(hours=10) + timedelta(minutes=1)
    backed = health_of(session, "alpha", now=last + timedelta(hours=5))
    assert backed.describe == ("backed-off: until 2026-11-20T08:01:00+00:00 after 3 failed runs in a row; "
                               "last error: feed https://alpha.example.org/feed.xml: HTTP 503")
    assert backed.blocked == "backed off until 2026-11-20T08:01:00+00:00 after 3 failed runs in a row"
    due = health_of(session, "alpha", now=last + timedelta(hours=6, seconds=1))
    assert (due.state, due.blocked) == ("failing", None)
    # a custom policy: back off after 2 failures for 1 hour
    policy = SourcePolicy(backoff_after=2, disable_after=4, backoff_base=timedelta(hours=1))
    assert health_of(session, "alpha", policy=policy, now=last).backed_off_until == last + timedelta(hours=2)
    with pytest.raises(ValueError, match=r"need 1 <= backoff_after \(5\) < disable_after \(5\)"):
        SourcePolicy(backoff_after=5, disable_after=5)


def test_re_enabling_forgets_earlier_failures_and_a_success_resets_the_count(session: Session) -> None:
    for day in range(9, 0, -1):
        add_run(session, NOW - timedelta(days=day), {"alpha": FAIL(), "beta": OK})
    assert health_of(session, "alpha").state == "disabled"
    enable_source(session, "alpha", at=NOW - timedelta(hours=1))
    enabled = health_of(session, "alpha")
    assert (enabled.state, enabled.consecutive_failures, enabled.blocked) == ("ok", 0, None)
    add_run(session, NOW - timedelta(minutes=30), {"alpha": FAIL("feed: connection refused")})
    again = health_of(session, "alpha", now=NOW)
    assert again.describe == "failing: 1 failed run(s) in a row; last error: feed: connection refused"
    assert health_of(session, "beta").consecutive_failures == 0


def test_a_source_that_used_to_yield_and_went_silent_is_flagged(session: Session) -> None:
    add_article(session, "alpha", NOW - timedelta(days=20, hours=3))
    add_run(session, NOW - timedelta(days=1), {"alpha": OK})
    silent = health_of(session, "alpha")
    assert silent.describe == "silent: used to yield, nothing new for 20 days"
    assert silent.blocked is None                      # still crawled
    # a source that never yielded is not "silent", nor one whose last success predates its last article
    add_run(session, NOW - timedelta(days=1), {"beta": OK})
    assert health_of(session, "beta").state == "ok"
    assert health_of(session, "alpha", now=NOW - timedelta(days=10)).state == "ok"


def test_dwatch_sources_lists_states_and_enable_re_enables(env: dict[str, str], session: Session) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    add_run(session, now - timedelta(days=30), {"alpha": OK, "beta": OK})
    add_article(session, "beta", now - timedelta(days=20), candidate=True)
    for hours in (3, 2, 1):
        add_run(session, now - timedelta(hours=hours), {"alpha": FAIL(), "beta": OK})
    result = dwatch(env, "sources")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["source", "last", "success", "last", "new", "article", "failures", "per",
                                "week", "(art/cand)", "state"]

    def shown(at: datetime) -> list[str]:
        return at.strftime("%Y-%m-%d %H:%M").split()

    alpha = lines[2].split(None, 7)
    assert alpha[:3] == ["alpha", *shown(now - timedelta(days=30, minutes=-1))]
    assert alpha[3:6] == ["-", "3", "0/0"]
    assert alpha[6] == "backed-off:" and alpha[7].startswith("until ")
    assert "after 3 failed runs in a row" in alpha[7]
    assert lines[3].split() == ["beta", *shown(now - timedelta(minutes=59)), *shown(now - timedelta(days=20)),
                                "0", "0.25/0.25", "silent:", "used", "to", "yield,", "nothing", "new", "for",
                                "20", "days"]
    assert lines[4].split(None, 6)[1:] == ["-", "-", "0", "0/0", "disabled:",
                                           "enabled: false in sources.yaml"]

    enabled = dwatch(env, "sources", "--enable", "alpha", "--format", "json")
    assert enabled.exit_code == 0
    rows = {row["source_id"]: row for row in json.loads(enabled.stdout)}
    assert rows["alpha"]["state"] == "ok" and rows["alpha"]["consecutive_failures"] == 0
    assert rows["beta"]["last_new_article"] == (now - timedelta(days=20)).isoformat()
    assert "source alpha re-enabled: the next run crawls it" in enabled.stderr

    unknown = dwatch(env, "sources", "--enable", "nope")
    assert unknown.exit_code == 1
    assert "unknown source id(s): nope; known ids: alpha, beta, gamma" in unknown.output


def test_run_crawl_skips_backed_off_sources_and_records_a_skipped_run(
    env: dict[str, str], session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.now(UTC)
    for hours in (3, 2, 1):
        add_run(session, now - timedelta(hours=hours), {"alpha": FAIL()})
    settings = load_settings(Path(env["DWATCH_CONFIG_DIR"]), env=env)
    with caplog.at_level(logging.WARNING, logger="crawler.runner"):
        summary = run_crawl(settings, ["alpha"])      # everything skipped: no reactor is started
    assert (summary.status, summary.per_source, summary.ok) == ("skipped", {}, True)
    run = session.get(CrawlRun, summary.run_id)
    assert run is not None and (run.status, run.sources) == ("skipped", [])
    skip = next(r for r in caplog.records if r.getMessage().startswith("skipping source alpha"))
    assert "backed off until" in skip.getMessage() and "`dwatch sources --enable alpha`" in skip.getMessage()
    assert skip.source_id == "alpha"  # type: ignore[attr-defined]
    assert any(r.getMessage() == f"run {summary.run_id}: every selected source is backed off or disabled; "
               "nothing crawled" for r in caplog.records)


@pytest.mark.slow
def test_a_crawl_skips_the_backed_off_source_crawls_the_rest_and_logs_json(tmp_path: Path) -> None:
    port = closed_port()
    feeds = [{"id": sid, "name": sid, "kind": "feed", "urls": [f"http://127.0.0.1:{port}/{sid}.xml"]}
             for sid in ("alpha", "beta")]
    config_dir = write_config(tmp_path / "config", feeds)
    data_dir = tmp_path / "data"
    database_url = f"sqlite:///{data_dir / 'dwatch.sqlite3'}"
    upgrade_database(database_url)
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        for hours in (3, 2, 1):
            add_run(session, datetime.now(UTC) - timedelta(hours=hours), {"alpha": FAIL()})
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWATCH_")}
    env.update(DWATCH_DATA_DIR=str(data_dir), DWATCH_LOG_FORMAT="json")
    proc = subprocess.run([sys.executable, "-m", "cli", "crawl", "--config", str(config_dir)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1, proc.stderr[-3000:]                # beta's feed is down: nothing crawled
    table = proc.stdout.splitlines()
    assert [row.split()[0] for row in table[2:-1]] == ["beta"]      # alpha was not crawled
    run_id = int(table[-1].split()[1].rstrip(":"))
    assert table[-1] == f"run {run_id}: nothing could be crawled"
    events = [json.loads(line) for line in proc.stderr.splitlines()]   # every line is one JSON object
    skip = next(e for e in events if e["msg"].startswith("skipping source alpha"))
    assert (skip["level"], skip["source_id"], skip["logger"]) == ("WARNING", "alpha", "crawler.runner")
    feed_error = next(e for e in events if f"127.0.0.1:{port}/beta.xml" in e["msg"])
    assert (feed_error["run_id"], feed_error["source_id"]) == (run_id, "beta")
    with make_session_factory(engine)() as session:
        beta = health_of(session, "beta", now=datetime.now(UTC))
        assert beta.consecutive_failures == 1 and "beta.xml" in (beta.last_error or "")
    engine.dispose()


# ------------------------------------------------------------------ dwatch health


def write_heartbeat(env: dict[str, str], at: datetime) -> Path:
    path = Path(env["DWATCH_DATA_DIR"]) / HEARTBEAT_FILE
    beat = {"pid": 4242, "at": at.isoformat(), "jobs": ["crawl:default"]}
    path.write_text(json.dumps(beat), encoding="utf-8")
    return path


def test_health_is_ok_with_a_migrated_store_a_fresh_heartbeat_and_good_runs(
    env: dict[str, str], session: Session
) -> None:
    run_id = add_run(session, datetime(2026, 11, 20, 6, 0, tzinfo=UTC), {"alpha": OK})
    write_heartbeat(env, datetime.now(UTC) - timedelta(seconds=5))
    result = dwatch(env, "health", "--require-scheduler")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["ok    store", "ok    migrations", "ok    scheduler",
                                                      "ok    runs"]
    assert lines[1].startswith("ok    migrations: schema at the newest revision ")
    assert lines[2].endswith("s ago (limit 120s), pid 4242, 1 job(s)")
    assert lines[3] == f"ok    runs: latest run #{run_id} ok at 2026-11-20T06:00:00+00:00"


def test_health_without_any_scheduler_passes_unless_required(env: dict[str, str], url: str) -> None:
    relaxed = dwatch(env, "health")
    assert relaxed.exit_code == 0
    assert "ok    scheduler: no scheduler has ever run here" in relaxed.stdout
    assert "ok    runs: no crawl run recorded yet" in relaxed.stdout
    strict = dwatch(env, "health", "--require-scheduler")
    assert strict.exit_code == 1
    assert "FAIL  scheduler: no scheduler has ever run here" in strict.stdout
    assert "start it with `dwatch scheduler`" in strict.stderr


def test_health_fails_on_a_stale_or_unreadable_heartbeat(env: dict[str, str], url: str) -> None:
    settings = load_settings(Path(env["DWATCH_CONFIG_DIR"]), env=env)
    write_heartbeat(env, NOW - timedelta(minutes=10))
    report = check_health(settings, now=NOW)
    assert not report.ok
    assert report.reasons == ["scheduler: heartbeat is stale: last at 2026-11-20T11:50:00+00:00, 600s ago "
                              "(limit 120s); the scheduler has stopped or hangs"]
    assert check_health(settings, now=NOW, max_heartbeat_age=900).ok
    result = dwatch(env, "health", "--max-heartbeat-age", "30")
    assert result.exit_code == 1 and "FAIL  scheduler: heartbeat is stale" in result.stdout
    path = write_heartbeat(env, NOW)
    path.write_text("{not json", encoding="utf-8")
    broken = check_health(settings, now=NOW)
    assert broken.reasons[0].startswith(f"scheduler: cannot read {path}: Expecting property name")
    # scheduler.py writes state "stopped" on a clean shutdown
    path.write_text(json.dumps({"pid": 4242, "at": NOW.isoformat(), "state": "stopped", "jobs": []}),
                    encoding="utf-8")
    stopped = check_health(settings, now=NOW + timedelta(seconds=5), require_scheduler=True)
    assert stopped.reasons == ["scheduler: the scheduler (pid 4242) was stopped at 2026-11-20T12:00:00+00:00"]
    assert check_health(settings, now=NOW + timedelta(seconds=5)).ok
    assert not check_health(settings, now=NOW + timedelta(hours=1)).ok


def test_health_fails_when_the_store_is_missing_or_not_a_database(env: dict[str, str]) -> None:
    missing = dwatch(env, "health")
    assert missing.exit_code == 1
    assert "FAIL  store: sqlite:///" in missing.stdout
    assert "the SQLite database file does not exist; run `dwatch db upgrade`" in missing.stdout
    assert "FAIL  migrations: not checked: the store is unreachable" in missing.stdout
    assert not (Path(env["DWATCH_DATA_DIR"]) / "dwatch.sqlite3").exists()     # health never creates it
    garbage = Path(env["DWATCH_DATA_DIR"]) / "dwatch.sqlite3"
    garbage.parent.mkdir(parents=True)
    garbage.write_bytes(b"this is not a database" * 100)
    broken = dwatch(env, "health")
    assert broken.exit_code == 1
    assert "cannot connect: file is not a database" in broken.stdout


def test_health_fails_when_migrations_are_not_current(env: dict[str, str], tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    from store import head_revision
    from store.engine import alembic_config

    settings = load_settings(Path(env["DWATCH_CONFIG_DIR"]), env=env)
    engine = make_engine(settings.database_url)
    with engine.begin() as connection:             # a database file with no schema at all
        connection.execute(text("CREATE TABLE unrelated (x INTEGER)"))
    assert check_health(settings).reasons[0] == (
        f"migrations: the database was never migrated (code expects {head_revision()}); "
        "run `dwatch db upgrade`")
    upgrade_database(settings.database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    assert check_health(settings).reasons[0] == (
        "migrations: the database is at revision 9999_future, unknown to this code "
        f"(head {head_revision()}): "
        "it was migrated by a newer version; run that version or restore a backup")
    previous = ScriptDirectory.from_config(alembic_config()).get_revision(head_revision()).down_revision
    engine.dispose()
    if previous is None:
        pytest.skip("only one migration exists: no older revision to be behind at")
    other = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade_database(other, str(previous))
    old = check_health(settings.model_copy(update={"database_url": other}))
    assert old.reasons == [f"migrations: the database is at revision {previous}, the code expects "
                           f"{head_revision()}; run `dwatch db upgrade`"]


def test_health_fails_when_the_last_runs_all_failed(env: dict[str, str], session: Session) -> None:
    settings = load_settings(Path(env["DWATCH_CONFIG_DIR"]), env=env)
    add_run(session, NOW - timedelta(hours=30), {"alpha": OK})
    add_run(session, NOW - timedelta(hours=24),
            {"alpha": FAIL("feed a: HTTP 500"), "beta": FAIL("feed b: DNS")})
    add_run(session, NOW - timedelta(hours=18), {"beta": FAIL("feed b: DNS")})
    add_run(session, NOW - timedelta(hours=15), {}, status="skipped")      # skipped runs do not count
    enable_source(session, "alpha", at=NOW - timedelta(hours=14))          # nor re-enable markers
    assert check_health(settings, now=NOW).reasons == []                    # 2 of the last 3 failed
    last = add_run(session, NOW - timedelta(hours=12), {"alpha": FAIL("feed a: HTTP 500")})
    assert last == 6                                                       # #4 skipped, #5 the marker
    report = check_health(settings, now=NOW)
    assert report.reasons == [
        "runs: the last 3 run(s) failed: #6 at 2026-11-20T00:00:00+00:00 (feed a: HTTP 500); "
        "#3 at 2026-11-19T18:00:00+00:00 (feed b: DNS); #2 at 2026-11-19T12:00:00+00:00 (feed a: HTTP 500)"]
    assert check_health(settings, now=NOW, failed_runs=4).ok
    result = dwatch(env, "health", "--failed-runs", "1")
    assert result.exit_code == 1
    assert "FAIL  runs: the last 1 run(s) failed: #6 at 2026-11-20T00:00:00+00:00 (feed a: HTTP 500)" \
        in result.stdout


# ------------------------------------------------------------------ config show and logs


def test_config_show_prints_the_effective_configuration_with_secrets_masked(env: dict[str, str]) -> None:
    secrets = {"DWATCH_DATABASE_URL": "postgresql+psycopg://dwatch:pg-s3cret@db.internal:5432/dwatch",
               "DWATCH_SMTP_HOST": "smtp.example.org", "DWATCH_SMTP_USER": "digest",
               "DWATCH_SMTP_PASSWORD": "smtp-s3cret", "DWATCH_SMTP_FROM": "dwatch@example.org",
               "DWATCH_SMTP_TO": "a@example.org,b@example.org", "DWATCH_LOG_FORMAT": "json"}
    result = CliRunner().invoke(main, ["config", "show"], env={**env, **secrets}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    shown = yaml.safe_load(result.stdout)
    assert shown["database_url"] == "postgresql+psycopg://dwatch:***@db.internal:5432/dwatch"
    assert shown["data_dir"] == env["DWATCH_DATA_DIR"] and shown["log_format"] == "json"
    assert shown["crawl"]["allow_private_addresses"] is True                 # from settings.yaml
    assert [s["id"] for s in shown["sources"]] == ["alpha", "beta", "gamma"]
    assert list(shown)[-1] == "sources"
    if "smtp" in shown:                                                      # part A's smtp settings
        assert shown["smtp"]["password"] == "***" and shown["smtp"]["user"] == "digest"
    as_json = dwatch(env, "config", "show", "--format", "json")
    assert json.loads(as_json.stdout)["database_url"].endswith("/data/dwatch.sqlite3")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_logs_are_one_object_per_line_with_run_and_source_ids(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", logging.INFO)
    log = logging.getLogger("crawler.test")
    log.info("before any run")
    with bind_run(17):
        log.warning("feed %s: HTTP 503\nretrying later", "https://a.example.org/feed.xml",
                    extra={"source_id": "alpha"})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("crawler of source beta crashed", extra={"source_id": "beta"})
    log.debug("not shown at INFO")
    lines = capsys.readouterr().err.splitlines()
    events = [json.loads(line) for line in lines]
    assert [(e["msg"].split(":")[0], e["run_id"], e["source_id"]) for e in events] == [
        ("before any run", None, None), ("feed https", 17, "alpha"),
        ("crawler of source beta crashed", 17, "beta")]
    assert events[1]["msg"] == "feed https://a.example.org/feed.xml: HTTP 503\nretrying later"
    assert events[1]["level"] == "WARNING" and events[1]["logger"] == "crawler.test"
    assert events[2]["exc"].endswith("RuntimeError: boom")
    assert datetime.fromisoformat(events[0]["ts"]).tzinfo is not None
    configure_logging("text", logging.INFO)                                  # switching replaces the handler
    with bind_run(18):
        log.info("text now", extra={"source_id": "alpha"})
    text_line = capsys.readouterr().err.strip()
    assert text_line.endswith("INFO crawler.test: text now [run 18 source alpha]")
    assert sum(1 for h in logging.getLogger().handlers if type(h).__name__ == "_StderrHandler") == 1


def test_the_source_id_of_scrapy_records_comes_from_their_spider() -> None:
    class Spider:
        source = load_settings(None, env={}).sources[0]

    record = logging.LogRecord("scrapy.core.scraper", logging.ERROR, __file__, 1, "Error downloading",
                               None, None)
    record.spider = Spider()
    assert ContextFilter().filter(record) and record.source_id == Spider.source.id  # type: ignore[attr-defined]


def test_failed_backfills_neither_back_off_nor_vouch_for_the_daily_crawl(session: Session) -> None:
    """A backfill hits other hosts (Wayback, GDELT) and old pages: its runs do not judge the feeds."""
    add_run(session, NOW - timedelta(days=10), {"alpha": FAIL()})
    for n in range(1, 9):
        add_run(session, NOW - timedelta(days=9 - n), {"alpha": FAIL()}, kind="backfill")
    add_run(session, NOW - timedelta(hours=2), {"beta": OK}, kind="backfill")
    alpha = health_of(session, "alpha")
    assert (alpha.consecutive_failures, alpha.state, alpha.blocked) == (1, "failing", None)
    assert health_of(session, "beta").last_success is None
