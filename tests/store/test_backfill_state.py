"""Migration 0004 and the backfill state API (store/backfill.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

from store import (
    current_revision,
    downgrade_database,
    head_revision,
    make_engine,
    queue,
    upgrade_database,
)
from store.backfill import (
    BackfillArgs,
    BackfillArticle,
    add_articles,
    article_counts,
    finish_job,
    finish_unit,
    get_unit,
    job_counts,
    job_key,
    mark_article,
    pending_articles,
    start_job,
    unit_done,
)
from store.models import BackfillJobModel, Base, Document
from tests.store.pages import make_page

ARGS = BackfillArgs(
    since=date(2014, 1, 1), until=date(2015, 12, 31),
    sources=("bbc", "aljazeera"), methods=("sitemap", "archive"), warcs=(), plan=False,
)


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


# SQLite cannot reflect migration 0005's expression-based indexes (see test_migrations.py)
@pytest.mark.filterwarnings(
    "ignore:Skipped unsupported reflection of expression-based index:sqlalchemy.exc.SAWarning")
@pytest.mark.filterwarnings(
    "ignore:autogenerate skipping metadata-specified expression-based index:UserWarning")
def test_migration_0004_adds_the_backfill_tables_and_documents_method(db_url: str) -> None:
    upgrade_database(db_url, "0003")
    upgrade_database(db_url)
    assert current_revision(db_url) == head_revision()
    engine = make_engine(db_url)
    try:
        inspector = inspect(engine)
        assert {"backfill_jobs", "backfill_units", "backfill_articles"} <= set(inspector.get_table_names())
        method = next(c for c in inspector.get_columns("documents") if c["name"] == "method")
        assert method["nullable"] is True
        assert [c["name"] for c in inspector.get_columns("backfill_articles")] == [
            "job_id", "canonical_url", "url", "source_id", "method", "discovered_from", "entry_id",
            "entry_title", "entry_published", "status", "updated_at",
        ]
        assert inspector.get_pk_constraint("backfill_units")["constrained_columns"] == ["job_id", "unit"]
        assert inspector.get_pk_constraint("backfill_articles")["constrained_columns"] == [
            "job_id", "canonical_url"]
        indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("backfill_articles")}
        assert indexes["ix_backfill_articles_job_id_status"] == ["job_id", "status"]
        assert _diff(engine) == []          # parity with the models

        downgrade_database(db_url, "0003")
        inspector = inspect(engine)
        assert "backfill_jobs" not in inspector.get_table_names()
        assert "method" not in {c["name"] for c in inspector.get_columns("documents")}
        upgrade_database(db_url)
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_the_job_key_is_the_normalised_arguments() -> None:
    same = BackfillArgs(date(2014, 1, 1), date(2015, 12, 31), ("aljazeera", "bbc", "bbc"),
                        ("archive", "sitemap"), (), plan=True)
    assert job_key(same) == job_key(ARGS)          # order, duplicates and --plan do not matter
    assert len(job_key(ARGS)) == 64
    assert job_key(BackfillArgs(date(2014, 1, 2), ARGS.until, ARGS.sources, ARGS.methods)) != job_key(ARGS)
    assert job_key(BackfillArgs(ARGS.since, ARGS.until, ARGS.sources, ARGS.methods, ("a.warc.gz",))) \
        != job_key(ARGS)


def test_start_job_resumes_the_unfinished_job_with_the_same_arguments(session: Session) -> None:
    first = start_job(session, ARGS)
    assert (first.status, first.resumed, first.sources, first.methods) == (
        "running", False, ("aljazeera", "bbc"), ("archive", "sitemap"))
    assert (first.since, first.until) == (date(2014, 1, 1), date(2015, 12, 31))

    finish_job(session, first.id, "interrupted")
    again = start_job(session, ARGS)
    assert (again.id, again.status, again.resumed) == (first.id, "running", True)

    other = start_job(session, BackfillArgs(ARGS.since, ARGS.until, ("bbc",), ARGS.methods))
    assert other.id != first.id and not other.resumed

    finish_job(session, first.id, "done")
    row = session.get_one(BackfillJobModel, first.id)
    assert row.status == "done" and row.finished_at is not None
    fresh = start_job(session, ARGS)               # a finished job is not resumed: a new one starts
    assert fresh.id not in (first.id, other.id) and not fresh.resumed

    with pytest.raises(ValueError, match="invalid job status 'paused'; use one of: running, done"):
        finish_job(session, fresh.id, "paused")


def test_units_done_are_remembered_per_job(session: Session) -> None:
    job = start_job(session, ARGS)
    unit = "sitemap:https://bbc.example/sitemap-2014.xml"
    assert not unit_done(session, job.id, unit)
    assert get_unit(session, job.id, unit) is None
    finish_unit(session, job.id, unit, found=0, status="pending", detail="offset 1024")
    assert not unit_done(session, job.id, unit)
    recorded = get_unit(session, job.id, unit)
    assert recorded is not None and (recorded.status, recorded.found, recorded.detail) == (
        "pending", 0, "offset 1024")
    finish_unit(session, job.id, unit, found=12, detail='["https://bbc.example/sitemap-2014-03.xml"]')
    assert unit_done(session, job.id, unit)
    recorded = get_unit(session, job.id, unit)
    assert recorded is not None and (recorded.unit, recorded.status, recorded.found, recorded.detail) == (
        unit, "done", 12, '["https://bbc.example/sitemap-2014-03.xml"]')
    other = start_job(session, BackfillArgs(ARGS.since, ARGS.until, ("bbc",), ARGS.methods))
    assert not unit_done(session, other.id, unit)
    finish_unit(session, job.id, "archive:https://bbc.example/news?page=9", found=0, status="failed",
                detail="HTTP 500 Internal Server Error")
    counts = job_counts(session, job.id)
    assert (counts["units"], counts["units_done"], counts["units_failed"], counts["units_pending"]) == (
        2, 1, 1, 0)
    with pytest.raises(ValueError, match="invalid unit status 'ok'"):
        finish_unit(session, job.id, unit, found=1, status="ok")


def _article(n: int, **changes: object) -> BackfillArticle:
    base = BackfillArticle(
        canonical_url=f"https://bbc.example/news/{n}", url=f"https://bbc.example/news/{n}",
        source_id="bbc", method="sitemap", discovered_from="https://bbc.example/sitemap.xml",
        entry_title=f"Story {n}", entry_published=datetime(2014, 3, n, 9, 0, tzinfo=UTC),
    )
    return BackfillArticle(**{**base.__dict__, **changes})


def test_articles_are_insert_ignored_listed_while_pending_and_marked(session: Session) -> None:
    job = start_job(session, ARGS)
    first = [_article(1), _article(2), _article(3, status="out_of_range")]
    assert add_articles(session, job.id, first) == 3
    # found again (another sitemap, another method): the first record stays as it was
    again = [_article(1, method="archive", entry_title="Again"), _article(4)]
    assert add_articles(session, job.id, again) == 1

    pending = pending_articles(session, job.id)
    assert [a.canonical_url for a in pending] == [
        "https://bbc.example/news/1", "https://bbc.example/news/2", "https://bbc.example/news/4"]
    assert pending[0] == _article(1)              # every field round-trips (tz-aware date included)

    mark_article(session, job.id, "https://bbc.example/news/1", "fetched")
    mark_article(session, job.id, "https://bbc.example/news/2", "seen")
    assert [a.canonical_url for a in pending_articles(session, job.id)] == ["https://bbc.example/news/4"]
    counts = job_counts(session, job.id)
    assert {k: v for k, v in counts.items() if k.startswith("articles")} == {
        "articles": 4, "articles_pending": 1, "articles_fetched": 1, "articles_out_of_range": 1,
        "articles_failed": 0, "articles_seen": 1,
    }
    assert article_counts(session, job.id) == {
        ("bbc", "sitemap"): {"fetched": 1, "seen": 1, "out_of_range": 1, "pending": 1}}
    with pytest.raises(ValueError, match="invalid article status 'done'"):
        mark_article(session, job.id, "https://bbc.example/news/4", "done")


def test_documents_keep_the_backfill_method_in_provenance_and_exports(session: Session) -> None:
    daily = make_page("https://bbc.example/news/daily", flagged=True)
    queue.record_page(session, daily)
    found = make_page("https://bbc.example/news/2014/defector", flagged=True, channel="backfill")
    found = replace(found, provenance=replace(found.provenance, method="sitemap"))
    outcome = queue.record_page(session, found)
    stored = dict(session.execute(select(Document.canonical_url, Document.method)).all())
    assert stored == {
        "https://bbc.example/news/daily": None, "https://bbc.example/news/2014/defector": "sitemap"}
    assert outcome.candidate_id is not None
    detail = queue.get_candidate(session, outcome.candidate_id)
    assert detail is not None
    assert (detail.provenance["channel"], detail.provenance["method"]) == ("backfill", "sitemap")
    rows = {row["canonical_url"]: row for row in queue.iter_export(session)}
    assert rows["https://bbc.example/news/2014/defector"]["method"] == "sitemap"
    assert rows["https://bbc.example/news/daily"]["method"] is None
