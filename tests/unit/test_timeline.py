"""A call's timeline (core/timeline.py): hand-worked calls, and for any record the segments
cover the call from start to end without gaps or overlap, and the talk adds up."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.core.records import AgentAttempt, AttemptOutcome, CallRecord
from callcenter.core.timeline import SegmentKind, TimelineError, timeline

T0 = 1_796_716_800.0
S = SegmentKind


def call(**fields: object) -> CallRecord:
    return CallRecord(call_id="c1", started_at=T0, **fields)  # type: ignore[arg-type]


def laid_out(record: CallRecord) -> list[tuple[str, float, float, str | None]]:
    return [(s.kind.value, s.start - T0, s.end - T0, s.agent_id) for s in timeline(record)]


def test_a_caller_who_reaches_an_agent_after_a_missed_ring_and_answers_the_survey():
    record = call(answered_at=T0 + 1, queued_at=T0 + 10, ended_at=T0 + 90, attempts=[
        AgentAttempt("ana", T0 + 10, T0 + 25, AttemptOutcome.NO_ANSWER),
        AgentAttempt("bob", T0 + 27, T0 + 80, AttemptOutcome.ANSWERED, T0 + 30, 50.0)])
    assert laid_out(record) == [
        ("setup", 0, 1, None), ("ivr", 1, 10, None), ("ringing", 10, 25, "ana"),
        ("waiting", 25, 27, None), ("ringing", 27, 30, "bob"), ("talk", 30, 80, "bob"),
        ("after", 80, 90, None)]


def test_a_caller_who_gives_up_in_the_queue_waits_to_the_end():
    record = call(answered_at=T0, queued_at=T0 + 20, ended_at=T0 + 50)
    assert laid_out(record) == [("ivr", 0, 20, None), ("waiting", 20, 50, None)]


def test_a_blind_transfer_waits_again_between_the_two_agents():
    record = call(answered_at=T0, queued_at=T0 + 5, ended_at=T0 + 100, attempts=[
        AgentAttempt("ana", T0 + 5, T0 + 40, AttemptOutcome.ANSWERED, T0 + 8, 32.0),
        AgentAttempt("bob", T0 + 50, T0 + 100, AttemptOutcome.ANSWERED, T0 + 55, 45.0)])
    assert laid_out(record) == [
        ("ivr", 0, 5, None), ("ringing", 5, 8, "ana"), ("talk", 8, 40, "ana"),
        ("waiting", 40, 50, None), ("ringing", 50, 55, "bob"), ("talk", 55, 100, "bob")]


def test_a_call_answered_by_nobody_is_all_setup_and_an_open_one_has_no_timeline():
    assert laid_out(call(ended_at=T0 + 30)) == [("setup", 0, 30, None)]
    with pytest.raises(TimelineError, match="still open"):
        timeline(call())



@st.composite
def records(draw: st.DrawFn) -> CallRecord:
    length = draw(st.floats(0, 600))
    answered = draw(st.none() | st.floats(0, length))
    queued = draw(st.none() | st.floats(0, length))
    attempts = []
    for _ in range(draw(st.integers(0, 4))):
        began = draw(st.floats(0, length))
        ended = draw(st.floats(began, length))
        picked_up = draw(st.none() | st.floats(began, ended))
        attempts.append(AgentAttempt(
            draw(st.sampled_from(["ana", "bob"])), T0 + began, T0 + ended,
            AttemptOutcome.ANSWERED if picked_up is not None else AttemptOutcome.NO_ANSWER,
            None if picked_up is None else T0 + picked_up))
    return call(ended_at=T0 + length, answered_at=None if answered is None else T0 + answered,
                queued_at=None if queued is None else T0 + queued, attempts=attempts)


@given(records())
def test_the_segments_cover_the_call_without_gaps_or_overlap(record: CallRecord):
    segments = timeline(record)
    assert record.ended_at is not None
    if record.ended_at == record.started_at:
        assert segments == []
        return
    assert segments[0].start == record.started_at and segments[-1].end == record.ended_at
    for before, after in itertools.pairwise(segments):
        assert before.end == after.start  # no gap, no overlap
        assert (before.kind, before.agent_id) != (after.kind, after.agent_id)  # merged
    assert all(s.seconds > 0 for s in segments)
    assert sum(s.seconds for s in segments) == pytest.approx(record.ended_at - T0)
    # Nothing but a real talk is talk, and every moment someone talked is talk.
    talks = [(a.answered_at, a.ended_at) for a in record.attempts if a.answered_at is not None]
    for segment in segments:
        middle = (segment.start + segment.end) / 2
        talking = any(s <= middle < (e or record.ended_at) for s, e in talks)  # type: ignore[operator]
        assert (segment.kind is S.TALK) == talking, (segment, talks)
