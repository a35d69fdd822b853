"""Do-not-call list (global and per campaign) and the append-only consent ledger.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "do_not_call",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("number", sa.String(), nullable=False),
        sa.Column("campaign", sa.String(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("added_by", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_do_not_call"),
        sa.UniqueConstraint("number", "campaign", name="uq_do_not_call_number_campaign"),
    )
    op.create_index("ix_do_not_call_number", "do_not_call", ["number"])
    op.create_table(
        "consent_ledger",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("number", sa.String(), nullable=False),
        sa.Column("campaign", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("proof", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_consent_ledger"),
    )
    op.create_index("ix_consent_ledger_number_at", "consent_ledger", ["number", "at"])


def downgrade() -> None:
    op.drop_index("ix_consent_ledger_number_at", table_name="consent_ledger")
    op.drop_table("consent_ledger")
    op.drop_index("ix_do_not_call_number", table_name="do_not_call")
    op.drop_table("do_not_call")
