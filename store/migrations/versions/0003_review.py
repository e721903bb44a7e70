"""Review workbench: 'needs_translation' status, candidates.channel, candidate_narratives.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

The web UI (issue 5) filters the queue by discovery channel and narrative and sorts it by
score; researchers can mark a candidate as needing translation. ``candidates.channel`` is
copied from ``documents.channel`` and ``candidate_narratives`` from ``documents.narratives``
(the verdict's tags) for the rows that exist, so an upgraded store filters like a new one.
SQLite rebuilds the candidates table (batch mode) to change its CHECK constraint.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "status IN ('new', 'accepted', 'rejected', 'duplicate', 'unflagged')"
NEW_STATUSES = (
    "status IN ('new', 'accepted', 'rejected', 'duplicate', 'needs_translation', 'unflagged')"
)
_BATCH = 1000


def upgrade() -> None:
    # 'needs_translation' is longer than the old String(16)
    with op.batch_alter_table("decisions") as batch:
        batch.alter_column("status", type_=sa.String(length=24), existing_nullable=False)
    with op.batch_alter_table("candidates") as batch:
        batch.alter_column("status", type_=sa.String(length=24), existing_nullable=False)
        batch.drop_constraint(op.f("ck_candidates_status"), type_="check")
        batch.create_check_constraint(op.f("ck_candidates_status"), NEW_STATUSES)
        batch.add_column(sa.Column("channel", sa.String(length=16), nullable=True))
        batch.create_index(op.f("ix_candidates_channel"), ["channel"])
        batch.create_index(op.f("ix_candidates_source_id"), ["source_id"])
        batch.create_index(op.f("ix_candidates_queued_at"), ["queued_at"])
        batch.create_index(op.f("ix_candidates_score"), ["score"])
    op.create_table(
        "candidate_narratives",
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("narrative", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["candidate_id"], ["candidates.id"],
            name=op.f("fk_candidate_narratives_candidate_id_candidates"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("candidate_id", "narrative", name=op.f("pk_candidate_narratives")),
    )
    op.create_index(
        op.f("ix_candidate_narratives_narrative"), "candidate_narratives", ["narrative"]
    )
    _backfill()


def _backfill() -> None:
    bind = op.get_bind()
    bind.execute(sa.text(
        "UPDATE candidates SET channel = "
        "(SELECT documents.channel FROM documents WHERE documents.id = candidates.document_id)"
    ))
    rows = bind.execute(sa.text(
        "SELECT candidates.id, documents.narratives FROM candidates "
        "JOIN documents ON documents.id = candidates.document_id "
        "WHERE documents.narratives IS NOT NULL"
    ))
    batch: list[dict[str, Any]] = []
    insert = sa.text(
        "INSERT INTO candidate_narratives (candidate_id, narrative) VALUES (:candidate_id, :narrative)"
    )
    for candidate_id, raw in rows.fetchall():
        tags = json.loads(raw) if isinstance(raw, str) else raw
        for tag in dict.fromkeys(str(t)[:64] for t in tags or ()):
            batch.append({"candidate_id": candidate_id, "narrative": tag})
        if len(batch) >= _BATCH:
            bind.execute(insert, batch)
            batch = []
    if batch:
        bind.execute(insert, batch)


def downgrade() -> None:
    op.drop_index(op.f("ix_candidate_narratives_narrative"), table_name="candidate_narratives")
    op.drop_table("candidate_narratives")
    # 0002 has no 'needs_translation': such candidates go back to 'new' (the 'translate'
    # decisions stay in the history, with the status they set recorded as 'new')
    op.execute("UPDATE candidates SET status = 'new' WHERE status = 'needs_translation'")
    op.execute("UPDATE decisions SET status = 'new' WHERE status = 'needs_translation'")
    with op.batch_alter_table("candidates") as batch:
        batch.drop_index(op.f("ix_candidates_score"))
        batch.drop_index(op.f("ix_candidates_queued_at"))
        batch.drop_index(op.f("ix_candidates_source_id"))
        batch.drop_index(op.f("ix_candidates_channel"))
        batch.drop_column("channel")
        batch.drop_constraint(op.f("ck_candidates_status"), type_="check")
        batch.create_check_constraint(op.f("ck_candidates_status"), OLD_STATUSES)
        batch.alter_column("status", type_=sa.String(length=16), existing_nullable=False)
    with op.batch_alter_table("decisions") as batch:
        batch.alter_column("status", type_=sa.String(length=16), existing_nullable=False)
