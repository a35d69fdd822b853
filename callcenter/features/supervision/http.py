"""Supervisors on calls.

``POST /api/supervision`` with ``{"agent_id": "agent1", "mode": "listen" | "whisper" |
"barge", "phone": "sup1"}`` calls the supervisor's phone (``phone``, by default the signed-in
user's own agent endpoint) and connects it to the agent's call. Admins and supervisors only.
It answers 202: Asterisk has the request; the phone rings next.
"""

from __future__ import annotations

from aiohttp import web

from callcenter.features.supervision import service as supervision
from callcenter.features.supervision.dialplan import NAME_RE
from callcenter.features.supervision.schemas import (
    NAME_RULE,
    SpyRequest,
    SupervisionStarted,
)
from callcenter.features.supervision.service import Supervision
from callcenter.web.auth import STAFF, current_user
from callcenter.web.contract import (
    Endpoint,
    failed,
    ok,
    register,
)
from callcenter.web.params import bad_request, json_error

SUPERVISION = web.AppKey("supervision", Supervision)

_SUPERVISION_STATUS: dict[type[supervision.SupervisionError], type[web.HTTPError]] = {
    supervision.NoSuchAgent: web.HTTPNotFound,
    supervision.NotOnCall: web.HTTPConflict,
    supervision.SupervisionRefused: web.HTTPConflict,
    supervision.AsteriskUnavailable: web.HTTPServiceUnavailable,
}


def install_supervision_routes(app: web.Application, supervision: Supervision) -> None:
    """Add the route, with the roles that may use it."""
    app[SUPERVISION] = supervision
    register(app, ENDPOINTS)


async def start_supervision(request: web.Request, body: SpyRequest) -> web.Response:
    phone = body.phone
    if phone is None:
        phone = current_user(request).agent_id
        if phone is None:
            raise bad_request("phone: is required: you have no agent phone of your own; name "
                              "the phone endpoint to call")
        if not NAME_RE.fullmatch(phone):
            raise bad_request(f"phone: {phone[:40]!r} is not a phone endpoint name {NAME_RULE}")
    try:
        started = await request.app[SUPERVISION].start(body.agent_id, body.mode, phone)
    except supervision.SupervisionError as exc:
        raise json_error(_SUPERVISION_STATUS.get(type(exc), web.HTTPConflict), str(exc)) from None
    return SupervisionStarted(agent_id=started.agent_id, mode=started.mode.value,
                              phone=started.phone, call_id=started.call_id).response(202)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/api/supervision", start_supervision, STAFF,
          "Listen to, whisper to or barge into an agent's call", "supervision",
          {202: ok(SupervisionStarted, "The supervisor's phone is being called."),
           404: failed("No such agent, or no such phone endpoint."),
           409: failed("The agent is not on a call, or the phone is the agent's own."),
           503: failed("Asterisk cannot be reached, or refused to call the phone.")},
          body=SpyRequest, body_example='{"agent_id": "agent1", "mode": "listen"}',
          body_where="",
          description="The supervisor's phone rings; once answered it hears the agent's call "
                      "(`listen`), talks to the agent only (`whisper`) or to both "
                      "(`barge`), until the agent's phone channel ends or the supervisor "
                      "hangs up. Works for ring-mode and nailed-up agents."),
)
