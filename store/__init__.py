"""The store: the only package that knows SQL (and where the raw responses are archived).

Build the engine and sessions in the entry point and pass them down::

    upgrade_database(url)
    session_factory = make_session_factory(make_engine(url))
    with session_factory() as session:
        outcome = queue.record_page(session, page_record)
"""

from __future__ import annotations

from store import queue
from store.archive import WarcArchive, iter_records
from store.engine import (
    current_revision,
    downgrade_database,
    head_revision,
    is_up_to_date,
    make_engine,
    make_session_factory,
    open_session,
    upgrade_database,
)
from store.errors import ArchiveError, DecisionError, StoreError
from store.records import (
    ArchivedResponse,
    ArchiveRef,
    CandidateDetail,
    CandidateRow,
    DecisionRow,
    DocumentSummary,
    FetchRecord,
    PageRecord,
    Provenance,
    RecordOutcome,
    RescoreItem,
    RunRow,
    SourceRunStats,
)

__all__ = [
    "ArchiveError",
    "ArchiveRef",
    "ArchivedResponse",
    "CandidateDetail",
    "CandidateRow",
    "DecisionError",
    "DecisionRow",
    "DocumentSummary",
    "FetchRecord",
    "PageRecord",
    "Provenance",
    "RecordOutcome",
    "RescoreItem",
    "RunRow",
    "SourceRunStats",
    "StoreError",
    "WarcArchive",
    "current_revision",
    "downgrade_database",
    "head_revision",
    "is_up_to_date",
    "iter_records",
    "make_engine",
    "make_session_factory",
    "open_session",
    "queue",
    "upgrade_database",
]
