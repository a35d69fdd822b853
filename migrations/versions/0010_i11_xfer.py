"""Transferred calls tell what happened: each agent leg's answer time and talk, and each
transfer (blind or attended, from, to, when, how it ended).

Legs stored before this revision keep no answer time nor talk (NULL): only their ring's start,
end and outcome were known.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL; INTEGER on SQLite so the key is the auto-incrementing rowid.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("call_attempts") as batch:
        batch.add_column(sa.Column("answered_at", utc(), nullable=True))
        batch.add_column(sa.Column("talk_seconds", sa.Double(), nullable=True))
    op.create_table(
        "call_transfers",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("call_pk", ROW_ID, nullable=False),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("from_agent", sa.String(), nullable=False),
        sa.Column("to_agent", sa.String(), nullable=True),
        sa.Column("to_queue", sa.String(), nullable=True),
        sa.Column("requested_at", utc(), nullable=False),
        sa.Column("ended_at", utc(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_call_transfers"),
        sa.ForeignKeyConstraint(["call_pk"], ["calls.id"],
                                name="fk_call_transfers_call_pk_calls", ondelete="CASCADE"),
    )
    op.create_index("ix_call_transfers_call_pk", "call_transfers", ["call_pk"])


def downgrade() -> None:
    op.drop_index("ix_call_transfers_call_pk", table_name="call_transfers")
    op.drop_table("call_transfers")
    with op.batch_alter_table("call_attempts") as batch:
        batch.drop_column("talk_seconds")
        batch.drop_column("answered_at")
