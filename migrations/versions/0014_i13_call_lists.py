"""Call lists of outbound campaigns: the list, its numbers, and the rows not taken.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _list_link(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["list_id"], ["call_lists.id"], ondelete="CASCADE",
                                   name=f"fk_{table}_list_id_call_lists")


def upgrade() -> None:
    op.create_table(
        "call_lists",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("campaign", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("blank_rows", sa.Integer(), nullable=False),
        sa.Column("ambiguous_time_zones", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_call_lists"),
        sa.UniqueConstraint("campaign", "name", name="uq_call_lists_campaign_name"),
    )
    op.create_index("ix_call_lists_campaign", "call_lists", ["campaign"])
    op.create_table(
        "call_list_entries",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("list_id", ROW_ID, nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("time_zones", sa.JSON(), nullable=False),
        sa.Column("time_zone_source", sa.String(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_call_list_entries"),
        _list_link("call_list_entries"),
    )
    op.create_index("ix_call_list_entries_list_id_number", "call_list_entries",
                    ["list_id", "number"])
    op.create_table(
        "call_list_problems",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("list_id", ROW_ID, nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("number", sa.String(), nullable=True),
        sa.Column("first_line", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_call_list_problems"),
        _list_link("call_list_problems"),
    )
    op.create_index("ix_call_list_problems_list_id", "call_list_problems", ["list_id"])


def downgrade() -> None:
    op.drop_index("ix_call_list_problems_list_id", table_name="call_list_problems")
    op.drop_table("call_list_problems")
    op.drop_index("ix_call_list_entries_list_id_number", table_name="call_list_entries")
    op.drop_table("call_list_entries")
    op.drop_index("ix_call_lists_campaign", table_name="call_lists")
    op.drop_table("call_lists")
