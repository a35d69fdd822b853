"""How long a sign-in attempt must wait: growing delays per client address and per
(address, username), never a lock on the username itself.

A lock on the username alone lets anyone lock anyone out (five wrong passwords for ``admin``
from anywhere, and the real admin is shut out too). Here failures are counted under two keys
that both include where the attempt comes from:

- the address alone, with a generous allowance: it slows one address spraying many
  usernames (made-up ones included);
- the (address, username) pair, with a small allowance: it slows one address guessing one
  user's password.

Past its allowance a key's next attempt waits ``base_delay * 2**(excess)`` seconds after the
previous one, capped at ``max_delay``; a key idle for ``forget_after`` seconds starts afresh.
The right password from another address is never delayed by someone else's failures.

An attempt counts as failed from the moment it is let through until it is known to have
succeeded (or was never checked), so attempts sent in parallel get no more guesses than
attempts sent one by one. Pure: time comes in as ``now``; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

PAIR_FREE_FAILURES = 3  # a typo or two, and a third try, at once
ADDRESS_FREE_FAILURES = 20  # an office behind one address signs in with several names
BASE_DELAY = 1.0
MAX_DELAY = 300.0
FORGET_AFTER = 3600.0
MAX_TRACKED = 50_000  # keys; beyond this the idle ones, then the least recent, are dropped


@dataclass
class _Tally:
    failures: int
    last: float  # when the last counted attempt was let through


@dataclass(frozen=True)
class ThrottlePolicy:
    pair_free_failures: int = PAIR_FREE_FAILURES
    address_free_failures: int = ADDRESS_FREE_FAILURES
    base_delay: float = BASE_DELAY
    max_delay: float = MAX_DELAY
    forget_after: float = FORGET_AFTER
    max_tracked: int = MAX_TRACKED

    def __post_init__(self) -> None:
        if self.pair_free_failures < 1 or self.address_free_failures < 1:
            raise ValueError("free failures: at least 1, or nobody could sign in at all")
        if not 0 < self.base_delay <= self.max_delay < self.forget_after:
            raise ValueError("delays: need 0 < base_delay <= max_delay < forget_after")
        if self.max_tracked < 2:
            raise ValueError("max_tracked: at least 2")

    def delay_after(self, failures: int, free: int) -> float:
        """Seconds between the last attempt and the next one after ``failures`` failures."""
        excess = failures - free
        if excess < 0:
            return 0.0
        if excess >= 64:  # 2**64 seconds is already far past any cap
            return self.max_delay
        return min(self.base_delay * 2.0**excess, self.max_delay)


class SignInThrottle:
    """Decides whether a sign-in attempt may be checked now, and remembers failures."""

    def __init__(self, policy: ThrottlePolicy | None = None) -> None:
        self.policy = policy or ThrottlePolicy()
        self._tallies: dict[tuple[str, str | None], _Tally] = {}

    def begin(self, address: str, username: str, now: float) -> float:
        """0.0: check the attempt now (it counts as failed until ``succeeded`` or
        ``abandoned``); else the seconds to wait, and nothing is counted."""
        wait = self.wait(address, username, now)
        if wait > 0:
            return wait
        for key in ((address, None), (address, username)):
            tally = self._live(key, now)
            if tally is None:
                self._tallies[key] = _Tally(failures=1, last=now)
            else:
                tally.failures += 1
                tally.last = now
        if len(self._tallies) > self.policy.max_tracked:
            self._shrink(now)
        return 0.0

    def succeeded(self, address: str, username: str) -> None:
        """The attempt let through by ``begin`` had the right password: this pair starts
        afresh, and the address no longer counts this attempt (but keeps its other
        failures, so one valid account does not reset a spraying address)."""
        self._tallies.pop((address, username), None)
        self._uncount((address, None))

    def abandoned(self, address: str, username: str) -> None:
        """The attempt let through by ``begin`` was never checked (the server was busy)."""
        self._uncount((address, None))
        self._uncount((address, username))

    def wait(self, address: str, username: str, now: float) -> float:
        """The seconds an attempt from here for this username would have to wait now."""
        return max(self._wait(address, None, self.policy.address_free_failures, now),
                   self._wait(address, username, self.policy.pair_free_failures, now))

    def __len__(self) -> int:
        return len(self._tallies)

    # ------------------------------------------------------------------ inside

    def _wait(self, address: str, username: str | None, free: int, now: float) -> float:
        tally = self._live((address, username), now)
        if tally is None:
            return 0.0
        ready_at = tally.last + self.policy.delay_after(tally.failures, free)
        return max(0.0, ready_at - now)

    def _live(self, key: tuple[str, str | None], now: float) -> _Tally | None:
        tally = self._tallies.get(key)
        if tally is not None and now - tally.last >= self.policy.forget_after:
            del self._tallies[key]
            return None
        return tally

    def _uncount(self, key: tuple[str, str | None]) -> None:
        tally = self._tallies.get(key)
        if tally is None:
            return
        tally.failures -= 1
        if tally.failures <= 0:
            del self._tallies[key]

    def _shrink(self, now: float) -> None:
        forget_after = self.policy.forget_after
        for key in [k for k, t in self._tallies.items() if now - t.last >= forget_after]:
            del self._tallies[key]
        # A flood of addresses: drop the least recent down to nine tenths, so that the sort
        # runs once per many new keys rather than at each.
        excess = len(self._tallies) - self.policy.max_tracked * 9 // 10
        if len(self._tallies) > self.policy.max_tracked and excess > 0:
            oldest = sorted(self._tallies, key=lambda k: self._tallies[k].last)[:excess]
            for key in oldest:
                del self._tallies[key]
