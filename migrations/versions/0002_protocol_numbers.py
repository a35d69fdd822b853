"""Protocol numbers: every call's number, told to the caller and looked up later.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as calls:  # batch: SQLite cannot ALTER much
        calls.add_column(sa.Column("protocol", sa.String(), nullable=True))
        calls.create_index("ix_calls_protocol", ["protocol"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("calls") as calls:
        calls.drop_index("ix_calls_protocol")
        calls.drop_column("protocol")
