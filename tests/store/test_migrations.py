"""The real Alembic migrations build exactly the schema the models describe, both ways."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import StatementError

from store import (
    StoreError,
    current_revision,
    downgrade_database,
    head_revision,
    is_up_to_date,
    make_engine,
    make_session_factory,
    upgrade_database,
)
from store.models import Base, CrawlRun

# SQLite cannot reflect expression-based indexes (migration 0005's): SQLAlchemy and Alembic say
# so and skip them; test_queue_indexes_serve_... checks them directly instead
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:Skipped unsupported reflection of expression-based index:sqlalchemy.exc.SAWarning"),
    pytest.mark.filterwarnings(
        "ignore:autogenerate skipping metadata-specified expression-based index:UserWarning"),
]
QUEUE_DATE = "coalesce(published, queued_at)"
TABLES = {
    "alembic_version",
    "backfill_articles",
    "backfill_jobs",
    "backfill_units",
    "candidate_narratives",
    "candidates",
    "crawl_run_sources",
    "crawl_runs",
    "decisions",
    "documents",
    "feed_state",
    "minhash_bands",
    "stories",
}


def _indexes(engine: Engine, table: str) -> dict[str, str]:
    """Index name -> its indexed part as the database prints it (lower case, no quotes)."""
    if engine.dialect.name == "sqlite":
        sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"
    else:
        sql = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t"
    with engine.connect() as connection:
        rows = connection.execute(text(sql), {"t": table}).all()
    found = {}
    for name, definition in rows:
        columns = re.search(r"\((.*)\)\s*$", definition.lower().replace('"', ""))
        assert columns, definition
        found[name] = columns.group(1)
    return found


def _schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_fresh_database_migrates_to_head_and_matches_the_models(db_url: str) -> None:
    assert current_revision(db_url) is None
    assert not is_up_to_date(db_url)

    upgrade_database(db_url)

    assert current_revision(db_url) == head_revision() == "0005"
    assert is_up_to_date(db_url)
    engine = make_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
        assert _schema_diff(engine) == []
        candidates = _indexes(engine, "candidates")
        assert candidates["ix_candidates_status_queued_at"] == "status, queued_at"
        assert candidates["ix_candidates_lang"] == "lang"
        assert candidates["ix_candidates_lang_pub_or_queued"] == f"lang, {QUEUE_DATE}"
        story_fks = inspect(engine).get_foreign_keys("stories")
        assert [(fk["constrained_columns"], fk["referred_table"]) for fk in story_fks] == [
            (["first_document_id"], "documents")
        ]
    finally:
        engine.dispose()


def test_the_comparison_does_see_a_schema_that_differs(db_url: str) -> None:
    """Guard for the parity test: an unmigrated database is reported as all tables missing."""
    engine = make_engine(db_url)
    try:
        diff = _schema_diff(engine)
    finally:
        engine.dispose()
    added = {op[1].name for op in diff if isinstance(op, tuple) and op[0] == "add_table"}
    assert added == TABLES - {"alembic_version"}


def test_downgrade_to_base_then_upgrade_again(db_url: str) -> None:
    upgrade_database(db_url)
    downgrade_database(db_url, "base")
    engine = make_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        assert current_revision(db_url) is None
        upgrade_database(db_url)
        assert current_revision(db_url) == "0005"
        assert _schema_diff(engine) == []
    finally:
        engine.dispose()


def test_queue_indexes_serve_the_queue_date_alone_and_after_each_filter(db_url: str) -> None:
    """Migration 0005: the queue's date (publication, else queueing) indexed, alone and after
    status, lang, channel, source_id; its downgrade gives 0004's indexes back."""
    upgrade_database(db_url, "0004")
    engine = make_engine(db_url)
    try:
        before = _indexes(engine, "candidates")
        upgrade_database(db_url)
        after = _indexes(engine, "candidates")
        assert {name: after[name] for name in after.keys() - before.keys()} == {
            "ix_candidates_pub_or_queued": QUEUE_DATE,
            "ix_candidates_status_pub_or_queued": f"status, {QUEUE_DATE}",
            "ix_candidates_lang_pub_or_queued": f"lang, {QUEUE_DATE}",
            "ix_candidates_channel_pub_or_queued": f"channel, {QUEUE_DATE}",
            "ix_candidates_source_id_pub_or_queued": f"source_id, {QUEUE_DATE}",
        }
        assert before.keys() < after.keys()
        downgrade_database(db_url, "0004")
        assert _indexes(engine, "candidates") == before
    finally:
        engine.dispose()


def test_upgrade_works_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migrations ship inside the package: no alembic.ini in the cwd is needed."""
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'elsewhere' / 'nested' / 'db.sqlite3'}"
    upgrade_database(url)
    assert (tmp_path / "elsewhere" / "nested" / "db.sqlite3").is_file()
    assert is_up_to_date(url)


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new-dir' / 'db.sqlite3'}")
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == 30_000
        assert (tmp_path / "new-dir").is_dir()
    finally:
        engine.dispose()


def test_a_bad_database_url_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match=r"invalid database URL 'not a url'.*DWATCH_DATABASE_URL"):
        make_engine("not a url")


def test_timestamps_come_back_as_aware_utc_and_naive_ones_are_refused(
    migrated_url: str,
) -> None:
    engine = make_engine(migrated_url)
    factory = make_session_factory(engine)
    started = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    try:
        with factory() as session:
            session.add(CrawlRun(kind="crawl", started_at=started, status="running", sources=[]))
            session.commit()
        with factory() as session:
            stored = session.scalars(select(CrawlRun.started_at)).one()
            assert stored == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
            assert stored.utcoffset() == timedelta(0)
            session.add(
                CrawlRun(kind="crawl", started_at=datetime(2024, 5, 1), status="x", sources=[])
            )
            with pytest.raises(StatementError, match="naive datetime 2024-05-01T00:00:00"):
                session.commit()
    finally:
        engine.dispose()
