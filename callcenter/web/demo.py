"""The demo's order-status service, for the data-dip example flow (dialplans/examples).

``GET /demo/orders?order=NUMBER`` answers a JSON object for the few demo orders and 404 for
any other number. It stands in for a company's own order system; a real flow points its
`fetch` node at that instead.
"""

from __future__ import annotations

from aiohttp import web

from callcenter.web.auth import PUBLIC
from callcenter.web.contract import Endpoint, failed, ok

# Order numbers end in their Luhn digit, as the example flow checks.
DEMO_ORDERS: dict[str, dict[str, object]] = {
    "1245687": {"status": "shipped", "delivery": {"days": 2}},
    "1248": {"status": "shipped", "delivery": {"days": 3}},  # a short one, quick to key
    "7654320": {"status": "preparing", "delivery": {"days": 5}},
    "5555552": {"status": "delivered", "delivery": {"days": 0}},
}


async def order_status(request: web.Request) -> web.Response:
    order = request.query.get("order", "")
    found = DEMO_ORDERS.get(order)
    if found is None:
        return web.json_response({"error": "no such order"}, status=404)
    return web.json_response({"order": order, **found})


DEMO_ENDPOINT = Endpoint(
    "GET", "/demo/orders", order_status, PUBLIC,
    "A demo order's status, for the data-dip example flow", "demo",
    {200: ok("DemoOrder"), 404: failed("No such order.")},
    parameters=({"name": "order", "in": "query", "required": True,
                 "description": "the order number", "schema": {"type": "string"}},),
    description="Stands in for a company's own order system; a real flow's `fetch` node "
                "points at that instead. Parameters are not checked.")
