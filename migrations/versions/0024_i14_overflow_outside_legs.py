"""Calls: the queue a caller overflowed from (``overflowed_from``), so the queue reports count
an overflowed call where it entered, as the simulator does; and the IVR's transfers out
(``outside_legs``, JSON), as Asterisk's Dial() timed them, so the trunk leg each put on the
carrier can be priced.

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
        table.add_column(sa.Column("outside_legs", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as table:
        table.drop_column("outside_legs")
        table.drop_column("overflowed_from")
