"""Several processes writing one store at once (the scale-out case): nothing twice, nothing lost,
near-copies still gathered into one story, every feed poll counted.

Four writer processes start together; for each of GROUPS stories, writer ``w`` stores its own
near-copy (the story's text with ``w`` of its 16 MinHash bands altered) and then a verbatim copy
of the story's first text under its own URL. On PostgreSQL the writers' transactions overlap
(on SQLite one writer at a time holds the lock), so two near-copies queued at the same moment
must still find each other. The same writers then record polls of the same feeds at once.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier

from sqlalchemy import select

from store import make_engine, make_session_factory, queue
from store.feed_state import record_poll
from store.models import Candidate, Document, FeedState, Story
from tests.store.pages import make_page, signature

WRITERS = 4
GROUPS = 40
DAY0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def _near_copy(group: int, writer: int) -> tuple[str, tuple[int, ...]]:
    text = f"Story {group}, as told to outlet {writer}: he defected from the Islamic State."
    return text, signature(0, same_as=signature(group + 1), changed=4 * writer)


def _write(url: str, writer: int, start: Barrier) -> None:
    """One writer process: its near-copy and its verbatim copy of every group, in group order."""
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            start.wait(timeout=60)
            for group in range(GROUPS):
                text, sig = _near_copy(group, writer)
                queue.record_page(session, make_page(
                    f"https://outlet{writer}.example/{group}", text=text, minhash=sig,
                    published=DAY0 + timedelta(days=writer)))
                original, original_sig = _near_copy(group, 0)
                queue.record_page(session, make_page(
                    f"https://outlet{writer}.example/{group}/syndicated", text=original,
                    minhash=original_sig, published=DAY0 + timedelta(days=10 + writer)))
    finally:
        engine.dispose()


def _poll(url: str, writer: int, start: Barrier) -> None:
    """One writer process: a poll of each feed (the first one of each is 'changed')."""
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine)
        start.wait(timeout=60)
        for feed in range(GROUPS):
            with factory() as session:
                record_poll(session, source_id="wire", url=f"https://wire.example/feed{feed}.xml",
                            outcome="changed", kind="feed", body_sha256=f"{writer:064x}",
                            min_minutes=10, max_minutes=720)
    finally:
        engine.dispose()


def _run_writers(url: str, target: Callable[[str, int, Barrier], None] = _write) -> None:
    context = multiprocessing.get_context("fork")
    start = context.Barrier(WRITERS)
    writers = [context.Process(target=target, args=(url, w, start)) for w in range(WRITERS)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=240)
    assert [p.exitcode for p in writers] == [0] * WRITERS, "a writer process failed (see its traceback)"


def _group_of(canonical_url: str) -> int:
    return int(canonical_url.split("/")[3])


def test_four_writers_at_once_store_every_page_once_and_keep_each_story_whole(migrated_url: str) -> None:
    _run_writers(migrated_url)

    engine = make_engine(migrated_url)
    try:
        with make_session_factory(engine)() as session:
            documents = session.execute(select(
                Document.id, Document.canonical_url, Document.text_sha256, Document.published,
                Document.duplicate_of_document_id)).all()
            candidates = session.execute(select(
                Candidate.id, Candidate.document_id, Candidate.story_id)).all()
            stories = {story_id: first for story_id, first in session.execute(
                select(Story.id, Story.first_document_id))}
    finally:
        engine.dispose()

    # every page stored once: 2 per writer and group
    assert len(documents) == len({d.canonical_url for d in documents}) == 2 * WRITERS * GROUPS
    by_id = {d.id: d for d in documents}
    # per group: one candidate per distinct text (the four near-copies); the other four pages
    # with the first text are verbatim copies linked to the one of them that was queued
    per_group: dict[int, list[int]] = defaultdict(list)
    for candidate in candidates:
        per_group[_group_of(by_id[candidate.document_id].canonical_url)].append(candidate.id)
    assert Counter(len(ids) for ids in per_group.values()) == {WRITERS: GROUPS}
    queued_docs = {c.document_id for c in candidates}
    for document in documents:
        if document.id in queued_docs:
            assert document.duplicate_of_document_id is None
            continue
        original = by_id[document.duplicate_of_document_id]
        assert original.id in queued_docs and original.text_sha256 == document.text_sha256
        assert _group_of(original.canonical_url) == _group_of(document.canonical_url)

    # near-copies written at the same moment still share one story per group
    story_of_group: dict[int, set[int | None]] = defaultdict(set)
    for candidate in candidates:
        story_of_group[_group_of(by_id[candidate.document_id].canonical_url)].add(candidate.story_id)
    split = {group: sorted(s or 0 for s in ids) for group, ids in story_of_group.items() if len(ids) != 1}
    assert split == {}, f"{len(split)} of {GROUPS} stories were split: {split}"
    assert len(stories) == GROUPS
    # and each story starts with its earliest published page
    for candidate in candidates:
        members = [by_id[c.document_id] for c in candidates if c.story_id == candidate.story_id]
        earliest = min(members, key=lambda d: (d.published, d.id))
        assert by_id[stories[candidate.story_id]].published == earliest.published


def test_polls_of_one_feed_by_four_writers_at_once_make_one_row_and_all_count(migrated_url: str) -> None:
    _run_writers(migrated_url, _poll)

    engine = make_engine(migrated_url)
    try:
        with make_session_factory(engine)() as session:
            rows = session.execute(select(FeedState.url, FeedState.polls, FeedState.changes,
                                          FeedState.interval_minutes)).all()
    finally:
        engine.dispose()
    assert len(rows) == len({r.url for r in rows}) == GROUPS
    # four changed polls each: the interval started at the minimum and stayed there
    assert {(r.polls, r.changes, r.interval_minutes) for r in rows} == {(WRITERS, WRITERS, 10.0)}
