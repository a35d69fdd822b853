"""Self-service facts: FAQ outcomes and survey answers per call, and callback requests.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL; INTEGER on SQLite so the key is the auto-incrementing rowid.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def call_child_key(table: str) -> list[sa.SchemaItem]:
    """The primary key and the cascading link to ``calls`` of a table of per-call facts."""
    return [
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("call_pk", ROW_ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.ForeignKeyConstraint(
            ["call_pk"], ["calls.id"], name=f"fk_{table}_call_pk_calls", ondelete="CASCADE"
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "call_faq_outcomes",
        *call_child_key("call_faq_outcomes"),
        sa.Column("flow", sa.String(), nullable=False),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("heard_at", utc(), nullable=False),
        sa.Column("result", sa.String(), nullable=False),
        sa.Column("answered_at", utc(), nullable=True),
    )
    op.create_index("ix_call_faq_outcomes_call_pk", "call_faq_outcomes", ["call_pk"])
    op.create_index("ix_call_faq_outcomes_heard_at", "call_faq_outcomes", ["heard_at"])

    op.create_table(
        "call_survey_answers",
        *call_child_key("call_survey_answers"),
        sa.Column("survey", sa.String(), nullable=False),
        sa.Column("question", sa.String(), nullable=False),
        sa.Column("answer", sa.String(), nullable=False),
        sa.Column("answered_at", utc(), nullable=False),
    )
    op.create_index("ix_call_survey_answers_call_pk", "call_survey_answers", ["call_pk"])

    op.create_table(
        "callback_requests",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("call_id", sa.String(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("number", sa.String(), nullable=False),
        sa.Column("caller_name", sa.String(), nullable=True),
        sa.Column("name_recording", sa.String(), nullable=True),
        sa.Column("flow", sa.String(), nullable=False),
        sa.Column("protocol", sa.String(), nullable=True),
        sa.Column("requested_at", utc(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_callback_requests"),
    )
    op.create_index("ix_callback_requests_call_id", "callback_requests", ["call_id"])
    op.create_index(
        "ix_callback_requests_status_requested_at", "callback_requests", ["status", "requested_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_callback_requests_status_requested_at", table_name="callback_requests")
    op.drop_index("ix_callback_requests_call_id", table_name="callback_requests")
    op.drop_table("callback_requests")
    op.drop_index("ix_call_survey_answers_call_pk", table_name="call_survey_answers")
    op.drop_table("call_survey_answers")
    op.drop_index("ix_call_faq_outcomes_heard_at", table_name="call_faq_outcomes")
    op.drop_index("ix_call_faq_outcomes_call_pk", table_name="call_faq_outcomes")
    op.drop_table("call_faq_outcomes")
