"""What one call record adds to the report aggregates (pure; docs/reports.md).

The reports read counts kept per UTC quarter hour (core/report_periods.py). A stored call
adds to them; when its record is stored again, what it added before is taken out and what it
adds now put in (features/reports/aggregates.py). This module says what a record adds: a
list of ``AggregateRow``s, each a table, a key (the quarter hour, then the table's other key
columns) and the numbers to add. A record that is still open adds nothing: figures count
calls that ended.

Which time puts a call in a quarter hour:
- queue figures: when the caller entered the queue (``queued_at``);
- IVR figures: when the call started; an FAQ answer: when it was heard;
- survey figures: when the answer was given.

The queue figures are also kept per local day of the center ([center] time_zone:
``ReportRules.day_zone``): ``with_day_rows`` copies each queue quarter-hour row into the row of
the local day it lies in, so the day rows are kept by the same machinery (``DAY_LEVELS``).

Handle time's parts come from ``_handle_parts`` only: talk (the answered legs, less the
agents' holds), hold (agent_figures.holds, the one reading of a record's holds). Wrap-up
happens after the record is closed, in the agents' state log, so a record alone cannot say
it: ``wrap_up_rows(record, changes)`` adds it to the call's queue row (same quarter hour,
same queue) from the record's answered legs and their agents' logged state changes, matched
as the call timeline matches them (core/timeline.py ``wrap_ups``). ``wrap_up_window`` says
which changes that needs; ``legs_to_recheck_from`` which calls a newly logged change can
alter. features/reports/wrap_ups.py keeps it up to date from both sides and rebuilds it.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from zoneinfo import ZoneInfo

from callcenter.core.agent_figures import holds
from callcenter.core.agent_intervals import StateChangeLike
from callcenter.core.queue_figures import (
    DEFAULT_SERVICE_LEVEL_SECONDS,
    DEFAULT_SHORT_ABANDON_SECONDS,
    QueueCall,
    QueueOutcome,
    counts_of,
    milliseconds,
)
from callcenter.core.records import (
    AttemptOutcome,
    CallRecord,
    Direction,
    Disposition,
    FaqResult,
    TransferOutcome,
)
from callcenter.core.report_periods import bucket_of, local_day_start
from callcenter.core.timeline import WRAP_UP_MATCH_SECONDS, wrap_ups

QUEUE_TABLE = "queue"  # key: (bucket, queue); values: QueueCounts' fields
QUEUE_DAY_TABLE = "queue_day"  # key: (local day's start, queue); values: the queue table's
IVR_TABLE = "ivr"  # key: (bucket,)
IVR_DROPOFF_TABLE = "ivr_dropoff"  # key: (bucket, node)
SURVEY_TABLE = "survey"  # key: (bucket, queue, agent)
IVR_COLUMNS = ("ivr_calls", "contained", "abandoned_in_ivr", "reached_queue",
               "callbacks_requested", "attendant_requests", "faq_heard", "faq_solved")
IVR_DROPOFF_COLUMNS = ("abandoned",)
SURVEY_COLUMNS = ("csat_answers", "csat_score_sum", "csat_satisfied", "nps_answers",
                  "nps_promoters", "nps_passives", "nps_detractors")
ATTENDANT_INPUT = "attendant"  # the IVR's note on a step where a SAC caller asked for a person
NOBODY = ""  # the queue or agent of a survey answer that had none

Key = tuple[str | int, ...]


@dataclass(frozen=True)
class AggregateRow:
    """Numbers to add to one row of an aggregate table; ``key`` always starts with the
    quarter hour (a day level's row: the start of the local day; POSIX seconds), then the
    table's other key columns in order."""

    table: str
    key: Key
    values: Mapping[str, int]


@dataclass(frozen=True)
class ReportRules:
    """The settings that decide what a call counts as ([reports] and each queue's T and
    short-abandon limit)."""

    service_level_seconds: Mapping[str, float] = field(default_factory=dict)  # queue -> T
    short_abandon_seconds: Mapping[str, float] = field(default_factory=dict)  # queue -> limit
    csat_questions: frozenset[str] = frozenset({"agent-rating"})
    csat_satisfied_from: int = 4
    nps_questions: frozenset[str] = frozenset({"nps"})
    # The zone whose local days the day levels (DAY_LEVELS) are kept in: [center] time_zone.
    # None: no day rows (the reports then read the quarter hours only).
    day_zone: ZoneInfo | None = None

    def threshold(self, queue: str) -> float:
        return self.service_level_seconds.get(queue, DEFAULT_SERVICE_LEVEL_SECONDS)

    def short_abandon(self, queue: str) -> float:
        return self.short_abandon_seconds.get(queue, DEFAULT_SHORT_ABANDON_SECONDS)


Contributor = Callable[[CallRecord, ReportRules], Iterable[AggregateRow]]


# --------------------------------------------------------------------------- queues

_QUEUE_OUTCOMES = {
    Disposition.ANSWERED: QueueOutcome.ANSWERED,
    Disposition.ABANDONED_IN_QUEUE: QueueOutcome.ABANDONED,
    Disposition.CALLBACK_REQUESTED: QueueOutcome.CALLBACK_REQUESTED,
}


def _handle_parts(record: CallRecord) -> tuple[float, float, float]:
    """(talk, hold, wrap-up) seconds of the agents' work on this call: every answered leg's
    time with the caller (a transfer's later agents too: the call counts once, where it
    arrived), split into talk and the agents' holds. Wrap-up is 0 here: it is not in the
    record (``wrap_up_rows`` adds it from the state log)."""
    with_caller = sum(attempt.talk_seconds or 0.0 for attempt in record.attempts
                      if attempt.outcome is AttemptOutcome.ANSWERED)
    if not with_caller and record.talk_seconds:
        with_caller = record.talk_seconds  # records from before legs had their talk
    hold = min(sum(end - start for _, start, end in holds(record)), with_caller)
    return with_caller - hold, hold, 0.0


def queue_call(record: CallRecord) -> QueueCall | None:
    """The record's passage through its queue, or None when it is not counted in one: no
    queue, still open, outbound, or a callback's call that failed (not an answer, and its
    customer was offered once already)."""
    if (record.is_open or record.queue is None or record.queued_at is None
            or record.direction is not Direction.INBOUND):
        return None
    if record.callback_of is not None and record.disposition is not Disposition.ANSWERED:
        return None
    outcome = _QUEUE_OUTCOMES.get(record.disposition,  # type: ignore[arg-type]
                                  QueueOutcome.NOT_SERVED)
    if record.wait_seconds is not None:
        wait = record.wait_seconds
    else:
        left = record.agent_answered_at if record.agent_answered_at is not None else \
            record.ended_at
        wait = (left or record.queued_at) - record.queued_at
    talk, hold, wrap_up = _handle_parts(record)
    return QueueCall(
        outcome=outcome, wait=max(0.0, wait), offered=record.callback_of is None,
        talk=talk, hold=hold, wrap_up=wrap_up,
        transfers_to_queue=sum(1 for transfer in record.transfers
                               if transfer.to_queue is not None
                               and transfer.outcome is TransferOutcome.COMPLETED),
        overflowed=record.overflowed_from is not None)


def queue_rows(record: CallRecord, rules: ReportRules) -> list[AggregateRow]:
    call = queue_call(record)
    if call is None:
        return []
    queue = record.entered_queue
    assert queue is not None and record.queued_at is not None
    counts = counts_of(call, service_level_seconds=rules.threshold(queue),
                       short_abandon_seconds=rules.short_abandon(queue))
    return [AggregateRow(QUEUE_TABLE, (bucket_of(record.queued_at), queue), asdict(counts))]


# --------------------------------------------------------------------------- queues: wrap-up

WRAP_UP_STATE = "wrap_up"  # the ACD's AgentState.WRAP_UP as the state log holds it


@dataclass(frozen=True)
class WrapUpWindow:
    """The logged state changes ``wrap_up_rows`` needs for one record: each agent's in
    ``agents`` from ``since`` on, led by their last change before it, up to and including
    their first change after ``until`` that is not a wrap-up and is the last logged at its
    instant (the end of any wrap-up that began by then: the last change at an instant
    holds). More changes, before or after, change nothing."""

    agents: tuple[str, ...]
    since: float
    until: float


def _wrapped_legs(record: CallRecord) -> list[tuple[str, float]]:
    """(agent, end) of each leg an agent answered and that ended: the legs a wrap-up
    follows (core/timeline.py ``wrap_ups`` takes the same ones)."""
    return [(a.agent_id, a.ended_at) for a in record.attempts
            if a.answered_at is not None and a.ended_at is not None]


def _counts_wrap_up(record: CallRecord) -> bool:
    """Only a handled call's wrap-up counts: an answered, closed queue call."""
    call = queue_call(record)
    return call is not None and call.outcome is QueueOutcome.ANSWERED


def wrap_up_window(record: CallRecord) -> WrapUpWindow | None:
    """Which changes the record's wrap-up is read from; None: it has none to count."""
    legs = _wrapped_legs(record)
    if not legs or not _counts_wrap_up(record):
        return None
    ends = [end for _, end in legs]
    # As wrap_ups reads them: from well before the first leg's end (an interval cut there
    # cannot seem to begin near a leg's end) to the latest a matching wrap-up can begin.
    return WrapUpWindow(tuple(sorted({agent for agent, _ in legs})),
                        min(ends) - 2 * WRAP_UP_MATCH_SECONDS,
                        max(ends) + WRAP_UP_MATCH_SECONDS)


def legs_to_recheck_from(last_other_state_before: float | None) -> float:
    """A change newly logged for an agent at ``e`` can alter the wrap-ups of that agent's
    legs that ended from this time on, given the agent's latest instant before ``e`` at which
    the change logged last (the one that holds) is not a wrap-up (None: none). Only a
    wrap-up interval that began after that instant, or one that begins at ``e`` or later,
    can be cut, started or joined by the new change, and a leg's wrap-up begins within
    ``WRAP_UP_MATCH_SECONDS`` of the leg's end."""
    if last_other_state_before is None:
        return -math.inf
    return last_other_state_before - WRAP_UP_MATCH_SECONDS


def changes_in_window(changes: Sequence[StateChangeLike], since: float, until: float,
                      ) -> list[StateChangeLike]:
    """One agent's ``WrapUpWindow`` changes (from ``since`` to ``until``), picked from more
    of their changes: ``changes`` in logged order, holding their last change before
    ``since`` and every later one up to the window's end (what reading the window of
    several records at once gives: features/reports/wrap_ups.py). The last change before
    ``since`` leads; then on to the first change after ``until`` that is not a wrap-up and
    holds at its instant (a wrap-up logged after it at the same instant reads on)."""
    moments = [change.at for change in changes]  # nondecreasing: bisect finds the ends
    start = bisect_left(moments, since)
    picked: list[StateChangeLike] = list(changes[max(0, start - 1):start])
    after = until
    while True:
        ending = next((index for index in range(bisect_right(moments, after), len(changes))
                       if changes[index].state != WRAP_UP_STATE), None)
        stop = len(changes) if ending is None else bisect_right(moments, moments[ending])
        chunk = changes[start:stop]
        picked.extend(chunk)
        if ending is None or chunk[-1].state != WRAP_UP_STATE:
            return picked
        after = chunk[-1].at
        start = bisect_right(moments, after)


def wrap_up_rows(record: CallRecord, changes: Iterable[StateChangeLike],
                 ) -> list[AggregateRow]:
    """The wrap-up a handled queue call adds to its queue row (the quarter hour it entered
    the queue, like its talk): each answered leg's wrap-up that has **ended** (a later change
    of the agent is logged), in whole milliseconds, and the call once in ``wrapped_calls``
    if it has any. A wrap-up still going on adds nothing yet; one cut by a logout or a pause
    ends there. ``changes``: at least the ``wrap_up_window``'s, each agent's in logged order."""
    if wrap_up_window(record) is None:
        return []
    queue = record.entered_queue  # where queue_rows counts the call
    assert queue is not None and record.queued_at is not None
    # The end of time as "now": a wrap-up with no logged end is ongoing, whenever this runs.
    ended = [segment for segment in wrap_ups(record, changes, math.inf)
             if not segment.ongoing]
    if not ended:
        return []
    return [AggregateRow(QUEUE_TABLE, (bucket_of(record.queued_at), queue), {
        "wrap_up_ms": sum(milliseconds(segment.seconds) for segment in ended),
        "wrapped_calls": 1})]


# --------------------------------------------------------------------------- IVR


def ivr_rows(record: CallRecord, rules: ReportRules) -> list[AggregateRow]:
    """A closed inbound call that passed through the IVR (a step in its path)."""
    if record.is_open or record.direction is not Direction.INBOUND or not record.ivr_path:
        return []
    bucket = bucket_of(record.started_at)
    abandoned = record.disposition is Disposition.ABANDONED_IN_IVR
    rows = [AggregateRow(IVR_TABLE, (bucket,), {
        "ivr_calls": 1,
        "contained": int(record.disposition is Disposition.COMPLETED_IN_IVR),
        "abandoned_in_ivr": int(abandoned),
        "reached_queue": int(record.queue is not None),
        "callbacks_requested": int(record.disposition is Disposition.CALLBACK_REQUESTED
                                   and record.queue is None),
        "attendant_requests": int(any(step.input == ATTENDANT_INPUT
                                      for step in record.ivr_path)),
    })]
    if abandoned:
        rows.append(AggregateRow(IVR_DROPOFF_TABLE, (bucket, record.ivr_path[-1].node),
                                 {"abandoned": 1}))
    for outcome in record.faq_outcomes:
        rows.append(AggregateRow(IVR_TABLE, (bucket_of(outcome.heard_at),), {
            "faq_heard": 1, "faq_solved": int(outcome.result is FaqResult.SOLVED)}))
    return rows


# --------------------------------------------------------------------------- surveys


def _score(answer: str, low: int, high: int) -> int | None:
    text = answer.strip()
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if low <= value <= high else None


def rated_agent(record: CallRecord) -> str:
    """Whom a survey after the talk rates: the last agent who answered the caller."""
    answered = [a for a in record.attempts if a.outcome is AttemptOutcome.ANSWERED]
    if answered:
        return max(answered, key=lambda a: a.answered_at or a.started_at).agent_id
    return record.agent_id or NOBODY


def survey_rows(record: CallRecord, rules: ReportRules) -> list[AggregateRow]:
    if record.is_open:
        return []
    queue, agent = record.queue or NOBODY, rated_agent(record)
    rows: list[AggregateRow] = []
    for answer in record.survey_answers:
        key = (bucket_of(answer.answered_at), queue, agent)
        if answer.question in rules.csat_questions:
            score = _score(answer.answer, 1, 5)
            if score is not None:
                rows.append(AggregateRow(SURVEY_TABLE, key, {
                    "csat_answers": 1, "csat_score_sum": score,
                    "csat_satisfied": int(score >= rules.csat_satisfied_from)}))
        elif answer.question in rules.nps_questions:
            score = _score(answer.answer, 0, 10)
            if score is not None:
                rows.append(AggregateRow(SURVEY_TABLE, key, {
                    "nps_answers": 1, "nps_promoters": int(score >= 9),
                    "nps_passives": int(7 <= score <= 8), "nps_detractors": int(score <= 6)}))
    return rows


# --------------------------------------------------------------------------- all

CONTRIBUTORS: tuple[Contributor, ...] = (queue_rows, ivr_rows, survey_rows)


# A quarter-hour table -> the table of the same rows per local day (ReportRules.day_zone).
DAY_LEVELS: dict[str, str] = {QUEUE_TABLE: QUEUE_DAY_TABLE}


def with_day_rows(rows: Iterable[AggregateRow], rules: ReportRules) -> list[AggregateRow]:
    """``rows`` and, for each row of a table with a day level, the same numbers for the local
    day (in ``rules.day_zone``) its quarter hour lies in: key (the day's start, the other key
    columns). Every offset a zone uses today is a whole number of quarter hours, so a UTC
    quarter hour lies in one local day (where it would not, ``ReportPeriod.intervals``
    refuses the period, so no report reads that day's row)."""
    rows = list(rows)
    zone = rules.day_zone
    if zone is None:
        return rows
    return [*rows, *(AggregateRow(DAY_LEVELS[row.table],
                                  (local_day_start(int(row.key[0]), zone), *row.key[1:]),
                                  row.values)
                     for row in rows if row.table in DAY_LEVELS)]


def contribution(record: CallRecord, rules: ReportRules,
                 contributors: Iterable[Contributor] = CONTRIBUTORS) -> list[AggregateRow]:
    """Everything the record adds (with its day rows: ``with_day_rows``), rows of the same
    table and key merged (summed; the maxima named in ``MAXIMA`` take the larger), in a
    stable order."""
    merged: dict[tuple[str, Key], dict[str, int]] = {}
    for contributor in contributors:
        for row in with_day_rows(contributor(record, rules), rules):
            values = merged.setdefault((row.table, row.key), {})
            maxima = MAXIMA.get(row.table, frozenset())
            for name, value in row.values.items():
                if name in maxima:
                    values[name] = max(values.get(name, value), value)
                else:
                    values[name] = values.get(name, 0) + value
    return [AggregateRow(table, key, values)
            for (table, key), values in sorted(merged.items(), key=lambda item: (
                item[0][0], tuple(str(part) for part in item[0][1])))]


# Columns that keep the largest value rather than a sum, per table.
MAXIMA: dict[str, frozenset[str]] = {QUEUE_TABLE: frozenset({"longest_wait_ms"}),
                                     QUEUE_DAY_TABLE: frozenset({"longest_wait_ms"})}
