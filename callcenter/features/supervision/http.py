"""Supervisors on calls.

``POST /api/supervision`` with ``{"agent_id": "agent1", "mode": "listen" | "whisper" |
"barge", "phone": "sup1"}`` calls the supervisor's phone (``phone``, by default the signed-in
user's own agent endpoint) and connects it to the agent's call. Admins and supervisors only.
It answers 202: Asterisk has the request; the phone rings next.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BeforeValidator, Field
from pydantic.json_schema import WithJsonSchema

from callcenter.features.agent_transfers.service import TransferMode
from callcenter.features.supervision import service as supervision
from callcenter.features.supervision.dialplan import NAME_RE, SpyMode
from callcenter.features.supervision.service import Supervision
from callcenter.web.auth import STAFF, current_user
from callcenter.web.contract import (
    Answer,
    Body,
    Endpoint,
    fail,
    failed,
    ok,
    pattern_text,
    register,
    shown,
    whole_match,
)
from callcenter.web.params import bad_request, json_error

SUPERVISION = web.AppKey("supervision", Supervision)
MODES = ", ".join(mode.value for mode in SpyMode)
NAME_RULE = "(lower-case letters, digits, _ and -, starting with a letter)"
AGENT_ID_SCHEMA = {**whole_match(NAME_RE), "description": "the agent's id, also their SIP "
                                                         "user name"}
_SUPERVISION_STATUS: dict[type[supervision.SupervisionError], type[web.HTTPError]] = {
    supervision.NoSuchAgent: web.HTTPNotFound,
    supervision.NotOnCall: web.HTTPConflict,
    supervision.SupervisionRefused: web.HTTPConflict,
    supervision.AsteriskUnavailable: web.HTTPServiceUnavailable,
}


def checked_name(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str):
        fail(f"expected {what}, got {shown(value)}", where=where)
    if not NAME_RE.fullmatch(value):
        fail(f"{value[:40]!r} is not {what} {NAME_RULE}", where=where)
    return value


def mode_of(modes: type[SpyMode] | type[TransferMode], listed: str) -> BeforeValidator:
    def validate(value: object) -> object:
        if not isinstance(value, str) or value not in {m.value for m in modes}:
            fail(f"expected one of {listed}, got {shown(value)}")
        return value
    return BeforeValidator(validate)


class SpyRequest(Body):
    agent_id: pattern_text(NAME_RE, f"an agent id {NAME_RULE}", expected="an agent id",
                           **AGENT_ID_SCHEMA)
    mode: Annotated[str, mode_of(SpyMode, MODES),
                    WithJsonSchema({"type": "string", "enum": [m.value for m in SpyMode]})]
    phone: pattern_text(NAME_RE, f"a phone endpoint name {NAME_RULE}",
                        expected="a phone endpoint name", nullable=True,
                        description="the supervisor's phone (a PJSIP endpoint); default: the "
                                    "signed-in user's agent id") = None


class SupervisionStarted(Answer):
    """Asterisk is calling the supervisor's phone."""

    agent_id: Annotated[str, WithJsonSchema(AGENT_ID_SCHEMA)]
    mode: Annotated[str, WithJsonSchema({"type": "string",
                                         "enum": [m.value for m in SpyMode]})]
    phone: Annotated[str, WithJsonSchema({
        **AGENT_ID_SCHEMA, "description": "the supervisor's phone endpoint being called"})]
    call_id: str | None = Field(description="the call the agent is on")


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
