"""The review queue: listing, filters, order, decisions, detail, export and run records."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from store import DecisionError, StoreError, queue
from store.models import Candidate, Decision
from store.records import Provenance, SourceRunStats
from tests.store.pages import FETCHED, make_page, verdict

UTC_MAY = datetime(2024, 5, 1, tzinfo=UTC)


def _queue_three(session: Session) -> dict[str, int]:
    """Three candidates: an English page from May 3, an Arabic one from April 20, an undated one."""
    ids = {}
    for name, published, lang in (
        ("may3", datetime(2024, 5, 3, 10, tzinfo=UTC), "en"),
        ("apr20", datetime(2024, 4, 20, 10, tzinfo=UTC), "ar"),
        ("undated", None, "en"),
    ):
        outcome = queue.record_page(
            session, make_page(f"https://example.org/{name}", published=published, lang=lang)
        )
        assert outcome.candidate_id is not None
        ids[name] = outcome.candidate_id
    return ids


def _backdate_queued(session: Session, candidate_id: int, when: datetime) -> None:
    session.get_one(Candidate, candidate_id).queued_at = when
    session.commit()


def test_list_is_newest_first_with_undated_pages_placed_by_when_they_were_queued(
    session: Session,
) -> None:
    ids = _queue_three(session)
    _backdate_queued(session, ids["undated"], datetime(2024, 4, 25, tzinfo=UTC))

    rows = queue.list_candidates(session)

    assert [row.id for row in rows] == [ids["may3"], ids["undated"], ids["apr20"]]
    first = rows[0]
    assert (first.url, first.canonical_url, first.status, first.lang, first.source_id) == (
        "https://example.org/may3", "https://example.org/may3", "new", "en", "example-news"
    )
    assert first.published == datetime(2024, 5, 3, 10, tzinfo=UTC)
    assert first.title == "Title of https://example.org/may3"


def test_filters_by_status_language_since_and_limit(session: Session) -> None:
    ids = _queue_three(session)
    _backdate_queued(session, ids["undated"], datetime(2024, 4, 25, tzinfo=UTC))
    _backdate_queued(session, ids["apr20"], datetime(2024, 4, 21, tzinfo=UTC))
    _backdate_queued(session, ids["may3"], datetime(2024, 5, 3, 11, tzinfo=UTC))
    queue.record_decision(session, ids["may3"], "accept")

    assert [r.id for r in queue.list_candidates(session, status="new")] == [
        ids["undated"], ids["apr20"]
    ]
    assert [r.id for r in queue.list_candidates(session, status="accepted")] == [ids["may3"]]
    assert [r.id for r in queue.list_candidates(session, lang="AR ")] == [ids["apr20"]]
    assert [r.id for r in queue.list_candidates(session, since=date(2024, 4, 25))] == [
        ids["may3"], ids["undated"]
    ]
    assert [r.id for r in queue.list_candidates(session, since=date(2024, 5, 4))] == []
    assert [r.id for r in queue.list_candidates(session, limit=1)] == [ids["may3"]]
    with pytest.raises(StoreError, match=r"unknown candidate status 'open'; use one of new, "):
        queue.list_candidates(session, status="open")


def test_decisions_are_appended_and_never_overwritten(session: Session) -> None:
    ids = _queue_three(session)
    cid = ids["may3"]

    first = queue.record_decision(session, cid, "accept", note="clear account", by="amira")
    second = queue.record_decision(session, cid, "Reject", note="he is a returnee", by="ben")
    third = queue.record_decision(session, cid, "duplicate", by="amira")

    assert [(d.decision, d.status, d.note, d.decided_by) for d in (first, second, third)] == [
        ("accept", "accepted", "clear account", "amira"),
        ("reject", "rejected", "he is a returnee", "ben"),
        ("duplicate", "duplicate", None, "amira"),
    ]
    assert first.decided_at <= second.decided_at <= third.decided_at
    stored = session.execute(
        select(Decision.id, Decision.decision, Decision.note).order_by(Decision.id)
    ).all()
    assert [tuple(r) for r in stored] == [
        (first.id, "accept", "clear account"),
        (second.id, "reject", "he is a returnee"),
        (third.id, "duplicate", None),
    ]
    detail = queue.get_candidate(session, cid)
    assert detail is not None
    assert detail.status == "duplicate"
    assert detail.decisions == (first, second, third)
    assert queue.candidate_counts(session) == {
        "new": 2, "accepted": 0, "rejected": 0, "duplicate": 1, "needs_translation": 0,
        "unflagged": 0,
    }


def test_invalid_decisions_and_unknown_candidates_are_clear_errors(session: Session) -> None:
    ids = _queue_three(session)
    with pytest.raises(
        DecisionError,
        match=r"invalid decision 'maybe' for candidate \d+; use one of: accept, reject, duplicate, translate",
    ):
        queue.record_decision(session, ids["may3"], "maybe")
    with pytest.raises(DecisionError, match=r"no candidate with id 999"):
        queue.record_decision(session, 999, "accept")
    assert session.scalars(select(Decision)).all() == []
    assert session.get_one(Candidate, ids["may3"]).status == "new"


def test_get_candidate_shows_text_verdict_provenance_and_dates(session: Session) -> None:
    url = "https://example.org/report"
    page = make_page(url, author="A. Reporter", run_id=None)
    outcome = queue.record_page(session, page)
    assert outcome.candidate_id is not None

    detail = queue.get_candidate(session, outcome.candidate_id)

    assert detail is not None
    assert (detail.url, detail.title, detail.author, detail.lang, detail.score) == (
        url, f"Title of {url}", "A. Reporter", "en", 0.8
    )
    assert detail.text == f"Body of {url}: he defected from the Islamic State."
    assert detail.published == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert detail.fetched_at == FETCHED
    assert detail.verdict == verdict(0.8)
    assert detail.verdict["matches"][0]["term"] == "defected"
    assert detail.provenance == page.provenance.to_dict()
    assert detail.decisions == ()
    assert detail.duplicates == ()
    assert [m.document_id for m in detail.story] == [outcome.document_id]
    assert queue.get_candidate(session, 12345) is None


def test_export_rows_are_flat_and_carry_every_provenance_field(session: Session) -> None:
    run_id = queue.start_run(session, sources=["example-news"])
    url = "https://example.org/exported"
    queue.record_page(session, make_page(url, run_id=run_id, channel="sitemap"))
    queue.record_decision(session, 1, "accept", note="keep", by="amira")

    [row] = list(queue.iter_export(session))

    provenance_fields = {f.name for f in dataclasses.fields(Provenance)} - {"archive"}
    archive_fields = {"archive_path", "archive_offset", "archive_length", "archive_record_id"}
    assert provenance_fields | archive_fields <= set(row)
    assert {key: row[key] for key in sorted(provenance_fields | archive_fields)} == {
        "archive_length": 2000,
        "archive_offset": 100,
        "archive_path": "dwatch-x.warc.gz",
        "archive_record_id": f"<urn:uuid:{url}>",
        "body_sha256": "b" * 64,
        "canonical_url": url,
        "channel": "sitemap",
        "discovered_from": "https://example.org/feed.xml",
        "entry_id": f"guid:{url}",
        "entry_published": "2024-05-02T08:30:00+00:00",
        "entry_title": f"Entry {url}",
        "extractor": "trafilatura",
        "extractor_version": "2.3.1",
        "fetched_at": "2024-05-02T08:30:00+00:00",
        "final_url": url,
        "http_status": 200,
        "method": None,
        "requested_url": url,
        "rules_version": "rules-1",
        "run_id": run_id,
        "source_id": "example-news",
    }
    assert (row["candidate_id"], row["status"], row["decision"], row["decision_note"]) == (
        1, "accepted", "accept", "keep"
    )
    assert (row["matched_terms"], row["narratives"], row["published"]) == (
        "defected", "disillusionment", "2024-05-01T12:00:00+00:00"
    )
    assert all(not isinstance(v, (dict, list, datetime)) for v in row.values())
    json.dumps(row)  # JSON-lines ready
    assert "text" not in row
    [with_text] = list(queue.iter_export(session, include_text=True))
    assert with_text["text"] == f"Body of {url}: he defected from the Islamic State."
    assert list(queue.iter_export(session, status="new")) == []


def test_runs_are_opened_finished_and_listed_with_per_source_counts(session: Session) -> None:
    first = queue.start_run(session, sources=["a", "b"])
    second = queue.start_run(session, kind="backfill", sources=["a"])
    stats = {
        "a": SourceRunStats(discovered=10, fetched=8, already_seen=2, extracted=7, flagged=1,
                            errors=1, first_error="https://a.example/x: HTTP 500"),
        "b": SourceRunStats(discovered=3, fetched=3, extracted=3),
    }

    queue.finish_run(session, first, per_source=stats, status="partial")

    assert queue.run_stats(session, first) == stats
    newest, oldest = queue.latest_runs(session, limit=5)
    assert (newest.id, newest.kind, newest.status, newest.finished_at, newest.sources) == (
        second, "backfill", "running", None, ("a",)
    )
    assert (oldest.id, oldest.status, oldest.sources, oldest.per_source) == (
        first, "partial", ("a", "b"), stats
    )
    assert oldest.finished_at is not None and oldest.finished_at >= oldest.started_at
    assert [run.id for run in queue.latest_runs(session, limit=1)] == [second]
    with pytest.raises(StoreError, match="no crawl run with id 77"):
        queue.finish_run(session, 77, per_source={}, status="ok")
