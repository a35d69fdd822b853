"""The queues' wrap-up (ACW) and the AHT it completes: which wrap-up a handled call adds to
its queue row (hand-worked, virtual times), and on SQLite and PostgreSQL the wrap-up kept up
to date from both the records and the agents' state log == counted afresh from the raw rows
== `reports rebuild` (docs/reports.md "Queues")."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.core.queue_figures import QueueCall, QueueCounts, QueueOutcome, counts_of
from callcenter.core.records import (
    AgentAttempt,
    AttemptOutcome,
    CallRecord,
    Disposition,
    Transfer,
    TransferMode,
    TransferOutcome,
)
from callcenter.core.report_contributions import (
    QUEUE_TABLE,
    AggregateRow,
    ReportRules,
    WrapUpWindow,
    changes_in_window,
    legs_to_recheck_from,
    wrap_up_rows,
    wrap_up_window,
)
from callcenter.core.report_periods import Interval, ReportPeriod, local_day_start, time_zone
from callcenter.features.agents.store import AgentDirectory, NewAgent, StateChange
from callcenter.features.calls.store import CallRepository
from callcenter.features.reports.aggregates import ReportAggregates
from callcenter.features.reports.models import call_wrap_ups, queue_buckets, queue_days
from callcenter.features.reports.queues import queue_report_records, read_queue_counts
from callcenter.features.reports.wrap_ups import QueueWrapUps

T0 = datetime.fromisoformat("2026-12-07T10:00:00+00:00").timestamp()
# Day rows in New York, as the service keeps them in the center's zone.
RULES = ReportRules(service_level_seconds={"sales": 20.0},
                    day_zone=ZoneInfo("America/New_York"))
AGENTS = ("agent1", "agent2")


def call(call_id: str = "c1", **changes: Any) -> CallRecord:
    """A closed inbound call queued in sales at T0+10 (the quarter hour from T0), answered
    by agent1 at T0+25, whose leg ended at T0+95: 70 s of talk."""
    record = CallRecord(
        call_id=call_id, started_at=T0, answered_at=T0 + 1, ended_at=T0 + 100,
        queue="sales", queued_at=T0 + 10, wait_seconds=15.0, agent_id="agent1",
        agent_answered_at=T0 + 25, talk_seconds=70.0, disposition=Disposition.ANSWERED,
        attempts=[AgentAttempt("agent1", T0 + 20, T0 + 95, AttemptOutcome.ANSWERED,
                               T0 + 25, 70.0)])
    return dataclasses.replace(record, **changes)


def log(agent_id: str, *steps: tuple[float, str]) -> list[StateChange]:
    """An agent's changes at T0 + offset, each one's previous the state before it."""
    changes, previous = [], "logged_out"
    for offset, state in steps:
        reason = "call ended" if state == "wrap_up" else None
        changes.append(StateChange(agent_id, state, reason, T0 + offset, previous))
        previous = state
    return changes


AGENT1_CALL = ((-100, "ready"), (20, "ringing"), (25, "on_call"))


def wrap_up_of(record: CallRecord, changes: list[StateChange]) -> dict[str, int] | None:
    rows = wrap_up_rows(record, changes)
    if not rows:
        return None
    (row,) = rows
    assert row.table == QUEUE_TABLE
    return {"bucket": int(row.key[0]) - int(T0), "queue": row.key[1], **row.values}


# --------------------------------------------------------------------------- hand-worked


def test_an_ended_wrap_up_counts_for_its_calls_queue_and_completes_the_aht() -> None:
    """The ACD logs the wrap-up 0.3 s after the leg's end (its own clock); 15 s later the
    agent is ready: ACW 15 s, AHT 70 + 15 = 85 s."""
    changes = log("agent1", *AGENT1_CALL, (95.3, "wrap_up"), (110.3, "ready"))
    assert wrap_up_of(call(), changes) == {"bucket": 0, "queue": "sales",
                                           "wrap_up_ms": 15_000, "wrapped_calls": 1}
    counts = counts_of(QueueCall(QueueOutcome.ANSWERED, 15.0, talk=70.0),
                       service_level_seconds=20, short_abandon_seconds=5)
    (row,) = wrap_up_rows(call(), changes)
    with_wrap_up = QueueCounts(**{name: getattr(counts, name) + row.values.get(name, 0)
                                  for name in ("handled", "talk_ms", "wrap_up_ms",
                                               "wrapped_calls")})
    assert with_wrap_up.aht == pytest.approx(85.0) and with_wrap_up.acw == pytest.approx(15.0)


def test_a_wrap_up_still_going_on_adds_nothing_yet() -> None:
    assert wrap_up_of(call(), log("agent1", *AGENT1_CALL, (95.3, "wrap_up"))) is None


def test_a_wrap_up_cut_by_a_logout_or_a_pause_ends_there() -> None:
    logout = log("agent1", *AGENT1_CALL, (95.3, "wrap_up"), (100.3, "logged_out"))
    assert wrap_up_of(call(), logout)["wrap_up_ms"] == 5_000  # type: ignore[index]
    paused = log("agent1", *AGENT1_CALL, (95.3, "wrap_up"), (97.3, "paused"))
    assert wrap_up_of(call(), paused)["wrap_up_ms"] == 2_000  # type: ignore[index]


def test_a_transferred_calls_wrap_ups_all_count_once_where_the_call_counts() -> None:
    """agent1 talks, transfers blind to agent2 and wraps up 10 s while agent2 talks; agent2
    wraps up 20 s after the call: 30 s for the one handled call, in its queue and quarter
    hour (sales, T0), though agent1's wrap-up ended before the call did."""
    record = call(ended_at=T0 + 100, attempts=[
        AgentAttempt("agent1", T0 + 20, T0 + 60, AttemptOutcome.ANSWERED, T0 + 25, 35.0),
        AgentAttempt("agent2", T0 + 62, T0 + 99, AttemptOutcome.ANSWERED, T0 + 64, 35.0)],
        transfers=[Transfer(TransferMode.BLIND, "agent1", T0 + 59, to_agent="agent2",
                            outcome=TransferOutcome.COMPLETED)])
    changes = [*log("agent1", *AGENT1_CALL, (60.2, "wrap_up"), (70.2, "ready")),
               *log("agent2", (-50, "ready"), (62, "ringing"), (64, "on_call"),
                    (99.1, "wrap_up"), (119.1, "ready"))]
    assert wrap_up_of(record, changes) == {"bucket": 0, "queue": "sales",
                                           "wrap_up_ms": 30_000, "wrapped_calls": 1}
    # Before agent2's wrap-up ends, agent1's counts already.
    assert wrap_up_of(record, changes[:-1])["wrap_up_ms"] == 10_000  # type: ignore[index]


def test_the_wrap_up_counts_in_the_quarter_hour_the_call_entered_the_queue() -> None:
    """Queued at 10:14:50, the wrap-up at 10:16: the call's quarter hour, 10:00."""
    record = call(queued_at=T0 + 890, attempts=[AgentAttempt(
        "agent1", T0 + 900, T0 + 955, AttemptOutcome.ANSWERED, T0 + 905, 50.0)],
        ended_at=T0 + 960)
    changes = log("agent1", (-100, "ready"), (900, "ringing"), (905, "on_call"),
                  (955.5, "wrap_up"), (975.5, "ready"))
    assert wrap_up_of(record, changes) == {"bucket": 0, "queue": "sales",
                                           "wrap_up_ms": 20_000, "wrapped_calls": 1}
    # Overflowed from sales to support and answered there: it counts in sales, and so does
    # its wrap-up.
    overflowed = dataclasses.replace(record, queue="support", overflowed_from="sales")
    assert wrap_up_of(overflowed, changes) == {"bucket": 0, "queue": "sales",
                                               "wrap_up_ms": 20_000, "wrapped_calls": 1}


def test_only_a_wrap_up_that_began_as_the_leg_ended_is_the_calls() -> None:
    """A wrap-up begun 6 s after the leg (another call's, or none at all) is not this one's;
    an unanswered call, an open record or a call with no queue have none."""
    late = log("agent1", *AGENT1_CALL, (95, "ready"), (101, "wrap_up"), (120, "ready"))
    assert wrap_up_of(call(), late) is None
    changes = log("agent1", *AGENT1_CALL, (95.3, "wrap_up"), (110.3, "ready"))
    assert wrap_up_of(call(ended_at=None), changes) is None
    assert wrap_up_of(call(disposition=Disposition.ABANDONED_IN_QUEUE), changes) is None
    assert wrap_up_of(call(queue=None, queued_at=None), changes) is None


def test_the_changes_a_record_needs_and_the_legs_a_new_change_can_alter() -> None:
    assert wrap_up_window(call()) == WrapUpWindow(("agent1",), T0 + 85, T0 + 100)
    assert wrap_up_window(call(ended_at=None)) is None
    # Changes outside the window change nothing: the log from long before and after.
    changes = log("agent1", (-5000, "ready"), *AGENT1_CALL[1:], (95.3, "wrap_up"),
                  (110.3, "ready"), (4000, "paused"))
    inside = [c for c in changes if T0 + 85 <= c.at <= T0 + 110.3]
    assert wrap_up_rows(call(), inside) == wrap_up_rows(call(), changes) == [
        AggregateRow(QUEUE_TABLE, (int(T0), "sales"),
                     {"wrap_up_ms": 15_000, "wrapped_calls": 1})]
    assert legs_to_recheck_from(None) == -math.inf
    assert legs_to_recheck_from(T0 + 25) == T0 + 20


def test_a_calls_window_is_picked_from_an_agents_longer_log() -> None:
    """What a batch reads for an agent (the union of their calls' windows) gives each call
    the changes its own window holds: led by the last change before it, up to the first
    change after it that is not a wrap-up and holds (read on past a wrap-up logged again
    at that instant), or everything after it if there is none yet."""
    changes = log("agent1", *AGENT1_CALL, (95.3, "wrap_up"), (102, "ready"), (102, "wrap_up"),
                  (120, "ready"), (500, "ringing"), (505, "on_call"), (600, "wrap_up"),
                  (610, "ready"))
    picked = {(since, until): [(round(c.at - T0, 1), c.state) for c in
                               changes_in_window(changes, T0 + since, T0 + until)]
              for since, until in ((75, 100), (580, 605), (700, 800), (-200, -150))}
    assert picked == {
        (75, 100): [(25, "on_call"), (95.3, "wrap_up"), (102, "ready"), (102, "wrap_up"),
                    (120, "ready")],
        (580, 605): [(505, "on_call"), (600, "wrap_up"), (610, "ready")],
        (700, 800): [(610, "ready")],
        (-200, -150): [(-100, "ready")]}


def test_acw_is_wrap_up_per_handled_call_and_none_without_calls() -> None:
    counts = QueueCounts(handled=4, talk_ms=400_000, hold_ms=40_000, wrap_up_ms=60_000,
                         wrapped_calls=3)
    assert counts.aht == 125.0 and counts.acw == 15.0
    assert QueueCounts().acw is None
    simulated = counts_of(QueueCall(QueueOutcome.ANSWERED, 3.0, talk=100.0, wrap_up=15.0),
                          service_level_seconds=20, short_abandon_seconds=5)
    assert (simulated.wrap_up_ms, simulated.wrapped_calls, simulated.aht) == (15_000, 1, 115.0)


# --------------------------------------------------------------------------- in the database


class Center:
    """The agents' state log and the records, both followed as in the service."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 agents: tuple[str, ...] = AGENTS) -> None:
        self.sessions = sessions
        self.agents = agents
        self.aggregates = ReportAggregates(sessions, RULES)
        self.wrap_ups = QueueWrapUps(sessions, day_zone=RULES.day_zone)
        self.directory = AgentDirectory(sessions, followers=[self.wrap_ups])
        self.calls = CallRepository(sessions, followers=[self.wrap_ups, self.aggregates])

    async def with_agents(self) -> Center:
        known = {a.id for a in await self.directory.list(active_only=False)}
        for agent_id in self.agents:
            if agent_id not in known:
                await self.directory.create(NewAgent(id=agent_id, name=agent_id.title()))
        return self

    async def stored(self) -> tuple[dict[tuple[int, str], tuple[int, int]], dict[int, Any]]:
        """(queue rows' wrap-up where not 0, each call's credit)."""
        async with self.sessions() as session:
            rows = (await session.execute(select(
                queue_buckets.c.bucket, queue_buckets.c.queue, queue_buckets.c.wrap_up_ms,
                queue_buckets.c.wrapped_calls))).all()
            credits = (await session.execute(select(call_wrap_ups))).all()
        return ({(bucket, queue): (ms, calls) for bucket, queue, ms, calls in rows
                 if ms or calls},
                {row.call_pk: (row.bucket, row.queue, row.wrap_up_ms, row.wrapped_calls)
                 for row in credits})

    async def days(self) -> dict[tuple[int, str], tuple[int, int]]:
        """The day rows' wrap-up where not 0."""
        async with self.sessions() as session:
            rows = (await session.execute(select(
                queue_days.c.day, queue_days.c.queue, queue_days.c.wrap_up_ms,
                queue_days.c.wrapped_calls))).all()
        return {(day, queue): (ms, calls) for day, queue, ms, calls in rows if ms or calls}

    async def afresh(self) -> tuple[dict[tuple[int, str], tuple[int, int]], dict[int, Any]]:
        """The same from the raw rows: every record with every logged change."""
        changes = [change for agent_id in self.agents
                   for change in await self.directory.state_history(agent_id)]
        rows: dict[tuple[int, str], tuple[int, int]] = {}
        credits: dict[int, Any] = {}
        for call_pk, record in await self.calls.records_by_pk(limit=10_000):
            for row in wrap_up_rows(record, changes):
                bucket, queue = int(row.key[0]), str(row.key[1])
                ms, calls = rows.get((bucket, queue), (0, 0))
                rows[(bucket, queue)] = (ms + row.values["wrap_up_ms"],
                                         calls + row.values["wrapped_calls"])
                credits[call_pk] = (bucket, queue, row.values["wrap_up_ms"],
                                    row.values["wrapped_calls"])
        return rows, credits


def per_day(rows: dict[tuple[int, str], tuple[int, int]],
            ) -> dict[tuple[int, str], tuple[int, int]]:
    """The quarter hours' wrap-up added up per New York day: what the day rows hold."""
    assert RULES.day_zone is not None
    days: dict[tuple[int, str], tuple[int, int]] = {}
    for (bucket, queue), (ms, calls) in rows.items():
        key = (local_day_start(bucket, RULES.day_zone), queue)
        was = days.get(key, (0, 0))
        days[key] = (was[0] + ms, was[1] + calls)
    return {key: value for key, value in days.items() if any(value)}


@pytest.fixture
async def center(sessions: async_sessionmaker[AsyncSession]) -> Center:
    return await Center(sessions).with_agents()


async def test_the_wrap_up_ending_after_the_record_closed_reaches_the_queue_report(
        center: Center) -> None:
    await center.directory.record_state_changes(log("agent1", *AGENT1_CALL))
    await center.calls.save(call(ended_at=None))  # talking
    await center.directory.record_state_changes(log("agent1", (95.3, "wrap_up"))[-1:])
    await center.calls.save(call())  # hung up: closed, the wrap-up going on
    assert (await center.stored())[0] == {}
    ready = StateChange("agent1", "ready", None, T0 + 110.3, "wrap_up")
    await center.directory.record_state_changes([ready])
    assert (await center.stored())[0] == {(int(T0), "sales"): (15_000, 1)}

    period = ReportPeriod(T0, T0 + 3600, Interval.DAY, time_zone("UTC"))
    intervals = period.intervals()
    _, _, totals = queue_report_records(
        period, intervals, ("sales",), RULES,
        await read_queue_counts(center.aggregates, intervals, ("sales",)))
    assert (totals[-1]["handled"], totals[-1]["aht"], totals[-1]["acw"],
            totals[-1]["wrap_up_seconds"], totals[-1]["wrapped_calls"]) == (1, 85.0, 15.0,
                                                                           15.0, 1)
    # Stored again (a correction moving it an hour on): its wrap-up moves with it.
    await center.calls.save(call(queued_at=T0 + 3610))
    assert (await center.stored())[0] == {(int(T0) + 3600, "sales"): (15_000, 1)}
    assert await center.stored() == await center.afresh()


async def test_a_wrap_up_logged_again_at_the_instant_it_ended_goes_on(center: Center) -> None:
    """The log's last change at an instant holds: ready then wrap_up at T0+102 leave the
    agent in wrap-up until T0+120, so the call's wrap-up is 24.7 s, read past the ready."""
    await center.directory.record_state_changes(log("agent1", *AGENT1_CALL))
    await center.calls.save(call())
    await center.directory.record_state_changes([
        StateChange("agent1", "wrap_up", "call ended", T0 + 95.3, "on_call"),
        StateChange("agent1", "ready", None, T0 + 102, "wrap_up"),
        StateChange("agent1", "wrap_up", "call ended", T0 + 102, "ready")])
    assert (await center.stored())[0] == {}  # still in wrap-up
    await center.directory.record_state_changes(
        [StateChange("agent1", "ready", None, T0 + 120, "wrap_up")])
    assert (await center.stored())[0] == {(int(T0), "sales"): (24_700, 1)}
    assert await center.stored() == await center.afresh()
    await center.calls.save(call())  # the record side reads the same
    assert await center.stored() == await center.afresh()


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """Calls of the two agents one after another, each leg followed by a wrap-up (or a
    pause, or nothing), the records stored open then closed, and the steps delivered in a
    shuffled order (late changes, a record closed after its wrap-up ended, or before)."""
    steps: list[tuple[str, Any]] = []
    clock = {agent: -300.0 for agent in AGENTS}
    state = dict.fromkeys(AGENTS, "logged_out")
    for agent in AGENTS:
        steps.append(("change", StateChange(agent, "ready", "login", T0 + clock[agent],
                                            state[agent])))
        state[agent] = "ready"
    for number in range(draw(st.integers(1, 5))):
        legs, started = [], None
        for agent in draw(st.sampled_from([("agent1",), ("agent2",), AGENTS])):
            begin = clock[agent] + draw(st.integers(1, 400))
            started = begin if started is None else started
            talk = draw(st.integers(1, 300)) + draw(st.sampled_from([0.0, 0.25]))
            end = begin + 2 + talk
            legs.append(AgentAttempt(agent, T0 + begin, T0 + end, AttemptOutcome.ANSWERED,
                                     T0 + begin + 2, talk))
            after = draw(st.sampled_from(["wrap_up", "wrap_up", "paused", "ready"]))
            lag = draw(st.sampled_from([0.0, 0.4, 4.9, 6.0]))
            for at, new in ((begin, "on_call"), (end + lag, after)):
                steps.append(("change", StateChange(agent, new, None, T0 + at, state[agent])))
                state[agent] = new
            clock[agent] = end + lag
            if after == "wrap_up" and draw(st.booleans()):  # ended (else still going on)
                clock[agent] += draw(st.integers(0, 60))
                ender = draw(st.sampled_from(["ready", "logged_out", "paused"]))
                steps.append(("change", StateChange(agent, ender, None, T0 + clock[agent],
                                                    "wrap_up")))
                state[agent] = ender
        assert started is not None
        ended = max(leg.ended_at for leg in legs if leg.ended_at is not None)
        record = call(f"call-{number}", started_at=T0 + started - 30,
                      queued_at=T0 + started - 20, agent_answered_at=legs[0].answered_at,
                      ended_at=ended + 1, attempts=legs,
                      disposition=draw(st.sampled_from([Disposition.ANSWERED,
                                                        Disposition.ANSWERED,
                                                        Disposition.ABANDONED_IN_QUEUE])))
        steps.append(("record", dataclasses.replace(record, ended_at=None)))
        steps.append(("record", record))
    order = draw(st.permutations(range(len(steps))))
    # Records keep their own order (open, then closed); the state log may come in any.
    records = iter([step for step in steps if step[0] == "record"])
    return [next(records) if steps[index][0] == "record" else steps[index]
            for index in order]


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=histories())
async def test_wrap_ups_kept_from_both_sides_equal_a_fresh_count_and_a_rebuild(
        sessions: async_sessionmaker[AsyncSession], history: list[tuple[str, Any]]) -> None:
    # The examples add up in one database (calls stored again, a log that grows): the
    # figures must equal the raw rows whatever they hold.
    center = await Center(sessions).with_agents()
    for kind, item in history:
        if kind == "record":
            await center.calls.save(item)
        else:
            await center.directory.record_state_changes([item])
    expected = await center.afresh()
    by_day = per_day(expected[0])
    assert await center.stored() == expected
    assert await center.days() == by_day
    await center.aggregates.rebuild(center.calls)  # empties the queue rows...
    assert await center.wrap_ups.rebuild() == len(expected[1])  # ...and the wrap-up again
    assert await center.stored() == expected
    assert await center.days() == by_day


def batches(history: list[tuple[str, Any]], size: int) -> list[tuple[str, list[Any]]]:
    """The steps in their order, runs of one kind handed over together (up to ``size``)."""
    grouped: list[tuple[str, list[Any]]] = []
    for kind, item in history:
        if grouped and grouped[-1][0] == kind and len(grouped[-1][1]) < size:
            grouped[-1][1].append(item)
        else:
            grouped.append((kind, [item]))
    return grouped


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=histories(), size=st.integers(2, 12))
async def test_wrap_ups_kept_from_batches_equal_a_fresh_count_and_a_rebuild(
        sessions: async_sessionmaker[AsyncSession], history: list[tuple[str, Any]],
        size: int) -> None:
    """As above, the records stored several at once (``save_many``: ``follow_many``) and
    both agents' changes flushed together."""
    center = await Center(sessions).with_agents()
    for kind, items in batches(history, size):
        if kind == "record":
            await center.calls.save_many(items)
        else:
            await center.directory.record_state_changes(items)
    expected = await center.afresh()
    assert await center.stored() == expected
    assert await center.days() == per_day(expected[0])
    await center.aggregates.rebuild(center.calls)
    assert await center.wrap_ups.rebuild() == len(expected[1])
    assert await center.stored() == expected
    assert await center.days() == per_day(expected[0])


MANY = tuple(f"agent{number}" for number in range(1, 10))


def floor_call(agent_id: str, number: int, round_: int) -> tuple[CallRecord, list[StateChange]]:
    """Agent ``number``'s call of round ``round_`` (one every 1000 s), and their changes up
    to the end of its wrap-up (paused after it on odd rounds, a wrap-up logged again at
    its end on round 4: read on past it)."""
    base = 1000 * round_ + 7 * number
    record = call(f"{agent_id}-{round_}", started_at=T0 + base, queued_at=T0 + base + 10,
                  answered_at=T0 + base + 1, agent_id=agent_id,
                  agent_answered_at=T0 + base + 25, ended_at=T0 + base + 100,
                  attempts=[AgentAttempt(agent_id, T0 + base + 20, T0 + base + 95,
                                         AttemptOutcome.ANSWERED, T0 + base + 25, 70.0)])
    ender = "paused" if round_ % 2 else "ready"
    changes = [StateChange(agent_id, "ringing", None, T0 + base + 20, "ready"),
               StateChange(agent_id, "on_call", None, T0 + base + 25, "ringing"),
               StateChange(agent_id, "wrap_up", "call ended", T0 + base + 95.3, "on_call"),
               StateChange(agent_id, ender, None, T0 + base + 100 + number, "wrap_up")]
    if round_ == 4:
        changes.append(StateChange(agent_id, "wrap_up", "call ended",
                                   T0 + base + 100 + number, ender))
    changes.append(StateChange(agent_id, "ready", None, T0 + base + 120 + number,
                               "wrap_up" if round_ == 4 else ender))
    return record, changes


async def test_many_agents_at_once_in_a_fixed_number_of_statements(
        sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine) -> None:
    """Several agents' calls stored in one ``save_many`` and their changes in one flush
    (before and after the records): kept == counted afresh, and the statements a batch
    costs do not grow with the agents in it."""
    center = await Center(sessions, MANY).with_agents()
    await center.directory.record_state_changes(
        [StateChange(agent_id, "ready", "login", T0 - 100, "logged_out") for agent_id in MANY])
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def counted(*args: Any) -> None:
        # The log's own insert is grouped by the columns each change fills: not the
        # follower's.
        if not args[2].startswith("INSERT INTO agent_state_changes"):
            statements.append(args[2])

    costs: dict[tuple[str, bool, int], int] = {}
    rounds = [(MANY[:3], True), (MANY, True), (MANY[:3], False), (MANY, False),
              (MANY, True)]  # (agents, the records first)
    for round_, (agents, records_first) in enumerate(rounds):
        calls = [floor_call(agent_id, number, round_)
                 for number, agent_id in enumerate(agents, start=1)]
        batches = {"save": (center.calls.save_many, [record for record, _ in calls]),
                   "changes": (center.directory.record_state_changes,
                               [change for _, logged in calls for change in logged])}
        for kind in ("save", "changes") if records_first else ("changes", "save"):
            store, items = batches[kind]
            statements.clear()
            await store(items)
            if round_ < 4:
                costs[kind, records_first, len(agents)] = len(statements)
        assert await center.stored() == await center.afresh()
    event.remove(engine.sync_engine, "before_cursor_execute", counted)
    assert len((await center.stored())[1]) == 3 * 2 + len(MANY) * 3  # every call counted
    # The same statements for 3 agents as for 9 (round 4, reading on past a wrap-up
    # logged again, is left out of the comparison).
    for kind in ("save", "changes"):
        for records_first in (True, False):
            assert (costs[kind, records_first, 3]
                    == costs[kind, records_first, len(MANY)]), costs
