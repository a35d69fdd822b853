"""Call lists take appended uploads: each entry and problem says which upload of its list
it came from (line numbers are per upload), and the list counts its uploads. A list being
imported is staged (``importing``): its rows go in by short transactions, hidden until done.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_lists") as table:
        table.add_column(sa.Column("uploads", sa.Integer(), nullable=False,
                                   server_default="1"))
        table.add_column(sa.Column("importing", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    for name in ("call_list_entries", "call_list_problems"):
        with op.batch_alter_table(name) as table:
            table.add_column(sa.Column("upload", sa.Integer(), nullable=False,
                                       server_default="1"))


def downgrade() -> None:
    for name in ("call_list_problems", "call_list_entries"):
        with op.batch_alter_table(name) as table:
            table.drop_column("upload")
    with op.batch_alter_table("call_lists") as table:
        table.drop_column("importing")
        table.drop_column("uploads")
