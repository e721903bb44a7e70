"""The queue as the web UI and its API read it: QueueQuery filters, sort, paging, counts,
facets, the narrative index kept by ingest and re-scoring, the 'translate' decision and the
weekly overview. Runs on SQLite and, when configured, PostgreSQL (conftest.db_url)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from store import StoreError, queue
from store.models import Candidate, CandidateNarrative
from store.records import QueueQuery, WeekCount
from tests.store.pages import make_page, verdict

# name: (published, lang, source, channel, score, narratives)
PAGES = {
    "mon": (datetime(2024, 5, 6, 9, tzinfo=UTC), "en", "wire", "feed", 0.91,
            ("infighting", "corrupt_emirs")),
    "tue": (datetime(2024, 5, 7, 23, 30, tzinfo=UTC), "ar", "arab-daily", "sitemap", 0.62,
            ("brutality",)),
    "prev": (datetime(2024, 4, 28, 12, tzinfo=UTC), "en", "think-tank", "listing", 0.77,
             ("corrupt_emirs",)),
    "old": (datetime(2024, 4, 1, 8, tzinfo=UTC), "fr", "wire", "feed", 0.55, ()),
}


def _seed(session: Session) -> dict[str, int]:
    ids = {}
    for name, (published, lang, source, channel, score, tags) in PAGES.items():
        outcome = queue.record_page(session, make_page(
            f"https://example.org/{name}", published=published, lang=lang, source_id=source,
            channel=channel, score=score, verdict=verdict(score), narratives=tags,
        ))
        assert outcome.candidate_id is not None
        ids[name] = outcome.candidate_id
    return ids


def _ids(rows: list[object]) -> list[int]:
    return [row.id for row in rows]  # type: ignore[attr-defined]


def test_every_filter_narrows_to_exactly_the_matching_candidates(session: Session) -> None:
    ids = _seed(session)

    def listed(**filters: object) -> list[int]:
        return _ids(queue.list_candidates(session, QueueQuery(**filters)))  # type: ignore[arg-type]

    assert listed() == [ids["tue"], ids["mon"], ids["prev"], ids["old"]]
    assert listed(since=date(2024, 5, 7)) == [ids["tue"]]
    assert listed(until=date(2024, 4, 28)) == [ids["prev"], ids["old"]]
    assert listed(since=date(2024, 4, 2), until=date(2024, 5, 6)) == [ids["mon"], ids["prev"]]
    assert listed(lang="en") == [ids["mon"], ids["prev"]]
    assert listed(source_id="wire") == [ids["mon"], ids["old"]]
    assert listed(channel="listing") == [ids["prev"]]
    assert listed(narrative="corrupt_emirs") == [ids["mon"], ids["prev"]]
    assert listed(min_score=0.6, max_score=0.8) == [ids["tue"], ids["prev"]]
    assert listed(ids=(ids["old"], ids["mon"])) == [ids["mon"], ids["old"]]
    assert listed(lang="en", narrative="infighting", channel="feed") == [ids["mon"]]
    assert listed(narrative="fear_for_family") == []


def test_sorting_paging_and_counts(session: Session) -> None:
    ids = _seed(session)
    by_score = queue.list_candidates(session, QueueQuery(sort="score"))
    assert _ids(by_score) == [ids["mon"], ids["prev"], ids["tue"], ids["old"]]
    ascending = queue.list_candidates(session, QueueQuery(sort="score", descending=False))
    assert _ids(ascending) == [ids["old"], ids["tue"], ids["prev"], ids["mon"]]
    page2 = queue.list_candidates(session, QueueQuery(limit=2, offset=2))
    assert _ids(page2) == [ids["prev"], ids["old"]]
    assert queue.count_candidates(session, QueueQuery(limit=2, offset=2)) == 4
    assert queue.count_candidates(session, QueueQuery(lang="en")) == 2

    queue.record_decision(session, ids["mon"], "accept", by="ana")
    queue.record_decision(session, ids["tue"], "translate", note="Arabic: needs a reader", by="ana")
    counts = queue.candidate_counts(session, QueueQuery(status="new", source_id="wire"))
    assert counts == {"new": 1, "accepted": 1, "rejected": 0, "duplicate": 0,
                      "needs_translation": 0, "unflagged": 0}
    assert _ids(queue.list_candidates(session, status="needs_translation")) == [ids["tue"]]


def test_rows_carry_narratives_and_channel(session: Session) -> None:
    ids = _seed(session)
    rows = {row.id: row for row in queue.list_candidates(session)}
    assert rows[ids["mon"]].narratives == ("corrupt_emirs", "infighting")
    assert rows[ids["mon"]].channel == "feed"
    assert rows[ids["old"]].narratives == ()
    assert rows[ids["tue"]].channel == "sitemap"


def test_queued_date_field_filters_by_when_it_was_found(session: Session) -> None:
    ids = _seed(session)
    for name, queued in (("old", datetime(2024, 5, 8, 7, tzinfo=UTC)),
                         ("mon", datetime(2024, 5, 6, 10, tzinfo=UTC))):
        session.get_one(Candidate, ids[name]).queued_at = queued
    session.commit()
    found_on_8 = QueueQuery(dates="queued", since=date(2024, 5, 8), until=date(2024, 5, 8))
    assert _ids(queue.list_candidates(session, found_on_8)) == [ids["old"]]
    # by publication date the April story is not in that day
    assert _ids(queue.list_candidates(session, QueueQuery(since=date(2024, 5, 8)))) == []


def test_export_follows_the_query_and_has_no_limit_by_default(session: Session) -> None:
    ids = _seed(session)
    rows = list(queue.iter_export(session, QueueQuery(narrative="corrupt_emirs", sort="score")))
    assert [r["candidate_id"] for r in rows] == [ids["mon"], ids["prev"]]
    assert rows[0]["channel"] == "feed" and rows[0]["narratives"] == "disillusionment"
    assert len(list(queue.iter_export(session))) == 4
    assert [r["candidate_id"] for r in queue.iter_export(session, lang="fr")] == [ids["old"]]


def test_facets_list_what_is_stored(session: Session) -> None:
    _seed(session)
    facets = queue.queue_facets(session)
    assert facets.languages == ("ar", "en", "fr")
    assert facets.sources == ("arab-daily", "think-tank", "wire")
    assert facets.channels == ("feed", "listing", "sitemap")
    assert facets.narratives == ("brutality", "corrupt_emirs", "infighting")


def test_rescoring_replaces_a_candidates_narratives(session: Session) -> None:
    ids = _seed(session)
    document_id = session.get_one(Candidate, ids["mon"]).document_id
    page = make_page("https://example.org/mon", narratives=("fear_for_family",), score=0.7)
    queue.update_analysis(session, document_id, page)
    tags = session.scalars(
        select(CandidateNarrative.narrative).where(CandidateNarrative.candidate_id == ids["mon"])
    ).all()
    assert tags == ["fear_for_family"]


def test_weekly_overview_counts_candidates_and_accepted_per_iso_week(session: Session) -> None:
    ids = _seed(session)
    queue.record_decision(session, ids["mon"], "accept")
    queue.record_decision(session, ids["prev"], "accept")
    queue.record_decision(session, ids["old"], "reject")
    overview = queue.weekly_overview(session)
    # 2024-04-01 is a Monday; 2024-04-28 is a Sunday (week of 04-22); 05-06/05-07 week of 05-06
    assert overview.weeks == (date(2024, 4, 1), date(2024, 4, 8), date(2024, 4, 15),
                              date(2024, 4, 22), date(2024, 4, 29), date(2024, 5, 6))
    assert [(t.week, t.candidates, t.accepted) for t in overview.totals] == [
        (date(2024, 4, 1), 1, 0), (date(2024, 4, 8), 0, 0), (date(2024, 4, 15), 0, 0),
        (date(2024, 4, 22), 1, 1), (date(2024, 4, 29), 0, 0), (date(2024, 5, 6), 2, 1),
    ]
    assert overview.by_language == (
        WeekCount(date(2024, 4, 1), "fr", 1, 0),
        WeekCount(date(2024, 4, 22), "en", 1, 1),
        WeekCount(date(2024, 5, 6), "ar", 1, 0),
        WeekCount(date(2024, 5, 6), "en", 1, 1),
    )
    assert overview.by_narrative == (
        WeekCount(date(2024, 4, 22), "corrupt_emirs", 1, 1),
        WeekCount(date(2024, 5, 6), "brutality", 1, 0),
        WeekCount(date(2024, 5, 6), "corrupt_emirs", 1, 1),
        WeekCount(date(2024, 5, 6), "infighting", 1, 1),
    )
    recent = queue.weekly_overview(session, since=date(2024, 5, 1))
    assert [(t.week, t.candidates) for t in recent.totals] == [(date(2024, 5, 6), 2)]
    assert queue.weekly_overview(session, since=date(2030, 1, 1)).weeks == ()


def test_a_late_evening_utc_story_counts_on_its_utc_day(session: Session) -> None:
    """23:30 UTC on Tuesday stays Tuesday whatever the database session's time zone."""
    ids = _seed(session)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET TIME ZONE 'Pacific/Auckland'"))  # UTC+12 in May
    week = queue.weekly_overview(session, since=date(2024, 5, 7), until=date(2024, 5, 7))
    assert [(t.week, t.candidates) for t in week.totals] == [(date(2024, 5, 6), 1)]
    assert _ids(queue.list_candidates(
        session, QueueQuery(since=date(2024, 5, 7), until=date(2024, 5, 7)))) == [ids["tue"]]


@pytest.mark.parametrize(("filters", "message"), [
    ({"status": "open"}, r"unknown candidate status 'open'; use one of new, .*needs_translation"),
    ({"sort": "title"}, r"unknown sort 'title'; use one of date, score"),
    ({"dates": "fetched"}, r"unknown date field 'fetched'; use one of published, queued"),
    ({"min_score": 1.5}, r"min_score must be a number from 0 to 1, not 1.5"),
    ({"since": date(2024, 5, 2), "until": date(2024, 5, 1)},
     r"the date range is empty: since 2024-05-02 is after until 2024-05-01"),
    ({"offset": -1}, r"limit and offset must not be negative"),
])
def test_bad_queries_are_clear_errors(
    session: Session, filters: dict[str, object], message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        queue.list_candidates(session, QueueQuery(**filters))  # type: ignore[arg-type]


def test_upgrading_an_older_store_fills_channel_and_narratives(db_url: str) -> None:
    """A store from before migration 0003 gets the new columns filled from its documents."""
    from store import downgrade_database, make_engine, make_session_factory, upgrade_database

    upgrade_database(db_url)
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            ids = _seed(session)
            queue.record_decision(session, ids["tue"], "translate")
            before = {row.id: (row.channel, row.narratives) for row in queue.list_candidates(session)}
        downgrade_database(db_url, "0002")
        with engine.connect() as connection:
            statuses = dict(connection.exec_driver_sql("SELECT id, status FROM candidates").all())
        assert statuses[ids["tue"]] == "new"  # 0002 has no 'needs_translation'
        upgrade_database(db_url)
        with make_session_factory(engine)() as session:
            after = {row.id: (row.channel, row.narratives) for row in queue.list_candidates(session)}
        assert after == before
        assert after[ids["mon"]] == ("feed", ("corrupt_emirs", "infighting"))
    finally:
        engine.dispose()
