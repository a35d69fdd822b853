"""Hostile caller IDs on the real parts: SIPp From headers → Asterisk 22 → AGI, AMI, record.

Asterisk decodes the SIP From user part (``%0d%0a`` becomes CR LF) and copies the number
unescaped into the FastAGI environment and AMI events. A family of hostile callers (line
breaks, AGI and AMI syntax, another call's identity, separators, quotes and backslashes,
300-byte values, invalid UTF-8, NUL, a hostile Diversion header) dials the IVR at once on
one Asterisk instance and presses 2; each must go through the IVR to an agent and get
exactly one correct record.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

import pytest

from callcenter.core.records import Disposition
from tests.support.asterisk import phone_agent
from tests.support.calls import (
    DEMO_HOURS_OPEN,
    MENU_DIGIT_MS,
    agent_phone,
    call_center,
    caller,
    closed_calls,
    finished,
    ivr_inputs,
)
from tests.support.sipp import AgentPlan, CallerPlan, free_port

pytestmark = pytest.mark.asterisk


@dataclass(frozen=True)
class Hostile:
    """A From header (``user``: raw bytes of the URI user part; ``name``: of the display
    name) and what the record must say: the cleaned number and name, and the raw ID."""

    what: str
    user: bytes
    name: bytes
    number: str | None
    clean_name: str | None
    raw: str
    diversion: bytes | None = None  # a Diversion header's user part (AGI's agi_rdnis)


ANOTHER_CALL = b"1796640466.0"
HOSTILE = (
    Hostile("a blank line, then an AGI response", b"556\r\n\r\n200 result=0", b"x",
            "556200result0", "x", 'x <556%0D%0A%0D%0A200%20result%3D0>'),
    Hostile("another call's Uniqueid and Linkedid",
            b"557\r\nUniqueid: " + ANOTHER_CALL + b"\r\nLinkedid: " + ANOTHER_CALL, b"y",
            "557Uniqueid1796640466.0Linkedid1796640466.0"[:40], "y",
            'y <557%0D%0AUniqueid%3A%201796640466.0%0D%0ALinkedid%3A%201796640466.0>'),
    Hostile("another channel", b"558\r\nChannel: Local/9@callcenter-outbound", b"z",
            "558ChannelLocal9callcenter-outbound", "z",
            'z <558%0D%0AChannel%3A%20Local%2F9%40callcenter-outbound>'),
    Hostile("a whole AMI event forged for another call",
            b"559\r\n\r\nEvent: Hangup\r\nUniqueid: " + ANOTHER_CALL + b"\r\n\r\n", b"w",
            "559EventHangupUniqueid1796640466.0", "w",
            'w <559%0D%0A%0D%0AEvent%3A%20Hangup%0D%0AUniqueid%3A%201796640466.0%0D%0A%0D%0A>'),
    Hostile("an AGI environment line, a blank line and HANGUP",
            b"561\nagi_network_script: agent\n\nHANGUP\n", b"v",
            "561aginetworkscriptagentHANGUP", "v",
            'v <561%0Aagi_network_script%3A%20agent%0A%0AHANGUP%0A>'),
    Hostile("separators", b"5:6;7,8", b"a:b;c,d(e)", "56", "a:b;c,d(e)",
            'a%3Ab%3Bc%2Cd(e) <5%3A6>'),  # PJSIP ends a number at ';'
    Hostile("quotes", b"5551001", b'O"Brien', "5551001", 'O"Brien',
            'O%5C%22Brien <5551001>'),  # PJSIP keeps the quoted-pair
    Hostile("an apostrophe and a backslash", b"5551002", b"O'Brien \\ back", "5551002",
            "O'Brien \\ back", "O'Brien%20%5C%5C%20back <5551002>"),
    Hostile("300-byte values", b"1" * 300, b"N" * 300, "1" * 40, "N" * 79,
            f'{"N" * 79} <{"1" * 79}>'),  # PJSIP keeps 79 bytes of each
    Hostile("invalid UTF-8 and NUL", b"\xff\xfe560\x00\r\nagi_x: y", b"Jos\xe9 \xff\xfe",
            "560", "Jos\ufffd \ufffd\ufffd",  # PJSIP replaced the name's bad bytes
            'Jos%EF%BF%BD%20%EF%BF%BD%EF%BF%BD <%FF%FE560>'),  # the number ends at NUL
    Hostile("forwarded from a number with a blank line and an AGI response", b"5551003",
            b"u", "5551003", "u", "u <5551003>", diversion=b"562\r\n\r\n200 result=0"),
)
AGENT_TALK_MS = 1000


async def test_hostile_caller_ids_each_go_through_the_ivr_and_get_one_correct_record(
        tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    ports = [free_port(), free_port()]
    agents = [phone_agent(f"agent{i}", port, queues=["support"])
              for i, port in enumerate(ports, start=1)]
    async with call_center(tmp_path, agents) as center:
        for i, port in enumerate(ports, start=1):  # stopped by sipp_cleanup
            agent_phone(f"agent{i}", port, AgentPlan(answer_after_ms=300,
                                                     hangup_after_ms=AGENT_TALK_MS),
                        calls=len(HOSTILE))
        calls = [caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),), from_user=h.user,
                                           display_name=h.name, diversion_user=h.diversion,
                                           max_call_ms=90_000))
                 for h in HOSTILE]
        results = await asyncio.gather(*(finished(call, 120) for call in calls))
        records = await closed_calls(center, len(HOSTILE))

    assert [r.ended_by for r in results] == ["them"] * len(HOSTILE)  # the agent hung up
    by_raw = {record.caller_id_raw: record for record in records}
    assert sorted(by_raw, key=str) == sorted(h.raw for h in HOSTILE), "a raw caller ID differs"
    for hostile in HOSTILE:
        record = by_raw[hostile.raw]
        assert (record.caller_number, record.caller_name) == (hostile.number,
                                                              hostile.clean_name), hostile.what
        assert ivr_inputs(record) == [DEMO_HOURS_OPEN, ("welcome", None), ("main_menu", "2")], \
            hostile.what
        assert record.disposition is Disposition.ANSWERED, (hostile.what, record)
        assert record.queue == "support" and record.agent_id in ("agent1", "agent2")
        assert record.talk_seconds is not None and record.talk_seconds > 0.5, hostile.what
        assert record.linked_id == record.call_id, hostile.what
        assert re.fullmatch(r"PJSIP/anonymous-[0-9a-f]{8}", record.channel or ""), record.channel
    # Each record names its own call: no two share a uniqueid or a channel, and none took
    # the identity a caller ID tried to give it.
    assert len({r.call_id for r in records}) == len({r.channel for r in records}) == len(HOSTILE)
    assert ANOTHER_CALL.decode() not in {r.call_id for r in records}
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [w for w in warnings if "skipped a line" in w]
    untrusted = [w for w in warnings if "dropped an untrusted message" in w]
    assert 1 <= len(untrusted) <= 4, untrusted  # hostile bytes reached AMI; one warning a 10 s
    assert not [w for w in warnings if "FastAGI" in w and "no valid environment" in w]
