"""AMI events as typed, frozen records, built once at the boundary by ``parse_event``.

Conventions: a missing header gives ``""`` for text fields and ``None`` for numbers. A
malformed value (a non-numeric Cause, a bad Timestamp, a Duration that is not HH:MM:SS) never
raises: it is logged as a warning naming the event and the header, and the field is None.
A header Asterisk repeated keeps its last value in text fields (the framer already dropped
any message whose identity headers repeat). Every event has ``name`` and ``timestamp`` (the
``Timestamp:`` header of ``timestampevents=yes``; None if absent). Caller ID names arrive
C-escaped by Asterisk (``O\\"Brien`` for ``O"Brien``) and are unescaped here, once.

``parse_event`` is on the hot path: one dict lookup on the event name picks the builder,
which reads the headers straight from panoramisk's case-insensitive store; no regexes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

logger = logging.getLogger(__name__)

# panoramisk's CaseInsensitiveDict keeps {lowercased key: (key as sent, value)} in _store.
_Store = Mapping[str, tuple[str, Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class FullyBooted:
    name: ClassVar[str] = "FullyBooted"
    timestamp: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Newchannel:
    name: ClassVar[str] = "Newchannel"
    timestamp: float | None = None
    uniqueid: str
    linkedid: str
    channel: str
    caller_number: str
    caller_name: str
    context: str
    exten: str
    state: str  # ChannelStateDesc: "Down", "Ring", "Ringing", "Up", ...


@dataclass(frozen=True, slots=True, kw_only=True)
class NewCallerid:
    """A channel's caller ID changed: for a caller, the dialplan has just cleaned it. The
    first event a hostile caller's channel can be trusted by (its Newchannel held the raw
    caller ID and was dropped)."""

    name: ClassVar[str] = "NewCallerid"
    timestamp: float | None = None
    uniqueid: str
    linkedid: str
    channel: str
    caller_number: str
    caller_name: str
    context: str
    exten: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Newstate:
    name: ClassVar[str] = "Newstate"
    timestamp: float | None = None
    uniqueid: str
    linkedid: str
    channel: str
    state: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup:
    name: ClassVar[str] = "Hangup"
    timestamp: float | None = None
    uniqueid: str
    linkedid: str
    channel: str
    cause: int | None  # Q.850 cause, e.g. 16 normal clearing, 17 busy, 19 no answer
    cause_text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DialBegin:
    name: ClassVar[str] = "DialBegin"
    timestamp: float | None = None
    uniqueid: str  # the caller; "" when the dial has no calling channel (an Originate)
    linkedid: str
    channel: str
    dest_uniqueid: str
    dest_channel: str
    dial_string: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DialEnd:
    name: ClassVar[str] = "DialEnd"
    timestamp: float | None = None
    uniqueid: str
    linkedid: str
    channel: str
    dest_uniqueid: str
    dest_channel: str
    dial_status: str  # ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL, ...


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeEnter:
    name: ClassVar[str] = "BridgeEnter"
    timestamp: float | None = None
    bridge_uniqueid: str
    uniqueid: str
    linkedid: str
    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeLeave:
    name: ClassVar[str] = "BridgeLeave"
    timestamp: float | None = None
    bridge_uniqueid: str
    uniqueid: str
    linkedid: str
    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MusicOnHoldStart:
    name: ClassVar[str] = "MusicOnHoldStart"
    timestamp: float | None = None
    uniqueid: str
    channel: str
    moh_class: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MusicOnHoldStop:
    name: ClassVar[str] = "MusicOnHoldStop"
    timestamp: float | None = None
    uniqueid: str
    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold:
    """A channel's phone put the other party on hold (a SIP re-INVITE with sendonly or
    inactive): raised on the channel whose phone asked, Asterisk 12+."""

    name: ClassVar[str] = "Hold"
    timestamp: float | None = None
    uniqueid: str
    linkedid: str
    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Unhold:
    """That phone took the other party off hold (sendrecv again)."""

    name: ClassVar[str] = "Unhold"
    timestamp: float | None = None
    uniqueid: str
    linkedid: str
    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreShowChannel:
    """One channel of a CoreShowChannels snapshot."""

    name: ClassVar[str] = "CoreShowChannel"
    timestamp: float | None = None
    uniqueid: str
    linkedid: str
    channel: str
    context: str
    exten: str
    state: str
    application: str
    application_data: str  # the application's arguments, e.g. "sales,t,,,600" for Queue
    duration_seconds: int | None  # from "HH:MM:SS"
    bridge_id: str  # "" when not in a bridge


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreShowChannelsComplete:
    name: ClassVar[str] = "CoreShowChannelsComplete"
    timestamp: float | None = None
    listed: int | None  # ListItems


@dataclass(frozen=True, slots=True, kw_only=True)
class Reload:
    name: ClassVar[str] = "Reload"
    timestamp: float | None = None
    module: str
    status: str  # Asterisk 22 sends a number: "0" success, "2" not found, "3" error, ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Shutdown:
    name: ClassVar[str] = "Shutdown"
    timestamp: float | None = None
    shutdown: str  # "Cleanly" or "Uncleanly"
    restart: str  # "True" or "False"


@dataclass(frozen=True, slots=True, kw_only=True)
class SoftHangupRequest:
    """Something asked Asterisk to hang a channel up; ``cause`` is the soft-hangup bit set."""

    name: ClassVar[str] = "SoftHangupRequest"
    timestamp: float | None = None
    uniqueid: str
    linkedid: str
    channel: str
    cause: int | None  # bit 4: Asterisk is shutting down (AST_SOFTHANGUP_SHUTDOWN)

    @property
    def asterisk_shutting_down(self) -> bool:
        return self.cause is not None and bool(self.cause & 4)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceStateChange:
    """A device's state; also each entry of a DeviceStateList answer."""

    name: ClassVar[str] = "DeviceStateChange"
    timestamp: float | None = None
    device: str  # e.g. "PJSIP/agent1"
    state: str  # NOT_INUSE, INUSE, BUSY, INVALID, UNAVAILABLE, RINGING, RINGINUSE, ONHOLD, UNKNOWN


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactStatus:
    """A PJSIP contact changed: a phone registered, refreshed, went away or was qualified."""

    name: ClassVar[str] = "ContactStatus"
    timestamp: float | None = None
    aor: str  # our aor, endpoint and agent share one name
    uri: str  # the contact, e.g. "sip:agent1@192.0.2.7:5062;ob"
    status: str  # Created, Updated, Removed, Reachable, Unreachable, Unknown, NonQualified
    endpoint: str  # EndpointName; "" when Asterisk does not know it (a static contact)
    roundtrip_usec: int | None  # the last qualify's round trip; None when not measured


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactList:
    """One contact of a PJSIPShowContacts answer (registered contacts)."""

    name: ClassVar[str] = "ContactList"
    timestamp: float | None = None
    object_name: str  # the contact's id: "<aor>;@<hash>" for a registration
    endpoint: str
    uri: str
    status: str  # Reachable, Unreachable, NonQualified, Unknown
    roundtrip_usec: int | None
    expiration_time: int | None  # POSIX seconds when the registration runs out
    user_agent: str

    @property
    def aor(self) -> str:
        """The aor the contact belongs to, from its id."""
        for separator in (";@", "@@"):
            if separator in self.object_name:
                return self.object_name.split(separator, 1)[0]
        return self.object_name


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactListComplete:
    name: ClassVar[str] = "ContactListComplete"
    timestamp: float | None = None
    listed: int | None  # ListItems


@dataclass(frozen=True, slots=True, kw_only=True)
class DTMFEnd:
    """A key press ended on a channel (a caller pressing a key while waiting in a queue)."""

    name: ClassVar[str] = "DTMFEnd"
    timestamp: float | None = None
    uniqueid: str
    channel: str
    digit: str
    direction: str  # "Received": from the phone; "Sent": towards it


# The UserEvent the generated outbound context sends when a call the IVR placed for a caller
# (a transfer out, features/ivr/transfer_out.py) is over (confgen.outbound_dialplan).
OUTSIDE_LEG_EVENT = "CallcenterOutsideLeg"


@dataclass(frozen=True, slots=True, kw_only=True)
class OutsideLegEnded:
    """A transfer out of the IVR ended, as its Local channel's Dial() timed it: the number
    dialled, DIALSTATUS, and ANSWEREDTIME_MS (answer to hangup, 0 when nobody answered)."""

    name: ClassVar[str] = OUTSIDE_LEG_EVENT
    timestamp: float | None = None
    uniqueid: str  # the Local channel's
    linkedid: str  # the caller's call
    number: str
    dial_status: str
    answered_ms: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OtherEvent:
    """Any event we have no type for. Header names as Asterisk sent them; a repeated header
    is a tuple of its values."""

    name: str
    timestamp: float | None = None
    headers: Mapping[str, str | tuple[str, ...]]


AmiEvent = (
    FullyBooted
    | DeviceStateChange
    | ContactStatus
    | ContactList
    | ContactListComplete
    | DTMFEnd
    | SoftHangupRequest
    | Newchannel
    | NewCallerid
    | Newstate
    | Hangup
    | DialBegin
    | DialEnd
    | BridgeEnter
    | BridgeLeave
    | MusicOnHoldStart
    | MusicOnHoldStop
    | Hold
    | Unhold
    | CoreShowChannel
    | CoreShowChannelsComplete
    | Reload
    | Shutdown
    | OutsideLegEnded
    | OtherEvent
)


# --------------------------------------------------------------------------- header access


def _text(store: _Store, key: str) -> str:
    pair = store.get(key)
    if pair is None:
        return ""
    value = pair[1]
    if value.__class__ is str:
        return value  # type: ignore[no-any-return]
    return str(value[-1]) if value else ""  # a repeated header: its last value


# manager.c escapes caller ID names with ast_escape_c(): these are the escapes it writes.
_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
              "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}


def unescape_c(text: str) -> str:
    """Undo Asterisk's ast_escape_c() (``\\"`` → ``"``); an unknown escape stays as it is."""
    if "\\" not in text:
        return text
    out: list[str] = []
    position, length = 0, len(text)
    while position < length:
        char = text[position]
        if char == "\\" and position + 1 < length and text[position + 1] in _C_ESCAPES:
            out.append(_C_ESCAPES[text[position + 1]])
            position += 2
            continue
        out.append(char)
        position += 1
    return "".join(out)


def _number(event: str, store: _Store, key: str) -> int | None:
    text = _text(store, key).strip()
    if not text:
        return None
    digits = text[1:] if text[0] == "-" else text
    if digits.isascii() and digits.isdigit():
        return int(text)
    logger.warning("AMI %s: header %s is not a number: %r", event, key, text[:40])
    return None


def _timestamp(event: str, store: _Store) -> float | None:
    text = _text(store, "timestamp")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        logger.warning("AMI %s: header Timestamp is not POSIX seconds: %r", event, text[:40])
        return None
    return value


def _roundtrip(event: str, store: _Store, key: str) -> int | None:
    """A round trip in microseconds; Asterisk writes "N/A" for a contact never qualified."""
    if _text(store, key) == "N/A":
        return None
    return _number(event, store, key)


def _duration(event: str, store: _Store) -> int | None:
    text = _text(store, "duration")
    if not text:
        return None
    parts = text.split(":")
    if len(parts) == 3 and all(p.isascii() and p.isdigit() for p in parts):
        hours, minutes, seconds = (int(p) for p in parts)
        if minutes < 60 and seconds < 60:
            return hours * 3600 + minutes * 60 + seconds
    logger.warning("AMI %s: header Duration is not HH:MM:SS: %r", event, text[:40])
    return None


# --------------------------------------------------------------------------- builders


def _newchannel(name: str, ts: float | None, h: _Store) -> Newchannel:
    return Newchannel(
        timestamp=ts,
        uniqueid=_text(h, "uniqueid"),
        linkedid=_text(h, "linkedid"),
        channel=_text(h, "channel"),
        caller_number=_text(h, "calleridnum"),
        caller_name=unescape_c(_text(h, "calleridname")),
        context=_text(h, "context"),
        exten=_text(h, "exten"),
        state=_text(h, "channelstatedesc"),
    )


def _new_caller_id(name: str, ts: float | None, h: _Store) -> NewCallerid:
    return NewCallerid(
        timestamp=ts,
        uniqueid=_text(h, "uniqueid"),
        linkedid=_text(h, "linkedid"),
        channel=_text(h, "channel"),
        caller_number=_text(h, "calleridnum"),
        caller_name=unescape_c(_text(h, "calleridname")),
        context=_text(h, "context"),
        exten=_text(h, "exten"),
    )


def _newstate(name: str, ts: float | None, h: _Store) -> Newstate:
    return Newstate(
        timestamp=ts,
        uniqueid=_text(h, "uniqueid"),
        linkedid=_text(h, "linkedid"),
        channel=_text(h, "channel"),
        state=_text(h, "channelstatedesc"),
    )


def _hangup(name: str, ts: float | None, h: _Store) -> Hangup:
    return Hangup(
        timestamp=ts,
        uniqueid=_text(h, "uniqueid"),
        linkedid=_text(h, "linkedid"),
        channel=_text(h, "channel"),
        cause=_number(name, h, "cause"),
        cause_text=_text(h, "cause-txt"),
    )


def _dial_begin(name: str, ts: float | None, h: _Store) -> DialBegin:
    return DialBegin(
        timestamp=ts,
        uniqueid=_text(h, "uniqueid"),
        linkedid=_text(h, "linkedid"),
        channel=_text(h, "channel"),
        dest_uniqueid=_text(h, "destuniqueid"),
        dest_channel=_text(h, "destchannel"),
        dial_string=_text(h, "dialstring"),
    )


def _dial_end(name: str, ts: float | None, h: _Store) -> DialEnd:
    return DialEnd(
        timestamp=ts,
        uniqueid=_text(h, "uniqueid"),
        linkedid=_text(h, "linkedid"),
        channel=_text(h, "channel"),
        dest_uniqueid=_text(h, "destuniqueid"),
        dest_channel=_text(h, "destchannel"),
        dial_status=_text(h, "dialstatus"),
    )


def _bridge_enter(name: str, ts: float | None, h: _Store) -> BridgeEnter:
    return BridgeEnter(
        timestamp=ts,
        bridge_uniqueid=_text(h, "bridgeuniqueid"),
        uniqueid=_text(h, "uniqueid"),
        linkedid=_text(h, "linkedid"),
        channel=_text(h, "channel"),
    )


def _bridge_leave(name: str, ts: float | None, h: _Store) -> BridgeLeave:
    return BridgeLeave(
        timestamp=ts,
        bridge_uniqueid=_text(h, "bridgeuniqueid"),
        uniqueid=_text(h, "uniqueid"),
        linkedid=_text(h, "linkedid"),
        channel=_text(h, "channel"),
    )


def _moh_start(name: str, ts: float | None, h: _Store) -> MusicOnHoldStart:
    return MusicOnHoldStart(
        timestamp=ts,
        uniqueid=_text(h, "uniqueid"),
        channel=_text(h, "channel"),
        moh_class=_text(h, "class"),
    )


def _moh_stop(name: str, ts: float | None, h: _Store) -> MusicOnHoldStop:
    return MusicOnHoldStop(timestamp=ts, uniqueid=_text(h, "uniqueid"), channel=_text(h, "channel"))


def _hold(name: str, ts: float | None, h: _Store) -> Hold:
    return Hold(timestamp=ts, uniqueid=_text(h, "uniqueid"), linkedid=_text(h, "linkedid"),
                channel=_text(h, "channel"))


def _unhold(name: str, ts: float | None, h: _Store) -> Unhold:
    return Unhold(timestamp=ts, uniqueid=_text(h, "uniqueid"), linkedid=_text(h, "linkedid"),
                  channel=_text(h, "channel"))


def _core_show_channel(name: str, ts: float | None, h: _Store) -> CoreShowChannel:
    return CoreShowChannel(
        timestamp=ts,
        uniqueid=_text(h, "uniqueid"),
        linkedid=_text(h, "linkedid"),
        channel=_text(h, "channel"),
        context=_text(h, "context"),
        exten=_text(h, "exten"),
        state=_text(h, "channelstatedesc"),
        application=_text(h, "application"),
        application_data=_text(h, "applicationdata"),
        duration_seconds=_duration(name, h),
        bridge_id=_text(h, "bridgeid"),
    )


def _core_show_channels_complete(
    name: str, ts: float | None, h: _Store
) -> CoreShowChannelsComplete:
    return CoreShowChannelsComplete(timestamp=ts, listed=_number(name, h, "listitems"))


def _soft_hangup_request(name: str, ts: float | None, h: _Store) -> SoftHangupRequest:
    return SoftHangupRequest(timestamp=ts, uniqueid=_text(h, "uniqueid"),
                             linkedid=_text(h, "linkedid"), channel=_text(h, "channel"),
                             cause=_number(name, h, "cause"))


def _device_state_change(name: str, ts: float | None, h: _Store) -> DeviceStateChange:
    return DeviceStateChange(timestamp=ts, device=_text(h, "device"), state=_text(h, "state"))


def _contact_status(name: str, ts: float | None, h: _Store) -> ContactStatus:
    return ContactStatus(
        timestamp=ts,
        aor=_text(h, "aor"),
        uri=_text(h, "uri"),
        status=_text(h, "contactstatus"),
        endpoint=_text(h, "endpointname"),
        roundtrip_usec=_roundtrip(name, h, "roundtripusec"),
    )


def _contact_list(name: str, ts: float | None, h: _Store) -> ContactList:
    return ContactList(
        timestamp=ts,
        object_name=_text(h, "objectname"),
        endpoint=_text(h, "endpoint"),
        uri=_text(h, "uri"),
        status=_text(h, "status"),
        roundtrip_usec=_roundtrip(name, h, "roundtripusec"),
        expiration_time=_number(name, h, "expirationtime"),
        user_agent=_text(h, "useragent"),
    )


def _contact_list_complete(name: str, ts: float | None, h: _Store) -> ContactListComplete:
    return ContactListComplete(timestamp=ts, listed=_number(name, h, "listitems"))


def _dtmf_end(name: str, ts: float | None, h: _Store) -> DTMFEnd:
    return DTMFEnd(timestamp=ts, uniqueid=_text(h, "uniqueid"), channel=_text(h, "channel"),
                   digit=_text(h, "digit"), direction=_text(h, "direction"))


def _user_event(name: str, ts: float | None, h: _Store) -> OutsideLegEnded | OtherEvent:
    if _text(h, "userevent") != OUTSIDE_LEG_EVENT:
        return _other(name, ts, h)
    return OutsideLegEnded(timestamp=ts, uniqueid=_text(h, "uniqueid"),
                           linkedid=_text(h, "linkedid"), number=_text(h, "number")[:40],
                           dial_status=_text(h, "dialstatus")[:20],
                           answered_ms=_number(name, h, "answeredms"))


def _other(name: str, ts: float | None, h: _Store) -> OtherEvent:
    headers: dict[str, str | tuple[str, ...]] = {}
    for key, value in h.values():
        if key == "content" and not value:
            continue  # panoramisk adds an empty body to every Message
        headers[key] = value if isinstance(value, str) else tuple(str(v) for v in value)
    return OtherEvent(name=name, timestamp=ts, headers=MappingProxyType(headers))


def _fully_booted(name: str, ts: float | None, h: _Store) -> FullyBooted:
    return FullyBooted(timestamp=ts)


def _reload(name: str, ts: float | None, h: _Store) -> Reload:
    return Reload(timestamp=ts, module=_text(h, "module"), status=_text(h, "status"))


def _shutdown(name: str, ts: float | None, h: _Store) -> Shutdown:
    return Shutdown(timestamp=ts, shutdown=_text(h, "shutdown"), restart=_text(h, "restart"))


_BUILDERS: dict[str, Callable[[str, float | None, _Store], AmiEvent]] = {
    "FullyBooted": _fully_booted,
    "Newchannel": _newchannel,
    "NewCallerid": _new_caller_id,
    "Newstate": _newstate,
    "Hangup": _hangup,
    "DialBegin": _dial_begin,
    "DialEnd": _dial_end,
    "BridgeEnter": _bridge_enter,
    "BridgeLeave": _bridge_leave,
    "MusicOnHoldStart": _moh_start,
    "MusicOnHoldStop": _moh_stop,
    "Hold": _hold,
    "Unhold": _unhold,
    "CoreShowChannel": _core_show_channel,
    "CoreShowChannelsComplete": _core_show_channels_complete,
    "Reload": _reload,
    "Shutdown": _shutdown,
    "DeviceStateChange": _device_state_change,
    "SoftHangupRequest": _soft_hangup_request,
    "ContactStatus": _contact_status,
    "ContactList": _contact_list,
    "ContactListComplete": _contact_list_complete,
    "DTMFEnd": _dtmf_end,
    "UserEvent": _user_event,
}
_BUILDERS_BY_LOWER_NAME = {key.lower(): builder for key, builder in _BUILDERS.items()}


def _store_of(message: Mapping[str, Any]) -> _Store:
    store = getattr(message, "_store", None)  # panoramisk Message: already lowercased
    if isinstance(store, dict):
        return store
    return {key.lower(): (key, value) for key, value in message.items()}


def parse_event(message: Mapping[str, Any]) -> AmiEvent:
    """Turn one AMI event (a panoramisk ``Message`` or any mapping of headers) into its type."""
    store = _store_of(message)
    name = _text(store, "event")
    timestamp = _timestamp(name, store)
    builder = _BUILDERS.get(name) or _BUILDERS_BY_LOWER_NAME.get(name.lower())
    if builder is not None:
        return builder(name, timestamp, store)
    return _other(name, timestamp, store)
