"""The test carrier's pieces (tests/support/carrier.py, rtp_audio.py) without sipp or Asterisk:
the audio is what AMD needs, the plan and scenario say what each number does, and the log
lines read back as per-call records. The real exchange is tests/integration/test_carrier.py.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from tests.support.carrier import (
    BEEP,
    GREETING,
    GREETING_MS,
    HELLO,
    Behaviour,
    CarrierPlan,
    Persona,
    carrier_calls,
    carrier_scenario,
)
from tests.support.rtp_audio import (
    PACKET_MS,
    Silence,
    Tone,
    Voice,
    audio_packets,
    frame_levels,
    mu_law_decode,
    pcmu,
)
from tests.support.rtp_dtmf import _mu_law
from tests.support.sipp import EVENT_PREFIX, SippEvent

SILENCE_THRESHOLD = 256  # amd.conf's silence_threshold: a frame below it is silence


def runs(levels: list[float]) -> list[tuple[bool, int]]:
    """(loud?, ms) runs of 20 ms frames, as AMD sees words and pauses."""
    out: list[tuple[bool, int]] = []
    for level in levels:
        loud = level >= SILENCE_THRESHOLD
        if out and out[-1][0] == loud:
            out[-1] = (loud, out[-1][1] + PACKET_MS)
        else:
            out.append((loud, PACKET_MS))
    return out


def test_mu_law_decoding_undoes_the_encoding_within_its_step():
    for sample in (-30000, -1000, -1, 0, 1, 77, 1000, 12000, 30000):
        assert abs(mu_law_decode(_mu_law(sample)) - sample) <= max(8, abs(sample) // 16)
    assert mu_law_decode(0xFF) == 0


def test_a_hello_is_one_loud_word_between_silences():
    assert runs(frame_levels(HELLO)) == [(False, 400), (True, 700)]
    voiced = frame_levels(HELLO)[400 // PACKET_MS:]
    assert min(voiced) > 4 * SILENCE_THRESHOLD  # far from the threshold, every frame


def test_a_greeting_is_many_words_over_three_seconds_with_short_pauses():
    shape = runs(frame_levels(GREETING))
    words = [ms for loud, ms in shape if loud]
    pauses = [ms for loud, ms in shape[1:-1] if not loud]
    assert len(words) == 10 and sum(words) == 2800 and GREETING_MS > 4000
    assert all(ms >= 100 for ms in words)  # each is a word to AMD (min_word_length)
    assert min(pauses) >= 100 and max(pauses) < 800  # apart, but no after_greeting_silence
    assert runs(frame_levels(BEEP)) == [(False, 400), (True, 500)]


def test_packets_are_20_ms_of_audio_with_growing_sequence_and_timestamp():
    packets = audio_packets((Silence(40), Tone(60)))
    assert [len(p.samples) for p in packets] == [160] * 5
    assert [p.send_at_us for p in packets] == [0, 20_000, 40_000, 60_000, 80_000]
    assert [p.sequence - packets[0].sequence for p in packets] == [0, 1, 2, 3, 4]
    assert [p.timestamp - packets[0].timestamp for p in packets] == [0, 160, 320, 480, 640]
    assert [p.marker for p in packets] == [True, False, False, False, False]


@pytest.mark.parametrize("segment", [Silence(0), Silence(30), Voice(100, syllables=()),
                                     Voice(100, syllables=(0.2,)), Voice(100, pitch_hz=900)])
def test_bad_segments_are_refused(segment):
    with pytest.raises(ValueError):
        pcmu((segment,))


def test_a_mix_has_the_counts_asked_on_consecutive_numbers():
    plan = CarrierPlan.mix({Behaviour.HUMAN: 3, Behaviour.BUSY: 2}, first="+15550100001")
    assert sorted(plan.numbers) == [f"+1555010000{i}" for i in range(1, 6)]
    assert len(plan.of(Behaviour.HUMAN)) == 3 and len(plan.of(Behaviour.BUSY)) == 2
    assert plan == CarrierPlan.mix({Behaviour.HUMAN: 3, Behaviour.BUSY: 2})  # seeded


@pytest.mark.parametrize("numbers", [{}, {"15550100001": Behaviour.HUMAN},
                                     {"+1555-0100": Behaviour.HUMAN},
                                     {"+15550100001": "human"}])
def test_bad_plans_are_refused(numbers):
    with pytest.raises(ValueError):
        CarrierPlan(numbers)


def routes(plan: CarrierPlan, number: str) -> list[str]:
    """The branches an INVITE to ``number`` is sent to by the scenario's expressions."""
    scenario = ET.fromstring(carrier_scenario(plan).encode("iso-8859-1"))
    request = f"INVITE sip:{number}@127.0.0.1:5060 SIP/2.0"
    return [(e.get("assign_to") or "").removeprefix("for_") for e in scenario.iter("ereg")
            if (e.get("assign_to") or "").startswith("for_")
            and re.search(e.get("regexp") or "", request)]


def test_the_scenario_routes_each_number_to_its_behaviour():
    plan = CarrierPlan({"+15550100001": Behaviour.HUMAN, "+15550100002": Behaviour.MACHINE,
                        "+15550100003": Behaviour.BUSY, "+15550100004": Behaviour.HUMAN})
    assert routes(plan, "+15550100002") == ["machine_1"]
    assert routes(plan, "+15550100004") == ["human_0"]
    assert routes(plan, "%2B15550100001") == ["human_0"]
    assert routes(plan, "+155501000011") == routes(plan, "+15550100009") == []
    scenario = ET.fromstring(carrier_scenario(plan).encode("iso-8859-1"))
    labels = {e.get("id") for e in scenario.iter("label")}
    assert {"human_0", "machine_1", "busy_2", "cancelled", "remote_bye", "end"} <= labels
    assert "hang_up" not in labels  # nobody in this plan hangs up: no BYE of ours


def test_a_persona_has_its_own_branch_with_its_own_timings():
    plan = CarrierPlan({"+15550100001": Behaviour.HUMAN,
                        "+15550100002": Persona(Behaviour.HUMAN, ring_ms=3000,
                                                hangup_after_ms=5000),
                        "+15550100003": Persona(Behaviour.HUMAN)}, ring_ms=1500)
    assert plan.persona("+15550100002") == Persona(Behaviour.HUMAN, 3000, 5000)
    assert plan.persona("+15550100003") == Persona(Behaviour.HUMAN, 1500, None)
    assert routes(plan, "+15550100003") == ["human_0"]  # the same as the plain human
    assert routes(plan, "+15550100002") == ["human_1"]
    assert plan.of(Behaviour.HUMAN) == ["+15550100001", "+15550100002", "+15550100003"]
    scenario = carrier_scenario(plan)
    assert 'timeout="3000" ontimeout="human_1_answer"' in scenario
    assert 'timeout="5000" ontimeout="human_1_hangs_up"' in scenario
    assert '<label id="hang_up"/>' in scenario


@pytest.mark.parametrize("persona", [
    {"behaviour": Behaviour.BUSY, "ring_ms": 100},
    {"behaviour": Behaviour.MACHINE, "hangup_after_ms": 1000},
    {"behaviour": Behaviour.HUMAN, "hangup_after_ms": 10},
    {"behaviour": Behaviour.HUMAN, "ring_ms": -1},
    {"behaviour": "human"}])
def test_bad_personas_are_refused(persona):
    with pytest.raises(ValueError):
        Persona(**persona)


def event(at_ms: int, call: str, name: str) -> SippEvent:
    return SippEvent(at_ms=at_ms, call=call, name=name)


def test_log_lines_read_back_as_one_record_per_call():
    events = [
        event(100, "a", "invite INVITE sip:+15550100001"), event(101, "a", "behaviour human"),
        event(150, "b", "invite INVITE sip:%2B15550100002"), event(151, "b", "behaviour busy"),
        event(152, "b", "refused 486"),
        event(1100, "a", "answered"), event(4000, "a", "remote-bye"),
        event(200, "c", "invite INVITE sip:+15550100003"),
        event(201, "c", "behaviour no-answer"), event(8200, "c", "cancelled"),
        event(300, "d", "invite INVITE sip:+15550100009"), event(301, "d", "unknown-number"),
    ]
    calls = {c.number: c for c in carrier_calls(events)}
    human, busy = calls["+15550100001"], calls["+15550100002"]
    assert (human.behaviour, human.answered_at_ms, human.ended_by, human.talk_ms) == (
        Behaviour.HUMAN, 1100, "caller", 2900)
    assert human.bye_received and human.ended
    assert (busy.behaviour, busy.refused, busy.answered_at_ms, busy.ended) == (
        Behaviour.BUSY, 486, None, True)
    assert calls["+15550100003"].cancelled and calls["+15550100003"].ended_by is None
    assert (calls["+15550100009"].behaviour, calls["+15550100009"].refused) == (None, 404)
    assert EVENT_PREFIX in carrier_scenario(CarrierPlan({"+15550100001": Behaviour.HUMAN}))
