"""Agents' time and calls per 15-minute bucket, and the figures made from them: a
hand-worked agent day, and hypothesis against a brute-force count."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.core.agent_figures import (
    BUCKET_MICROS,
    MICROS,
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
    state_time,
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

DAY = datetime(2026, 12, 7, tzinfo=UTC).timestamp()


def at(clock: str) -> float:
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return DAY + hours * 3600 + minutes * 60 + seconds


def change(clock: str, state: str, reason: str | None = None, agent: str = "a1",
           ) -> LoggedChange:
    return LoggedChange(agent, micros(at(clock)), state, reason)


def totals_of(time: dict[StateKey, int]) -> AgentTotals:
    totals = AgentTotals()
    for key, amount in time.items():
        totals.add_state(key.state, key.reason, amount)
    return totals


AGENT_DAY = [
    change("09:00:00", "ready", "login"),
    change("09:10:00", "ringing"),
    change("09:10:10", "on_call"),
    change("09:20:00", "wrap_up"),
    change("09:21:30", "ready"),
    change("09:30:00", "paused", "lunch"),
    change("10:00:00", "ready"),
    change("10:07:30", "logged_out", "logout"),
]


def test_an_agent_day_by_hand_bucket_by_bucket():
    time = state_time(AGENT_DAY)

    def seconds(clock: str) -> dict[tuple[str, str], float]:
        bucket = micros(at(clock))
        return {(k.state, k.reason): v / MICROS for k, v in time.items() if k.bucket == bucket}

    assert seconds("09:00:00") == {("ready", ""): 600, ("ringing", ""): 10,
                                   ("on_call", ""): 290}
    assert seconds("09:15:00") == {("on_call", ""): 300, ("wrap_up", ""): 90,
                                   ("ready", ""): 510}
    assert seconds("09:30:00") == {("paused", "lunch"): 900}
    assert seconds("09:45:00") == {("paused", "lunch"): 900}
    assert seconds("10:00:00") == {("ready", ""): 450}
    assert len({key.bucket for key in time}) == 5  # logged out: no time at all after 10:07:30


def test_an_agent_day_by_hand_occupancy_and_utilisation():
    totals = totals_of(state_time(AGENT_DAY))
    assert (totals.ready, totals.ringing, totals.on_call, totals.wrap_up) == (
        1560 * MICROS, 10 * MICROS, 590 * MICROS, 90 * MICROS)
    assert totals.paused == {"lunch": 1800 * MICROS}
    assert totals.logged_in == 4050 * MICROS  # 09:00:00 to 10:07:30
    # occupancy = (talk + hold + wrap-up) / (that + ready idle): 680 / (680 + 1570)
    assert totals.occupancy == pytest.approx(680 / 2250)
    assert totals.utilisation == pytest.approx(680 / 4050)  # handle / logged in


def test_hold_is_part_of_the_call_so_occupancy_counts_it_once():
    totals = AgentTotals(ready=100, on_call=300, wrap_up=50, hold=120)
    assert totals.talk == 180 and totals.handle == 350
    assert totals.occupancy == pytest.approx(350 / 450)


def test_nothing_logged_in_has_no_occupancy_rather_than_a_division_by_zero():
    assert AgentTotals().occupancy is None and AgentTotals().utilisation is None
    paused_all_day = AgentTotals(paused={"training": 3600 * MICROS})
    assert paused_all_day.occupancy is None  # paused time is out of both
    assert paused_all_day.utilisation == 0


def test_the_open_state_counts_up_to_now_and_logged_out_counts_nothing():
    time = open_span_time(change("09:50:00", "paused", "break"), micros(at("10:05:00")))
    assert {(k.bucket, k.reason): v for k, v in time.items()} == {
        (micros(at("09:45:00")), "break"): 600 * MICROS,
        (micros(at("10:00:00")), "break"): 300 * MICROS}
    assert open_span_time(change("09:50:00", "logged_out"), micros(at("11:00:00"))) == {}


def test_a_login_reason_is_not_a_kind_of_time():
    time = state_time([change("09:00:00", "ready", "login"), change("09:05:00", "logged_out")])
    assert list(time) == [StateKey("a1", micros(at("09:00:00")), "ready", "")]


def handled_call() -> CallRecord:
    return CallRecord(
        call_id="c1", started_at=at("09:14:00"), ended_at=at("09:40:00"),
        attempts=[
            AgentAttempt("a1", at("09:14:10"), at("09:14:30"), AttemptOutcome.NO_ANSWER),
            AgentAttempt("a2", at("09:14:30"), at("09:20:00"), AttemptOutcome.ANSWERED,
                         at("09:14:50"), 310.0),
            AgentAttempt("a3", at("09:20:00"), at("09:40:00"), AttemptOutcome.ANSWERED,
                         at("09:20:05"), 1195.0),
        ],
        transfers=[
            Transfer(TransferMode.BLIND, "a2", at("09:19:50"), to_agent="a3",
                     outcome=TransferOutcome.COMPLETED, ended_at=at("09:20:05")),
            Transfer(TransferMode.BLIND, "a3", at("09:30:00"), to_queue="sales",
                     outcome=TransferOutcome.REFUSED, ended_at=at("09:30:01")),
        ])


def test_a_call_credits_each_agent_who_answered_and_who_transferred():
    points = ProductivityPoints(inbound_call=2, outbound_call=5, transfer=1)
    credits = call_credits(handled_call(), points)
    b = micros(at("09:00:00"))
    assert credits == [
        CallCredit("a2", b, handled=1, points=2),  # answered at 09:14:50
        CallCredit("a2", b + BUCKET_MICROS, transfers=1, points=1),  # transferred at 09:19:50
        CallCredit("a3", b + BUCKET_MICROS, handled=1, points=2),  # its refused transfer: no
    ]
    outbound = call_credits(CallRecord(
        call_id="o1", started_at=at("09:00:00"), direction=Direction.OUTBOUND,
        attempts=[AgentAttempt("a1", at("09:00:01"), None, AttemptOutcome.ANSWERED,
                               at("09:00:01"))]), points)
    assert outbound == [CallCredit("a1", b, handled=1, points=5)]  # open records count too


def test_an_agent_s_hold_is_their_hold_time_cut_at_the_buckets_a_caller_s_is_not():
    record = CallRecord(
        call_id="h1", started_at=at("09:10:00"), ended_at=at("09:20:00"),
        attempts=[AgentAttempt("a1", at("09:10:00"), at("09:20:00"), AttemptOutcome.ANSWERED,
                               at("09:10:05"), 595.0)],
        holds=[Hold(HoldBy.AGENT, at("09:14:00"), at("09:16:30"), "a1"),
               Hold(HoldBy.CALLER, at("09:17:00"), at("09:18:00")),
               Hold(HoldBy.AGENT, at("09:19:00"), None, "a1")])  # open: ends with the call
    b = micros(at("09:00:00"))
    assert call_credits(record, ProductivityPoints()) == [
        CallCredit("a1", b, handled=1, points=1, hold=60 * MICROS),
        CallCredit("a1", b + BUCKET_MICROS, hold=(90 + 60) * MICROS)]


def test_a_disposition_earns_its_points_where_the_agent_disposed():
    points = ProductivityPoints(dispositions={"sale": 10, "do_not_call": -1})
    assert disposition_credit("a1", "sale", at("09:16:00"), points) == CallCredit(
        "a1", micros(at("09:15:00")), points=10)
    assert disposition_credit("a1", "no_interest", at("09:16:00"), points).points == 0


@pytest.mark.parametrize("bad, message", [
    ({"inbound_call": 1.5}, r"productivity.inbound_call: 1.5 is not a whole number"),
    ({"transfer": True}, r"productivity.transfer: True is not a whole number"),
    ({"dispositions": {"sale": "10"}}, r"productivity.dispositions\['sale'\]: '10'"),
    ({"dispositions": {"": 1}}, r"productivity.dispositions: '' is not a name"),
])
def test_bad_points_are_refused_naming_the_key(bad: dict[str, object], message: str):
    with pytest.raises(ValueError, match=message):
        ProductivityPoints(**bad)  # type: ignore[arg-type]


def test_microseconds_are_exact_for_stored_times():
    when = datetime(2026, 12, 7, 9, 0, 0, 123457, tzinfo=UTC)
    assert micros_of(when) == micros(when.timestamp())
    assert bucket_of(micros_of(when)) == micros(at("09:00:00"))


# --------------------------------------------------------------------------- properties

STATES = ["ready", "ringing", "on_call", "wrap_up", "paused", "logged_out"]
histories = st.lists(
    st.tuples(st.integers(0, 3 * 3600 * MICROS), st.sampled_from(STATES),
              st.sampled_from([None, "break", "lunch"])),
    max_size=25,
).map(lambda raw: [LoggedChange("a1", DAY_MICROS + offset, state, reason)
                   for offset, state, reason in sorted(raw, key=lambda item: item[0])])
DAY_MICROS = micros(DAY)


def brute_force(changes: list[LoggedChange]) -> dict[StateKey, int]:
    """Bucket by bucket, each span's overlap with it: the other way round."""
    totals: dict[StateKey, int] = {}
    if not changes:
        return totals
    for bucket in range(bucket_of(changes[0].at), changes[-1].at + 1, BUCKET_MICROS):
        for current, following in itertools.pairwise(changes):
            if current.state == "logged_out":
                continue
            overlap = min(following.at, bucket + BUCKET_MICROS) - max(current.at, bucket)
            if overlap > 0:
                key = StateKey("a1", bucket, current.state,
                               (current.reason or "") if current.state == "paused" else "")
                totals[key] = totals.get(key, 0) + overlap
    return totals


@given(histories)
def test_state_time_is_the_brute_force_count(changes: list[LoggedChange]):
    assert state_time(changes) == brute_force(changes)


@given(histories, st.integers(0, 12))
def test_laying_out_again_from_a_bucket_on_gives_those_buckets_exactly(
        changes: list[LoggedChange], buckets_in: int):
    start = bucket_of(DAY_MICROS) + buckets_in * BUCKET_MICROS
    lead = [c for c in changes if c.at < start][-1:]
    later = state_time(lead + [c for c in changes if c.at >= start], since=start)
    assert later == {k: v for k, v in state_time(changes).items() if k.bucket >= start}


@given(histories)
def test_the_time_adds_up_to_the_time_logged_in(changes: list[LoggedChange]):
    totals = totals_of(state_time(changes))
    logged_in = sum(following.at - current.at
                    for current, following in itertools.pairwise(changes)
                    if current.state != "logged_out")
    assert totals.logged_in == logged_in
    if totals.occupancy is not None:
        assert 0 <= totals.occupancy <= 1
