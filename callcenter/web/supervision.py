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
from typing import Any

from aiohttp import web

from callcenter.asterisk.supervision_dialplan import NAME_RE, SpyMode
from callcenter.service import call_transfer, supervision
from callcenter.service.call_transfer import CallTransfers, TransferMode, TransferTarget
from callcenter.service.supervision import Supervision
from callcenter.web.auth import FLOOR, STAFF, add_route, current_user, require_own_agent
from callcenter.web.params import bad_request, json_body, json_error, json_kind

SUPERVISION = web.AppKey("supervision", Supervision)
TRANSFERS = web.AppKey("call_transfers", CallTransfers)
SPY_EXAMPLE = '{"agent_id": "agent1", "mode": "listen"}'
TRANSFER_EXAMPLE = '{"to": {"queue": "support"}, "mode": "blind"}'
MODES = ", ".join(mode.value for mode in SpyMode)
TRANSFER_MODES = ", ".join(mode.value for mode in TransferMode)
# Asterisk uniqueids: "1764745200.42", or "<systemname>-1764745200.42"
CALL_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")

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


def install_supervision_routes(app: web.Application, supervision: Supervision,
                               transfers: CallTransfers) -> None:
    """Add both routes, with the roles that may use them."""
    app[SUPERVISION] = supervision
    app[TRANSFERS] = transfers
    add_route(app, "POST", "/api/supervision", start_supervision, roles=STAFF)
    add_route(app, "POST", "/api/calls/{call_id}/transfer", transfer_call,
              roles=FLOOR)


async def start_supervision(request: web.Request) -> web.Response:
    body = await json_body(request, {"agent_id", "mode", "phone"}, SPY_EXAMPLE,
                           required=("agent_id", "mode"))
    agent_id = _name(body["agent_id"], "agent_id", "an agent id")
    mode = body["mode"]
    if not isinstance(mode, str) or mode not in {m.value for m in SpyMode}:
        raise bad_request(f"mode: expected one of {MODES}, got {_shown(mode)}")
    phone = body.get("phone")
    if phone is None:
        phone = current_user(request).agent_id
        if phone is None:
            raise bad_request("phone: is required: you have no agent phone of your own; name "
                              "the phone endpoint to call")
    phone = _name(phone, "phone", "a phone endpoint name")
    try:
        started = await request.app[SUPERVISION].start(agent_id, mode, phone)
    except supervision.SupervisionError as exc:
        raise json_error(_SUPERVISION_STATUS.get(type(exc), web.HTTPConflict), str(exc)) from None
    return web.json_response({"agent_id": started.agent_id, "mode": started.mode.value,
                              "phone": started.phone, "call_id": started.call_id}, status=202)


async def transfer_call(request: web.Request) -> web.Response:
    call_id = request.match_info["call_id"]
    if not CALL_ID.fullmatch(call_id):
        raise bad_request(f"call_id: {call_id[:40]!r} is not a call id (an Asterisk uniqueid "
                          "such as 1764745200.42)")
    body = await json_body(request, {"to", "mode"}, TRANSFER_EXAMPLE, required=("to",))
    target = _target(body["to"])
    mode = body.get("mode", TransferMode.BLIND.value)
    if not isinstance(mode, str) or mode not in {m.value for m in TransferMode}:
        raise bad_request(f"mode: expected one of {TRANSFER_MODES}, got {_shown(mode)}")
    transfers = request.app[TRANSFERS]
    try:
        require_own_agent(request, transfers.agent_on(call_id))
        started = await transfers.transfer(call_id, target, mode)
    except call_transfer.TransferError as exc:
        raise json_error(_TRANSFER_STATUS.get(type(exc), web.HTTPConflict), str(exc)) from None
    to = {"queue": target.queue} if target.queue is not None else {"agent": target.agent}
    # An attended transfer to a queue consults the agent its routing picked: say who.
    consulting = started.target.agent if started.mode is TransferMode.ATTENDED else None
    return web.json_response({"call_id": started.call_id, "from_agent": started.from_agent,
                              "to": to, "mode": started.mode.value,
                              "consulting": consulting}, status=202)


def _target(value: Any) -> TransferTarget:
    if not isinstance(value, dict) or len(value) != 1 or set(value) - {"queue", "agent"}:
        raise bad_request('to: expected {"queue": "<name>"} or {"agent": "<agent id>"}, '
                          f"got {_shown(value)}")
    if "queue" in value:
        return TransferTarget(queue=_name(value["queue"], "to.queue", "a queue name"))
    return TransferTarget(agent=_name(value["agent"], "to.agent", "an agent id"))


def _name(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{where}: expected {what}, got {_shown(value)}")
    if not NAME_RE.fullmatch(value):
        raise bad_request(f"{where}: {value[:40]!r} is not {what} (lower-case letters, "
                          "digits, _ and -, starting with a letter)")
    return value


def _shown(value: Any) -> str:
    """A JSON value named without echoing more than 40 characters of it."""
    return repr(value[:40]) if isinstance(value, str) else json_kind(value)
