"""Agent transfers: an agent hands a talking caller on to a queue or another agent.

``POST /api/calls/{call_id}/transfer`` with ``{"to": {"queue": "support"} | {"agent":
"agent2"}, "mode": "blind"}`` sends the caller to another queue or agent. The agent on the
call may transfer their own calls; admins and supervisors any call. ``"attended"`` (to an
agent only) rings that agent while the caller hears music; the first agent hanging up hands
the caller over. A nailed-up agent's call cannot be transferred attended: 501 with the reason.
It answers 202: Asterisk has the request; the phones ring next. (Not the IVR's transfers out
to an outside number: features/ivr/transfer_out.py.)
"""

from __future__ import annotations

from aiohttp import web

from callcenter.features.accounts.store import Role
from callcenter.features.agent_transfers import service as call_transfer
from callcenter.features.agent_transfers.schemas import (
    CallPath,
    TransferRequest,
    TransferStarted,
)
from callcenter.features.agent_transfers.service import CallTransfers, TransferMode
from callcenter.web.auth import FLOOR, require_own_agent
from callcenter.web.contract import (
    Endpoint,
    failed,
    ok,
    register,
)
from callcenter.web.params import json_error

TRANSFERS = web.AppKey("call_transfers", CallTransfers)

_TRANSFER_STATUS: dict[type[call_transfer.TransferError], type[web.HTTPError]] = {
    call_transfer.CallNotFound: web.HTTPNotFound,
    call_transfer.TargetNotFound: web.HTTPNotFound,
    call_transfer.NotTransferable: web.HTTPConflict,
    call_transfer.AttendedNotSupported: web.HTTPNotImplemented,
    call_transfer.AsteriskUnavailable: web.HTTPServiceUnavailable,
}


def install_transfer_routes(app: web.Application, transfers: CallTransfers) -> None:
    """Add the route, with the roles that may use it."""
    app[TRANSFERS] = transfers
    register(app, ENDPOINTS)


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
