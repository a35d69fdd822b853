"""A call's timeline (core/timeline.py): hand-worked calls (holds, consults, blind transfers,
surveys, wrap-ups), and for any record the segments cover the call from start to end without
gaps or overlap, and talk, hold and consult are exactly when an agent had the caller."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.core.records import (
    AgentAttempt,
    AttemptOutcome,
    CallRecord,
    Hold,
    HoldBy,
    SurveyAnswer,
    Transfer,
    TransferMode,
    TransferOutcome,
)
from callcenter.core.timeline import SegmentKind, TimelineError, timeline, wrap_ups
from callcenter.features.agents.store import StateChange

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


def test_an_agent_holds_the_caller_inside_the_talk_and_the_caller_answers_a_survey():
    record = call(answered_at=T0, queued_at=T0 + 4, ended_at=T0 + 60, attempts=[
        AgentAttempt("ana", T0 + 6, T0 + 40, AttemptOutcome.ANSWERED, T0 + 8, 32.0)],
        holds=[Hold(HoldBy.AGENT, T0 + 15, T0 + 25, "ana"),
               Hold(HoldBy.CALLER, T0 + 30, T0 + 32)],
        survey_answers=[SurveyAnswer("csat", "q1", "5", T0 + 50)])
    assert laid_out(record) == [
        ("ivr", 0, 4, None), ("waiting", 4, 6, None), ("ringing", 6, 8, "ana"),
        ("talk", 8, 15, "ana"), ("hold", 15, 25, "ana"), ("talk", 25, 30, "ana"),
        ("hold", 30, 32, None), ("talk", 32, 40, "ana"), ("survey", 40, 60, None)]


def test_a_hold_outside_any_talk_is_not_a_hold_and_an_ivr_survey_is_the_ivr():
    record = call(answered_at=T0, ended_at=T0 + 30,
                  holds=[Hold(HoldBy.CALLER, T0 + 5, T0 + 10)],
                  survey_answers=[SurveyAnswer("csat", "q1", "5", T0 + 20)])
    assert laid_out(record) == [("ivr", 0, 30, None)]


def test_an_attended_transfer_consults_while_the_caller_waits_then_hands_over():
    """Ana consults Bob from 20 s (his phone rings until 23 s, they talk), hands the caller
    over at 35 s; Bob talks with the caller until 70 s."""
    record = call(answered_at=T0, queued_at=T0 + 2, ended_at=T0 + 70, attempts=[
        AgentAttempt("ana", T0 + 2, T0 + 35, AttemptOutcome.ANSWERED, T0 + 5, 30.0),
        AgentAttempt("bob", T0 + 20, T0 + 70, AttemptOutcome.ANSWERED, T0 + 23, 47.0)],
        transfers=[Transfer(TransferMode.ATTENDED, "ana", T0 + 20, to_agent="bob",
                            outcome=TransferOutcome.COMPLETED, ended_at=T0 + 35)],
        holds=[Hold(HoldBy.AGENT, T0 + 19, T0 + 36, "ana")])
    assert laid_out(record) == [
        ("ivr", 0, 2, None), ("ringing", 2, 5, "ana"), ("talk", 5, 19, "ana"),
        ("hold", 19, 20, "ana"), ("consult", 20, 35, "ana"), ("talk", 35, 70, "bob")]


def test_a_blind_transfer_is_its_own_wait_until_the_target_answers():
    record = call(answered_at=T0, queued_at=T0 + 5, ended_at=T0 + 100, attempts=[
        AgentAttempt("ana", T0 + 5, T0 + 40, AttemptOutcome.ANSWERED, T0 + 8, 32.0),
        AgentAttempt("bob", T0 + 50, T0 + 100, AttemptOutcome.ANSWERED, T0 + 55, 45.0)],
        transfers=[Transfer(TransferMode.BLIND, "ana", T0 + 39, to_queue="sales",
                            outcome=TransferOutcome.COMPLETED, ended_at=T0 + 55)])
    assert laid_out(record) == [
        ("ivr", 0, 5, None), ("ringing", 5, 8, "ana"), ("talk", 8, 40, "ana"),
        ("transfer", 40, 50, None), ("ringing", 50, 55, "bob"), ("talk", 55, 100, "bob")]


def state(agent: str, at: float, new: str, old: str, reason: str | None = None) -> StateChange:
    return StateChange(agent_id=agent, state=new, reason=reason, at=T0 + at, previous=old)


def test_each_agent_leg_is_followed_by_its_wrap_up_from_the_logged_states():
    record = call(answered_at=T0, queued_at=T0 + 2, ended_at=T0 + 70, attempts=[
        AgentAttempt("ana", T0 + 2, T0 + 35, AttemptOutcome.ANSWERED, T0 + 5, 30.0),
        AgentAttempt("cy", T0 + 10, T0 + 15, AttemptOutcome.NO_ANSWER),
        AgentAttempt("bob", T0 + 20, T0 + 70, AttemptOutcome.ANSWERED, T0 + 23, 47.0)])
    changes = [
        state("ana", 2, "ringing", "ready"), state("ana", 5, "on_call", "ringing"),
        state("ana", 35.2, "wrap_up", "on_call", "call ended"),
        state("ana", 65.2, "ready", "wrap_up", "wrap-up ended"),
        state("bob", 20, "ringing", "ready"), state("bob", 23, "on_call", "ringing"),
        state("bob", 70.1, "wrap_up", "on_call", "call ended"),
        # Cy's wrap-up of an earlier call: not this call's.
        state("cy", -40, "wrap_up", "on_call"), state("cy", -10, "ready", "wrap_up")]
    assert [(s.kind.value, round(s.start - T0, 3), round(s.end - T0, 3), s.agent_id,
             s.ongoing) for s in wrap_ups(record, changes, now=T0 + 90)] == [
        ("wrap_up", 35.2, 65.2, "ana", False), ("wrap_up", 70.1, 90, "bob", True)]


def test_a_leg_without_a_wrap_up_near_its_end_has_none():
    record = call(answered_at=T0, ended_at=T0 + 40, attempts=[
        AgentAttempt("ana", T0 + 2, T0 + 35, AttemptOutcome.ANSWERED, T0 + 5, 30.0)])
    later = [state("ana", 35, "ready", "on_call", "call ended"),
             state("ana", 100, "wrap_up", "on_call", "call ended")]  # another call's
    assert wrap_ups(record, later, now=T0 + 200) == []


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
    holds = []
    for _ in range(draw(st.integers(0, 3))):
        began = draw(st.floats(0, length))
        ended = draw(st.none() | st.floats(began, length))
        agent = draw(st.none() | st.sampled_from(["ana", "bob"]))
        holds.append(Hold(HoldBy.CALLER if agent is None else HoldBy.AGENT, T0 + began,
                          None if ended is None else T0 + ended, agent))
    transfers = []
    for _ in range(draw(st.integers(0, 2))):
        began = draw(st.floats(0, length))
        ended = draw(st.none() | st.floats(began, length))
        transfers.append(Transfer(draw(st.sampled_from(TransferMode)), "ana", T0 + began,
                                  to_agent="bob", ended_at=None if ended is None else T0 + ended))
    surveys = [SurveyAnswer("csat", "q", "5", T0 + at)
               for at in draw(st.lists(st.floats(0, length), max_size=2))]
    return call(ended_at=T0 + length, answered_at=None if answered is None else T0 + answered,
                queued_at=None if queued is None else T0 + queued, attempts=attempts,
                holds=holds, transfers=transfers, survey_answers=surveys)


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
    # An agent had the caller (talk, hold or consult) exactly when a leg was talking or a
    # consult went on; hold is inside a talk, consult wins over both.
    end = record.ended_at

    def during(spans: list[tuple[float, float | None]], instant: float) -> bool:
        return any(s <= instant < (end if e is None else e) for s, e in spans)

    def talks(agent: str | None) -> list[tuple[float, float | None]]:
        return [(a.answered_at, a.ended_at) for a in record.attempts  # type: ignore[misc]
                if a.answered_at is not None and agent in (None, a.agent_id)]

    consults = [(t.requested_at, t.ended_at) for t in record.transfers
                if t.mode is TransferMode.ATTENDED]
    for segment in segments:
        middle = (segment.start + segment.end) / 2
        talking = during(talks(None), middle)
        held = any(h.started_at <= middle < (end if h.ended_at is None else h.ended_at)
                   and during(talks(h.agent_id), middle) for h in record.holds)
        consulting = during(consults, middle)
        assert (segment.kind is S.CONSULT) == consulting, segment
        assert (segment.kind is S.HOLD) == (talking and held and not consulting), segment
        assert (segment.kind is S.TALK) == (talking and not held and not consulting), segment
