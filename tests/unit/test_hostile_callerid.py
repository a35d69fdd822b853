"""Hostile caller IDs, byte by byte: the AMI framer, the AGI environment, the cleaning rules.

Asterisk 22 copies a caller's number into AMI and AGI unescaped (``%0d%0a`` in the SIP From
user part becomes CR LF), at most 79 bytes of it (PJSIP's caller ID buffer). The bytes below
are Asterisk's own, as captured from a real instance: only the caller ID varies.
"""

from __future__ import annotations

import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.asterisk import confgen
from callcenter.asterisk.agi import AgiConnection, AgiEnvironment, AgiError, AgiProtocolError
from callcenter.asterisk.ami import AmiFramer
from callcenter.asterisk.events import Hangup, Newchannel, parse_event, unescape_c
from callcenter.core.caller_id import clean_name, clean_number, raw_caller_id
from callcenter.core.calls import CallLedger

BANNER = b"Asterisk Call Manager/9.0.0\r\n"
PJSIP_CALLER_ID_BYTES = 79  # res_pjsip's caller ID buffer, less its NUL


def newchannel(number: bytes, *, uniqueid: str = "1796640466.2", name: bytes = b"x",
               connected: bytes = b"<unknown>") -> bytes:
    """A Newchannel exactly as Asterisk 22 wrote it for an INVITE from ``number``
    (``connected``: the connected line's number, raw too, e.g. a customer's answer)."""
    return (b"Event: Newchannel\r\nPrivilege: call,all\r\nTimestamp: 1796640466.775181\r\n"
            b"Channel: PJSIP/anonymous-00000002\r\nChannelState: 4\r\nChannelStateDesc: Ring\r\n"
            b"CallerIDNum: " + number + b"\r\nCallerIDName: " + name + b"\r\n"
            b"ConnectedLineNum: " + connected + b"\r\nConnectedLineName: <unknown>\r\n"
            b"Language: en\r\n"
            b"AccountCode: \r\nContext: callers\r\nExten: 100\r\nPriority: 1\r\n"
            b"Uniqueid: " + uniqueid.encode() + b"\r\nLinkedid: " + uniqueid.encode()
            + b"\r\n\r\n")


def hangup(uniqueid: str) -> bytes:
    return (b"Event: Hangup\r\nPrivilege: call,all\r\nTimestamp: 1796640470.5\r\n"
            b"Channel: PJSIP/agent2-00000007\r\nChannelState: 6\r\nChannelStateDesc: Up\r\n"
            b"CallerIDNum: agent2\r\nCallerIDName: Agent2\r\nConnectedLineNum: 556\r\n"
            b"ConnectedLineName: x\r\nLanguage: en\r\nAccountCode: \r\nContext: agents\r\n"
            b"Exten: s\r\nPriority: 1\r\nUniqueid: " + uniqueid.encode() + b"\r\n"
            b"Linkedid: 1796640466.0\r\nCause: 16\r\nCause-txt: Normal Clearing\r\n\r\n")


def events(data: bytes, framer: AmiFramer | None = None) -> list[object]:
    return [parse_event(m) for m in (framer or AmiFramer()).feed(BANNER + data)]


# --------------------------------------------------------------------------- the AMI framer


def test_a_caller_id_with_a_blank_line_drops_its_message_and_the_forged_ones_after_it() -> None:
    """The issue's first example, and a whole Hangup forged for another call in 45 bytes."""
    for number in (b"556\r\n\r\n200 result=0",
                   b"559\r\n\r\nEvent: Hangup\r\nUniqueid: 1796640466.0\r\n\r\n"):
        framer = AmiFramer()
        got = events(hangup("1796640400.1") + newchannel(number) + hangup("1796640400.3"),
                     framer)
        assert [(e.name, e.uniqueid) for e in got] == [  # type: ignore[attr-defined]
            ("Hangup", "1796640400.1"), ("Hangup", "1796640400.3")]
        assert framer.untrusted_messages >= 2


@pytest.mark.parametrize("number", [
    b"557\r\nUniqueid: 1111111111.1\r\nLinkedid: 1111111111.1",  # the second example
    b"558\r\nChannel: Local/9@x",  # ... and its third
    b"560\r\nContext: agents",  # a header out of the snapshot's order
])
def test_a_caller_id_with_a_line_break_drops_its_message_and_nothing_else(number: bytes) -> None:
    framer = AmiFramer()
    got = events(newchannel(number) + newchannel(b"5551234", uniqueid="1796640466.3"), framer)
    assert got == [Newchannel(timestamp=1796640466.775181, uniqueid="1796640466.3",
                              linkedid="1796640466.3", channel="PJSIP/anonymous-00000002",
                              caller_number="5551234", caller_name="x", context="callers",
                              exten="100", state="Ring")]
    assert framer.untrusted_messages == 1


def test_separators_quotes_and_invalid_utf8_pass_through_as_values() -> None:
    """No line break, no harm: ``:`` ``;`` ``,`` and bad bytes stay inside their value."""
    got = events(newchannel(b"5:6;7,8\xff\xfe", name=b'O\\\\\\"Brien \\\'x\\\' \\\\ y'))
    assert len(got) == 1 and isinstance(got[0], Newchannel)
    assert got[0].caller_number == "5:6;7,8\ufffd\ufffd"
    assert got[0].caller_name == "O\\\"Brien 'x' \\ y"  # AMI's C escaping undone, once


def test_a_list_entry_with_a_caller_id_but_no_snapshot_is_not_taken_for_a_cut_one() -> None:
    """app_queue writes QueueEntry with CallerIDNum among a few headers of its own."""
    entry = (b"Event: QueueEntry\r\nQueue: support\r\nPosition: 1\r\n"
             b"Channel: PJSIP/anonymous-00000002\r\nUniqueid: 1796640466.2\r\n"
             b"CallerIDNum: 556200result0\r\nCallerIDName: x\r\nConnectedLineNum: unknown\r\n"
             b"ConnectedLineName: unknown\r\nWait: 3\r\nPriority: 0\r\nActionID: 1\r\n\r\n")
    framer = AmiFramer()
    assert [m["Event"] for m in framer.feed(BANNER + entry + entry)] == ["QueueEntry"] * 2
    assert framer.untrusted_messages == 0


def test_a_flood_of_untrusted_messages_gives_one_warning_per_interval(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    now = [0.0]
    framer = AmiFramer(warning_interval=10, clock=lambda: now[0])
    hostile = newchannel(b"556\r\n\r\n200 result=0\r\nx\r\ny\r\nz")
    framer.feed(BANNER)
    for _ in range(60):
        assert framer.feed(hostile) == []
    assert framer.untrusted_messages == 120 and framer.garbage_lines >= 60
    assert len(caplog.records) == 1
    now[0] = 11.0
    framer.feed(hostile)
    assert len(caplog.records) == 2
    assert "and 119 more since the last warning" in caplog.records[-1].getMessage()


def test_a_cut_message_whose_tail_never_comes_ends_its_quarantine_after_64_kib() -> None:
    framer = AmiFramer()
    framer.feed(BANNER + newchannel(b"1\r\n\r\n")[: -200])  # cut, and its tail lost
    filler = b"Event: Ping\r\nPrivilege: system,all\r\n\r\n"
    dropped = 0
    while not framer.feed(filler):
        dropped += 1
        assert dropped < 3000
    assert dropped * len(filler) > 64 * 1024


# Pieces an attacker would assemble, with random bytes between them.
ATTACK_PIECES = (b"\r\n", b"\n", b"\r\n\r\n", b"Event: Hangup", b"Event: DeviceStateChange",
                 b"Response: Success", b"ActionID: 1", b"Uniqueid: 1796640400.9",
                 b"Linkedid: 1796640400.9", b"Channel: Local/9@x", b"ChannelState: 6",
                 b"CallerIDNum: 1", b"CallerIDName: y", b"ConnectedLineName: x", b"Language: en",
                 b"Context: agents", b"Priority: 1", b"Device: PJSIP/agent1", b": ")
hostile_caller_ids = st.one_of(
    st.binary(max_size=PJSIP_CALLER_ID_BYTES),
    st.lists(st.one_of(st.sampled_from(ATTACK_PIECES), st.binary(max_size=6)), max_size=12)
    .map(b"".join),
).map(lambda b: b.replace(b"\0", b"")[:PJSIP_CALLER_ID_BYTES])


@settings(max_examples=600, deadline=None)
@given(number=hostile_caller_ids, split=st.integers(min_value=0, max_value=2000),
       connected_line=st.booleans())
def test_no_caller_id_can_make_a_message_about_another_call_or_lose_a_neighbour(
        number: bytes, split: int, connected_line: bool) -> None:
    """Whatever 79 bytes a caller sends, as their number or as a connected line's, framed in
    any two chunks: the events before and after theirs arrive intact, and nothing else
    names a call but the caller's own."""
    hostile = newchannel(b"5551234", connected=number) if connected_line else newchannel(number)
    data = hangup("1796640400.1") + hostile + hangup("1796640400.3")
    framer = AmiFramer()
    got = events(data[:split], framer) + [parse_event(m) for m in framer.feed(data[split:])]
    hangups = [e for e in got if isinstance(e, Hangup)]
    assert [h.uniqueid for h in hangups] == ["1796640400.1", "1796640400.3"]
    others = [e for e in got if not isinstance(e, Hangup)]
    assert all(isinstance(e, Newchannel) and e.uniqueid == "1796640466.2"
               and e.channel == "PJSIP/anonymous-00000002" for e in others), others


# --------------------------------------------------------------------------- the AGI environment

ENVIRONMENT_BEFORE = (b"agi_network: yes\nagi_network_script: ivr\n"
                      b"agi_request: agi://127.0.0.1:4573/ivr\n"
                      b"agi_channel: PJSIP/anonymous-00000002\nagi_language: en\n"
                      b"agi_type: PJSIP\nagi_uniqueid: 1796640466.2\nagi_version: 22.1.0\n")
ENVIRONMENT_AFTER = (b"agi_calleridname: x\nagi_callingpres: 0\nagi_callingani2: 0\n"
                     b"agi_callington: 0\nagi_callingtns: 0\nagi_dnid: 100\n"
                     b"agi_rdnis: unknown\nagi_context: callers\nagi_extension: 100\n"
                     b"agi_priority: 7\nagi_enhanced: 0.0\nagi_accountcode: \n"
                     b"agi_threadid: 140234\nagi_arg_1: x <556>\n\n")


def environment(number: bytes) -> bytes:
    return ENVIRONMENT_BEFORE + b"agi_callerid: " + number + b"\n" + ENVIRONMENT_AFTER


def test_a_clean_environment_still_parses() -> None:
    [env] = AgiConnection().feed(environment(b"556"))
    assert isinstance(env, AgiEnvironment)
    assert (env.callerid, env.args) == ("556", ("x <556>",))


@pytest.mark.parametrize("number", [
    b"556\nagi_uniqueid: 1796640466.0",  # another call's identity
    b"556\nagi_network_script: agent",  # another route
    b"556\nagi_extension: 999",
    b"556\n\n200 result=0",  # the environment cut short: the rest reads as garbage
])
def test_an_environment_a_caller_id_broke_is_refused(number: bytes) -> None:
    with pytest.raises(AgiProtocolError):
        AgiConnection().feed(environment(number))


@settings(max_examples=400, deadline=None)
@given(number=st.one_of(
    hostile_caller_ids,
    st.lists(st.sampled_from((b"\n", b"agi_uniqueid: 1.9", b"agi_network_script: agent",
                              b"agi_arg_1: z", b"agi_x: y", b"HANGUP", b"200 result=0")),
             max_size=8).map(b"".join).map(lambda b: b[:PJSIP_CALLER_ID_BYTES])))
def test_no_caller_id_changes_which_call_or_script_an_agi_session_is(number: bytes) -> None:
    connection = AgiConnection()
    try:
        items = connection.feed(environment(number))
    except AgiError:
        return  # refused: the dialplan's fallback takes the caller
    [env] = [item for item in items if isinstance(item, AgiEnvironment)]
    assert (env.channel, env.uniqueid, env.path) == (
        "PJSIP/anonymous-00000002", "1796640466.2", "ivr")
    assert (env.context, env.extension, env.calleridname) == ("callers", "100", "x")
    assert env.args[0] == "x <556>"


# --------------------------------------------------------------------------- cleaning rules


def test_the_dialplan_and_the_core_clean_a_number_alike() -> None:
    assert confgen.CALLER_NUMBER_ALLOWED == "0-9A-Za-z+*#.\\-"
    allowed = re.compile(r"[0-9A-Za-z+*#.\-]")
    every_byte = "".join(chr(code) for code in range(1, 256))
    assert clean_number(every_byte) == "".join(allowed.findall(every_byte))[:40]
    assert confgen.CALLER_NUMBER_MAX == 40 and confgen.CALLER_NAME_MAX == 80
    assert confgen.CALLER_NAME_ALLOWED == "\\x20-\\x7e\\x80-\\xff"


@pytest.mark.parametrize(("number", "expected"), [
    ("556\r\n\r\n200 result=0", "556200result0"),
    ("5:6", "56"), ("+1 555-0100", "+1555-0100"), ("<unknown>", None), ("\r\n", None),
    ("1" * 79, "1" * 40),
])
def test_a_number_keeps_digits_letters_and_dial_characters(number: str,
                                                           expected: str | None) -> None:
    assert clean_number(number) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ('O\\"Brien', 'O"Brien'), ("O'Brien \\\\ back", "O'Brien \\ back"),
    ("Jos\ufffd", "Jos\ufffd"), ("a\tb\x7fc", "abc"), ("N" * 300, "N" * 80),
    ("a:b;c,d(e)", "a:b;c,d(e)"),
])
def test_a_name_is_what_the_caller_sent_without_control_characters(name: str,
                                                                    expected: str) -> None:
    assert clean_name(name) == expected


def test_asterisk_c_escaping_is_undone_once() -> None:
    assert unescape_c('O\\\\\\"Brien') == 'O\\"Brien'
    assert unescape_c("a\\r\\nb\\q\\") == "a\r\nb\\q\\"


def test_the_raw_caller_id_is_kept_escaped_and_whole() -> None:
    raw = raw_caller_id('O\\"Brien', "556\r\n\r\n200 result=0")
    assert raw == "O%5C%22Brien <556%0D%0A%0D%0A200%20result%3D0>"
    assert re.fullmatch(r"[A-Za-z0-9%._~!*'()-]* <[A-Za-z0-9%._~!*'()-]*>", raw)


def test_a_caller_whose_newchannel_was_dropped_is_tracked_from_the_cleaned_caller_id() -> None:
    """The record of a hostile caller does not wait for the FastAGI session: the dialplan's
    first Set(CALLERID(num)) sends a NewCallerid with the cleaned number."""
    cleaned = newchannel(b"556200result0").replace(b"Event: Newchannel", b"Event: NewCallerid")
    hostile = newchannel(b"556\r\n\r\n200 result=0")
    ledger = CallLedger()
    results = [ledger.on_event(event, 5.0) for event in events(hostile + cleaned + cleaned)]
    assert [len(result.save) for result in results] == [1, 0]  # one record, made once
    record = ledger.get("1796640466.2")
    assert record is not None
    assert (record.started_at, record.channel, record.caller_number, record.caller_name,
            record.caller_id_raw) == (1796640466.775181, "PJSIP/anonymous-00000002",
                                      "556200result0", "x", None)


def test_the_record_takes_the_fastagi_channel_and_cleaned_caller_id_over_amis() -> None:
    ledger = CallLedger()
    [newchannel_event] = events(newchannel(b"5:6", name=b'O\\\\\\"Brien'))
    ledger.on_event(newchannel_event, 1.0)
    record = ledger.get("1796640466.2")
    assert record is not None
    assert (record.caller_number, record.caller_name) == ("56", 'O"Brien')
    assert record.caller_id_raw == 'O%5C%22Brien <5%3A6>'
    ledger.handler_started("1796640466.2", channel="PJSIP/anonymous-00000002",
                           caller_number="56", caller_name='O\\"Brien', dialed_number="100",
                           now=2.0, caller_id_raw='O%5C%22Brien <5%3A6>')
    assert (record.channel, record.caller_number, record.caller_name) == (
        "PJSIP/anonymous-00000002", "56", 'O"Brien')


# --------------------------------------------------------------------------- the SIPp caller


def test_a_sipp_caller_sends_raw_bytes_percent_encoded_and_names_as_quoted_strings() -> None:
    from tests.support.sipp import CallerPlan, caller_scenario

    scenario = caller_scenario(CallerPlan(from_user=b"556\r\n\xff;a b", display_name=b'O"B\\\xe9',
                                          diversion_user=b"1\r\n"))
    assert ('From: "O\\"B\\\\\xe9" <sip:556%0D%0A%FF%3Ba%20b@[local_ip]:[local_port]>'
            in scenario)
    assert "Diversion: <sip:1%0D%0A@[local_ip]>;reason=unconditional" in scenario
    assert scenario.encode("iso-8859-1").count(b"\xe9") == scenario.count("\xe9")
    for bad in (b"a\r\nb", b"[x]", b"\x00"):
        with pytest.raises(ValueError, match="display_name"):
            CallerPlan(display_name=bad)
