"""A summary row per case for the case list: its latest version and that version's newest assessment's statuses
(RPL, RIF, blood and uterine NK, each with its word) and date, so that the list reads one row per case instead of
grouping every version, and filters by status in the database. Existing cases are filled in from their stored
assessments (read with :func:`decidua.app.presenters.triage_words`, the function the store writes them with).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from decidua.app.presenters import triage_words

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BATCH = 500  # rows read and written at a time while filling in existing cases

cases = sa.table("cases", sa.column("id", sa.Integer()))
versions = sa.table(
    "case_versions",
    sa.column("id", sa.Integer()),
    sa.column("case_id", sa.Integer()),
    sa.column("version", sa.Integer()),
    sa.column("created_at", sa.DateTime()),
)
assessments = sa.table(
    "assessments",
    sa.column("id", sa.Integer()),
    sa.column("case_version_id", sa.Integer()),
    sa.column("kb_version", sa.String()),
    sa.column("result", JSON),
    sa.column("created_at", sa.DateTime()),
)


def upgrade() -> None:
    summaries = op.create_table(
        "case_summaries",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("kb_version", sa.String(length=200), nullable=True),
        sa.Column("assessed_at", sa.DateTime(), nullable=True),
        *(
            column
            for name in ("rpl", "rif", "blood_nk", "uterine_nk")
            for column in (
                sa.Column(name, sa.String(length=16), nullable=False),
                sa.Column(f"{name}_word", sa.String(length=200), nullable=False),
            )
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_summaries_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["version_id"], ["case_versions.id"], name=op.f("fk_case_summaries_version_id_case_versions")
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_summaries")),
        sa.UniqueConstraint("version_id", name=op.f("uq_case_summaries_version_id")),
    )
    assert summaries is not None
    _fill_in(summaries)


def _fill_in(summaries: sa.Table) -> None:
    """A summary for every existing case, from its latest version and that version's newest assessment."""
    latest = (
        sa.select(versions.c.case_id, sa.func.max(versions.c.version).label("version"))
        .group_by(versions.c.case_id)
        .subquery()
    )
    newest = (
        sa.select(assessments.c.case_version_id, sa.func.max(assessments.c.id).label("id"))
        .group_by(assessments.c.case_version_id)
        .subquery()
    )
    query = (
        sa.select(
            versions.c.case_id,
            versions.c.id,
            versions.c.version,
            versions.c.created_at,
            assessments.c.kb_version,
            assessments.c.result,
            assessments.c.created_at,
        )
        .join(latest, sa.and_(latest.c.case_id == versions.c.case_id, latest.c.version == versions.c.version))
        .outerjoin(newest, newest.c.case_version_id == versions.c.id)
        .outerjoin(assessments, assessments.c.id == newest.c.id)
        .order_by(versions.c.case_id)
        .execution_options(yield_per=BATCH)  # a server-side cursor on PostgreSQL: the results are not all held
    )
    for chunk in op.get_bind().execute(query).partitions():
        op.bulk_insert(summaries, [_summary(*row) for row in chunk])


def _summary(
    case_id: int, version_id: int, version: int, saved: Any, kb_version: str | None, result: Any, assessed: Any
) -> dict[str, Any]:
    words = triage_words(result if isinstance(result, dict) else {})
    row = {
        "case_id": case_id,
        "version_id": version_id,
        "latest_version": version,
        "updated_at": saved,
        "kb_version": kb_version,
        "assessed_at": assessed,
    }
    for name, word in words.items():
        row[name], row[f"{name}_word"] = word.status.value, word.word
    return row


def downgrade() -> None:
    op.drop_table("case_summaries")
