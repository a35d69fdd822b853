"""The queue figures of DOMAIN.md, defined once (docs/reports.md, docs/simulation.md).

Both the live reports (a stored call record's contribution: core/report_contributions.py)
and the simulator (sim/report.py) describe each caller's passage through a queue as a
``QueueCall`` and add up ``counts_of`` it; the rates and averages are ``QueueCounts``'
properties. So "answered within T", "abandoned after T", a short abandon, the service level,
ASA, AHT and ACW mean the same thing in a report and in a simulation.

Durations are added up in whole milliseconds: sums stay exact, so counts kept up to date
call by call (and taken out again when a record changes) equal counts made afresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from operator import attrgetter

from callcenter.core.report_table import ratio

DEFAULT_SERVICE_LEVEL_SECONDS = 20  # DOMAIN.md: "80/20"
DEFAULT_SHORT_ABANDON_SECONDS = 5


class QueueOutcome(StrEnum):
    ANSWERED = "answered"  # an agent answered the caller
    ABANDONED = "abandoned"  # the caller hung up while waiting (or while a phone rang)
    CALLBACK_REQUESTED = "callback_requested"  # left to be called back (virtual hold)
    NOT_SERVED = "not_served"  # the queue gave up: max wait with nowhere to go, full, no agent


@dataclass(frozen=True)
class QueueCall:
    """One caller's passage through a queue, as the figures need it. Seconds."""

    outcome: QueueOutcome
    wait: float  # from entering the queue to the answer, or to leaving unanswered
    # False for the call that carries out a callback: its customer was offered once already,
    # on their own call (docs/records.md "Counting it once"), but its answer counts.
    offered: bool = True
    talk: float = 0.0  # agents' talk with the caller (answered calls)
    hold: float = 0.0  # the caller on hold during the talk
    # The agents' wrap-up after it. A stored record has none (the wrap-up ends after it is
    # closed): the live reports add it from the agents' state log (report_contributions
    # ``wrap_up_rows``); the simulator measures its own the same way.
    wrap_up: float = 0.0
    transfers_to_queue: int = 0  # completed transfers of the talking caller to a queue
    overflowed: bool = False  # went on waiting in another queue (counted here, once)


def milliseconds(seconds: float) -> int:
    return round(seconds * 1000)


@dataclass(frozen=True)
class QueueCounts:
    """Counts that add up over calls, intervals and queues (``+``); ``longest_wait_ms`` is a
    maximum (``+`` takes the larger). Every other field is a sum."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandons: int = 0  # abandoned before the short-abandon limit (part of abandoned)
    answered_within: int = 0  # answered with wait <= T
    abandoned_after: int = 0  # abandoned with wait > T
    not_served: int = 0
    callbacks_requested: int = 0
    overflowed: int = 0
    transfers_to_queue: int = 0
    handled: int = 0  # answered calls whose talk, hold and wrap-up make the AHT
    answered_wait_ms: int = 0
    talk_ms: int = 0
    hold_ms: int = 0
    wrap_up_ms: int = 0
    wrapped_calls: int = 0  # handled calls whose wrap-up is counted (a part of handled)
    longest_wait_ms: int = 0  # of any offered caller

    def __add__(self, other: QueueCounts) -> QueueCounts:
        values = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        values["longest_wait_ms"] = max(self.longest_wait_ms, other.longest_wait_ms)
        return QueueCounts(**values)

    @property
    def service_level(self) -> float | None:
        """Answered within T ÷ (answered + abandoned after T); None when both are 0."""
        return ratio(self.answered_within, self.answered + self.abandoned_after)

    @property
    def asa(self) -> float | None:
        """Average speed of answer: mean wait of answered calls, seconds."""
        return None if not self.answered else self.answered_wait_ms / 1000 / self.answered

    @property
    def aht(self) -> float | None:
        """Average handle time: (talk + hold + wrap-up) ÷ handled calls, seconds."""
        handle = self.talk_ms + self.hold_ms + self.wrap_up_ms
        return None if not self.handled else handle / 1000 / self.handled

    @property
    def acw(self) -> float | None:
        """After-call work: wrap-up ÷ handled calls, seconds (a part of the AHT)."""
        return None if not self.handled else self.wrap_up_ms / 1000 / self.handled

    @property
    def abandon_rate(self) -> float | None:
        """Abandoned ÷ offered."""
        return ratio(self.abandoned, self.offered)

    @property
    def longest_wait(self) -> float | None:
        return self.longest_wait_ms / 1000 if self.offered else None


def counts_of(call: QueueCall, *, service_level_seconds: float,
              short_abandon_seconds: float) -> QueueCounts:
    """What one caller adds to their queue's counts, measured against the queue's T."""
    answered = call.outcome is QueueOutcome.ANSWERED
    abandoned = call.outcome is QueueOutcome.ABANDONED
    return QueueCounts(
        offered=int(call.offered),
        answered=int(answered),
        abandoned=int(abandoned),
        short_abandons=int(abandoned and call.wait < short_abandon_seconds),
        answered_within=int(answered and call.wait <= service_level_seconds),
        abandoned_after=int(abandoned and call.wait > service_level_seconds),
        not_served=int(call.outcome is QueueOutcome.NOT_SERVED),
        callbacks_requested=int(call.outcome is QueueOutcome.CALLBACK_REQUESTED),
        overflowed=int(call.overflowed),
        transfers_to_queue=call.transfers_to_queue,
        handled=int(answered),
        answered_wait_ms=milliseconds(call.wait) if answered else 0,
        talk_ms=milliseconds(call.talk) if answered else 0,
        hold_ms=milliseconds(call.hold) if answered else 0,
        wrap_up_ms=milliseconds(call.wrap_up) if answered else 0,
        wrapped_calls=int(answered and call.wrap_up > 0),
        longest_wait_ms=milliseconds(call.wait) if call.offered else 0,
    )


_FIELDS = tuple(f.name for f in fields(QueueCounts))
_values_of = attrgetter(*_FIELDS)


def total(counts: Sequence[QueueCounts]) -> QueueCounts:
    """``+`` over many counts, column by column: a month by 15 minutes of 50 queues adds up
    150,000 of them, too many to make a ``QueueCounts`` for each ``+``."""
    if not counts:
        return QueueCounts()
    columns = zip(*map(_values_of, counts), strict=True)
    return QueueCounts(**{name: max(column) if name == "longest_wait_ms" else sum(column)
                          for name, column in zip(_FIELDS, columns, strict=True)})
