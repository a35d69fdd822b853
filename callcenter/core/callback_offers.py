"""Callers a queue would offer "press 1 to be called back" but cannot, and why.

A queue with ``offer_callback`` offers a waiting caller a callback only if the service can
call them back: it needs their number, a number the ``[outbound]`` rules allow, and a way to
dial at all (an outbound trunk). A caller who fails one of these hears no offer. That is
right, but silent: this tally keeps it visible on the queue's live view, per reason, as the
callers waiting now who were not offered and those not offered over the last day.

Pure: the queue-wait handler reports (``not_offered``, ``left``), time comes in as values.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum

WINDOW_SECONDS = 86400.0  # "recent": the last day, as the agents' state history counts it
MAX_RECENT = 100_000  # per queue: far more callers than a queue takes in a day


class NoOfferReason(StrEnum):
    """Why a caller in a queue that offers callbacks was not offered one."""

    NO_NUMBER = "no_number"  # anonymous or withheld caller ID
    NUMBER_NOT_ALLOWED = "number_not_allowed"  # the [outbound] rules do not allow it
    CALLBACKS_DISABLED = "callbacks_disabled"  # nothing can be dialled: no outbound trunk

    @property
    def text(self) -> str:
        return REASON_TEXT[self]


REASON_TEXT = {
    NoOfferReason.NO_NUMBER: "no number (anonymous or withheld caller ID)",
    NoOfferReason.NUMBER_NOT_ALLOWED: "number not allowed by the outbound rules",
    NoOfferReason.CALLBACKS_DISABLED: "callbacks disabled: no outbound trunk to dial them",
}


@dataclass(frozen=True)
class ReasonCount:
    reason: NoOfferReason
    waiting: int  # callers waiting in the queue now, not offered for this reason
    recent: int  # callers not offered for this reason in the last WINDOW_SECONDS


@dataclass(frozen=True)
class NotOffered:
    """One queue's callers not offered a callback: now and over the last day, by reason
    (only reasons that counted, in the enum's order)."""

    waiting: int
    recent: int
    window_seconds: float
    reasons: tuple[ReasonCount, ...]


class NotOfferedTally:
    """Per queue, the callers not offered a callback: those waiting now, the last day's."""

    def __init__(self, window_seconds: float = WINDOW_SECONDS,
                 max_recent: int = MAX_RECENT) -> None:
        if window_seconds <= 0:
            raise ValueError(f"window_seconds: {window_seconds} must be more than 0")
        self._window = window_seconds
        self._max_recent = max_recent
        self._waiting: dict[str, tuple[str, NoOfferReason]] = {}  # call id → (queue, reason)
        self._recent: dict[str, deque[tuple[float, NoOfferReason]]] = {}  # queue → (at, why)

    def not_offered(self, call_id: str, queue: str, reason: NoOfferReason,
                    now: float) -> bool:
        """The caller waits in ``queue`` without the offer. True the first time for this
        call (say why then); a caller who overflows to another such queue is counted there
        too, and moves there in the "waiting now" figures."""
        before = self._waiting.get(call_id)
        if before == (queue, reason):
            return False
        self._waiting[call_id] = (queue, reason)
        if before is None or before[0] != queue:
            recent = self._recent.setdefault(queue, deque(maxlen=self._max_recent))
            recent.append((now, reason))
            self._trim(recent, now)
        return before is None

    def counted_in(self, call_id: str) -> str | None:
        """The queue a waiting caller is counted in as not offered, if any."""
        where = self._waiting.get(call_id)
        return None if where is None else where[0]

    def left(self, call_id: str) -> str | None:
        """The caller no longer waits (talked, hung up, gave up, offered elsewhere): the
        queue they were counted in, or None if they were not."""
        gone = self._waiting.pop(call_id, None)
        return None if gone is None else gone[0]

    def figures(self, queue: str, now: float) -> NotOffered:
        recent = self._recent.get(queue)
        if recent is not None:
            self._trim(recent, now)
        waiting = [reason for (where, reason) in self._waiting.values() if where == queue]
        lately = [reason for _, reason in recent or ()]
        counts = tuple(ReasonCount(reason, waiting.count(reason), lately.count(reason))
                       for reason in NoOfferReason
                       if reason in waiting or reason in lately)
        return NotOffered(len(waiting), len(lately), self._window, counts)

    def _trim(self, recent: deque[tuple[float, NoOfferReason]], now: float) -> None:
        while recent and recent[0][0] <= now - self._window:
            recent.popleft()
