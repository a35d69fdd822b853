"""Queue wrap-up: the queue report's after-call work (docs/reports.md "Queues").

``report_queue_buckets`` gets ``wrapped_calls`` (its ``wrap_up_ms`` was there, always 0);
``report_call_wrap_ups`` keeps what each call's wrap-up added; ``call_attempts`` gets an
index on (agent_id, ended_at) to find an agent's recent legs when their state log changes.
Calls stored before have no wrap-up counted: run ``callcenter reports rebuild``.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("report_queue_buckets") as batch:
        batch.add_column(sa.Column("wrapped_calls", sa.BigInteger(), nullable=False,
                                   server_default="0"))
    op.create_table(
        "report_call_wrap_ups",
        sa.Column("call_pk", ROW_ID, nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("wrap_up_ms", sa.BigInteger(), nullable=False),
        sa.Column("wrapped_calls", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["call_pk"], ["calls.id"],
                                name=op.f("fk_report_call_wrap_ups_call_pk_calls")),
        sa.PrimaryKeyConstraint("call_pk", name=op.f("pk_report_call_wrap_ups")),
    )
    op.create_index("ix_call_attempts_agent_id_ended_at", "call_attempts",
                    ["agent_id", "ended_at"])


def downgrade() -> None:
    op.drop_index("ix_call_attempts_agent_id_ended_at", table_name="call_attempts")
    op.drop_table("report_call_wrap_ups")
    with op.batch_alter_table("report_queue_buckets") as batch:
        batch.drop_column("wrapped_calls")
