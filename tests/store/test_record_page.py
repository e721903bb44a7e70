"""record_page: the exact rows one fetched page leaves behind, and idempotence."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from store import StoreError, make_session_factory, queue
from store import ingest as ingest_module
from store.models import Candidate, Document, MinhashBand, Story
from store.records import ArchiveRef, RecordOutcome
from tests.store.pages import FETCHED, bands, make_page, sha256_hex, signature, verdict

A_URL = "https://news.example.org/2024/05/01/he-left-the-caliphate"


def _count(session: Session, model: type[object]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _candidates(session: Session) -> list[tuple[object, ...]]:
    return [
        tuple(row)
        for row in session.execute(
            select(
                Candidate.id, Candidate.document_id, Candidate.status, Candidate.story_id,
                Candidate.score, Candidate.lang, Candidate.title, Candidate.source_id,
            ).order_by(Candidate.id)
        )
    ]


def test_a_flagged_page_is_stored_and_queued_with_its_whole_provenance(
    session: Session,
) -> None:
    sig = signature(1)
    page = make_page(A_URL, minhash=sig, requested_url=A_URL + "?utm_source=feed")

    outcome = queue.record_page(session, page)

    assert outcome == RecordOutcome(
        document_id=1, created=True, candidate_id=1, duplicate_of=None, story_id=1
    )
    document = session.get_one(Document, 1)
    assert (
        document.canonical_url, document.requested_url, document.final_url,
        document.http_status, document.outcome, document.reason, document.flagged,
    ) == (A_URL, A_URL + "?utm_source=feed", A_URL, 200, "extracted", None, True)
    assert (document.title, document.sitename, document.lang, document.score) == (
        f"Title of {A_URL}", "Example News", "en", 0.8,
    )
    assert document.text == f"Body of {A_URL}: he defected from the Islamic State."
    assert document.text_sha256 == sha256_hex(document.text)
    assert document.published == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert document.minhash == list(sig)
    assert document.verdict == verdict(0.8)
    assert document.narratives == ["disillusionment"]
    assert (document.rules_version, document.extractor, document.extractor_version) == (
        "rules-1", "trafilatura", "2.3.1",
    )
    assert (
        document.source_id, document.channel, document.discovered_from, document.entry_id,
        document.entry_title, document.entry_published, document.fetched_at,
        document.body_sha256,
    ) == (
        "example-news", "feed", "https://example.org/feed.xml", f"guid:{A_URL}",
        f"Entry {A_URL}", FETCHED, FETCHED, "b" * 64,
    )
    assert (
        document.archive_path, document.archive_offset, document.archive_length,
        document.archive_record_id,
    ) == ("dwatch-x.warc.gz", 100, 2000, f"<urn:uuid:{A_URL}>")
    assert (document.duplicate_of_document_id, document.story_id) == (None, 1)

    assert _candidates(session) == [
        (1, 1, "new", 1, 0.8, "en", f"Title of {A_URL}", "example-news")
    ]
    assert session.get_one(Story, 1).first_document_id == 1
    stored_bands = session.scalars(
        select(MinhashBand.band_key).where(MinhashBand.document_id == 1).order_by(
            MinhashBand.band_key)
    ).all()
    assert stored_bands == sorted(bands(sig))


def test_recording_the_same_url_twice_is_one_document(session: Session) -> None:
    first = queue.record_page(session, make_page(A_URL))
    again = queue.record_page(session, make_page(A_URL, title="A later title"))

    assert first.created and not again.created
    assert again == RecordOutcome(
        document_id=first.document_id, created=False, candidate_id=first.candidate_id,
        duplicate_of=None, story_id=first.story_id,
    )
    assert (_count(session, Document), _count(session, Candidate), _count(session, Story)) == (
        1, 1, 1,
    )
    assert _count(session, MinhashBand) == 16
    assert session.get_one(Document, 1).title == f"Title of {A_URL}"


def test_an_unflagged_page_is_stored_but_not_queued(session: Session) -> None:
    page = make_page(A_URL, flagged=False, score=0.12, verdict=verdict(0.12, flagged=False))

    outcome = queue.record_page(session, page)

    assert outcome == RecordOutcome(document_id=1, created=True, candidate_id=None)
    document = session.get_one(Document, 1)
    assert (document.outcome, document.flagged, document.score, document.story_id) == (
        "extracted", False, 0.12, None,
    )
    assert _count(session, Candidate) == 0
    assert _count(session, Story) == 0
    assert _count(session, MinhashBand) == 16  # kept: a later flagged copy may match it
    assert queue.known_urls(session, [A_URL, "https://other.example/x"]) == {A_URL}


def test_a_verbatim_copy_at_another_url_is_linked_not_queued_twice(session: Session) -> None:
    text = "He said he defected after seeing the executions in Raqqa."
    original = queue.record_page(session, make_page(A_URL, text=text))
    copy_url = "https://mirror.example.net/copy-of-the-story"

    copy = queue.record_page(
        session, make_page(copy_url, text=text, source_id="mirror", title="Mirrored")
    )

    assert copy == RecordOutcome(
        document_id=2, created=True, candidate_id=None, duplicate_of=original.candidate_id,
        story_id=original.story_id,
    )
    assert session.get_one(Document, 2).duplicate_of_document_id == original.document_id
    assert session.get_one(Document, 2).story_id is None
    assert [row[:3] for row in _candidates(session)] == [(1, 1, "new")]
    [row] = queue.list_candidates(session)
    assert (row.id, row.duplicate_count, row.story_size) == (1, 1, 1)
    detail = queue.get_candidate(session, 1)
    assert detail is not None
    assert [(d.document_id, d.url, d.source_id) for d in detail.duplicates] == [
        (2, copy_url, "mirror")
    ]
    # recording the copy again returns the same link
    assert queue.record_page(session, make_page(copy_url, text=text)).duplicate_of == 1


def test_a_near_copy_joins_the_story_and_both_are_queued_earliest_first(
    session: Session,
) -> None:
    sig = signature(5)
    near_sig = signature(5, same_as=sig, changed=20)  # 44 of 64 values equal: 0.69
    later = queue.record_page(
        session,
        make_page(A_URL, minhash=sig, published=datetime(2024, 5, 3, 9, tzinfo=UTC)),
    )
    earlier_url = "https://wire.example.com/original-report"
    earlier = queue.record_page(
        session,
        make_page(
            earlier_url, minhash=near_sig, text="Slightly edited wire copy of the account.",
            published=datetime(2024, 5, 2, 18, tzinfo=UTC), source_id="wire",
        ),
    )

    assert earlier == RecordOutcome(
        document_id=2, created=True, candidate_id=2, duplicate_of=None, story_id=later.story_id
    )
    assert _count(session, Story) == 1
    assert session.get_one(Story, 1).first_document_id == 2
    assert [(c[0], c[2], c[3]) for c in _candidates(session)] == [(1, "new", 1), (2, "new", 1)]
    detail = queue.get_candidate(session, 1)
    assert detail is not None
    assert [(m.candidate_id, m.url, m.published) for m in detail.story] == [
        (2, earlier_url, datetime(2024, 5, 2, 18, tzinfo=UTC)),
        (1, A_URL, datetime(2024, 5, 3, 9, tzinfo=UTC)),
    ]
    assert {row.id: row.story_size for row in queue.list_candidates(session)} == {1: 2, 2: 2}


def test_a_shared_band_below_the_similarity_threshold_is_another_story(
    session: Session,
) -> None:
    sig = signature(7)
    far_sig = signature(7, same_as=sig, changed=32)  # half the values equal: 0.5
    assert set(bands(sig)) & set(bands(far_sig))  # they do share band keys
    queue.record_page(session, make_page(A_URL, minhash=sig))

    other = queue.record_page(
        session, make_page("https://b.example/x", minhash=far_sig, text="Another account.")
    )

    assert (other.candidate_id, other.story_id) == (2, 2)
    assert _count(session, Story) == 2


def test_a_failed_page_is_recorded_with_its_reason_and_never_queued(session: Session) -> None:
    url = "https://news.example.org/gone"
    page = make_page(
        url, outcome="failed", reason="http_error", detail="HTTP 404 Not Found",
        http_status=404, archive=None, body_sha256=None,
    )

    outcome = queue.record_page(session, page)

    assert outcome == RecordOutcome(document_id=1, created=True, candidate_id=None)
    document = session.get_one(Document, 1)
    assert (
        document.outcome, document.reason, document.detail, document.http_status,
        document.flagged, document.text, document.archive_path, document.extractor,
    ) == ("failed", "http_error", "HTTP 404 Not Found", 404, False, None, None, None)
    assert (_count(session, Candidate), _count(session, MinhashBand)) == (0, 0)
    assert queue.known_urls(session, [url]) == {url}


def test_transient_failures_are_fetched_again_and_replaced_by_the_new_attempt(
    session: Session,
) -> None:
    def failed(url: str, reason: str, status: int | None) -> None:
        queue.record_page(session, make_page(
            url, outcome="failed", reason=reason, http_status=status, archive=None,
            detail=f"{reason} {status}",
        ))

    failed("https://a.example/timeout", "fetch_error", None)
    failed("https://a.example/busy", "http_error", 503)
    failed("https://a.example/slow-down", "http_error", 429)
    failed("https://a.example/gone", "http_error", 404)

    assert queue.known_urls(session, [
        "https://a.example/timeout", "https://a.example/busy", "https://a.example/slow-down",
        "https://a.example/gone",
    ]) == {"https://a.example/gone"}

    retried = queue.record_page(session, make_page("https://a.example/timeout", run_id=None))

    assert retried == RecordOutcome(
        document_id=1, created=False, candidate_id=1, duplicate_of=None, story_id=1
    )
    document = session.get_one(Document, 1)
    assert (document.outcome, document.reason, document.detail, document.http_status) == (
        "extracted", None, None, 200
    )
    assert document.archive_path == "dwatch-x.warc.gz"
    assert _count(session, Document) == 4
    assert _count(session, MinhashBand) == 16
    assert "https://a.example/timeout" in queue.known_urls(session, ["https://a.example/timeout"])
    # once stored, it stays: a later failure does not replace a good page
    again = queue.record_page(session, make_page(
        "https://a.example/timeout", outcome="failed", reason="fetch_error", archive=None))
    assert (again.created, again.candidate_id) == (False, 1)
    assert session.get_one(Document, 1).outcome == "extracted"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"fetched_at": datetime(2024, 5, 1)},
            r"provenance.fetched_at = 2024-05-01T00:00:00 has no time zone",
        ),
        ({"published": datetime(2024, 5, 1)}, r"published = 2024-05-01T00:00:00 has no time zone"),
        ({"outcome": "maybe"}, r"outcome 'maybe' is not one of extracted, skipped, failed"),
        ({"canonical_url": ""}, r"canonical_url is empty"),
    ],
)
def test_bad_records_are_refused_with_a_clear_error_and_nothing_is_written(
    session: Session, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        queue.record_page(session, make_page(A_URL, **overrides))
    assert _count(session, Document) == 0


def test_a_database_refusal_is_a_store_error_naming_the_page(session: Session) -> None:
    """run_id 999 does not exist: the foreign key refuses it and the transaction is undone."""
    with pytest.raises(StoreError, match=rf"could not store page {A_URL} \(source example-news\)"):
        queue.record_page(session, make_page(A_URL, run_id=999))
    assert _count(session, Document) == 0
    assert queue.record_page(session, make_page(A_URL)).created  # the session is usable


def test_the_unique_text_claim_holds_when_the_duplicate_check_misses_a_race(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer queued the same text between our check and our insert."""
    text = "The same wire story, published twice."
    queue.record_page(session, make_page(A_URL, text=text))
    real = ingest_module._queued_copy_of
    calls: list[int] = []

    def blind_first_time(s: Session, document: Document) -> Candidate | None:
        calls.append(document.id)
        return None if len(calls) == 1 else real(s, document)

    monkeypatch.setattr(ingest_module, "_queued_copy_of", blind_first_time)
    outcome = queue.record_page(session, make_page("https://b.example/same", text=text))

    assert outcome == RecordOutcome(
        document_id=2, created=True, candidate_id=None, duplicate_of=1, story_id=1
    )
    assert len(calls) == 2
    assert (_count(session, Candidate), _count(session, Story)) == (1, 1)


def test_concurrent_writers_store_each_url_and_each_text_once(engine: Engine) -> None:
    factory = make_session_factory(engine)
    urls = [f"https://example.org/a/{i}" for i in range(6)]
    errors: list[BaseException] = []

    def crawl(worker: int) -> None:
        try:
            with factory() as session:
                for i, url in enumerate(urls):
                    # every worker records every URL; URLs 0-2 and 3-5 share one text each
                    page = make_page(
                        url, text=f"Shared text {i // 3}",
                        archive=ArchiveRef(f"w{worker}.warc.gz", i, 10, f"<r{worker}-{i}>"),
                    )
                    queue.record_page(session, page)
        except BaseException as exc:  # surfaced in the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=crawl, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with factory() as session:
        assert _count(session, Document) == 6
        assert _count(session, Candidate) == 2
        linked = session.scalar(
            select(func.count()).where(Document.duplicate_of_document_id.is_not(None))
        )
        assert linked == 4
