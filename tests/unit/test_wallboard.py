"""The wallboard's pure core: today's figures per queue, agents, and alerts with hysteresis,
on a virtual clock (core/wallboard.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.core.acd_actions import AgentState
from callcenter.core.records import CallRecord, Direction, Disposition
from callcenter.core.wallboard import (
    AgentOnBoard,
    AlertCleared,
    AlertRaised,
    CallProgress,
    CenterDay,
    Figure,
    QueueNow,
    QueueTargets,
    Tally,
    Wallboard,
    progress_of,
    rebuild,
)

UTC = ZoneInfo("UTC")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC).timestamp()  # a Tuesday morning
TARGETS = QueueTargets(service_level_seconds=20, short_abandon_seconds=5,
                       service_level_below=0.8, abandon_rate_above=0.1, hysteresis=0.05,
                       min_calls=4)


def board(now: float = T0, zone: ZoneInfo = UTC, **queues: QueueTargets) -> Wallboard:
    return Wallboard(queues or {"sales": TARGETS}, zone, now)


def answered(call_id: str, at: float, after: float, queue: str = "sales") -> CallProgress:
    return CallProgress(call_id, queue, at, answered_after=after)


def abandoned(call_id: str, at: float, after: float, queue: str = "sales") -> CallProgress:
    return CallProgress(call_id, queue, at, abandoned_after=after)


# --------------------------------------------------------------------------- by hand


def test_a_call_counts_as_offered_when_it_joins_then_as_answered_in_time_when_answered():
    wallboard = board()
    wallboard.call(CallProgress("c1", "sales", T0), T0)
    tally = wallboard.tally("sales")
    assert (tally.offered, tally.answered, tally.service_level) == (1, 0, None)
    wallboard.call(answered("c1", T0, 12.0), T0 + 12)
    wallboard.call(answered("c1", T0, 12.0), T0 + 90)  # the same version again: no change
    tally = wallboard.tally("sales")
    assert (tally.offered, tally.answered, tally.answered_in_time) == (1, 1, 1)
    assert tally.service_level == 1.0 and tally.abandon_rate == 0.0


def test_service_level_counts_late_answers_and_abandons_after_t_short_abandons_shown_apart():
    wallboard = board()
    for call in (answered("a", T0, 20.0),  # exactly T: in time
                 answered("b", T0, 20.5),  # late
                 abandoned("c", T0, 30.0),  # abandoned after T
                 abandoned("d", T0, 10.0),  # abandoned within T: not in SL
                 abandoned("e", T0, 4.9),  # short abandon: abandoned, shown apart too
                 CallProgress("f", "sales", T0)):  # still waiting
        wallboard.call(call, T0 + 60)
    tally = wallboard.tally("sales")
    assert (tally.offered, tally.answered, tally.answered_in_time) == (6, 2, 1)
    assert (tally.abandoned, tally.abandoned_after_t, tally.short_abandoned) == (3, 1, 1)
    assert tally.service_level == pytest.approx(1 / 3)  # a / (a, b, c)
    assert tally.abandon_rate == pytest.approx(3 / 6)  # c, d, e / everyone offered


def test_a_call_that_overflows_moves_from_one_queues_counts_to_the_others():
    wallboard = board(sales=TARGETS, support=TARGETS)
    wallboard.call(CallProgress("c1", "sales", T0), T0)
    wallboard.call(answered("c1", T0, 70.0, queue="support"), T0 + 70)  # overflowed at 60 s
    assert wallboard.tally("sales").offered == 0
    support = wallboard.tally("support")
    assert (support.offered, support.answered, support.answered_in_time) == (1, 1, 0)


def test_an_alert_is_raised_once_when_service_level_falls_below_and_cleared_with_hysteresis():
    wallboard = board()
    at = T0
    events = []
    for n in range(3):  # three late answers: below 80 %, but fewer than min_calls
        at += 1
        events += wallboard.call(answered(f"late{n}", at, 60.0), at)
    assert events == []
    at += 1
    events = wallboard.call(answered("late3", at, 60.0), at)
    assert events == [AlertRaised("sales", Figure.SERVICE_LEVEL, 0.0, 0.8, at)]
    assert wallboard.alerts_raised("sales") == [Figure.SERVICE_LEVEL]
    quiet = []
    n = 0
    # In-time answers bring SL up: 16/20 = 0.8 is no longer below, but not yet 0.85 either.
    while wallboard.tally("sales").service_level < 0.8:
        at += 1
        quiet += wallboard.call(answered(f"ok{n}", at, 5.0), at)
        n += 1
    assert wallboard.tally("sales").service_level == pytest.approx(0.8)
    assert quiet == [], "no clearing before the figure is hysteresis back"
    cleared = []
    while not cleared:
        at += 1
        cleared = wallboard.call(answered(f"ok{n}", at, 5.0), at)
        n += 1
    assert wallboard.tally("sales").service_level >= 0.85
    assert cleared == [AlertCleared("sales", Figure.SERVICE_LEVEL,
                                    wallboard.tally("sales").service_level, 0.8, at)]
    assert wallboard.alerts_raised("sales") == []


def test_the_abandon_rate_alert_rises_above_its_threshold_and_clears_below_minus_hysteresis():
    wallboard = board()
    for n in range(9):
        wallboard.call(answered(f"a{n}", T0, 3.0), T0 + 1)
    assert wallboard.call(abandoned("x1", T0, 8.0), T0 + 2) == []  # 1/10: not above 10 %
    raised = wallboard.call(abandoned("x2", T0, 8.0), T0 + 3)  # 2/11
    assert [type(a) for a in raised] == [AlertRaised]
    assert raised[0].figure is Figure.ABANDON_RATE
    cleared = []
    n = 0
    while not cleared:
        cleared = wallboard.call(answered(f"b{n}", T0, 3.0), T0 + 4)
        n += 1
    assert wallboard.tally("sales").abandon_rate <= 0.05  # 2/40
    assert cleared[0].figure is Figure.ABANDON_RATE


def test_no_alert_for_a_threshold_that_is_switched_off():
    quiet = QueueTargets(service_level_below=None, abandon_rate_above=None, min_calls=1)
    wallboard = board(sales=quiet)
    assert wallboard.call(abandoned("x", T0, 60.0), T0) == []
    assert wallboard.tally("sales").abandon_rate == 1.0


def test_at_the_centers_midnight_the_figures_start_again_and_raised_alerts_clear():
    start = datetime(2026, 3, 10, 23, 0, tzinfo=SAO_PAULO).timestamp()
    wallboard = board(start, SAO_PAULO)
    for n in range(4):
        wallboard.call(abandoned(f"x{n}", start, 60.0), start + n)
    assert set(wallboard.alerts_raised("sales")) == {Figure.SERVICE_LEVEL, Figure.ABANDON_RATE}
    midnight = datetime(2026, 3, 11, 0, 0, tzinfo=SAO_PAULO).timestamp()
    assert wallboard.advance(midnight - 0.001) == []
    alerts = wallboard.advance(midnight)
    assert {(type(a), a.figure, a.value) for a in alerts} == {
        (AlertCleared, Figure.SERVICE_LEVEL, None), (AlertCleared, Figure.ABANDON_RATE, None)}
    assert wallboard.tally("sales").offered == 0
    assert wallboard.day.day.isoformat() == "2026-03-11"
    # A call that joined before midnight and ends after it belongs to yesterday.
    wallboard.call(abandoned("late", midnight - 30, 60.0), midnight + 30)
    assert wallboard.tally("sales").offered == 0


def test_a_center_day_is_23_or_25_hours_across_a_daylight_saving_change():
    spring = CenterDay.containing(datetime(2026, 3, 29, 12, tzinfo=BERLIN).timestamp(), BERLIN)
    autumn = CenterDay.containing(datetime(2026, 10, 25, 12, tzinfo=BERLIN).timestamp(), BERLIN)
    assert spring.end - spring.start == 23 * 3600
    assert autumn.end - autumn.start == 25 * 3600


def test_agents_and_queue_occupancy_mark_the_board_changed_only_when_they_change():
    wallboard = board()
    assert wallboard.take_changed()  # a new board is news
    alice = AgentOnBoard("alice", AgentState.READY, None, T0, ("sales",))
    wallboard.agent(alice)
    assert wallboard.take_changed()
    wallboard.agent(alice)
    wallboard.queue_now("sales", QueueNow(0, None))
    assert not wallboard.take_changed()
    wallboard.queue_now("sales", QueueNow(1, T0 + 5))
    assert wallboard.take_changed()
    wallboard.agent_gone("alice")
    assert wallboard.take_changed() and wallboard.agents() == []


def test_a_record_tells_the_board_its_queue_wait_and_outcome():
    record = CallRecord("c1", started_at=T0, queue="sales", queued_at=T0 + 10,
                        agent_answered_at=T0 + 25, ended_at=T0 + 200,
                        disposition=Disposition.ANSWERED)
    assert progress_of(record) == CallProgress("c1", "sales", T0 + 10, answered_after=15.0)
    record = CallRecord("c2", started_at=T0, queue="sales", queued_at=T0 + 10,
                        ended_at=T0 + 40, disposition=Disposition.ABANDONED_IN_QUEUE)
    assert progress_of(record) == CallProgress("c2", "sales", T0 + 10, abandoned_after=30.0)
    record = CallRecord("c3", started_at=T0, queue="sales", queued_at=T0 + 10,
                        ended_at=T0 + 40, disposition=Disposition.NO_AGENT)
    assert progress_of(record) == CallProgress("c3", "sales", T0 + 10)
    assert progress_of(CallRecord("c4", started_at=T0)) is None  # never queued
    assert progress_of(CallRecord("c5", started_at=T0, queue="sales", queued_at=T0,
                                  direction=Direction.OUTBOUND)) is None
    assert progress_of(CallRecord("c6", started_at=T0, queue="sales", queued_at=T0,
                                  callback_of="c2")) is None


def test_rebuilding_from_records_gives_what_the_live_feed_gave():
    records = [CallRecord(f"c{n}", started_at=T0 + n, queue="sales", queued_at=T0 + n,
                          agent_answered_at=T0 + n + (n % 40) if n % 3 else None,
                          ended_at=T0 + n + 50,
                          disposition=(Disposition.ANSWERED if n % 3
                                       else Disposition.ABANDONED_IN_QUEUE))
               for n in range(30)]
    live = board()
    for record in records:
        live.call(progress_of(record), T0 + 100)  # type: ignore[arg-type]
    rebuilt = board()
    rebuild(rebuilt, records, T0 + 100)
    assert rebuilt.tally("sales") == live.tally("sales")
    assert rebuilt.alerts_raised("sales") == live.alerts_raised("sales")


def test_bad_targets_are_refused_naming_the_field():
    with pytest.raises(ValueError, match="service_level_below: 80"):
        QueueTargets(service_level_below=80)
    with pytest.raises(ValueError, match="min_calls"):
        QueueTargets(min_calls=0)


# --------------------------------------------------------------------------- hypothesis


@dataclass(frozen=True)
class Step:
    gap: float  # seconds the clock moves before this step
    call: int  # which call
    queue: str  # where it is now (it may overflow from one to the other)
    outcome: str  # "join", "answer", "abandon"
    wait: float


steps = st.lists(st.builds(
    Step, gap=st.sampled_from([0.0, 1.0, 7.0, 60.0, 3600.0, 20000.0]),
    call=st.integers(0, 25), queue=st.sampled_from(["sales", "support"]),
    outcome=st.sampled_from(["join", "answer", "abandon"]),
    wait=st.sampled_from([0.0, 3.0, 4.999, 5.0, 19.0, 20.0, 20.001, 45.0, 300.0])),
    max_size=120)


def brute_force(final: dict[int, CallProgress], queue: str, targets: QueueTargets,
                day: CenterDay) -> tuple[int, int, int, int, int, int]:
    today = [p for p in final.values()
             if p.queue == queue and day.start <= p.queued_at < day.end]
    answered = [p for p in today if p.answered_after is not None]
    gave_up = [p for p in today if p.abandoned_after is not None]
    short = [p for p in gave_up if p.abandoned_after < targets.short_abandon_seconds]
    return (len(today), len(answered),
            sum(p.answered_after <= targets.service_level_seconds for p in answered),
            len(gave_up), sum(p.abandoned_after > targets.service_level_seconds for p in gave_up),
            len(short))


@settings(max_examples=150, deadline=None)
@given(steps=steps, zone=st.sampled_from([UTC, SAO_PAULO, BERLIN]),
       min_calls=st.integers(1, 5), hysteresis=st.sampled_from([0.0, 0.05, 0.2]))
def test_figures_equal_a_brute_force_count_and_alerts_fire_once_per_crossing(
        steps: list[Step], zone: ZoneInfo, min_calls: int, hysteresis: float) -> None:
    targets = QueueTargets(service_level_below=0.8, abandon_rate_above=0.2,
                           hysteresis=hysteresis, min_calls=min_calls)
    start = datetime(2026, 3, 28, 20, 0, tzinfo=zone).timestamp()  # Berlin's spring change
    wallboard = Wallboard({"sales": targets, "support": targets}, zone, start)
    now = start
    joined: dict[int, float] = {}
    final: dict[int, CallProgress] = {}
    raised = {(queue, figure): False for queue in ("sales", "support") for figure in Figure}
    for step in steps:
        now += step.gap
        if step.call not in joined or step.outcome == "join":
            joined.setdefault(step.call, now)
            progress = CallProgress(f"c{step.call}", step.queue, joined[step.call])
        elif step.outcome == "answer":
            progress = answered(f"c{step.call}", joined[step.call], step.wait, step.queue)
        else:
            progress = abandoned(f"c{step.call}", joined[step.call], step.wait, step.queue)
        final[step.call] = progress
        alerts = wallboard.call(progress, now)
        for alert in alerts:  # each one changes the state: raised, cleared, raised...
            key = (alert.queue, alert.figure)
            assert raised[key] is isinstance(alert, AlertCleared)
            raised[key] = isinstance(alert, AlertRaised)
            tally = wallboard.tally(alert.queue)
            day_ended = isinstance(alert, AlertCleared) and alert.value is None
            if not day_ended:  # (a new day's first call may already count after midnight)
                assert alert.value == tally.value(alert.figure)  # the figure as it is now
            bad_side = (alert.value is not None and (
                alert.value < alert.threshold if alert.figure is Figure.SERVICE_LEVEL
                else alert.value > alert.threshold))
            if isinstance(alert, AlertRaised):  # a crossing to the bad side, enough calls
                assert bad_side and tally.base(alert.figure) >= min_calls
            elif alert.value is not None:  # back by the hysteresis (the day's end: None)
                assert not bad_side
        for queue in ("sales", "support"):
            tally = wallboard.tally(queue)
            assert (tally.offered, tally.answered, tally.answered_in_time, tally.abandoned,
                    tally.abandoned_after_t, tally.short_abandoned) == brute_force(
                        final, queue, targets, wallboard.day)
            for figure in Figure:
                check_alert_state(figure, raised[(queue, figure)],
                                  figure in wallboard.alerts_raised(queue), tally, targets)


def check_alert_state(figure: Figure, raised: bool, shown: bool, tally: Tally,
                      targets: QueueTargets) -> None:
    """Raised: the figure is not yet back by the hysteresis; not raised: it is not on the
    bad side of its threshold (or too few calls count in it)."""
    assert shown is raised
    threshold = targets.service_level_below if figure is Figure.SERVICE_LEVEL else (
        targets.abandon_rate_above)
    assert threshold is not None
    value = tally.value(figure)
    if raised:
        assert value is not None
        if figure is Figure.SERVICE_LEVEL:
            assert value < min(1.0, threshold + targets.hysteresis)
        else:
            assert value > max(0.0, threshold - targets.hysteresis)
    elif value is not None and tally.base(figure) >= targets.min_calls:
        if figure is Figure.SERVICE_LEVEL:
            assert value >= threshold
        else:
            assert value <= threshold
