"""Call recording on a real Asterisk 22 with SIPp phones: a caller of the queue ``sales``
(policy ``all``) hears the announcement first, talks to an agent for a known time, and the
file the service stores holds that talk; only a supervisor may fetch it over HTTP.

The caller sends a voice-like sound for the whole call (MixMonitor writes what passes
through the channel; a silent SIPp phone sends no audio at all), the agent answers and
hangs up after a set time; the agent's own SIPp log says how long the talk lasted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from callcenter.app import CallCenter
from callcenter.config import RecordingPolicySettings
from callcenter.core.acd import AgentState
from callcenter.core.records import CallRecord, Direction, Disposition
from callcenter.features.accounts.store import Role
from callcenter.features.recordings.store import RecordingStatus
from tests.integration.test_campaign_dialer import OUR_NUMBER, running_campaign
from tests.support.asterisk import phone_agent, running_asterisk, sandbox_settings
from tests.support.calls import (
    QUEUES,
    agent_dials,
    agent_phone,
    caller,
    finished,
    prompt_seconds,
    talk_seconds_measured_by,
    the_only_closed_call,
    until,
)
from tests.support.sipp import AgentPlan, CallerPlan, SippProcess, agent_scenario, free_port
from tests.support.web import bearer_headers

pytestmark = pytest.mark.asterisk

KEY_MS = 1500  # pressed while the (short) menu prompt plays
TALK_MS = 6000  # the agent hangs up this long after answering
FLOW = """
name: main
start: route
nodes:
  route:
    type: menu
    prompt: no-input
    timeout: 8
    retries: 1
    options:
      "1": {queue: sales}
    on_exhausted: {hangup: true}
"""


@asynccontextmanager
async def recording_center(tmp_path: Path, agents: list[dict[str, object]], *,
                           mode: str = "all", env: dict[str, str] | None = None,
                           policy: RecordingPolicySettings | None = None,
                           ) -> AsyncIterator[CallCenter]:
    """The service with the queue ``sales`` recorded (policy ``mode``, announced) and this
    flow; or with ``policy`` instead."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text(FLOW)
    settings = sandbox_settings(tmp_path, agents=agents, queues=QUEUES, env=env)
    settings = dataclasses.replace(
        settings,
        ivr=dataclasses.replace(settings.ivr, dialplans_dir=str(flows)),
        recording_policies=(policy or RecordingPolicySettings(queue="sales", mode=mode,
                                                              retention_days=30),),
        recordings=dataclasses.replace(settings.recordings, settle_seconds=1))
    with running_asterisk(settings):
        center = CallCenter(settings)
        await center.start()
        try:
            await center.ami.wait_ready(30)
            yield center
        finally:
            await center.stop()


async def test_a_recorded_call_holds_the_talk_says_so_first_and_is_served_to_supervisors(
        tmp_path):
    port = free_port()
    agents = [phone_agent("agent1", port, queues=["sales"])]
    notice = prompt_seconds("recording-notice")
    async with recording_center(tmp_path, agents) as center:
        phone = agent_phone("agent1", port, AgentPlan(answer_after_ms=300,
                                                      hangup_after_ms=TALK_MS))
        # The caller speaks from the key press until well after the agent hung up.
        speak_ms = 20 * ((int(notice * 1000) + TALK_MS + 8000) // 20)
        call = caller(center, CallerPlan(dtmf=((KEY_MS, "1"),),
                                         speech=((KEY_MS + 400, speak_ms),),
                                         max_call_ms=60_000, caller_number="5550101"))
        call_result, agent_result = await asyncio.gather(finished(call), finished(phone))
        record = await the_only_closed_call(center)
        recording = await until(lambda: _stored(center, record.call_id),
                                "the recording stored", timeout=20)
        file = center.recordings.folder / str(recording.file)
        with wave.open(str(file)) as audio:
            audio_seconds = audio.getnframes() / audio.getframerate()
            assert (audio.getnchannels(), audio.getframerate()) == (1, 8000)

        base = f"http://127.0.0.1:{center.settings.service.http_port}"
        supervisor = await bearer_headers(center.accounts, [Role.SUPERVISOR],
                                          username="sue")
        agent = await bearer_headers(center.accounts, [Role.AGENT], username="al",
                                     agent_id="agent1")
        async with aiohttp.ClientSession() as http:
            url = f"{base}/api/recordings/{recording.id}/audio"
            async with http.get(url, headers=supervisor) as served:
                assert served.status == 200 and served.content_type == "audio/wav"
                body = await served.read()
            async with http.get(url, headers={**supervisor, "Range": "bytes=0-43"}) as head:
                assert head.status == 206 and (await head.read())[:4] == b"RIFF"
            async with http.get(url, headers=agent) as refused:
                assert refused.status == 403

    assert call_result.ended_by != "us" and record.disposition is Disposition.ANSWERED
    talk = talk_seconds_measured_by(agent_result)
    assert abs(talk - TALK_MS / 1000) < 1.0, talk
    # b: only while the caller is bridged to the agent, so the ring and music are not in it.
    assert abs(audio_seconds - talk) < 1.0, (audio_seconds, talk)
    assert record.talk_seconds is not None and abs(audio_seconds - record.talk_seconds) < 1.0
    assert body == file.read_bytes()
    assert recording.reason.value == "all" and recording.agent_id == "agent1"
    assert recording.seconds == pytest.approx(audio_seconds)
    assert recording.size_bytes == len(body)
    # The announcement came first: said after the caller entered the queue, before the agent.
    assert recording.announced and recording.announced_at is not None
    assert record.agent_answered_at is not None
    assert record.started_at < recording.announced_at
    assert recording.announced_at + notice <= record.agent_answered_at + 0.5
    assert recording.file == (f"{recording.file.split('/call-')[0]}/"
                              f"call-{record.call_id}.wav")


async def _closed_outbound(center: CallCenter) -> CallRecord | None:
    """The campaign call's record once closed (the carrier's SIPp ends before Asterisk's
    hangup reaches the record)."""
    await center.writer.flush(10)
    outbound = [r for r in (await center.calls.list(limit=10))[0]
                if r.direction is Direction.OUTBOUND]
    return outbound[0] if len(outbound) == 1 and not outbound[0].is_open else None


async def _stored(center: CallCenter, call_id: str):  # type: ignore[no-untyped-def]
    try:
        recording = await center.recording_store.by_call(call_id)
    except LookupError:
        return None
    return recording if recording.status is RecordingStatus.STORED else None


async def test_on_demand_records_only_once_the_agent_asks(tmp_path):
    """The recorder is armed muted when the agent answers (AMI MixMonitorMute, which the
    service's least-rights AMI user may send); the agent asks 3 s into the talk over HTTP;
    the file then holds silence before that moment and the caller's voice after it."""
    port = free_port()
    agents = [phone_agent("agent1", port, queues=["sales"])]
    async with recording_center(tmp_path, agents, mode="on_demand") as center:
        phone = agent_phone("agent1", port, AgentPlan(answer_after_ms=300,
                                                      hangup_after_ms=TALK_MS))
        notice = prompt_seconds("recording-notice")
        speak_ms = 20 * ((int(notice * 1000) + TALK_MS + 8000) // 20)
        call = caller(center, CallerPlan(dtmf=((KEY_MS, "1"),),
                                         speech=((KEY_MS + 400, speak_ms),),
                                         max_call_ms=60_000, caller_number="5550102"))
        [armed] = await until(lambda: _connected(center), "the agent on the call", timeout=30)
        await asyncio.sleep(3)
        agent = await bearer_headers(center.accounts, [Role.AGENT], username="al",
                                     agent_id="agent1")
        base = f"http://127.0.0.1:{center.settings.service.http_port}"
        async with aiohttp.ClientSession() as http, http.post(
                f"{base}/api/recordings/requests", json={"call_id": armed.call_id},
                headers={**agent, "X-Requested-With": "callcenter"}) as asked:
            assert asked.status == 200, await asked.text()
        await asyncio.gather(finished(call), finished(phone))
        record = await the_only_closed_call(center)
        recording = await until(lambda: _stored(center, armed.call_id),
                                "the recording stored", timeout=20)
        file = center.recordings.folder / str(recording.file)
        with wave.open(str(file)) as audio:
            rate = audio.getframerate()
            samples = audio.readframes(audio.getnframes())

    assert recording.requested_by == "al" and recording.requested_at is not None
    assert record.agent_answered_at is not None
    asked_at = recording.requested_at - record.agent_answered_at  # into the talk
    seconds = len(samples) / 2 / rate
    assert 2.0 < asked_at < seconds - 1.0, (asked_at, seconds)
    # Muted, MixMonitor writes silence: the file keeps the talk's timeline.
    assert abs(seconds - TALK_MS / 1000) < 1.0, seconds
    before = _loudness(samples, rate, 0.2, asked_at - 0.5)
    after = _loudness(samples, rate, asked_at + 0.5, seconds - 0.2)
    assert before < 50 < after, (before, after, seconds, asked_at)


async def _connected(center: CallCenter):  # type: ignore[no-untyped-def]
    rows = await center.recording_store.listing()
    return [r for r in rows if r.agent_id == "agent1"] or None


def _loudness(samples: bytes, rate: int, start: float, end: float) -> float:
    """Mean absolute sample value between two times (16-bit mono)."""
    first, last = int(start * rate) * 2, int(end * rate) * 2
    values = [int.from_bytes(samples[i:i + 2], "little", signed=True)
              for i in range(first, last, 2)]
    return sum(abs(v) for v in values) / max(1, len(values))


async def test_a_campaigns_policy_records_its_answers_joined_to_a_nailed_up_agent(tmp_path):
    """The campaign ``renewals`` is recorded (its own policy; its queue has none): the
    customer who answers hears the announcement, then joins the nailed-up agent's bridge
    (ConfBridge); the file holds the time the customer spent in that bridge."""
    agent = phone_agent("agent1", free_port(), queues=["sales"], password="agent1-secret",
                        logged_in=False)
    carrier_port = free_port()
    env = {"CALLCENTER_OUTBOUND__TRUNK_HOST": f"127.0.0.1:{carrier_port}",
           "CALLCENTER_OUTBOUND__TRUNK_MATCH": f"127.0.0.1:{carrier_port}",
           "CALLCENTER_OUTBOUND__CALLER_ID": OUR_NUMBER}
    policy = RecordingPolicySettings(campaign="renewals", mode="all", retention_days=7)
    async with recording_center(tmp_path, [agent], env=env, policy=policy) as center:
        customer = SippProcess(agent_scenario(AgentPlan(answer_after_ms=300,
                                                        hangup_after_ms=12_000)),
                               port=carrier_port, name="carrier", calls=1).start()
        # The agent speaks all along, so the bridge carries audio to the customer.
        nailed = agent_dials(center, "agent1", None, "*50", CallerPlan(
            speech=((500, 50_000),), hangup_after_ms=55_000, max_call_ms=80_000))
        try:
            await until(lambda: center.acd.acd.agent_state("agent1") is AgentState.READY,
                        "agent1 nailed up and ready")
            await running_campaign(center, ["+12025550101"])
            await finished(customer, timeout=60)
            record = await until(lambda: _closed_outbound(center),
                                 "the campaign call's record closed", timeout=20)
            recording = await until(lambda: _stored(center, record.call_id),
                                    "the campaign call's recording stored", timeout=20)
            with wave.open(str(center.recordings.folder / str(recording.file))) as audio:
                audio_seconds = audio.getnframes() / audio.getframerate()
        finally:
            nailed.stop()

    assert (recording.campaign, recording.reason.value, recording.agent_id) == (
        "renewals", "all", "agent1")
    assert recording.announced and recording.retention_days == 7
    assert record.talk_seconds is not None and record.talk_seconds > 3, record
    assert abs(audio_seconds - record.talk_seconds) < 1.0, (audio_seconds, record.talk_seconds)
