"""Time for the core comes from a Clock, never from the wall directly.

Times are POSIX seconds as floats (UTC). Production uses ``SystemClock``; tests and the
simulator use ``VirtualClock`` and move it forward by hand.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class ShiftedClock:
    """Real time passing, but from another starting instant: the service behaves as if it
    were then (tests of business hours on real calls; "what would callers hear on the
    25th of December?")."""

    def __init__(self, start: float) -> None:
        self._offset = start - time.time()

    def now(self) -> float:
        return time.time() + self._offset

    def jump_to(self, when: float) -> None:
        """From now on, time passes from ``when`` (backwards too: a test's next scene)."""
        self._offset = when - time.time()


class VirtualClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a virtual clock never goes backwards")
        self._now += seconds
        return self._now

    def set(self, when: float) -> None:
        if when < self._now:
            raise ValueError("a virtual clock never goes backwards")
        self._now = when


def to_datetime(ts: float | None) -> datetime | None:
    """POSIX seconds to an aware UTC datetime (None stays None)."""
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC)


def from_datetime(value: datetime | None) -> float | None:
    """An aware or naive-UTC datetime back to POSIX seconds."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()
