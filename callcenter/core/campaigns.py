"""An outbound campaign: its settings and its life (created, running, paused, stopped).

Pure values and rules: the state and the request in, the new state or the reason it is
refused out. The dialer follows the state; it also pauses a campaign itself (no agent logged
in, a trunk that refuses every call), with the reason, through the same table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class CampaignMode(StrEnum):
    PREVIEW = "preview"  # the agent sees the customer's row, then dials or skips
    PROGRESSIVE = "progressive"  # one call per free agent
    PREDICTIVE = "predictive"  # more calls than free agents, paced under the abandon cap


class MachineAction(StrEnum):
    """What a call answered by a machine (Asterisk's AMD) gets."""

    HANG_UP = "hang_up"
    LEAVE_MESSAGE = "leave_message"
    TO_AGENT = "to_agent"


class DispositionKind(StrEnum):
    FINAL = "final"  # the number is done with
    RETRY = "retry"  # dial again after the retry delay (or at the agent's "call back at")
    DO_NOT_CALL = "do_not_call"  # the number joins the do-not-call list at once


class RetryOutcome(StrEnum):
    """Outcomes of a dial attempt that may be retried; each has its own delay."""

    BUSY = "busy"
    NO_ANSWER = "no_answer"
    MACHINE = "machine"
    FAILED = "failed"  # congestion, a trunk's refusal
    DROPPED = "dropped"  # answered, then abandoned or hung up before an agent


@dataclass(frozen=True)
class Disposition:
    code: str  # what the agent sets: "sale", "not_interested", ...
    label: str
    kind: DispositionKind


# The law's and the rivals' usual defaults (DOMAIN.md): 3 % abandons, at least 15 s of ring.
MAX_ABANDON_CAP_PERCENT = 3.0
MIN_RING_SECONDS = 15
DEFAULT_RETRY_MINUTES: Mapping[RetryOutcome, int] = {
    RetryOutcome.BUSY: 10, RetryOutcome.NO_ANSWER: 60, RetryOutcome.MACHINE: 240,
    RetryOutcome.FAILED: 30, RetryOutcome.DROPPED: 60,
}
DEFAULT_DISPOSITIONS = (
    Disposition("sale", "Sale", DispositionKind.FINAL),
    Disposition("call_back", "Call back", DispositionKind.RETRY),
    Disposition("not_interested", "Not interested", DispositionKind.FINAL),
    Disposition("do_not_call", "Do not call", DispositionKind.DO_NOT_CALL),
    Disposition("wrong_number", "Wrong number", DispositionKind.FINAL),
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
    max_attempts: int = 3
    retry_minutes: Mapping[RetryOutcome, int] = field(
        default_factory=lambda: dict(DEFAULT_RETRY_MINUTES))
    ring_seconds: int = 25
    amd: bool = False
    machine_action: MachineAction = MachineAction.HANG_UP
    abandon_cap_percent: float = MAX_ABANDON_CAP_PERCENT
    safe_harbor_prompt: str = "safe-harbor"
    requires_consent: bool = False
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
