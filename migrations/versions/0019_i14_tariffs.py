"""Tariffs (imported files and their rates) and the priced trunk legs of calls.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)
# Exact money: NUMERIC(18, 6); on SQLite whole millionths in an integer (features/rating).
MONEY = sa.Numeric(18, 6).with_variant(sa.BigInteger(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tariffs",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("currencies", sa.String(), nullable=False),
        sa.Column("rate_count", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("imported_by", sa.String(), nullable=False),
        sa.Column("imported_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tariffs"),
    )
    op.create_table(
        "tariff_rates",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("tariff_id", ROW_ID, nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(), nullable=False),
        sa.Column("direction", sa.String(), nullable=False),
        sa.Column("trunk", sa.String(), nullable=True),
        sa.Column("per_minute", MONEY, nullable=False),
        sa.Column("connection_fee", MONEY, nullable=False),
        sa.Column("increments", sa.String(), nullable=False),
        sa.Column("minimum", MONEY, nullable=False),
        sa.Column("currency", sa.String(), nullable=False),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("rounding", sa.String(), nullable=False),
        sa.Column("effective_from", WHEN, nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tariff_rates"),
        sa.ForeignKeyConstraint(["tariff_id"], ["tariffs.id"], ondelete="CASCADE",
                                name="fk_tariff_rates_tariff_id_tariffs"),
    )
    op.create_index("ix_tariff_rates_tariff_id", "tariff_rates", ["tariff_id"])
    op.create_index("ix_tariff_rates_prefix", "tariff_rates", ["prefix"])
    op.create_table(
        "call_costs",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("call_pk", ROW_ID, nullable=False),
        sa.Column("leg", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("direction", sa.String(), nullable=False),
        sa.Column("trunk", sa.String(), nullable=True),
        sa.Column("number", sa.String(), nullable=True),
        sa.Column("answered_at", WHEN, nullable=False),
        sa.Column("billable_seconds", sa.Double(), nullable=False),
        sa.Column("billed_seconds", sa.Integer(), nullable=False),
        sa.Column("cost", MONEY, nullable=True),
        sa.Column("currency", sa.String(), nullable=True),
        sa.Column("rate_id", ROW_ID, nullable=True),
        sa.Column("unpriced", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_call_costs"),
        sa.ForeignKeyConstraint(["call_pk"], ["calls.id"], ondelete="CASCADE",
                                name="fk_call_costs_call_pk_calls"),
        sa.ForeignKeyConstraint(["rate_id"], ["tariff_rates.id"],
                                name="fk_call_costs_rate_id_tariff_rates"),
    )
    op.create_index("ix_call_costs_call_pk", "call_costs", ["call_pk"])
    op.create_index("ix_call_costs_rate_id", "call_costs", ["rate_id"])
    op.create_index("ix_call_costs_answered_at", "call_costs", ["answered_at"])


def downgrade() -> None:
    op.drop_table("call_costs")
    op.drop_table("tariff_rates")
    op.drop_table("tariffs")
