"""Report aggregates: the queue rows per local day of the center's zone
(``report_queue_days``), and the zone they were counted in (``report_day_zone``).

The day rows of the calls already counted are made by `callcenter reports rebuild`, which also
records the zone; until then the reports read the quarter hours only (docs/reports.md).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | Sequence[str] | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUE_COLUMNS = ("offered", "answered", "abandoned", "short_abandons", "answered_within",
                 "abandoned_after", "not_served", "callbacks_requested", "overflowed",
                 "transfers_to_queue", "handled", "answered_wait_ms", "talk_ms", "hold_ms",
                 "wrap_up_ms", "wrapped_calls", "longest_wait_ms")


def upgrade() -> None:
    op.create_table(
        "report_queue_days",
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        *[sa.Column(name, sa.BigInteger(), nullable=False) for name in QUEUE_COLUMNS],
        sa.PrimaryKeyConstraint("day", "queue", name=op.f("pk_report_queue_days")),
    )
    op.create_table(
        "report_day_zone",
        sa.Column("zone", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("zone", name=op.f("pk_report_day_zone")),
    )


def downgrade() -> None:
    op.drop_table("report_day_zone")
    op.drop_table("report_queue_days")
