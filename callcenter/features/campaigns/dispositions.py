"""What an agent says about an outbound call once it is over: the disposition (one of the
campaign's), notes, and "call back at".

Set once per attempt, by the agent who took the call (API, or the feature code ``*55N`` on
their phone for the campaign's Nth disposition, on their latest call), or by a supervisor,
campaign manager or admin. A disposition of kind ``do_not_call`` puts the number on the
campaign's do-not-call list and records a revocation in the consent ledger at once, so the
dialer's next look at the number (always fresh, at dial time) refuses it. "Call back at" is a
wall-clock time in the callee's own time zone; it replaces the retry delay, still waits for
the calling hours, and may be personal (only the agent who set it takes that call).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.prompting import play
from callcenter.core.calls import agent_from_channel
from callcenter.core.campaigns import Campaign, Disposition
from callcenter.core.clock import Clock
from callcenter.core.consent import ConsentKind, ConsentSource
from callcenter.core.dial_rules import DispositionKind, call_back_time
from callcenter.features.campaigns.attempts import AttemptStore
from callcenter.features.campaigns.store import CampaignNotFound, CampaignRepository
from callcenter.features.compliance.store import ComplianceStore

log = logging.getLogger(__name__)

MAX_NOTES_CHARS = 2000
MAX_CALL_BACK_DAYS = 90
FEATURE_CODE_HOURS = 2.0  # *55N applies to the agent's latest call of the last two hours
SAVED_PROMPT = "campaign-disposition-saved"
REFUSED_PROMPT = "agent-refused"


class DispositionRefused(ValueError):
    """The request does not fit the campaign or the call (a 400 naming the field)."""


class NotYourCall(PermissionError):
    """An agent may dispose only of the calls they took."""


class AlreadyDisposed(ValueError):
    """The attempt has its disposition (a 409; the stored one is in the message)."""


class AttemptNotFound(LookupError):
    pass


@dataclass(frozen=True)
class DispositionRequest:
    disposition: str
    notes: str | None = None
    call_back_at: datetime | None = None  # wall-clock time in the callee's zone, no offset
    personal: bool = False  # the call back goes to this agent only


class Dispositions:
    def __init__(self, *, attempts: AttemptStore, campaigns: CampaignRepository,
                 compliance: ComplianceStore, clock: Clock) -> None:
        self._attempts = attempts
        self._campaigns = campaigns
        self._compliance = compliance
        self._clock = clock

    async def set(self, campaign_name: str, attempt_id: int, request: DispositionRequest, *,
                  by: str, agent_id: str | None, for_any_call: bool) -> dict[str, Any]:
        """Store the disposition; ``agent_id`` is the asking agent's, ``for_any_call`` for
        supervisors, campaign managers and admins."""
        campaign = await self._campaign(campaign_name)
        attempt = await self._attempts.get(campaign_name, attempt_id)
        if attempt is None:
            raise AttemptNotFound(f"campaign {campaign_name!r} has no attempt {attempt_id}")
        if not for_any_call and (agent_id is None or attempt["agent_id"] != agent_id):
            raise NotYourCall(f"attempt {attempt_id} was not your call")
        if attempt["agent_id"] is None:
            raise DispositionRefused(f"attempt {attempt_id}: no agent took this call, so it "
                                     "has no disposition (its outcome is "
                                     f"{attempt['outcome'] or 'not known yet'})")
        disposition = _known(campaign, request.disposition)
        call_back = await self._call_back_instant(attempt, disposition, request)
        personal_agent = attempt["agent_id"] if request.personal and call_back else None
        if request.personal and call_back is None:
            raise DispositionRefused("personal: only a call back at a time can be personal")
        stored = await self._attempts.dispose(
            attempt_id, disposition=disposition.name, notes=request.notes or None,
            call_back_at=call_back, call_back_agent=personal_agent, by=by,
            at=self._clock.now())
        if not stored:
            current = await self._attempts.get(campaign_name, attempt_id)
            theirs = current["disposition"] if current else "?"
            raise AlreadyDisposed(f"attempt {attempt_id} already has the disposition "
                                  f"{theirs!r}")
        if disposition.kind is DispositionKind.DO_NOT_CALL:
            await self._stop_calls(campaign, attempt["number"], by, disposition.name)
        log.info("campaign %s: attempt %d disposed as %s by %s", campaign_name, attempt_id,
                 disposition.name, by)
        result = await self._attempts.get(campaign_name, attempt_id)
        assert result is not None
        return result

    async def by_feature_code(self, agent_id: str, position: int) -> dict[str, Any]:
        """``*55N`` from the agent's phone: the Nth disposition on their latest call."""
        since = self._clock.now() - FEATURE_CODE_HOURS * 3600
        attempt = await self._attempts.last_undisposed(agent_id, since)
        if attempt is None:
            raise DispositionRefused(f"agent {agent_id} has no outbound call without a "
                                     "disposition in the last two hours")
        campaign = await self._campaign(attempt["campaign"])
        if not 1 <= position <= len(campaign.dispositions):
            raise DispositionRefused(f"disposition code {position}: campaign "
                                     f"{campaign.name!r} has 1-{len(campaign.dispositions)}")
        name = campaign.dispositions[position - 1].name
        return await self.set(campaign.name, attempt["id"], DispositionRequest(name),
                              by=f"agent {agent_id} (phone)", agent_id=agent_id,
                              for_any_call=False)

    async def handle(self, session: AgiSession) -> None:
        """The ``disposition`` FastAGI script: the code's digit as its argument."""
        agent_id = agent_from_channel(session.env.channel)
        digit = session.env.args[0] if session.env.args else ""
        try:
            if agent_id is None or not digit.isdigit():
                raise DispositionRefused(f"{session.env.channel!r} dialled a disposition code "
                                         f"{digit!r}")
            await self.by_feature_code(agent_id, int(digit))
        except (ValueError, LookupError, PermissionError) as exc:
            log.info("disposition code refused: %s", exc)
            await play(session, REFUSED_PROMPT)
            return
        await play(session, SAVED_PROMPT)

    async def _campaign(self, name: str) -> Campaign:
        try:
            return await self._campaigns.get(name)
        except CampaignNotFound:
            raise AttemptNotFound(f"no campaign {name!r}") from None

    async def _call_back_instant(self, attempt: dict[str, Any], disposition: Disposition,
                                 request: DispositionRequest) -> float | None:
        if request.call_back_at is None:
            return None
        if disposition.kind is not DispositionKind.RETRY:
            raise DispositionRefused(
                f"call_back_at: only a retry disposition calls back; {disposition.name!r} is "
                f"{disposition.kind.value}")
        zones = await self._attempts.time_zones(attempt["entry_id"])
        zone = zones[0] if zones else "UTC"
        try:
            at = call_back_time(request.call_back_at, zone)
        except ValueError as exc:
            raise DispositionRefused(f"call_back_at: {exc}") from None
        now = self._clock.now()
        if at <= now:
            raise DispositionRefused(f"call_back_at: {request.call_back_at.isoformat()} in "
                                     f"{zone} has passed")
        if at > now + MAX_CALL_BACK_DAYS * 86400:
            raise DispositionRefused(f"call_back_at: more than {MAX_CALL_BACK_DAYS} days ahead")
        return at

    async def _stop_calls(self, campaign: Campaign, number: str, by: str, name: str) -> None:
        reason = f"disposition {name} by {by}"
        await self._compliance.add_do_not_call(number, campaign.name, source="agent",
                                               reason=reason, added_by=by)
        await self._compliance.record_consent(number, campaign.name, ConsentKind.REVOKED,
                                              source=ConsentSource.AGENT, proof=reason,
                                              recorded_by=by)


def _known(campaign: Campaign, name: str) -> Disposition:
    for disposition in campaign.dispositions:
        if disposition.name == name:
            return disposition
    known = ", ".join(d.name for d in campaign.dispositions)
    raise DispositionRefused(f"disposition: {name[:40]!r} is not one of campaign "
                             f"{campaign.name!r}'s: {known}")
