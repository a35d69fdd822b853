"""A call's timeline: consecutive segments that cover it, start to end, without gaps or
overlap (issue 14's metering, first piece).

Pure: made from a closed ``CallRecord`` (its times are Asterisk's and the service's, in POSIX
seconds). Each instant of the call belongs to exactly one segment, the most specific thing
happening then:

    talk      an agent and the caller talk (an answered agent leg; during a consult, the
              leg that started last)
    ringing   an agent's phone rings for the caller (a leg not answered yet)
    waiting   in a queue (or a transfer's target), nobody ringing
    ivr       after the answer, before the queue (menus, self-service)
    setup     before the call was answered (the caller's own ring)
    after     after the talk began and outside every talk, ring and wait: the survey, the
              IVR again, the goodbye

Adjacent pieces of the same kind (and agent) are one segment, so ``sum(durations)`` is the
call's length and the talk segments add up to the time agents talked to the caller.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from callcenter.core.records import CallRecord


class SegmentKind(StrEnum):
    SETUP = "setup"
    IVR = "ivr"
    WAITING = "waiting"
    RINGING = "ringing"
    TALK = "talk"
    AFTER = "after"


@dataclass(frozen=True)
class Segment:
    kind: SegmentKind
    start: float
    end: float
    agent_id: str | None = None  # ringing and talk: whose phone, who talked

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class _Span:
    kind: SegmentKind
    start: float
    end: float
    agent_id: str | None
    rank: int  # higher wins where spans overlap
    order: float  # among equals: the later start wins (the leg that took over)


_RANK = {SegmentKind.TALK: 5, SegmentKind.RINGING: 4, SegmentKind.WAITING: 3,
         SegmentKind.IVR: 2, SegmentKind.SETUP: 1, SegmentKind.AFTER: 0}


class TimelineError(ValueError):
    """The record cannot be laid out: not closed, or its times out of order."""


def timeline(record: CallRecord) -> list[Segment]:
    """The call's segments, in order; ``TimelineError`` for an open record."""
    if record.ended_at is None:
        raise TimelineError(f"call {record.call_id}: still open, no timeline yet")
    start, end = record.started_at, record.ended_at
    if end < start:
        raise TimelineError(f"call {record.call_id}: ends before it starts")
    spans = list(_spans(record, start, end))
    cuts = sorted({start, end, *(s.start for s in spans), *(s.end for s in spans)})
    pieces: list[Segment] = []
    for left, right in itertools.pairwise(cuts):
        if right <= left:
            continue
        middle = (left + right) / 2
        covering = [s for s in spans if s.start <= middle < s.end]
        best = max(covering, key=lambda s: (s.rank, s.order))
        if pieces and pieces[-1].kind is best.kind and pieces[-1].agent_id == best.agent_id:
            pieces[-1] = Segment(best.kind, pieces[-1].start, right, best.agent_id)
        else:
            pieces.append(Segment(best.kind, left, right, best.agent_id))
    return pieces


def _clip(value: float, start: float, end: float) -> float:
    return min(max(value, start), end)


def _spans(record: CallRecord, start: float, end: float) -> Iterator[_Span]:
    def span(kind: SegmentKind, since: float, until: float, agent_id: str | None = None,
             ) -> _Span:
        since, until = _clip(since, start, end), _clip(until, start, end)
        return _Span(kind, since, max(since, until), agent_id, _RANK[kind], since)

    yield span(SegmentKind.AFTER, start, end)  # whatever nothing else claims
    answered = record.answered_at if record.answered_at is not None else end
    yield span(SegmentKind.SETUP, start, answered)
    answers = [a.answered_at for a in record.attempts if a.answered_at is not None]
    queued = record.queued_at
    yield span(SegmentKind.IVR, answered, queued if queued is not None else (
        min(answers) if answers else end))
    if queued is not None:
        # In line until the last agent answered; to the end when a leg rang afterwards
        # unanswered (a transfer whose target never took the caller) or nobody answered.
        last = max(answers, default=None)
        still_waiting = last is None or any(
            a.answered_at is None and a.started_at >= last for a in record.attempts)
        yield span(SegmentKind.WAITING, queued, end if still_waiting else last)
    for attempt in record.attempts:
        leg_end = attempt.ended_at if attempt.ended_at is not None else end
        rang_until = attempt.answered_at if attempt.answered_at is not None else leg_end
        yield span(SegmentKind.RINGING, attempt.started_at, rang_until, attempt.agent_id)
        if attempt.answered_at is not None:
            yield span(SegmentKind.TALK, attempt.answered_at, leg_end, attempt.agent_id)
