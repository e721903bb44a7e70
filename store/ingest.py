"""Writing fetched pages into the store: documents, near-copy bands, stories and candidates.

Public through ``store.queue`` (``record_page``, ``update_analysis``, ``known_urls``); this
module holds the write side so that ``queue.py`` stays readable.

Concurrency: several crawl processes may write at once (PostgreSQL, or SQLite in WAL mode).
Every insert that could race is an ``INSERT ... ON CONFLICT DO NOTHING`` against a unique
constraint (documents.canonical_url, candidates.document_id, candidates.text_sha256,
minhash_bands' primary key), and the loser reads the winner's row. Look-ups before an insert
are only shortcuts; the constraints decide. What no constraint can decide, that two near-copies
belong to one story, is serialised on PostgreSQL by advisory locks on the page's text hash and
band keys (``_wait_for_lookalikes``); SQLite has one writer at a time.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Insert, and_, delete, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from store.errors import StoreError
from store.models import (
    DOCUMENT_OUTCOMES,
    Candidate,
    CandidateNarrative,
    Document,
    MinhashBand,
    Story,
    utcnow,
)
from store.records import PageRecord, RecordOutcome

__all__ = ["NEAR_COPY_THRESHOLD", "known_urls", "record_page", "similarity", "update_analysis"]

logger = logging.getLogger(__name__)

NEAR_COPY_THRESHOLD = 0.6     # share of equal MinHash values that makes two texts one story
NEAR_COPY_MAX_PROBES = 200    # documents sharing a band key that are compared, at most
RETRYABLE_STATUSES = (408, 429)    # with 5xx and network errors: failures worth a new fetch
_CHUNK = 500


@dataclass(frozen=True)
class _Queued:
    candidate_id: int | None
    duplicate_of: int | None
    story_id: int | None


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard similarity of two MinHash signatures: the share of equal values."""
    if not a or len(a) != len(b):
        return 0.0
    return sum(1 for x, y in zip(a, b, strict=True) if x == y) / len(a)


def known_urls(session: Session, canonical_urls: Iterable[str]) -> set[str]:
    """The canonical URLs among ``canonical_urls`` that need no new fetch.

    Every stored URL counts, except pages whose fetch failed for a reason that may pass
    (network errors, HTTP 408, 429 and 5xx): those are fetched again by the next crawl, and
    ``record_page`` then replaces the failure with what it finds.
    """
    wanted = list(dict.fromkeys(canonical_urls))
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        found.update(
            session.scalars(
                select(Document.canonical_url).where(
                    Document.canonical_url.in_(chunk), ~_retryable_failure()
                )
            )
        )
    return found


def _retryable_failure() -> ColumnElement[bool]:
    return and_(
        Document.outcome == "failed",
        or_(
            Document.reason == "fetch_error",
            Document.http_status.in_(RETRYABLE_STATUSES),
            Document.http_status >= 500,
        ),
    )


def record_page(session: Session, record: PageRecord) -> RecordOutcome:
    """Store one fetched (or failed) page in one transaction, and queue it when flagged.

    Idempotent: a canonical URL already stored is left as it is (``created=False``, the
    existing ids returned), except a page whose earlier fetch failed: the new attempt replaces
    it (``created=False`` too). For a new flagged, extracted page: a verbatim copy (same
    ``text_sha256``) of a queued page is linked to it (``duplicate_of`` = that candidate) and
    not queued; a near-copy (shared MinHash band, similarity >= 0.6) is queued in the same
    story; anything else is queued in a new story of its own. Pages that are not flagged are
    stored (so they are not fetched again) but not queued. Commits; rolls back on error.
    """
    _check(record)
    with _transaction(session, record, "store"):
        return _record_page(session, record)


def update_analysis(session: Session, document_id: int, record: PageRecord) -> RecordOutcome:
    """Replace a stored document's analysis (text, language, verdict, score, bands) by a new one.

    Used to re-score archived pages with new rules or a new extractor. The fetch provenance is
    kept. A page newly flagged is queued (as ``record_page`` would); a candidate still ``new``
    that is no longer flagged becomes ``unflagged`` (and ``new`` again if flagged later);
    decided candidates keep their status and decision history, only their score, title and
    language follow the new analysis. Commits; rolls back on error.
    """
    _check(record)
    with _transaction(session, record, f"update document {document_id} with"):
        return _update_analysis(session, document_id, record)


@contextmanager
def _transaction(session: Session, record: PageRecord, action: str) -> Iterator[None]:
    """Commit on success; roll back on any error, database errors becoming ``StoreError``."""
    try:
        yield
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        page = record.provenance.final_url or record.provenance.canonical_url
        raise StoreError(
            f"could not {action} page {page} (source {record.provenance.source_id}): "
            f"{getattr(exc, 'orig', None) or exc}"
        ) from exc
    except BaseException:
        session.rollback()
        raise


# ---------------------------------------------------------------- record_page


def _record_page(session: Session, record: PageRecord) -> RecordOutcome:
    now = utcnow()
    values = {**_fetch_values(record), **_analysis_values(record), "created_at": now}
    document_id = _insert_ignore(session, Document, values, conflict=("canonical_url",))
    if document_id is None:
        existing = session.scalars(
            select(Document)
            .where(Document.canonical_url == record.provenance.canonical_url)
            .with_for_update()
        ).one()
        if existing.outcome != "failed" or _candidate_of(session, existing.id) is not None:
            return _existing_outcome(session, existing)
        # a new attempt at a page that failed before: it replaces the failure
        for key, value in {**_fetch_values(record), **_analysis_values(record)}.items():
            setattr(existing, key, value)
        session.execute(delete(MinhashBand).where(MinhashBand.document_id == existing.id))
        session.flush()
        document_id, created = existing.id, False
    else:
        created = True

    document = session.get_one(Document, document_id)
    _store_bands(session, document_id, record)
    queued = _Queued(None, None, None)
    if record.outcome == "extracted" and record.flagged:
        queued = _queue(session, document)
    return RecordOutcome(
        document_id=document_id,
        created=created,
        candidate_id=queued.candidate_id,
        duplicate_of=queued.duplicate_of,
        story_id=queued.story_id,
    )


def _existing_outcome(session: Session, document: Document) -> RecordOutcome:
    candidate = _candidate_of(session, document.id)
    duplicate_of = None
    story_id = candidate.story_id if candidate else None
    if document.duplicate_of_document_id is not None:
        original = _candidate_of(session, document.duplicate_of_document_id)
        if original is not None:
            duplicate_of, story_id = original.id, original.story_id
    return RecordOutcome(
        document_id=document.id,
        created=False,
        candidate_id=candidate.id if candidate else None,
        duplicate_of=duplicate_of,
        story_id=story_id,
    )


def _queue(session: Session, document: Document) -> _Queued:
    """Queue a flagged document: link it as a verbatim copy, or join/create its story."""
    _wait_for_lookalikes(session, document)
    original = _queued_copy_of(session, document)
    if original is not None:
        document.duplicate_of_document_id = original.document_id
        return _Queued(None, original.id, original.story_id)

    near = _near_copy(session, document)
    new_story: Story | None = None
    if near is not None and near.story_id is not None:
        story_id = near.story_id
    else:
        new_story = Story(first_document_id=document.id, created_at=utcnow())
        session.add(new_story)
        session.flush()
        story_id = new_story.id

    candidate_id = _insert_ignore(
        session,
        Candidate,
        {
            "document_id": document.id,
            "text_sha256": document.text_sha256,
            "status": "new",
            "score": document.score,
            "lang": document.lang,
            "title": document.title,
            "source_id": document.source_id,
            "channel": document.channel,
            "published": document.published,
            "queued_at": utcnow(),
            "story_id": story_id,
        },
        conflict=None,
    )
    if candidate_id is None:
        # lost a race: another writer queued this document or the same text meanwhile
        if new_story is not None:
            session.delete(new_story)
        session.flush()
        mine = _candidate_of(session, document.id)
        if mine is not None:
            return _Queued(mine.id, None, mine.story_id)
        original = _queued_copy_of(session, document)
        if original is None:  # pragma: no cover - only the text or document can conflict
            raise StoreError(f"could not queue document {document.id} ({document.final_url})")
        document.duplicate_of_document_id = original.document_id
        return _Queued(None, original.id, original.story_id)

    document.story_id = story_id
    if new_story is None:
        _maybe_first(session, story_id, document)
    _set_narratives(session, candidate_id, document.narratives)
    session.flush()
    return _Queued(candidate_id, None, story_id)


def _wait_for_lookalikes(session: Session, document: Document) -> None:
    """PostgreSQL: wait until no other open transaction is queueing a page that looks like this one.

    The look-ups that follow (a queued verbatim copy, a near-copy's story) cannot see a candidate
    another writer has inserted but not committed, and no unique constraint says "same story":
    two near-copies queued at the same moment would each open a story of their own. So each
    writer first takes transaction-scoped advisory locks on the page's text hash and MinHash band
    keys, in sorted order (no deadlock among writers); a writer sharing any of them waits for the
    other's commit, and its look-ups (READ COMMITTED: a new snapshot per statement) then see it.
    SQLite needs nothing: a write transaction there already excludes every other writer.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = {f"band:{key}" for key in session.scalars(
        select(MinhashBand.band_key).where(MinhashBand.document_id == document.id))}
    if document.text_sha256:
        keys.add(f"text:{document.text_sha256}")
    for lock_id in sorted({_advisory_lock_id(key) for key in keys}):
        session.execute(select(func.pg_advisory_xact_lock(lock_id)))


def _advisory_lock_id(key: str) -> int:
    """A signed 64-bit PostgreSQL advisory lock id for ``key`` (namespaced to the story lookup)."""
    digest = hashlib.sha256(f"dwatch-story:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _set_narratives(session: Session, candidate_id: int, tags: Sequence[Any] | None) -> None:
    """Make the candidate's rows in candidate_narratives equal the verdict's tags."""
    session.execute(
        delete(CandidateNarrative).where(CandidateNarrative.candidate_id == candidate_id)
    )
    for tag in dict.fromkeys(str(t)[:64] for t in tags or ()):
        session.add(CandidateNarrative(candidate_id=candidate_id, narrative=tag))


def _queued_copy_of(session: Session, document: Document) -> Candidate | None:
    if not document.text_sha256:
        return None
    return session.scalars(
        select(Candidate).where(
            Candidate.text_sha256 == document.text_sha256,
            Candidate.document_id != document.id,
        )
    ).first()


def _near_copy(session: Session, document: Document) -> Candidate | None:
    """The queued candidate most similar to ``document`` (>= threshold), earliest on ties."""
    signature = document.minhash or []
    if not signature:
        return None
    sharing = (
        select(MinhashBand.document_id)
        .join(Candidate, Candidate.document_id == MinhashBand.document_id)
        .where(
            MinhashBand.band_key.in_(
                select(MinhashBand.band_key).where(MinhashBand.document_id == document.id)
            ),
            MinhashBand.document_id != document.id,
        )
        .distinct()
        .limit(NEAR_COPY_MAX_PROBES)
    )
    rows = session.execute(
        select(Candidate, Document.minhash, Document.published, Document.fetched_at)
        .join(Document, Document.id == Candidate.document_id)
        .where(Document.id.in_(sharing))
    ).all()
    best: tuple[float, datetime, int] | None = None
    found: Candidate | None = None
    for candidate, minhash, published, fetched_at in rows:
        score = similarity(signature, minhash or [])
        if score < NEAR_COPY_THRESHOLD:
            continue
        key = (-score, published or fetched_at, candidate.id)
        if best is None or key < best:
            best, found = key, candidate
    return found


def _maybe_first(session: Session, story_id: int, document: Document) -> None:
    """Make ``document`` the story's first document if it was published (or fetched) earlier."""
    story = session.get_one(Story, story_id)
    first = session.get(Document, story.first_document_id) if story.first_document_id else None
    if first is None or _when(document) < _when(first):
        story.first_document_id = document.id


def _when(document: Document) -> datetime:
    return document.published or document.fetched_at


def _store_bands(session: Session, document_id: int, record: PageRecord) -> None:
    if record.outcome != "extracted" or not record.minhash_bands:
        return
    for key in dict.fromkeys(record.minhash_bands):
        _insert_ignore(
            session, MinhashBand, {"band_key": key, "document_id": document_id},
            conflict=("band_key", "document_id"), returning=False,
        )


def _candidate_of(session: Session, document_id: int) -> Candidate | None:
    return session.scalars(select(Candidate).where(Candidate.document_id == document_id)).first()


# ---------------------------------------------------------------- update_analysis


def _update_analysis(session: Session, document_id: int, record: PageRecord) -> RecordOutcome:
    document = session.get(Document, document_id)
    if document is None:
        raise StoreError(
            f"no document with id {document_id} to update; list re-scorable documents "
            "with store.queue.iter_documents_for_rescore"
        )
    for key, value in _analysis_values(record).items():
        setattr(document, key, value)
    session.execute(delete(MinhashBand).where(MinhashBand.document_id == document_id))
    _store_bands(session, document_id, record)
    flagged = record.outcome == "extracted" and record.flagged

    candidate = _candidate_of(session, document_id)
    if candidate is None:
        document.duplicate_of_document_id = None
        session.flush()
        queued = _queue(session, document) if flagged else _Queued(None, None, None)
        return RecordOutcome(
            document_id, False, queued.candidate_id, queued.duplicate_of, queued.story_id
        )

    candidate.score, candidate.lang = document.score, document.lang
    candidate.title, candidate.published = document.title, document.published
    _set_narratives(session, candidate.id, document.narratives)
    if candidate.text_sha256 != document.text_sha256:
        candidate.text_sha256 = None
        session.flush()
        original = _queued_copy_of(session, document)
        if original is None:
            candidate.text_sha256 = document.text_sha256
        else:  # the new text is a verbatim copy of another candidate's: keep both, linked
            document.duplicate_of_document_id = original.document_id
    if flagged and candidate.status == "unflagged":
        candidate.status = "new"
    elif not flagged and candidate.status == "new":
        candidate.status = "unflagged"
    session.flush()
    return RecordOutcome(document_id, False, candidate.id, None, candidate.story_id)


# ---------------------------------------------------------------- values and checks


def _fetch_values(record: PageRecord) -> dict[str, Any]:
    p = record.provenance
    archive = p.archive
    return {
        "canonical_url": p.canonical_url,
        "requested_url": p.requested_url,
        "final_url": p.final_url,
        "http_status": p.http_status,
        "source_id": p.source_id,
        "channel": p.channel,
        "method": p.method,
        "discovered_from": p.discovered_from,
        "entry_id": p.entry_id,
        "entry_title": p.entry_title,
        "entry_published": p.entry_published,
        "fetched_at": p.fetched_at,
        "body_sha256": p.body_sha256,
        "archive_path": archive.path if archive else None,
        "archive_offset": archive.offset if archive else None,
        "archive_length": archive.length if archive else None,
        "archive_record_id": archive.record_id if archive else None,
        "run_id": p.run_id,
    }


def _analysis_values(record: PageRecord) -> dict[str, Any]:
    p = record.provenance
    verdict = record.verdict
    rules_version = p.rules_version or (verdict or {}).get("rules_version")
    return {
        "outcome": record.outcome,
        "reason": record.reason,
        "detail": record.detail,
        "title": record.title,
        "author": record.author,
        "published": record.published,
        "sitename": record.sitename,
        "lang": record.lang,
        "text": record.text,
        "text_sha256": record.text_sha256,
        "minhash": list(record.minhash) or None,
        "flagged": bool(record.flagged),
        "score": record.score,
        "verdict": verdict,
        "narratives": list(record.narratives) or None,
        "rules_version": rules_version,
        "extractor": p.extractor,
        "extractor_version": p.extractor_version,
        "updated_at": utcnow(),
    }


def _check(record: PageRecord) -> None:
    p = record.provenance
    where = f"page {p.final_url or p.requested_url!r} (source {p.source_id!r})"
    if record.outcome not in DOCUMENT_OUTCOMES:
        raise StoreError(
            f"{where}: outcome {record.outcome!r} is not one of {', '.join(DOCUMENT_OUTCOMES)}"
        )
    if not p.canonical_url:
        raise StoreError(f"{where}: provenance.canonical_url is empty; canonicalise the URL first")
    for name, value in (
        ("provenance.fetched_at", p.fetched_at),
        ("provenance.entry_published", p.entry_published),
        ("published", record.published),
    ):
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise StoreError(
                f"{where}: {name} = {value.isoformat()} has no time zone; pass tz-aware UTC "
                "datetimes (value.replace(tzinfo=UTC) if it is known to be UTC)"
            )


def _insert_ignore(
    session: Session,
    model: type[Document] | type[Candidate] | type[MinhashBand],
    values: dict[str, Any],
    *,
    conflict: tuple[str, ...] | None,
    returning: bool = True,
) -> int | None:
    """Insert a row unless a unique constraint refuses it; the new id, or None if refused.

    ``conflict`` names the constraint's columns (None: any unique constraint). SQLite and
    PostgreSQL use ``ON CONFLICT DO NOTHING``; other databases a savepoint.
    """
    dialect = session.get_bind().dialect.name
    stmt: Insert
    if dialect in ("sqlite", "postgresql"):
        make_insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        stmt = make_insert(model).values(**values).on_conflict_do_nothing(
            index_elements=list(conflict) if conflict else None
        )
        if returning:
            stmt = stmt.returning(model.__table__.c.id)
            return session.execute(stmt).scalar_one_or_none()
        session.execute(stmt)
        return None
    try:
        with session.begin_nested():
            result = cast(CursorResult[Any], session.execute(insert(model).values(**values)))
    except IntegrityError:
        return None
    if not returning:
        return None
    key = result.inserted_primary_key
    return int(key[0]) if key is not None else None

