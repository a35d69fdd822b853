"""The queue report's wrap-up, kept up to date from both of its sources (docs/reports.md).

A call's wrap-up (core/report_contributions.py ``wrap_up_rows``) depends on its record (the
answered legs, its queue and quarter hour) and on its agents' state log (the wrap-up that
followed each leg, which usually ends after the record was closed). So ``QueueWrapUps``
follows both, in their own transactions:

- ``follow`` is a ``RecordFollower`` (features/calls/store.py): the stored call's wrap-up is
  worked out again;
- ``changes_stored`` is a ``StateChangeFollower`` (features/agents/store.py): for each agent
  in the batch, the calls with a leg of theirs that the new changes can alter
  (``legs_to_recheck_from``: normally the call the agent just finished) are worked out again.

Each time, what the call added before (``report_call_wrap_ups``) is taken out of its queue
row and what it adds now put in: ``wrap_up_ms`` and ``wrapped_calls`` of
``report_queue_buckets``, which only this module writes (the record's own contribution
always adds 0 to them), and the same on the day rows (``report_queue_days``) when the
aggregates keep them (``day_zone``). ``rebuild`` sets both columns to 0 and works out every
call again.

Both sides are set-based: ``follow_many`` (records stored together by ``save_many``) and a
flush of several agents' changes lock, read and write in a fixed number of statements
(``_agent_logs`` reads every agent's changes over the union of their calls' windows at
once; ``changes_in_window`` picks each call's), with the result of one at a time.

On PostgreSQL the two sides take a transaction lock per agent (all of them in one
statement, in the agents' sorted order, before writing any aggregate row) so that a record
closing and its wrap-up ending at the same moment cannot each miss the other's uncommitted
rows; the rows are then written in one order (``report_call_wrap_ups`` by call, the queue
rows in ReportAggregates' key order). The record side must therefore follow before
``ReportAggregates`` (it writes the same rows): see the composition root.
"""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, and_, delete, func, insert, or_, select, text, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from callcenter.core.records import CallRecord
from callcenter.core.report_contributions import (
    QUEUE_TABLE,
    WRAP_UP_STATE,
    WrapUpWindow,
    changes_in_window,
    legs_to_recheck_from,
    wrap_up_rows,
    wrap_up_window,
)
from callcenter.core.report_periods import local_day_start
from callcenter.features.agents.models import AgentStateChangeRow
from callcenter.features.agents.store import StateChange
from callcenter.features.calls.models import AttemptRow
from callcenter.features.calls.store import records_after, records_with_pks
from callcenter.features.reports.models import (
    QUEUE_COLUMNS,
    call_wrap_ups,
    queue_buckets,
    queue_days,
)
from callcenter.store.values import dialect_insert

WRAP_UP_COLUMNS = ("wrap_up_ms", "wrapped_calls")
REBUILD_BATCH = 500  # records read per statement while rebuilding
_LOCK_PREFIX = b"queue-wrap-up:"
_UPSERT_CHUNK = 500  # rows per upsert statement (well under the bound parameters' limit)

QueueKey = tuple[int, str]  # (bucket, queue)


def _at(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


def _key_order(key: QueueKey) -> str:
    """Rows in the order ReportAggregates writes them (its key as JSON), so that the two
    never wait for each other in a circle."""
    return json.dumps(list(key), separators=(",", ":"))


class QueueWrapUps:
    """Keeps the queue rows' wrap-up in step with records and the state log."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 day_zone: ZoneInfo | None = None) -> None:
        """``day_zone``: the zone of the report aggregates' day rows (``ReportRules
        .day_zone``), whose wrap-up columns are kept too; None: no day rows."""
        self._sessions = sessions
        self._day_zone = day_zone

    # ------------------------------------------------------------------ upkeep

    async def follow(self, session: AsyncSession, call_pk: int, record: CallRecord) -> None:
        """The ``RecordFollower``: the stored call's wrap-up, worked out again."""
        await self.follow_many(session, [(call_pk, record)])

    async def follow_many(self, session: AsyncSession,
                          stored: Sequence[tuple[int, CallRecord]]) -> None:
        """``follow`` for records stored in one transaction (each call once), set-based: one
        lock statement, one read of what the calls added, one read of the agents' logs,
        one write per table."""
        await _lock_agents(session, {a.agent_id for _, record in stored
                                     if not record.is_open for a in record.attempts
                                     if a.answered_at is not None})
        await self._recount(session, [(pk, _as_stored(record)) for pk, record in stored])

    async def changes_stored(self, session: AsyncSession,
                             earliest: Mapping[str, float]) -> None:
        """The ``StateChangeFollower``: changes were just stored in ``session``; per agent,
        the earliest one's time. The calls whose wrap-up they can alter are worked out
        again. A fixed number of statements however many agents."""
        if not earliest:
            return
        await _lock_agents(session, earliest)
        log, legs, same_instant = AgentStateChangeRow, AttemptRow, aliased(AgentStateChangeRow)
        # The last change logged at an instant holds: one followed at its instant by
        # another is not where a state began.
        overtaken = select(same_instant.id).where(
            same_instant.agent_id == log.agent_id, same_instant.at == log.at,
            same_instant.id > log.id).exists()
        agents = sorted(earliest)
        # Each agent's latest such instant: walked back from the change along the agent's
        # log (the first match, not a max over the whole log).
        latest_other = union_all(*(
            select(select(log.agent_id, log.at)
                   .where(log.agent_id == agent_id, log.at < _at(earliest[agent_id]),
                          log.state != WRAP_UP_STATE, ~overtaken)
                   .order_by(log.at.desc(), log.id.desc()).limit(1).subquery())
            for agent_id in agents))
        other_before = {agent_id: at for agent_id, at in
                        (await session.execute(latest_other)).all()}
        conditions = []
        for agent_id in agents:
            at = other_before.get(agent_id)
            since = legs_to_recheck_from(None if at is None else at.timestamp())
            conditions.append(and_(legs.agent_id == agent_id, legs.ended_at >= _at(since))
                              if math.isfinite(since) else legs.agent_id == agent_id)
        pks = set(await session.scalars(
            select(legs.call_pk).where(or_(*conditions), legs.answered_at.is_not(None),
                                       legs.ended_at.is_not(None)).distinct()))
        if pks:
            # Legs only: a call's wrap-up depends on nothing else in its record (wrap_up_rows
            # reads its queue, times, disposition and legs).
            await self._recount(session, await records_with_pks(session, pks,
                                                                legs_only=True))

    async def _recount(self, session: AsyncSession,
                       records: Sequence[tuple[int, CallRecord]]) -> None:
        """Replace what each call's wrap-up added with what it adds now."""
        pks = [pk for pk, _ in records]
        old = {row.call_pk: row for row in (await session.execute(
            select(call_wrap_ups).where(call_wrap_ups.c.call_pk.in_(pks)))).all()}
        windows = {pk: wrap_up_window(record) for pk, record in records}
        logs = await _agent_logs(session, [w for w in windows.values() if w is not None])
        changes: dict[QueueKey, list[int]] = {}
        gone: list[int] = []
        added: list[dict[str, Any]] = []
        for call_pk, record in records:
            new = _wrap_up_from(record, windows[call_pk], logs)
            was = old.get(call_pk)
            before = None if was is None else (
                (was.bucket, was.queue), [was.wrap_up_ms, was.wrapped_calls])
            if before == new:
                continue  # the usual case: nothing this call added has changed
            if before is not None:
                _add(changes, before[0], [-amount for amount in before[1]])
                gone.append(call_pk)
            if new is not None:
                _add(changes, new[0], new[1])
                added.append({"call_pk": call_pk, "bucket": new[0][0], "queue": new[0][1],
                              "wrap_up_ms": new[1][0], "wrapped_calls": new[1][1]})
        if gone:
            await session.execute(delete(call_wrap_ups)
                                  .where(call_wrap_ups.c.call_pk.in_(sorted(gone))))
        if added:
            await session.execute(insert(call_wrap_ups),
                                  sorted(added, key=lambda row: row["call_pk"]))
        await self._bump(session, changes)

    async def _bump(self, session: AsyncSession, changes: Mapping[QueueKey, list[int]]) -> None:
        """The quarter-hour rows, then the day rows (the report aggregates' order)."""
        await _bump(session, queue_buckets, "bucket", changes)
        if self._day_zone is not None:
            days: dict[QueueKey, list[int]] = {}
            for (bucket, queue), amounts in changes.items():
                _add(days, (local_day_start(bucket, self._day_zone), queue), amounts)
            await _bump(session, queue_days, "day", days)

    # ------------------------------------------------------------------ rebuild

    async def rebuild(self) -> int:
        """Every call's wrap-up worked out again, in one transaction; how many calls add
        one. Run after the queue aggregates are rebuilt (they may empty the table)."""
        async with self._sessions.begin() as session:
            for table in (queue_buckets, queue_days):
                await session.execute(update(table).values(
                    {column: 0 for column in WRAP_UP_COLUMNS}))
            await session.execute(delete(call_wrap_ups))
            counted, after = 0, 0
            changes: dict[QueueKey, list[int]] = {}
            while batch := await records_after(session, after, REBUILD_BATCH):
                rows = []
                windows = [wrap_up_window(record) for _, record in batch]
                logs = await _agent_logs(session, [w for w in windows if w is not None])
                for (call_pk, record), window in zip(batch, windows, strict=True):
                    new = _wrap_up_from(record, window, logs)
                    if new is not None:
                        _add(changes, new[0], new[1])
                        rows.append({"call_pk": call_pk, "bucket": new[0][0],
                                     "queue": new[0][1], "wrap_up_ms": new[1][0],
                                     "wrapped_calls": new[1][1]})
                if rows:
                    await session.execute(insert(call_wrap_ups), rows)
                counted += len(rows)
                after = batch[-1][0]
                session.expunge_all()  # the rows read are not needed again
            await self._bump(session, changes)
        return counted


def _as_stored(record: CallRecord) -> CallRecord:
    """The record's times as the database keeps them (whole microseconds), as the state log
    side and a rebuild read them back: a leg's end 5 s from a wrap-up's start is then the
    same match on every side."""
    def stored(moment: float | None) -> float | None:
        return None if moment is None else _at(moment).timestamp()

    return dataclasses.replace(
        record, queued_at=stored(record.queued_at), ended_at=stored(record.ended_at),
        attempts=[dataclasses.replace(leg, started_at=_at(leg.started_at).timestamp(),
                                      ended_at=stored(leg.ended_at),
                                      answered_at=stored(leg.answered_at))
                  for leg in record.attempts])


# --------------------------------------------------------------------------- statements


def _wrap_up_from(record: CallRecord, window: WrapUpWindow | None,
                  logs: Mapping[str, Sequence[StateChange]],
                  ) -> tuple[QueueKey, list[int]] | None:
    """What the call's wrap-up adds now: its queue row's key and amounts, or None. ``logs``:
    each agent's changes over (at least) the union of the windows read (``_agent_logs``)."""
    if window is None:
        return None
    # Compared as the database compares them: at whole microseconds.
    since, until = _at(window.since).timestamp(), _at(window.until).timestamp()
    changes = [change for agent_id in window.agents
               for change in changes_in_window(logs[agent_id], since, until)]
    rows = wrap_up_rows(record, changes)
    if not rows:
        return None
    (row,) = rows
    assert row.table == QUEUE_TABLE
    bucket, queue = row.key
    return (int(bucket), str(queue)), [row.values[column] for column in WRAP_UP_COLUMNS]


async def _agent_logs(session: AsyncSession, windows: Iterable[WrapUpWindow],
                      ) -> dict[str, list[StateChange]]:
    """Each agent's changes over the union of their windows, in logged order: one statement
    for all the agents (each agent's part as ``_agent_window`` reads it); an agent whose
    window ends at an instant where a wrap-up was logged after the ending change (rare)
    is read on by ``_agent_window``."""
    union: dict[str, tuple[float, float]] = {}
    for window in windows:
        for agent_id in window.agents:
            since, until = union.get(agent_id, (window.since, window.until))
            union[agent_id] = (min(since, window.since), max(until, window.until))
    if not union:
        return {}
    log = AgentStateChangeRow
    parts = []
    for agent_id, (since, until) in sorted(union.items()):
        columns = select(log.agent_id, log.id, log.at, log.state, log.reason,
                         log.previous).where(log.agent_id == agent_id)
        last = (select(func.min(log.at))
                .where(log.agent_id == agent_id, log.at > _at(until),
                       log.state != WRAP_UP_STATE).scalar_subquery())
        parts.append(select(columns.where(log.at < _at(since))
                            .order_by(log.at.desc(), log.id.desc()).limit(1).subquery()))
        parts.append(columns.where(log.at >= _at(since), (log.at <= last) | last.is_(None)))
    both = union_all(*parts).subquery()
    rows = (await session.execute(
        select(both.c.agent_id, both.c.at, both.c.state, both.c.reason, both.c.previous)
        .order_by(both.c.agent_id, both.c.at, both.c.id))).all()
    logs: dict[str, list[StateChange]] = {agent_id: [] for agent_id in union}
    for agent_id, at, state, reason, previous in rows:
        logs[agent_id].append(StateChange(agent_id=agent_id, state=state, reason=reason,
                                          at=at.timestamp(), previous=previous))
    for agent_id, (since, until) in union.items():
        read = logs[agent_id]
        ended = any(c.at > _at(until).timestamp() and c.state != WRAP_UP_STATE for c in read)
        if ended and read[-1].state == WRAP_UP_STATE:
            logs[agent_id] = await _agent_window(
                session, agent_id, WrapUpWindow((agent_id,), since, until))
    return logs


async def _agent_window(session: AsyncSession, agent_id: str, window: WrapUpWindow,
                        ) -> list[StateChange]:
    """The agent's changes from ``window.since`` up to their first one after
    ``window.until`` that is not a wrap-up and is the last at its instant (all of them if
    there is none yet), in logged order, led by their last change before ``since`` (the
    state they were in then: a wrap-up logged twice in a row is one)."""
    log = AgentStateChangeRow
    columns = select(log.id, log.at, log.state, log.reason, log.previous).where(
        log.agent_id == agent_id)
    lead = (columns.where(log.at < _at(window.since))
            .order_by(log.at.desc(), log.id.desc()).limit(1).subquery())
    since, after = select(lead), _at(window.until)
    changes: list[StateChange] = []
    while True:
        last = (select(func.min(log.at))
                .where(log.agent_id == agent_id, log.at > after,
                       log.state != WRAP_UP_STATE).scalar_subquery())
        rest = columns.where(log.at >= _at(window.since) if not changes else log.at > after,
                             (log.at <= last) | last.is_(None))
        both = (union_all(since, rest) if since is not None else rest).subquery()
        rows = (await session.execute(select(both.c.at, both.c.state, both.c.reason,
                                             both.c.previous)
                                      .order_by(both.c.at, both.c.id))).all()
        changes.extend(StateChange(agent_id=agent_id, state=state, reason=reason,
                                   at=at.timestamp(), previous=previous)
                       for at, state, reason, previous in rows)
        # Done unless a wrap-up was logged after the ending change, at the same instant
        # (the last change at an instant holds): then it goes on, read on. No ending change
        # read (none logged yet): everything was read.
        ended = any(at > after and state != WRAP_UP_STATE for at, state, *_ in rows)
        if not ended or rows[-1][1] != WRAP_UP_STATE:
            return changes
        since, after = None, rows[-1][0]


async def _lock_agents(session: AsyncSession, agents: Iterable[str]) -> None:
    """PostgreSQL: a transaction lock per agent, taken in the agents' order by one
    statement (see the module's note)."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: one writer at a time already
    keys = [zlib.crc32(_LOCK_PREFIX + agent_id.encode()) for agent_id in sorted(set(agents))]
    if not keys:
        return
    # unnest ... WITH ORDINALITY yields the keys in the array's order; the locks are taken
    # row by row in that order.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(k.key) FROM unnest(CAST(:keys AS bigint[]))"
             " WITH ORDINALITY AS k(key, n) ORDER BY k.n").bindparams(keys=keys))


def _add(changes: dict[QueueKey, list[int]], key: QueueKey, amounts: list[int]) -> None:
    current = changes.setdefault(key, [0] * len(WRAP_UP_COLUMNS))
    for index, amount in enumerate(amounts):
        current[index] += amount


async def _bump(session: AsyncSession, table: Table, time_column: str,
                changes: Mapping[QueueKey, list[int]]) -> None:
    """Add to the queue rows' wrap-up columns: one atomic upsert of the rows, in key order
    (in chunks if there are very many); a row not there yet starts at zero everywhere
    else."""
    rows: list[dict[str, Any]] = []
    for key in sorted(changes, key=_key_order):
        amounts = dict(zip(WRAP_UP_COLUMNS, changes[key], strict=True))
        if any(amounts.values()):
            rows.append({time_column: key[0], "queue": key[1],
                         **dict.fromkeys(QUEUE_COLUMNS, 0), **amounts})
    for first in range(0, len(rows), _UPSERT_CHUNK):
        statement = dialect_insert(session)(table).values(
            rows[first:first + _UPSERT_CHUNK])
        await session.execute(statement.on_conflict_do_update(
            index_elements=[time_column, "queue"],
            set_={column: table.c[column] + statement.excluded[column]
                  for column in WRAP_UP_COLUMNS}))


__all__ = ["WRAP_UP_COLUMNS", "QueueWrapUps"]
