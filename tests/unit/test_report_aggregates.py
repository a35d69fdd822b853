"""The report aggregates: what a record adds (hand-worked calls), and the aggregates kept up
to date record by record == counted afresh from the raw records == `reports rebuild`, on
SQLite and PostgreSQL (docs/reports.md)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.queue_figures import QueueCounts, counts_of, total
from callcenter.core.records import (
    AgentAttempt,
    AttemptOutcome,
    CallRecord,
    Direction,
    Disposition,
    FaqOutcome,
    FaqResult,
    Hold,
    HoldBy,
    IvrStep,
    SurveyAnswer,
    Transfer,
    TransferMode,
    TransferOutcome,
)
from callcenter.core.report_contributions import (
    IVR_DROPOFF_TABLE,
    IVR_TABLE,
    QUEUE_DAY_TABLE,
    QUEUE_TABLE,
    SURVEY_TABLE,
    AggregateRow,
    ReportRules,
    contribution,
    queue_call,
)
from callcenter.core.report_periods import (
    BUCKET_SECONDS,
    Group,
    Interval,
    ReportPeriod,
    interval_index,
    local_day_start,
    time_zone,
)
from callcenter.features.calls.store import CallRepository
from callcenter.features.reports.aggregates import TABLES, ReportAggregates
from callcenter.features.reports.models import day_zone as day_zone_table
from callcenter.features.reports.queues import (
    queue_report_records,
    read_queue_counts,
)

# 2026-10-31T00:00Z, a Saturday: New York's clocks go back on Sunday 2026-11-01.
T0 = datetime.fromisoformat("2026-10-31T00:00:00+00:00").timestamp()
RULES = ReportRules(service_level_seconds={"sales": 20.0, "support": 30.0},
                    short_abandon_seconds={"sales": 5.0, "support": 5.0},
                    csat_questions=frozenset({"agent-rating"}),
                    csat_satisfied_from=4, nps_questions=frozenset({"nps"}),
                    day_zone=time_zone("America/New_York"))


def call(call_id: str = "c1", **changes: Any) -> CallRecord:
    """A closed inbound call: IVR, queued in sales at T0+10, answered after 15 s by agent1,
    70 s of talk."""
    record = CallRecord(
        call_id=call_id, started_at=T0, answered_at=T0 + 1, ended_at=T0 + 100,
        ivr_path=[IvrStep("welcome", T0 + 1), IvrStep("main", T0 + 5, "1")],
        queue="sales", queued_at=T0 + 10, wait_seconds=15.0, agent_id="agent1",
        agent_answered_at=T0 + 25, talk_seconds=70.0, disposition=Disposition.ANSWERED,
        attempts=[AgentAttempt("agent1", T0 + 20, T0 + 95, AttemptOutcome.ANSWERED,
                               T0 + 25, 70.0)])
    return dataclasses.replace(record, **changes)


def rows_of(record: CallRecord, table: str) -> list[AggregateRow]:
    return [row for row in contribution(record, RULES) if row.table == table]


def queue_counts_of(record: CallRecord) -> dict[str, int]:
    (row,) = rows_of(record, QUEUE_TABLE)
    assert row.key == (int(T0), "sales")
    return {name: value for name, value in row.values.items() if value}


# --------------------------------------------------------------------------- hand-worked


def test_an_answered_call_within_t_counts_offered_answered_within_and_its_times() -> None:
    assert queue_counts_of(call()) == {
        "offered": 1, "answered": 1, "answered_within": 1, "handled": 1,
        "answered_wait_ms": 15_000, "talk_ms": 70_000, "longest_wait_ms": 15_000}


def test_an_answer_after_t_is_answered_but_not_within() -> None:
    counts = queue_counts_of(call(wait_seconds=20.001))
    assert counts["answered"] == 1 and "answered_within" not in counts
    assert queue_counts_of(call(wait_seconds=20.0))["answered_within"] == 1  # T itself is in


def test_abandons_short_and_after_t() -> None:
    abandoned = {"disposition": Disposition.ABANDONED_IN_QUEUE, "agent_id": None,
                 "agent_answered_at": None, "talk_seconds": None, "attempts": []}
    assert queue_counts_of(call(wait_seconds=4.9, **abandoned)) == {
        "offered": 1, "abandoned": 1, "short_abandons": 1, "longest_wait_ms": 4900}
    assert queue_counts_of(call(wait_seconds=5.0, **abandoned)) == {
        "offered": 1, "abandoned": 1, "longest_wait_ms": 5000}
    assert queue_counts_of(call(wait_seconds=45.0, **abandoned)) == {
        "offered": 1, "abandoned": 1, "abandoned_after": 1, "longest_wait_ms": 45_000}


def test_a_callback_counts_once_the_customer_offered_on_their_call_answered_on_the_callback(
        ) -> None:
    asked = call(disposition=Disposition.CALLBACK_REQUESTED, wait_seconds=40.0, agent_id=None,
                 attempts=[], talk_seconds=None, callback_request_id=7)
    assert queue_counts_of(asked) == {"offered": 1, "callbacks_requested": 1,
                                      "longest_wait_ms": 40_000}
    callback = call("c2", callback_of="c1", callback_request_id=7, wait_seconds=600.0)
    assert queue_counts_of(callback) == {"answered": 1, "handled": 1,
                                         "answered_wait_ms": 600_000, "talk_ms": 70_000}
    failed = dataclasses.replace(callback, disposition=Disposition.FAILED)
    assert rows_of(failed, QUEUE_TABLE) == []


def test_a_call_the_queue_gave_up_on_is_not_served() -> None:
    counts = queue_counts_of(call(disposition=Disposition.NO_AGENT, wait_seconds=600.0,
                                  attempts=[], agent_id=None, talk_seconds=None))
    assert counts == {"offered": 1, "not_served": 1, "longest_wait_ms": 600_000}


def test_talk_is_every_answered_legs_and_a_completed_transfer_to_a_queue_is_counted() -> None:
    record = call(attempts=[
        AgentAttempt("agent1", T0 + 20, T0 + 60, AttemptOutcome.ANSWERED, T0 + 25, 35.0),
        AgentAttempt("agent2", T0 + 62, T0 + 99, AttemptOutcome.ANSWERED, T0 + 64, 35.5)],
        transfers=[
            Transfer(TransferMode.BLIND, "agent1", T0 + 59, to_queue="support",
                     outcome=TransferOutcome.COMPLETED),
            Transfer(TransferMode.BLIND, "agent1", T0 + 50, to_queue="support",
                     outcome=TransferOutcome.REFUSED)])
    counts = queue_counts_of(record)
    assert counts["talk_ms"] == 70_500 and counts["transfers_to_queue"] == 1


def test_an_agents_hold_is_taken_out_of_talk_and_counted_as_hold_a_callers_is_not() -> None:
    """AHT's parts: 70 s with the caller, of which agent1 held them 12 s; the caller's own
    hold of 5 s is talk time for the queue (nobody's hold)."""
    record = call(holds=[Hold(HoldBy.AGENT, T0 + 30, T0 + 42, "agent1"),
                         Hold(HoldBy.CALLER, T0 + 50, T0 + 55)])
    counts = queue_counts_of(record)
    assert counts["talk_ms"] == 58_000 and counts["hold_ms"] == 12_000
    assert counts["handled"] == 1


def test_open_and_outbound_records_and_calls_without_a_queue_add_nothing_to_queues() -> None:
    assert contribution(call(ended_at=None), RULES) == []
    assert rows_of(call(direction=Direction.OUTBOUND), QUEUE_TABLE) == []
    assert rows_of(call(queue=None, queued_at=None), QUEUE_TABLE) == []


def test_an_overflowed_call_counts_where_it_entered_with_what_became_of_it() -> None:
    # Entered sales, moved on to support after sales' max_wait, answered there after 40 s
    # in all: counted in sales (its T of 20 s, not support's 30 s), once, as overflowed.
    (row,) = rows_of(call(queue="support", overflowed_from="sales", wait_seconds=25.0),
                     QUEUE_TABLE)
    assert row.key == (int(T0), "sales")
    assert {name: value for name, value in row.values.items() if value} == {
        "offered": 1, "answered": 1, "overflowed": 1, "handled": 1,
        "answered_wait_ms": 25_000, "talk_ms": 70_000, "longest_wait_ms": 25_000}


def test_the_queue_bucket_is_the_quarter_hour_the_caller_entered_the_queue() -> None:
    (row,) = rows_of(call(started_at=T0 + 890, queued_at=T0 + 905), QUEUE_TABLE)
    assert row.key == (int(T0) + 900, "sales")


def test_ivr_containment_drop_off_attendant_and_faq() -> None:
    contained = call(queue=None, queued_at=None, disposition=Disposition.COMPLETED_IN_IVR,
                     faq_outcomes=[FaqOutcome("main", "hours", T0 + 950, FaqResult.SOLVED)])
    assert [(row.key, dict(row.values)) for row in rows_of(contained, IVR_TABLE)] == [
        ((int(T0),), {"ivr_calls": 1, "contained": 1, "abandoned_in_ivr": 0,
                      "reached_queue": 0, "callbacks_requested": 0, "attendant_requests": 0}),
        ((int(T0) + 900,), {"faq_heard": 1, "faq_solved": 1})]
    dropped = call(queue=None, queued_at=None, disposition=Disposition.ABANDONED_IN_IVR,
                   ivr_path=[IvrStep("welcome", T0 + 1), IvrStep("billing", T0 + 4, "2"),
                             IvrStep("main", T0 + 9, "attendant")])
    (ivr,) = rows_of(dropped, IVR_TABLE)
    assert ivr.values["abandoned_in_ivr"] == 1 and ivr.values["attendant_requests"] == 1
    assert [(row.key, row.values) for row in rows_of(dropped, IVR_DROPOFF_TABLE)] == [
        ((int(T0), "main"), {"abandoned": 1})]
    (reached,) = rows_of(call(), IVR_TABLE)
    assert reached.values["reached_queue"] == 1 and reached.values["contained"] == 0


def test_survey_answers_count_for_csat_and_nps_per_queue_and_rated_agent() -> None:
    answers = [SurveyAnswer("csat", "agent-rating", "4", T0 + 101),
               SurveyAnswer("csat", "agent-rating", "2", T0 + 102),
               SurveyAnswer("csat", "agent-rating", "9", T0 + 103),  # not 1-5: left out
               SurveyAnswer("csat", "problem-solved", "yes", T0 + 104),  # not counted
               SurveyAnswer("nps", "nps", "10", T0 + 105),
               SurveyAnswer("nps", "nps", "7", T0 + 106),
               SurveyAnswer("nps", "nps", "3", T0 + 107)]
    (row,) = rows_of(call(survey_answers=answers), SURVEY_TABLE)
    assert row.key == (int(T0), "sales", "agent1")
    assert dict(row.values) == {"csat_answers": 2, "csat_score_sum": 6, "csat_satisfied": 1,
                                "nps_answers": 3, "nps_promoters": 1, "nps_passives": 1,
                                "nps_detractors": 1}


# --------------------------------------------------------------------------- in the database

QUEUES = ("sales", "support")
NODES = ("welcome", "main", "billing")


def roll_up(positions: Mapping[int, int], rows: Iterable[Mapping[str, Any]],
            by: Sequence[str] = (), maxima: frozenset[str] = frozenset(),
            ) -> dict[Group, dict[str, int]]:
    """The reference the database's roll-up is held to: quarter-hour rows (``bucket`` and
    numbers) added up per interval (``positions``: bucket -> interval index) and per the
    values of the ``by`` columns. Columns named in ``maxima`` take the largest value; the
    others are summed. Rows outside the period are left out."""
    totals: dict[Group, dict[str, int]] = {}
    sums: list[str] | None = None
    largest: list[str] = []
    for row in rows:
        if sums is None:  # the columns, once: this loop runs for every quarter hour read
            numbers = [name for name in row if name != "bucket" and name not in by]
            sums = [name for name in numbers if name not in maxima]
            largest = [name for name in numbers if name in maxima]
        index = positions.get(int(row["bucket"]))
        if index is None:
            continue
        group = (index, tuple(row[column] for column in by))
        values = totals.get(group)
        if values is None:
            totals[group] = {name: row[name] for name in (*sums, *largest)}
            continue
        for name in sums:
            values[name] += row[name]
        for name in largest:
            if row[name] > values[name]:
                values[name] = row[name]
    return totals


@st.composite
def records(draw: st.DrawFn) -> CallRecord:
    start = T0 + draw(st.integers(0, 3 * 86400)) + draw(st.sampled_from([0.0, 0.25, 0.999]))
    queue = draw(st.sampled_from([*QUEUES, None]))
    closed = draw(st.booleans()) or draw(st.booleans())
    disposition = draw(st.sampled_from(list(Disposition)))
    wait = draw(st.floats(0, 400, allow_nan=False).map(lambda w: round(w, 3)))
    queued_at = None if queue is None else start + draw(st.integers(0, 1200))
    talk = draw(st.floats(0, 900).map(lambda t: round(t, 3)))
    agent = draw(st.sampled_from(["agent1", "agent2"]))
    return CallRecord(
        call_id=draw(st.sampled_from([f"call-{n}" for n in range(6)])),
        started_at=start,
        answered_at=start + 1,
        ended_at=start + 2000 if closed else None,
        ivr_path=[IvrStep(node, start + 1 + i, draw(st.sampled_from([None, "1", "attendant"])))
                  for i, node in enumerate(draw(st.lists(st.sampled_from(NODES), max_size=3)))],
        queue=queue, queued_at=queued_at,
        overflowed_from=draw(st.sampled_from([None, None, *QUEUES])) if queue else None,
        wait_seconds=draw(st.sampled_from([wait, None])) if queue else None,
        agent_id=agent if disposition is Disposition.ANSWERED else None,
        agent_answered_at=None if queued_at is None else queued_at + wait,
        talk_seconds=talk,
        disposition=disposition,
        direction=draw(st.sampled_from([Direction.INBOUND, Direction.INBOUND,
                                        Direction.OUTBOUND])),
        callback_of=draw(st.sampled_from([None, None, "call-0"])),
        attempts=[AgentAttempt(agent, start + 5, start + 5 + talk, AttemptOutcome.ANSWERED,
                               start + 6, talk)] if draw(st.booleans()) else [],
        faq_outcomes=[FaqOutcome("main", "hours", start + draw(st.integers(0, 1800)),
                                 draw(st.sampled_from(list(FaqResult))))
                      for _ in range(draw(st.integers(0, 2)))],
        survey_answers=[SurveyAnswer("csat", question, answer,
                                     start + draw(st.integers(0, 1800)))
                        for question, answer in draw(st.lists(st.tuples(
                            st.sampled_from(["agent-rating", "nps", "other"]),
                            st.sampled_from(["1", "4", "5", "9", "10", "x"])), max_size=3))],
    )


async def stored_rows(sessions: async_sessionmaker[AsyncSession]) -> dict[str, dict[Any, Any]]:
    """Each aggregate table's rows that are not all zero, by key."""
    found: dict[str, dict[Any, Any]] = {}
    async with sessions() as session:
        for name, spec in TABLES.items():
            rows = (await session.execute(select(spec.table))).mappings()
            found[name] = {tuple(row[k] for k in spec.keys):
                           {c: row[c] for c in spec.values}
                           for row in rows if any(row[c] for c in spec.values)}
    return found


def counted_afresh(pairs: list[tuple[int, CallRecord]]) -> dict[str, dict[Any, Any]]:
    """What the tables must hold: every stored record's contribution, added up."""
    found: dict[str, dict[Any, Any]] = {name: {} for name in TABLES}
    for _pk, record in pairs:
        for row in contribution(record, RULES):
            spec = TABLES[row.table]
            values = found[row.table].setdefault(row.key, dict.fromkeys(spec.values, 0))
            for name, value in row.values.items():
                values[name] = max(values[name], value) if name in spec.maxima \
                    else values[name] + value
    return {name: {key: values for key, values in rows.items() if any(values.values())}
            for name, rows in found.items()}


def brute_force_queue_counts(pairs: list[tuple[int, CallRecord]],
                             period: ReportPeriod) -> dict[tuple[int, str], QueueCounts]:
    """Queue counts per (interval, queue) straight from the records: no buckets, no SQL."""
    intervals = period.intervals()
    found: dict[tuple[int, str], list[QueueCounts]] = defaultdict(list)
    for _pk, record in pairs:
        passage = queue_call(record)
        if passage is None:
            continue
        entered = record.overflowed_from or record.queue  # counted where the caller entered
        assert entered is not None and record.queued_at is not None
        index = interval_index(intervals, record.queued_at)
        if index is not None:
            found[(index, entered)].append(counts_of(
                passage, service_level_seconds=RULES.threshold(entered),
                short_abandon_seconds=RULES.short_abandon(entered)))
    return {key: total(counts) for key, counts in found.items()}


ZONES = ("UTC", "America/New_York", "America/Sao_Paulo", "Asia/Kolkata")


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(history=st.lists(records(), min_size=1, max_size=10),
       first=st.integers(0, 4 * 96), quarters=st.integers(1, 4 * 96),
       interval=st.sampled_from(list(Interval)), zone=st.sampled_from(ZONES),
       rebuilt_from=st.integers(0, 3 * 86400))
async def test_aggregates_kept_record_by_record_equal_a_fresh_count_and_a_rebuild(
        sessions: async_sessionmaker[AsyncSession], history: list[CallRecord], first: int,
        quarters: int, interval: Interval, zone: str, rebuilt_from: int) -> None:
    aggregates = ReportAggregates(sessions, RULES)
    await aggregates.claim_day_zone()  # nothing counted yet: New York's day rows are read
    calls = CallRepository(sessions, followers=[aggregates])
    for record in history:  # the same call stored again: open, closed, changed
        await calls.save(record)
    pairs = await calls.records_by_pk(limit=10_000)
    expected = counted_afresh(pairs)
    assert await stored_rows(sessions) == expected

    since = T0 + first * BUCKET_SECONDS
    period = ReportPeriod(since, since + quarters * BUCKET_SECONDS, interval, time_zone(zone))
    queues = sorted({record.queue for _, record in pairs if record.queue is not None})
    from_aggregates = {key: counts for key, counts
                       in (await read_queue_counts(aggregates, period.intervals(),
                                                   queues, period.zone)).items()
                       if counts != QueueCounts()}
    assert from_aggregates == brute_force_queue_counts(pairs, period)

    await aggregates.rebuild(calls, since=T0 + rebuilt_from, until=T0 + 4 * 86400)
    assert await stored_rows(sessions) == expected
    await aggregates.rebuild(calls)
    assert await stored_rows(sessions) == expected
    async with sessions() as session:
        assert await aggregates.day_zone_counted(session) == "America/New_York"


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(history=st.lists(records(), min_size=1, max_size=12),
       cuts=st.lists(st.integers(1, 11), max_size=4))
async def test_aggregates_kept_in_batches_equal_a_fresh_count_and_a_rebuild(
        sessions: async_sessionmaker[AsyncSession], history: list[CallRecord],
        cuts: list[int]) -> None:
    """Records stored together (the record writer's batches: a call once or several times,
    open, closed, changed; its old longest wait taken out) keep the tables as one by one."""
    aggregates = ReportAggregates(sessions, RULES)
    calls = CallRepository(sessions, followers=[aggregates])
    bounds = [0, *sorted({cut for cut in cuts if cut < len(history)}), len(history)]
    for low, high in itertools.pairwise(bounds):
        if high - low == 1:
            await calls.save(history[low])
        else:
            await calls.save_many(history[low:high])
    pairs = await calls.records_by_pk(limit=10_000)
    expected = counted_afresh(pairs)
    assert await stored_rows(sessions) == expected
    await aggregates.rebuild(calls)
    assert await stored_rows(sessions) == expected


# The roll-up's zones: offsets of a half hour and of 45 minutes, and New York's clocks going
# back on 2026-11-01.
DAY_ZONES = (*ZONES, "Asia/Kathmandu", "Australia/Lord_Howe", "Pacific/Chatham")


def days_of(queue_rows: list[dict[str, Any]], rules: ReportRules) -> list[dict[str, Any]]:
    """The day rows the follower would keep beside these quarter-hour rows
    (``with_day_rows``' key, added up as the tables add up)."""
    spec = TABLES[QUEUE_DAY_TABLE]
    assert rules.day_zone is not None
    found: dict[tuple[int, str], dict[str, Any]] = {}
    for row in queue_rows:
        key = (local_day_start(row["bucket"], rules.day_zone), row["queue"])
        day = found.setdefault(key, {"day": key[0], "queue": key[1],
                                     **dict.fromkeys(spec.values, 0)})
        for column in spec.values:
            day[column] = max(day[column], row[column]) if column in spec.maxima \
                else day[column] + row[column]
    return list(found.values())


@st.composite
def aggregate_rows(draw: st.DrawFn, name: str) -> list[dict[str, Any]]:
    """Random rows of one aggregate table over four days from T0 (distinct keys)."""
    spec = TABLES[name]
    choices = {"queue": ["sales", "support", ""], "agent_id": ["agent1", "agent2", ""],
               "node": list(NODES)}
    number = st.integers(0, 10**12)  # large: sums must stay exact (BIGINT, not float)
    rows = {}
    for _ in range(draw(st.integers(0, 40))):
        key = (int(T0) + draw(st.integers(-8, 4 * 96 + 8)) * BUCKET_SECONDS,
               *(draw(st.sampled_from(choices[column])) for column in spec.keys[1:]))
        rows[key] = {**dict(zip(spec.keys, key, strict=True)),
                     **{column: draw(number) for column in spec.values}}
    return list(rows.values())


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(queue_rows=aggregate_rows(QUEUE_TABLE), survey_rows=aggregate_rows(SURVEY_TABLE),
       ivr_rows=aggregate_rows(IVR_TABLE), dropoff_rows=aggregate_rows(IVR_DROPOFF_TABLE),
       first=st.integers(0, 4 * 96), quarters=st.integers(1, 4 * 96),
       interval=st.sampled_from(list(Interval)), zone=st.sampled_from(DAY_ZONES),
       only=st.sampled_from([None, ("sales",), ("support", "")]),
       day_zone=st.sampled_from([*DAY_ZONES, None]), counted_in=st.sampled_from(
           ["as configured", "another zone", "none yet"]))
async def test_the_databases_roll_up_equals_the_python_one(
        sessions: async_sessionmaker[AsyncSession], queue_rows: list[dict[str, Any]],
        survey_rows: list[dict[str, Any]], ivr_rows: list[dict[str, Any]],
        dropoff_rows: list[dict[str, Any]], first: int, quarters: int, interval: Interval,
        zone: str, only: tuple[str, ...] | None, day_zone: str | None, counted_in: str,
        ) -> None:
    """``rolled_up`` (SQL, intervals joined as a table) == ``roll_up`` over ``read`` (Python,
    bucket by bucket), on random rows: sums, maxima, the key columns, the zone's intervals;
    the queue rows also per local day of a random zone (the day rows, read for the whole
    days of a report in that zone when they were counted in it)."""
    rules = dataclasses.replace(RULES, day_zone=None if day_zone is None
                                else time_zone(day_zone))
    aggregates = ReportAggregates(sessions, rules)
    async with sessions.begin() as session:
        for spec in TABLES.values():
            await session.execute(delete(spec.table))
        await session.execute(delete(day_zone_table))
        day_rows = [] if rules.day_zone is None else days_of(queue_rows, rules)
        for name, rows in ((QUEUE_TABLE, queue_rows), (SURVEY_TABLE, survey_rows),
                           (IVR_TABLE, ivr_rows), (IVR_DROPOFF_TABLE, dropoff_rows),
                           (QUEUE_DAY_TABLE, day_rows)):
            if rows:
                await session.execute(insert(TABLES[name].table), rows)
        if day_zone is not None and counted_in != "none yet":
            await session.execute(insert(day_zone_table), [{"zone": (
                day_zone if counted_in == "as configured" else "Etc/GMT+1")}])
    since = T0 + first * BUCKET_SECONDS
    period = ReportPeriod(since, since + quarters * BUCKET_SECONDS, interval, time_zone(zone))
    intervals = period.intervals()
    positions = period.bucket_positions(intervals)
    wanted = None if only is None else {"queue": only}
    for name, by, filtered in ((QUEUE_TABLE, ("queue",), wanted),
                               (SURVEY_TABLE, ("queue", "agent_id"), wanted),
                               (IVR_TABLE, (), None), (IVR_DROPOFF_TABLE, ("node",), None)):
        in_python = roll_up(positions, await aggregates.read(name, period.since, period.until,
                                                             only=filtered),
                            by=by, maxima=TABLES[name].maxima)
        in_sql = await aggregates.rolled_up(name, intervals, by=by, only=filtered,
                                            zone=period.zone)
        assert in_sql == in_python, (name, by)
        assert all(type(value) is int for values in in_sql.values()
                   for value in values.values())


async def test_a_changed_record_takes_its_longest_wait_out_of_its_quarter_hour(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    aggregates = ReportAggregates(sessions, RULES)
    calls = CallRepository(sessions, followers=[aggregates])
    await calls.save(call("a", wait_seconds=300.0))
    await calls.save(call("b", wait_seconds=12.0))
    assert (await stored_rows(sessions))[QUEUE_TABLE][(int(T0), "sales")][
        "longest_wait_ms"] == 300_000
    await calls.save(call("a", wait_seconds=3.0))  # corrected: a re-save of a closed record
    row = (await stored_rows(sessions))[QUEUE_TABLE][(int(T0), "sales")]
    assert row["longest_wait_ms"] == 12_000 and row["offered"] == 2
    await calls.save(call("a", queued_at=T0 + 3600))  # moved to another quarter hour
    rows = (await stored_rows(sessions))[QUEUE_TABLE]
    assert rows[(int(T0), "sales")]["offered"] == 1
    assert rows[(int(T0) + 3600, "sales")]["offered"] == 1


@pytest.mark.parametrize("zone", ["America/New_York"])
async def test_a_report_across_the_day_clocks_go_back(
        sessions: async_sessionmaker[AsyncSession], zone: str) -> None:
    aggregates = ReportAggregates(sessions, RULES)
    calls = CallRepository(sessions, followers=[aggregates])
    new_york = time_zone(zone)
    # 01:30 local happens twice on 2026-11-01: at 05:30Z (EDT) and 06:30Z (EST).
    first = datetime.fromisoformat("2026-11-01T05:30:00+00:00").timestamp()
    await calls.save(call("edt", started_at=first - 10, queued_at=first, ended_at=first + 99))
    await calls.save(call("est", started_at=first + 3590, queued_at=first + 3600,
                          ended_at=first + 3699))
    day_start = datetime(2026, 11, 1, tzinfo=new_york).timestamp()
    hours = ReportPeriod(day_start, day_start + 25 * 3600, Interval.MINUTES_60, new_york)
    per_queue, overall, totals = queue_report_records(
        hours, hours.intervals(), ("sales",), RULES,
        await read_queue_counts(aggregates, hours.intervals(), ("sales",)))
    assert len(overall) == 25
    offered = {row["label"]: row["offered"] for row in per_queue if row["offered"]}
    assert offered == {"2026-11-01T01:00-04:00": 1, "2026-11-01T01:00-05:00": 1}
    assert totals[-1]["offered"] == 2 and totals[-1]["service_level"] == 1.0
    days = ReportPeriod(day_start, day_start + 25 * 3600, Interval.DAY, new_york)
    _, overall, _ = queue_report_records(
        days, days.intervals(), ("sales",), RULES,
        await read_queue_counts(aggregates, days.intervals(), ("sales",)))
    assert [(row["label"], row["offered"], row["asa"]) for row in overall] == [
        ("2026-11-01", 2, 15.0)]


@settings(max_examples=50)
@given(st.lists(st.builds(QueueCounts, **{field.name: st.integers(0, 10**9) for field
                                          in dataclasses.fields(QueueCounts)}), max_size=8))
def test_the_column_by_column_total_is_a_run_of_plus(counts: list[QueueCounts]) -> None:
    summed = QueueCounts()
    for one in counts:
        summed = summed + one
    assert total(counts) == summed


def test_the_report_rows_declare_every_column_the_tables_hold() -> None:
    from callcenter.features.reports import ivr, queues, surveys
    from callcenter.features.reports.schemas import IvrRow, QueueFiguresRow, SurveyRow

    for columns, model in ((queues.COLUMNS, QueueFiguresRow), (ivr.COLUMNS, IvrRow),
                           (surveys.COLUMNS, SurveyRow)):
        assert [column.key for column in columns] == list(model.model_fields)


async def test_reports_rebuild_on_the_command_line_recounts_what_was_stored(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from callcenter.cli import main
    from callcenter.config import load_settings
    from callcenter.store import create_engine, session_factory, upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'callcenter.db'}"
    await upgrade(url)
    engine = create_engine(url)
    try:
        sessions = session_factory(engine)
        await CallRepository(sessions).save(call())  # stored without the follower
        aggregates = ReportAggregates(sessions, RULES)
        assert (await stored_rows(sessions))[QUEUE_TABLE] == {}
        monkeypatch.setenv("CALLCENTER_DATA_DIR", str(tmp_path))
        monkeypatch.delenv("CALLCENTER_CONFIG", raising=False)
        assert load_settings().database_url == url

        code = await asyncio.to_thread(main, ["reports", "rebuild"])
        assert code == 0
        assert (await stored_rows(sessions))[QUEUE_TABLE][(int(T0), "sales")]["answered"] == 1
        assert await aggregates.read(QUEUE_TABLE, T0, T0 + 900) != []
        bad = await asyncio.to_thread(main, ["reports", "rebuild", "--since", "yesterday"])
        assert bad == 2
    finally:
        await engine.dispose()


async def test_a_changed_center_zone_leaves_the_day_rows_unread_until_a_rebuild(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    """The day rows hold the zone recorded (a new database: the configured one at start);
    with another [center] time_zone they are not read (the quarter hours are, the same
    answer) until `reports rebuild` recounts them in it."""
    new_york = ReportAggregates(sessions, RULES)
    await new_york.claim_day_zone()
    calls = CallRepository(sessions, followers=[new_york])
    for n in range(3):
        await calls.save(call(f"c{n}", queued_at=T0 + n * 86400 + 3600))
    sao_paulo = ReportAggregates(sessions, dataclasses.replace(
        RULES, day_zone=time_zone("America/Sao_Paulo")))
    async with sessions() as session:
        assert await sao_paulo.day_zone_counted(session) == "America/New_York"
    await sao_paulo.claim_day_zone()  # its day rows will be Sao Paulo's: none read now
    await CallRepository(sessions, followers=[sao_paulo]).save(
        call("c3", queued_at=T0 + 86400 + 7200))  # counted in Sao Paulo's days
    async with sessions() as session:
        assert await sao_paulo.day_zone_counted(session) is None
    await new_york.claim_day_zone()  # and back: calls counted, nothing recorded again
    async with sessions() as session:
        assert await new_york.day_zone_counted(session) is None
    zone = time_zone("America/Sao_Paulo")
    since = datetime(2026, 10, 31, tzinfo=zone).timestamp()
    period = ReportPeriod(since, since + 3 * 86400, Interval.DAY, zone)
    pairs = await calls.records_by_pk(limit=100)
    expected = brute_force_queue_counts(pairs, period)
    assert sum(counts.offered for counts in expected.values()) == 3
    assert await read_queue_counts(sao_paulo, period.intervals(), ["sales"], zone) == expected
    await sao_paulo.rebuild(calls)
    async with sessions() as session:
        assert await sao_paulo.day_zone_counted(session) == "America/Sao_Paulo"
    days = (await stored_rows(sessions))[QUEUE_DAY_TABLE]
    assert set(days) == {(local_day_start(T0 + n * 86400 + 3600, zone), "sales")
                         for n in range(3)}
    assert sum(row["offered"] for row in days.values()) == 4
    assert await read_queue_counts(sao_paulo, period.intervals(), ["sales"], zone) == expected
