"""Calls recorded while the service was down: each record says who wrote it (``source``),
and how far Asterisk's own channel event log has been imported.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        # Every record stored so far was the service's own.
        batch.add_column(sa.Column("source", sa.String(), nullable=False,
                                   server_default="service"))
    op.create_table(
        "asterisk_log_positions",
        sa.Column("log", sa.String(), nullable=False),
        sa.Column("last_row", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("log", name="pk_asterisk_log_positions"),
    )


def downgrade() -> None:
    op.drop_table("asterisk_log_positions")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("source")
