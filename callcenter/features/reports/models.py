"""The report aggregates: counts per UTC quarter hour (``bucket``: its start in POSIX
seconds), and what each stored call added to them (docs/reports.md).

Tables, not ORM classes: aggregates.py reads and writes them with generic statements, one
description per table (key columns, summed columns, maxima).
"""

from __future__ import annotations

from dataclasses import fields

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
)

from callcenter.core.queue_figures import QueueCounts
from callcenter.core.report_contributions import (
    IVR_COLUMNS,
    IVR_DROPOFF_COLUMNS,
    SURVEY_COLUMNS,
)
from callcenter.store.models import Base, RowId

QUEUE_COLUMNS = tuple(f.name for f in fields(QueueCounts))


def _counts(names: tuple[str, ...]) -> list[Column[int]]:
    return [Column(name, BigInteger, nullable=False) for name in names]


queue_buckets = Table(
    "report_queue_buckets", Base.metadata,
    Column("bucket", BigInteger, nullable=False),
    Column("queue", String, nullable=False),
    *_counts(QUEUE_COLUMNS),
    PrimaryKeyConstraint("bucket", "queue"),
)

# The queue rows per local day of the center ([center] time_zone): ``day`` is the POSIX
# second of the day's midnight (core/report_periods.local_day_start); kept as the quarter
# hours are (core/report_contributions.with_day_rows).
queue_days = Table(
    "report_queue_days", Base.metadata,
    Column("day", BigInteger, nullable=False),
    Column("queue", String, nullable=False),
    *_counts(QUEUE_COLUMNS),
    PrimaryKeyConstraint("day", "queue"),
)

# The zone the day rows were counted in (one row; none: not counted yet, e.g. before the
# first `reports rebuild` after the upgrade that added them). The reports read the day rows
# only when it is the report's zone and the configured one.
day_zone = Table(
    "report_day_zone", Base.metadata,
    Column("zone", String, nullable=False),
    PrimaryKeyConstraint("zone"),
)

ivr_buckets = Table(
    "report_ivr_buckets", Base.metadata,
    Column("bucket", BigInteger, nullable=False),
    *_counts(IVR_COLUMNS),
    PrimaryKeyConstraint("bucket"),
)

ivr_dropoffs = Table(
    "report_ivr_dropoffs", Base.metadata,
    Column("bucket", BigInteger, nullable=False),
    Column("node", String, nullable=False),
    *_counts(IVR_DROPOFF_COLUMNS),
    PrimaryKeyConstraint("bucket", "node"),
)

survey_buckets = Table(
    "report_survey_buckets", Base.metadata,
    Column("bucket", BigInteger, nullable=False),
    Column("queue", String, nullable=False),  # "" when the call had none
    Column("agent_id", String, nullable=False),  # "" when no agent answered
    *_counts(SURVEY_COLUMNS),
    PrimaryKeyConstraint("bucket", "queue", "agent_id"),
)

# What each call added, to be taken out when its record is stored again: a list of
# {"table": ..., "key": [...], "values": {...}} (core/report_contributions.py).
call_contributions = Table(
    "report_call_contributions", Base.metadata,
    Column("call_pk", RowId, ForeignKey("calls.id"), nullable=False),
    Column("aggregate_rows", JSON, nullable=False),
    PrimaryKeyConstraint("call_pk"),
)

# What each call's wrap-up added to its queue row (features/reports/wrap_ups.py), to be
# taken out when the call's record or its agents' state log changes it.
call_wrap_ups = Table(
    "report_call_wrap_ups", Base.metadata,
    Column("call_pk", RowId, ForeignKey("calls.id"), nullable=False),
    Column("bucket", BigInteger, nullable=False),
    Column("queue", String, nullable=False),
    Column("wrap_up_ms", BigInteger, nullable=False),
    Column("wrapped_calls", BigInteger, nullable=False),
    PrimaryKeyConstraint("call_pk"),
)

# The values each call gave to a maximum (the longest wait), so that a maximum can be found
# again among the other calls when one call's value is taken out.
call_maxima = Table(
    "report_call_maxima", Base.metadata,
    Column("call_pk", RowId, ForeignKey("calls.id"), nullable=False),
    Column("table_name", String, nullable=False),
    Column("row_key", String, nullable=False),  # the aggregate row's key as JSON
    Column("column_name", String, nullable=False),
    Column("value", BigInteger, nullable=False),
    PrimaryKeyConstraint("call_pk", "table_name", "row_key", "column_name"),
    Index("ix_report_call_maxima_table_name_row_key_column_name",
          "table_name", "row_key", "column_name"),
)
