"""Calls keep their holds: each time an agent's phone (or the caller's) put the call on hold,
who, from when to when (issue 14's timeline).

Calls stored before this revision have no holds: they were not recorded then.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL; INTEGER on SQLite so the key is the auto-incrementing rowid.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "call_holds",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("call_pk", ROW_ID, nullable=False),
        sa.Column("held_by", sa.String(), nullable=False),
        sa.Column("agent_id", sa.String(), nullable=True),
        sa.Column("started_at", utc(), nullable=False),
        sa.Column("ended_at", utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_call_holds"),
        sa.ForeignKeyConstraint(["call_pk"], ["calls.id"],
                                name="fk_call_holds_call_pk_calls", ondelete="CASCADE"),
    )
    op.create_index("ix_call_holds_call_pk", "call_holds", ["call_pk"])


def downgrade() -> None:
    op.drop_index("ix_call_holds_call_pk", table_name="call_holds")
    op.drop_table("call_holds")
