"""Real SIP callers and agents' phones for tests: SIPp 3.6 processes with generated scenarios.

A scenario is written per test from a plan, so a test reads like the call it makes:

    caller = SippProcess(caller_scenario(CallerPlan(dtmf=((1500, "2"),), hangup_after_ms=8000)),
                         remote=("127.0.0.1", settings.asterisk.sip_port), service="100")
    agent = SippProcess(agent_scenario(AgentPlan(answer_after_ms=1000)), port=agent_port)

Both accept the far end's BYE at any moment (a wait is a BYE receive with a timeout, never a
pause) and log what happened (``answered``, ``dtmf 2``, ``local-bye``, ``remote-bye``,
``cancelled``, ``busy``) so ``SippResult.events`` and ``.ended_by`` tell how a call went.
The static files tests/sipp/caller.xml and agent.xml are these builders' default output.

An agent's phone that dials (a feature code, the IVR): a caller with digest credentials, which
answers Asterisk's 401 challenge to its INVITE (``tests.support.calls.agent_dials`` fills them
from the settings); ``expect_refused`` turns a refused INVITE into the expected outcome:

    SippProcess(caller_scenario(CallerPlan(auth=("agent2", password), dtmf=((1000, "1"),))),
                remote=("127.0.0.1", settings.asterisk.sip_port), service="*50")

An agent's softphone that REGISTERs (digest auth) instead of having a static contact:

    phone = registering_agent_phone(RegisteringAgentPlan(
        "agent2", password, ("127.0.0.1", settings.asterisk.sip_port),
        answer=AgentPlan(answer_after_ms=1000), calls=1))
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from tests.support.ports import free_port  # tests import it from here too
from tests.support.real_parts import unavailable
from tests.support.rtp_dtmf import (
    EVENT_CODES,
    TONE_MS,
    key_press_pcap,
    speech_pcap,
    speech_slots,
)

SIPP = "sipp"
# A key press is played from its own pcap (tests/support/rtp_dtmf.py) lasting TONE_MS; sipp
# cuts a playing pcap short when the next one starts, so presses must not overlap.
DTMF_MIN_GAP_MS = 2 * TONE_MS
EVENT_PREFIX = "callcenter-event:"
SIP_CREDENTIAL = re.compile(r"[A-Za-z0-9_.~-]+")  # safe in a SIP URI and in sipp's [...]
# Final answers that refuse a caller's INVITE (a wrong password draws a new 401 challenge;
# an extension the caller's context lacks, 404; a refusal by the dialplan, 403/480/486/603...).
INVITE_REFUSALS = (401, 403, 404, 407, 480, 486, 488, 500, 503, 603)

# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class CallerPlan:
    """What a SIP caller does once its call is answered.

    ``dtmf``: (wait in ms, digit) pairs, each wait counted from the previous digit (or from
    the answer), at least DTMF_MIN_GAP_MS between two digits; a longer wait is a pause
    between two entries of the same call. Each digit is sent as an RFC 4733 telephone event
    whose RTP timestamp and sequence numbers follow the call's earlier digits (see
    tests/support/rtp_dtmf.py), so repeated keys and later entries are heard like the first.
    ``hangup_after_ms``: we send BYE that long after the answer; None: we wait for the far
    end's BYE (at most ``max_call_ms``, else the call fails).
    ``speech``: (at ms after the answer, for ms) when the caller speaks (a voice-like sound,
    e.g. their name for a recording); each must end before the next key press.
    ``auth``: (SIP user, password) of an agent's endpoint: the call comes from that user
    (From and Contact) and answers Asterisk's digest challenge (401) to the INVITE with a
    second INVITE carrying the credentials (CSeq 2; the BYE is then CSeq 3).
    ``expect_refused``: the INVITE is expected to get a final refusal (one of
    INVITE_REFUSALS, e.g. a second 401 for a wrong password): the call then logs
    ``invite-refused <code>`` and succeeds; answered, it fails. Without it, a refusal logs the
    same event and fails the call.
    ``from_user``: raw bytes of the From URI's user part instead of ``caller_number`` (a
    hostile caller ID: CR/LF, NUL, separators, invalid UTF-8); every byte outside RFC 3986's
    unreserved characters is percent-encoded on the wire (``%0D%0A``), as Asterisk then
    decodes it. ``display_name``: raw bytes of the From display name, sent as a quoted string
    (``"`` and ``\\`` as quoted-pairs, bytes above 0x7F as they are); CR, LF and other control
    bytes cannot travel in a SIP header and are refused (SIPp's ``[`` ``]`` too).
    ``diversion_user``: raw bytes of the user part of a Diversion header on the INVITE (the
    call was forwarded from that number: Asterisk's redirecting number, AGI's agi_rdnis),
    percent-encoded like ``from_user``.
    ``hold``: (at ms after the answer, for ms), after the last key and speech: the caller's
    phone holds the call (a re-INVITE offering ``a=sendonly``, logged ``held`` once Asterisk's
    200 OK is acknowledged), then takes it off hold (``a=sendrecv``, logged ``unheld``).
    """

    dtmf: tuple[tuple[int, str], ...] = ()
    speech: tuple[tuple[int, int], ...] = ()
    hangup_after_ms: int | None = None
    max_call_ms: int = 60_000
    caller_number: str = "5551234"
    auth: tuple[str, str] | None = None
    expect_refused: bool = False
    from_user: bytes | None = None
    display_name: bytes | None = None
    diversion_user: bytes | None = None
    hold: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.hold is not None:
            at_ms, for_ms = self.hold
            ends = max([self.digits_end_ms, *(a + f for a, f in self.speech)])
            if at_ms < ends or for_ms <= 0:
                raise ValueError(f"hold {self.hold!r}: after the last key and speech "
                                 f"({ends} ms), for some time")
            if self.hangup_after_ms is not None and self.hangup_after_ms <= at_ms + for_ms:
                raise ValueError(f"hangup_after_ms {self.hangup_after_ms} must come after "
                                 f"the hold ends ({at_ms + for_ms} ms)")
            if self.auth is not None or self.expect_refused:
                raise ValueError("hold: for callers without auth or an expected refusal")
        for index, (wait_ms, digit) in enumerate(self.dtmf):
            if digit not in EVENT_CODES:
                raise ValueError(f"dtmf[{index}]: {digit!r} is not a DTMF digit")
            if wait_ms < (DTMF_MIN_GAP_MS if index else 0):
                raise ValueError(f"dtmf[{index}]: wait {wait_ms} ms; digits need "
                                 f"{DTMF_MIN_GAP_MS} ms between them")
        if self.hangup_after_ms is not None and self.hangup_after_ms < self.digits_end_ms:
            raise ValueError(f"hangup_after_ms {self.hangup_after_ms} comes before the last "
                             f"digit at {self.digits_end_ms} ms")
        if not self.caller_number.isdigit():
            raise ValueError(f"caller_number {self.caller_number!r}: digits only")
        if self.from_user is not None and (not isinstance(self.from_user, bytes)
                                           or not self.from_user):
            raise ValueError(f"from_user {self.from_user!r}: need some bytes")
        if self.display_name is not None:
            bad = [b for b in self.display_name if b < 0x20 or b == 0x7F or b in b"[]"]
            if not isinstance(self.display_name, bytes) or bad:
                raise ValueError(f"display_name {self.display_name!r}: control bytes and "
                                 "[ ] cannot be sent in a SIP quoted string through SIPp")
        if self.auth is not None and (self.from_user is not None or self.display_name
                                      is not None or self.diversion_user is not None):
            raise ValueError("from_user, display_name and diversion_user are for callers "
                             "without auth")
        if self.auth is not None:
            if not isinstance(self.auth, tuple) or len(self.auth) != 2:
                raise ValueError(f"auth {self.auth!r}: need (SIP user, password)")
            for setting, value in zip(("auth user", "auth password"), self.auth, strict=True):
                if not isinstance(value, str) or not SIP_CREDENTIAL.fullmatch(value):
                    raise ValueError(f"{setting} {value!r}: use letters, digits and -_.~")
        if self.expect_refused and (self.dtmf or self.speech
                                    or self.hangup_after_ms is not None):
            raise ValueError("expect_refused: a refused call has no dtmf, speech or hang-up")
        presses = self.press_times()
        for index, (at_ms, for_ms) in enumerate(self.speech):
            later = [t for t in presses if t >= at_ms]
            if later and at_ms + for_ms > later[0]:
                raise ValueError(f"speech[{index}] lasts until {at_ms + for_ms} ms, past the "
                                 f"key pressed at {later[0]} ms (it would be cut off)")
            if self.hangup_after_ms is not None and at_ms + for_ms > self.hangup_after_ms:
                raise ValueError(f"speech[{index}] lasts past hangup_after_ms")

    def press_times(self) -> list[int]:
        """When each key is pressed, in ms after the answer."""
        times, at_ms = [], 0
        for wait_ms, _ in self.dtmf:
            at_ms += wait_ms
            times.append(at_ms)
        return times

    @property
    def digits_end_ms(self) -> int:
        return sum(wait for wait, _ in self.dtmf)


@dataclass(frozen=True)
class AgentPlan:
    """What an agent's SIP phone (or a called customer) does with each call it gets.

    ``answer_after_ms``: ring that long, then answer; None: ring until the far end CANCELs.
    ``hangup_after_ms``: after answering, send BYE that long later; None: wait for the BYE
    (at most ``max_call_ms``). ``busy``: reject every call with 486 Busy Here instead.
    ``hold``: (at ms after answering, for ms): the phone puts the call on hold as a person's
    phone does (a re-INVITE offering ``a=sendonly``, logged ``held`` once Asterisk's 200 OK
    is acknowledged), then takes it off (``a=sendrecv``, logged ``unheld``); a BYE meanwhile
    ends the call as usual. ``hangup_after_ms`` then counts from the answer too.
    """

    answer_after_ms: int | None = 0
    hangup_after_ms: int | None = None
    busy: bool = False
    max_call_ms: int = 120_000
    hold: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.hold is None:
            return
        at_ms, for_ms = self.hold
        if self.busy or at_ms < 0 or for_ms <= 0:
            raise ValueError(f"AgentPlan: hold {self.hold!r} needs an answered call, a start "
                             "at or after the answer and a length")
        if self.hangup_after_ms is not None and self.hangup_after_ms <= at_ms + for_ms:
            raise ValueError(f"AgentPlan: hangup_after_ms {self.hangup_after_ms} must come "
                             f"after the hold ends ({at_ms + for_ms} ms)")


def _tidy(scenario: str) -> str:
    """Drop the whitespace-only lines left by optional parts (empty lines stay: SDP needs one)."""
    return re.sub(r"(?m)^[ \t]+\n", "", scenario)


def _log(event: str) -> str:
    return (f'<nop><action><log message="{EVENT_PREFIX} [clock_tick] [call_id] {event}"/>'
            '</action></nop>')


def _fail(why: str) -> str:
    """Log why, then fail the call (or registration dialog): a receive that times out with
    nowhere to go aborts sipp's call, which counts as failed and makes sipp exit 1."""
    return _log(f"failed: {why}") + '\n  <recv request="INFO" timeout="1"/>'


_SDP = """v=0
      o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=sendrecv"""


def _wait_for_bye(timeout_ms: int, then: str) -> str:
    """Wait up to timeout_ms; a BYE meanwhile jumps to remote_bye, the timeout to ``then``."""
    return (f'<recv request="BYE" timeout="{timeout_ms}" ontimeout="{then}" '
            f'next="remote_bye"/>\n  <label id="{then}"/>')


def _answer_bye() -> str:
    return """<label id="remote_bye"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  """ + _log("remote-bye")


def _invite(cseq: int, from_header: str, contact_header: str, authorization: str = "") -> str:
    return f"""<send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      {from_header}
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      {contact_header}
      Max-Forwards: 70{authorization}
      Content-Type: application/sdp
      Content-Length: [len]

      {_SDP}
    ]]>
  </send>"""


def _ack(cseq: int, from_header: str, contact_header: str, branch: str = "[branch]") -> str:
    """ACK of the INVITE with ``cseq``: a new branch for a 2xx; for a refusal (RFC 3261
    17.1.1.3) the INVITE's own branch. Its To carries the tag of the response it answers."""
    return f"""<send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={branch}
      {from_header}
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} ACK
      {contact_header}
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>"""


def _caller_reinvite(cseq: int, direction: str, logged: str, from_header: str,
                     contact_header: str) -> str:
    """The caller's phone offers new media in its call: ``sendonly`` holds the far end,
    ``sendrecv`` takes it off hold. Logs ``logged`` once Asterisk's 200 OK is acknowledged."""
    sdp = _SDP.replace("2353687637", str(2353687637 + cseq)).replace("a=sendrecv",
                                                                    f"a={direction}")
    return f"""<send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      {from_header}
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      {contact_header}
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      {sdp}
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200" crlf="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      {from_header}
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} ACK
      {contact_header}
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  {_log(logged)}"""


def _caller_talk(plan: CallerPlan, from_header: str, contact_header: str, bye_cseq: int) -> str:
    """The answered call: the plan's key presses and speech, then our BYE or theirs."""
    steps = []
    # One timeline of key presses and speech; each takes its own range of RTP sequence numbers.
    timeline = sorted(
        [(at_ms, 1, digit, 0) for at_ms, (_, digit) in zip(plan.press_times(), plan.dtmf,
                                                            strict=True)]
        + [(at_ms, 0, "speech", for_ms) for at_ms, for_ms in plan.speech])
    now_ms = slot = 0
    for step, (at_ms, _, what, for_ms) in enumerate(timeline):
        if at_ms > now_ms:
            steps.append(_wait_for_bye(at_ms - now_ms, f"step_{step}"))
            now_ms = at_ms
        if what == "speech":
            pcap = speech_pcap(index=slot, at_ms=at_ms, duration_ms=for_ms)
            slot += speech_slots(for_ms)
            event = f"speech {for_ms} ms"
        else:
            pcap = key_press_pcap(what, index=slot, at_ms=at_ms)
            slot += 1
            event = f"dtmf {what}"
        steps.append(f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
        steps.append(_log(event))
    if plan.hold is not None:  # our re-INVITEs take the CSeqs before the BYE's
        at_ms, for_ms = plan.hold
        if at_ms > now_ms:
            steps.append(_wait_for_bye(at_ms - now_ms, "hold"))
        steps.append(_caller_reinvite(bye_cseq - 2, "sendonly", "held", from_header,
                                      contact_header))
        steps.append(_wait_for_bye(for_ms, "unhold"))
        steps.append(_caller_reinvite(bye_cseq - 1, "sendrecv", "unheld", from_header,
                                      contact_header))
        now_ms = at_ms + for_ms
    if plan.hangup_after_ms is None:
        steps.append(f'<recv request="BYE" timeout="{plan.max_call_ms}" next="remote_bye"/>')
    else:
        remaining = plan.hangup_after_ms - now_ms
        if remaining > 0:
            steps.append(_wait_for_bye(remaining, "hang_up"))
        steps.append(f"""<send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      {from_header}
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {bye_cseq} BYE
      {contact_header}
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
  """ + _log("local-bye") + """
  <nop next="end"/>""")
    return "\n  ".join(steps)


_URI_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def sip_uri_user(raw: bytes) -> str:
    """Raw bytes as a SIP URI user part: unreserved characters as they are, the rest %XX."""
    return "".join(chr(b) if b in _URI_UNRESERVED else f"%{b:02X}" for b in raw)


def sip_quoted_string(raw: bytes) -> str:
    """Raw bytes as a SIP quoted string (``"`` and ``\\`` escaped); the scenario file is
    ISO-8859-1, so each byte above 0x7F is the character of the same code."""
    return '"' + raw.decode("latin-1").replace("\\", "\\\\").replace('"', '\\"') + '"'


def caller_scenario(plan: CallerPlan = CallerPlan()) -> str:
    """A UAC that calls ``-s SERVICE`` at the remote address and follows ``plan``."""
    user = plan.caller_number if plan.auth is None else plan.auth[0]
    display_name = '"Caller"' if plan.auth is None else f'"{user}"'
    contact_user = user
    if plan.from_user is not None:
        user = sip_uri_user(plan.from_user)
    if plan.display_name is not None:
        display_name = sip_quoted_string(plan.display_name)
    from_header = (f'From: {display_name} <sip:{user}@[local_ip]:[local_port]>'
                   ";tag=[pid]SIPpTag00[call_number]")
    contact_header = f"Contact: <sip:{contact_user}@[local_ip]:[local_port]>"
    if plan.diversion_user is not None:  # rides on every request that carries the Contact
        contact_header += (f"\n      Diversion: <sip:{sip_uri_user(plan.diversion_user)}"
                           "@[local_ip]>;reason=unconditional")
    if plan.auth is not None or plan.expect_refused:
        return _refusable_caller_scenario(plan, from_header, contact_header)
    return _tidy(f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- A caller: INVITE [service], ACK the answer, then the plan's DTMF and hang-up. -->
<scenario name="callcenter caller">
  {_invite(1, from_header, contact_header)}
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  {_ack(1, from_header, contact_header)}
  {_log("answered")}
  {_caller_talk(plan, from_header, contact_header, bye_cseq=4 if plan.hold else 2)}
  {_answer_bye()}
  <label id="end"/>
</scenario>
""")


_MESSAGE_TAG = re.compile(r"<(?:send|recv|nop|pause)\b")


class _Steps:
    """A scenario's steps in order, counting sipp's messages (every element but a label:
    sipp numbers them so), so that an ACK can name the branch of the INVITE it answers:
    ``[branch-N]`` is the branch of the message N before it."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.messages = 0

    def add(self, *fragments: str) -> None:
        for fragment in fragments:
            self.parts.append(fragment)
            self.messages += len(_MESSAGE_TAG.findall(fragment))

    def branch_of(self, message: int) -> str:
        """The branch of the message numbered ``message``, for the next message added."""
        return f"[branch-{self.messages - message}]"


def _refusable_caller_scenario(plan: CallerPlan, from_header: str, contact_header: str) -> str:
    """The caller that may be challenged (``plan.auth``) or refused (``expect_refused``).

    INVITE (CSeq 1); with auth: 401 with the challenge, ACK it (the INVITE's branch), INVITE
    again with the credentials (CSeq 2). Then 100/180/183, and either a refusal (ACKed,
    ``invite-refused <code>``) or 200, ACK and the plan's call, whose BYE takes the next CSeq.
    """
    steps = _Steps()
    cseq, authorization = 1, ""
    if plan.auth is not None:
        user, password = plan.auth
        challenged_invite = steps.messages
        steps.add(_invite(cseq, from_header, contact_header),
                  '<recv response="100" optional="true"/>',
                  '<recv response="401" auth="true"/>')
        steps.add(_ack(cseq, from_header, contact_header, steps.branch_of(challenged_invite)))
        cseq = 2
        authorization = f"\n      [authentication username={user} password={password}]"
    final_invite = steps.messages
    steps.add(_invite(cseq, from_header, contact_header, authorization),
              *(f'<recv response="{code}" optional="true"/>' for code in (100, 180, 183)),
              *(f'<recv response="{code}" optional="true" next="refused_{code}"/>'
                for code in INVITE_REFUSALS),
              '<recv response="200" rtd="true" next="answered"/>')
    for code in INVITE_REFUSALS:
        steps.add(f'<label id="refused_{code}"/>')
        steps.add(_ack(cseq, from_header, contact_header, steps.branch_of(final_invite)),
                  _log(f"invite-refused {code}"),
                  '<nop next="refused"/>')
    steps.add('<label id="refused"/>',
              '<nop next="end"/>' if plan.expect_refused else _fail("INVITE refused"),
              '<label id="answered"/>',
              _ack(cseq, from_header, contact_header),
              _log("answered"))
    if plan.expect_refused:
        steps.add(_fail("answered although a refusal was expected"))
    else:
        steps.add(_caller_talk(plan, from_header, contact_header, bye_cseq=cseq + 1),
                  _answer_bye())
    body = "\n  ".join(steps.parts)
    what = "answer the digest challenge, " if plan.auth is not None else ""
    then = "expect a refusal" if plan.expect_refused else "the plan's DTMF and hang-up"
    return _tidy(f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- A caller: INVITE [service], {what}ACK the answer, then {then}. -->
<scenario name="callcenter caller">
  {body}
  <label id="end"/>
</scenario>
""")


def _capture_invite(plan: AgentPlan) -> str:
    """Keep what later messages need from the INVITE (sipp rejects unused variables)."""
    captures = []
    if (plan.hangup_after_ms is not None or plan.hold is not None) and not plan.busy:
        # to build our own BYE and re-INVITEs
        captures += [
            '<ereg regexp=".*" search_in="hdr" header="From:" assign_to="their_from"/>',
            '<ereg regexp=".*" search_in="hdr" header="To:" assign_to="their_to"/>',
            '<ereg regexp="sip:[^&gt;]*" search_in="hdr" header="Contact:" '
            'assign_to="their_contact"/>',
        ]
    if plan.answer_after_ms != 0 and not plan.busy:  # to answer a CANCEL's 487
        captures.append('<ereg regexp=".*" search_in="hdr" header="CSeq:" '
                        'assign_to="invite_cseq"/>')
    if not captures:
        return ""
    return "\n    <action>\n      " + "\n      ".join(captures) + "\n    </action>\n  "


_RESPONSE_HEADERS = """[last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:agent@[local_ip]:[local_port];transport=[transport]>"""


_CANCELLED = """<label id="cancelled"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <send>
    <![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [$invite_cseq]
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
  """ + _log("cancelled") + """
  <nop next="end"/>"""


def _reinvite(cseq: int, direction: str, logged: str) -> str:
    """The agent's phone offers new media in its call (a re-INVITE, our ``cseq``-th request
    of the dialog): ``sendonly`` holds the far end, ``sendrecv`` takes it off hold. Logs
    ``logged`` once Asterisk's 200 OK is acknowledged; a BYE crossing it ends the call."""
    sdp = _SDP.replace("2353687637", str(2353687637 + cseq)).replace("a=sendrecv",
                                                                    f"a={direction}")
    return f"""<send retrans="500">
    <![CDATA[
      INVITE [$their_contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={_AGENT_BRANCH}-reinvite{cseq}
      From: [$their_to];tag=[pid]SIPpTag01[call_number]
      To: [$their_from]
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:agent@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      {sdp}
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200" crlf="true"/>
  <send>
    <![CDATA[
      ACK [$their_contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={_AGENT_BRANCH}-ack{cseq}
      From: [$their_to];tag=[pid]SIPpTag01[call_number]
      To: [$their_from]
      Call-ID: [call_id]
      CSeq: {cseq} ACK
      Contact: <sip:agent@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  {_log(logged)}"""


def agent_scenario(plan: AgentPlan = AgentPlan()) -> str:
    """A UAS that takes each incoming call as ``plan`` says."""
    return _agent_scenario(plan)


# sipp's [branch] is made of its call number, which for calls taken by an out-of-call
# scenario (-oocsf) is not unique: 0, then whatever the memory held, repeating as memory is
# reused. Asterisk takes a BYE whose branch it saw within 32 s for a retransmission and
# ends the call about 23 s late. So the phone numbers its calls itself (a sipp global, a
# float as sipp prints it: "3.000000" is a valid branch token).
_CALLS_STARTED = "calls_started"
_THIS_CALL = "this_call"
_AGENT_BRANCH = f"z9hG4bK-[pid]-[${_THIS_CALL}]"


def _agent_scenario(plan: AgentPlan, *, global_variables: Sequence[str] = (),
                    after_each_call: str = "") -> str:
    """``agent_scenario``, with more sipp globals and steps run as each call ends."""
    # Only a phone that sends its own BYE (or re-INVITEs) numbers its calls: sipp refuses a
    # scenario with a variable set but never used ("Variable $this_call is referenced 1
    # times!", exit 1).
    sends_bye = (plan.hangup_after_ms is not None or plan.hold is not None) and not plan.busy
    variables = (_CALLS_STARTED, *global_variables) if sends_bye else tuple(global_variables)
    declarations = f'<Global variables="{",".join(variables)}"/>' if variables else ""
    number_this_call = (f'<nop><action><add assign_to="{_CALLS_STARTED}" value="1"/>'
                        f'<assign assign_to="{_THIS_CALL}" variable="{_CALLS_STARTED}"/>'
                        '</action></nop>') if sends_bye else ""
    if plan.busy:
        handling = f"""<send>
    <![CDATA[
      SIP/2.0 486 Busy Here
      {_RESPONSE_HEADERS}
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
  {_log("busy")}
  <nop next="end"/>"""
    else:
        if plan.answer_after_ms is None:
            ring = f'<recv request="CANCEL" timeout="{plan.max_call_ms}" next="cancelled"/>'
        elif plan.answer_after_ms:
            ring = (f'<recv request="CANCEL" timeout="{plan.answer_after_ms}" '
                    'ontimeout="answer" next="cancelled"/>\n  <label id="answer"/>')
        else:
            ring = ""
        talked_ms, holding, bye_cseq = 0, "", 1
        if plan.hold is not None:
            at_ms, for_ms = plan.hold
            holding = (_wait_for_bye(at_ms, "hold") if at_ms else "") + "\n  " + _reinvite(
                1, "sendonly", "held") + "\n  " + _wait_for_bye(for_ms, "unhold") + "\n  " + (
                _reinvite(2, "sendrecv", "unheld"))
            talked_ms, bye_cseq = at_ms + for_ms, 3
        if plan.hangup_after_ms is None:
            talk = holding + (f'\n  <recv request="BYE" timeout="{plan.max_call_ms}" '
                              'next="remote_bye"/>')
        else:
            talk = holding + "\n  " + _wait_for_bye(plan.hangup_after_ms - talked_ms,
                                                    "hang_up") + """
  <send retrans="500">
    <![CDATA[
      BYE [$their_contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=""" + _AGENT_BRANCH + """-bye
      From: [$their_to];tag=[pid]SIPpTag01[call_number]
      To: [$their_from]
      Call-ID: [call_id]
      CSeq: """ + str(bye_cseq) + """ BYE
      Contact: <sip:agent@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
  """ + _log("local-bye") + """
  <nop next="end"/>"""
        cancelled = _CANCELLED if ring else ""
        handling = f"""{ring}
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      {_RESPONSE_HEADERS}
      Content-Type: application/sdp
      Content-Length: [len]

      {_SDP}
    ]]>
  </send>
  <recv request="ACK" rtd="true" crlf="true"/>
  {_log("answered")}
  {talk}
  {cancelled}
  {_answer_bye()}"""
    return _tidy(f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- An agent's phone: ring, then answer / hang up / reject as the plan says. -->
<scenario name="callcenter agent">
  {declarations}
  <recv request="INVITE" crlf="true">{_capture_invite(plan)}</recv>
  {number_this_call}
  {_log("invite")}
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      {_RESPONSE_HEADERS}
      Content-Length: 0
    ]]>
  </send>
  {handling}
  <label id="end"/>
  {after_each_call}
</scenario>
""")


# --------------------------------------------------------------------------- softphones

CALLS_TAKEN = "calls_taken"  # a sipp global: incoming calls finished, whatever their outcome
POLL_MS = 100
# A registrar's final "no": a wrong password draws a new challenge (401) from Asterisk; an
# unknown user, identified as no endpoint or one without AORs, draws 403 or 404.
REFUSALS = (401, 403, 404)


@dataclass(frozen=True)
class RegisteringAgentPlan:
    """An agent's softphone that REGISTERs like a person's would, then takes calls.

    The phone REGISTERs as ``user`` with ``password`` at ``registrar`` (answering Asterisk's
    digest challenge) and waits for 200 OK. It then takes ``calls`` incoming calls, each as
    ``answer`` says, waiting about ``wait_for_calls_ms`` for them; then it unregisters
    (``Expires: 0``) if ``unregister``, and keeps listening ``listen_after_ms`` longer (a call
    arriving then is handled by ``answer`` too, and shows as an ``invite`` event).

    ``expect_refused``: the registrar is expected to refuse the credentials (a 401 again to
    the authenticated REGISTER, or 403/404); the phone then only listens ``listen_after_ms``.

    sipp exits 0 when the phone did what the plan says and 1 otherwise (registration refused
    or accepted against expectation, calls missing). Events: ``registered``,
    ``register-refused <401|403|404>``, ``unregistered``, ``failed: <why>``, plus each
    incoming call's AgentPlan events.
    """

    user: str
    password: str
    registrar: tuple[str, int]
    answer: AgentPlan = AgentPlan()
    calls: int = 1
    wait_for_calls_ms: int = 60_000
    unregister: bool = True
    listen_after_ms: int = 0
    expires_s: int = 300
    expect_refused: bool = False

    def __post_init__(self) -> None:
        for setting in ("user", "password"):
            value = getattr(self, setting)
            if not SIP_CREDENTIAL.fullmatch(value):
                raise ValueError(f"{setting} {value!r}: use letters, digits and -_.~")
        host, port = self.registrar
        if not host or not 0 < port < 65536:
            raise ValueError(f"registrar {self.registrar!r}: need a host and a port 1-65535")
        if self.calls < 0:
            raise ValueError(f"calls {self.calls}: must be 0 or more")
        if self.expect_refused and self.calls:
            raise ValueError("a phone whose registration is refused cannot take calls")
        for setting in ("wait_for_calls_ms", "listen_after_ms"):
            if getattr(self, setting) < 0:
                raise ValueError(f"{setting}: must be 0 or more")
        if self.expires_s < 1:
            raise ValueError(f"expires_s {self.expires_s}: must be at least 1")


def _register(plan: RegisteringAgentPlan, cseq: int, expires_s: int, *, authenticated: bool,
              ) -> str:
    """One REGISTER of the phone's registration dialog (one Call-ID, rising CSeq)."""
    authorization = (f"\n      [authentication username={plan.user} password={plan.password}]"
                     if authenticated else "")
    return f"""<send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{plan.user}@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{plan.user}@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} REGISTER
      Contact: <sip:{plan.user}@[local_ip]:[local_port];transport=[transport]>
      Expires: {expires_s}
      Max-Forwards: 70
      User-Agent: callcenter-tests softphone{authorization}
      Content-Length: 0
    ]]>
  </send>"""


def registering_agent_scenarios(plan: RegisteringAgentPlan) -> tuple[str, str]:
    """The phone's two sipp scenarios: (registration, incoming calls).

    sipp matches messages to calls by Call-ID, so the calls Asterisk sends to the registered
    contact cannot enter the registration's scenario: they start sipp's out-of-call scenario
    (``-oocsf``), the AgentPlan's UAS. Each such call adds 1 to the global ``calls_taken``
    when it ends, which the registration scenario polls before it unregisters.
    """
    declarations = f'<Global variables="{CALLS_TAKEN}"/>'
    incoming = _agent_scenario(
        plan.answer, global_variables=(CALLS_TAKEN,),
        after_each_call=f'<nop><action><add assign_to="{CALLS_TAKEN}" value="1"/></action></nop>')
    if plan.expect_refused:
        accepted = _fail("registered although a refusal was expected")
        refused = ""
    else:
        unregister = ""
        if plan.unregister:
            unregister = "\n  ".join([
                _register(plan, 3, 0, authenticated=False),
                '<recv response="401" auth="true"/>',
                _register(plan, 4, 0, authenticated=True),
                '<recv response="200"/>',
                _log("unregistered"),
            ])
        accepted = f"""<label id="wait_for_calls"/>
  <nop>
    <action>
      <test assign_to="all_taken" variable="{CALLS_TAKEN}" compare="greater_than_equal"
            value="{plan.calls}"/>
      <add assign_to="waited_ms" value="{POLL_MS}"/>
      <test assign_to="too_long" variable="waited_ms" compare="greater_than"
            value="{plan.wait_for_calls_ms}"/>
    </action>
  </nop>
  <nop test="all_taken" next="calls_taken"/>
  <nop test="too_long" next="calls_missing"/>
  <pause milliseconds="{POLL_MS}"/>
  <nop next="wait_for_calls"/>
  <label id="calls_missing"/>
  {_fail(f"fewer than {plan.calls} calls came in {plan.wait_for_calls_ms} ms")}
  <label id="calls_taken"/>
  {unregister}
  <nop next="listen"/>"""
        refused = _fail("registration refused")
    refusals = "\n  ".join(
        f'<label id="refused_{code}"/>\n  {_log(f"register-refused {code}")}\n  '
        '<nop next="refused"/>' for code in REFUSALS)
    listen = f'<pause milliseconds="{plan.listen_after_ms}"/>' if plan.listen_after_ms else ""
    registration = _tidy(f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- An agent's softphone: REGISTER with digest credentials, take calls, unregister. -->
<scenario name="callcenter softphone">
  {declarations}
  <nop>
    <action>
      <assign assign_to="{CALLS_TAKEN}" value="0"/>
      {"" if plan.expect_refused else '<assign assign_to="waited_ms" value="0"/>'}
    </action>
  </nop>
  {_register(plan, 1, plan.expires_s, authenticated=False)}
  <recv response="403" optional="true" next="refused_403"/>
  <recv response="404" optional="true" next="refused_404"/>
  <recv response="401" auth="true"/>
  {_register(plan, 2, plan.expires_s, authenticated=True)}
  <recv response="401" optional="true" next="refused_401"/>
  <recv response="403" optional="true" next="refused_403"/>
  <recv response="404" optional="true" next="refused_404"/>
  <recv response="200"/>
  {_log("registered")}
  {accepted}
  {refusals}
  <label id="refused"/>
  {refused}
  <label id="listen"/>
  {listen}
</scenario>
""")
    return registration, incoming


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class SippEvent:
    at_ms: int  # sipp's clock, milliseconds
    call: str  # the call's Call-ID
    name: str  # answered | dtmf <d> | local-bye | remote-bye | cancelled | busy | invite
    #           | invite-refused <code> | registered | failed: <why> ...


@dataclass
class SippResult:
    exit_code: int
    successful: int
    failed: int
    events: list[SippEvent] = field(default_factory=list)
    errors: str = ""  # sipp's error log (also lists normal timeout jumps)
    output: str = ""  # sipp's screen output

    @property
    def ended_by(self) -> str | None:
        """'us' or 'them' for the last call that ended with a BYE, else None."""
        for event in reversed(self.events):
            if event.name in ("local-bye", "remote-bye"):
                return "us" if event.name == "local-bye" else "them"
        return None

    def names(self) -> list[str]:
        return [event.name for event in self.events]

    def describe(self) -> str:
        return (f"exit {self.exit_code}, {self.successful} successful, {self.failed} failed; "
                f"events {self.names()}\nerrors:\n{self.errors[-3000:]}\n"
                f"output:\n{self.output[-3000:]}")


class SippProcess:
    """One sipp process with a generated scenario, in its own temporary working folder.

    A caller passes ``remote`` and ``service``; an agent's phone only listens on ``port``.
    ``out_of_call_scenario`` takes the requests that belong to none of sipp's calls (the calls
    a registered softphone receives; see ``registering_agent_phone``).
    ``calls`` is sipp's ``-m``: it exits after that many calls. Use it as a context manager
    (or call ``stop()``) so it never outlives the test.
    """

    def __init__(self, scenario: str, *, port: int | None = None,
                 remote: tuple[str, int] | None = None, service: str | None = None,
                 calls: int = 1, rate: float | None = None, limit: int | None = None,
                 timeout_s: float = 120, name: str = "sipp",
                 extra_args: Sequence[str] = (), out_of_call_scenario: str | None = None,
                 ) -> None:
        if shutil.which(SIPP) is None:  # skipped locally, a failure when CI=true
            unavailable("sipp is not installed (apt-get install sip-tester)")
        self.port = port or free_port()
        self.media_port = free_port(4)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        self.scenario_path = self.workdir / f"{name}.xml"
        self.scenario_path.write_text(scenario, encoding="iso-8859-1")
        self.name = name
        command = [SIPP, "-sf", str(self.scenario_path), "-i", "127.0.0.1",
                   "-p", str(self.port), "-mp", str(self.media_port), "-m", str(calls),
                   "-trace_stat", "-trace_err", "-trace_logs", "-fd", "1",
                   "-nostdin", "-aa", "-timeout", f"{int(timeout_s)}s", "-timeout_error"]
        if service is not None:
            command += ["-s", service]
        if rate is not None:
            command += ["-r", str(rate)]
        if limit is not None:
            command += ["-l", str(limit)]
        if out_of_call_scenario is not None:  # requests outside sipp's own calls go there
            incoming_path = self.workdir / f"{name}-incoming.xml"
            incoming_path.write_text(out_of_call_scenario, encoding="iso-8859-1")
            command += ["-oocsf", str(incoming_path)]
        command += list(extra_args)
        if remote is not None:
            command.append(f"{remote[0]}:{remote[1]}")
        self.command = command
        self._process: subprocess.Popen[bytes] | None = None
        self._result: SippResult | None = None

    def start(self) -> SippProcess:
        self._output = open(self.workdir / "screen.log", "wb")  # noqa: SIM115 - closed in wait
        self._process = subprocess.Popen(self.command, cwd=self.workdir,
                                         stdin=subprocess.DEVNULL, stdout=self._output,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait(self, timeout: float) -> SippResult:
        """Wait for sipp to finish its calls; kill it and fail if it takes longer."""
        if self._process is None:
            raise RuntimeError(f"{self.name}: not started")
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"{self.name}: sipp still running after {timeout} s:\n"
                                 f"{self.result().describe()}") from None
        return self.result()

    def stop(self) -> SippResult | None:
        """Stop sipp if it still runs (SIGUSR1 is its clean quit, then SIGKILL)."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signal.SIGUSR1)
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=5)
        return self.result()

    def result(self) -> SippResult:
        if self._process is None or self._process.poll() is None:
            raise RuntimeError(f"{self.name}: sipp has not finished")
        if self._result is None:
            if not self._output.closed:
                self._output.close()
            successful, failed = self._statistics()
            self._result = SippResult(
                exit_code=self._process.returncode, successful=successful, failed=failed,
                events=self._events(), errors=self._read_glob("*_errors.log"),
                output=(self.workdir / "screen.log").read_text(errors="replace"))
        return self._result

    def _read_glob(self, pattern: str) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob(pattern)))

    def _statistics(self) -> tuple[int, int]:
        for path in self.workdir.glob("*_.csv"):
            rows = list(csv.DictReader(path.read_text(errors="replace").splitlines(),
                                       delimiter=";"))
            if rows:
                return int(rows[-1]["SuccessfulCall(C)"]), int(rows[-1]["FailedCall(C)"])
        return 0, 0

    def events_so_far(self) -> list[SippEvent]:
        """The events logged up to now, also while sipp still runs (whole lines only)."""
        text = self._read_glob("*_logs.log")
        return self._events(text[:text.rfind("\n") + 1])

    def _events(self, text: str | None = None) -> list[SippEvent]:
        events = []
        log = self._read_glob("*_logs.log") if text is None else text
        for line in log.splitlines():
            _, marker, rest = line.partition(EVENT_PREFIX)
            if not marker:
                continue
            at, call, name = rest.strip().split(" ", 2)
            events.append(SippEvent(at_ms=int(at), call=call, name=name.strip()))
        return events

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SippProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
        if kind is None:
            self.cleanup()


def registering_agent_phone(plan: RegisteringAgentPlan, *, port: int | None = None,
                            name: str | None = None, timeout_s: float = 120) -> SippProcess:
    """A softphone (not started yet) on ``port`` that registers and behaves as ``plan`` says."""
    registration, incoming = registering_agent_scenarios(plan)
    return SippProcess(registration, port=port, remote=plan.registrar, calls=1,
                       timeout_s=timeout_s, name=name or plan.user,
                       out_of_call_scenario=incoming)


def wait_all(processes: Sequence[SippProcess], timeout: float) -> list[SippResult]:
    """Wait for several sipp processes sharing one deadline."""
    deadline = time.monotonic() + timeout
    return [p.wait(max(0.1, deadline - time.monotonic())) for p in processes]


def write_static_scenarios(folder: Path) -> None:
    """Write tests/sipp/caller.xml and agent.xml: the builders' defaults, for manual runs."""
    (folder / "caller.xml").write_text(caller_scenario(), encoding="iso-8859-1")
    (folder / "agent.xml").write_text(agent_scenario(), encoding="iso-8859-1")


if __name__ == "__main__":  # python -m tests.support.sipp: refresh tests/sipp/*.xml
    write_static_scenarios(Path(__file__).resolve().parent.parent / "sipp")
