"""A call's timeline: consecutive segments that cover it, start to end, without gaps or
overlap (issue 14's metering); then each agent's wrap-up after it.

Pure: made from a closed ``CallRecord`` (its times are Asterisk's and the service's, in POSIX
seconds). Each instant of the call belongs to exactly one segment, the most specific thing
the caller lived then (highest first):

    consult   an attended transfer's consult: the caller waits (on hold, music) while their
              agent (``agent_id``: the one consulting) talks to the agent consulted
    hold      inside a talk, the call is on hold: put there by the talking agent's phone
              (``agent_id``) or the caller's (``agent_id`` None)
    talk      an agent and the caller talk (an answered agent leg; where two legs overlap,
              the leg that started last)
    ringing   an agent's phone rings for the caller (a leg not answered yet)
    transfer  a blind transfer's wait in its target (queue or agent; ``agent_id``: the target
              agent, if one), from the request to the target's answer
    waiting   in a queue, nobody ringing
    ivr       after the answer, before the queue (menus, self-service)
    setup     before the call was answered (the caller's own ring)
    survey    after the last talk, when the caller answered a survey there: to the call's end
    after     after the talk began and outside all of the above: the IVR again, the goodbye

Adjacent pieces of the same kind (and agent) are one segment, so ``sum(seconds)`` is the
call's length and talk + hold + consult add up to the time agents had the caller.

Wrap-up (after-call work) is the agent's, not the caller's: it begins when the agent's leg
ends and usually outlives the call. ``wrap_ups`` finds it in the agents' logged states (the
ACD's wrap_up state: core/agent_intervals.py) and gives one segment per answered leg that
was followed by one; they come after the call's own segments and are outside its sum.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from callcenter.core.agent_intervals import StateChangeLike, agent_intervals
from callcenter.core.records import CallRecord, TransferMode


class SegmentKind(StrEnum):
    SETUP = "setup"
    IVR = "ivr"
    WAITING = "waiting"
    TRANSFER = "transfer"
    RINGING = "ringing"
    TALK = "talk"
    HOLD = "hold"
    CONSULT = "consult"
    SURVEY = "survey"
    AFTER = "after"
    WRAP_UP = "wrap_up"  # the agent's, after their leg: outside the call's own segments


@dataclass(frozen=True)
class Segment:
    kind: SegmentKind
    start: float
    end: float
    agent_id: str | None = None  # whose phone rang, who talked, held, consulted, wrapped up
    ongoing: bool = False  # a wrap-up still going on: it ends at ``now``

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


_RANK = {SegmentKind.CONSULT: 9, SegmentKind.HOLD: 8, SegmentKind.TALK: 7,
         SegmentKind.RINGING: 6, SegmentKind.TRANSFER: 5, SegmentKind.WAITING: 4,
         SegmentKind.IVR: 3, SegmentKind.SETUP: 2, SegmentKind.SURVEY: 1,
         SegmentKind.AFTER: 0}

# An agent's wrap-up belongs to their leg when the ACD began it this close to the leg's end
# (the ACD dates it by the service's clock when it hears of the end; the leg's end is
# Asterisk's time).
WRAP_UP_MATCH_SECONDS = 5.0


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
        # A hold is a pause inside a talk: the caller's phone's, inside any talk; an agent's,
        # inside that agent's own talk. Outside that, a phone's hold is nothing to the call.
        talking = {s.agent_id for s in covering if s.kind is SegmentKind.TALK}
        covering = [s for s in covering if s.kind is not SegmentKind.HOLD
                    or (talking and (s.agent_id is None or s.agent_id in talking))]
        best = max(covering, key=lambda s: (s.rank, s.order))
        if pieces and pieces[-1].kind is best.kind and pieces[-1].agent_id == best.agent_id:
            pieces[-1] = Segment(best.kind, pieces[-1].start, right, best.agent_id)
        else:
            pieces.append(Segment(best.kind, left, right, best.agent_id))
    return pieces


def wrap_ups(record: CallRecord, changes: Iterable[StateChangeLike], now: float,
             ) -> list[Segment]:
    """Each answered leg's wrap-up: the agent's ``wrap_up`` interval (from their logged state
    changes, which must reach from the leg's end to past the wrap-up's end) that began within
    ``WRAP_UP_MATCH_SECONDS`` of the leg's end; one still going on ends at ``now``, marked
    ongoing. In the order of the legs."""
    legs = [a for a in record.attempts if a.answered_at is not None and a.ended_at is not None]
    if not legs:
        return []
    mine = [c for c in changes if c.agent_id in {a.agent_id for a in legs}]
    # From well before the first leg's end: an interval cut at ``since`` cannot seem to
    # begin near a leg's end.
    since = min(a.ended_at for a in legs if a.ended_at is not None) - 2 * WRAP_UP_MATCH_SECONDS
    intervals = [i for i in agent_intervals(mine, since, max(now, since), now)
                 if i.state == "wrap_up"]
    segments: list[Segment] = []
    taken: set[tuple[str, float]] = set()
    for leg in legs:
        assert leg.ended_at is not None
        candidates = [i for i in intervals if i.agent_id == leg.agent_id
                      and abs(i.start - leg.ended_at) <= WRAP_UP_MATCH_SECONDS
                      and (i.agent_id, i.start) not in taken]
        if not candidates:
            continue
        found = min(candidates, key=lambda i: abs(i.start - leg.ended_at))  # type: ignore[operator]
        taken.add((found.agent_id, found.start))
        segments.append(Segment(SegmentKind.WRAP_UP, found.start, found.end, found.agent_id,
                                ongoing=found.ongoing))
    return segments


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
    for hold in record.holds:
        yield span(SegmentKind.HOLD, hold.started_at,
                   end if hold.ended_at is None else hold.ended_at, hold.agent_id)
    for transfer in record.transfers:
        until = end if transfer.ended_at is None else transfer.ended_at
        if transfer.mode is TransferMode.ATTENDED:
            yield span(SegmentKind.CONSULT, transfer.requested_at, until, transfer.from_agent)
        else:
            yield span(SegmentKind.TRANSFER, transfer.requested_at, until, transfer.to_agent)
    talks_ended = [a.ended_at if a.ended_at is not None else end
                   for a in record.attempts if a.answered_at is not None]
    if talks_ended:
        last_talk = max(talks_ended)
        if any(answer.answered_at >= last_talk for answer in record.survey_answers):
            yield span(SegmentKind.SURVEY, last_talk, end)
