"""The agent aggregates on SQLite and PostgreSQL: kept up to date as state changes and call
records are stored (in their transactions), equal to a brute-force count over the raw rows,
and a rebuild gives the very same rows."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.agent_figures import (
    BUCKET_MICROS,
    BUCKET_SECONDS,
    MICROS,
    AgentTotals,
    ProductivityPoints,
    bucket_of,
    micros,
    micros_of,
)
from callcenter.core.records import (
    AgentAttempt,
    AttemptOutcome,
    CallRecord,
    Direction,
    Hold,
    HoldBy,
    Transfer,
    TransferMode,
    TransferOutcome,
)
from callcenter.core.report_periods import Interval, ReportPeriod, time_zone
from callcenter.features.agents.models import AgentStateChangeRow
from callcenter.features.agents.store import AgentDirectory, NewAgent, StateChange
from callcenter.features.calls.store import CallRepository, records_after
from callcenter.features.reports import agent_store
from callcenter.features.reports.agent_models import (
    AgentCallTimeRow,
    AgentCreditRow,
    AgentStateTimeRow,
)
from callcenter.features.reports.agent_store import AgentAggregates

DAY = datetime(2026, 12, 7, tzinfo=UTC).timestamp()
AGENTS = ("agent1", "agent2", "agent3")
POINTS = ProductivityPoints(inbound_call=1, outbound_call=3, transfer=2)


def at(clock: str) -> float:
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return DAY + hours * 3600 + minutes * 60 + seconds


class Center:
    """The directory and the call records, both followed by the aggregates."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.aggregates = AgentAggregates(sessions, POINTS)
        self.directory = AgentDirectory(sessions, followers=[self.aggregates])
        self.calls = CallRepository(sessions, followers=[self.aggregates])

    async def with_agents(self) -> Center:
        known = {a.id for a in await self.directory.list(active_only=False)}
        for agent_id in AGENTS:
            if agent_id not in known:
                await self.directory.create(NewAgent(id=agent_id, name=agent_id.title()))
        return self

    async def log(self, agent_id: str, *steps: tuple[str, str, str | None]) -> None:
        previous = "logged_out"
        changes = []
        for clock, state, reason in steps:
            changes.append(StateChange(agent_id, state, reason, at(clock), previous))
            previous = state
        await self.directory.record_state_changes(changes)


@pytest.fixture
async def center(sessions: async_sessionmaker[AsyncSession]) -> Center:
    return await Center(sessions).with_agents()


def seconds(totals: AgentTotals) -> dict[str, object]:
    return {"ready": totals.ready / MICROS, "ringing": totals.ringing / MICROS,
            "on_call": totals.on_call / MICROS, "wrap_up": totals.wrap_up / MICROS,
            "paused": {r: v / MICROS for r, v in totals.paused.items()},
            "handled": totals.handled, "transfers": totals.transfers, "points": totals.points}


def summed(per_bucket: dict[int, AgentTotals]) -> AgentTotals:
    total = AgentTotals()
    for cell in per_bucket.values():
        total.merge(cell)
    return total


async def test_an_agent_day_is_kept_up_as_it_is_logged_in_small_batches(center: Center):
    await center.log("agent1", ("09:00:00", "ready", "login"), ("09:10:00", "ringing", None))
    await center.log("agent1", ("09:10:10", "on_call", None))  # batches as the desk flushes
    await center.log("agent1", ("09:20:00", "wrap_up", None), ("09:21:30", "ready", None),
                     ("09:30:00", "paused", "lunch"))
    await center.log("agent1", ("10:00:00", "ready", None), ("10:07:30", "logged_out", None))
    await center.calls.save(CallRecord(
        call_id="c1", started_at=at("09:09:00"), ended_at=at("09:20:00"),
        attempts=[AgentAttempt("agent1", at("09:10:00"), at("09:20:00"),
                               AttemptOutcome.ANSWERED, at("09:10:10"), 590.0)]))
    day = await center.aggregates.totals(at("00:00:00"), at("23:59:59") + 1,
                                         now=at("23:59:59"))
    assert seconds(summed(day["agent1"])) == {
        "ready": 1560, "ringing": 10, "on_call": 590, "wrap_up": 90,
        "paused": {"lunch": 1800}, "handled": 1, "transfers": 0, "points": 1}
    totals = summed(day["agent1"])
    assert totals.occupancy == pytest.approx(680 / 2250)
    nine = await center.aggregates.totals(at("09:00:00"), at("09:15:00"), now=at("23:00:00"))
    assert seconds(summed(nine["agent1"]))["on_call"] == 290


async def test_the_state_an_agent_is_in_now_counts_up_to_now(center: Center):
    await center.log("agent2", ("09:00:00", "ready", "login"), ("09:05:00", "paused", "break"))
    totals = await center.aggregates.totals(at("09:00:00"), at("10:00:00"), now=at("09:20:00"))
    assert seconds(summed(totals["agent2"]))["paused"] == {"break": 900}
    assert seconds(summed(totals["agent2"]))["ready"] == 300
    # The aggregates themselves hold only what is over.
    async with center.sessions() as session:
        rows = (await session.scalars(select(AgentStateTimeRow))).all()
    assert [(r.state, r.micros / MICROS) for r in rows] == [("ready", 300)]


async def test_a_change_logged_late_lays_the_time_out_again(center: Center):
    await center.log("agent3", ("09:00:00", "ready", "login"), ("09:40:00", "logged_out", None))
    # A pause from 09:20 to 09:30 reaches the log after the logout (a delayed batch).
    await center.directory.record_state_changes([
        StateChange("agent3", "paused", "break", at("09:20:00"), "ready"),
        StateChange("agent3", "ready", None, at("09:30:00"), "paused")])
    totals = summed((await center.aggregates.totals(at("09:00:00"), at("10:00:00"),
                                                    now=at("10:00:00")))["agent3"])
    assert seconds(totals)["ready"] == 1800 and seconds(totals)["paused"] == {"break": 600}


async def test_a_record_stored_again_replaces_its_credit(center: Center):
    record = CallRecord(call_id="c2", started_at=at("09:00:00"),
                        attempts=[AgentAttempt("agent1", at("09:00:05"), None,
                                               AttemptOutcome.ANSWERED, at("09:00:06"))])
    await center.calls.save(record)  # open: the answer counts already
    record.attempts.append(AgentAttempt("agent2", at("09:16:00"), at("09:20:00"),
                                        AttemptOutcome.ANSWERED, at("09:16:01"), 239.0))
    record.transfers.append(Transfer(TransferMode.BLIND, "agent1", at("09:15:55"),
                                     to_agent="agent2", outcome=TransferOutcome.COMPLETED))
    record.attempts[0].ended_at = at("09:16:01")
    record.ended_at = at("09:20:00")
    await center.calls.save(record)
    await center.calls.save(record)  # stored again unchanged: still counted once
    totals = await center.aggregates.totals(at("09:00:00"), at("10:00:00"), now=at("10:00:00"))
    assert {agent: seconds(summed(cells))["handled"] for agent, cells in totals.items()} == {
        "agent1": 1, "agent2": 1}
    assert summed(totals["agent1"]).transfers == 1
    assert summed(totals["agent1"]).points == 1 + 2
    quarter = {agent: sorted(cells) for agent, cells in totals.items()}
    assert quarter == {"agent1": [micros(at("09:00:00")), micros(at("09:15:00"))],
                       "agent2": [micros(at("09:15:00"))]}


async def test_an_empty_period_is_no_agent_at_all(center: Center):
    assert await center.aggregates.totals(at("09:00:00"), at("10:00:00"),
                                          now=at("10:00:00")) == {}


# --------------------------------------------------------------------------- properties


async def snapshot(sessions: async_sessionmaker[AsyncSession]) -> dict[str, object]:
    async with sessions() as session:
        states = {(r.agent_id, micros_of(r.bucket), r.state, r.reason): r.micros
                  for r in await session.scalars(select(AgentStateTimeRow))}
        calls = {(r.agent_id, micros_of(r.bucket)): (r.handled, r.transfers, r.points,
                                                     r.hold_micros)
                 for r in await session.scalars(select(AgentCallTimeRow))}
        credits = sorted((r.source, r.agent_id, micros_of(r.bucket), r.handled, r.transfers,
                          r.points, r.hold_micros)
                         for r in await session.scalars(select(AgentCreditRow)))
    return {"states": states, "calls": calls, "credits": credits}


async def brute_force(sessions: async_sessionmaker[AsyncSession]) -> dict[str, object]:
    """From the raw rows, the plainest way: each bucket an agent's log reaches, each span's
    overlap with it; each stored record's answered legs and completed transfers."""
    states: dict[tuple[str, int, str, str], int] = {}
    calls: dict[tuple[str, int], list[int]] = {}
    async with sessions() as session:
        log = (await session.execute(
            select(AgentStateChangeRow.agent_id, AgentStateChangeRow.at,
                   AgentStateChangeRow.state, AgentStateChangeRow.reason)
            .order_by(AgentStateChangeRow.agent_id, AgentStateChangeRow.at,
                      AgentStateChangeRow.id))).all()
        records = await records_after(session, 0, 100_000)
    for agent_id, rows in itertools.groupby(log, key=lambda row: row[0]):
        changes = [(micros_of(when), state, reason) for _, when, state, reason in rows]
        for bucket in range(bucket_of(changes[0][0]), changes[-1][0], BUCKET_MICROS):
            for (start, state, reason), (end, _, _) in itertools.pairwise(changes):
                overlap = min(end, bucket + BUCKET_MICROS) - max(start, bucket)
                if state != "logged_out" and overlap > 0:
                    key = (agent_id, bucket, state, (reason or "") if state == "paused" else "")
                    states[key] = states.get(key, 0) + overlap
    for _, record in records:
        per_call = 3 if record.direction is Direction.OUTBOUND else 1
        for attempt in record.attempts:
            if attempt.answered_at is not None:
                cell = calls.setdefault(
                    (attempt.agent_id, bucket_of(micros(attempt.answered_at))), [0, 0, 0, 0])
                cell[0] += 1
                cell[2] += per_call
        for transfer in record.transfers:
            if transfer.outcome is TransferOutcome.COMPLETED:
                cell = calls.setdefault(
                    (transfer.from_agent, bucket_of(micros(transfer.requested_at))),
                    [0, 0, 0, 0])
                cell[1] += 1
                cell[2] += 2
        for hold in record.holds:
            if hold.agent_id is None or hold.ended_at is None:
                continue
            start, end = micros(hold.started_at), micros(hold.ended_at)
            for bucket in range(bucket_of(start), end, BUCKET_MICROS):
                overlap = min(end, bucket + BUCKET_MICROS) - max(start, bucket)
                if overlap > 0:
                    calls.setdefault((hold.agent_id, bucket), [0, 0, 0, 0])[3] += overlap
    return {"states": states,
            "calls": {key: tuple(cell) for key, cell in calls.items() if any(cell)}}


STATES = ["ready", "ringing", "on_call", "wrap_up", "paused", "logged_out"]
state_batches = st.lists(st.lists(
    st.tuples(st.sampled_from(AGENTS), st.integers(0, 4 * 3600), st.sampled_from(STATES),
              st.sampled_from([None, "break", "lunch"])),
    min_size=1, max_size=6), max_size=6)
legs = st.tuples(st.sampled_from(AGENTS), st.integers(0, 4 * 3600), st.booleans(),
                 st.integers(0, 900))
call_versions = st.lists(st.tuples(
    st.lists(legs, max_size=3),
    st.lists(st.tuples(st.sampled_from(AGENTS), st.integers(0, 4 * 3600),
                       st.sampled_from(list(TransferOutcome))), max_size=2),
    st.sampled_from(list(Direction)),
    st.lists(st.tuples(st.sampled_from(AGENTS), st.integers(0, 4 * 3600),
                       st.integers(0, 1200)), max_size=2)), min_size=1, max_size=2)
example_ids = itertools.count()


def version(call_id: str, legs_, transfers, direction: Direction, holds) -> CallRecord:
    return CallRecord(
        call_id=call_id, started_at=DAY, direction=direction,
        attempts=[AgentAttempt(agent, DAY + start, DAY + start + length,
                               AttemptOutcome.ANSWERED if answered else AttemptOutcome.NO_ANSWER,
                               DAY + start + 0.25 if answered else None)
                  for agent, start, answered, length in legs_],
        transfers=[Transfer(TransferMode.BLIND, agent, DAY + when + 0.5, to_queue="sales",
                            outcome=outcome) for agent, when, outcome in transfers],
        holds=[Hold(HoldBy.AGENT, DAY + start + 0.125, DAY + start + 0.125 + length, agent)
               for agent, start, length in sorted(holds, key=lambda hold: hold[1])])


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=state_batches, calls=st.lists(call_versions, max_size=4),
       period=st.tuples(st.integers(0, 96), st.integers(1, 192)),
       interval=st.sampled_from(list(Interval)),
       zone=st.sampled_from(["UTC", "America/Sao_Paulo", "Europe/Lisbon", "Asia/Kolkata",
                             "Australia/Lord_Howe", "America/St_Johns"]),
       now=st.integers(0, 6 * 3600), together=st.booleans(),
       relay_page=st.sampled_from([1, 2, agent_store.RELAY_PAGE]))
async def test_kept_up_equals_brute_force_equals_rebuild(
        sessions: async_sessionmaker[AsyncSession], batches, calls, period, interval, zone,
        now, together, relay_page):
    center = await Center(sessions).with_agents()  # examples share the database: all counts
    run = next(example_ids)
    agent_store.RELAY_PAGE, saved_page = relay_page, agent_store.RELAY_PAGE
    try:  # a batch's agents laid out again a page of agents at a time: the same
        for batch in batches:
            await center.directory.record_state_changes([
                StateChange(agent, state, reason, DAY + offset + run / 1000, "ready")
                for agent, offset, state, reason in batch])
    finally:
        agent_store.RELAY_PAGE = saved_page
    if together:  # as the record writer stores them: every call's first version, then ...
        for step in range(max((len(versions) for versions in calls), default=0)):
            await center.calls.save_many([
                version(f"r{run}.{index}", *versions[step])
                for index, versions in enumerate(calls) if step < len(versions)])
    else:
        for index, versions in enumerate(calls):
            for legs_, transfers, direction, holds in versions:
                await center.calls.save(version(f"r{run}.{index}", legs_, transfers, direction,
                                                holds))
    kept = await snapshot(sessions)
    expected = await brute_force(sessions)
    assert kept["states"] == expected["states"]
    assert kept["calls"] == expected["calls"]
    counts = await center.aggregates.rebuild()
    assert await snapshot(sessions) == kept
    assert counts.calls >= len(calls)
    # A report over any period, cut into any intervals of any zone: the aggregates plus the
    # states still open, against each raw span's overlap with each interval.
    first, length = period
    since = DAY - 12 * 3600 + first * BUCKET_SECONDS
    report_period = ReportPeriod(since, since + length * BUCKET_SECONDS, interval,
                                 time_zone(zone))
    intervals = report_period.intervals()
    starts = [interval.start for interval in intervals]
    report = await center.aggregates.interval_totals(starts, report_period.until,
                                                     now=DAY + now, agents=AGENTS)
    agent_store.MAX_CASE_INTERVALS, saved = 0, agent_store.MAX_CASE_INTERVALS
    try:  # summed per bucket by the database, then per interval here: the same
        assert await center.aggregates.interval_totals(
            starts, report_period.until, now=DAY + now, agents=AGENTS) == report
    finally:
        agent_store.MAX_CASE_INTERVALS = saved
    until = micros(report_period.until)
    for agent_id in AGENTS:
        async with sessions() as session:
            log = (await session.execute(
                select(AgentStateChangeRow.at, AgentStateChangeRow.state,
                       AgentStateChangeRow.reason)
                .where(AgentStateChangeRow.agent_id == agent_id)
                .order_by(AgentStateChangeRow.at, AgentStateChangeRow.id))).all()
        times = [micros_of(when) for when, _, _ in log]
        ends = [*times[1:], max(times[-1], min(micros(DAY + now), until))] if log else []
        cells = report.get(agent_id, {})
        for index, interval in enumerate(intervals):
            low, high = micros(interval.start), micros(interval.end)
            expected = AgentTotals()
            for start, end, (_, state, reason) in zip(times, ends, log, strict=True):
                overlap = min(end, high) - max(start, low)
                if overlap > 0:
                    expected.add_state(state, (reason or "") if state == "paused" else "",
                                       overlap)
            got = cells.get(index, AgentTotals())
            assert (got.ready, got.ringing, got.on_call, got.wrap_up, got.paused) == (
                expected.ready, expected.ringing, expected.on_call, expected.wrap_up,
                expected.paused), (agent_id, interval)
