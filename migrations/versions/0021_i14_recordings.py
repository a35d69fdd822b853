"""Call recordings (one row per call a recording policy covered), quality evaluation forms
and the evaluations of recorded calls.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "call_recordings",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("call_id", sa.String(), nullable=False),
        sa.Column("queue", sa.String(), nullable=True),
        sa.Column("campaign", sa.String(), nullable=True),
        sa.Column("agent_id", sa.String(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("announced", sa.Boolean(), nullable=False),
        sa.Column("announced_at", TIME, nullable=True),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("requested_at", TIME, nullable=True),
        sa.Column("requested_by", sa.String(), nullable=True),
        sa.Column("ended_at", TIME, nullable=True),
        sa.Column("file", sa.String(), nullable=True),
        sa.Column("format", sa.String(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("deleted_at", TIME, nullable=True),
        sa.Column("deleted_by", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_call_recordings"),
        sa.UniqueConstraint("call_id", name="uq_call_recordings_call_id"),
    )
    op.create_index("ix_call_recordings_agent_id", "call_recordings", ["agent_id"])
    op.create_index("ix_call_recordings_started_at", "call_recordings", ["started_at"])
    op.create_index("ix_call_recordings_status_expires_at", "call_recordings",
                    ["status", "expires_at"])
    op.create_table(
        "evaluation_forms",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_evaluation_forms"),
        sa.UniqueConstraint("name", name="uq_evaluation_forms_name"),
    )
    op.create_table(
        "evaluations",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("recording_id", ROW_ID, nullable=False),
        sa.Column("form_id", ROW_ID, nullable=False),
        sa.Column("call_id", sa.String(), nullable=False),
        sa.Column("agent_id", sa.String(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("comments", sa.Text(), nullable=False),
        sa.Column("evaluated_at", TIME, nullable=False),
        sa.Column("evaluated_by", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["call_recordings.id"],
                                name="fk_evaluations_recording_id_call_recordings"),
        sa.ForeignKeyConstraint(["form_id"], ["evaluation_forms.id"],
                                name="fk_evaluations_form_id_evaluation_forms"),
        sa.PrimaryKeyConstraint("id", name="pk_evaluations"),
    )
    op.create_index("ix_evaluations_recording_id", "evaluations", ["recording_id"])
    op.create_index("ix_evaluations_form_id", "evaluations", ["form_id"])
    op.create_index("ix_evaluations_agent_id_evaluated_at", "evaluations",
                    ["agent_id", "evaluated_at"])


def downgrade() -> None:
    op.drop_index("ix_evaluations_agent_id_evaluated_at", table_name="evaluations")
    op.drop_index("ix_evaluations_form_id", table_name="evaluations")
    op.drop_index("ix_evaluations_recording_id", table_name="evaluations")
    op.drop_table("evaluations")
    op.drop_table("evaluation_forms")
    op.drop_index("ix_call_recordings_status_expires_at", table_name="call_recordings")
    op.drop_index("ix_call_recordings_started_at", table_name="call_recordings")
    op.drop_index("ix_call_recordings_agent_id", table_name="call_recordings")
    op.drop_table("call_recordings")
