"""The dialplan of outbound campaigns.

The campaign dialer (``callcenter.features.campaigns.dialer``) places each call with an AMI
``Originate`` of ``PJSIP/<number>@callcenter-trunk`` (the number strict E.164, checked by
``dial_channel``), its ring time as the Originate's timeout. A call not answered ends
there: the OriginateResponse's Reason says how (busy, congestion, no answer). A call
answered runs ``answered`` in ``callcenter-campaign``:

- with answering machine detection on (``CALLCENTER_CAMPAIGN_AMD`` = 1), Asterisk's ``AMD()``
  listens first and leaves ``AMDSTATUS`` (HUMAN, MACHINE, NOTSURE, HANGUP) for the service;
- the FastAGI script ``campaign`` then hands the call to the service with the attempt's
  token (``CALLCENTER_ATTEMPT``, set by the Originate): the service never reads a number or
  a destination from the channel;
- if the service cannot be reached, the customer hears the campaign's safe-harbor message
  (``CALLCENTER_SAFE_HARBOR``, a prompt name checked by the dialer) and is hung up, rather
  than silence: the call counts as abandoned in the dialer's records once it is back.

Nothing here is reachable from a phone: no endpoint's context includes these contexts.

Agents set the disposition of their latest outbound call with ``*55N`` (the campaign's Nth
disposition, 1-9) from their phone: the FastAGI script ``disposition`` with N
(``disposition_code_lines``, in the ``agents`` context).
"""

from __future__ import annotations

import re

from callcenter.core.identifiers import BUILT_PROMPT_NAME_RE, E164_RE

CAMPAIGN_CONTEXT = "callcenter-campaign"
SCRIPT = "campaign"
DISPOSITION_SCRIPT = "disposition"
DISPOSITION_CODE = "*55"
ANSWERED_STEP = "answered"
TOKEN_VARIABLE = "CALLCENTER_ATTEMPT"
AMD_VARIABLE = "CALLCENTER_CAMPAIGN_AMD"
SAFE_HARBOR_VARIABLE = "CALLCENTER_SAFE_HARBOR"
# Tokens are made by the dialer; anything else is refused before it reaches Asterisk.
TOKEN_RE = re.compile(r"^cmp-[a-z0-9-]{1,60}$")


def checked_token(token: str) -> str:
    if not TOKEN_RE.fullmatch(token):
        raise ValueError(f"{token!r} is not a campaign attempt token")
    return token


def dial_channel(number: str, trunk_endpoint: str) -> str:
    """The Originate's channel: the number through the trunk, only if it is strict E.164."""
    if not E164_RE.fullmatch(number):
        raise ValueError(f"{number!r} is not an E.164 number")
    return f"PJSIP/{number}@{trunk_endpoint}"


def originate_variables(token: str, *, amd: bool, safe_harbor_prompt: str) -> list[str]:
    """The channel variables the ``answered`` extension reads."""
    if not BUILT_PROMPT_NAME_RE.fullmatch(safe_harbor_prompt):
        raise ValueError(f"{safe_harbor_prompt!r} is not a prompt name")
    return [f"{TOKEN_VARIABLE}={checked_token(token)}",
            f"{AMD_VARIABLE}={1 if amd else 0}",
            f"{SAFE_HARBOR_VARIABLE}={safe_harbor_prompt}"]


def campaign_contexts(agi_url: str, enabled: bool) -> list[str]:
    """The campaign context, or none when nothing can be dialled (no outbound trunk).

    ``agi_url`` is ``agi://host:port/<secret>`` of the service's FastAGI server."""
    if not enabled:
        return []
    return ["\n".join([
        "; Outbound campaigns: the dialer originated this call through the trunk and the",
        "; customer answered (see callcenter.features.campaigns.dialplan).",
        f"[{CAMPAIGN_CONTEXT}]",
        f'exten => {ANSWERED_STEP},1,GotoIf($["${{{AMD_VARIABLE}}}" = "1"]?amd:step)',
        " same => n(amd),AMD()",
        f" same => n(step),AGI({agi_url}/{SCRIPT},{ANSWERED_STEP},${{{TOKEN_VARIABLE}}})",
        # The service hangs up every call it finishes: still up means it was not there.
        f" same => n,Playback(callcenter/${{{SAFE_HARBOR_VARIABLE}}})",
        " same => n,Hangup()",
        "",
    ])]


def disposition_code_lines(agi_url: str) -> list[str]:
    """``*551`` .. ``*559`` for the ``agents`` context: the service finds the agent by the
    channel's endpoint and their latest call by the agent."""
    return [
        "; Agents' disposition of their latest outbound call: *55N, the campaign's Nth.",
        f"exten => _{DISPOSITION_CODE}[1-9],1,Answer()",
        f" same => n,AGI({agi_url}/{DISPOSITION_SCRIPT},${{EXTEN:3}})",
        " same => n,Hangup()",
    ]
