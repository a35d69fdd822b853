"""The report aggregates kept in step with the call records (docs/reports.md).

``ReportAggregates`` is a ``RecordFollower`` (features/calls/store.py): each time a record is
stored, in the same transaction, it works out what the record adds now
(core/report_contributions.py), compares it with what the call added last time (kept in
``report_call_contributions``) and applies the difference to the quarter-hour tables. Sums
take the difference; a maximum (the longest wait) takes the larger value, except when a
call's old value is taken out (a record stored again after it was closed: rare), when it is
found again among the values the other calls gave (``report_call_maxima``).

Records stored together (``CallRepository.save_many``: the record writer's batches) are
followed together (``follow_many``), with the outcome of following them one by one in a
few statements whatever their number: one takes out and reads back the calls' stored
contributions, the differences are summed per table and key here, and each table gets one
upsert of its rows. Rows are written in one order (table, then key) so that two
transactions never wait for each other in a circle on PostgreSQL. ``rebuild`` recomputes the
aggregates from the stored records with the very same code, so it gives the same result.

The queue rows are also kept per local day of the center's zone (``report_queue_days``: each
call's contribution carries its day row, core/report_contributions.with_day_rows), and
``rolled_up`` reads a report's whole local days from them when the report is in that zone.
Which zone the day rows hold is recorded (``report_day_zone``) by a full ``rebuild``, or
``claim_day_zone`` while nothing is counted yet: a changed [center] time_zone leaves the day
rows unread until the next rebuild.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

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
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement, Grouping
from sqlalchemy.sql.selectable import Select, Subquery

from callcenter.config import Settings
from callcenter.core.records import CallRecord
from callcenter.core.report_contributions import (
    CONTRIBUTORS,
    DAY_LEVELS,
    IVR_DROPOFF_TABLE,
    IVR_TABLE,
    MAXIMA,
    QUEUE_DAY_TABLE,
    QUEUE_TABLE,
    SURVEY_TABLE,
    AggregateRow,
    Contributor,
    Key,
    ReportRules,
    contribution,
)
from callcenter.core.report_periods import (
    BUCKET_SECONDS,
    DayPlan,
    Group,
    ReportInterval,
    day_plan,
)
from callcenter.features.calls.store import CallRepository
from callcenter.features.reports.models import (
    call_contributions,
    call_maxima,
    day_zone,
    ivr_buckets,
    ivr_dropoffs,
    queue_buckets,
    queue_days,
    survey_buckets,
)
from callcenter.store.values import MAX_PAGE, dialect_insert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AggregateTable:
    """One aggregate table: its key columns (the bucket, or a day level's day, first) and
    its numbers."""

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
    AggregateTable(QUEUE_DAY_TABLE, queue_days, ("day", "queue")),
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
        await self.follow_many(session, [(call_pk, record)])

    async def follow_many(self, session: AsyncSession,
                          stored: Sequence[tuple[int, CallRecord]]) -> None:
        """Follow records stored in one transaction (each call once), set-based: one
        statement takes out and reads back what the calls added before, the differences are
        summed per table and key here, and each table gets one upsert for all its rows."""
        new = {call_pk: self.contribution(record) for call_pk, record in stored}
        old = await self._take_contributions(session, list(new))
        changed = [call_pk for call_pk in new
                   if _as_json(old.get(call_pk, [])) != _as_json(new[call_pk])]
        kept = [{"call_pk": call_pk, "aggregate_rows": _as_json(new[call_pk])}
                for call_pk in new if new[call_pk]]
        if kept:  # put back, the unchanged ones as they were
            await session.execute(insert(call_contributions), kept)
        if not changed:
            return  # the common case: an open record stored again adds nothing
        await self._replace_maxima(session, changed, old, new)
        await self._apply(session, [(old.get(call_pk, []), new[call_pk]) for call_pk in changed])

    @staticmethod
    async def _take_contributions(session: AsyncSession, call_pks: list[int],
                                  ) -> dict[int, list[AggregateRow]]:
        """Delete the calls' stored contributions and return them (one statement a page)."""
        found: dict[int, list[AggregateRow]] = {}
        for start in range(0, len(call_pks), MAX_PAGE):
            taken = await session.execute(
                delete(call_contributions)
                .where(call_contributions.c.call_pk.in_(call_pks[start:start + MAX_PAGE]))
                .returning(call_contributions.c.call_pk, call_contributions.c.aggregate_rows))
            found.update((call_pk, _from_json(rows or [])) for call_pk, rows in taken)
        return found

    async def _replace_maxima(self, session: AsyncSession, call_pks: list[int],
                              old: Mapping[int, list[AggregateRow]],
                              new: Mapping[int, list[AggregateRow]]) -> None:
        had = [call_pk for call_pk in call_pks
               if any(self._tables[row.table].maxima for row in old.get(call_pk, []))]
        for start in range(0, len(had), MAX_PAGE):
            await session.execute(delete(call_maxima).where(
                call_maxima.c.call_pk.in_(had[start:start + MAX_PAGE])))
        values = [{"call_pk": call_pk, "table_name": row.table, "row_key": _key_text(row.key),
                   "column_name": name, "value": row.values[name]}
                  for call_pk in call_pks for row in new[call_pk]
                  for name in sorted(self._tables[row.table].maxima) if name in row.values]
        if values:
            await session.execute(insert(call_maxima), values)

    async def _apply(self, session: AsyncSession,
                     changes: Sequence[tuple[list[AggregateRow], list[AggregateRow]]]) -> None:
        """Add each ``new - old`` to the tables: the differences summed per row (a maximum:
        the largest new value, or found again among every call's values when a call's old
        one is taken out), written in (table, key) order, one statement per table."""
        delta: dict[tuple[str, Key], dict[str, int]] = {}
        maxima: dict[tuple[str, Key], dict[str, int]] = {}
        found_again: dict[tuple[str, Key], set[str]] = {}
        summed = {name: tuple(column for column in spec.values if column not in spec.maxima)
                  for name, spec in self._tables.items()}
        kept_largest = {name: spec.maxima for name, spec in self._tables.items()}
        for old, new in changes:
            before = {(row.table, row.key): row.values for row in old}
            after = {(row.table, row.key): row.values for row in new}
            for place in before.keys() | after.keys():
                was, now = before.get(place, {}), after.get(place, {})
                sums = delta.setdefault(place, dict.fromkeys(summed[place[0]], 0))
                for column in sums:
                    sums[column] += now.get(column, 0) - was.get(column, 0)
                largest = maxima.setdefault(place, {})
                for column in kept_largest[place[0]]:
                    largest[column] = max(largest.get(column, 0), now.get(column, 0))
                    if column in was:
                        found_again.setdefault(place, set()).add(column)
        ordered = sorted(delta, key=lambda place: (place[0], _key_text(place[1])))
        for name in sorted({place[0] for place in ordered}):
            spec = self._tables[name]
            run: list[dict[str, Any]] = []  # rows of one statement, in key order
            for place in (place for place in ordered if place[0] == name):
                row = {**dict(zip(spec.keys, place[1], strict=True)), **delta[place],
                       **maxima[place]}
                if place in found_again:  # rare: its own statement, in its turn
                    await self._upsert(session, spec, run)
                    run = []
                    await self._upsert(session, spec, [row], place[1], found_again[place])
                else:
                    run.append(row)
            await self._upsert(session, spec, run)

    async def _upsert(self, session: AsyncSession, spec: AggregateTable,
                      rows: list[dict[str, Any]], key: Key = (),
                      found_again: set[str] | frozenset[str] = frozenset()) -> None:
        """Add the rows' sums to the table and keep the larger maxima; a maximum in
        ``found_again`` (one row, ``key``) is the largest any call still gives it."""
        if not rows:
            return
        table = spec.table
        statement = dialect_insert(session)(table)
        excluded = statement.excluded
        update: dict[str, Any] = {column: table.c[column] + excluded[column]
                                  for column in spec.values if column not in spec.maxima}
        for column in spec.maxima:
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
            index_elements=list(spec.keys), set_=update), rows)

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
                        zone: ZoneInfo | None = None,
                        ) -> dict[Group, dict[str, int]]:
        """The table's quarter-hour rows added up in the database per interval and per the
        ``by`` key columns: what adding up ``read``'s rows per interval in Python gives, with
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
        get wrong.

        A table with a day level, read for a report in ``zone`` (the intervals' zone) when
        that is the zone its day rows hold (``_plan``): the local days that lie wholly in one
        interval come from their day rows, the other quarter hours from theirs, one query
        (``UNION ALL`` of the two, then the GROUP BY): the same answer, from ~96 times fewer
        rows for whole days."""
        if not intervals:
            return {}
        spec = self._tables[name]
        async with self._sessions() as session:
            postgres = session.get_bind().dialect.name == "postgresql"
            plan = await self._plan(session, name, intervals, zone)
            parts = []
            if plan is None or plan.runs:
                parts.append(_quarter_hour_rows(spec, intervals, by, only, postgres,
                                                None if plan is None else plan.runs))
            if plan is not None and plan.days:
                parts.append(_day_rows(self._tables[DAY_LEVELS[name]], plan.days, by, only,
                                       postgres))
            rows = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("rows")
            columns = [rows.c.idx, *(rows.c[column] for column in by)]
            figures = [(func.max(rows.c[column]) if column in spec.maxima
                        else cast(func.sum(rows.c[column]), BigInteger)).label(column)
                       for column in spec.values]
            result = await session.execute(select(*columns, *figures).group_by(*columns))
            width = len(columns)
            return {(int(row[0]), tuple(row[1:width])):
                    dict(zip(spec.values, (int(value) for value in row[width:]), strict=True))
                    for row in result}

    async def _plan(self, session: AsyncSession, name: str,
                    intervals: Sequence[ReportInterval], zone: ZoneInfo | None,
                    ) -> DayPlan | None:
        """Which days to read from the day rows (``core.report_periods.day_plan``), or None
        when there are none to read: the table has no day level, the report is in another
        zone than the configured one, or the day rows hold another zone's days (not
        recounted since [center] time_zone changed) or none yet."""
        kept_in = self.rules.day_zone
        if (name not in DAY_LEVELS or zone is None or kept_in is None
                or zone.key != kept_in.key):
            return None
        if await self.day_zone_counted(session) != kept_in.key:
            return None
        plan = day_plan(intervals, zone)
        return plan if plan.days else None

    @staticmethod
    async def day_zone_counted(session: AsyncSession) -> str | None:
        """The zone the day rows were counted in (``report_day_zone``), None: not yet."""
        zones = (await session.execute(select(day_zone.c.zone))).scalars().all()
        return zones[0] if len(zones) == 1 else None

    async def claim_day_zone(self) -> None:
        """At start. While no call has been counted (a new database), the day rows are the
        configured zone's from the first call on: record it. When another zone is recorded
        ([center] time_zone changed), the day rows this service adds from now on are of
        another zone than the rest: the record is taken out (unread) until ``rebuild``."""
        zone = self.rules.day_zone
        async with self._sessions.begin() as session:
            recorded = await self.day_zone_counted(session)
            if zone is not None and recorded == zone.key:
                return
            if recorded is not None:
                await session.execute(delete(day_zone))
                log.warning("report day rows: counted in %s, [center] time_zone is now %s; "
                            "the reports read the quarter hours only until `callcenter "
                            "reports rebuild`", recorded, zone.key if zone else "none")
                return
            counted = await session.execute(select(call_contributions.c.call_pk).limit(1))
            if zone is not None and counted.first() is None:
                await _record_day_zone(session, zone)

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
                # The day rows are recounted in this zone: read only once all are (below).
                await session.execute(delete(day_zone))
        read = 0
        after_pk: int | None = None
        while True:
            page = await calls.records_by_pk(since=since, until=until, after_pk=after_pk,
                                             limit=batch)
            if not page:
                if since is None and until is None and self.rules.day_zone is not None:
                    async with self._sessions.begin() as session:
                        await _record_day_zone(session, self.rules.day_zone)
                return read
            async with self._sessions.begin() as session:
                await self.follow_many(session, page)
            read += len(page)
            after_pk = page[-1][0]


async def _record_day_zone(session: AsyncSession, zone: ZoneInfo) -> None:
    await session.execute(delete(day_zone))
    await session.execute(insert(day_zone), [{"zone": zone.key}])


def _quarter_hour_rows(spec: AggregateTable, intervals: Sequence[ReportInterval],
                       by: Sequence[str], only: Mapping[str, Sequence[str]] | None,
                       postgres: bool, runs: Sequence[tuple[int, int]] | None) -> Select[Any]:
    """The quarter-hour rows of the period (only those in ``runs`` when given) as (idx, the
    ``by`` columns, the numbers): ``rolled_up``'s two shapes."""
    table = spec.table
    since, until = int(intervals[0].start), int(intervals[-1].end)
    conditions: list[ColumnElement[bool]] = [table.c.bucket >= since, table.c.bucket < until]
    if runs is not None:
        conditions.append(or_(*(and_(table.c.bucket >= start, table.c.bucket < end)
                                for start, end in runs)))
    for column, wanted in (only or {}).items():
        conditions.append(table.c[column].in_(list(wanted)))
    chosen = [*(table.c[column] for column in by), *(table.c[column] for column in spec.values)]
    if postgres:
        positions = Grouping(bindparam("positions", _positions(intervals),
                                       type_=postgresql.ARRAY(Integer)))
        index = positions[(table.c.bucket - since) // BUCKET_SECONDS + 1]
        return select(index.label("idx"), *chosen).where(*conditions)
    spans = _interval_table(intervals)
    return (select(spans.c.idx, *chosen)
            .join_from(spans, table, and_(table.c.bucket >= spans.c.start_at,
                                          table.c.bucket < spans.c.end_at))
            .where(*conditions))


def _day_rows(spec: AggregateTable, days: Sequence[tuple[int, int]], by: Sequence[str],
              only: Mapping[str, Sequence[str]] | None, postgres: bool) -> Select[Any]:
    """The day rows of ``days`` ((the day's start, its interval's index)) as (idx, the ``by``
    columns, the numbers): a join on the day with the days as a table made from one bound
    value (PostgreSQL: two arrays unnested; SQLite: a JSON list)."""
    table = spec.table
    if postgres:
        wanted_days = (text("SELECT day_start, idx FROM unnest(CAST(:day_starts AS BIGINT[]), "
                            "CAST(:day_indexes AS INTEGER[])) AS wanted(day_start, idx)")
                       .bindparams(day_starts=[day for day, _ in days],
                                   day_indexes=[index for _, index in days]))
    else:
        wanted_days = (text("SELECT CAST(json_extract(value, '$[0]') AS INTEGER) AS day_start, "
                            "CAST(json_extract(value, '$[1]') AS INTEGER) AS idx "
                            "FROM json_each(:days)")
                       .bindparams(days=json.dumps([list(day) for day in days])))
    wanted = wanted_days.columns(day_start=BigInteger, idx=Integer).subquery("days")
    conditions = [table.c.day >= days[0][0], table.c.day <= days[-1][0]]
    for column, values in (only or {}).items():
        conditions.append(table.c[column].in_(list(values)))
    return (select(wanted.c.idx, *(table.c[column] for column in by),
                   *(table.c[column] for column in spec.values))
            .join_from(wanted, table, table.c.day == wanted.c.day_start)
            .where(*conditions))


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
    limit: the wallboard's too), and the zone of the day rows ([center] time_zone)."""
    return ReportRules(
        service_level_seconds={q.name: float(q.service_level_seconds) for q in settings.queues},
        short_abandon_seconds={q.name: float(q.short_abandon_seconds) for q in settings.queues},
        csat_questions=frozenset(settings.reports.csat_questions),
        csat_satisfied_from=settings.reports.csat_satisfied_from,
        nps_questions=frozenset(settings.reports.nps_questions),
        day_zone=settings.center.zone)
