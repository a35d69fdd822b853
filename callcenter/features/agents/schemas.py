"""What the agents API takes and answers: one pydantic model per shape (see web/contract.py).

The models validate requests (400 naming the field), serialise answers and generate the
OpenAPI document; ``Agent.fields_of`` is the one place an agent becomes JSON."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field
from pydantic.json_schema import WithJsonSchema

from callcenter.core.acd import AgentView
from callcenter.core.acd_actions import AgentState as LiveState
from callcenter.core.acd_actions import ConnectMode
from callcenter.core.identifiers import AGENT_ID_RE as NEW_AGENT_ID_RE
from callcenter.core.registrations import Registration as PhoneRegistration
from callcenter.features.agents.admin import (
    PHONE_RE,
    REQUESTS,
    AgentChange,
    AgentStatus,
)
from callcenter.features.agents.store import AGENT_ID_RE, MAX_NAME_CHARS, SIP_SECRET_RE, SKILL_RE
from callcenter.features.agents.store import MAX_TIER as STORED_MAX_TIER
from callcenter.web.contract import (
    JSON_OBJECT_VALIDATOR,
    TEXT_VALIDATOR,
    Answer,
    Body,
    Flag,
    JsonObject,
    PathArgs,
    Seconds,
    Text,
    Time,
    TimeParam,
    TimeRange,
    fail,
    one_of,
    pattern_text,
    whole_match,
    whole_param,
)
from callcenter.web.params import MAX_LIMIT, QUEUE_NAME, iso

TIERS_SCHEMA = {
    "type": "object",
    "propertyNames": whole_match(QUEUE_NAME),
    "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 9},
    "description": "queue -> tier: 0 primary; k helps once the queue's k-th tier delay passed "
                   "(k at most the number of the queue's tier_delays)",
}
SKILLS_SCHEMA = {
    "type": "object",
    "propertyNames": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,39}$"},
    "additionalProperties": {"type": "integer", "minimum": 1, "maximum": 10},
    "description": "skill -> level, 1 (some) to 10 (expert)",
}
SKILL_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,39}")
SKILL_LEVELS = range(1, 11)


def _skill_name(name: object) -> object:
    if not isinstance(name, str) or not SKILL_NAME_RE.fullmatch(name):
        fail("not a skill name (a lowercase letter, then up to 39 lowercase letters, digits, "
             "'-' or '_')")
    return name


def _skill_level(level: object) -> object:
    if isinstance(level, bool) or not isinstance(level, int) or level not in SKILL_LEVELS:
        fail(f"level {repr(level)[:40]} is not a whole number from 1 to 10")
    return level


# skill -> level, checked here; the directory (features/agents/store.py) checks what it stores.
Skills = Annotated[dict[Annotated[str, BeforeValidator(_skill_name)],
                        Annotated[int, BeforeValidator(_skill_level)]] | None,
                   JSON_OBJECT_VALIDATOR]
NAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS}
WARNINGS = Field(description="what did not go through (the change itself is stored), e.g. "
                             "Asterisk could not be updated")
AGENT_CHANGES = ("The agent is stored first, then the live ACD follows, then Asterisk's "
                 "generated SIP accounts and fallback queues are rewritten and reloaded. If "
                 "that last step fails the change still stands (2xx) and `warnings` says so; "
                 "Asterisk follows at the next change or restart. Overflow tiers (1 and up) "
                 "take effect in routing at the next restart (`warnings` says so too). A bad "
                 "value (unknown queue, tier the queue lacks, skill level outside 1-10) is a "
                 "400 and nothing is stored.")


# ----------------------------------------------------------------------- what is sent


class AgentPath(PathArgs):
    id: Annotated[pattern_text(AGENT_ID_RE, "an agent id (1-40 letters, digits, '-' or '_')",
                               description="an agent's id, also their SIP user name"),
                  Field(description="the agent's id")]


class NewAgent(Body):
    """A new agent: queues and skills optional."""

    id: pattern_text(NEW_AGENT_ID_RE, "an agent id (a lowercase letter, then up to 31 lowercase "
                     "letters, digits, '-' or '_')",
                     description="the agent's id, also their SIP user name")
    name: Annotated[Text, WithJsonSchema(NAME_SCHEMA)]
    queues: Annotated[JsonObject | None, WithJsonSchema(TIERS_SCHEMA)] = None
    skills: Annotated[Skills, WithJsonSchema(SKILLS_SCHEMA)] = None


# null is refused like any other wrong type: the validators run before None could match.
_OptText = Annotated[str | None, TEXT_VALIDATOR]


class AgentChanges(Body):
    """Only the fields given change; queues and skills are replaced whole. Deactivating logs
    the agent out and takes them out of routing."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    # Checked in this order (by name), as the API always did.
    active: Annotated[Flag | None, WithJsonSchema({"type": "boolean"})] = None
    name: Annotated[_OptText, WithJsonSchema(NAME_SCHEMA)] = None
    queues: Annotated[JsonObject | None, WithJsonSchema(TIERS_SCHEMA)] = None
    skills: Annotated[Skills, WithJsonSchema(SKILLS_SCHEMA)] = None


class StateRequest(Body):
    # Which pause reasons exist and which fields go with which state are the service's
    # rules (features/agents/admin.py); the shapes are checked here, in this order.
    state: one_of(REQUESTS)
    reason: Annotated[_OptText, WithJsonSchema({
        **whole_match(QUEUE_NAME), "description": "a configured pause reason (RONA included); "
        "required for `paused`, refused otherwise"})] = None
    phone: pattern_text(PHONE_RE, "a phone name (1-64 letters, digits, '.', '_', '-', '+' "
                        "or '~')", nullable=True,
                        description="a name for the phone the agent logs in on (default: "
                                    "their id, the PJSIP endpoint calls ring); another "
                                    "agent's id is refused") = None
    mode: one_of(ConnectMode, default="ring",
                 description="for `logged_in`; `nailed` is refused here") = "ring"


class HistoryQuery(TimeRange):
    since: Annotated[TimeParam, Field(description="changes at or after this time (default: a "
                                                  "day before `until`, or before now)")] = None
    until: Annotated[TimeParam, Field(description="only what happened before this time "
                                                  "(after since)")] = None
    limit: Annotated[whole_param(1, MAX_LIMIT),
                     Field(description="the most changes in one answer (the oldest first)")
                     ] = MAX_LIMIT


# ----------------------------------------------------------------------- what is answered

AgentRef = Annotated[str, WithJsonSchema({**whole_match(AGENT_ID_RE), "description":
                                           "an agent's id, also their SIP user name"})]
_Secret = Annotated[str, WithJsonSchema({**whole_match(SIP_SECRET_RE), "description":
                                         "the SIP password; shown only this once"})]
_Names = Annotated[str, WithJsonSchema({"type": "string"})]


class AgentState(Answer):
    """An agent's state in the live ACD."""

    state: one_of(LiveState)
    reason: str | None = Field(description="the pause reason, 'login', 'call ended', ...")
    since: Time
    idle_since: Time
    phone: str | None = Field(description="the phone logged in on; null when logged out")
    mode: Annotated[str | None, WithJsonSchema(
        {"anyOf": [{"type": "string", "enum": [str(m) for m in ConnectMode]},
                   {"type": "null"}]})]
    call_id: str | None = Field(description="the call ringing them or talking to them")
    deferred: Annotated[str | None, WithJsonSchema(
        {"anyOf": [{"type": "string", "enum": ["pause", "logout"]}, {"type": "null"}],
         "description": "asked for during a call: applies when it ends"})]
    calls_answered: int = Field(ge=0, description="since login")
    talk_seconds: Seconds = Field(description="since login")

    @classmethod
    def of(cls, view: AgentView) -> AgentState:
        return cls(state=view.state.value, reason=view.reason, since=iso(view.since),
                   idle_since=iso(view.idle_since), phone=view.phone,
                   mode=None if view.mode is None else view.mode.value, call_id=view.call_id,
                   deferred=view.deferred, calls_answered=view.calls_answered,
                   talk_seconds=round(view.talk_time, 3))


class Registration(Answer):
    """The agent's phone as Asterisk sees it."""

    registered: bool = Field(description="Asterisk has a contact for the phone")
    reachable: bool = Field(description="and can ring it")
    changed_at: Time | None
    roundtrip_usec: int | None = Field(ge=0, description="the last qualify's round trip")

    @classmethod
    def of(cls, registration: PhoneRegistration) -> Registration:
        return cls(registered=registration.registered, reachable=registration.reachable,
                   changed_at=iso(registration.changed_at),
                   roundtrip_usec=registration.roundtrip_usec)


_StoredTiers = Annotated[dict[str, int], WithJsonSchema({
    **TIERS_SCHEMA, "additionalProperties": {"type": "integer", "minimum": 0,
                                             "maximum": STORED_MAX_TIER}})]
_StoredSkills = Annotated[dict[str, int], WithJsonSchema({
    **SKILLS_SCHEMA, "propertyNames": whole_match(SKILL_RE)})]


class Agent(Answer):
    """Never the SIP secret."""

    id: AgentRef
    name: Annotated[str, WithJsonSchema(NAME_SCHEMA)]
    active: bool = Field(description="inactive agents take no calls and have no SIP account")
    queues: _StoredTiers
    skills: _StoredSkills
    created_at: Time
    updated_at: Time
    state: AgentState | None = Field(description="null: inactive")
    registration: Registration

    @classmethod
    def fields_of(cls, agent: AgentStatus) -> dict[str, Any]:
        """The one place an agent becomes its JSON fields (every answer about an agent)."""
        account = agent.account
        return {"id": account.id, "name": account.name, "active": account.active,
                "queues": dict(account.queues), "skills": dict(account.skills),
                "created_at": iso(account.created_at), "updated_at": iso(account.updated_at),
                "state": None if agent.live is None else AgentState.of(agent.live),
                "registration": Registration.of(agent.registration)}

    @classmethod
    def of(cls, agent: AgentStatus) -> Agent:
        return cls(**cls.fields_of(agent))


class ChangedAgent(Agent):
    """The agent as stored now."""

    warnings: list[str] = WARNINGS

    @classmethod
    def of_change(cls, change: AgentChange) -> ChangedAgent:
        return cls(**cls.fields_of(change.status), warnings=list(change.warnings))


class CreatedAgent(ChangedAgent):
    """The new agent and, this once, their SIP secret."""

    sip_secret: _Secret

    @classmethod
    def of_new(cls, change: AgentChange) -> CreatedAgent:
        return cls(**cls.fields_of(change.status), warnings=list(change.warnings),
                   sip_secret=change.status.account.sip_secret)


class AgentList(Answer):
    agents: list[Agent]


class AgentSecret(Answer):
    agent_id: AgentRef
    sip_secret: Annotated[str, WithJsonSchema({**whole_match(SIP_SECRET_RE), "description":
                                               "the new SIP password; shown only this once"})]
    warnings: list[str] = WARNINGS


class AgentRequestOutcome(Answer):
    agent_id: AgentRef
    requested: one_of(REQUESTS)
    deferred: bool = Field(description="true: applies when the call ends")
    message: str = Field(description="what happened, in words")
    state: AgentState


class AgentStateChange(Answer):
    at: Time
    state: str = Field(description="as AgentState.state")
    previous: str
    reason: str | None


class AgentHistory(Answer):
    """Oldest first."""

    agent_id: AgentRef
    since: Time
    until: Time | None
    limit: int = Field(ge=1, le=MAX_LIMIT)
    truncated: bool = Field(description="more changes follow in the range: ask from the "
                                        "last one")
    changes: list[AgentStateChange]


