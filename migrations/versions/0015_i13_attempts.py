"""Campaign attempts (every call the dialer placed) and recycled call lists.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("call_lists") as table:
        table.add_column(sa.Column("recycled_at", WHEN, nullable=True))
    op.create_table(
        "campaign_attempts",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("campaign", sa.String(), nullable=False),
        sa.Column("list_id", ROW_ID, nullable=False),
        sa.Column("entry_id", ROW_ID, nullable=False),
        sa.Column("number", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("placed_at", WHEN, nullable=False),
        sa.Column("answered_at", WHEN, nullable=True),
        sa.Column("ended_at", WHEN, nullable=True),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("amd_status", sa.String(), nullable=True),
        sa.Column("hangup_cause", sa.String(), nullable=True),
        sa.Column("abandoned", sa.Boolean(), nullable=False),
        sa.Column("call_id", sa.String(), nullable=True),
        sa.Column("agent_id", sa.String(), nullable=True),
        sa.Column("disposition", sa.String(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("call_back_at", WHEN, nullable=True),
        sa.Column("call_back_agent", sa.String(), nullable=True),
        sa.Column("disposed_by", sa.String(), nullable=True),
        sa.Column("disposed_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_attempts"),
        sa.ForeignKeyConstraint(["list_id"], ["call_lists.id"], ondelete="CASCADE",
                                name="fk_campaign_attempts_list_id_call_lists"),
        sa.ForeignKeyConstraint(["entry_id"], ["call_list_entries.id"], ondelete="CASCADE",
                                name="fk_campaign_attempts_entry_id_call_list_entries"),
    )
    op.create_index("ix_campaign_attempts_entry_id", "campaign_attempts", ["entry_id"])
    op.create_index("ix_campaign_attempts_campaign_placed_at", "campaign_attempts",
                    ["campaign", "placed_at"])
    op.create_index("ix_campaign_attempts_call_id", "campaign_attempts", ["call_id"])


def downgrade() -> None:
    op.drop_table("campaign_attempts")
    with op.batch_alter_table("call_lists") as table:
        table.drop_column("recycled_at")
