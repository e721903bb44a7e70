"""Backfill: documents.method and the state tables of `dwatch backfill` (jobs, units, articles).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

``documents.method`` says how a backfilled page was found within its channel (sitemap,
archive, wayback, ccnews, gdelt); daily crawls leave it NULL. ``backfill_jobs`` is one backfill
(its arguments and their sha256 ``key``), ``backfill_units`` the discovery units it finished
(sitemaps, listing pages, CDX pages, GDELT slices, WARC files) and ``backfill_articles`` every
article it discovered with what became of it, so a killed backfill resumes and fetches nothing
twice. Written from the models (store/models.py); the parity test compares both.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)
JOB_STATUSES = "status IN ('running', 'done', 'interrupted', 'failed')"
UNIT_STATUSES = "status IN ('pending', 'done', 'failed')"
ARTICLE_STATUSES = "status IN ('pending', 'fetched', 'out_of_range', 'failed', 'seen')"


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("method", sa.String(length=16), nullable=True))
    op.create_table(
        "backfill_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.Column("until", sa.Date(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("methods", sa.JSON(), nullable=False),
        sa.Column("warcs", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("finished_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.CheckConstraint(JOB_STATUSES, name=op.f("ck_backfill_jobs_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backfill_jobs")),
    )
    op.create_index(op.f("ix_backfill_jobs_key"), "backfill_jobs", ["key"])
    op.create_table(
        "backfill_units",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("found", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.CheckConstraint(UNIT_STATUSES, name=op.f("ck_backfill_units_status")),
        sa.ForeignKeyConstraint(
            ["job_id"], ["backfill_jobs.id"],
            name=op.f("fk_backfill_units_job_id_backfill_jobs"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "unit", name=op.f("pk_backfill_units")),
    )
    op.create_table(
        "backfill_articles",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("canonical_url", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("source_id", sa.String(length=100), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("discovered_from", sa.Text(), nullable=True),
        sa.Column("entry_id", sa.Text(), nullable=True),
        sa.Column("entry_title", sa.Text(), nullable=True),
        sa.Column("entry_published", UTC_TIMESTAMP, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.CheckConstraint(ARTICLE_STATUSES, name=op.f("ck_backfill_articles_status")),
        sa.ForeignKeyConstraint(
            ["job_id"], ["backfill_jobs.id"],
            name=op.f("fk_backfill_articles_job_id_backfill_jobs"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "canonical_url", name=op.f("pk_backfill_articles")),
    )
    op.create_index(
        op.f("ix_backfill_articles_job_id_status"), "backfill_articles", ["job_id", "status"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_backfill_articles_job_id_status"), table_name="backfill_articles")
    op.drop_table("backfill_articles")
    op.drop_table("backfill_units")
    op.drop_index(op.f("ix_backfill_jobs_key"), table_name="backfill_jobs")
    op.drop_table("backfill_jobs")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("method")
