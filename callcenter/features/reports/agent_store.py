"""The agent aggregates in the database: kept up to date where their sources are stored, in
the same transaction, and rebuildable from those sources with the same result.

- ``changes_stored`` follows the agent directory's state log (``AgentDirectory
  .record_state_changes``): for each agent in the batch, the buckets from the one holding
  the change before the batch's earliest on are laid out again from the log. In the usual
  case (changes arrive in order) that is one or two buckets and a handful of changes. Four
  statements per batch of up to ``RELAY_PAGE`` agents.
- ``follow`` is a ``RecordFollower`` (features/calls/store.py): each time a call record is
  stored, its old credit is taken off the agents' buckets and its new one added;
  ``follow_many`` does it for records stored together in three or four statements.
- ``disposed`` follows a campaign disposition (features/campaigns/attempts.py ``dispose``).
- ``rebuild`` empties the three tables and derives them again from every state change,
  call record and disposition.

``totals`` reads the sums back per agent and bucket, adding each agent's still-open state
(their last change up to ``now``) that the aggregates cannot hold yet.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    String,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.config import Settings
from callcenter.core.agent_figures import (
    AgentTotals,
    CallCredit,
    LoggedChange,
    ProductivityPoints,
    StateKey,
    bucket_of,
    call_credits,
    disposition_credit,
    micros,
    micros_of,
    open_span_time,
    points_from_settings,
    state_time,
)
from callcenter.core.records import CallRecord
from callcenter.features.agents.models import AgentRow, AgentStateChangeRow
from callcenter.features.calls.store import records_after
from callcenter.features.campaigns.models import CampaignAttemptRow
from callcenter.features.reports.agent_models import (
    AgentCallTimeRow,
    AgentCreditRow,
    AgentStateTimeRow,
)
from callcenter.store.values import MAX_PAGE, dialect_insert

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
REBUILD_BATCH = 500  # call records read per statement while rebuilding
RELAY_PAGE = 50  # agents whose time is laid out again per statement (a UNION ALL of each)
# Up to this many intervals the database sums per interval (one CASE over their starts);
# beyond, per bucket (15-minute rows over months: the answer is that long anyway).
MAX_CASE_INTERVALS = 400


def productivity_points(settings: Settings) -> ProductivityPoints:
    """The settings' ``[reports] points_*`` (checked when the settings were loaded)."""
    reports = settings.reports
    return points_from_settings(reports.points_inbound_call, reports.points_outbound_call,
                                reports.points_transfer, reports.points_dispositions)


def as_datetime(at_micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=at_micros)


@dataclass(frozen=True)
class RebuildCounts:
    state_changes: int
    calls: int
    dispositions: int


class AgentAggregates:
    """Agents' time and calls per 15-minute UTC bucket (see the module's docstring)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 points: ProductivityPoints | None = None) -> None:
        self._sessions = sessions
        self.points = points or ProductivityPoints()

    # ------------------------------------------------------------------ upkeep: states

    async def changes_stored(self, session: AsyncSession,
                             earliest: Mapping[str, float]) -> None:
        """Changes were just stored in ``session``: per agent, the earliest one's time.
        Each agent's time is laid out again from the bucket of its change before that one,
        for every agent of the batch in four statements (a page of agents at a time)."""
        agents = sorted(earliest.items())
        for first in range(0, len(agents), RELAY_PAGE):
            page = {agent_id: micros(at) for agent_id, at in agents[first:first + RELAY_PAGE]}
            starts = await _relay_starts(session, page)
            changes = await _changes_from(session, starts)
            state = AgentStateTimeRow
            await session.execute(
                delete(state)
                .where(or_(*(and_(state.agent_id == agent_id,
                                  state.bucket >= as_datetime(start))
                             for agent_id, start in starts.items())))
                .execution_options(synchronize_session=False))
            totals: dict[StateKey, int] = {}
            for agent_id, start in starts.items():
                totals.update(state_time(changes.get(agent_id, []), since=start))
            await _insert_state_time(session, totals)

    # ------------------------------------------------------------------ upkeep: calls

    async def follow(self, session: AsyncSession, call_pk: int, record: CallRecord) -> None:
        """The ``RecordFollower``: replace what this call added to its agents' buckets."""
        await self.follow_many(session, [(call_pk, record)])

    async def follow_many(self, session: AsyncSession,
                          stored: Sequence[tuple[int, CallRecord]]) -> None:
        """``follow`` for records stored in one transaction, in a few statements."""
        await self._credit(session, {f"call:{call_pk}": call_credits(record, self.points)
                                     for call_pk, record in stored})

    async def disposed(self, session: AsyncSession, attempt_id: int, agent_id: str | None,
                       disposition: str, disposed_at: float) -> None:
        """A campaign call was disposed: the points its disposition earns its agent."""
        credits = [] if agent_id is None else [
            disposition_credit(agent_id, disposition, disposed_at, self.points)]
        await self._credit(session, {f"disposition:{attempt_id}": credits})

    async def _credit(self, session: AsyncSession,
                      credits_by_source: Mapping[str, Sequence[CallCredit]]) -> None:
        """Replace each source's credits: the old ones taken out and read back (one
        statement a page), the new ones inserted (one), the differences summed per agent
        and bucket and added in (agent, bucket) order (one upsert for all)."""
        credit_row = AgentCreditRow
        sources = list(credits_by_source)
        changes: dict[tuple[str, int], list[int]] = {}
        for start in range(0, len(sources), MAX_PAGE):
            old = (await session.execute(  # taken out and read back in one statement
                delete(credit_row).where(credit_row.source.in_(sources[start:start + MAX_PAGE]))
                .returning(credit_row.agent_id, credit_row.bucket, credit_row.handled,
                           credit_row.transfers, credit_row.points, credit_row.hold_micros)
                .execution_options(synchronize_session=False))).all()
            for agent_id, bucket, handled, transfers, points, hold in old:
                _add(changes, agent_id, micros_of(bucket), -handled, -transfers, -points,
                     -hold)
        rows = []
        for source, credits in credits_by_source.items():
            for c in credits:
                _add(changes, c.agent_id, c.bucket, c.handled, c.transfers, c.points, c.hold)
                if _counts(c):
                    rows.append({"source": source, "agent_id": c.agent_id,
                                 "bucket": as_datetime(c.bucket), "handled": c.handled,
                                 "transfers": c.transfers, "points": c.points,
                                 "hold_micros": c.hold})
        if rows:
            await session.execute(AgentCreditRow.__table__.insert(), rows)
        await _bump(session, sorted((key, amounts) for key, amounts in changes.items()
                                    if any(amounts)))

    # ------------------------------------------------------------------ rebuild

    async def rebuild(self) -> RebuildCounts:
        """Derive the three tables again from the raw data, in one transaction."""
        async with self._sessions.begin() as session:
            for table in (AgentStateTimeRow, AgentCallTimeRow, AgentCreditRow):
                await session.execute(delete(table).execution_options(
                    synchronize_session=False))
            agent_ids = list(await session.scalars(
                select(AgentStateChangeRow.agent_id).distinct()))
            change_count = 0
            for agent_id in sorted(agent_ids):
                changes = await _changes(session, agent_id, None)
                change_count += len(changes)
                await _insert_state_time(session, state_time(changes))
            calls, after = 0, 0
            while batch := await records_after(session, after, REBUILD_BATCH):
                await self.follow_many(session, batch)
                calls += len(batch)
                after = batch[-1][0]
                session.expunge_all()  # the rows read are not needed again
            disposed = (await session.execute(
                select(CampaignAttemptRow.id, CampaignAttemptRow.agent_id,
                       CampaignAttemptRow.disposition, CampaignAttemptRow.disposed_at)
                .where(CampaignAttemptRow.disposition.is_not(None),
                       CampaignAttemptRow.disposed_at.is_not(None))
                .order_by(CampaignAttemptRow.id))).all()
            for attempt_id, agent_id, disposition, disposed_at in disposed:
                await self.disposed(session, attempt_id, agent_id, disposition,
                                    disposed_at.timestamp())
        return RebuildCounts(change_count, calls, len(disposed))

    # ------------------------------------------------------------------ reading

    async def totals(self, since: float, until: float, *, now: float,
                     agents: Iterable[str] | None = None,
                     ) -> dict[str, dict[int, AgentTotals]]:
        """agent -> bucket start (microseconds) -> sums, for the buckets in [since, until)
        (bucket-aligned: the buckets that start in it). ``agents``: only those (None: all
        with any figures). Each agent's last state, still open, counts up to ``now``."""
        low, high = as_datetime(bucket_of(micros(since))), as_datetime(micros(until))
        wanted = None if agents is None else sorted(set(agents))
        result: dict[str, dict[int, AgentTotals]] = {}

        def cell(agent_id: str, bucket: int) -> AgentTotals:
            return result.setdefault(agent_id, {}).setdefault(bucket, AgentTotals())

        state_query = select(AgentStateTimeRow).where(
            AgentStateTimeRow.bucket >= low, AgentStateTimeRow.bucket < high)
        call_query = select(AgentCallTimeRow).where(
            AgentCallTimeRow.bucket >= low, AgentCallTimeRow.bucket < high)
        if wanted is not None:
            state_query = state_query.where(AgentStateTimeRow.agent_id.in_(wanted))
            call_query = call_query.where(AgentCallTimeRow.agent_id.in_(wanted))
        async with self._sessions() as session:
            for row in await session.scalars(state_query):
                cell(row.agent_id, micros_of(row.bucket)).add_state(
                    row.state, row.reason, row.micros)
            for row in await session.scalars(call_query):
                cell(row.agent_id, micros_of(row.bucket)).add_credit(
                    row.handled, row.transfers, row.points, row.hold_micros)
            for last in await _last_changes(session, wanted, high):
                for key, amount in open_span_time(last, min(micros(now), micros(until))
                                                  ).items():
                    if micros_of(low) <= key.bucket:
                        cell(key.agent_id, key.bucket).add_state(key.state, key.reason,
                                                                 amount)
        return result

    async def interval_totals(self, starts: Sequence[float], until: float, *, now: float,
                              agents: Iterable[str]) -> dict[str, dict[int, AgentTotals]]:
        """agent -> interval index -> sums, for intervals starting at ``starts`` (in order,
        on buckets) and the last ending at ``until``; summed by the database (per interval
        when there are few, else per bucket), the agents' open states added."""
        wanted = sorted(set(agents))
        result: dict[str, dict[int, AgentTotals]] = {}
        if not starts or not wanted:
            return result
        start_micros = [micros(start) for start in starts]
        low, high = as_datetime(start_micros[0]), as_datetime(micros(until))

        def index_of(bucket: int) -> int:
            return bisect.bisect_right(start_micros, bucket) - 1

        def cell(agent_id: str, index: int) -> AgentTotals:
            return result.setdefault(agent_id, {}).setdefault(index, AgentTotals())

        def keyed(table: Any) -> Any:
            if len(starts) > MAX_CASE_INTERVALS:
                return table.bucket  # per bucket: as many rows as the answer has anyway
            return case(*[(table.bucket >= as_datetime(start), literal(index))
                          for index, start in reversed(list(enumerate(start_micros)))],
                        else_=literal(0))

        def where(table: Any) -> list[Any]:
            return [table.bucket >= low, table.bucket < high, table.agent_id.in_(wanted)]

        def index_from(key: Any) -> int:
            return index_of(micros_of(key)) if isinstance(key, datetime) else int(key)

        state = AgentStateTimeRow
        # Grouped outside: PostgreSQL would not see the CASE (its bound starts) in the select
        # list as the same expression as the GROUP BY's.
        states = select(keyed(state).label("key"), state.agent_id, state.state, state.reason,
                        state.micros).where(*where(state)).subquery()
        calls_table = AgentCallTimeRow
        calls = select(keyed(calls_table).label("key"), calls_table.agent_id,
                       calls_table.handled, calls_table.transfers, calls_table.points,
                       calls_table.hold_micros).where(*where(calls_table)).subquery()
        async with self._sessions() as session:
            for key, agent_id, state_name, reason, amount in await session.execute(
                    select(states.c.key, states.c.agent_id, states.c.state, states.c.reason,
                           func.sum(states.c.micros))
                    .group_by(states.c.key, states.c.agent_id, states.c.state,
                              states.c.reason)):
                cell(agent_id, index_from(key)).add_state(state_name, reason, int(amount))
            for key, agent_id, handled, transfers, points, hold in await session.execute(
                    select(calls.c.key, calls.c.agent_id, func.sum(calls.c.handled),
                           func.sum(calls.c.transfers), func.sum(calls.c.points),
                           func.sum(calls.c.hold_micros))
                    .group_by(calls.c.key, calls.c.agent_id)):
                cell(agent_id, index_from(key)).add_credit(int(handled), int(transfers),
                                                           int(points), int(hold))
            for last in await _last_changes(session, wanted, high):
                for span, amount in open_span_time(last, min(micros(now), micros(until))
                                                   ).items():
                    if span.bucket >= start_micros[0]:
                        cell(span.agent_id, index_of(span.bucket)).add_state(
                            span.state, span.reason, amount)
        return result


# --------------------------------------------------------------------------- statements


async def _changes(session: AsyncSession, agent_id: str, start: int | None,
                   ) -> list[LoggedChange]:
    """The agent's changes from ``start`` on, led by the last one before it (whose state
    runs into ``start``); all of them when ``start`` is None. In logged order."""
    log = AgentStateChangeRow
    query = select(log.at, log.state, log.reason, log.previous).where(
        log.agent_id == agent_id)
    rows: list[Any] = []
    if start is not None:
        lead = (await session.execute(
            query.where(log.at < as_datetime(start))
            .order_by(log.at.desc(), log.id.desc()).limit(1))).all()
        rows.extend(lead)
        query = query.where(log.at >= as_datetime(start))
    rows.extend((await session.execute(query.order_by(log.at, log.id))).all())
    return [LoggedChange(agent_id, micros_of(at), state, reason, previous)
            for at, state, reason, previous in rows]


@functools.cache
def _relay_statements(count: int) -> tuple[Any, Any]:
    """The two reads of ``changes_stored`` for ``count`` agents, built once per count with
    named parameters (``agent<i>``, ``new_at<i>``, ``start<i>``): building and keying a UNION
    of many selects costs more than running it."""
    log = AgentStateChangeRow
    at_type = log.at.type

    def agent(index: int) -> Any:
        return bindparam(f"agent{index}", type_=String)

    starts = union_all(*(
        select(agent(i).label("agent_id"), func.max(log.at).label("at"))
        .where(log.agent_id == agent(i), log.at < bindparam(f"new_at{i}", type_=at_type))
        for i in range(count)))
    parts = []
    for i in range(count):
        start_at = bindparam(f"start{i}", type_=at_type)
        lead_at = (select(func.max(log.at))
                   .where(log.agent_id == agent(i), log.at < start_at).scalar_subquery())
        parts.append(select(log.agent_id, log.at, log.state, log.reason, log.previous, log.id)
                     .where(log.agent_id == agent(i), log.at >= func.coalesce(lead_at, start_at)))
    return starts, union_all(*parts)


async def _relay_starts(session: AsyncSession, new_at: Mapping[str, int]) -> dict[str, int]:
    """Per agent, the bucket its time is laid out again from: the one holding its change
    before ``new_at`` (that change's span ends differently now), else ``new_at``'s. One
    statement: an index lookup per agent."""
    statement, _ = _relay_statements(len(new_at))
    params: dict[str, Any] = {}
    for index, (agent_id, at) in enumerate(new_at.items()):
        params[f"agent{index}"], params[f"new_at{index}"] = agent_id, as_datetime(at)
    found = {agent_id: at for agent_id, at in await session.execute(statement, params)}
    return {agent_id: bucket_of(min(at, micros_of(found[agent_id]))
                                if found.get(agent_id) is not None else at)
            for agent_id, at in new_at.items()}


async def _changes_from(session: AsyncSession, starts: Mapping[str, int],
                        ) -> dict[str, list[LoggedChange]]:
    """Per agent, its changes from its start on, led by the last one before it (whose state
    runs into the start); in logged order, as ``_changes`` gives them. One statement."""
    _, statement = _relay_statements(len(starts))
    params: dict[str, Any] = {}
    for index, (agent_id, start) in enumerate(starts.items()):
        params[f"agent{index}"], params[f"start{index}"] = agent_id, as_datetime(start)
    rows: dict[str, list[Any]] = {}
    for row in await session.execute(statement, params):
        rows.setdefault(row.agent_id, []).append(row)
    found: dict[str, list[LoggedChange]] = {}
    for agent_id, start in starts.items():
        ordered = sorted(rows.get(agent_id, []), key=lambda row: (micros_of(row.at), row.id))
        before = [row for row in ordered if micros_of(row.at) < start]
        kept = [*before[-1:], *(row for row in ordered if micros_of(row.at) >= start)]
        found[agent_id] = [LoggedChange(agent_id, micros_of(row.at), row.state, row.reason,
                                        row.previous) for row in kept]
    return found


async def _last_changes(session: AsyncSession, agents: list[str] | None, before: datetime,
                        ) -> list[LoggedChange]:
    """Each agent's latest change, if it is before ``before`` and still the latest: a state
    whose end is not logged yet. One index lookup per agent (the latest of its log), not a
    scan of the whole log."""
    log = AgentStateChangeRow
    newest = (select(func.max(log.at)).where(log.agent_id == AgentRow.id)
              .correlate(AgentRow).scalar_subquery())
    latest = select(AgentRow.id.label("agent_id"), newest.label("at"))
    if agents is not None:
        latest = latest.where(AgentRow.id.in_(agents))
    latest_sub = latest.subquery()
    query = (select(log.agent_id, log.at, log.state, log.reason, log.previous, log.id)
             .join(latest_sub, (latest_sub.c.agent_id == log.agent_id)
                   & (latest_sub.c.at == log.at))
             .where(log.at < before)
             .order_by(log.agent_id, log.id))
    last: dict[str, LoggedChange] = {}
    for agent_id, at, state, reason, previous, _ in await session.execute(query):
        last[agent_id] = LoggedChange(agent_id, micros_of(at), state, reason,  # highest id
                                      previous)
    return list(last.values())


async def _insert_state_time(session: AsyncSession, totals: Mapping[StateKey, int]) -> None:
    rows = [{"agent_id": key.agent_id, "bucket": as_datetime(key.bucket), "state": key.state,
             "reason": key.reason, "micros": amount}
            for key, amount in sorted(totals.items(), key=lambda item: (
                item[0].agent_id, item[0].bucket, item[0].state, item[0].reason))]
    if rows:
        await session.execute(AgentStateTimeRow.__table__.insert(), rows)


def _counts(credit: CallCredit) -> bool:
    return bool(credit.handled or credit.transfers or credit.points or credit.hold)


def _add(changes: dict[tuple[str, int], list[int]], agent_id: str, bucket: int,
         *amounts: int) -> None:
    current = changes.setdefault((agent_id, bucket), [0, 0, 0, 0])
    for index, amount in enumerate(amounts):
        current[index] += amount


async def _bump(session: AsyncSession,
                changes: Sequence[tuple[tuple[str, int], list[int]]]) -> None:
    """Add to agent buckets' call sums (atomic upserts, one statement, in the order given);
    drop the buckets a subtraction left at nothing."""
    if not changes:
        return
    table = AgentCallTimeRow.__table__.c  # Core statements: executemany, no ORM bulk path
    upsert = dialect_insert(session)(AgentCallTimeRow.__table__)
    upsert = upsert.on_conflict_do_update(
        index_elements=[table.agent_id, table.bucket],
        set_={"handled": table.handled + upsert.excluded.handled,
              "transfers": table.transfers + upsert.excluded.transfers,
              "points": table.points + upsert.excluded.points,
              "hold_micros": table.hold_micros + upsert.excluded.hold_micros})
    await session.execute(upsert, [
        {"agent_id": agent_id, "bucket": as_datetime(bucket), "handled": handled,
         "transfers": transfers, "points": points, "hold_micros": hold}
        for (agent_id, bucket), (handled, transfers, points, hold) in changes])
    lowered = [{"gone_agent": agent_id, "gone_bucket": as_datetime(bucket)}
               for (agent_id, bucket), amounts in changes if min(amounts) < 0]
    if lowered:  # a bucket back at nothing is no row, as a rebuild would leave it
        await session.execute(
            delete(AgentCallTimeRow.__table__).where(table.agent_id == bindparam("gone_agent"),
                                table.bucket == bindparam("gone_bucket"),
                                table.handled == 0, table.transfers == 0, table.points == 0,
                                table.hold_micros == 0), lowered)


__all__ = ["AgentAggregates", "RebuildCounts", "as_datetime"]
