"""From a campaign and what Asterisk said to the calling rules' and pacing's terms.

Pure: the dialer service (features/campaigns/dialer.py) reads the campaign, the list entry
and Asterisk's answers, and asks here what they mean:

- ``calling_rules`` / ``pacing_rules``: a stored campaign as the rules dial_rules.py and
  pacing.py take;
- ``callee_places``: where a list entry's callee may be (its time zones) and whose public
  holidays apply there (the number's country, when the campaign skips holidays);
- ``unanswered_outcome``: an Originate that was not answered, from the channel's hangup
  cause (Q.850) when AMI showed it, else the OriginateResponse's Reason;
- ``answered_outcome``: an answered call, from ``AMDSTATUS``;
- ``pacing_agents``: the queue's agents as pacing counts them (ready for a campaign call,
  or busy and free again soon), after the inbound callers waiting for them;
- ``TrunkWatch``: many calls in a row failed and none answered: the trunk refuses them, and
  the campaign pauses itself rather than burning its list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

from callcenter.core.acd_actions import AgentState, AgentView
from callcenter.core.campaigns import Campaign
from callcenter.core.dial_rules import (
    CalleePlace,
    CallingRules,
    Outcome,
    parse_calling_hours,
)
from callcenter.core.hours import HolidayRegion
from callcenter.core.pacing import AgentPhase, BusyAgent, DialResult, PacingRules

# OriginateResponse's Reason: the last control frame the channel saw (Asterisk's
# AST_CONTROL_* numbers). 5 busy, 8 congestion (the carrier or trunk failed the call),
# 3 ringing when the timeout (the ring time) ran out; 1 the far end hung up before answering
# (a rejected call); 0 no channel could be made at all.
_REASONS = {"5": Outcome.BUSY, "8": Outcome.FAILED, "3": Outcome.NO_ANSWER,
            "1": Outcome.NO_ANSWER, "0": Outcome.FAILED}
# Q.850 hangup causes of a call that was never answered. A SIP 486 arrives as cause 17 with
# Reason 0 on a PJSIP channel, so the cause is the better witness when there is one.
_CAUSES = {17: Outcome.BUSY, 18: Outcome.NO_ANSWER, 19: Outcome.NO_ANSWER,
           21: Outcome.NO_ANSWER}  # 21: declined by the callee, who may answer another time
# The AMD statuses a person gets an agent for; NOTSURE errs on the side of the person.
_HUMAN = frozenset({"HUMAN", "NOTSURE"})
TRUNK_FAILURES_TO_PAUSE = 10


def calling_rules(campaign: Campaign) -> CallingRules:
    return CallingRules(
        caller_id=campaign.caller_id,
        calling_hours=parse_calling_hours(dict(campaign.hours)),
        ring_time=float(campaign.ring_seconds),
        max_attempts=campaign.max_attempts,
        retry_delays={outcome: minutes * 60.0
                      for outcome, minutes in campaign.retry_minutes.items()},
        consent_scope=campaign.name if campaign.requires_consent else None,
    )


def pacing_rules(campaign: Campaign, *, max_lines: int | None = None) -> PacingRules:
    return PacingRules(mode=campaign.mode, amd=campaign.amd,
                       ring_seconds=float(campaign.ring_seconds), max_lines=max_lines)


OUTBOUND_PRIORITY = -1  # behind inbound callers (the ACD's priority 0) in the same queue
AHEAD_OF_INBOUND_PRIORITY = 1  # a campaign set to go ahead of them


def queue_priority(campaign: Campaign) -> int:
    """The ACD priority of the campaign's answers (higher is served first; inbound is 0)."""
    return AHEAD_OF_INBOUND_PRIORITY if campaign.ahead_of_inbound else OUTBOUND_PRIORITY


def callee_places(number: str, time_zones: Sequence[str], *,
                  skip_holidays: bool) -> tuple[CalleePlace, ...]:
    """The callee's places: each time zone of the entry, with the number's country's public
    holidays when the campaign skips them (and the holidays package knows the country)."""
    region = _holiday_region(_country(number)) if skip_holidays else None
    return tuple(CalleePlace(zone, region) for zone in time_zones)


@lru_cache(maxsize=512)
def _holiday_region(country: str | None) -> HolidayRegion | None:
    if country is None:
        return None
    try:
        return HolidayRegion(country)
    except ValueError:  # a country the holidays package does not know: no holidays known
        return None


def _country(number: str) -> str | None:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed)
    return region if region and region != "001" else None


def unanswered_outcome(reason: str, cause: int | None = None) -> Outcome:
    """An Originate's failure: from the hangup ``cause`` when it says busy or unanswered,
    else from the Reason (the ring time running out is Reason 3 whatever the cause; other
    causes, such as congestion or an unallocated number, and unknown reasons count as
    failed)."""
    reason = reason.strip()
    if reason == "3":
        return Outcome.NO_ANSWER
    if cause is not None and cause in _CAUSES:
        return _CAUSES[cause]
    if cause not in (None, 0, 16):  # a cause that names a failure beats a vague Reason
        return Outcome.FAILED
    return _REASONS.get(reason, Outcome.FAILED)


def is_human(amd_status: str | None) -> bool:
    """Whether an answered call gets an agent as a person: no AMD ran (None), or AMD said
    HUMAN or NOTSURE."""
    return amd_status is None or amd_status.strip().upper() in _HUMAN


def dial_result(outcome: Outcome) -> DialResult:
    """What pacing learns from an attempt's outcome."""
    if outcome in (Outcome.HUMAN, Outcome.DROPPED):
        return DialResult.LIVE
    if outcome is Outcome.MACHINE:
        return DialResult.MACHINE
    return DialResult.UNANSWERED


@dataclass(frozen=True)
class PacingAgents:
    ready: int  # ready for a campaign call (after the inbound callers waiting for them)
    busy: tuple[BusyAgent, ...]  # on a call or in wrap-up: free again soon
    logged_in: int  # ready, busy or paused


def pacing_agents(members: Sequence[AgentView], waiting_inbound: int) -> PacingAgents:
    """The queue's agents as pacing sees them: inbound callers already waiting take the ready
    agents first (they keep priority), and an agent whose phone cannot be reached is not
    ready for anyone."""
    ready = 0
    busy: list[BusyAgent] = []
    logged_in = 0
    for agent in members:
        if agent.state is AgentState.LOGGED_OUT:
            continue
        logged_in += 1
        if agent.state is AgentState.READY and agent.reachable:
            ready += 1
        elif agent.state in (AgentState.ON_CALL, AgentState.RINGING):
            busy.append(BusyAgent(AgentPhase.TALKING, agent.since))
        elif agent.state is AgentState.WRAP_UP:
            busy.append(BusyAgent(AgentPhase.WRAP_UP, agent.since))
    return PacingAgents(max(0, ready - waiting_inbound), tuple(busy), logged_in)


class TrunkWatch:
    """Counts calls that failed in a row (congestion, refused) with no answer between; at
    ``limit`` the trunk is taken to refuse the campaign's calls."""

    def __init__(self, limit: int = TRUNK_FAILURES_TO_PAUSE) -> None:
        self.limit = limit
        self.failed_in_a_row = 0

    def ended(self, outcome: Outcome) -> bool:
        """One call's outcome; True when the trunk now counts as refusing every call."""
        if outcome is Outcome.FAILED:
            self.failed_in_a_row += 1
        elif outcome is not Outcome.BUSY:  # a busy callee says nothing about the trunk
            self.failed_in_a_row = 0
        return self.failed_in_a_row >= self.limit

    def reset(self) -> None:
        self.failed_in_a_row = 0
