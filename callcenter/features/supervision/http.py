"""Supervisors on calls, and transfers of calls.

``POST /api/supervision`` with ``{"agent_id": "agent1", "mode": "listen" | "whisper" |
"barge", "phone": "sup1"}`` calls the supervisor's phone (``phone``, by default the signed-in
user's own agent endpoint) and connects it to the agent's call. Admins and supervisors only.

``POST /api/calls/{call_id}/transfer`` with ``{"to": {"queue": "support"} | {"agent":
"agent2"}, "mode": "blind"}`` sends the caller to another queue or agent. The agent on the
call may transfer their own calls; admins and supervisors any call. ``"attended"`` (to an
agent only) rings that agent while the caller hears music; the first agent hanging up hands
the caller over. A nailed-up agent's call cannot be transferred attended: 501 with the reason.

Both answer 202: Asterisk has the request; the phones ring next.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from aiohttp import web
from pydantic import BeforeValidator, Field
from pydantic.json_schema import WithJsonSchema

from callcenter.features.accounts.store import Role
from callcenter.features.agent_transfers import service as call_transfer
from callcenter.features.agent_transfers.service import CallTransfers, TransferMode, TransferTarget
from callcenter.features.supervision import service as supervision
from callcenter.features.supervision.dialplan import NAME_RE, SpyMode
from callcenter.features.supervision.service import Supervision
from callcenter.web.auth import FLOOR, STAFF, current_user, require_own_agent
from callcenter.web.contract import (
    Answer,
    Body,
    Endpoint,
    PathArgs,
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
TRANSFERS = web.AppKey("call_transfers", CallTransfers)
MODES = ", ".join(mode.value for mode in SpyMode)
TRANSFER_MODES = ", ".join(mode.value for mode in TransferMode)
# Asterisk uniqueids: "1764745200.42", or "<systemname>-1764745200.42"
CALL_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
NAME_RULE = "(lower-case letters, digits, _ and -, starting with a letter)"
AGENT_ID_SCHEMA = {**whole_match(NAME_RE), "description": "the agent's id, also their SIP "
                                                         "user name"}
TRANSFER_TARGET = {"oneOf": [
    {"type": "object", "properties": {"queue": whole_match(NAME_RE)}, "required": ["queue"],
     "additionalProperties": False,
     "description": "a queue: the caller waits there as a new entry"},
    {"type": "object", "properties": {"agent": AGENT_ID_SCHEMA}, "required": ["agent"],
     "additionalProperties": False,
     "description": "an agent: the caller waits for them only"},
]}

_SUPERVISION_STATUS: dict[type[supervision.SupervisionError], type[web.HTTPError]] = {
    supervision.NoSuchAgent: web.HTTPNotFound,
    supervision.NotOnCall: web.HTTPConflict,
    supervision.SupervisionRefused: web.HTTPConflict,
    supervision.AsteriskUnavailable: web.HTTPServiceUnavailable,
}
_TRANSFER_STATUS: dict[type[call_transfer.TransferError], type[web.HTTPError]] = {
    call_transfer.CallNotFound: web.HTTPNotFound,
    call_transfer.TargetNotFound: web.HTTPNotFound,
    call_transfer.NotTransferable: web.HTTPConflict,
    call_transfer.AttendedNotSupported: web.HTTPNotImplemented,
    call_transfer.AsteriskUnavailable: web.HTTPServiceUnavailable,
}


def _checked_name(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str):
        fail(f"expected {what}, got {shown(value)}", where=where)
    if not NAME_RE.fullmatch(value):
        fail(f"{value[:40]!r} is not {what} {NAME_RULE}", where=where)
    return value


def _mode_of(modes: type[SpyMode] | type[TransferMode], listed: str) -> BeforeValidator:
    def validate(value: object) -> object:
        if not isinstance(value, str) or value not in {m.value for m in modes}:
            fail(f"expected one of {listed}, got {shown(value)}")
        return value
    return BeforeValidator(validate)


def _target(value: object) -> TransferTarget:
    if not isinstance(value, dict) or len(value) != 1 or set(value) - {"queue", "agent"}:
        fail('expected {"queue": "<name>"} or {"agent": "<agent id>"}, '
             f"got {shown(value)}")
    if "queue" in value:
        return TransferTarget(queue=_checked_name(value["queue"], "to.queue", "a queue name"))
    return TransferTarget(agent=_checked_name(value["agent"], "to.agent", "an agent id"))


class SpyRequest(Body):
    agent_id: pattern_text(NAME_RE, f"an agent id {NAME_RULE}", expected="an agent id",
                           **AGENT_ID_SCHEMA)
    mode: Annotated[str, _mode_of(SpyMode, MODES),
                    WithJsonSchema({"type": "string", "enum": [m.value for m in SpyMode]})]
    phone: pattern_text(NAME_RE, f"a phone endpoint name {NAME_RULE}",
                        expected="a phone endpoint name", nullable=True,
                        description="the supervisor's phone (a PJSIP endpoint); default: the "
                                    "signed-in user's agent id") = None


class CallPath(PathArgs):
    call_id: Annotated[pattern_text(CALL_ID, "a call id (an Asterisk uniqueid such as "
                                    "1764745200.42)"),
                       Field(description="the call's id (its caller channel's Asterisk "
                                         "Uniqueid)")]


class TransferRequest(Body):
    to: Annotated[TransferTarget, BeforeValidator(_target), WithJsonSchema(TRANSFER_TARGET)]
    mode: Annotated[str, _mode_of(TransferMode, TRANSFER_MODES),
                    WithJsonSchema({"type": "string", "enum": [m.value for m in TransferMode],
                                    "default": "blind"})] = TransferMode.BLIND.value


class SupervisionStarted(Answer):
    """Asterisk is calling the supervisor's phone."""

    agent_id: Annotated[str, WithJsonSchema(AGENT_ID_SCHEMA)]
    mode: Annotated[str, WithJsonSchema({"type": "string",
                                         "enum": [m.value for m in SpyMode]})]
    phone: Annotated[str, WithJsonSchema({
        **AGENT_ID_SCHEMA, "description": "the supervisor's phone endpoint being called"})]
    call_id: str | None = Field(description="the call the agent is on")


class TransferStarted(Answer):
    """Blind: the caller left the agent and waits for the target. Attended: the caller is on
    hold while the agents talk."""

    call_id: str = Field(description="the transferred call")
    from_agent: Annotated[str, WithJsonSchema(AGENT_ID_SCHEMA)]
    to: Annotated[dict[str, str], WithJsonSchema(TRANSFER_TARGET)]
    mode: Annotated[str, WithJsonSchema({"type": "string",
                                         "enum": [m.value for m in TransferMode]})]
    consulting: Annotated[str | None, WithJsonSchema({"anyOf": [
        {**AGENT_ID_SCHEMA, "description": "attended: the agent being consulted (for a "
                                           "queue, the one its routing picked)"},
        {"type": "null"}]})]


def install_supervision_routes(app: web.Application, supervision: Supervision,
                               transfers: CallTransfers) -> None:
    """Add both routes, with the roles that may use them."""
    app[SUPERVISION] = supervision
    app[TRANSFERS] = transfers
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


async def transfer_call(request: web.Request, path: CallPath, body: TransferRequest
                        ) -> web.Response:
    target = body.to
    transfers = request.app[TRANSFERS]
    try:
        require_own_agent(request, transfers.agent_on(path.call_id))
        started = await transfers.transfer(path.call_id, target, body.mode)
    except call_transfer.TransferError as exc:
        raise json_error(_TRANSFER_STATUS.get(type(exc), web.HTTPConflict), str(exc)) from None
    to = {"queue": target.queue} if target.queue is not None else {"agent": target.agent}
    # An attended transfer to a queue consults the agent its routing picked: say who.
    consulting = started.target.agent if started.mode is TransferMode.ATTENDED else None
    return TransferStarted(call_id=started.call_id, from_agent=started.from_agent, to=to,
                           mode=started.mode.value, consulting=consulting).response(202)


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
    Endpoint("POST", "/api/calls/{call_id}/transfer", transfer_call, FLOOR,
          "Transfer a talking caller to a queue or an agent", "calls",
          {202: ok(TransferStarted, "The caller is on their way; the target's phone rings "
                                      "next."),
           404: failed("No such call in progress, no such queue or agent."),
           409: failed("Refused, the first agent keeps the caller: the call is not talking "
                       "to an agent; nobody at the target could answer (the agent, or every "
                       "agent of the queue, is logged out, paused, unreachable or leaving "
                       "after their call; the same rule for both modes); attended only: "
                       "nobody there is free now; the target agent already has it; or the "
                       "caller just left. The error says which."),
           501: failed("An attended transfer of a nailed-up agent's call: not available; "
                       "the error says why."),
           503: failed("Asterisk cannot be reached.")},
          path_args=CallPath, body=TransferRequest,
          body_example='{"to": {"queue": "support"}, "mode": "blind"}', body_where="",
          description="`blind`: the caller leaves the agent (who goes to wrap-up) and waits "
                      "as a new entry, keeping their priority, in the queue or for the agent "
                      "(under the rules of that agent's first queue). `attended`: the caller "
                      "hears music while the target agent's phone rings and the two agents "
                      "talk; when the first agent hangs up the caller is connected to the "
                      "target (the first agent goes to wrap-up); if the target does not "
                      "answer or hangs up first, the first agent has the caller back. "
                      "`attended` to a queue consults the agent the queue's routing would "
                      "give a new call right now (its strategy among its ready agents at "
                      "tier 0, with the call's skills; not the first agent, not a nailed-up "
                      "one); the caller does not join the queue's line. Not from a nailed-up "
                      "agent (501). An agent may transfer only the calls they are talking on.",
          own_only=(Role.AGENT,)),
)
