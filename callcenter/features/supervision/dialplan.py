"""The dialplan of supervision and transfers: where the service sends channels by AMI.

Three contexts, reached only through the service's AMI actions (no endpoint's context includes
them, so no phone can dial into them):

``callcenter-supervision-ring`` and ``callcenter-supervision``
    The service originates ``Local/to-<phone>@callcenter-supervision-ring/n``: its ring half
    (``;2``) dials the supervisor's phone; once it answers, the spying half (``;1``) runs
    ``spy-<mode>-<agent id>``: ``ChanSpy`` on the agent's phone channel (``PJSIP/<agent
    id>-…``, a ring-mode agent's call leg or a nailed-up agent's bridge seat alike): ``q`` no
    beep or channel name, ``E`` the supervisor's call ends with the agent's channel, ``S`` it
    ends at once if there is none; ``w`` the supervisor whispers to the agent only, ``B`` the
    supervisor talks to both. The ring goes through a Local channel so that the call to the
    supervisor's phone is no call record (the phone's own channel would look like a call from
    that phone).

    When the supervisor hangs up, the whole session must go. ChanSpy cannot leave on its own
    while the agent's channel carries no audio: on its way out it waits for the spied
    channel's next audio frame to release its audio hooks (Asterisk issue #978, still so in
    22.10), so on a silent call (phones that send no RTP, silence suppression, a muted
    softphone) the spying half lived on until the agent's call ended, one more per session.
    So the ring half does not simply hang up after the supervisor (``Dial`` option ``g``): it
    hangs up the spying half itself, gives it half a second to go (it goes at once whenever
    the agent's call carries audio), and if it is still there, joins the agent's bridge for
    at most ``NUDGE_SECONDS``: with a third member the bridge mixes and writes audio frames
    to every member, which lets ChanSpy go, and the spying half's end ends the ring half.
    The extension names carry the ``to-`` prefix so that ``h``/``e`` (hang-up, exception)
    never match the phone pattern.

``callcenter-transfer``
    A caller an agent transferred is redirected (``Redirect``) into ``q-<queue>`` or
    ``a-<agent id>``, which hands the call back to the service's FastAGI script ``transfer``
    (``queue,<name>`` or ``agent,<id>``). If the service cannot be reached the caller is not
    lost: ``CALLCENTER_QUEUE`` names the target queue (for an agent: the queue the caller was
    in) and the fallback context queues them in Asterisk's own queue; ``CALLCENTER_STAGE`` is
    ``transferred`` so the fallback does not take them for a finished call.

``callcenter-consult``
    An attended transfer's consult call. AMI ``Atxfer`` on the first agent's phone leg plays
    the ``atxfer`` feature code (``features.conf``) and then the extension as DTMF, so the
    extension is digits only: a six-digit token (``consult_token``) the service registers
    just before as the global variable ``CC_CONSULT_<token>`` = ``<agent id>/<ring seconds>``.
    The consult rings that agent for that long (``t``: they may hand the caller on in turn).
    The global is cleared at once: a token dials once. An unknown token hangs up, which ends
    the consult and gives the first agent the caller back. ``leg`` is the predial handler of
    agents' phone legs (``Dial`` option ``b``): it points their ``TRANSFER_CONTEXT`` here, so
    an agent pressing the feature code on their phone can only reach a registered consult.

Names reach these extensions inside the extension itself; ``FILTER`` keeps only the
characters an agent id or queue name may have, whatever the service sent. Pattern prefixes
avoid the letters ``n``, ``x`` and ``z``, which Asterisk patterns read as digit classes.
"""

from __future__ import annotations

from enum import StrEnum

from callcenter.core.identifiers import AGENT_ID_RE, QUEUE_NAME_RE

SUPERVISION_CONTEXT = "callcenter-supervision"
SUPERVISOR_RING_CONTEXT = "callcenter-supervision-ring"
TRANSFER_CONTEXT = "callcenter-transfer"
CONSULT_CONTEXT = "callcenter-consult"
CONSULT_VARIABLE_PREFIX = "CC_CONSULT_"  # + token: the global naming the consulted agent
CONSULT_TOKEN_DIGITS = 6
AGENT_LEG_EXTENSION = "leg"  # the predial handler of agents' phone legs
# Dial option for an agent's phone leg: attended transfers by them (``t``) go to consults only.
AGENT_LEG_DIAL_OPTIONS = f"tb({CONSULT_CONTEXT}^{AGENT_LEG_EXTENSION}^1)"
TRANSFER_SCRIPT = "transfer"  # the FastAGI path of transferred callers
TRANSFERRED_STAGE = "transferred"  # CALLCENTER_STAGE of a caller on their way to a new queue
TO_QUEUE = "queue"  # the transfer script's first argument: what the second one names
TO_AGENT = "agent"
# An agent id or a queue name (one rule for both, core/identifiers.py); FILTER keeps only
# these characters.
NAME_RE = AGENT_ID_RE
assert NAME_RE.pattern == QUEUE_NAME_RE.pattern, "the extensions carry both under one rule"
_NAME_CHARACTERS = "a-z0-9_\\-"


class SpyMode(StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


# ChanSpy's options per mode (see the module docstring).
SPY_OPTIONS = {SpyMode.LISTEN: "qES", SpyMode.WHISPER: "qESw", SpyMode.BARGE: "qESB"}
_SPY_PREFIX = {SpyMode.LISTEN: "spy-q-", SpyMode.WHISPER: "spy-w-", SpyMode.BARGE: "spy-b-"}
_RING_PREFIX = "to-"  # not a bare name: "h" or "e" would run at hang-up or on an exception
# How long a spying half may take to go by itself once told to (with audio: milliseconds).
SPY_END_GRACE_SECONDS = 0.5
# The longest a ring half stays in the agent's bridge to let a stuck spying half go.
NUDGE_SECONDS = 2
# The spying (;1) half of the ring half's own Local pair; ';' escaped for extensions.conf.
_SPYING_HALF = "${CUT(CHANNEL,\\;,1)}\\;1"
_QUEUE_PREFIX = "q-"
_AGENT_PREFIX = "a-"


def _name(what: str, value: str) -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not a name of lower-case letters, digits, _ and -")
    return value


def spy_extension(mode: SpyMode, agent_id: str) -> str:
    """Where the supervisor's phone is sent to spy on ``agent_id`` in ``mode``."""
    return _SPY_PREFIX[SpyMode(mode)] + _name("agent id", agent_id)


def supervisor_ring_channel(phone: str) -> str:
    """The channel to originate to ring the supervisor's ``phone`` (an endpoint name)."""
    return f"Local/{_RING_PREFIX}{_name('phone', phone)}@{SUPERVISOR_RING_CONTEXT}/n"


def queue_transfer_extension(queue: str) -> str:
    """Where a caller transferred to ``queue`` is redirected."""
    return _QUEUE_PREFIX + _name("queue", queue)


def agent_transfer_extension(agent_id: str) -> str:
    """Where a caller transferred to the agent ``agent_id`` is redirected."""
    return _AGENT_PREFIX + _name("agent id", agent_id)


def consult_token(number: int) -> str:
    """The consult extension for the ``number``-th consult (wraps around)."""
    return str(number % 10**CONSULT_TOKEN_DIGITS).zfill(CONSULT_TOKEN_DIGITS)


def consult_variable(token: str) -> str:
    """The global variable that names the agent a consult ``token`` rings."""
    return CONSULT_VARIABLE_PREFIX + token


def consult_target(agent_id: str, ring_seconds: int) -> str:
    """The value of a consult's global variable."""
    return f"{_name('agent id', agent_id)}/{max(1, int(ring_seconds))}"


def _filtered_tail(prefix: str) -> str:
    """The dialplan expression of the extension's name part, unsafe characters dropped."""
    exten = f"${{EXTEN:{len(prefix)}}}" if prefix else "${EXTEN}"
    return f"${{FILTER({_NAME_CHARACTERS},{exten})}}"


def supervision_contexts(agi_url: str, fallback_context: str) -> list[str]:
    """The contexts' text; ``agi_url`` is ``agi://host:port/<secret>`` (confgen.agi_url)."""
    ring = [
        "; Rings a supervisor's phone (the Local channel the service originates); the",
        "; Originate's timeout ends the ring. When the supervisor hangs up, this half ends",
        "; the spying half and, if it is stuck (ChanSpy waits for audio on the agent's",
        "; channel to let go), joins the agent's bridge a moment so that audio flows.",
        f"[{SUPERVISOR_RING_CONTEXT}]",
        f"exten => _{_RING_PREFIX}.,1,Dial(PJSIP/{_filtered_tail(_RING_PREFIX)},,g)",
        ' same => n,GotoIf($["${DIALSTATUS}" != "ANSWER"]?done)',
        f" same => n,Set(SPYING={_SPYING_HALF})",
        " same => n,Set(SPIED=${IMPORT(${SPYING},SPIED)})",
        " same => n,SoftHangup(${SPYING})",
        f" same => n,Wait({SPY_END_GRACE_SECONDS})",
        f" same => n,Set(TIMEOUT(absolute)={NUDGE_SECONDS})",
        ' same => n,ExecIf($["${SPIED}" != ""]?BridgeAdd(${SPIED}))',
        " same => n(done),Hangup()",
    ]
    spy = [
        "; Supervisors: once their phone answered, spy-<mode>-<agent> listens to (q),",
        "; whispers to (w) or barges into (B) the agent's phone channel.",
        f"[{SUPERVISION_CONTEXT}]",
    ]
    for mode, prefix in _SPY_PREFIX.items():
        spy += [
            f"exten => _{prefix}.,1,Set(SPIED=PJSIP/{_filtered_tail(prefix)}-)",
            f" same => n,ChanSpy(${{SPIED}},{SPY_OPTIONS[mode]})",
            " same => n,Hangup()",
        ]
    script = f"{agi_url}/{TRANSFER_SCRIPT}"
    transfer = [
        "; Callers an agent transferred: back to the service's queues (q-<queue>, a-<agent>);",
        "; the fallback queues them if the service cannot be reached.",
        f"[{TRANSFER_CONTEXT}]",
        f"exten => _{_QUEUE_PREFIX}.,1,Set(CALLCENTER_QUEUE={_filtered_tail(_QUEUE_PREFIX)})",
        f" same => n,Set(CALLCENTER_STAGE={TRANSFERRED_STAGE})",
        f" same => n,AGI({script},{TO_QUEUE},${{CALLCENTER_QUEUE}})",
        f" same => n,Goto({fallback_context},s,1)",
        f"exten => _{_AGENT_PREFIX}.,1,Set(CALLCENTER_STAGE={TRANSFERRED_STAGE})",
        f" same => n,AGI({script},{TO_AGENT},{_filtered_tail(_AGENT_PREFIX)})",
        f" same => n,Goto({fallback_context},s,1)",
    ]
    pattern = "X" * CONSULT_TOKEN_DIGITS
    transfer += [
        "; Attended transfers: the consult call to the agent the service registered for the",
        "; token (global CC_CONSULT_<token> = <agent>/<ring seconds>); agents' phone legs get",
        "; TRANSFER_CONTEXT pointing here from the predial handler `leg`.",
        f"[{CONSULT_CONTEXT}]",
        f"exten => _{pattern},1,Set(TARGET=${{{CONSULT_VARIABLE_PREFIX}${{EXTEN}}}})",
        f" same => n,Set(GLOBAL({CONSULT_VARIABLE_PREFIX}${{EXTEN}})=)",
        f" same => n,Set(CONSULTED=${{FILTER({_NAME_CHARACTERS},${{CUT(TARGET,/,1)}})}})",
        " same => n,Set(RING=${FILTER(0-9,${CUT(TARGET,/,2)})})",
        ' same => n,GotoIf($["${CONSULTED}" = "" | "${RING}" = ""]?unknown)',
        f" same => n,Dial(PJSIP/${{CONSULTED}},${{RING}},{AGENT_LEG_DIAL_OPTIONS})",
        " same => n(unknown),Hangup()",
        f"exten => {AGENT_LEG_EXTENSION},1,Set(TRANSFER_CONTEXT={CONSULT_CONTEXT})",
        " same => n,Return()",
    ]
    # One entry with the transfer context: callers of this function take three.
    return ["\n".join(lines) + "\n" for lines in (ring, spy, transfer)]
