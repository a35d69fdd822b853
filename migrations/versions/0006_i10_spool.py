"""Dead letters: call records the database refused for good, kept with the reason.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL; INTEGER on SQLite so the key is the auto-incrementing rowid.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "call_dead_letters",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("call_id", sa.String(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_call_dead_letters"),
    )
    op.create_index("ix_call_dead_letters_at", "call_dead_letters", ["at"])


def downgrade() -> None:
    op.drop_index("ix_call_dead_letters_at", table_name="call_dead_letters")
    op.drop_table("call_dead_letters")
