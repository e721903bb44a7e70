"""feed_state: per source and feed/sitemap URL, the validators, body hash and poll times.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Written from the `FeedState` model (autogenerate draft, then checked by hand). One row per
(source_id, url): what the last conditional poll found (ETag, Last-Modified, sha256 of the
last body parsed) and when the document is due again (adaptive interval, crawler/polling.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feed_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.String(length=100), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("body_sha256", sa.String(length=64), nullable=True),
        sa.Column("checked_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("changed_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("next_poll_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("interval_minutes", sa.Float(), nullable=False),
        sa.Column("polls", sa.Integer(), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_state")),
        sa.UniqueConstraint("source_id", "url", name=op.f("uq_feed_state_source_id_url")),
    )
    op.create_index(op.f("ix_feed_state_next_poll_at"), "feed_state", ["next_poll_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_feed_state_next_poll_at"), table_name="feed_state")
    op.drop_table("feed_state")
