"""The sign-in throttle on a virtual clock: growing delays per address and per (address,
user), never a lock that someone else's failures put on a user."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.core.signin_throttle import SignInThrottle, ThrottlePolicy

T0 = 1_795_000_000.0


def fail(throttle: SignInThrottle, address: str, username: str, now: float) -> float:
    """One wrong-password attempt; what ``begin`` said (0.0: it was checked)."""
    return throttle.begin(address, username, now)  # counted as failed until told otherwise


def test_three_failures_are_free_then_each_next_attempt_waits_twice_as_long() -> None:
    throttle = SignInThrottle()
    now = T0
    for _ in range(3):
        assert fail(throttle, "203.0.113.5", "admin", now) == 0.0
    waits = []
    for _ in range(10):
        wait = throttle.begin("203.0.113.5", "admin", now)
        assert wait > 0
        waits.append(wait)
        now += wait
        assert fail(throttle, "203.0.113.5", "admin", now) == 0.0
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]


def test_someone_elses_failures_never_delay_the_right_user_from_another_address() -> None:
    throttle = SignInThrottle()
    for second in range(1000):
        fail(throttle, "203.0.113.5", "admin", T0 + second)
    assert throttle.begin("198.51.100.1", "admin", T0 + 1000) == 0.0
    throttle.succeeded("198.51.100.1", "admin")


def test_an_address_spraying_names_is_slowed_after_twenty_failures() -> None:
    throttle = SignInThrottle()
    for index in range(20):
        assert fail(throttle, "203.0.113.5", f"user{index}", T0) == 0.0
    assert throttle.begin("203.0.113.5", "someone-new", T0) == 1.0
    assert throttle.begin("203.0.113.6", "someone-new", T0) == 0.0


def test_a_success_clears_the_pair_but_not_the_address() -> None:
    throttle = SignInThrottle(ThrottlePolicy(address_free_failures=5))
    for index in range(4):
        fail(throttle, "203.0.113.5", f"ghost{index}", T0)
    assert throttle.begin("203.0.113.5", "me", T0) == 0.0
    throttle.succeeded("203.0.113.5", "me")  # my own success: not a failure of the address
    assert fail(throttle, "203.0.113.5", "ghost9", T0) == 0.0  # the 5th failure
    assert throttle.begin("203.0.113.5", "me", T0) == 1.0  # the sprayed failures still count


def test_an_attempt_never_checked_is_not_counted() -> None:
    throttle = SignInThrottle()
    for _ in range(10):
        assert throttle.begin("203.0.113.5", "admin", T0) == 0.0
        throttle.abandoned("203.0.113.5", "admin")
    assert len(throttle) == 0


def test_a_key_idle_for_an_hour_is_forgotten() -> None:
    throttle = SignInThrottle()
    for _ in range(3):
        fail(throttle, "203.0.113.5", "admin", T0)
    assert throttle.wait("203.0.113.5", "admin", T0) == 1.0
    assert throttle.wait("203.0.113.5", "admin", T0 + 3600) == 0.0
    assert fail(throttle, "203.0.113.5", "admin", T0 + 3600) == 0.0


def test_memory_stays_bounded_under_a_flood_of_addresses() -> None:
    throttle = SignInThrottle(ThrottlePolicy(max_tracked=1000))
    for index in range(5000):
        fail(throttle, f"10.{index // 256 % 256}.{index % 256}.1", "x", T0 + index * 0.01)
        assert len(throttle) <= 1000
    # The busiest, most recent address is still tracked.
    assert throttle.wait("10.19.135.1", "x", T0 + 50) == 0.0  # 1 failure: free
    assert len(throttle) > 0


@pytest.mark.parametrize("policy", [
    {"pair_free_failures": 0}, {"address_free_failures": 0}, {"base_delay": 0},
    {"max_delay": 0.5}, {"max_delay": 4000}, {"max_tracked": 1},
])
def test_a_policy_that_makes_no_sense_is_refused(policy: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ThrottlePolicy(**policy)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- properties


@dataclass(frozen=True)
class Attempt:
    address: int
    user: int
    right: bool
    later: float  # seconds after the previous step


steps = st.lists(st.builds(
    Attempt,
    address=st.integers(0, 3),
    user=st.integers(0, 2),
    right=st.booleans(),
    later=st.sampled_from([0.0, 0.0, 0.5, 1.0, 7.0, 300.0, 4000.0]),
), max_size=80)


@settings(max_examples=300, deadline=None)
@given(steps=steps)
def test_properties_of_any_history(steps: list[Attempt]) -> None:
    """Whatever happened before: a fresh address is never delayed; no wait exceeds the cap;
    from one (address, user) a wrong password is checked at most three times without a
    delay between, and a right password checked resets the pair."""
    policy = ThrottlePolicy()
    throttle = SignInThrottle(policy)
    now = T0
    used_addresses: set[int] = set()
    checked_in_a_row: dict[tuple[int, int], int] = {}
    for step in steps:
        now += step.later
        if step.later >= policy.base_delay:
            checked_in_a_row.clear()  # time passed: a delay may have been served
        address, user = f"192.0.2.{step.address}", f"user{step.user}"
        assert throttle.wait("192.0.2.9", user, now) == 0.0  # an address the steps never use
        wait = throttle.begin(address, user, now)
        assert 0.0 <= wait <= policy.max_delay
        if address not in {f"192.0.2.{a}" for a in used_addresses}:
            assert wait == 0.0
        used_addresses.add(step.address)
        if wait > 0:
            continue
        key = (step.address, step.user)
        if step.right:
            throttle.succeeded(address, user)
            checked_in_a_row.pop(key, None)
        else:
            checked_in_a_row[key] = checked_in_a_row.get(key, 0) + 1
            assert checked_in_a_row[key] <= policy.pair_free_failures
