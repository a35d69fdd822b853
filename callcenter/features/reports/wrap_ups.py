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

On PostgreSQL the two sides take a transaction lock per agent (sorted, before writing any
aggregate row) so that a record closing and its wrap-up ending at the same moment cannot
each miss the other's uncommitted rows. The record side must therefore follow before
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

from sqlalchemy import Table, delete, func, insert, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from callcenter.core.records import CallRecord
from callcenter.core.report_contributions import (
    QUEUE_TABLE,
    WRAP_UP_STATE,
    WrapUpWindow,
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
        if not record.is_open:
            await _lock_agents(session, {a.agent_id for a in record.attempts
                                         if a.answered_at is not None})
        await self._recount(session, [(call_pk, _as_stored(record))])

    async def changes_stored(self, session: AsyncSession,
                             earliest: Mapping[str, float]) -> None:
        """The ``StateChangeFollower``: changes were just stored in ``session``; per agent,
        the earliest one's time. The calls whose wrap-up they can alter are worked out
        again."""
        await _lock_agents(session, earliest)
        log, legs, same_instant = AgentStateChangeRow, AttemptRow, aliased(AgentStateChangeRow)
        pks: set[int] = set()
        for agent_id, at in sorted(earliest.items()):
            # The last change logged at an instant holds: one followed at its instant by
            # another is not where a state began.
            overtaken = select(same_instant.id).where(
                same_instant.agent_id == agent_id, same_instant.at == log.at,
                same_instant.id > log.id).exists()
            other_before = await session.scalar(
                select(func.max(log.at)).where(log.agent_id == agent_id, log.at < _at(at),
                                               log.state != WRAP_UP_STATE, ~overtaken))
            since = legs_to_recheck_from(
                None if other_before is None else other_before.timestamp())
            query = select(legs.call_pk).where(legs.agent_id == agent_id,
                                               legs.answered_at.is_not(None),
                                               legs.ended_at.is_not(None))
            if math.isfinite(since):
                query = query.where(legs.ended_at >= _at(since))
            pks.update(await session.scalars(query.distinct()))
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
        changes: dict[QueueKey, list[int]] = {}
        for call_pk, record in records:
            new = await _wrap_up_of(session, record)
            was = old.get(call_pk)
            before = None if was is None else (
                (was.bucket, was.queue), [was.wrap_up_ms, was.wrapped_calls])
            if before == new:
                continue  # the usual case: nothing this call added has changed
            if before is not None:
                _add(changes, before[0], [-amount for amount in before[1]])
                await session.execute(delete(call_wrap_ups)
                                      .where(call_wrap_ups.c.call_pk == call_pk))
            if new is not None:
                _add(changes, new[0], new[1])
                await session.execute(insert(call_wrap_ups).values(
                    call_pk=call_pk, bucket=new[0][0], queue=new[0][1],
                    wrap_up_ms=new[1][0], wrapped_calls=new[1][1]))
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
                for call_pk, record in batch:
                    new = await _wrap_up_of(session, record)
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


async def _wrap_up_of(session: AsyncSession, record: CallRecord,
                      ) -> tuple[QueueKey, list[int]] | None:
    """What the call's wrap-up adds now: its queue row's key and amounts, or None."""
    rows = wrap_up_rows(record, await _window_changes(session, record))
    if not rows:
        return None
    (row,) = rows
    assert row.table == QUEUE_TABLE
    bucket, queue = row.key
    return (int(bucket), str(queue)), [row.values[column] for column in WRAP_UP_COLUMNS]


async def _window_changes(session: AsyncSession, record: CallRecord) -> list[StateChange]:
    window = wrap_up_window(record)
    if window is None:
        return []
    changes: list[StateChange] = []
    for agent_id in window.agents:
        changes.extend(await _agent_window(session, agent_id, window))
    return changes


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
    """PostgreSQL: one transaction lock per agent, in order (see the module's note)."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: one writer at a time already
    for agent_id in sorted(set(agents)):
        key = zlib.crc32(_LOCK_PREFIX + agent_id.encode())
        await session.execute(select(func.pg_advisory_xact_lock(key)))


def _add(changes: dict[QueueKey, list[int]], key: QueueKey, amounts: list[int]) -> None:
    current = changes.setdefault(key, [0] * len(WRAP_UP_COLUMNS))
    for index, amount in enumerate(amounts):
        current[index] += amount


async def _bump(session: AsyncSession, table: Table, time_column: str,
                changes: Mapping[QueueKey, list[int]]) -> None:
    """Add to the queue rows' wrap-up columns (an atomic upsert per row, in key order); a
    row not there yet starts at zero everywhere else."""
    for key in sorted(changes, key=_key_order):
        amounts = dict(zip(WRAP_UP_COLUMNS, changes[key], strict=True))
        if not any(amounts.values()):
            continue
        row: dict[str, Any] = {time_column: key[0], "queue": key[1],
                               **dict.fromkeys(QUEUE_COLUMNS, 0), **amounts}
        statement = dialect_insert(session)(table).values(row)
        await session.execute(statement.on_conflict_do_update(
            index_elements=[time_column, "queue"],
            set_={column: table.c[column] + statement.excluded[column]
                  for column in WRAP_UP_COLUMNS}))


__all__ = ["WRAP_UP_COLUMNS", "QueueWrapUps"]
