"""Agent and campaign report aggregates: agents' time per state, calls handled, transfers,
points and hold per 15-minute UTC bucket (with each source's credit), and campaign counters
per bucket. Derived data: ``callcenter reports rebuild`` fills them from the raw rows.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agent_state_time",
        sa.Column("agent_id", sa.String(), nullable=False),
        sa.Column("bucket", WHEN, nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("micros", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "bucket", "state", "reason",
                                name="pk_agent_state_time"),
    )
    op.create_table(
        "agent_call_time",
        sa.Column("agent_id", sa.String(), nullable=False),
        sa.Column("bucket", WHEN, nullable=False),
        sa.Column("handled", sa.Integer(), nullable=False),
        sa.Column("transfers", sa.Integer(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("hold_micros", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "bucket", name="pk_agent_call_time"),
    )
    op.create_table(
        "agent_credits",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("agent_id", sa.String(), nullable=False),
        sa.Column("bucket", WHEN, nullable=False),
        sa.Column("handled", sa.Integer(), nullable=False),
        sa.Column("transfers", sa.Integer(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("hold_micros", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agent_credits"),
    )
    op.create_index("ix_agent_credits_source", "agent_credits", ["source"])
    op.create_table(
        "campaign_counts",
        sa.Column("campaign", sa.String(), nullable=False),
        sa.Column("bucket", WHEN, nullable=False),
        sa.Column("counter", sa.String(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("campaign", "bucket", "counter", name="pk_campaign_counts"),
    )


def downgrade() -> None:
    op.drop_table("campaign_counts")
    op.drop_index("ix_agent_credits_source", table_name="agent_credits")
    op.drop_table("agent_credits")
    op.drop_table("agent_call_time")
    op.drop_table("agent_state_time")
