"""Call records say their direction, and an outbound call its campaign and attempt.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("direction", sa.String(), nullable=False,
                                   server_default="inbound"))
        batch.add_column(sa.Column("campaign", sa.String(), nullable=True))
        batch.add_column(sa.Column("campaign_attempt_id", ROW_ID, nullable=True))
    op.create_index("ix_calls_campaign_attempt_id", "calls", ["campaign_attempt_id"])


def downgrade() -> None:
    op.drop_index("ix_calls_campaign_attempt_id", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("campaign_attempt_id")
        batch.drop_column("campaign")
        batch.drop_column("direction")
