"""Calls: the queue a caller overflowed from (``overflowed_from``), so the queue reports can
count an overflowed call where it entered, as the simulator does.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as table:
        table.add_column(sa.Column("overflowed_from", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as table:
        table.drop_column("overflowed_from")
