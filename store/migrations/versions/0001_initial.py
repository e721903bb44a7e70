"""Initial schema: runs, documents, near-copy bands, stories, candidates, decisions.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Written from the models (autogenerate draft, then checked by hand). Timestamps are
``DateTime(timezone=True)``: the models wrap it in ``UtcDateTime`` (aware UTC in and out).
``stories.first_document_id`` and ``documents.story_id`` reference each other, so the stories
table is created first and its foreign key is added once documents exists (batch mode: SQLite
rebuilds the empty table; PostgreSQL gets an ALTER TABLE).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "crawl_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("started_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("finished_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crawl_runs")),
    )
    op.create_index(op.f("ix_crawl_runs_started_at"), "crawl_runs", ["started_at"])

    op.create_table(
        "crawl_run_sources",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.String(length=100), nullable=False),
        sa.Column("discovered", sa.Integer(), nullable=False),
        sa.Column("fetched", sa.Integer(), nullable=False),
        sa.Column("already_seen", sa.Integer(), nullable=False),
        sa.Column("extracted", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("first_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["crawl_runs.id"],
            name=op.f("fk_crawl_run_sources_run_id_crawl_runs"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "source_id", name=op.f("pk_crawl_run_sources")),
    )

    # first_document_id gets its foreign key below, once documents exists
    op.create_table(
        "stories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("first_document_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stories")),
    )

    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("canonical_url", sa.Text(), nullable=False),
        sa.Column("requested_url", sa.Text(), nullable=False),
        sa.Column("final_url", sa.Text(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("author", sa.Text(), nullable=True),
        sa.Column("published", UTC_TIMESTAMP, nullable=True),
        sa.Column("sitename", sa.Text(), nullable=True),
        sa.Column("lang", sa.String(length=16), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("text_sha256", sa.String(length=64), nullable=True),
        sa.Column("minhash", sa.JSON(), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("verdict", sa.JSON(), nullable=True),
        sa.Column("narratives", sa.JSON(), nullable=True),
        sa.Column("rules_version", sa.String(length=100), nullable=True),
        sa.Column("extractor", sa.String(length=100), nullable=True),
        sa.Column("extractor_version", sa.String(length=100), nullable=True),
        sa.Column("duplicate_of_document_id", sa.Integer(), nullable=True),
        sa.Column("story_id", sa.Integer(), nullable=True),
        sa.Column("source_id", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("discovered_from", sa.Text(), nullable=True),
        sa.Column("entry_id", sa.Text(), nullable=True),
        sa.Column("entry_title", sa.Text(), nullable=True),
        sa.Column("entry_published", UTC_TIMESTAMP, nullable=True),
        sa.Column("fetched_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=True),
        sa.Column("archive_path", sa.Text(), nullable=True),
        sa.Column("archive_offset", sa.BigInteger(), nullable=True),
        sa.Column("archive_length", sa.BigInteger(), nullable=True),
        sa.Column("archive_record_id", sa.String(length=100), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "outcome IN ('extracted', 'skipped', 'failed')", name=op.f("ck_documents_outcome")
        ),
        sa.ForeignKeyConstraint(
            ["duplicate_of_document_id"], ["documents.id"],
            name=op.f("fk_documents_duplicate_of_document_id_documents"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["crawl_runs.id"],
            name=op.f("fk_documents_run_id_crawl_runs"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["story_id"], ["stories.id"],
            name=op.f("fk_documents_story_id_stories"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.UniqueConstraint("canonical_url", name=op.f("uq_documents_canonical_url")),
    )
    for column in ("duplicate_of_document_id", "run_id", "source_id", "story_id", "text_sha256"):
        op.create_index(op.f(f"ix_documents_{column}"), "documents", [column])

    with op.batch_alter_table("stories") as batch_op:
        batch_op.create_foreign_key(
            op.f("fk_stories_first_document_id_documents"), "documents",
            ["first_document_id"], ["id"], ondelete="SET NULL",
        )

    op.create_table(
        "minhash_bands",
        sa.Column("band_key", sa.String(length=128), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"],
            name=op.f("fk_minhash_bands_document_id_documents"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("band_key", "document_id", name=op.f("pk_minhash_bands")),
    )
    op.create_index(op.f("ix_minhash_bands_document_id"), "minhash_bands", ["document_id"])

    op.create_table(
        "candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("text_sha256", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("lang", sa.String(length=16), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("source_id", sa.String(length=100), nullable=False),
        sa.Column("published", UTC_TIMESTAMP, nullable=True),
        sa.Column("queued_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('new', 'accepted', 'rejected', 'duplicate', 'unflagged')",
            name=op.f("ck_candidates_status"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"],
            name=op.f("fk_candidates_document_id_documents"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["story_id"], ["stories.id"],
            name=op.f("fk_candidates_story_id_stories"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candidates")),
        sa.UniqueConstraint("document_id", name=op.f("uq_candidates_document_id")),
        sa.UniqueConstraint("text_sha256", name=op.f("uq_candidates_text_sha256")),
    )
    op.create_index(op.f("ix_candidates_lang"), "candidates", ["lang"])
    op.create_index(op.f("ix_candidates_published"), "candidates", ["published"])
    op.create_index(
        op.f("ix_candidates_status_queued_at"), "candidates", ["status", "queued_at"]
    )
    op.create_index(op.f("ix_candidates_story_id"), "candidates", ["story_id"])

    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", UTC_TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["candidate_id"], ["candidates.id"],
            name=op.f("fk_decisions_candidate_id_candidates"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    op.create_index(op.f("ix_decisions_candidate_id"), "decisions", ["candidate_id"])


def downgrade() -> None:
    op.drop_table("decisions")
    op.drop_table("candidates")
    op.drop_table("minhash_bands")
    with op.batch_alter_table("stories") as batch_op:
        batch_op.drop_constraint(op.f("fk_stories_first_document_id_documents"), type_="foreignkey")
    op.drop_table("documents")
    op.drop_table("stories")
    op.drop_table("crawl_run_sources")
    op.drop_table("crawl_runs")
