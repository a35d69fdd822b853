"""The API when PostgreSQL cannot be reached: 503 with a JSON body, never a 500 or HTML.

A real PostgreSQL behind a TCP relay the test closes, so the driver fails exactly as it does
when the server is stopped (connection refused)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from sqlalchemy.exc import OperationalError

from callcenter.core.clock import VirtualClock
from callcenter.features.accounts.store import Role
from callcenter.features.calls.store import CallRepository
from callcenter.store.db import create_engine, session_factory, upgrade
from callcenter.web.app import WebServices, database_unavailable
from callcenter.web.health import HealthProbe
from tests.support.postgres import PostgresServer
from tests.support.tcp_proxy import TcpProxy
from tests.support.web import accounts_for, signed_in_client


@pytest.fixture
async def relayed_url(postgres_server: PostgresServer) -> AsyncIterator[tuple[str, TcpProxy]]:
    """A migrated database reached through a relay the test can close."""
    with postgres_server.fresh_database() as url:
        await upgrade(url)
        proxy = await TcpProxy(postgres_server.host, postgres_server.port).start()
        try:
            yield url.replace(f":{postgres_server.port}/", f":{proxy.port}/"), proxy
        finally:
            await proxy.stop()


@pytest.mark.postgres
async def test_api_routes_answer_503_json_while_the_database_is_unreachable(
        relayed_url: tuple[str, TcpProxy]) -> None:
    url, relay = relayed_url
    engine = create_engine(url)
    sessions = session_factory(engine)

    async def database_up() -> bool:
        return relay.accepting

    services = WebServices(CallRepository(sessions),
                           HealthProbe(ami=lambda: True, agi=lambda: True, database=database_up),
                           accounts_for(sessions), VirtualClock())
    try:
        async with signed_in_client(services, [Role.SUPERVISOR]) as client:
            response = await client.get("/api/calls")
            assert response.status == 200, await response.text()

            await relay.stop()  # the database is gone: new connections are refused
            relay.accepting = False
            await engine.dispose()  # and no pooled connection survives it
            for path in ("/api/calls", "/api/reports/faq", "/api/me"):
                response = await client.get(path)
                assert response.status == 503, (path, await response.text())
                assert response.content_type == "application/json"
                body = await response.json()
                assert body["error"] == "database unavailable" and body["detail"], body
                assert "secret" not in await response.text()  # no URL, no password
            health = await client.get("/healthz")
            assert health.status == 503 and (await health.json())["database"] == "down"
    finally:
        await engine.dispose()


@pytest.mark.parametrize("path", ["/api/calls", "/demo/orders"])
async def test_other_errors_are_not_reported_as_an_outage(path: str) -> None:
    async def broken(request: web.Request) -> web.Response:
        raise ConnectionResetError(104, "a client hung up, not the database")

    with pytest.raises(ConnectionResetError):
        await database_unavailable(make_mocked_request("GET", path), broken)


async def test_an_outage_outside_the_api_is_left_to_the_page() -> None:
    async def refused(request: web.Request) -> web.Response:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "refused"))

    with pytest.raises(OperationalError):
        await database_unavailable(make_mocked_request("GET", "/demo/orders"), refused)
    response = await database_unavailable(make_mocked_request("GET", "/api/calls"), refused)
    assert response.status == 503
