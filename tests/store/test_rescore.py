"""Re-scoring archived pages: which documents come back, and how a new analysis lands."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from store import StoreError, queue
from store.models import Candidate, Decision, Document, MinhashBand
from store.records import ArchiveRef, PageRecord, RecordOutcome
from tests.store.pages import bands, make_page, signature, verdict

URL = "https://example.org/rescored"


def _unflagged(url: str, **overrides: Any) -> PageRecord:
    return make_page(url, flagged=False, score=0.1, verdict=verdict(0.1, flagged=False),
                     **overrides)


def test_only_archived_documents_are_offered_for_rescoring(session: Session) -> None:
    queue.record_page(session, make_page(URL))
    queue.record_page(session, _unflagged("https://example.org/plain"))
    queue.record_page(
        session,
        make_page("https://example.org/failed", outcome="failed", reason="fetch_error",
                  http_status=None, archive=None),
    )

    items = list(queue.iter_documents_for_rescore(session, batch_size=1))

    assert [(i.document_id, i.candidate_id, i.candidate_status) for i in items] == [
        (1, 1, "new"), (2, None, None)
    ]
    assert items[0].archive == ArchiveRef("dwatch-x.warc.gz", 100, 2000, f"<urn:uuid:{URL}>")
    assert items[0].provenance == make_page(URL).provenance


def test_a_page_newly_flagged_by_new_rules_is_queued(session: Session) -> None:
    queue.record_page(session, _unflagged(URL))
    sig = signature(3)

    outcome = queue.update_analysis(
        session, 1, make_page(URL, minhash=sig, score=0.7, verdict=verdict(0.7),
                              rules_version="rules-2"),
    )

    assert outcome == RecordOutcome(document_id=1, created=False, candidate_id=1, story_id=1)
    document = session.get_one(Document, 1)
    assert (document.flagged, document.score, document.rules_version) == (True, 0.7, "rules-2")
    [candidate] = session.scalars(select(Candidate)).all()
    assert (candidate.document_id, candidate.status, candidate.score) == (1, "new", 0.7)
    assert sorted(session.scalars(select(MinhashBand.band_key))) == sorted(bands(sig))


def test_a_new_candidate_no_longer_flagged_becomes_unflagged_and_can_come_back(
    session: Session,
) -> None:
    queue.record_page(session, make_page(URL))

    dropped = queue.update_analysis(session, 1, _unflagged(URL))

    assert dropped.candidate_id == 1
    candidate = session.get_one(Candidate, 1)
    assert (candidate.status, candidate.score) == ("unflagged", 0.1)
    assert [r.id for r in queue.list_candidates(session, status="new")] == []

    queue.update_analysis(session, 1, make_page(URL, score=0.9, verdict=verdict(0.9)))

    assert (session.get_one(Candidate, 1).status, session.get_one(Candidate, 1).score) == (
        "new", 0.9
    )


def test_decided_candidates_keep_their_status_and_history(session: Session) -> None:
    queue.record_page(session, make_page(URL))
    queue.record_decision(session, 1, "accept", note="solid", by="amira")

    queue.update_analysis(session, 1, _unflagged(URL, title="Retitled"))

    candidate = session.get_one(Candidate, 1)
    assert (candidate.status, candidate.score, candidate.title) == ("accepted", 0.1, "Retitled")
    decisions = session.execute(select(Decision.decision, Decision.note)).all()
    assert [tuple(d) for d in decisions] == [("accept", "solid")]
    assert session.get_one(Document, 1).verdict == verdict(0.1, flagged=False)


def test_a_newly_flagged_verbatim_copy_is_linked_to_the_queued_original(
    session: Session,
) -> None:
    text = "The same account, syndicated."
    queue.record_page(session, make_page(URL, text=text))
    copy = "https://mirror.example/copy"
    queue.record_page(session, _unflagged(copy, text="not yet extracted well"))

    outcome = queue.update_analysis(session, 2, make_page(copy, text=text))

    assert outcome == RecordOutcome(
        document_id=2, created=False, candidate_id=None, duplicate_of=1, story_id=1
    )
    assert session.get_one(Document, 2).duplicate_of_document_id == 1
    assert len(session.scalars(select(Candidate)).all()) == 1


def test_updating_an_unknown_document_is_a_clear_error(session: Session) -> None:
    with pytest.raises(StoreError, match="no document with id 41 to update"):
        queue.update_analysis(session, 41, make_page(URL))
