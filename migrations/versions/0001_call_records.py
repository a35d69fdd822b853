"""Call detail records: calls and their agent attempts.

Revision ID: 0001
Revises:
Create Date: 2024-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL; INTEGER on SQLite so the key is the auto-incrementing rowid.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("call_id", sa.String(), nullable=False),
        sa.Column("linked_id", sa.String(), nullable=True),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("caller_number", sa.String(), nullable=True),
        sa.Column("caller_name", sa.String(), nullable=True),
        sa.Column("dialed_number", sa.String(), nullable=True),
        sa.Column("started_at", utc(), nullable=False),
        sa.Column("answered_at", utc(), nullable=True),
        sa.Column("ended_at", utc(), nullable=True),
        sa.Column("ivr_path", sa.JSON(), nullable=False),
        sa.Column("queue", sa.String(), nullable=True),
        sa.Column("queued_at", utc(), nullable=True),
        sa.Column("wait_seconds", sa.Double(), nullable=True),
        sa.Column("agent_id", sa.String(), nullable=True),
        sa.Column("agent_answered_at", utc(), nullable=True),
        sa.Column("talk_seconds", sa.Double(), nullable=True),
        sa.Column("hangup_by", sa.String(), nullable=True),
        sa.Column("hangup_cause", sa.String(), nullable=True),
        sa.Column("disposition", sa.String(), nullable=True),
        sa.Column("note", sa.String(), nullable=True),
        sa.Column("updated_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_calls"),
        sa.UniqueConstraint("call_id", name="uq_calls_call_id"),
    )
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.create_index("ix_calls_queue_started_at", "calls", ["queue", "started_at"])

    op.create_table(
        "call_attempts",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("call_pk", ROW_ID, nullable=False),
        sa.Column("agent_id", sa.String(), nullable=False),
        sa.Column("started_at", utc(), nullable=False),
        sa.Column("ended_at", utc(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_call_attempts"),
        sa.ForeignKeyConstraint(
            ["call_pk"],
            ["calls.id"],
            name="fk_call_attempts_call_pk_calls",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_call_attempts_call_pk", "call_attempts", ["call_pk"])


def downgrade() -> None:
    op.drop_index("ix_call_attempts_call_pk", table_name="call_attempts")
    op.drop_table("call_attempts")
    op.drop_index("ix_calls_queue_started_at", table_name="calls")
    op.drop_index("ix_calls_started_at", table_name="calls")
    op.drop_table("calls")
