"""The call ledger: AMI events and the call handler's reports become one correct record; a
transferred call's record lists each agent leg with its times and talk, and each transfer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.asterisk import events as ami
from callcenter.asterisk.confgen import RESERVED_NAMES
from callcenter.core.calls import (
    MAX_HOLDS,
    MAX_TRANSFERS,
    NOT_AGENTS,
    CallLedger,
    LedgerResult,
    agent_from_channel,
)
from callcenter.core.records import (
    AgentAttempt,
    AttemptOutcome,
    Disposition,
    HangupBy,
    HoldBy,
    IvrStep,
    Transfer,
    TransferMode,
    TransferOutcome,
)

T0 = 1_800_000_000.0
CALLER = "1800000000.1"
AGENT1_LEG = "1800000000.2"
AGENT2_LEG = "1800000000.3"


def newchannel(uniqueid: str = CALLER, linkedid: str = CALLER, at: float = T0,
               context: str = "callers", channel: str = "PJSIP/anonymous-00000001"):
    return ami.Newchannel(timestamp=at, uniqueid=uniqueid, linkedid=linkedid, channel=channel,
                          caller_number="5551234", caller_name="Ana", context=context,
                          exten="100", state="Ring")


def dial_begin(dest: str, agent: str, at: float):
    return ami.DialBegin(timestamp=at, uniqueid=CALLER, linkedid=CALLER,
                         channel="PJSIP/anonymous-00000001", dest_uniqueid=dest,
                         dest_channel=f"PJSIP/{agent}-0000000{dest[-1]}",
                         dial_string=agent)


def dial_end(dest: str, agent: str, status: str, at: float):
    return ami.DialEnd(timestamp=at, uniqueid=CALLER, linkedid=CALLER,
                       channel="PJSIP/anonymous-00000001", dest_uniqueid=dest,
                       dest_channel=f"PJSIP/{agent}-0000000{dest[-1]}", dial_status=status)


def hangup(uniqueid: str, at: float, channel: str = "PJSIP/anonymous-00000001"):
    return ami.Hangup(timestamp=at, uniqueid=uniqueid, linkedid=CALLER, channel=channel,
                      cause=16, cause_text="Normal Clearing")


def start_handler(ledger: CallLedger, now: float) -> None:
    ledger.handler_started(CALLER, channel="PJSIP/anonymous-00000001", caller_number="5551234",
                           caller_name="Ana", dialed_number="100", now=now)


def test_agent_channel_names_give_the_agent():
    assert agent_from_channel("PJSIP/agent1-0000002a") == "agent1"
    assert agent_from_channel("Local/100@callers-0001;1") is None
    assert agent_from_channel("PJSIP/") is None
    # Unidentified callers and the outbound trunk are PJSIP endpoints too, never agents.
    assert agent_from_channel("PJSIP/anonymous-00000001") is None
    assert agent_from_channel("PJSIP/callcenter-trunk-00000007") is None
    assert set(RESERVED_NAMES) == NOT_AGENTS


def test_answered_call_uses_asterisk_times_and_the_handler_knows_the_agent_hung_up():
    ledger = CallLedger()
    created = ledger.on_event(newchannel(), T0)
    assert [r.call_id for r in created.save] == [CALLER]
    start_handler(ledger, T0 + 0.1)
    ledger.ivr_path(CALLER, [IvrStep("welcome", T0 + 0.1), IvrStep("main_menu", T0 + 3, "2")])
    ledger.queued(CALLER, "support", T0 + 4)
    ledger.attempt_started(CALLER, "agent2", T0 + 6)
    ledger.on_event(dial_begin(AGENT2_LEG, "agent2", T0 + 6.01), T0 + 6.02)
    answered = ledger.on_event(dial_end(AGENT2_LEG, "agent2", "ANSWER", T0 + 7), T0 + 7.05)
    assert answered.save and answered.save[0].agent_id == "agent2"
    ledger.on_event(hangup(AGENT2_LEG, T0 + 10, "PJSIP/agent2-00000003"), T0 + 10.01)
    ledger.attempt_ended(CALLER, "agent2", "ANSWER", T0 + 10.02)
    ledger.on_event(hangup(CALLER, T0 + 10.05), T0 + 10.06)
    result = ledger.handler_finished(CALLER, T0 + 10.1, hangup_by=HangupBy.AGENT)

    [record] = result.closed
    assert record.disposition is Disposition.ANSWERED
    assert record.hangup_by is HangupBy.AGENT
    assert record.queue == "support"
    assert record.agent_answered_at == T0 + 7
    assert record.wait_seconds == 3.0
    assert record.talk_seconds == 3.0  # from the answer to the agent's hangup
    assert record.ended_at == T0 + 10.05
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent2", AttemptOutcome.ANSWERED)]
    assert [s.node for s in record.ivr_path] == ["welcome", "main_menu"]
    assert len(ledger) == 0


def test_caller_who_hangs_up_while_waiting_is_abandoned_in_queue_with_the_wait_measured():
    ledger = CallLedger()
    ledger.on_event(newchannel(), T0)
    start_handler(ledger, T0)
    ledger.queued(CALLER, "sales", T0 + 5)
    ledger.on_event(hangup(CALLER, T0 + 10.4), T0 + 10.41)
    [record] = ledger.handler_finished(CALLER, T0 + 10.5, hangup_by=HangupBy.CALLER).closed
    assert record.disposition is Disposition.ABANDONED_IN_QUEUE
    assert record.hangup_by is HangupBy.CALLER
    assert abs(record.wait_seconds - 5.4) < 1e-6
    assert record.talk_seconds is None


def test_an_overflowed_caller_is_recorded_in_the_last_queue_with_the_whole_wait():
    ledger = CallLedger()
    ledger.on_event(newchannel(), T0)
    start_handler(ledger, T0)
    [saved] = ledger.queued(CALLER, "sales", T0 + 5).save
    assert saved.overflowed_from is None
    ledger.queued(CALLER, "operator", T0 + 65)  # past sales' max_wait
    ledger.queued(CALLER, "backup", T0 + 95)  # and past operator's: the first queue stays
    ledger.on_event(hangup(CALLER, T0 + 100), T0 + 100)
    [record] = ledger.handler_finished(CALLER, T0 + 100, hangup_by=HangupBy.CALLER).closed
    assert (record.queue, record.queued_at, record.overflowed_from) == (
        "backup", T0 + 5, "sales")
    assert abs(record.wait_seconds - 95) < 1e-6


def test_a_caller_who_left_the_queue_for_a_callback_did_not_abandon():
    ledger = CallLedger()
    ledger.on_event(newchannel(), T0)
    start_handler(ledger, T0)
    ledger.queued(CALLER, "sales", T0 + 5)
    [record] = ledger.handler_finished(CALLER, T0 + 40, hangup_by=HangupBy.SYSTEM,
                                       callback_requested=True).closed
    assert record.disposition is Disposition.CALLBACK_REQUESTED
    assert abs(record.wait_seconds - 35) < 1e-6


def test_a_call_joined_to_a_nailed_up_agent_talks_until_the_caller_leaves_the_bridge():
    ledger = CallLedger()
    start_handler(ledger, T0)
    ledger.queued(CALLER, "support", T0 + 1)
    ledger.attempt_started(CALLER, "agent1", T0 + 3)
    ledger.agent_joined(CALLER, "agent1", T0 + 3)
    ledger.attempt_ended(CALLER, "agent1", "ANSWER", T0 + 63)  # out of the bridge
    [record] = ledger.handler_finished(CALLER, T0 + 64, hangup_by=HangupBy.AGENT).closed
    assert (record.agent_id, record.wait_seconds, record.talk_seconds) == ("agent1", 2, 60)
    assert [(a.outcome, a.ended_at) for a in record.attempts] == [
        (AttemptOutcome.ANSWERED, T0 + 63)]


def test_an_unanswered_agent_and_then_an_answering_one_are_both_in_the_record():
    ledger = CallLedger()
    start_handler(ledger, T0)
    ledger.queued(CALLER, "support", T0 + 1)
    ledger.attempt_started(CALLER, "agent1", T0 + 1)
    ledger.attempt_ended(CALLER, "agent1", "NOANSWER", T0 + 16)
    ledger.attempt_started(CALLER, "agent2", T0 + 16)
    ledger.on_event(dial_begin(AGENT2_LEG, "agent2", T0 + 16), T0 + 16)
    ledger.on_event(dial_end(AGENT2_LEG, "agent2", "ANSWER", T0 + 17), T0 + 17)
    ledger.on_event(hangup(CALLER, T0 + 20), T0 + 20)
    [record] = ledger.handler_finished(CALLER, T0 + 20, hangup_by=HangupBy.CALLER).closed
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent1", AttemptOutcome.NO_ANSWER), ("agent2", AttemptOutcome.ANSWERED)]
    assert record.agent_id == "agent2"
    assert record.hangup_by is HangupBy.CALLER
    assert record.talk_seconds == 3.0


def test_without_ami_the_handler_alone_still_closes_a_complete_record():
    ledger = CallLedger()
    start_handler(ledger, T0)
    ledger.queued(CALLER, "support", T0 + 1)
    ledger.attempt_started(CALLER, "agent2", T0 + 2)
    ledger.attempt_ended(CALLER, "agent2", "ANSWER", T0 + 9)
    [record] = ledger.handler_finished(CALLER, T0 + 9.1, hangup_by=HangupBy.AGENT).closed
    assert record.disposition is Disposition.ANSWERED
    assert record.agent_id == "agent2"
    assert record.hangup_by is HangupBy.AGENT


def test_ami_lost_mid_call_keeps_the_answer_time_seen_before_the_cut():
    ledger = CallLedger()
    ledger.on_event(newchannel(), T0)
    start_handler(ledger, T0)
    ledger.queued(CALLER, "support", T0 + 1)
    ledger.attempt_started(CALLER, "agent2", T0 + 1)
    ledger.on_event(dial_begin(AGENT2_LEG, "agent2", T0 + 1), T0 + 1)
    ledger.on_event(dial_end(AGENT2_LEG, "agent2", "ANSWER", T0 + 2), T0 + 2)
    # AMI is gone; on reconnect the snapshot still shows the caller: nothing is closed.
    assert ledger.reconcile({CALLER, AGENT2_LEG}, T0 + 4).closed == ()
    # The channel hangs up while AMI is still away; the handler notices. It cannot tell the
    # caller's hangup from Asterisk stopping: the record waits for AMI to say which.
    assert ledger.handler_finished(CALLER, T0 + 5, hangup_by=HangupBy.CALLER).closed == ()
    [record] = ledger.reconcile(set(), T0 + 9).closed  # back: the caller's channel is gone
    assert record.ended_at == T0 + 5
    assert record.talk_seconds == 3.0
    assert record.disposition is Disposition.ANSWERED
    assert record.hangup_by is HangupBy.CALLER


def test_a_call_cut_by_asterisk_shutting_down_is_ended_by_the_system():
    ledger = CallLedger()
    ledger.on_event(newchannel(), T0)
    start_handler(ledger, T0)
    ledger.queued(CALLER, "support", T0 + 1)
    ledger.on_event(ami.SoftHangupRequest(timestamp=T0 + 8, uniqueid=CALLER, linkedid=CALLER,
                                          channel="PJSIP/anonymous-00000001", cause=4), T0 + 8)
    assert ledger.handler_finished(CALLER, T0 + 8.1, hangup_by=HangupBy.CALLER).closed == ()
    [record] = ledger.on_event(hangup(CALLER, T0 + 8.05), T0 + 8.2).closed
    assert record.hangup_by is HangupBy.SYSTEM
    assert record.disposition is Disposition.FAILED
    assert "Asterisk stopped" in record.note


def test_reconcile_closes_a_call_whose_channel_vanished_while_nobody_handled_it():
    ledger = CallLedger()
    ledger.on_event(newchannel(), T0)  # e.g. the dialplan fallback: no handler
    [record] = ledger.reconcile(set(), T0 + 30).closed
    assert record.ended_at == T0 + 30
    assert record.disposition is Disposition.FAILED
    assert "could not see Asterisk" in (record.note or "")


def test_a_call_without_handler_is_closed_by_its_hangup_event():
    ledger = CallLedger()
    ledger.on_event(newchannel(), T0)
    [record] = ledger.on_event(hangup(CALLER, T0 + 3), T0 + 3).closed
    assert record.ended_at == T0 + 3
    assert record.disposition is Disposition.ABANDONED_IN_IVR
    assert record.hangup_cause == "16 Normal Clearing"


def test_channels_outside_the_inbound_contexts_and_unknown_events_are_ignored():
    ledger = CallLedger()
    assert ledger.on_event(newchannel(context="from-internal"), T0).save == ()
    assert ledger.on_event(ami.FullyBooted(timestamp=T0), T0).save == ()
    assert len(ledger) == 0


def test_no_agent_and_failure_dispositions():
    ledger = CallLedger()
    start_handler(ledger, T0)
    ledger.queued(CALLER, "sales", T0)
    [record] = ledger.handler_finished(CALLER, T0 + 1, hangup_by=HangupBy.SYSTEM,
                                       no_agent=True).closed
    assert record.disposition is Disposition.NO_AGENT
    start_handler(ledger, T0 + 5)
    [record] = ledger.handler_finished(CALLER, T0 + 6, hangup_by=HangupBy.SYSTEM,
                                       failure="call handling failed: boom").closed
    assert record.disposition is Disposition.FAILED
    assert record.note == "call handling failed: boom"


def test_an_open_record_left_by_an_earlier_run_is_closed_when_its_channel_is_gone():
    from callcenter.core.records import CallRecord

    left_open = CallRecord(call_id="1799999999.5", started_at=T0 - 100, queue="support",
                           queued_at=T0 - 90)
    ledger = CallLedger()
    ledger.adopt(left_open)
    ledger.adopt(CallRecord(call_id="1799999999.5", started_at=T0))  # once only
    assert ledger.reconcile({"1799999999.5"}, T0).closed == ()  # still up: keep it
    [record] = ledger.reconcile(set(), T0 + 5).closed
    assert record.ended_at == T0 + 5
    assert record.disposition is Disposition.FAILED
    assert record.wait_seconds == 95
    assert len(ledger) == 0


def test_an_adopted_call_still_up_is_closed_by_its_hangup():
    from callcenter.core.records import CallRecord

    ledger = CallLedger()
    ledger.adopt(CallRecord(call_id=CALLER, started_at=T0))
    [record] = ledger.on_event(hangup(CALLER, T0 + 40), T0 + 40).closed
    assert record.ended_at == T0 + 40


def test_every_call_gets_a_sortable_protocol_number_when_first_heard_of():
    from callcenter.core.protocol import protocol_number

    ledger = CallLedger()
    [record] = ledger.on_event(newchannel(), T0).save
    assert record.protocol == protocol_number(T0, CALLER) == "20270115080000000001"
    assert protocol_number(T0 + 1, "1800000000.1234567") == "20270115080001234567"
    assert protocol_number(T0, "1800000000.17") < protocol_number(T0 + 1, "1800000000.2")


# --------------------------------------------------------------------------- transfers


def answered_by_agent1(ledger: CallLedger, at: float = T0 + 6) -> None:
    """The caller waited in support from T0 + 4; agent1's phone rang at T0 + 4 and answered
    at ``at`` (AMI's DialEnd)."""
    ledger.on_event(newchannel(), T0)
    start_handler(ledger, T0 + 0.1)
    ledger.queued(CALLER, "support", T0 + 4)
    ledger.attempt_started(CALLER, "agent1", T0 + 4)
    ledger.on_event(dial_begin(AGENT1_LEG, "agent1", T0 + 4.01), T0 + 4.02)
    ledger.on_event(dial_end(AGENT1_LEG, "agent1", "ANSWER", at), at)


def test_a_blind_transfer_ends_the_first_leg_when_its_phone_hangs_up_and_keeps_the_queue():
    ledger = CallLedger()
    answered_by_agent1(ledger)
    ledger.transfer_requested(CALLER, TransferMode.BLIND, "agent1", T0 + 20, to_queue="sales")
    ledger.on_event(hangup(AGENT1_LEG, T0 + 20.25, "PJSIP/agent1-00000002"), T0 + 20.25)
    ledger.handler_finished(CALLER, T0 + 20.3, hangup_by=HangupBy.CALLER)  # the Redirect
    start_handler(ledger, T0 + 20.5)  # the transfer script
    ledger.caller_moved(CALLER, T0 + 20.5)
    ledger.queued(CALLER, "sales", T0 + 20.6)
    ledger.attempt_started(CALLER, "agent2", T0 + 21)
    ledger.on_event(dial_begin(AGENT2_LEG, "agent2", T0 + 21), T0 + 21)
    ledger.on_event(dial_end(AGENT2_LEG, "agent2", "ANSWER", T0 + 23), T0 + 23)
    ledger.on_event(hangup(AGENT2_LEG, T0 + 50, "PJSIP/agent2-00000003"), T0 + 50)
    ledger.attempt_ended(CALLER, "agent2", "ANSWER", T0 + 50.02)
    ledger.on_event(hangup(CALLER, T0 + 50.05), T0 + 50.06)
    [record] = ledger.handler_finished(CALLER, T0 + 50.1, hangup_by=HangupBy.AGENT).closed

    assert record.queue == "support" and record.queued_at == T0 + 4  # as the caller arrived
    assert (record.agent_id, record.wait_seconds, record.talk_seconds) == ("agent1", 2, 14.25)
    assert record.attempts == [
        AgentAttempt("agent1", T0 + 4, T0 + 20.25, AttemptOutcome.ANSWERED, T0 + 6, 14.25),
        AgentAttempt("agent2", T0 + 21, T0 + 50, AttemptOutcome.ANSWERED, T0 + 23, 27)]
    assert record.transfers == [Transfer(TransferMode.BLIND, "agent1", T0 + 20,
                                         to_queue="sales", outcome=TransferOutcome.COMPLETED,
                                         ended_at=T0 + 23)]


def test_an_attended_transfer_keeps_both_legs_through_the_consult_and_ends_the_first_at_the_handover():  # noqa: E501
    ledger = CallLedger()
    answered_by_agent1(ledger)
    ledger.attempt_started(CALLER, "agent2", T0 + 20)
    ledger.transfer_requested(CALLER, TransferMode.ATTENDED, "agent1", T0 + 20,
                              to_agent="agent2", to_queue="sales")
    ledger.attempt_answered(CALLER, "agent2", T0 + 24)
    ledger.transfer_ended(CALLER, TransferOutcome.COMPLETED, T0 + 30)  # agent1 hung up
    ledger.on_event(hangup(AGENT1_LEG, T0 + 30.1, "PJSIP/agent1-00000002"), T0 + 30.1)
    ledger.on_event(hangup(CALLER, T0 + 60), T0 + 60)  # the caller leaves agent2
    [record] = ledger.handler_finished(CALLER, T0 + 60.1, hangup_by=HangupBy.CALLER).closed

    assert record.queue == "support" and record.talk_seconds == 24  # agent1's, to the handover
    assert record.attempts == [
        AgentAttempt("agent1", T0 + 4, T0 + 30, AttemptOutcome.ANSWERED, T0 + 6, 24),
        AgentAttempt("agent2", T0 + 20, T0 + 60, AttemptOutcome.ANSWERED, T0 + 24, 36)]
    assert [(t.mode, t.to_agent, t.to_queue, t.outcome, t.ended_at)
            for t in record.transfers] == [
        (TransferMode.ATTENDED, "agent2", "sales", TransferOutcome.COMPLETED, T0 + 30)]


@pytest.mark.parametrize(("status", "leg", "outcome"), [
    ("BUSY", AttemptOutcome.BUSY, TransferOutcome.DECLINED),
    ("NOANSWER", AttemptOutcome.NO_ANSWER, TransferOutcome.DECLINED),
    ("CHANUNAVAIL", AttemptOutcome.UNAVAILABLE, TransferOutcome.FAILED),
])
def test_a_consult_not_taken_leaves_the_first_agent_talking_to_the_end(
        status: str, leg: AttemptOutcome, outcome: TransferOutcome):
    ledger = CallLedger()
    answered_by_agent1(ledger)
    ledger.attempt_started(CALLER, "agent2", T0 + 20)
    ledger.transfer_requested(CALLER, TransferMode.ATTENDED, "agent1", T0 + 20,
                              to_agent="agent2")
    ledger.consult_ended(CALLER, "agent2", status, T0 + 35)
    ledger.on_event(hangup(AGENT1_LEG, T0 + 80, "PJSIP/agent1-00000002"), T0 + 80)
    ledger.on_event(hangup(CALLER, T0 + 80.05), T0 + 80.05)
    [record] = ledger.handler_finished(CALLER, T0 + 80.1, hangup_by=HangupBy.AGENT).closed
    assert record.attempts == [
        AgentAttempt("agent1", T0 + 4, T0 + 80, AttemptOutcome.ANSWERED, T0 + 6, 74),
        AgentAttempt("agent2", T0 + 20, T0 + 35, leg)]
    assert [(t.outcome, t.reason) for t in record.transfers] == [(outcome, status.lower())]
    assert record.talk_seconds == 74  # the consult's Local channels did not end it


def test_refused_transfers_are_kept_up_to_a_bound_and_a_pending_one_is_abandoned_at_the_end():
    ledger = CallLedger()
    answered_by_agent1(ledger)
    for n in range(MAX_TRANSFERS + 3):
        ledger.transfer_refused(CALLER, TransferMode.BLIND, "agent1", T0 + 10 + n, "no",
                                to_agent="agent3")
    record = ledger.get(CALLER)
    assert record is not None and len(record.transfers) == MAX_TRANSFERS
    assert ledger.transfer_refused("1.2", TransferMode.BLIND, "agent1", T0, "no").save == ()
    record.transfers.clear()
    ledger.transfer_requested(CALLER, TransferMode.BLIND, "agent1", T0 + 50, to_agent="agent3")
    ledger.on_event(hangup(CALLER, T0 + 60), T0 + 60)
    [closed] = ledger.handler_finished(CALLER, T0 + 60, hangup_by=HangupBy.CALLER).closed
    assert [(t.outcome, t.ended_at) for t in closed.transfers] == [
        (TransferOutcome.ABANDONED, T0 + 60)]
    assert closed.attempts[0].ended_at == T0 + 60  # never moved: agent1 talked to the end


# A transfer's script for the property test: mode, what happens, and three gaps in seconds
# (talk before it, until the target answers or declines, until the handover).
gaps = st.floats(min_value=0.0, max_value=120.0, allow_nan=False)
transfer_steps = st.lists(st.tuples(
    st.sampled_from(TransferMode), st.sampled_from(["completed", "declined", "refused"]),
    gaps, gaps, gaps, st.booleans()), max_size=6)


@settings(max_examples=300, deadline=None)
@given(steps=transfer_steps, end_gap=gaps)
def test_any_run_of_transfers_gives_legs_that_end_within_the_call_and_overlap_only_in_consults(
        steps: list[tuple[TransferMode, str, float, float, float, bool]], end_gap: float):
    ledger = CallLedger()
    answered_by_agent1(ledger)
    now, current, caller_gone = T0 + 6, "agent1", False
    for number, (mode, what, talk, reply, handover, ami_saw_hangup) in enumerate(steps, 2):
        target = f"agent{number}"
        now += talk
        if what == "refused":
            ledger.transfer_refused(CALLER, mode, current, now, "nobody", to_agent=target)
            continue
        if mode is TransferMode.BLIND:
            ledger.transfer_requested(CALLER, mode, current, now, to_queue="sales")
            if ami_saw_hangup:
                ledger.talk_ended(CALLER, current, now + 0.1)
            ledger.handler_finished(CALLER, now + 0.2, hangup_by=HangupBy.CALLER)
            now += 0.5
            start_handler(ledger, now)
            ledger.caller_moved(CALLER, now)
            ledger.queued(CALLER, "sales", now)
            ledger.attempt_started(CALLER, target, now)
            now += reply
            if what == "declined":  # nobody took the caller: they hang up waiting
                ledger.attempt_ended(CALLER, target, "NOANSWER", now)
                caller_gone = True
                break
            ledger.attempt_answered(CALLER, target, now)
            current = target
        else:
            ledger.attempt_started(CALLER, target, now)
            ledger.transfer_requested(CALLER, mode, current, now, to_agent=target)
            now += reply
            if what == "declined":
                ledger.consult_ended(CALLER, target, "NOANSWER", now)
                continue
            ledger.attempt_answered(CALLER, target, now)
            now += handover
            ledger.transfer_ended(CALLER, TransferOutcome.COMPLETED, now)
            current = target
    now += end_gap
    ledger.on_event(hangup(CALLER, now), now)
    by = HangupBy.CALLER if caller_gone else HangupBy.AGENT
    [record] = ledger.handler_finished(CALLER, now, hangup_by=by).closed

    assert record.queue == "support" and record.agent_id == "agent1"
    assert record.ended_at is not None
    for leg in record.attempts:
        assert leg.ended_at is not None and leg.started_at <= leg.ended_at <= record.ended_at
        if leg.answered_at is None:
            assert leg.talk_seconds is None and leg.outcome is not AttemptOutcome.ANSWERED
        else:
            assert leg.started_at <= leg.answered_at <= leg.ended_at
            assert leg.talk_seconds == pytest.approx(leg.ended_at - leg.answered_at)
    assert all(t.outcome is not TransferOutcome.PENDING and t.ended_at is not None
               for t in record.transfers)
    answered = [leg for leg in record.attempts if leg.answered_at is not None]
    completed = [t for t in record.transfers if t.outcome is TransferOutcome.COMPLETED]
    assert len(answered) == len(completed) + 1  # each completed transfer: one more agent
    # Two agents talk at once only during an attended transfer's consult, which the first
    # one's leg ends (at the handover); otherwise each leg ends before the next is answered.
    for before, after, transfer in zip(answered[:-1], answered[1:], completed, strict=True):
        assert before.ended_at is not None and after.answered_at is not None
        if transfer.mode is TransferMode.ATTENDED:
            assert before.ended_at == transfer.ended_at
            assert transfer.requested_at <= after.answered_at <= before.ended_at
        else:
            assert before.ended_at <= after.started_at
    if not caller_gone:  # the last agent talked to the end (not moved away)
        assert answered[-1].ended_at == record.ended_at


# ---------------------------------------------------------------------------- holds


def hold_event(kind: type[ami.Hold] | type[ami.Unhold], uniqueid: str, channel: str,
               at: float, linkedid: str = CALLER) -> ami.Hold | ami.Unhold:
    return kind(timestamp=at, uniqueid=uniqueid, linkedid=linkedid, channel=channel)


def test_holds_by_the_agent_and_by_the_caller_are_kept_with_asterisk_times():
    ledger = CallLedger()
    answered_by_agent1(ledger)
    agent_phone, caller_phone = "PJSIP/agent1-00000002", "PJSIP/anonymous-00000001"
    held = ledger.on_event(hold_event(ami.Hold, AGENT1_LEG, agent_phone, T0 + 10), T0 + 10.1)
    assert [(h.held_by, h.agent_id, h.started_at, h.ended_at) for h in held.save[0].holds] == [
        (HoldBy.AGENT, "agent1", T0 + 10, None)]
    # A repeated re-INVITE changes nothing; the Unhold ends that hold.
    assert ledger.on_event(hold_event(ami.Hold, AGENT1_LEG, agent_phone, T0 + 11), T0 + 11) \
        == LedgerResult()
    ledger.on_event(hold_event(ami.Unhold, AGENT1_LEG, agent_phone, T0 + 15.5), T0 + 15.6)
    ledger.on_event(hold_event(ami.Hold, CALLER, caller_phone, T0 + 20), T0 + 20)
    ledger.on_event(hold_event(ami.Unhold, CALLER, caller_phone, T0 + 22), T0 + 22)
    ledger.on_event(hold_event(ami.Hold, AGENT1_LEG, agent_phone, T0 + 30), T0 + 30)
    ledger.on_event(hangup(AGENT1_LEG, T0 + 40, agent_phone), T0 + 40)  # hung up on hold
    [record] = ledger.handler_finished(CALLER, T0 + 40.2, hangup_by=HangupBy.AGENT).closed
    assert [(h.held_by, h.agent_id, h.started_at, h.ended_at) for h in record.holds] == [
        (HoldBy.AGENT, "agent1", T0 + 10, T0 + 15.5), (HoldBy.CALLER, None, T0 + 20, T0 + 22),
        (HoldBy.AGENT, "agent1", T0 + 30, T0 + 40)]


def test_a_nailed_up_agents_hold_is_found_by_their_channel_and_an_open_hold_ends_with_the_call():
    ledger = CallLedger()
    ledger.on_event(newchannel(), T0)
    start_handler(ledger, T0)
    ledger.queued(CALLER, "support", T0 + 1)
    ledger.attempt_started(CALLER, "agent1", T0 + 3)
    ledger.agent_joined(CALLER, "agent1", T0 + 3)
    # The nailed-up agent's channel is its own call (another linkedid).
    ledger.on_event(hold_event(ami.Hold, "1799999000.5", "PJSIP/agent1-00000009", T0 + 5,
                               linkedid="1799999000.5"), T0 + 5)
    ledger.on_event(hold_event(ami.Hold, "1799999000.6", "PJSIP/agent7-0000000a", T0 + 6,
                               linkedid="1799999000.6"), T0 + 6)  # not on this call
    ledger.on_event(hangup(CALLER, T0 + 9), T0 + 9)
    [record] = ledger.handler_finished(CALLER, T0 + 9.1, hangup_by=HangupBy.CALLER).closed
    assert [(h.agent_id, h.started_at, h.ended_at) for h in record.holds] == [
        ("agent1", T0 + 5, T0 + 9)]


def test_a_phone_flapping_hold_is_kept_up_to_a_bound():
    ledger = CallLedger()
    answered_by_agent1(ledger)
    for n in range(MAX_HOLDS + 5):
        ledger.on_event(hold_event(ami.Hold, CALLER, "PJSIP/anonymous-1", T0 + 7 + n), T0)
        ledger.on_event(hold_event(ami.Unhold, CALLER, "PJSIP/anonymous-1", T0 + 7.5 + n), T0)
    record = ledger.get(CALLER)
    assert record is not None and len(record.holds) == MAX_HOLDS
