"""The dialplan of callbacks (virtual hold and the IVR's callback requests).

The callback dialer (``callcenter.features.callbacks.dialer``) originates over AMI; Asterisk
runs these contexts, whose FastAGI script ``callback`` hands every step back to the service:

``callcenter-callback``, the originated channel once it answered:

    agent     a ring-mode agent picked up: the service dials the customer from this channel
              (``Local/<number>@callcenter-outbound``) and the two talk
    customer  the customer of a nailed-up agent picked up: the service joins them to the
              agent's bridge

``callcenter-callback-answered``, run by ``Dial``'s ``U()`` option on the customer's leg the
moment they answer (before the agent is bridged): the service counts the talk from then and
tells the customer who calls. Its only argument is the dialer's attempt token.

Each step carries that token (``CALLCENTER_CALLBACK``, set by the Originate, or the ``U()``
argument): the service never reads a number or a destination from the channel. If the
service cannot be reached the originated channel is hung up; a customer already answered is
still bridged to the agent (the ``U()`` routine returns whatever the script did).
"""

from __future__ import annotations

import re

CALLBACK_CONTEXT = "callcenter-callback"
RING_CONTEXT = "callcenter-callback-ring"
ANSWERED_CONTEXT = "callcenter-callback-answered"
SCRIPT = "callback"
TOKEN_VARIABLE = "CALLCENTER_CALLBACK"
AGENT_VARIABLE = "CALLCENTER_CALLBACK_AGENT"
RING_VARIABLE = "CALLCENTER_CALLBACK_RING"
AGENT_STEP = "agent"
CUSTOMER_STEP = "customer"
ANSWERED_STEP = "answered"
# Tokens are made by the dialer; anything else is refused before it reaches a dial string.
TOKEN_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def checked_token(token: str) -> str:
    if not TOKEN_RE.fullmatch(token):
        raise ValueError(f"{token!r} is not a callback token (letters, digits, '-')")
    return token


def answered_option(token: str) -> str:
    """Dial()'s option that runs the ``answered`` step on the customer's leg."""
    return f"U({ANSWERED_CONTEXT}^{checked_token(token)})"


def callback_contexts(agi_url: str, enabled: bool) -> list[str]:
    """The two contexts, or none when callbacks cannot be dialled (no outbound trunk).

    ``agi_url`` is ``agi://host:port/<secret>`` of the service's FastAGI server (confgen.agi_url).
    """
    if not enabled:
        return []
    script = f"{agi_url}/{SCRIPT}"
    callback = "\n".join([
        "; Callbacks: the service originated this channel and it answered (see the",
        "; callcenter.features.callbacks.dialplan module).",
        f"[{CALLBACK_CONTEXT}]",
        *(line
          for step in (AGENT_STEP, CUSTOMER_STEP)
          for line in (f"exten => {step},1,AGI({script},{step},${{{TOKEN_VARIABLE}}})",
                       " same => n,Hangup()")),
        "",
    ])
    answered = "\n".join([
        "; The customer of a callback answered; Dial's U() runs this on their leg.",
        f"[{ANSWERED_CONTEXT}]",
        f"exten => s,1,AGI({script},{ANSWERED_STEP},${{ARG1}})",
        " same => n,Return()",
        "",
    ])
    ring = "\n".join([
        "; Rings a ring-mode agent for a callback (the Local channel the service originates).",
        "; The Originate's reason tells how it ended: busy, congestion, or a hang-up.",
        f"[{RING_CONTEXT}]",
        f"exten => s,1,Dial(PJSIP/${{{AGENT_VARIABLE}}},"
        f"${{{RING_VARIABLE}}})",
        ' same => n,GotoIf($["${DIALSTATUS}" = "BUSY"]?busy)',
        ' same => n,GotoIf($["${DIALSTATUS}" = "NOANSWER"]?unanswered)',
        " same => n,Congestion()",
        " same => n(busy),Busy()",
        " same => n(unanswered),Hangup()",
        "",
    ])
    return [ring, callback, answered]
