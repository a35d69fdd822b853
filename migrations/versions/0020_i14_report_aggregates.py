"""Report aggregates: counts per UTC quarter hour for the queue, IVR and survey reports, and
what each call added to them (docs/reports.md).

Existing calls are not counted here: run `callcenter reports rebuild` once after upgrading.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

QUEUE_COLUMNS = ("offered", "answered", "abandoned", "short_abandons", "answered_within",
                 "abandoned_after", "not_served", "callbacks_requested", "overflowed",
                 "transfers_to_queue", "handled", "answered_wait_ms", "talk_ms", "hold_ms",
                 "wrap_up_ms", "longest_wait_ms")
IVR_COLUMNS = ("ivr_calls", "contained", "abandoned_in_ivr", "reached_queue",
               "callbacks_requested", "attendant_requests", "faq_heard", "faq_solved")
SURVEY_COLUMNS = ("csat_answers", "csat_score_sum", "csat_satisfied", "nps_answers",
                  "nps_promoters", "nps_passives", "nps_detractors")


def _counts(names: Sequence[str]) -> list[sa.Column]:
    return [sa.Column(name, sa.BigInteger(), nullable=False) for name in names]


def upgrade() -> None:
    op.create_table(
        "report_queue_buckets",
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        *_counts(QUEUE_COLUMNS),
        sa.PrimaryKeyConstraint("bucket", "queue", name=op.f("pk_report_queue_buckets")),
    )
    op.create_table(
        "report_ivr_buckets",
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        *_counts(IVR_COLUMNS),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_report_ivr_buckets")),
    )
    op.create_table(
        "report_ivr_dropoffs",
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("node", sa.String(), nullable=False),
        *_counts(("abandoned",)),
        sa.PrimaryKeyConstraint("bucket", "node", name=op.f("pk_report_ivr_dropoffs")),
    )
    op.create_table(
        "report_survey_buckets",
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("agent_id", sa.String(), nullable=False),
        *_counts(SURVEY_COLUMNS),
        sa.PrimaryKeyConstraint("bucket", "queue", "agent_id",
                                name=op.f("pk_report_survey_buckets")),
    )
    op.create_table(
        "report_call_contributions",
        sa.Column("call_pk", ROW_ID, nullable=False),
        sa.Column("aggregate_rows", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["call_pk"], ["calls.id"],
                                name=op.f("fk_report_call_contributions_call_pk_calls")),
        sa.PrimaryKeyConstraint("call_pk", name=op.f("pk_report_call_contributions")),
    )
    op.create_table(
        "report_call_maxima",
        sa.Column("call_pk", ROW_ID, nullable=False),
        sa.Column("table_name", sa.String(), nullable=False),
        sa.Column("row_key", sa.String(), nullable=False),
        sa.Column("column_name", sa.String(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["call_pk"], ["calls.id"],
                                name=op.f("fk_report_call_maxima_call_pk_calls")),
        sa.PrimaryKeyConstraint("call_pk", "table_name", "row_key", "column_name",
                                name=op.f("pk_report_call_maxima")),
    )
    op.create_index("ix_report_call_maxima_table_name_row_key_column_name",
                    "report_call_maxima", ["table_name", "row_key", "column_name"])


def downgrade() -> None:
    op.drop_index("ix_report_call_maxima_table_name_row_key_column_name",
                  table_name="report_call_maxima")
    for table in ("report_call_maxima", "report_call_contributions", "report_survey_buckets",
                  "report_ivr_dropoffs", "report_ivr_buckets", "report_queue_buckets"):
        op.drop_table(table)
