"""Queue indexes: the queue's date (publication, else queueing) alone and after each equality filter.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

The queue's date order and published-date ranges use ``coalesce(published, queued_at)``
(store/query.py ``when_column``), which no index served: every "all dates" listing, deep page,
published-date range and `dwatch queue` sorted or scanned the whole candidates table (1.0 s
for the first page of 240,000 candidates on SQLite; figures in bench/README.md). Indexes on
that expression, alone and after status, lang, channel and source_id, let the database read a
page in order and stop. The single-column indexes on lang, channel and source_id stay: the
queue's facets (SELECT DISTINCT of each column) read them faster than the wider new ones.

SQLite cannot reflect expression-based indexes (SQLAlchemy warns and skips them), so a later
migration that rebuilds the candidates table in batch mode on SQLite must create these again.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUE_DATE = "coalesce(published, queued_at)"
# index name -> the equality column before the queue's date (None: the date alone)
INDEXES = {
    "ix_candidates_pub_or_queued": None,
    "ix_candidates_status_pub_or_queued": "status",
    "ix_candidates_lang_pub_or_queued": "lang",
    "ix_candidates_channel_pub_or_queued": "channel",
    "ix_candidates_source_id_pub_or_queued": "source_id",
}


def upgrade() -> None:
    for name, column in INDEXES.items():
        columns: list[str | sa.TextClause] = [] if column is None else [column]
        op.create_index(name, "candidates", [*columns, sa.text(QUEUE_DATE)])


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="candidates")
