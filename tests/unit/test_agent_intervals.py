"""Agents' state intervals (core/agent_intervals.py): hand-worked days, and for any log the
intervals are consecutive, clipped to the period, and say the state the log says at every
instant (checked against a brute-force lookup)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.core.agent_intervals import IntervalError, StateInterval, agent_intervals
from callcenter.features.agents.store import StateChange

T0 = 1_796_716_800.0  # a midnight


def change(agent: str, at: float, state: str, previous: str,
           reason: str | None = None) -> StateChange:
    return StateChange(agent_id=agent, state=state, reason=reason, at=T0 + at,
                       previous=previous)


def laid_out(intervals: list[StateInterval]) -> list[tuple[object, ...]]:
    return [(i.agent_id, i.state, i.reason, i.start - T0, i.end - T0, i.ongoing)
            for i in intervals]


ANA_DAY = [
    change("ana", -3600, "ready", "logged_out", "login"),  # the day before the period
    change("ana", 100, "ringing", "ready"),
    change("ana", 105, "on_call", "ringing"),
    change("ana", 200, "wrap_up", "on_call", "call ended"),
    change("ana", 230, "ready", "wrap_up", "wrap-up ended"),
    change("ana", 300, "paused", "ready", "lunch"),
    change("ana", 400, "paused", "paused", "training"),
]


def test_a_day_of_an_agent_clipped_to_the_period_with_the_last_state_open_to_now():
    assert laid_out(agent_intervals(ANA_DAY, T0, T0 + 86_400, now=T0 + 500)) == [
        ("ana", "ready", "login", 0, 100, False),
        ("ana", "ringing", None, 100, 105, False),
        ("ana", "on_call", None, 105, 200, False),
        ("ana", "wrap_up", "call ended", 200, 230, False),
        ("ana", "ready", "wrap-up ended", 230, 300, False),
        ("ana", "paused", "lunch", 300, 400, False),
        ("ana", "paused", "training", 400, 500, True),
    ]


def test_a_period_that_is_over_clips_the_intervals_to_its_end():
    assert laid_out(agent_intervals(ANA_DAY, T0 + 150, T0 + 250, now=T0 + 500)) == [
        ("ana", "on_call", None, 150, 200, False),
        ("ana", "wrap_up", "call ended", 200, 230, False),
        ("ana", "ready", "wrap-up ended", 230, 250, False),
    ]


def test_without_an_earlier_change_the_first_change_says_what_held_before_it():
    changes = [change("bob", 60, "logged_out", "paused", "logout")]
    assert laid_out(agent_intervals(changes, T0, T0 + 120, now=T0 + 1000)) == [
        ("bob", "paused", None, 0, 60, False),
        ("bob", "logged_out", "logout", 60, 120, False),
    ]


def test_agents_come_apart_sorted_and_a_repeated_line_is_one_interval():
    changes = [change("bob", 10, "ready", "logged_out", "login"),
               change("ana", 5, "ready", "logged_out", "login"),
               change("bob", 20, "ready", "logged_out", "login")]
    assert laid_out(agent_intervals(changes, T0, T0 + 30, now=T0 + 30)) == [
        ("ana", "logged_out", None, 0, 5, False), ("ana", "ready", "login", 5, 30, True),
        ("bob", "logged_out", None, 0, 10, False), ("bob", "ready", "login", 10, 30, True),
    ]


def test_a_period_ending_before_it_starts_is_refused_and_a_future_one_is_empty():
    with pytest.raises(IntervalError, match=r"ends .* before it starts"):
        agent_intervals(ANA_DAY, T0 + 10, T0, now=T0 + 20)
    assert agent_intervals(ANA_DAY, T0 + 1000, T0 + 2000, now=T0 + 500) == []


STATES = ["logged_out", "ready", "ringing", "on_call", "wrap_up", "paused"]


@st.composite
def logs(draw: st.DrawFn) -> list[StateChange]:
    changes = []
    for agent in draw(st.lists(st.sampled_from(["ana", "bob", "cy"]), unique=True)):
        previous = draw(st.sampled_from(STATES))
        for at in sorted(draw(st.lists(st.integers(-100, 1100), min_size=1, max_size=8))):
            state = draw(st.sampled_from(STATES))
            reason = draw(st.sampled_from([None, "lunch", "login"]))
            changes.append(change(agent, at, state, previous, reason))
            previous = state
    return draw(st.permutations(changes))


def state_at(changes: list[StateChange], agent: str, instant: float) -> tuple[str, str | None]:
    """Brute force: the last change of the agent at or before the instant (log order among
    equal times), else the first change's previous."""
    mine = sorted((c for c in changes if c.agent_id == agent), key=lambda c: c.at)
    before = [c for c in mine if c.at <= instant]
    return (before[-1].state, before[-1].reason) if before else (mine[0].previous, None)


@given(logs(), st.integers(-200, 1200), st.integers(0, 1400), st.integers(-200, 1400))
def test_intervals_are_consecutive_clipped_and_say_what_the_log_says(
        changes: list[StateChange], since: int, length: int, now: int):
    start, until, clock = T0 + since, T0 + since + length, T0 + now
    intervals = agent_intervals(changes, start, until, now=clock)
    end = min(until, clock)
    for agent in sorted({c.agent_id for c in changes}):
        mine = [i for i in intervals if i.agent_id == agent]
        if end <= start:
            assert mine == []
            continue
        assert mine[0].start == start and mine[-1].end == end
        for before, after in itertools.pairwise(mine):
            assert before.end == after.start
            assert (before.state, before.reason) != (after.state, after.reason)
            assert not before.ongoing
        assert all(i.seconds > 0 for i in mine)
        # Open to now exactly when the agent is still in it now (no change ended it then).
        last = mine[-1]
        assert last.ongoing == (end == clock and state_at(changes, agent, clock) == (
            last.state, last.reason))
        for interval in mine:
            for instant in (interval.start, (interval.start + interval.end) / 2):
                assert state_at(changes, agent, instant) == (interval.state, interval.reason)
