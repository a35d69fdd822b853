"""What the dialing routes take and answer (see web/contract.py): a campaign's attempts, the
agent's disposition of one, and the campaign's live figures."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic.json_schema import WithJsonSchema

from callcenter.core.dial_rules import Outcome
from callcenter.core.identifiers import AGENT_ID_RE
from callcenter.features.campaigns.dispositions import MAX_NOTES_CHARS, DispositionRequest
from callcenter.features.campaigns.schemas import CampaignPath
from callcenter.store.values import MAX_ROW_ID
from callcenter.web.contract import (
    Answer,
    Body,
    Flag,
    Query,
    Time,
    fail,
    one_of,
    pattern_text,
    shown,
    stored_text,
    whole_param,
)
from callcenter.web.params import iso

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
LOCAL_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")


class AttemptPath(CampaignPath):
    attempt_id: Annotated[whole_param(1, MAX_ROW_ID), Field(description="the attempt's id")]


class AttemptsQuery(Query):
    limit: Annotated[whole_param(1, 1000), Field(description="newest first, this many")] = 100


def _local_time(value: object) -> object:
    if value is None:
        return None
    if not isinstance(value, str) or not LOCAL_TIME_RE.fullmatch(value):
        fail(f"expected a wall-clock time in the callee's time zone such as "
             f"2026-12-08T10:30 (no offset), got {shown(value)}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        fail(f"{value!r} is not a date and time")


def _disposition_name(value: object) -> object:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        fail(f"expected a disposition name (lowercase letters, digits, '_'), got {shown(value)}")
    return value


class DispositionBody(Body):
    disposition: Annotated[str, BeforeValidator(_disposition_name),
                           WithJsonSchema({"type": "string", "pattern": NAME_RE.pattern}),
                           Field(description="one of the campaign's dispositions")]
    notes: Annotated[stored_text(0, MAX_NOTES_CHARS),
                     Field(description="what the agent wants remembered")] = ""
    call_back_at: Annotated[datetime | None, BeforeValidator(_local_time),
                            WithJsonSchema({"type": "string", "example": "2026-12-08T10:30"}),
                            Field(description="retry dispositions only: when to call again, "
                                              "a wall-clock time in the callee's own zone")
                            ] = None
    personal: Annotated[Flag, Field(description="the call back goes to this agent only")
                        ] = False

    def request(self) -> DispositionRequest:
        return DispositionRequest(self.disposition, self.notes or None, self.call_back_at,
                                  self.personal)


class AttemptAnswer(Answer):
    id: int
    campaign: str
    list_id: int
    entry_id: int
    number: str
    attempt: int = Field(description="1 for the number's first call")
    placed_at: Time
    answered_at: Time | None
    ended_at: Time | None
    outcome: str | None = Field(description=(
        f"{', '.join(o.value for o in Outcome)}; null while the call is under way"))
    amd_status: str | None = Field(description="AMD()'s verdict, when the campaign uses it")
    hangup_cause: str | None
    abandoned: bool = Field(description="a live answer no agent took within 2 s")
    call_id: str | None = Field(description="the call record's call_id (answered calls)")
    agent_id: str | None
    disposition: str | None
    notes: str | None
    call_back_at: Time | None
    call_back_agent: str | None = Field(description="a personal call back's agent")
    disposed_by: str | None
    disposed_at: Time | None

    @classmethod
    def of(cls, attempt: dict[str, Any]) -> AttemptAnswer:
        times = ("placed_at", "answered_at", "ended_at", "call_back_at", "disposed_at")
        return cls(**{key: iso(value) if key in times else value
                      for key, value in attempt.items()})


class AttemptList(Answer):
    campaign: str
    attempts: list[AttemptAnswer]


class OutcomeCounts(Answer):
    placed: int
    in_flight: int
    human: int
    machine: int
    no_answer: int
    busy: int
    failed: int
    dropped: int
    abandoned: int = Field(description="live answers no agent took within 2 s")


class ListProgress(Answer):
    entries: int = Field(description="numbers on the campaign's active lists")
    called: int = Field(description="called at least once")
    done: int = Field(description="a final outcome, or every attempt used")
    remaining: int
    penetration_percent: float = Field(description="called / entries")


class PacingNow(Answer):
    mode: str = Field(description="how the last decision sized its calls")
    reason: str
    calls: int = Field(description="calls the last decision placed")


class AgentCounts(Answer):
    """The campaign queue's agents by ACD state (core/acd_actions.AgentState)."""

    logged_out: int
    ready: int
    ringing: int
    on_call: int
    wrap_up: int
    paused: int


class CampaignFigures(Answer):
    campaign: str
    state: str
    state_reason: str | None
    ringing: int
    in_amd: int
    waiting_for_agent: int
    abandon_cap_percent: float
    abandon_percent_today: float = Field(description="abandoned / live answers, today (the "
                                                     "center's day, [center] time_zone)")
    abandon_percent_30_days: float = Field(description="the same over a rolling 30 days")
    live_answers_today: int
    abandoned_today: int
    dial_level: float = Field(description="calls in flight per agent at work")
    pacing: PacingNow | None
    agents: AgentCounts
    today: OutcomeCounts = Field(description="attempts placed today (the center's day), by outcome")
    contacts_per_hour: int = Field(description="people reached in the last hour")
    list: ListProgress
    minutes_to_finish: float | None = Field(description=(
        "the numbers left at the last hour's pace; null with no calls in the last hour"))


AgentId = Annotated[pattern_text(AGENT_ID_RE, "an agent id"),
                    Field(description="the agent (an agent may name only themselves)")]


class PreviewBody(Body):
    agent_id: AgentId


class PreviewPath(CampaignPath):
    entry_id: Annotated[whole_param(1, MAX_ROW_ID), Field(description="the previewed entry")]


class PreviewChoice(Body):
    agent_id: AgentId
    action: one_of(("dial", "skip"), description="dial: call the number now, the answer "
                                                 "comes to this agent; skip: not now")


class ExtraField(Answer):
    column: str
    value: str = Field(description="as the list had it; shown as text, never run as a formula")


class PreviewAnswer(Answer):
    campaign: str
    entry_id: int
    number: str
    name: str
    time_zones: list[str]
    extra: list[ExtraField]
    calls_made: int = Field(description="calls to this number so far")
    script: str = Field(description="the campaign's script for the agent")


class PreviewChosen(Answer):
    dialled: bool
    attempt_id: int | None = Field(description="the call placed, when dialled")
