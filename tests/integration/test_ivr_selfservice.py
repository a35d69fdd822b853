"""Self-service on real calls: language choice, FAQ answers, the post-call survey and a
callback request, through dialplans/selfservice.yaml and csat.yaml (real Asterisk 22, SIPp
callers keying RFC 4733 digits, the service in-process)."""

from __future__ import annotations

import logging
import wave
from pathlib import Path

import pytest

from callcenter.core.records import CallbackStatus, Disposition, FaqResult, HangupBy
from tests.support.asterisk import phone_agent
from tests.support.calls import (
    agent_phone,
    call_center,
    caller,
    finished,
    ivr_inputs,
    prompt_seconds,
    the_only_closed_call,
)
from tests.support.sipp import AgentPlan, CallerPlan, free_port

pytestmark = pytest.mark.asterisk

SELF_SERVICE = {"flow": "selfservice"}  # the repository's dialplans/ folder


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as audio:
        return audio.getnframes() / audio.getframerate()


def ms(value: float) -> int:
    return int(value * 1000)


def no_prompt_failed(caplog: pytest.LogCaptureFixture) -> None:
    failed = [r.getMessage() for r in caplog.records if "could not be played" in r.getMessage()]
    assert not failed, failed


async def test_a_caller_chooses_portuguese_and_a_faq_answer_solves_their_problem(
        tmp_path, caplog):
    caplog.set_level(logging.INFO, "callcenter")
    async with call_center(tmp_path, [], service_ivr=SELF_SERVICE) as center:
        # Each key cuts the prompt it is pressed during: language, FAQ menu, answer.
        plan = CallerPlan(dtmf=((1000, "1"), (2500, "1"), (2500, "1")), max_call_ms=40_000)
        result = await finished(caller(center, plan))
        record = await the_only_closed_call(center)

    assert result.ended_by == "them"  # the IVR said goodbye and hung up
    assert ivr_inputs(record) == [
        ("choose_language", "pt_BR"), ("faq_menu", "1"), ("opening_hours", "solved")]
    assert record.disposition is Disposition.COMPLETED_IN_IVR
    [outcome] = record.faq_outcomes
    assert (outcome.flow, outcome.topic, outcome.result) == (
        "selfservice", "opening-hours", FaqResult.SOLVED)
    assert outcome.heard_at <= outcome.answered_at <= record.ended_at
    no_prompt_failed(caplog)  # every prompt played from sounds/pt_BR/callcenter


async def test_not_solved_reaches_an_agent_and_the_caller_rates_them_after_the_talk(
        tmp_path, caplog):
    caplog.set_level(logging.INFO, "callcenter")
    port = free_port()
    agents = [phone_agent("agent2", port, queues=["support"])]
    talk_ms = 2000
    # English (2), order tracking (2), "talk to a person" (2) during the answer; then the
    # idle agent rings at once (no "please hold"), answers and hangs up after the talk: the
    # survey's first question plays.
    survey_starts = 1.0 + 2.5 + 2.5 + 0.3 + talk_ms / 1000
    rate_at = survey_starts + prompt_seconds("survey-rate-1-5") + 1.0  # in the wait after it
    plan = CallerPlan(
        dtmf=((1000, "2"), (2500, "2"), (2500, "2"),
              (ms(rate_at - 6.0), "4"), (2500, "1")),
        max_call_ms=60_000)
    async with call_center(tmp_path, agents, service_ivr=SELF_SERVICE) as center:
        phone = agent_phone("agent2", port, AgentPlan(answer_after_ms=300,
                                                      hangup_after_ms=talk_ms))
        result = await finished(caller(center, plan))
        await finished(phone)
        record = await the_only_closed_call(center)

    assert result.ended_by == "them"  # thanked and hung up by the survey
    assert record.agent_id == "agent2" and record.queue == "support"
    assert record.hangup_by is HangupBy.AGENT  # the talk ended by the agent, survey or not
    assert record.disposition is Disposition.ANSWERED
    assert [(o.topic, o.result) for o in record.faq_outcomes] == [
        ("order-tracking", FaqResult.NOT_SOLVED)]
    assert [(a.survey, a.question, a.answer) for a in record.survey_answers] == [
        ("csat", "agent-rating", "4"), ("csat", "problem-solved", "yes")]
    assert all(a.answered_at > record.agent_answered_at for a in record.survey_answers)
    assert ivr_inputs(record)[-2:] == [("rating", "answer 4"), ("solved", "answer yes")]
    no_prompt_failed(caplog)


async def test_a_callback_request_records_the_name_and_stores_the_confirmed_number(
        tmp_path, caplog):
    caplog.set_level(logging.INFO, "callcenter")
    number = "33334444"
    # English (2), "call me back" (3); after the name prompt and the beep the caller says
    # their name and ends it with '#'; the number is said back, then the confirm prompt: 1.
    menu_key_at = 3.5
    speak_at = menu_key_at + prompt_seconds("callback-record-name") + 1.0
    pound_at = speak_at + 1.8
    confirm_at = pound_at + prompt_seconds("callback-number-is") + 7.5
    plan = CallerPlan(
        dtmf=((1000, "2"), (2500, "3"), (ms(pound_at - menu_key_at), "#"),
              (ms(confirm_at - pound_at), "1")),
        speech=((ms(speak_at), 1500),), caller_number=number, max_call_ms=60_000)
    async with call_center(tmp_path, [], service_ivr=SELF_SERVICE) as center:
        result = await finished(caller(center, plan))
        record = await the_only_closed_call(center)
        requests, total = await center.callbacks.list()
        recorded = [r.name_recording for r in requests if r.name_recording]
        # Read while the instance (its spool) is still there: about 1.5 s of voice.
        wavs = [center.settings.sandbox_root / f"{path.lstrip('/')}.wav" for path in recorded]
        name_seconds = [_wav_seconds(wav) for wav in wavs]

    assert result.ended_by == "them"
    assert ivr_inputs(record)[-1] == ("call_me_back", f"registered ({len(number)} digits)")
    assert record.disposition is Disposition.COMPLETED_IN_IVR
    assert total == 1
    [request] = requests
    assert (request.number, request.queue, request.call_id) == (number, "support",
                                                               record.call_id)
    assert request.status is CallbackStatus.PENDING
    assert request.protocol == record.protocol and request.flow == "selfservice"
    assert request.name_recording is not None, caplog.text
    assert request.name_recording.startswith("/srv/callcenter/")  # Asterisk's own path
    [length] = name_seconds
    assert 1.0 < length < 3.5
    no_prompt_failed(caplog)
