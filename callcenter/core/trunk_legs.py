"""Which legs of a call crossed a trunk, and their billable seconds (issue 14's rating).

Pure: made from a closed ``CallRecord``; its times are Asterisk's (answer and hangup events,
as the ledger wrote them), in POSIX seconds. A leg's billable seconds run from its answer to
its hangup; a leg nobody answered crossed the trunk but costs nothing, so it is no leg here.

- **An inbound call** (a caller dialled in): the caller's own channel is the leg, answered
  when we answered the caller (``answered_at``, the IVR's answer) and ended when the call
  ended. It crossed a trunk when the channel's endpoint is one of ``trunks`` (an agent's
  phone calling the IVR crosses none); a record without a channel (written from Asterisk's
  own log while the service could not see it) is taken to have come over a trunk, which one
  unknown (``trunk`` None: only rates for every trunk apply). The leg is priced by the
  **caller's number**: a carrier that charges the called party (a toll-free line) charges by
  where the call comes from.
- **An outbound campaign call, or a call of a callback**: the customer's leg, from the
  customer's answer (``answered_at``) to the end, on ``outbound_trunk`` (the one trunk the
  service dials through), priced by the number dialled (the record's ``caller_number``
  holds the customer called, docs/records.md).
- **A transfer out of the IVR** (features/ivr/transfer_out.py) to an outside number or an
  extension behind the trunk: a second leg, outbound on ``outbound_trunk``, from the far
  end's answer to the end of that leg (``CallRecord.outside_legs``, as Asterisk's Dial()
  timed it), priced by the number dialled. Unanswered ones cost nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from callcenter.core.records import CallRecord, Direction

# "PJSIP/<endpoint>-<sequence>" (and "SIP/", "IAX2/" alike): the endpoint a channel is on.
_CHANNEL_RE = re.compile(r"^[A-Za-z0-9]+/(?P<endpoint>.+)-[0-9a-fA-F]+$")


class LegKind(StrEnum):
    CALLER = "caller"  # an inbound caller's own channel
    CUSTOMER = "customer"  # the customer we called: a campaign's call, a callback
    TRANSFER_OUT = "transfer_out"  # the IVR dialled an outside number for the caller


@dataclass(frozen=True)
class TrunkLeg:
    kind: LegKind
    direction: Direction
    number: str | None  # the number that prices it; None: unknown (the leg is unpriced)
    trunk: str | None  # None: the trunk is unknown, only rates for every trunk apply
    answered_at: float
    ended_at: float

    @property
    def billable_seconds(self) -> float:
        return max(0.0, self.ended_at - self.answered_at)


def channel_endpoint(channel: str | None) -> str | None:
    """The endpoint of an Asterisk channel name: ``PJSIP/callcenter-trunk-0000002a`` is on
    ``callcenter-trunk``. None for a Local channel's or anything else's."""
    if channel is None or channel.startswith("Local/"):
        return None
    found = _CHANNEL_RE.fullmatch(channel)
    return None if found is None else found.group("endpoint")


@dataclass(frozen=True)
class Trunks:
    """Which endpoints are trunks (an inbound caller on one crossed a trunk) and the one the
    service dials out through (campaigns, callbacks, the IVR's transfers out)."""

    inbound: frozenset[str]
    outbound: str

    def legs_of(self, record: CallRecord) -> list[TrunkLeg]:
        return trunk_legs(record, trunks=self.inbound, outbound_trunk=self.outbound)


def trunk_legs(record: CallRecord, *, trunks: frozenset[str], outbound_trunk: str,
               ) -> list[TrunkLeg]:
    """The trunk legs of a closed record (an open one has none yet), in call order."""
    if record.ended_at is None or record.answered_at is None:
        return []
    answered, ended = record.answered_at, max(record.ended_at, record.answered_at)
    if record.direction is Direction.OUTBOUND or record.callback_of is not None:
        return [TrunkLeg(LegKind.CUSTOMER, Direction.OUTBOUND, record.caller_number,
                         outbound_trunk, answered, ended)]
    # The caller's own leg crossed a trunk unless it came from an extension or a Local channel.
    trunk = None if record.channel is None else channel_endpoint(record.channel)
    caller = [] if record.channel is not None and trunk not in trunks else [
        TrunkLeg(LegKind.CALLER, Direction.INBOUND, record.caller_number, trunk, answered, ended)]
    return caller + [
        TrunkLeg(LegKind.TRANSFER_OUT, Direction.OUTBOUND, leg.number, outbound_trunk,
                 leg.answered_at, max(leg.ended_at, leg.answered_at))
        for leg in record.outside_legs if leg.answered_at is not None]
