"""The caller ID as the caller sent it, URI-encoded, beside the cleaned number and name.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as calls:  # batch: SQLite cannot ALTER much
        calls.add_column(sa.Column("caller_id_raw", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as calls:
        calls.drop_column("caller_id_raw")
