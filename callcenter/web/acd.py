"""Queues and agents, live: ``/api/queues`` and ``/api/agents`` (``ENDPOINTS`` at the end).

Thin: the models below check what the client sent (shapes, types, known values; see
web/contract.py), a handler asks the ``AgentAdmin`` (features/agents/admin.py, which keeps the
rules that need its state) and answers with a model. Errors: 400 bad input,
404 unknown queue or agent, 409 a change the agent's state does not allow (or a taken id),
202 a pause or logout deferred until the agent's call ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

from aiohttp import web
from pydantic import BeforeValidator, ConfigDict, Field
from pydantic.json_schema import WithJsonSchema

from callcenter.config import NAME_RE, STRATEGIES
from callcenter.core.acd import AgentView
from callcenter.core.acd_actions import AgentState as LiveState
from callcenter.core.acd_actions import CallState, ConnectMode
from callcenter.core.callback_offers import NoOfferReason, NotOffered
from callcenter.core.registrations import Registration as PhoneRegistration
from callcenter.features.agents.admin import (
    PHONE_RE,
    REQUESTS,
    AgentChange,
    AgentConflict,
    AgentInputError,
    AgentNotFound,
    AgentStatus,
    DuplicateAgent,
    QueueNotFound,
    QueueStatus,
)
from callcenter.features.agents.store import AGENT_ID_RE, MAX_NAME_CHARS, SIP_SECRET_RE, SKILL_RE
from callcenter.features.agents.store import MAX_TIER as STORED_MAX_TIER
from callcenter.features.calls.http import MeasuredSeconds
from callcenter.web.auth import ADMINS, FLOOR
from callcenter.web.contract import (
    JSON_OBJECT_VALIDATOR,
    TEXT_VALIDATOR,
    Answer,
    Body,
    Endpoint,
    Flag,
    JsonObject,
    PathArgs,
    Seconds,
    Text,
    Time,
    TimeParam,
    TimeRange,
    fail,
    failed,
    ok,
    one_of,
    pattern_text,
    whole_match,
    whole_param,
)
from callcenter.web.keys import AGENTS
from callcenter.web.params import MAX_LIMIT, QUEUE_NAME, bad_request, iso, json_error

HISTORY_DAY = 86400.0  # without `since`, the history starts a day before `until` (or now)
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


class QueuePath(PathArgs):
    name: Annotated[pattern_text(QUEUE_NAME, "a queue name"),
                    Field(description="the queue's name")]


class AgentPath(PathArgs):
    id: Annotated[pattern_text(AGENT_ID_RE, "an agent id (1-40 letters, digits, '-' or '_')",
                               description="an agent's id, also their SIP user name"),
                  Field(description="the agent's id")]


class NewAgent(Body):
    """A new agent: queues and skills optional."""

    id: pattern_text(NAME_RE, "an agent id (a lowercase letter, then up to 31 lowercase "
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

_AgentRef = Annotated[str, WithJsonSchema({**whole_match(AGENT_ID_RE), "description":
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

    id: _AgentRef
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
    agent_id: _AgentRef
    sip_secret: Annotated[str, WithJsonSchema({**whole_match(SIP_SECRET_RE), "description":
                                               "the new SIP password; shown only this once"})]
    warnings: list[str] = WARNINGS


class AgentRequestOutcome(Answer):
    agent_id: _AgentRef
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

    agent_id: _AgentRef
    since: Time
    until: Time | None
    limit: int = Field(ge=1, le=MAX_LIMIT)
    truncated: bool = Field(description="more changes follow in the range: ask from the "
                                        "last one")
    changes: list[AgentStateChange]


class QueueRules(Answer):
    """The queue's settings (seconds; null: not used)."""

    ring_timeout: int = Field(ge=1)
    max_wait: int = Field(ge=1)
    max_length: int | None = Field(ge=1)
    overflow_to: Annotated[str | None, WithJsonSchema(
        {"anyOf": [whole_match(QUEUE_NAME), {"type": "null"}]})]
    tier_delays: list[Annotated[int, Field(ge=0)]]
    relax_every: int | None = Field(ge=1)
    wrap_up: int | None = Field(ge=0, description="seconds; null: until the agent is ready")
    announce_every: int | None = Field(ge=1)
    offer_callback: bool
    rona_pause: bool
    service_level_seconds: int = Field(ge=1)
    moh_class: str


class QueueMember(Answer):
    """An active agent serving the queue (tiers as stored; see POST /api/agents)."""

    agent_id: _AgentRef
    name: Annotated[str, WithJsonSchema(NAME_SCHEMA)]
    tier: int = Field(ge=0, le=STORED_MAX_TIER)
    state: Annotated[str | None, WithJsonSchema(
        {"anyOf": [{"type": "string", "enum": [s.value for s in LiveState]},
                   {"type": "null"}]})]


_Levels = Annotated[dict[str, int], WithJsonSchema(
    {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1, "maximum": 10},
     "description": "skill -> level"})]


class QueuedCall(Answer):
    """A call in line, not answered yet."""

    call_id: str
    state: Annotated[str, WithJsonSchema({"type": "string",
                                          "enum": [s.value for s in CallState]})]
    position: int = Field(ge=1, description="1: next in line")
    expected_wait: MeasuredSeconds = Field(description="seconds, from measured handling times")
    priority: int = Field(description="higher goes first")
    virtual: bool = Field(description="waiting for a callback (virtual hold)")
    waiting_since: Time
    joined_at: Time
    skills: _Levels = Field(description="skills the call asked for")
    needed: _Levels = Field(description="skills still required after relaxation")
    agent_id: _AgentRef | None = Field(description="the agent being rung")
    for_agent: _AgentRef | None = Field(description="only this agent may take it")
    tried: list[_AgentRef]
    last_failure: str | None = Field(description="the last agent's offer that failed, and why")

    @classmethod
    def of(cls, call: Mapping[str, Any]) -> QueuedCall:
        """From the ACD's snapshot of the call (core/acd.py ``snapshot``)."""
        return cls(
            call_id=call["call_id"], state=call["state"], position=call["position"],
            expected_wait=round(call["expected_wait"], 3), priority=call["priority"],
            virtual=call["virtual"], waiting_since=iso(call["waiting_since"]),
            joined_at=iso(call["joined_at"]), skills=call["skills"], needed=call["needed"],
            agent_id=call["agent_id"], for_agent=call["for_agent"], tried=call["tried"],
            last_failure=call["last_failure"])


class NotOfferedReason(Answer):
    reason: Annotated[str, WithJsonSchema({"type": "string",
                                           "enum": [r.value for r in NoOfferReason]})]
    text: str
    waiting: int = Field(ge=0)
    last_day: int = Field(ge=0)


class CallbacksNotOffered(Answer):
    """Callers a queue with offer_callback could not offer a callback, by reason: no number,
    a number the [outbound] rules refuse, no trunk."""

    waiting: int = Field(ge=0, description="callers waiting now who were not offered one")
    last_day: int = Field(ge=0, description="callers not offered one in the last 24 hours")
    reasons: list[NotOfferedReason]

    @classmethod
    def of(cls, figures: NotOffered) -> CallbacksNotOffered:
        return cls(waiting=figures.waiting, last_day=figures.recent, reasons=[
            NotOfferedReason(reason=count.reason.value, text=count.reason.text,
                             waiting=count.waiting, last_day=count.recent)
            for count in figures.reasons])


class Queue(Answer):
    """A queue's rules and what is happening in it now. ready, busy (ringing or on a call),
    wrap_up, paused and logged_in count its tier-0 members."""

    name: Annotated[str, WithJsonSchema(whole_match(QUEUE_NAME))]
    strategy: Annotated[str, WithJsonSchema({"type": "string", "enum": list(STRATEGIES)})]
    waiting: int = Field(ge=0, description="calls in line (waiting, ringing, virtual)")
    longest_wait: Seconds
    ready: int = Field(ge=0)
    busy: int = Field(ge=0)
    wrap_up: int = Field(ge=0)
    paused: int = Field(ge=0)
    logged_in: int = Field(ge=0)
    aht: Seconds = Field(description="average handling time (talk + wrap-up)")
    rules: QueueRules
    calls: list[QueuedCall]
    # Callers this queue would offer a callback but cannot (no number, a number the
    # [outbound] rules refuse, no trunk): waiting now and over the last day, by reason.
    callbacks_not_offered: CallbacksNotOffered | None
    members: list[QueueMember]

    @classmethod
    def of(cls, queue: QueueStatus) -> Queue:
        rules, stats = queue.rules, queue.stats
        return cls(
            name=rules.name, strategy=rules.strategy, waiting=stats.waiting,
            longest_wait=round(stats.longest_wait, 3), ready=stats.ready, busy=stats.busy,
            wrap_up=stats.wrap_up, paused=stats.paused, logged_in=stats.logged_in,
            aht=round(stats.aht, 3),
            rules=QueueRules(
                ring_timeout=rules.ring_timeout, max_wait=rules.max_wait,
                max_length=rules.max_length or None, overflow_to=rules.overflow_to or None,
                tier_delays=list(rules.tier_delays), relax_every=rules.relax_every or None,
                wrap_up=None if rules.manual_wrap_up else rules.wrap_up,
                announce_every=rules.announce_every or None,
                offer_callback=rules.offer_callback, rona_pause=rules.rona_pause,
                service_level_seconds=rules.service_level_seconds, moh_class=rules.moh_class),
            calls=[QueuedCall.of(call) for call in queue.calls],
            callbacks_not_offered=(None if queue.callbacks_not_offered is None
                                   else CallbacksNotOffered.of(queue.callbacks_not_offered)),
            members=[QueueMember(agent_id=m.agent_id, name=m.name, tier=m.tier,
                                 state=None if m.state is None else m.state.value)
                     for m in queue.members])


class QueueList(Answer):
    queues: list[Queue]


# ----------------------------------------------------------------------- queues


async def list_queues(request: web.Request) -> web.Response:
    queues = await request.app[AGENTS].queues()
    return QueueList(queues=[Queue.of(queue) for queue in queues]).response()


async def show_queue(request: web.Request, path: QueuePath) -> web.Response:
    with _errors():
        queue = await request.app[AGENTS].queue(path.name)
    return Queue.of(queue).response()


# ----------------------------------------------------------------------- agents


async def list_agents(request: web.Request) -> web.Response:
    agents = await request.app[AGENTS].agents()
    return AgentList(agents=[Agent.of(agent) for agent in agents]).response()


async def show_agent(request: web.Request, path: AgentPath) -> web.Response:
    with _errors():
        agent = await request.app[AGENTS].agent(path.id)
    return Agent.of(agent).response()


async def create_agent(request: web.Request, body: NewAgent) -> web.Response:
    with _errors(where="body: "):
        created = await request.app[AGENTS].create(
            body.id, body.name, queues=body.queues, skills=body.skills)
    return CreatedAgent.of_new(created).response(201)


async def change_agent(request: web.Request, path: AgentPath, body: AgentChanges
                       ) -> web.Response:
    if not body.model_fields_set:
        raise bad_request("body: give at least one of "
                          f"{', '.join(sorted(AgentChanges.model_fields))}")
    with _errors(where="body: "):
        changed = await request.app[AGENTS].update(
            path.id, name=body.name, queues=body.queues, skills=body.skills,
            active=body.active)
    return ChangedAgent.of_change(changed).response()


async def new_secret(request: web.Request, path: AgentPath) -> web.Response:
    with _errors():
        change = await request.app[AGENTS].rotate_secret(path.id)
    return AgentSecret(agent_id=change.agent_id, sip_secret=change.sip_secret,
                       warnings=list(change.warnings)).response()


async def change_state(request: web.Request, path: AgentPath, body: StateRequest
                       ) -> web.Response:
    with _errors(where="body: "):
        outcome = await request.app[AGENTS].change_state(
            path.id, body.state, reason=body.reason, phone=body.phone, mode=body.mode)
    answer = AgentRequestOutcome(agent_id=outcome.agent_id, requested=outcome.requested,
                                 deferred=outcome.deferred, message=outcome.message,
                                 state=AgentState.of(outcome.live))
    return answer.response(202 if outcome.deferred else 200)


async def agent_history(request: web.Request, path: AgentPath, query: HistoryQuery
                        ) -> web.Response:
    since = query.since
    if since is None:
        end = query.until if query.until is not None else request.app[AGENTS].now()
        since = end - HISTORY_DAY
    with _errors():
        changes, truncated = await request.app[AGENTS].history(path.id, since, query.until,
                                                               query.limit)
    return AgentHistory(
        agent_id=path.id, since=iso(since), until=iso(query.until),
        limit=query.limit, truncated=truncated,
        changes=[AgentStateChange(at=iso(c.at), state=c.state, previous=c.previous,
                                  reason=c.reason) for c in changes]).response()


# ----------------------------------------------------------------------- declarations

NO_PARAMETERS = failed("A query parameter was sent: this route takes none.")
OWN_STATE = ("An agent may change only their own state. An unknown pause reason is a 400 "
             "naming the allowed ones. Every change is stored in the agent's state history.")

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/queues", list_queues, FLOOR,
             "Every queue, with its callers and members now", "acd",
             {200: ok(QueueList, "The queues, in the settings' order."),
              400: NO_PARAMETERS},
             takes_no_query=True),
    Endpoint("GET", "/api/queues/{name}", show_queue, FLOOR,
             "One queue, with its callers and members now", "acd",
             {200: ok(Queue), 404: failed("No such queue.")},
             path_args=QueuePath, takes_no_query=True),
    Endpoint("GET", "/api/agents", list_agents, FLOOR,
             "Every agent, active or not, with their state now", "acd",
             {200: ok(AgentList, "The agents, by id."), 400: NO_PARAMETERS},
             takes_no_query=True),
    Endpoint("GET", "/api/agents/{id}", show_agent, FLOOR, "One agent, with their state now",
             "acd", {200: ok(Agent), 404: failed("No such agent.")},
             path_args=AgentPath, takes_no_query=True),
    Endpoint("POST", "/api/agents", create_agent, ADMINS,
             "Create an agent (a SIP secret is generated)", "acd",
             {201: ok(CreatedAgent, "Created, stored and in routing (logged out)."),
              409: failed("The id is taken.")},
             body=NewAgent,
             body_example='{"id": "alice", "name": "Alice Moreau", "queues": {"sales": 0}}',
             description=AGENT_CHANGES),
    Endpoint("PATCH", "/api/agents/{id}", change_agent, ADMINS,
             "Change an agent's name, queues, skills or activity", "acd",
             {200: ok(ChangedAgent, "Changed."), 404: failed("No such agent."),
              409: failed("Deactivating an agent who is ringing or on a call: after the "
                          "call.")},
             path_args=AgentPath, body=AgentChanges, body_example='{"skills": {"french": 8}}',
             description=AGENT_CHANGES),
    Endpoint("POST", "/api/agents/{id}/secret", new_secret, ADMINS,
             "Give an agent a new SIP secret", "acd",
             {200: ok(AgentSecret, "The new secret, shown only this once."),
              404: failed("No such agent.")},
             path_args=AgentPath, takes_no_query=True,
             description="The old secret stops working once Asterisk is updated (see "
                         "`warnings`): the agent's phone must be set up again."),
    Endpoint("POST", "/api/agents/{id}/state", change_state, FLOOR,
             "Log an agent in or out, make them ready or pause", "acd",
             {200: ok(AgentRequestOutcome, "Done; the agent's state after the change."),
              202: ok(AgentRequestOutcome, "Deferred: the agent is ringing or on a call; the "
                      "pause or logout applies when the call ends (a later `ready` cancels "
                      "it)."),
              404: failed("No such agent."),
              409: failed("Not possible in the agent's present state (e.g. paused while "
                          "logged out, logged in already or on another phone, inactive), or "
                          "a nailed-up login, which only the agent's phone can make (*50).")},
             path_args=AgentPath, own_agent="id", body=StateRequest,
             body_example='{"state": "paused", "reason": "lunch"}', description=OWN_STATE),
    Endpoint("GET", "/api/agents/{id}/history", agent_history, FLOOR,
             "An agent's state changes over a time range", "acd",
             {200: ok(AgentHistory), 404: failed("No such agent.")},
             path_args=AgentPath, own_agent="id", query=HistoryQuery,
             description="An agent may read only their own history. Changes are written in "
                         "small batches: the last second's may not be there yet."),
)


# ----------------------------------------------------------------------- checks


@contextmanager
def _errors(where: str = "") -> Iterator[None]:
    """The admin's errors as HTTP answers; ``where`` prefixes errors about what was sent."""
    try:
        yield
    except AgentInputError as exc:
        raise bad_request(f"{where}{exc}") from None
    except (AgentNotFound, QueueNotFound) as exc:
        raise json_error(web.HTTPNotFound, str(exc)) from None
    except (DuplicateAgent, AgentConflict) as exc:  # a taken id; a state that does not allow it
        raise json_error(web.HTTPConflict, str(exc)) from None
