"""The dialplan of supervision and transfers: where the service sends channels by AMI.

Three contexts, reached only through the service's AMI actions (no endpoint's context includes
them, so no phone can dial into them):

``callcenter-supervision-ring`` and ``callcenter-supervision``
    The service originates ``Local/<phone>@callcenter-supervision-ring/n``, which rings the
    supervisor's phone; once it answers, the Local channel runs ``spy-<mode>-<agent id>``:
    ``ChanSpy`` on the agent's phone channel (``PJSIP/<agent id>-…``, a ring-mode agent's call
    leg or a nailed-up agent's bridge seat alike): ``q`` no beep or channel name, ``E`` the
    supervisor's call ends with the agent's channel, ``S`` it ends at once if there is none;
    ``w`` the supervisor whispers to the agent only, ``B`` the supervisor talks to both. The
    ring goes through a Local channel so that the call to the supervisor's phone is no call
    record (the phone's own channel would look like a call from that phone).

``callcenter-transfer``
    A caller an agent transferred is redirected (``Redirect``) into ``q-<queue>`` or
    ``a-<agent id>``, which hands the call back to the service's FastAGI script ``transfer``
    (``queue,<name>`` or ``agent,<id>``). If the service cannot be reached the caller is not
    lost: ``CALLCENTER_QUEUE`` names the target queue (for an agent: the queue the caller was
    in) and the fallback context queues them in Asterisk's own queue; ``CALLCENTER_STAGE`` is
    ``transferred`` so the fallback does not take them for a finished call.

Names reach these extensions inside the extension itself; ``FILTER`` keeps only the
characters an agent id or queue name may have, whatever the service sent. Pattern prefixes
avoid the letters ``n``, ``x`` and ``z``, which Asterisk patterns read as digit classes.
"""

from __future__ import annotations

import re
from enum import StrEnum

SUPERVISION_CONTEXT = "callcenter-supervision"
SUPERVISOR_RING_CONTEXT = "callcenter-supervision-ring"
TRANSFER_CONTEXT = "callcenter-transfer"
TRANSFER_SCRIPT = "transfer"  # the FastAGI path of transferred callers
TRANSFERRED_STAGE = "transferred"  # CALLCENTER_STAGE of a caller on their way to a new queue
TO_QUEUE = "queue"  # the transfer script's first argument: what the second one names
TO_AGENT = "agent"
# An agent id or a queue name (config.py's rules); FILTER keeps only these characters.
NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_NAME_CHARACTERS = "a-z0-9_\\-"


class SpyMode(StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


# ChanSpy's options per mode (see the module docstring).
SPY_OPTIONS = {SpyMode.LISTEN: "qES", SpyMode.WHISPER: "qESw", SpyMode.BARGE: "qESB"}
_SPY_PREFIX = {SpyMode.LISTEN: "spy-q-", SpyMode.WHISPER: "spy-w-", SpyMode.BARGE: "spy-b-"}
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
    return f"Local/{_name('phone', phone)}@{SUPERVISOR_RING_CONTEXT}/n"


def queue_transfer_extension(queue: str) -> str:
    """Where a caller transferred to ``queue`` is redirected."""
    return _QUEUE_PREFIX + _name("queue", queue)


def agent_transfer_extension(agent_id: str) -> str:
    """Where a caller transferred to the agent ``agent_id`` is redirected."""
    return _AGENT_PREFIX + _name("agent id", agent_id)


def _filtered_tail(prefix: str) -> str:
    """The dialplan expression of the extension's name part, unsafe characters dropped."""
    exten = f"${{EXTEN:{len(prefix)}}}" if prefix else "${EXTEN}"
    return f"${{FILTER({_NAME_CHARACTERS},{exten})}}"


def supervision_contexts(agi_url: str, fallback_context: str) -> list[str]:
    """The contexts' text; ``agi_url`` is ``agi://host:port`` of the service."""
    ring = [
        "; Rings a supervisor's phone (the Local channel the service originates); the",
        "; Originate's timeout ends the ring.",
        f"[{SUPERVISOR_RING_CONTEXT}]",
        f"exten => _[a-z]!,1,Dial(PJSIP/{_filtered_tail('')})",
        " same => n,Hangup()",
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
    return ["\n".join(lines) + "\n" for lines in (ring, spy, transfer)]
