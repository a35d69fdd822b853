"""AMI bytes → panoramisk Messages → typed events, on recorded-like Asterisk 22 sessions."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from panoramisk.message import Message

from callcenter.asterisk.ami import AmiFramer, AmiProtocolError
from callcenter.asterisk.events import (
    AmiEvent,
    BridgeEnter,
    BridgeLeave,
    ContactList,
    ContactListComplete,
    ContactStatus,
    CoreShowChannel,
    CoreShowChannelsComplete,
    DialBegin,
    DialEnd,
    DTMFEnd,
    FullyBooted,
    Hangup,
    Hold,
    MusicOnHoldStart,
    MusicOnHoldStop,
    Newchannel,
    Newstate,
    OtherEvent,
    OutsideLegEnded,
    Reload,
    Shutdown,
    Unhold,
    parse_event,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"
CALLER = "PJSIP/caller-00000001"
CALLER_ID = "1732822000.1"
AGENT = "PJSIP/agent1-00000002"
AGENT_ID = "1732822009.2"
BRIDGE = "3e6f1c2a-5b1d-4c55-9d43-0d5a7f1e2b11"


def wire(name: str) -> bytes:
    """A fixture as Asterisk sends it: CRLF line ends, UTF-8."""
    return (FIXTURES / name).read_text(encoding="utf-8").replace("\n", "\r\n").encode("utf-8")


def messages_of(data: bytes, chunks: list[int] | None = None) -> list[Message]:
    framer = AmiFramer()
    if chunks is None:
        return framer.feed(data)
    messages: list[Message] = []
    start = 0
    for end in [*chunks, len(data)]:
        messages += framer.feed(data[start:end])
        start = end
    return messages


def events_of(messages: list[Message]) -> list[AmiEvent]:
    return [parse_event(m) for m in messages if "event" in m]


INBOUND_CALL_EVENTS: list[AmiEvent] = [
    FullyBooted(timestamp=None),
    Newchannel(
        timestamp=1732822000.101512, uniqueid=CALLER_ID, linkedid=CALLER_ID, channel=CALLER,
        caller_number="0612345678", caller_name="Jérôme Durand", context="from-callers",
        exten="100", state="Down",
    ),
    Newstate(timestamp=1732822000.102044, uniqueid=CALLER_ID, linkedid=CALLER_ID,
             channel=CALLER, state="Ring"),
    OtherEvent(name="Newexten", timestamp=1732822000.102311, headers={}),  # headers checked apart
    Newstate(timestamp=1732822000.154820, uniqueid=CALLER_ID, linkedid=CALLER_ID,
             channel=CALLER, state="Up"),
    MusicOnHoldStart(timestamp=1732822009.5001, uniqueid=CALLER_ID, channel=CALLER,
                     moh_class="default"),
    Newchannel(
        timestamp=1732822009.6002, uniqueid=AGENT_ID, linkedid=CALLER_ID, channel=AGENT,
        caller_number="agent1", caller_name="Alice", context="agents", exten="s", state="Down",
    ),
    DialBegin(timestamp=1732822009.60095, uniqueid=CALLER_ID, linkedid=CALLER_ID,
              channel=CALLER, dest_uniqueid=AGENT_ID, dest_channel=AGENT, dial_string="agent1"),
    Newstate(timestamp=1732822009.65, uniqueid=AGENT_ID, linkedid=CALLER_ID, channel=AGENT,
             state="Ringing"),
    Newstate(timestamp=1732822011.01, uniqueid=AGENT_ID, linkedid=CALLER_ID, channel=AGENT,
             state="Up"),
    DialEnd(timestamp=1732822011.012, uniqueid=CALLER_ID, linkedid=CALLER_ID, channel=CALLER,
            dest_uniqueid=AGENT_ID, dest_channel=AGENT, dial_status="ANSWER"),
    MusicOnHoldStop(timestamp=1732822011.013, uniqueid=CALLER_ID, channel=CALLER),
    OtherEvent(name="BridgeCreate", timestamp=1732822011.014, headers={}),
    BridgeEnter(timestamp=1732822011.015, bridge_uniqueid=BRIDGE, uniqueid=AGENT_ID,
                linkedid=CALLER_ID, channel=AGENT),
    BridgeEnter(timestamp=1732822011.0155, bridge_uniqueid=BRIDGE, uniqueid=CALLER_ID,
                linkedid=CALLER_ID, channel=CALLER),
    BridgeLeave(timestamp=1732822075.4, bridge_uniqueid=BRIDGE, uniqueid=AGENT_ID,
                linkedid=CALLER_ID, channel=AGENT),
    Hangup(timestamp=1732822075.401, uniqueid=AGENT_ID, linkedid=CALLER_ID, channel=AGENT,
           cause=16, cause_text="Normal Clearing"),
    BridgeLeave(timestamp=1732822075.402, bridge_uniqueid=BRIDGE, uniqueid=CALLER_ID,
                linkedid=CALLER_ID, channel=CALLER),
    Hangup(timestamp=1732822075.41, uniqueid=CALLER_ID, linkedid=CALLER_ID, channel=CALLER,
           cause=16, cause_text="Normal Clearing"),
]


def without_other_headers(events: list[AmiEvent]) -> list[AmiEvent]:
    return [
        OtherEvent(name=e.name, timestamp=e.timestamp, headers={})
        if isinstance(e, OtherEvent) else e
        for e in events
    ]


def test_an_inbound_call_to_an_agent_parses_into_typed_events() -> None:
    messages = messages_of(wire("inbound_call.txt"))
    assert messages[0]["Response"] == "Success"  # the login answer comes through as a Message
    events = events_of(messages)
    assert without_other_headers(events) == INBOUND_CALL_EVENTS
    newexten = events[3]
    assert isinstance(newexten, OtherEvent)
    assert newexten.headers["Application"] == "Answer"
    assert newexten.headers["AppData"] == ""
    assert newexten.headers["AccountCode"] == ""


def test_byte_by_byte_feeding_gives_the_same_events_even_inside_utf8_characters() -> None:
    data = wire("inbound_call.txt")
    assert events_of(messages_of(data, list(range(1, len(data))))) == events_of(messages_of(data))


def test_a_snapshot_parses_the_same_whatever_the_split() -> None:
    data = wire("core_show_channels.txt")
    whole = events_of(messages_of(data))
    for split in range(len(data) + 1):
        assert events_of(messages_of(data, [split])) == whole, f"split at byte {split}"


def test_a_core_show_channels_answer_gives_snapshot_channels() -> None:
    messages = messages_of(wire("core_show_channels.txt"))
    assert messages[0]["EventList"] == "start"
    assert events_of(messages) == [
        CoreShowChannel(
            uniqueid=CALLER_ID, linkedid=CALLER_ID, channel=CALLER, context="from-callers",
            exten="100", state="Up", application="Queue", application_data="sales,t,,,600",
            duration_seconds=3725, bridge_id=BRIDGE,
        ),
        CoreShowChannel(
            uniqueid="1732822050.3", linkedid="1732822050.3", channel="PJSIP/caller-00000003",
            context="from-callers", exten="100", state="Up", application="AGI",
            application_data="agi://127.0.0.1:4573/ivr", duration_seconds=7, bridge_id="",
        ),
        CoreShowChannelsComplete(listed=2),
    ]


def test_system_events_are_typed() -> None:
    assert events_of(messages_of(wire("system.txt"))) == [
        FullyBooted(),
        Reload(timestamp=1732822100.000001, module="app_queue.so", status="0"),
        Shutdown(timestamp=1732822200.5, shutdown="Cleanly", restart="True"),
    ]


# Recorded on the sandboxed Asterisk 22: agent2's phone registers, PJSIPShowContacts lists it,
# the phone unregisters, PJSIPShowContacts finds nothing. An empty header is "Name: " and a line
# end: written "Name: \n" here so that no editor strips the space.
REGISTRATION_SESSION = """\
Asterisk Call Manager/11.0.0
Event: ContactStatus
Privilege: system,all
Timestamp: 1795917484.722317
URI: sip:agent2@127.0.0.1:55015
ContactStatus: NonQualified
AOR: agent2
EndpointName: agent2
RoundtripUsec: 0

Response: Success
ActionID: snap2
EventList: start
Message: A listing of Contacts follows, presented as ContactList events

Event: ContactList
ActionID: snap2
ObjectType: contact
ObjectName: agent2;@b77bbdc5d827241f429a87b796c22530
ViaAddr: 127.0.0.1
QualifyTimeout: 3.000000
Qualify2xxOnly: false
CallId: 1-31834@127.0.0.1
RegServer: \nPruneOnBoot: no
Path: \nEndpoint: agent2
ViaPort: 55015
AuthenticateQualify: no
Uri: sip:agent2@127.0.0.1:55015
QualifyFrequency: 0
UserAgent: probe-phone
ExpirationTime: 1795917784
OutboundProxy: \nStatus: NonQualified
RoundtripUsec: N/A

Event: ContactListComplete
ActionID: snap2
EventList: Complete
ListItems: 1

Event: ContactStatus
Privilege: system,all
Timestamp: 1795917492.744399
URI: sip:agent2@127.0.0.1:55015
ContactStatus: Removed
AOR: agent2
EndpointName: agent2
RoundtripUsec: 0

Response: Error
ActionID: snap3
Message: No Contacts found

"""


def test_a_phone_registering_and_leaving_gives_contact_events_and_a_contact_list() -> None:
    data = REGISTRATION_SESSION.replace("\n", "\r\n").encode()
    messages = messages_of(data)
    assert [m.get("Response") for m in messages if "event" not in m] == ["Success", "Error"]
    events = events_of(messages)
    assert events == [
        ContactStatus(timestamp=1795917484.722317, aor="agent2",
                      uri="sip:agent2@127.0.0.1:55015", status="NonQualified",
                      endpoint="agent2", roundtrip_usec=0),
        ContactList(object_name="agent2;@b77bbdc5d827241f429a87b796c22530",
                    endpoint="agent2", uri="sip:agent2@127.0.0.1:55015",
                    status="NonQualified", roundtrip_usec=None,
                    expiration_time=1795917784, user_agent="probe-phone"),
        ContactListComplete(listed=1),
        ContactStatus(timestamp=1795917492.744399, aor="agent2",
                      uri="sip:agent2@127.0.0.1:55015", status="Removed",
                      endpoint="agent2", roundtrip_usec=0),
    ]
    listed = events[1]
    assert isinstance(listed, ContactList)
    assert listed.aor == "agent2"


def test_a_qualified_contact_reports_its_round_trip_and_a_contact_id_names_its_aor(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    reachable = parse_event({"Event": "ContactStatus", "URI": "sip:agent1@192.0.2.7:5062;ob",
                             "ContactStatus": "Reachable", "AOR": "agent1",
                             "EndpointName": "agent1", "RoundtripUsec": "1873"})
    assert reachable == ContactStatus(aor="agent1", uri="sip:agent1@192.0.2.7:5062;ob",
                                      status="Reachable", endpoint="agent1",
                                      roundtrip_usec=1873)
    broken = parse_event({"Event": "ContactStatus", "AOR": "agent1", "RoundtripUsec": "fast"})
    assert isinstance(broken, ContactStatus) and broken.roundtrip_usec is None
    assert [r.getMessage() for r in caplog.records] == [
        "AMI ContactStatus: header roundtripusec is not a number: 'fast'"]
    static = parse_event({"Event": "ContactList", "ObjectName": "agent1@@5f0a1b",
                          "ExpirationTime": "0"})
    assert isinstance(static, ContactList)
    assert (static.aor, static.endpoint, static.expiration_time) == ("agent1", "", 0)
    assert parse_event({"Event": "ContactList", "ObjectName": "plain"}).aor == "plain"  # type: ignore[union-attr]


def test_a_message_with_garbage_is_dropped_whole_and_bad_values_become_none_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A line that is not ``Key: value`` is what a caller ID with a line break leaves behind:
    the message it sits in is untrusted and dropped whole, not parsed around it."""
    caplog.set_level(logging.WARNING)
    framer = AmiFramer(warning_interval=0)
    messages = framer.feed(wire("garbage.txt"))
    events = events_of(messages)
    assert framer.garbage_lines == 4
    # Dropped: the Hangup with a line without a colon, the block of noise, the block without
    # Event, the Newchannel with a line without a key.
    assert framer.untrusted_messages == 4
    channel, other = events
    assert isinstance(channel, CoreShowChannel)
    assert channel.duration_seconds is None
    assert channel.linkedid == "" and channel.bridge_id == ""
    assert channel.application_data == ""  # no ApplicationData header: empty, as other text
    assert isinstance(other, OtherEvent)
    assert other.name == "QueueCallerJoin"
    assert other.headers["Queue"] == "sales"
    assert other.headers["ChanVariable"] == ("IVR_CHOICE=2", "LANG=fr")
    hangup = parse_event({"Event": "Hangup", "Timestamp": "yesterday", "Cause": "sixteen",
                          "Channel": "PJSIP/caller-00000009", "Uniqueid": "1732822090.9",
                          "Linkedid": "1732822090.9", "Cause-txt": "Normal Clearing"})
    assert hangup == Hangup(
        timestamp=None, uniqueid="1732822090.9", linkedid="1732822090.9",
        channel="PJSIP/caller-00000009", cause=None, cause_text="Normal Clearing",
    )
    bare = parse_event({"Event": "Newchannel", "Channel": "PJSIP/bare-00000013",
                        "Timestamp": "nan"})
    assert bare == Newchannel(
        timestamp=None, uniqueid="", linkedid="", channel="PJSIP/bare-00000013",
        caller_number="", caller_name="", context="", exten="", state="",
    )
    warnings = [r.getMessage() for r in caplog.records]
    assert "AMI Hangup: header Timestamp is not POSIX seconds: 'yesterday'" in warnings
    assert "AMI Hangup: header cause is not a number: 'sixteen'" in warnings
    assert "AMI CoreShowChannel: header Duration is not HH:MM:SS: '1:2'" in warnings
    assert "AMI Newchannel: header Timestamp is not POSIX seconds: 'nan'" in warnings
    assert any("neither Event nor Response" in w for w in warnings)
    assert any("not 'Key: value'" in w for w in warnings)


def test_parse_event_accepts_a_plain_mapping_and_any_case_of_names() -> None:
    event = parse_event({"event": "hangup", "UNIQUEID": "1.2", "cause": "17"})
    assert event == Hangup(uniqueid="1.2", linkedid="", channel="", cause=17, cause_text="")
    assert event.name == "Hangup"


def test_a_repeated_header_keeps_its_last_value_in_a_typed_field() -> None:
    event = parse_event(Message({"Event": "Newstate", "Uniqueid": ["1.1", "1.2"]}))
    assert isinstance(event, Newstate)
    assert event.uniqueid == "1.2"


def test_events_are_frozen_records() -> None:
    event = parse_event({"Event": "Hangup", "Uniqueid": "1.1"})
    with pytest.raises(AttributeError):
        event.uniqueid = "2.2"  # type: ignore[misc,union-attr]
    other = parse_event({"Event": "VarSet", "Variable": "X"})
    assert isinstance(other, OtherEvent)
    with pytest.raises(TypeError):
        other.headers["Variable"] = "Y"  # type: ignore[index]


def test_the_banner_must_come_first() -> None:
    with pytest.raises(AmiProtocolError, match="not an Asterisk manager"):
        AmiFramer().feed(b"SSH-2.0-OpenSSH_9.2\r\n")
    framer = AmiFramer()
    assert framer.feed(b"Asterisk Call Manager/9.0.0\r\n") == []
    assert framer.version == "9.0.0"


def test_lines_and_messages_are_bounded() -> None:
    framer = AmiFramer(max_line_chars=100, max_message_chars=1000)
    framer.feed(b"Asterisk Call Manager/9.0.0\r\n")
    with pytest.raises(AmiProtocolError, match="line longer than 100"):
        framer.feed(b"Event: " + b"x" * 200)
    framer = AmiFramer(max_line_chars=100, max_message_chars=1000)
    framer.feed(b"Asterisk Call Manager/9.0.0\r\nEvent: Flood\r\n")
    with pytest.raises(AmiProtocolError, match="message longer than 1000"):
        for index in range(100):
            framer.feed(f"Header{index}: value\r\n".encode())


def test_bare_newlines_are_accepted_too() -> None:
    data = (FIXTURES / "system.txt").read_bytes()
    assert events_of(messages_of(data)) == events_of(messages_of(wire("system.txt")))


@given(st.binary(max_size=400))
def test_arbitrary_bytes_after_the_banner_never_break_framing_or_parsing(data: bytes) -> None:
    framer = AmiFramer(max_line_chars=200)
    try:
        messages = framer.feed(b"Asterisk Call Manager/9.0.0\r\n" + data + b"\r\n\r\n")
    except AmiProtocolError:
        return
    for message in messages:
        if "event" in message:
            assert parse_event(message).name is not None


@given(
    st.dictionaries(
        st.sampled_from(
            ["Event", "Uniqueid", "Linkedid", "Cause", "Timestamp", "Duration", "ListItems",
             "Channel", "DestUniqueid", "Class", "RoundtripUsec", "ExpirationTime", "AOR",
             "ObjectName"]
        ),
        st.text(max_size=20),
    ),
    st.sampled_from(["Hangup", "CoreShowChannel", "CoreShowChannelsComplete", "DialEnd",
                     "ContactStatus", "ContactList", "ContactListComplete", "X"]),
)
def test_parse_event_never_raises_on_any_header_values(
    headers: dict[str, str], name: str
) -> None:
    event = parse_event(Message({**headers, "Event": name}))
    assert event.name == name


def test_framed_messages_equal_those_of_panoramisks_own_constructor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from callcenter.asterisk import ami

    data = wire("inbound_call.txt") + wire("garbage.txt").split(b"\r\n", 1)[1]
    fast = messages_of(data)
    monkeypatch.setattr(ami, "_FAST_MESSAGES", False)
    slow = messages_of(data)
    assert [dict(m.items()) for m in fast] == [dict(m.items()) for m in slow]
    assert all(m["uniqueid"] == m["UNIQUEID"] for m in fast if "uniqueid" in m)
    assert events_of(fast) == events_of(slow)


def test_a_key_pressed_on_a_channel_is_typed_with_its_direction() -> None:
    event = parse_event({"Event": "DTMFEnd", "Channel": CALLER, "Uniqueid": CALLER_ID,
                         "Digit": "1", "DurationMs": "120", "Direction": "Received"})
    assert event == DTMFEnd(uniqueid=CALLER_ID, channel=CALLER, digit="1",
                            direction="Received")


def test_a_phone_holding_and_unholding_gives_typed_hold_events() -> None:
    """Asterisk 22's Hold/Unhold (AMI_Events/Hold): raised on the channel whose phone sent
    the re-INVITE; MusicClass and the channel snapshot's other headers are not needed."""
    held = parse_event({"Event": "Hold", "Channel": "PJSIP/agent1-00000002",
                        "Uniqueid": "1732822000.2", "Linkedid": "1732822000.1",
                        "MusicClass": "default", "Timestamp": "1732822010.250000"})
    assert held == Hold(timestamp=1732822010.25, uniqueid="1732822000.2",
                        linkedid="1732822000.1", channel="PJSIP/agent1-00000002")
    unheld = parse_event({"Event": "Unhold", "Channel": "PJSIP/agent1-00000002",
                          "Uniqueid": "1732822000.2", "Linkedid": "1732822000.1"})
    assert unheld == Unhold(uniqueid="1732822000.2", linkedid="1732822000.1",
                            channel="PJSIP/agent1-00000002")


def test_the_outbound_contexts_user_event_is_a_typed_outside_leg_and_others_are_not() -> None:
    event = parse_event({"Event": "UserEvent", "UserEvent": "CallcenterOutsideLeg",
                         "Uniqueid": "1.9", "Linkedid": "1.1", "Number": "+5511999990000",
                         "DialStatus": "ANSWER", "AnsweredMs": "42500",
                         "Timestamp": "1800000060.000000"})
    assert event == OutsideLegEnded(timestamp=1_800_000_060.0, uniqueid="1.9", linkedid="1.1",
                                    number="+5511999990000", dial_status="ANSWER",
                                    answered_ms=42_500)
    # Not answered: Asterisk leaves ANSWEREDTIME_MS empty.
    unanswered = parse_event({"Event": "UserEvent", "UserEvent": "CallcenterOutsideLeg",
                              "DialStatus": "BUSY", "AnsweredMs": ""})
    assert isinstance(unanswered, OutsideLegEnded) and unanswered.answered_ms is None
    other = parse_event({"Event": "UserEvent", "UserEvent": "SomethingElse", "X": "1"})
    assert isinstance(other, OtherEvent) and other.headers["X"] == "1"
