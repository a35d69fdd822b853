"""Queues and agents, live: ``/api/queues`` and ``/api/agents`` (see openapi.py for each route).

Thin: a handler checks what the client sent (shapes and types), asks the ``AgentAdmin``
(service/agent_admin.py) and turns its answer or error into JSON. Errors: 400 bad input,
404 unknown queue or agent, 409 a change the agent's state does not allow (or a taken id),
202 a pause or logout deferred until the agent's call ends.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from callcenter.core.acd import AgentView
from callcenter.core.registrations import Registration
from callcenter.service.agent_admin import (
    AgentChange,
    AgentConflict,
    AgentInputError,
    AgentNotFound,
    AgentStatus,
    DuplicateAgent,
    QueueNotFound,
    QueueStatus,
)
from callcenter.service.queue_wait import not_offered_json
from callcenter.store.agents import AGENT_ID_RE, StateChange
from callcenter.web.auth import require_own_agent
from callcenter.web.keys import AGENTS
from callcenter.web.params import (
    MAX_LIMIT,
    QUEUE_NAME,
    bad_request,
    check_params,
    int_param,
    iso,
    json_body,
    json_error,
    json_kind,
    time_range_params,
)

CREATE_FIELDS = {"id", "name", "queues", "skills"}
CHANGE_FIELDS = {"name", "queues", "skills", "active"}
STATE_FIELDS = {"state", "reason", "phone", "mode"}
HISTORY_PARAMS = {"since", "until", "limit"}
HISTORY_DAY = 86400.0  # without `since`, the history starts a day before `until` (or now)
CREATE_EXAMPLE = '{"id": "alice", "name": "Alice Moreau", "queues": {"sales": 0}}'
CHANGE_EXAMPLE = '{"skills": {"french": 8}}'
STATE_EXAMPLE = '{"state": "paused", "reason": "lunch"}'
TEXT, OBJECT, FLAG = "text", "an object", "true or false"


# ----------------------------------------------------------------------- queues


async def list_queues(request: web.Request) -> web.Response:
    _no_params(request)
    queues = await request.app[AGENTS].queues()
    return web.json_response({"queues": [queue_json(queue) for queue in queues]})


async def show_queue(request: web.Request) -> web.Response:
    _no_params(request)
    name = request.match_info["name"]
    if not QUEUE_NAME.fullmatch(name):
        raise bad_request(f"name: {name[:40]!r} is not a queue name")
    with _errors():
        queue = await request.app[AGENTS].queue(name)
    return web.json_response(queue_json(queue))


# ----------------------------------------------------------------------- agents


async def list_agents(request: web.Request) -> web.Response:
    _no_params(request)
    agents = await request.app[AGENTS].agents()
    return web.json_response({"agents": [agent_json(agent) for agent in agents]})


async def show_agent(request: web.Request) -> web.Response:
    _no_params(request)
    agent_id = _agent_id(request)
    with _errors():
        agent = await request.app[AGENTS].agent(agent_id)
    return web.json_response(agent_json(agent))


async def create_agent(request: web.Request) -> web.Response:
    body = await json_body(request, CREATE_FIELDS, CREATE_EXAMPLE, required=("id", "name"))
    _expect(body, {"id": TEXT, "name": TEXT, "queues": OBJECT, "skills": OBJECT})
    with _errors(where="body: "):
        created = await request.app[AGENTS].create(
            body["id"], body["name"], queues=body.get("queues"), skills=body.get("skills"))
    answer = {**change_json(created), "sip_secret": created.status.account.sip_secret}
    return web.json_response(answer, status=201)


async def change_agent(request: web.Request) -> web.Response:
    agent_id = _agent_id(request)
    body = await json_body(request, CHANGE_FIELDS, CHANGE_EXAMPLE)
    if not body:
        raise bad_request(f"body: give at least one of {', '.join(sorted(CHANGE_FIELDS))}")
    _expect(body, {"name": TEXT, "queues": OBJECT, "skills": OBJECT, "active": FLAG})
    with _errors(where="body: "):
        changed = await request.app[AGENTS].update(
            agent_id, name=body.get("name"), queues=body.get("queues"),
            skills=body.get("skills"), active=body.get("active"))
    return web.json_response(change_json(changed))


async def new_secret(request: web.Request) -> web.Response:
    _no_params(request)
    agent_id = _agent_id(request)
    with _errors():
        change = await request.app[AGENTS].rotate_secret(agent_id)
    return web.json_response({"agent_id": change.agent_id, "sip_secret": change.sip_secret,
                              "warnings": list(change.warnings)})


async def change_state(request: web.Request) -> web.Response:
    agent_id = _agent_id(request)
    require_own_agent(request, agent_id)
    body = await json_body(request, STATE_FIELDS, STATE_EXAMPLE, required=("state",))
    _expect(body, dict.fromkeys(STATE_FIELDS, TEXT))
    with _errors(where="body: "):
        outcome = await request.app[AGENTS].change_state(
            agent_id, body["state"], reason=body.get("reason"), phone=body.get("phone"),
            mode=body.get("mode", "ring"))
    return web.json_response({
        "agent_id": outcome.agent_id,
        "requested": outcome.requested,
        "deferred": outcome.deferred,
        "message": outcome.message,
        "state": live_json(outcome.live),
    }, status=202 if outcome.deferred else 200)


async def agent_history(request: web.Request) -> web.Response:
    check_params(request, HISTORY_PARAMS)
    agent_id = _agent_id(request)
    require_own_agent(request, agent_id)
    since, until = time_range_params(request)
    limit = int_param(request, "limit", MAX_LIMIT, 1, MAX_LIMIT)
    if since is None:
        end = until if until is not None else request.app[AGENTS].now()
        since = end - HISTORY_DAY
    with _errors():
        changes, truncated = await request.app[AGENTS].history(agent_id, since, until, limit)
    return web.json_response({
        "agent_id": agent_id, "since": iso(since), "until": iso(until), "limit": limit,
        "truncated": truncated, "changes": [change_entry_json(c) for c in changes],
    })


# ----------------------------------------------------------------------- JSON


def queue_json(queue: QueueStatus) -> dict[str, Any]:
    rules, stats = queue.rules, queue.stats
    return {
        "name": rules.name,
        "strategy": rules.strategy,
        "waiting": stats.waiting,
        "longest_wait": round(stats.longest_wait, 3),
        "ready": stats.ready,
        "busy": stats.busy,
        "wrap_up": stats.wrap_up,
        "paused": stats.paused,
        "logged_in": stats.logged_in,
        "aht": round(stats.aht, 3),
        "rules": {
            "ring_timeout": rules.ring_timeout,
            "max_wait": rules.max_wait,
            "max_length": rules.max_length or None,
            "overflow_to": rules.overflow_to or None,
            "tier_delays": list(rules.tier_delays),
            "relax_every": rules.relax_every or None,
            "wrap_up": None if rules.manual_wrap_up else rules.wrap_up,
            "announce_every": rules.announce_every or None,
            "offer_callback": rules.offer_callback,
            "rona_pause": rules.rona_pause,
            "service_level_seconds": rules.service_level_seconds,
            "moh_class": rules.moh_class,
        },
        "calls": [queued_call_json(call) for call in queue.calls],
        # Callers this queue would offer a callback but cannot (no number, a number the
        # [outbound] rules refuse, no trunk): waiting now and over the last day, by reason.
        "callbacks_not_offered": (None if queue.callbacks_not_offered is None
                                  else not_offered_json(queue.callbacks_not_offered)),
        "members": [{"agent_id": m.agent_id, "name": m.name, "tier": m.tier,
                     "state": None if m.state is None else m.state.value}
                    for m in queue.members],
    }


def queued_call_json(call: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **call,
        "expected_wait": round(call["expected_wait"], 3),
        "waiting_since": iso(call["waiting_since"]),
        "joined_at": iso(call["joined_at"]),
    }


def agent_json(agent: AgentStatus) -> dict[str, Any]:
    """An agent as every floor role may see it: never their SIP secret."""
    account = agent.account
    return {
        "id": account.id,
        "name": account.name,
        "active": account.active,
        "queues": dict(account.queues),
        "skills": dict(account.skills),
        "created_at": iso(account.created_at),
        "updated_at": iso(account.updated_at),
        "state": None if agent.live is None else live_json(agent.live),
        "registration": registration_json(agent.registration),
    }


def change_json(change: AgentChange) -> dict[str, Any]:
    return {**agent_json(change.status), "warnings": list(change.warnings)}


def live_json(view: AgentView) -> dict[str, Any]:
    return {
        "state": view.state.value,
        "reason": view.reason,
        "since": iso(view.since),
        "idle_since": iso(view.idle_since),
        "phone": view.phone,
        "mode": None if view.mode is None else view.mode.value,
        "call_id": view.call_id,
        "deferred": view.deferred,
        "calls_answered": view.calls_answered,
        "talk_seconds": round(view.talk_time, 3),
    }


def registration_json(registration: Registration) -> dict[str, Any]:
    return {
        "registered": registration.registered,
        "reachable": registration.reachable,
        "changed_at": iso(registration.changed_at),
        "roundtrip_usec": registration.roundtrip_usec,
    }


def change_entry_json(change: StateChange) -> dict[str, Any]:
    return {"at": iso(change.at), "state": change.state, "previous": change.previous,
            "reason": change.reason}


# ----------------------------------------------------------------------- checks


def _no_params(request: web.Request) -> None:
    if request.query:
        name = sorted(request.query)[0][:40]
        raise bad_request(f"unknown parameter {name!r}: this route takes none")


def _agent_id(request: web.Request) -> str:
    agent_id = request.match_info["id"]
    if not AGENT_ID_RE.fullmatch(agent_id):
        raise bad_request(f"id: {agent_id[:40]!r} is not an agent id (1-40 letters, digits, "
                          "'-' or '_')")
    return agent_id


def _expect(body: Mapping[str, Any], kinds: Mapping[str, str]) -> None:
    """Each field given has the JSON type it must have (its value is checked later)."""
    for name in sorted(body):
        value, expected = body[name], kinds[name]
        matches = {TEXT: isinstance(value, str), OBJECT: isinstance(value, dict),
                   FLAG: isinstance(value, bool)}[expected]
        if not matches:
            raise bad_request(f"body: {name}: expected {expected}, got {json_kind(value)}")


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
