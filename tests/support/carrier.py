"""A test carrier behind the outbound trunk: one SIPp UAS that plays a whole call list.

Each INVITE's Request-URI names the number dialled (``sip:+15550100001@...``); the plan says
what that number does. The scenario holds one regular expression per behaviour (and timings)
listing its numbers, so any mapping works, and ``CarrierPlan.mix`` makes one with chosen
counts:

    plan = CarrierPlan.mix({Behaviour.HUMAN: 5, Behaviour.MACHINE: 5, Behaviour.BUSY: 2})
    with Carrier(plan, port=carrier_port) as carrier:   # settings: trunk_host = that port
        ...  # originate PJSIP/<number>@callcenter-trunk for each number in plan.numbers
        calls = await carrier.wait_for_calls(len(plan.numbers), timeout=60)
    assert {c.number: c.ended_by for c in calls} == ...

Behaviours (``Behaviour``):

- HUMAN: rings ``ring_ms``, answers, says "hello" (one word of 700 ms, after 400 ms of
  silence), then stays silent on the line until the far end hangs up (or hangs up itself
  after ``human_hangup_after_ms``);
- MACHINE: rings, answers, plays a 4.2 s greeting of ten words, a 1000 Hz beep, then
  silence, and waits for the far end's BYE;
- NO_ANSWER: rings until the far end CANCELs (at most ``max_ring_ms``);
- BUSY: 486 Busy Here at once;
- ANSWER_THEN_HANG_UP: rings, answers, says "hello", hangs up ``hang_up_after_ms`` after
  the answer (before AMD can decide: Asterisk's AMDSTATUS is HANGUP);
- FAILED: 503 Service Unavailable at once (the carrier cannot place the call);
- REFUSED: 403 Forbidden at once (the carrier refuses us, e.g. a caller ID it rejects).

A number the plan lacks gets 404 Not Found (event ``unknown-number``). A number can also
be given a ``Persona``: a behaviour with its own ring time and, for a HUMAN, when they hang up
(``Persona(Behaviour.HUMAN, ring_ms=3000, hangup_after_ms=60_000)``), e.g. to spread the
times to answer and the talk times of a list.

What the carrier did, call by call, is in ``calls_so_far()`` / ``wait_for_calls()`` /
``stop()``: ``CarrierCall`` records (number, behaviour, when it was invited, answered and
ended on SIPp's clock in ms, who hung up, whether a CANCEL or a BYE came), parsed from the
``callcenter-event:`` log lines of tests/support/sipp.py (``carrier_calls(events)``).

Why the audio is as it is (AMD() with Asterisk's defaults, asterisk-conf/amd.conf; app_amd
judges 20 ms frames, silent below silence_threshold 256): a HUMAN's "hello" is one word (no
silent frame inside it, every frame above 1000) followed by silence, which AMD calls HUMAN
once after_greeting_silence (800 ms) has passed, about 1.9 s after it starts listening
(AMDCAUSE HUMAN-800-800). A MACHINE's greeting is ten words 100-300 ms apart; AMD calls it
MACHINE at its third word, about 1.3 s in (MAXWORDS-3-2: Asterisk 22 wants MORE words than
maximum_number_of_words), and it is also longer than any ``greeting`` up to 2.8 s (LONGGREETING)
and has no pause as long as after_greeting_silence, so other settings classify it too. Each
call plays its audio from the ACK with 400 ms of silence first: AMD starts listening a little
after the answer, and Asterisk's strict RTP learns the source from those packets.
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from callcenter.core.identifiers import E164_RE
from tests.support.rtp_audio import Segment, Silence, Tone, Voice, audio_pcap
from tests.support.sipp import (
    _CANCELLED,
    SippEvent,
    SippProcess,
    _answer_bye,
    _fail,
    _log,
    free_port,
)

# --------------------------------------------------------------------------- the plan


class Behaviour(enum.Enum):
    HUMAN = "human"
    MACHINE = "machine"
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    ANSWER_THEN_HANG_UP = "answer-then-hang-up"
    FAILED = "failed"
    REFUSED = "refused"


ANSWERING = (Behaviour.HUMAN, Behaviour.MACHINE, Behaviour.ANSWER_THEN_HANG_UP)
REFUSAL_CODES = {Behaviour.BUSY: (486, "Busy Here"),
                 Behaviour.FAILED: (503, "Service Unavailable"),
                 Behaviour.REFUSED: (403, "Forbidden")}

LEAD_IN = Silence(400)  # the answer reaches AMD a little after the ACK reaches us
HELLO: tuple[Segment, ...] = (LEAD_IN, Voice(700, syllables=(0.8, 1.0), pitch_hz=190))
# "Hi, you have reached five five five, oh one. Please leave a message after the tone."
# Ten words, 2.8 s of voice, the pauses between them 100-300 ms (a machine reads on: none as
# long as AMD's after_greeting_silence), 4.2 s from the first word to the last.
GREETING: tuple[Segment, ...] = (
    LEAD_IN,
    Voice(240, (1.0,), 200), Silence(120), Voice(400, (0.9, 1.0, 0.7), 185), Silence(100),
    Voice(300, (1.0, 0.8), 180), Silence(300),
    Voice(260, (1.0,), 175), Silence(100), Voice(260, (0.9,), 170), Silence(100),
    Voice(260, (1.0,), 170), Silence(200),
    Voice(180, (0.8,), 190), Silence(100), Voice(360, (1.0, 0.7), 175), Silence(300),
    Voice(300, (1.0, 0.8), 200), Silence(100), Voice(240, (0.9,), 185), Silence(100),
)
BEEP: tuple[Segment, ...] = (Silence(400), Tone(500, 1000.0))
GREETING_MS = sum(s.ms for s in GREETING[1:]) - GREETING[-1].ms  # first word to last


@dataclass(frozen=True)
class Persona:
    """A number's behaviour with timings of its own (None: the plan's).

    ``ring_ms``: how long it rings before answering. ``hangup_after_ms``: a HUMAN or an
    ANSWER_THEN_HANG_UP hangs up that long after answering (a HUMAN with None waits for the
    far end's BYE).
    """

    behaviour: Behaviour
    ring_ms: int | None = None
    hangup_after_ms: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.behaviour, Behaviour):
            raise ValueError(f"{self.behaviour!r} is not a Behaviour")
        if self.ring_ms is not None and (self.ring_ms < 0 or self.behaviour not in ANSWERING):
            raise ValueError(f"{self}: ring_ms is 0 or more, for a number that answers")
        if self.hangup_after_ms is not None and (
                self.hangup_after_ms < 100 or self.behaviour not in HANGING_UP):
            raise ValueError(f"{self}: hangup_after_ms is at least 100, for a human or a "
                             "number that answers then hangs up")


HANGING_UP = (Behaviour.HUMAN, Behaviour.ANSWER_THEN_HANG_UP)


@dataclass(frozen=True)
class CarrierPlan:
    """Which number does what, and how long things take.

    ``numbers``: E.164 number -> Behaviour, or a Persona (a behaviour with its own timings).
    ``ring_ms``: how long an answering number rings. ``human_hangup_after_ms``: None, a HUMAN
    stays until the far end hangs up (at most ``max_call_ms``); else it hangs up that long
    after answering. ``hang_up_after_ms``: when an ANSWER_THEN_HANG_UP number hangs up after
    answering. ``after_audio_ms``: the silence sent after the hello or the beep (then RTP
    stops; the call goes on).
    """

    numbers: Mapping[str, Behaviour | Persona]
    ring_ms: int = 1000
    human_hangup_after_ms: int | None = None
    hang_up_after_ms: int = 1200
    max_ring_ms: int = 120_000
    max_call_ms: int = 300_000
    after_audio_ms: int = 20_000

    def __post_init__(self) -> None:
        if not self.numbers:
            raise ValueError("a carrier plan needs at least one number")
        for number, behaviour in self.numbers.items():
            if not isinstance(number, str) or not E164_RE.fullmatch(number):
                raise ValueError(f"{number!r} is not an E.164 number")
            if not isinstance(behaviour, Behaviour | Persona):
                raise ValueError(f"{number}: {behaviour!r} is not a Behaviour or a Persona")
        if self.ring_ms < 0 or self.hang_up_after_ms < 100:
            raise ValueError("ring_ms must be 0 or more, hang_up_after_ms at least 100")
        if self.human_hangup_after_ms is not None and self.human_hangup_after_ms < 100:
            raise ValueError("human_hangup_after_ms: at least 100 (or None)")
        if self.after_audio_ms <= 0 or self.after_audio_ms % 20:
            raise ValueError("after_audio_ms: a positive multiple of 20")

    @classmethod
    def mix(cls, counts: Mapping[Behaviour | Persona, int], *, first: str = "+15550100001",
            seed: int = 13, **timings: int | None) -> CarrierPlan:
        """``counts[b]`` numbers of each behaviour (or persona), consecutive from ``first``,
        shuffled (by ``seed``) so that dialling in order meets a mix."""
        if not E164_RE.fullmatch(first):
            raise ValueError(f"{first!r} is not an E.164 number")
        behaviours = [b for b, count in counts.items() for _ in range(count)]
        random.Random(seed).shuffle(behaviours)
        start = int(first[1:])
        numbers = {f"+{start + i}": b for i, b in enumerate(behaviours)}
        return cls(numbers, **timings)  # type: ignore[arg-type]

    def persona(self, number: str) -> Persona:
        """What ``number`` does, every timing filled in from the plan where it has none."""
        given = self.numbers[number]
        persona = given if isinstance(given, Persona) else Persona(given)
        behaviour = persona.behaviour
        ring_ms = persona.ring_ms if persona.ring_ms is not None else self.ring_ms
        hangup_after_ms = persona.hangup_after_ms
        if hangup_after_ms is None and behaviour is Behaviour.HUMAN:
            hangup_after_ms = self.human_hangup_after_ms
        elif hangup_after_ms is None and behaviour is Behaviour.ANSWER_THEN_HANG_UP:
            hangup_after_ms = self.hang_up_after_ms
        return Persona(behaviour, ring_ms if behaviour in ANSWERING else None,
                       hangup_after_ms)

    def behaviour(self, number: str) -> Behaviour:
        given = self.numbers[number]
        return given.behaviour if isinstance(given, Persona) else given

    def of(self, behaviour: Behaviour) -> list[str]:
        """The plan's numbers that behave so, in the plan's order."""
        return [n for n in self.numbers if self.behaviour(n) is behaviour]


# --------------------------------------------------------------------------- the scenario


_HEADERS = """[last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]"""
_CONTACT = "Contact: <sip:carrier@[local_ip]:[local_port];transport=[transport]>"
_SDP = """v=0
      o=carrier 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
      a=sendrecv"""


def _respond(code: int, reason: str) -> str:
    return f"""<send>
    <![CDATA[
      SIP/2.0 {code} {reason}
      {_HEADERS}
      {_CONTACT}
      Content-Length: 0
    ]]>
  </send>"""


def _number_pattern(numbers: Sequence[str]) -> str:
    """Matches an INVITE to one of ``numbers`` (the + may come percent-encoded)."""
    alternatives = "|".join(n.removeprefix("+") for n in numbers)
    return f"^INVITE sip:(\\+|%2[Bb])?({alternatives})@"


def _answer(label: str, ring_ms: int, audio: Path) -> str:
    """Ring (a CANCEL meanwhile ends the call), answer, wait for the ACK, play ``audio``."""
    ring = (f'<recv request="CANCEL" timeout="{ring_ms}" ontimeout="{label}_answer" '
            f'next="cancelled"/>\n  <label id="{label}_answer"/>') if ring_ms else ""
    return f"""{_respond(180, "Ringing")}
  {ring}
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      {_HEADERS}
      {_CONTACT}
      Content-Type: application/sdp
      Content-Length: [len]

      {_SDP}
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  {_log("answered")}
  <nop><action><exec play_pcap_audio="{audio}"/></action></nop>"""


def _wait_then_hang_up(label: str, ms: int) -> str:
    """Wait ``ms`` (the far end's BYE meanwhile is answered), then send our BYE."""
    return (f'<recv request="BYE" timeout="{ms}" ontimeout="{label}_hangs_up" '
            f'next="remote_bye"/>\n  <label id="{label}_hangs_up"/>\n  <nop next="hang_up"/>')


def _branch(plan: CarrierPlan, persona: Persona, label: str, folder: Path | None) -> str:
    """The steps of the calls to the numbers of one persona, from its label."""
    behaviour = persona.behaviour
    steps = [f'<label id="{label}"/>', _log(f"behaviour {behaviour.value}")]
    silence = Silence(plan.after_audio_ms)
    wait_for_bye = f'<recv request="BYE" timeout="{plan.max_call_ms}" next="remote_bye"/>'
    if behaviour in REFUSAL_CODES:
        code, reason = REFUSAL_CODES[behaviour]
        steps += [_respond(code, reason), '<recv request="ACK"/>', _log(f"refused {code}"),
                  '<nop next="end"/>']
    elif behaviour is Behaviour.NO_ANSWER:
        steps += [_respond(180, "Ringing"),
                  f'<recv request="CANCEL" timeout="{plan.max_ring_ms}" '
                  f'ontimeout="{label}_rang_out" next="cancelled"/>',
                  f'<label id="{label}_rang_out"/>',
                  _fail(f"rang {plan.max_ring_ms} ms and nobody cancelled")]
    else:
        assert persona.ring_ms is not None
        if behaviour is Behaviour.MACHINE:
            audio = audio_pcap((*GREETING, *BEEP, silence), "machine-greeting", folder)
        else:
            audio = audio_pcap((*HELLO, silence), "human-hello", folder)
        steps.append(_answer(label, persona.ring_ms, audio))
        steps.append(wait_for_bye if persona.hangup_after_ms is None
                     else _wait_then_hang_up(label, persona.hangup_after_ms))
    return "\n  ".join(steps)


def carrier_scenario(plan: CarrierPlan, audio_folder: Path | None = None) -> str:
    """The SIPp UAS scenario playing ``plan`` (pcap files written to ``audio_folder``)."""
    # One branch per persona (a behaviour and its timings), found by one regular expression
    # listing its numbers; each is a sipp variable set only when the INVITE matches.
    groups: dict[Persona, list[str]] = {}
    for number in plan.numbers:
        groups.setdefault(plan.persona(number), []).append(number)
    labels = {persona: f"{persona.behaviour.value.replace('-', '_')}_{index}"
              for index, persona in enumerate(groups)}
    matches = "\n      ".join(
        f'<ereg regexp="{_number_pattern(numbers)}" search_in="msg" '
        f'assign_to="for_{labels[persona]}"/>' for persona, numbers in groups.items())
    dispatch = "\n  ".join(f'<nop test="for_{label}" next="{label}"/>'
                           for label in labels.values())
    branches = "\n  ".join(_branch(plan, persona, label, audio_folder)
                           for persona, label in labels.items())
    hangs_up = any(persona.hangup_after_ms is not None for persona in groups)
    # Only a carrier that sends a BYE keeps the INVITE's headers: sipp refuses a variable
    # that is set but never used.
    bye_captures = """
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="their_from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="their_to"/>
      <ereg regexp="sip:[^&gt;]*" search_in="hdr" header="Contact:" assign_to="their_contact"/>""" \
        if hangs_up else ""
    # A unique branch per BYE: sipp's [call_number] is unique per call in a plain UAS.
    hang_up = f"""<label id="hang_up"/>
  <send retrans="500">
    <![CDATA[
      BYE [$their_contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-[pid]-[call_number]-bye
      From: [$their_to];tag=[pid]SIPpTag01[call_number]
      To: [$their_from]
      Call-ID: [call_id]
      CSeq: 1 BYE
      {_CONTACT}
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
  {_log("local-bye")}
  <nop next="end"/>""" if hangs_up else ""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- A carrier: what each call does depends on the number in the INVITE's Request-URI. -->
<scenario name="callcenter carrier">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="^INVITE sip:[^@ ;&gt;]+" search_in="msg" assign_to="request_line"/>
      <ereg regexp=".*" search_in="hdr" header="CSeq:" assign_to="invite_cseq"/>{bye_captures}
      {matches}
    </action>
  </recv>
  {_log("invite [$request_line]")}
  {dispatch}
  {_log("unknown-number")}
  {_respond(404, "Not Found")}
  <recv request="ACK"/>
  <nop next="end"/>
  {branches}
  {_CANCELLED}
  {hang_up}
  {_answer_bye()}
  <label id="end"/>
</scenario>
"""


# --------------------------------------------------------------------------- what happened


@dataclass
class CarrierCall:
    """One call the carrier got, on SIPp's clock (ms)."""

    call_id: str
    number: str | None = None  # as dialled, "+..." (None: no readable Request-URI)
    behaviour: Behaviour | None = None  # None: a number the plan lacks
    invited_at_ms: int = 0
    answered_at_ms: int | None = None
    ended_at_ms: int | None = None
    ended_by: str | None = None  # "carrier" (our BYE), "caller" (their BYE), None: no BYE
    cancelled: bool = False  # the caller gave up ringing (CANCEL)
    refused: int | None = None  # the final refusal we sent (486, 503, 403, 404)
    failures: list[str] = field(default_factory=list)  # "failed: ..." events
    events: list[str] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return (self.ended_by is not None or self.cancelled or self.refused is not None
                or bool(self.failures))

    @property
    def bye_received(self) -> bool:
        return self.ended_by == "caller"

    @property
    def talk_ms(self) -> int | None:
        if self.answered_at_ms is None or self.ended_at_ms is None:
            return None
        return self.ended_at_ms - self.answered_at_ms


def carrier_calls(events: Sequence[SippEvent]) -> list[CarrierCall]:
    """Per-call records from a carrier's events, in the order the INVITEs came."""
    calls: dict[str, CarrierCall] = {}
    for event in events:
        call = calls.get(event.call)
        if call is None:
            call = calls[event.call] = CarrierCall(call_id=event.call, invited_at_ms=event.at_ms)
        call.events.append(event.name)
        name, _, detail = event.name.partition(" ")
        if name == "invite":
            user = detail.removeprefix("INVITE sip:")
            call.number = "+" + user.lstrip("+").removeprefix("%2B").removeprefix("%2b")
            call.invited_at_ms = event.at_ms
        elif name == "behaviour":
            call.behaviour = Behaviour(detail)
        elif name == "answered":
            call.answered_at_ms = event.at_ms
        elif name in ("local-bye", "remote-bye"):
            call.ended_by = "carrier" if name == "local-bye" else "caller"
            call.ended_at_ms = event.at_ms
        elif name == "cancelled":
            call.cancelled = True
            call.ended_at_ms = event.at_ms
        elif name == "refused":
            call.refused = int(detail)
            call.ended_at_ms = event.at_ms
        elif name == "unknown-number":
            call.refused = 404
            call.ended_at_ms = event.at_ms
        elif name == "failed:":
            call.failures.append(event.name)
    return sorted(calls.values(), key=lambda c: c.invited_at_ms)


# --------------------------------------------------------------------------- the process


class Carrier:
    """The carrier's sipp process on ``port`` (the trunk's ``trunk_host`` port).

    ``calls``: sipp exits after that many calls (None: runs until stopped). Use it as a
    context manager, or ``start()`` and ``stop()``: it never outlives the test.
    """

    def __init__(self, plan: CarrierPlan, *, port: int | None = None, calls: int | None = None,
                 timeout_s: float = 900, name: str = "carrier") -> None:
        self.plan = plan
        self.port = port or free_port()
        self.process = SippProcess(carrier_scenario(plan), port=self.port, name=name,
                                   calls=calls if calls is not None else 1_000_000,
                                   timeout_s=timeout_s)

    def start(self) -> Carrier:
        self.process.start()
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def calls_so_far(self) -> list[CarrierCall]:
        return carrier_calls(self.process.events_so_far())

    async def wait_for_calls(self, count: int, timeout: float) -> list[CarrierCall]:
        """Poll until ``count`` calls have ended; AssertionError after ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            calls = self.calls_so_far()
            ended = sum(call.ended for call in calls)
            if ended >= count:
                return calls
            if loop.time() > deadline:
                output = "" if self.process.running() else self.process.result().describe()
                raise AssertionError(f"carrier: {ended} of {count} calls ended within "
                                     f"{timeout} s: {calls}\n{output}")
            await asyncio.sleep(0.2)

    def stop(self) -> list[CarrierCall]:
        """Stop sipp (if still running) and return every call it logged."""
        self.process.stop()
        return carrier_calls(self.process.result().events)

    def __enter__(self) -> Carrier:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.process.stop()
        if kind is None:
            self.process.cleanup()
