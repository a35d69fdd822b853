"""Agents, live: ``/api/agents`` (``ENDPOINTS`` at the end).

Thin: the models in schemas.py check what the client sent (shapes, types, known values; see
web/contract.py), a handler asks the ``AgentAdmin`` (admin.py, which keeps the rules that need
its state) and answers with a model. Errors: 400 bad input, 404 unknown queue or agent, 409 a
change the agent's state does not allow (or a taken id), 202 a pause or logout deferred until
the agent's call ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from callcenter.features.agents.admin import (
    AgentAdmin,
    AgentConflict,
    AgentInputError,
    AgentNotFound,
    DuplicateAgent,
    QueueNotFound,
)
from callcenter.features.agents.schemas import (
    AGENT_CHANGES,
    Agent,
    AgentChanges,
    AgentHistory,
    AgentList,
    AgentPath,
    AgentRequestOutcome,
    AgentSecret,
    AgentState,
    AgentStateChange,
    ChangedAgent,
    CreatedAgent,
    HistoryQuery,
    NewAgent,
    StateRequest,
)
from callcenter.web.auth import ADMINS, FLOOR
from callcenter.web.contract import (
    Endpoint,
    failed,
    ok,
)
from callcenter.web.params import bad_request, iso, json_error

AGENTS = web.AppKey("agents", AgentAdmin)  # the web app's way to the agents' service
HISTORY_DAY = 86400.0  # without `since`, the history starts a day before `until` (or now)


async def list_agents(request: web.Request) -> web.Response:
    agents = await request.app[AGENTS].agents()
    return AgentList(agents=[Agent.of(agent) for agent in agents]).response()


async def show_agent(request: web.Request, path: AgentPath) -> web.Response:
    with admin_errors():
        agent = await request.app[AGENTS].agent(path.id)
    return Agent.of(agent).response()


async def create_agent(request: web.Request, body: NewAgent) -> web.Response:
    with admin_errors(where="body: "):
        created = await request.app[AGENTS].create(
            body.id, body.name, queues=body.queues, skills=body.skills)
    return CreatedAgent.of_new(created).response(201)


async def change_agent(request: web.Request, path: AgentPath, body: AgentChanges
                       ) -> web.Response:
    if not body.model_fields_set:
        raise bad_request("body: give at least one of "
                          f"{', '.join(sorted(AgentChanges.model_fields))}")
    with admin_errors(where="body: "):
        changed = await request.app[AGENTS].update(
            path.id, name=body.name, queues=body.queues, skills=body.skills,
            active=body.active)
    return ChangedAgent.of_change(changed).response()


async def new_secret(request: web.Request, path: AgentPath) -> web.Response:
    with admin_errors():
        change = await request.app[AGENTS].rotate_secret(path.id)
    return AgentSecret(agent_id=change.agent_id, sip_secret=change.sip_secret,
                       warnings=list(change.warnings)).response()


async def change_state(request: web.Request, path: AgentPath, body: StateRequest
                       ) -> web.Response:
    with admin_errors(where="body: "):
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
    with admin_errors():
        changes, truncated = await request.app[AGENTS].history(path.id, since, query.until,
                                                               query.limit)
    return AgentHistory(
        agent_id=path.id, since=iso(since), until=iso(query.until),
        limit=query.limit, truncated=truncated,
        changes=[AgentStateChange(at=iso(c.at), state=c.state, previous=c.previous,
                                  reason=c.reason) for c in changes]).response()


# ----------------------------------------------------------------------- declarations

OWN_STATE = ("An agent may change only their own state. An unknown pause reason is a 400 "
             "naming the allowed ones. Every change is stored in the agent's state history.")

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/agents", list_agents, FLOOR,
             "Every agent, active or not, with their state now", "acd",
             {200: ok(AgentList, "The agents, by id.")},
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
def admin_errors(where: str = "") -> Iterator[None]:
    """The admin's errors as HTTP answers; ``where`` prefixes errors about what was sent."""
    try:
        yield
    except AgentInputError as exc:
        raise bad_request(f"{where}{exc}") from None
    except (AgentNotFound, QueueNotFound) as exc:
        raise json_error(web.HTTPNotFound, str(exc)) from None
    except (DuplicateAgent, AgentConflict) as exc:  # a taken id; a state that does not allow it
        raise json_error(web.HTTPConflict, str(exc)) from None
