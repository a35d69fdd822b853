"""The report aggregates kept in step with the call records (docs/reports.md).

``ReportAggregates`` is a ``RecordFollower`` (features/calls/store.py): each time a record is
stored, in the same transaction, it works out what the record adds now
(core/report_contributions.py), compares it with what the call added last time (kept in
``report_call_contributions``) and applies the difference to the quarter-hour tables. Sums
take the difference; a maximum (the longest wait) takes the larger value, except when a
call's old value is taken out (a record stored again after it was closed: rare), when it is
found again among the values the other calls gave (``report_call_maxima``).

Rows are written in one order (table, then key) so that two transactions never wait for
each other in a circle on PostgreSQL. ``rebuild`` recomputes the aggregates from the stored
records with the very same code, so it gives the same result.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Table,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement, Grouping
from sqlalchemy.sql.selectable import Subquery

from callcenter.config import Settings
from callcenter.core.records import CallRecord
from callcenter.core.report_contributions import (
    CONTRIBUTORS,
    IVR_DROPOFF_TABLE,
    IVR_TABLE,
    MAXIMA,
    QUEUE_TABLE,
    SURVEY_TABLE,
    AggregateRow,
    Contributor,
    Key,
    ReportRules,
    contribution,
)
from callcenter.core.report_periods import BUCKET_SECONDS, Group, ReportInterval
from callcenter.features.calls.store import CallRepository
from callcenter.features.reports.models import (
    call_contributions,
    call_maxima,
    ivr_buckets,
    ivr_dropoffs,
    queue_buckets,
    survey_buckets,
)
from callcenter.store.values import dialect_insert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AggregateTable:
    """One quarter-hour table: its key columns (the bucket first) and its numbers."""

    name: str  # as in AggregateRow.table
    table: Table
    keys: tuple[str, ...]

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.table.columns if c.name not in self.keys)

    @property
    def maxima(self) -> frozenset[str]:
        return MAXIMA.get(self.name, frozenset())

    def where(self, key: Key) -> list[ColumnElement[bool]]:
        return [self.table.c[name] == part for name, part in zip(self.keys, key, strict=True)]


TABLES: dict[str, AggregateTable] = {t.name: t for t in (
    AggregateTable(QUEUE_TABLE, queue_buckets, ("bucket", "queue")),
    AggregateTable(IVR_TABLE, ivr_buckets, ("bucket",)),
    AggregateTable(IVR_DROPOFF_TABLE, ivr_dropoffs, ("bucket", "node")),
    AggregateTable(SURVEY_TABLE, survey_buckets, ("bucket", "queue", "agent_id")),
)}


def _as_json(rows: Sequence[AggregateRow]) -> list[dict[str, Any]]:
    return [{"table": row.table, "key": list(row.key), "values": dict(row.values)}
            for row in rows]


def _from_json(stored: Iterable[Mapping[str, Any]]) -> list[AggregateRow]:
    return [AggregateRow(item["table"], tuple(item["key"]), item["values"]) for item in stored]


def _key_text(key: Key) -> str:
    return json.dumps(list(key), separators=(",", ":"))


class ReportAggregates:
    """Keeps the report aggregates in step with the records (a ``RecordFollower``)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], rules: ReportRules,
                 contributors: Sequence[Contributor] = CONTRIBUTORS,
                 tables: Mapping[str, AggregateTable] = TABLES) -> None:
        self._sessions = sessions
        self.rules = rules
        self._contributors = tuple(contributors)
        self._tables = dict(tables)

    def contribution(self, record: CallRecord) -> list[AggregateRow]:
        return contribution(record, self.rules, self._contributors)

    async def follow(self, session: AsyncSession, call_pk: int, record: CallRecord) -> None:
        new = self.contribution(record)
        stored = await session.scalar(select(call_contributions.c.aggregate_rows)
                                      .where(call_contributions.c.call_pk == call_pk))
        old = _from_json(stored or [])
        if _as_json(old) == _as_json(new):
            return  # the common case: an open record stored again adds nothing
        await self._replace_maxima(session, call_pk, old, new)
        await self._apply(session, old, new)
        await session.execute(delete(call_contributions)
                              .where(call_contributions.c.call_pk == call_pk))
        if new:
            await session.execute(insert(call_contributions).values(
                call_pk=call_pk, aggregate_rows=_as_json(new)))

    async def _replace_maxima(self, session: AsyncSession, call_pk: int,
                              old: list[AggregateRow], new: list[AggregateRow]) -> None:
        if any(self._tables[row.table].maxima for row in old):
            await session.execute(delete(call_maxima).where(call_maxima.c.call_pk == call_pk))
        values = [{"call_pk": call_pk, "table_name": row.table, "row_key": _key_text(row.key),
                   "column_name": name, "value": row.values[name]}
                  for row in new for name in sorted(self._tables[row.table].maxima)
                  if name in row.values]
        if values:
            await session.execute(insert(call_maxima), values)

    async def _apply(self, session: AsyncSession, old: list[AggregateRow],
                     new: list[AggregateRow]) -> None:
        """Add ``new - old`` to the tables, one statement per row, in (table, key) order."""
        before = {(row.table, row.key): row.values for row in old}
        after = {(row.table, row.key): row.values for row in new}
        for name, key in sorted(before.keys() | after.keys(),
                                key=lambda item: (item[0], _key_text(item[1]))):
            spec = self._tables[name]
            was, now = before.get((name, key), {}), after.get((name, key), {})
            delta = {column: now.get(column, 0) - was.get(column, 0)
                     for column in spec.values if column not in spec.maxima}
            maxima = {column: now.get(column, 0) for column in spec.maxima}
            found_again = {column for column in spec.maxima if column in was}
            await self._upsert(session, spec, key, delta, maxima, found_again)

    async def _upsert(self, session: AsyncSession, spec: AggregateTable, key: Key,
                      delta: dict[str, int], maxima: dict[str, int],
                      found_again: set[str]) -> None:
        table = spec.table
        row = {**dict(zip(spec.keys, key, strict=True)), **delta, **maxima}
        statement = dialect_insert(session)(table).values(row)
        excluded = statement.excluded
        update: dict[str, Any] = {column: table.c[column] + excluded[column] for column in delta}
        for column in maxima:
            if column in found_again:  # this call's old value may have been the largest
                update[column] = func.coalesce(
                    select(func.max(call_maxima.c.value)).where(
                        call_maxima.c.table_name == spec.name,
                        call_maxima.c.row_key == _key_text(key),
                        call_maxima.c.column_name == column).scalar_subquery(), 0)
            else:
                update[column] = case((excluded[column] > table.c[column], excluded[column]),
                                      else_=table.c[column])
        await session.execute(statement.on_conflict_do_update(
            index_elements=list(spec.keys), set_=update))

    # ----------------------------------------------------------------------- reading

    async def read(self, name: str, since: float, until: float,
                   only: Mapping[str, Sequence[str]] | None = None) -> list[dict[str, Any]]:
        """The rows of one table whose quarter hour is in [since, until), as mappings;
        ``only``: key column -> the values wanted."""
        spec = self._tables[name]
        table = spec.table
        conditions = [table.c.bucket >= int(since), table.c.bucket < int(until)]
        for column, wanted in (only or {}).items():
            conditions.append(table.c[column].in_(list(wanted)))
        async with self._sessions() as session:
            result = await session.execute(select(table).where(*conditions))
            names = list(result.keys())
            # Plain tuples zipped into dicts: a year of quarter hours is many rows.
            return [dict(zip(names, row, strict=True)) for row in result]

    async def rolled_up(self, name: str, intervals: Sequence[ReportInterval],
                        by: Sequence[str] = (),
                        only: Mapping[str, Sequence[str]] | None = None,
                        ) -> dict[Group, dict[str, int]]:
        """The table's quarter-hour rows added up in the database per interval and per the
        ``by`` key columns: what ``core.report_periods.roll_up`` gives over ``read``, with
        one row per group crossing the wire instead of one per quarter hour. Sums are
        summed (as BIGINT: PostgreSQL's SUM of a bigint is a numeric), maxima take the
        largest.

        ``intervals`` (in order, contiguous, on quarter hours: ``ReportPeriod.intervals``)
        go in as one bound value, whatever their number (a year of quarter hours is 35,136):
        on PostgreSQL an array of each quarter hour's interval, looked up by the row's
        position in the period; on SQLite a JSON list of (start, end), made a table that the
        rows are joined to. Why two shapes: PostgreSQL plans a prepared statement once for
        any array after a few runs, and for a range join that generic plan can compare every
        row with every interval (seconds for a month by 15 minutes); a lookup has no join to
        get wrong."""
        if not intervals:
            return {}
        spec = self._tables[name]
        table = spec.table
        since, until = int(intervals[0].start), int(intervals[-1].end)
        conditions = [table.c.bucket >= since, table.c.bucket < until]
        for column, wanted in (only or {}).items():
            conditions.append(table.c[column].in_(list(wanted)))
        async with self._sessions() as session:
            if session.get_bind().dialect.name == "postgresql":
                positions = Grouping(bindparam("positions", _positions(intervals),
                                               type_=postgresql.ARRAY(Integer)))
                index = positions[(table.c.bucket - since) // BUCKET_SECONDS + 1]
                rows = select(index.label("idx"), table).where(*conditions).subquery("rows")
            else:
                spans = _interval_table(intervals)
                rows = (select(spans.c.idx, table)
                        .join_from(spans, table, and_(table.c.bucket >= spans.c.start_at,
                                                      table.c.bucket < spans.c.end_at))
                        .where(*conditions).subquery("rows"))
            columns = [rows.c.idx, *(rows.c[column] for column in by)]
            figures = [(func.max(rows.c[column]) if column in spec.maxima
                        else cast(func.sum(rows.c[column]), BigInteger)).label(column)
                       for column in spec.values]
            result = await session.execute(select(*columns, *figures).group_by(*columns))
            width = len(columns)
            return {(int(row[0]), tuple(row[1:width])):
                    dict(zip(spec.values, (int(value) for value in row[width:]), strict=True))
                    for row in result}

    # ----------------------------------------------------------------------- rebuild

    async def rebuild(self, calls: CallRepository,
                      since: float | None = None, until: float | None = None,
                      batch: int = 500) -> int:
        """Recount from the stored records; how many records were read.

        Without a period everything is recounted from nothing (the tables emptied first).
        With one, the calls that started in [since, until) are followed again: what each
        added is taken out and put back as the current settings count it.
        """
        if since is None and until is None:
            async with self._sessions.begin() as session:
                for table in (call_maxima, call_contributions,
                              *(spec.table for spec in self._tables.values())):
                    await session.execute(delete(table))
        read = 0
        after_pk: int | None = None
        while True:
            page = await calls.records_by_pk(since=since, until=until, after_pk=after_pk,
                                             limit=batch)
            if not page:
                return read
            async with self._sessions.begin() as session:
                for call_pk, record in page:
                    await self.follow(session, call_pk, record)
            read += len(page)
            after_pk = page[-1][0]


def _positions(intervals: Sequence[ReportInterval]) -> list[int]:
    """Each quarter hour's interval index, in order from the first interval's start."""
    return [index for index, interval in enumerate(intervals)
            for _ in range(int(interval.start), int(interval.end), BUCKET_SECONDS)]


def _interval_table(intervals: Sequence[ReportInterval]) -> Subquery:
    """SQLite: the intervals as a table (idx, start_at, end_at) made by ``json_each`` from
    one bound JSON list (``key``: the position in it)."""
    spans = [[int(interval.start), int(interval.end)] for interval in intervals]
    return (text("SELECT CAST(key AS INTEGER) AS idx, "
                 "CAST(json_extract(value, '$[0]') AS INTEGER) AS start_at, "
                 "CAST(json_extract(value, '$[1]') AS INTEGER) AS end_at FROM json_each(:spans)")
            .bindparams(spans=json.dumps(spans))
            .columns(idx=BigInteger, start_at=BigInteger, end_at=BigInteger)
            .subquery("spans"))


def report_rules(settings: Settings) -> ReportRules:
    """What the settings say calls count as ([reports], each queue's T and short-abandon
    limit: the wallboard's too)."""
    return ReportRules(
        service_level_seconds={q.name: float(q.service_level_seconds) for q in settings.queues},
        short_abandon_seconds={q.name: float(q.short_abandon_seconds) for q in settings.queues},
        csat_questions=frozenset(settings.reports.csat_questions),
        csat_satisfied_from=settings.reports.csat_satisfied_from,
        nps_questions=frozenset(settings.reports.nps_questions))
