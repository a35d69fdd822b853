"""An outbound campaign: its settings and its life (created, running, paused, stopped).

Pure values and rules: the state and the request in, the new state or the reason it is
refused out. The dialer follows the state; it also pauses a campaign itself (no agent logged
in, a trunk that refuses every call), with the reason, through the same table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from callcenter.core.dial_rules import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_DELAYS,
    DEFAULT_RING_TIME,
    MIN_RING_TIME,
    Disposition,
    DispositionKind,
    Outcome,
)


class CampaignMode(StrEnum):
    PREVIEW = "preview"  # the agent sees the customer's row, then dials or skips
    PROGRESSIVE = "progressive"  # one call per free agent
    PREDICTIVE = "predictive"  # more calls than free agents, paced under the abandon cap


class MachineAction(StrEnum):
    """What a call answered by a machine (Asterisk's AMD) gets."""

    HANG_UP = "hang_up"
    LEAVE_MESSAGE = "leave_message"
    TO_AGENT = "to_agent"


# The defaults are the calling rules' (core/dial_rules.py): one home for them.
MIN_RING_SECONDS = int(MIN_RING_TIME)
DEFAULT_SAFE_HARBOR_PROMPT = "safe-harbor"  # a live answer no agent takes within 2 s
MAX_ABANDON_CAP_PERCENT = 3.0  # the law's cap (DOMAIN.md); a campaign may only go lower
DEFAULT_RETRY_MINUTES: Mapping[Outcome, int] = {
    outcome: round(delay / 60) for outcome, delay in DEFAULT_RETRY_DELAYS.items()}
DEFAULT_DISPOSITIONS = (
    Disposition("sale", DispositionKind.FINAL, "Sale"),
    Disposition("call_back", DispositionKind.RETRY, "Call back"),
    Disposition("not_interested", DispositionKind.FINAL, "Not interested"),
    Disposition("do_not_call", DispositionKind.DO_NOT_CALL, "Do not call"),
    Disposition("wrong_number", DispositionKind.FINAL, "Wrong number"),
)


class CampaignState(StrEnum):
    CREATED = "created"  # set up, never started: its settings may change
    RUNNING = "running"  # the dialer places its calls
    PAUSED = "paused"  # no new calls; calls in progress go on; may run again
    STOPPED = "stopped"  # for good: kept for its figures and history, never dials again


# Which state may follow which (a request for the state a campaign is already in is refused
# too: a retried request must not look like a second change).
ALLOWED: dict[CampaignState, frozenset[CampaignState]] = {
    CampaignState.CREATED: frozenset({CampaignState.RUNNING, CampaignState.STOPPED}),
    CampaignState.RUNNING: frozenset({CampaignState.PAUSED, CampaignState.STOPPED}),
    CampaignState.PAUSED: frozenset({CampaignState.RUNNING, CampaignState.STOPPED}),
    CampaignState.STOPPED: frozenset(),
}
# Settings may change while nothing is dialed with them.
EDITABLE = frozenset({CampaignState.CREATED, CampaignState.PAUSED})


@dataclass(frozen=True)
class Campaign:
    """A campaign as stored. ``hours`` is the weekly calling hours in the callee's own time
    (``{"mon-fri": ["09:00-20:00"]}``, the flows' syntax: core/hours.py)."""

    name: str
    mode: CampaignMode
    queue: str
    caller_id: str  # E.164
    default_region: str  # ISO 3166 alpha-2, for numbers written without +country
    hours: Mapping[str, list[str]]
    state: CampaignState = CampaignState.CREATED
    skip_holidays: bool = True
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    retry_minutes: Mapping[Outcome, int] = field(
        default_factory=lambda: dict(DEFAULT_RETRY_MINUTES))
    ring_seconds: int = int(DEFAULT_RING_TIME)
    amd: bool = False
    machine_action: MachineAction = MachineAction.HANG_UP
    abandon_cap_percent: float = MAX_ABANDON_CAP_PERCENT
    safe_harbor_prompt: str = DEFAULT_SAFE_HARBOR_PROMPT
    requires_consent: bool = False
    # Inbound callers keep priority by default: the campaign's answers wait behind those
    # already in its queue. True puts them ahead (a callback campaign for VIPs, say).
    ahead_of_inbound: bool = False
    script: str = ""
    dispositions: tuple[Disposition, ...] = DEFAULT_DISPOSITIONS
    state_reason: str | None = None
    created_by: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    id: int | None = None  # given by the store


class CampaignStateError(ValueError):
    """A state change the campaign's present state does not allow; says why."""


def next_state(name: str, current: CampaignState, wanted: CampaignState) -> CampaignState:
    """``wanted`` if ``current`` allows it; else ``CampaignStateError`` saying why."""
    if wanted is current:
        raise CampaignStateError(f"campaign {name!r} is already {current.value}")
    if wanted not in ALLOWED[current]:
        if current is CampaignState.STOPPED:
            raise CampaignStateError(f"campaign {name!r} is stopped for good; create a new one")
        allowed = ", ".join(sorted(state.value for state in ALLOWED[current]))
        raise CampaignStateError(
            f"campaign {name!r} is {current.value}: it can become {allowed}, not {wanted.value}")
    return wanted


def check_editable(name: str, current: CampaignState) -> None:
    """Settings change only while the campaign dials nothing with them."""
    if current not in EDITABLE:
        hint = "pause it first" if current is CampaignState.RUNNING else "create a new one"
        raise CampaignStateError(
            f"campaign {name!r} is {current.value}: its settings cannot change ({hint})")
