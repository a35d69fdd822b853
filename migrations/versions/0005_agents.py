"""Agents: accounts (their PJSIP endpoints are generated from these), queue memberships by
tier, skills by level, and the history of every agent state change.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL; INTEGER on SQLite so the key is the auto-incrementing rowid.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def agent_link(table: str) -> sa.ForeignKeyConstraint:
    """The cascading link of a per-agent table to ``agents``."""
    return sa.ForeignKeyConstraint(
        ["agent_id"], ["agents.id"], name=f"fk_{table}_agent_id_agents", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("sip_secret", sa.String(), nullable=False),
        sa.Column("contact", sa.String(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
    )

    op.create_table(
        "agent_queue_memberships",
        sa.Column("agent_id", sa.String(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "queue", name="pk_agent_queue_memberships"),
        sa.CheckConstraint(
            "tier >= 0", name=op.f("ck_agent_queue_memberships_tier_not_negative")
        ),
        agent_link("agent_queue_memberships"),
    )

    op.create_table(
        "agent_skills",
        sa.Column("agent_id", sa.String(), nullable=False),
        sa.Column("skill", sa.String(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "skill", name="pk_agent_skills"),
        sa.CheckConstraint("level BETWEEN 1 AND 10", name=op.f("ck_agent_skills_level_range")),
        agent_link("agent_skills"),
    )

    op.create_table(
        "agent_state_changes",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("agent_id", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("at", utc(), nullable=False),
        sa.Column("previous", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agent_state_changes"),
        # No cascade: an agent with a history is deactivated, never deleted.
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name="fk_agent_state_changes_agent_id_agents"
        ),
    )
    op.create_index(
        "ix_agent_state_changes_agent_id_at", "agent_state_changes", ["agent_id", "at"]
    )


def downgrade() -> None:
    op.drop_index("ix_agent_state_changes_agent_id_at", table_name="agent_state_changes")
    op.drop_table("agent_state_changes")
    op.drop_table("agent_skills")
    op.drop_table("agent_queue_memberships")
    op.drop_table("agents")
