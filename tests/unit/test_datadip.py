"""HTTP data dips against a real local HTTP server: replies, failures, retries, limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from callcenter.features.ivr.datadip import MAX_REPLY_BYTES, DataDips
from callcenter.web.demo import order_status


@pytest.fixture
async def server() -> AsyncIterator[tuple[TestServer, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    flaky = {"left": 1}

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({})

    async def flaky_once(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        if flaky["left"]:
            flaky["left"] -= 1
            return web.Response(status=503)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/demo/orders", order_status)
    app.router.add_get("/slow", slow)
    app.router.add_get("/flaky", flaky_once)
    app.router.add_get("/text", replying(web.Response(text="hello")))
    app.router.add_get("/list", replying(web.json_response([1, 2])))
    app.router.add_get("/huge", replying(web.Response(
        body=b'{"x": "' + b"a" * MAX_REPLY_BYTES + b'"}', content_type="application/json")))
    test_server = TestServer(app)
    await test_server.start_server()
    yield test_server, seen
    await test_server.close()


def replying(response: web.Response):
    async def handler(request: web.Request) -> web.Response:
        return response

    return handler


async def dip(server: TestServer, path: str, params: dict[str, str] | None = None,
              retries: int = 0, timeout: float = 2.0):
    dips = DataDips()
    try:
        return await dips.fetch(str(server.make_url(path)), params or {}, timeout=timeout,
                                retries=retries)
    finally:
        await dips.close()


async def test_a_known_order_comes_back_as_an_object(server):
    test_server, _ = server
    reply, error = await dip(test_server, "/demo/orders", {"order": "1245687"})
    assert error is None
    assert reply == {"order": "1245687", "status": "shipped", "delivery": {"days": 2}}


@pytest.mark.parametrize(("path", "params", "says"), [
    ("/demo/orders", {"order": "999"}, "HTTP 404"),
    ("/text", {}, "reply is not JSON"),
    ("/list", {}, "reply is not a JSON object"),
    ("/huge", {}, f"reply larger than {MAX_REPLY_BYTES} bytes"),
])
async def test_failures_become_a_reason_never_an_exception(server, path, params, says):
    test_server, _ = server
    reply, error = await dip(test_server, path, params)
    assert reply is None
    assert says in error


async def test_a_server_that_does_not_answer_in_time_is_a_timeout(server):
    test_server, _ = server
    reply, error = await dip(test_server, "/slow", timeout=0.2)
    assert reply is None and error == "no answer within 0.2 s"


async def test_a_refused_connection_is_a_failure(unused_tcp_port):
    dips = DataDips()
    try:
        reply, error = await dips.fetch(f"http://127.0.0.1:{unused_tcp_port}/x", {},
                                        timeout=1, retries=0)
    finally:
        await dips.close()
    assert reply is None and "ClientConnectorError" in error


async def test_a_retry_gets_the_answer_after_one_failure_and_values_are_encoded(server):
    test_server, seen = server
    reply, error = await dip(test_server, "/flaky", {"order": "12 34&x=1"}, retries=1)
    assert (reply, error) == ({"ok": True}, None)
    assert seen == [{"order": "12 34&x=1"}] * 2  # a value never adds a parameter
