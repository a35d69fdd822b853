"""Callbacks linked to the calls that asked for them: a call record names the callback
request it asked for or served (``callback_request_id``) and, on a callback's record, the
call that asked (``callback_of``); a request keeps when its customer joined the line
(``queued_at``), so a callback picked up after a restart keeps its place and whole wait.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("callback_request_id", ROW_ID, nullable=True))
        batch.add_column(sa.Column("callback_of", sa.String(), nullable=True))
    # "Every call of callback request N" (GET /api/calls?callback_request=N).
    op.create_index("ix_calls_callback_request_id", "calls", ["callback_request_id"])
    with op.batch_alter_table("callback_requests") as batch:
        batch.add_column(sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callback_requests") as batch:
        batch.drop_column("queued_at")
    op.drop_index("ix_calls_callback_request_id", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("callback_of")
        batch.drop_column("callback_request_id")
