"""Transfers out of the IVR: a flow ending in ``{extension: "2001"}`` or ``{external: "+55..."}``.

``transfer()`` first checks the destination against the ``[outbound]`` settings: without a
trunk the transfer is *unavailable*, and a destination the settings do not allow is *refused*
(nothing is dialled). Both come back as an outcome with a reason, never as an exception, so
the caller can be told and the record says why.

An allowed destination is dialled through the generated dialplan context
(``Local/<number>@callcenter-outbound``, see ``confgen``), which sets the caller ID of
outside calls and sends them to the trunk. Dial's ``g`` option brings control back here when
the far end hangs up, with the caller still on the line: so an answered transfer that
returns was ended by the far end, and a caller who hangs up raises ``AgiHangup`` as
everywhere else. The caller is left on the line: the handler apologises or hangs up.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import StrEnum

from callcenter.asterisk.agi import AgiCommandError
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.confgen import OUTBOUND_CONTEXT, TRANSFER_OUT_VARIABLE
from callcenter.config import OutboundSettings, Settings, extension_pattern_regex
from callcenter.core.flows.names import EXTENSION_RE
from callcenter.core.identifiers import E164_RE
from callcenter.core.records import HangupBy

log = logging.getLogger(__name__)

EXTENSION = "extension"
EXTERNAL = "external"
# Our Dial() waits a little longer than the dialplan's own Dial() to the trunk, so that the
# trunk's answer (NOANSWER after outbound.dial_timeout) is the one we read.
LOCAL_DIAL_GRACE_SECONDS = 5


class TransferResult(StrEnum):
    ANSWERED = "answered"  # the far end answered, talked, then hung up
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    UNAVAILABLE = "unavailable"  # no trunk, or the trunk could not take the call
    REFUSED = "refused"  # the settings do not allow this destination: nothing was dialled


@dataclass(frozen=True)
class TransferOutcome:
    result: TransferResult
    kind: str
    destination: str
    reason: str  # one line for logs and records, e.g. "+1212... is not in allowed_prefixes"
    dial_status: str | None = None  # Asterisk's DIALSTATUS; None when nothing was dialled

    @property
    def answered(self) -> bool:
        return self.result is TransferResult.ANSWERED

    @property
    def hangup_by(self) -> HangupBy:
        """Who ended the call once ``transfer()`` returned: after an answered transfer the
        far end did (it takes the agent's place); otherwise we end it (apology, hangup)."""
        return HangupBy.AGENT if self.answered else HangupBy.SYSTEM


_STATUS_RESULTS = {
    "ANSWER": TransferResult.ANSWERED,
    "BUSY": TransferResult.BUSY,
    "NOANSWER": TransferResult.NO_ANSWER,
    "CANCEL": TransferResult.NO_ANSWER,
}
_STATUS_REASONS = {
    "ANSWER": "answered; the far end hung up",
    "BUSY": "the destination is busy",
    "NOANSWER": "nobody answered",
    "CANCEL": "the dialling was cancelled",
    "CONGESTION": "the trunk is congested or refused the call",
    "CHANUNAVAIL": "the trunk or the outbound dialplan could not take the call",
}


def refusal(kind: str, destination: str, outbound: OutboundSettings) -> str | None:
    """Why ``outbound`` forbids dialling this destination; None when it is allowed.

    Extensions must match one of ``extension_patterns``, outside numbers must be strict
    E.164 and start with one of ``allowed_prefixes``. Empty lists allow nothing.
    """
    if kind == EXTENSION:
        if not EXTENSION_RE.fullmatch(destination):
            return f"extension {destination!r} is not 1-20 digits"
        if not outbound.extension_patterns:
            return "no extension may be dialled: outbound.extension_patterns is empty"
        if not any(extension_pattern_regex(p).fullmatch(destination)
                   for p in outbound.extension_patterns):
            patterns = ", ".join(outbound.extension_patterns)
            return (f"extension {destination} matches none of outbound.extension_patterns "
                    f"({patterns})")
        return None
    if kind == EXTERNAL:
        if not E164_RE.fullmatch(destination):
            return f"outside number {destination!r} is not strict E.164"
        if not outbound.allowed_prefixes:
            return "no outside number may be dialled: outbound.allowed_prefixes is empty"
        if not destination.startswith(tuple(outbound.allowed_prefixes)):
            prefixes = ", ".join(outbound.allowed_prefixes)
            return (f"outside number {destination} starts with none of "
                    f"outbound.allowed_prefixes ({prefixes})")
        return None
    return f"unknown transfer kind {kind!r} (expected {EXTENSION!r} or {EXTERNAL!r})"


def dial_arguments(destination: str, outbound: OutboundSettings) -> str:
    """The arguments of our Dial(): the outbound context through a Local channel (``/n``:
    kept to the end, so its dialplan reports the trunk's status), a timeout, ``g``."""
    if not re.fullmatch(r"\+?[0-9]{1,20}", destination):  # checked by refusal(); never '&' or ','
        raise ValueError(f"{destination!r} is not a number to dial")
    seconds = outbound.dial_timeout + LOCAL_DIAL_GRACE_SECONDS
    return f"Local/{destination}@{OUTBOUND_CONTEXT}/n,{seconds},g"


def outcome_of(kind: str, destination: str, dial_status: str) -> TransferOutcome:
    """What Dial's DIALSTATUS means for the transfer."""
    result = _STATUS_RESULTS.get(dial_status, TransferResult.UNAVAILABLE)
    reason = _STATUS_REASONS.get(dial_status, "the call could not be placed")
    return TransferOutcome(result, kind, destination, f"{reason} ({dial_status})", dial_status)


async def transfer(session: AgiSession, kind: str, destination: str,
                   settings: Settings) -> TransferOutcome:
    """Dial ``destination`` for the caller on ``session`` and wait until that call is over.

    Returns the outcome; raises ``AgiHangup`` when the caller hangs up (while it rings or
    while they talk). The caller's channel is left up: end it after an answered transfer,
    apologise otherwise.
    """
    outbound = settings.outbound
    if not outbound.has_trunk:
        outcome = TransferOutcome(TransferResult.UNAVAILABLE, kind, destination,
                                  "no outbound trunk is configured (outbound.trunk_host)")
    elif (why := refusal(kind, destination, outbound)) is not None:
        outcome = TransferOutcome(TransferResult.REFUSED, kind, destination, why)
    else:
        outcome = await _dial(session, kind, destination, outbound)
    # Not dialled at all: the flow and the settings disagree, which an admin must fix.
    level = logging.INFO if outcome.dial_status else logging.WARNING
    log.log(level, "call %s: transfer to %s %s: %s (%s)", session.env.uniqueid, kind,
            destination, outcome.result, outcome.reason)
    return outcome


async def _dial(session: AgiSession, kind: str, destination: str,
                outbound: OutboundSettings) -> TransferOutcome:
    # Inherited by the Local channel: its context reports the leg when it ends, for rating.
    await session.set_variable(f"__{TRANSFER_OUT_VARIABLE}", "1")
    try:
        await session.exec("Dial", dial_arguments(destination, outbound))
    except AgiCommandError as exc:
        return TransferOutcome(TransferResult.UNAVAILABLE, kind, destination,
                               f"Dial failed: {exc}")
    status = await session.get_variable("DIALSTATUS") or "UNKNOWN"
    return outcome_of(kind, destination, status)
