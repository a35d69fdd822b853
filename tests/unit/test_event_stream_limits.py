"""GET /api/events behind sign-in: caps per user and in total, and streams that end with the
session or token that opened them (logout, a revoked token, a deactivated user)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import ClientResponse, DummyCookieJar, web
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.clock import VirtualClock
from callcenter.features.accounts.http import ENDPOINTS as ACCOUNT_ENDPOINTS
from callcenter.features.accounts.store import AccountRepository, User
from callcenter.web.app import json_errors
from callcenter.web.auth import SESSION_COOKIE, SIGNED_IN, install_auth, protect
from callcenter.web.contract import register
from callcenter.web.events import OPEN_STREAMS, EventHub, StreamSettings, install_events

T0 = 1_795_000_000.0
PASSWORD = "correct horse battery"
CSRF = {"X-Requested-With": "callcenter"}
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
WAIT = 5.0  # a guard against a hung test, never a pause
QUIET = 3600.0  # no heartbeat in the way: only the hook or an event wakes a stream


@dataclass
class Site:
    client: TestClient
    accounts: AccountRepository
    hub: EventHub
    admin: User

    async def login(self, username: str = "root") -> str:
        response = await self.client.post(
            "/api/login", json={"username": username, "password": PASSWORD})
        assert response.status == 200, await response.text()
        return response.cookies[SESSION_COOKIE].value

    async def token(self, user: User) -> str:
        return (await self.accounts.create_token(user.id, "wallboard")).secret


async def started(sessions: async_sessionmaker[AsyncSession], settings: StreamSettings,
                  ) -> AsyncIterator[Site]:
    clock = VirtualClock(start=T0)
    accounts = AccountRepository(sessions, clock=clock, hasher=FAST)
    admin = await accounts.create_user("root", PASSWORD, ["admin"])
    hub = EventHub(clock, epoch="e")
    app = web.Application(middlewares=[json_errors])
    install_auth(app, accounts, clock)
    register(app, ACCOUNT_ENDPOINTS)
    install_events(app, hub, settings)
    protect(app, "GET", "/api/events", roles=SIGNED_IN)
    client = TestClient(TestServer(app), cookie_jar=DummyCookieJar())
    await client.start_server()
    try:
        yield Site(client, accounts, hub, admin)
    finally:
        await client.close()


@pytest.fixture
async def site(sqlite_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Site]:
    async for value in started(sqlite_sessions, StreamSettings(heartbeat_seconds=QUIET,
                                                         max_streams=3,
                                                         max_streams_per_user=2)):
        yield value


def cookie(secret: str, **headers: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={secret}", **headers}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def frames_until_end(response: ClientResponse) -> list[str]:
    """Every line the stream sends until the server ends it."""
    async with asyncio.timeout(WAIT):
        body = await response.content.read()
    return body.decode().splitlines()


async def until_subscribers(hub: EventHub, count: int) -> None:
    async with asyncio.timeout(WAIT):
        while hub.subscriber_count != count:
            await asyncio.sleep(0.01)


async def test_one_user_gets_at_most_its_streams_then_503_in_json(site: Site) -> None:
    secret = await site.token(site.admin)
    streams = [await site.client.get("/api/events", headers=bearer(secret)) for _ in range(2)]
    assert [s.status for s in streams] == [200, 200]
    refused = await site.client.get("/api/events", headers=bearer(secret))
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "5"
    body = await refused.json()
    assert body["status"] == 503 and "2 event streams" in body["error"]
    other = await site.accounts.create_user("ada", PASSWORD, ["supervisor"])
    assert (await site.client.get("/api/events", headers=bearer(await site.token(other)))
            ).status == 200, "another user is not held back by the first one's cap"
    third = await site.accounts.create_user("bob", PASSWORD, ["supervisor"])
    total = await site.client.get("/api/events", headers=bearer(await site.token(third)))
    assert total.status == 503 and "3 event streams are open" in (await total.json())["error"]
    streams[0].close()
    await until_subscribers(site.hub, 2)
    again = await site.client.get("/api/events", headers=bearer(secret))
    assert again.status == 200, "a closed stream gives its place back"


async def test_logout_ends_the_stream_of_that_session_at_once(site: Site) -> None:
    session = await site.login()
    other_session = await site.login()
    stream = await site.client.get("/api/events", headers=cookie(session))
    kept = await site.client.get("/api/events", headers=cookie(other_session))
    assert stream.status == kept.status == 200
    out = await site.client.post("/api/logout", headers=cookie(session, **CSRF))
    assert out.status == 200
    lines = await frames_until_end(stream)
    assert lines[0] == "event: ended"
    assert "sign in again" in json.loads(lines[1].removeprefix("data: "))["reason"]
    site.hub.publish("agent", {"agent_id": "a1"})
    assert (await kept.content.readline()).startswith(b"id: "), "another session keeps going"


async def test_a_revoked_token_ends_its_stream_and_a_deactivated_user_loses_every_stream(
        site: Site) -> None:
    ada = await site.accounts.create_user("ada", PASSWORD, ["supervisor"])
    token = await site.accounts.create_token(ada.id, "wallboard")
    stream = await site.client.get("/api/events", headers=bearer(token.secret))
    assert stream.status == 200
    admin = await site.login()
    revoked = await site.client.delete(f"/api/tokens/{token.token.id}",
                                       headers=cookie(admin, **CSRF))
    assert revoked.status == 200, await revoked.text()
    assert (await frames_until_end(stream))[0] == "event: ended"

    session = await site.login("ada")
    stream = await site.client.get("/api/events", headers=cookie(session))
    assert stream.status == 200
    changed = await site.client.patch(f"/api/users/{ada.id}", json={"active": False},
                                      headers=cookie(admin, **CSRF))
    assert changed.status == 200, await changed.text()
    assert (await frames_until_end(stream))[0] == "event: ended"


async def test_a_stream_checks_its_sign_in_before_an_event_once_a_heartbeat_has_passed(
        sqlite_sessions: async_sessionmaker[AsyncSession]) -> None:
    """Without the hook (a session deleted behind the web face's back), the next heartbeat or
    event after a heartbeat's time finds out."""
    async for site in started(sqlite_sessions, StreamSettings(heartbeat_seconds=0.05)):
        session = await site.login()
        stream = await site.client.get("/api/events", headers=cookie(session))
        assert stream.status == 200
        await site.accounts.delete_session(session)
        lines = await frames_until_end(stream)
        assert "event: ended" in lines
        assert not any(line.startswith("id: ") for line in lines)


async def test_a_client_that_reads_nothing_is_cut_off_after_the_write_timeout(
        sqlite_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = StreamSettings(heartbeat_seconds=QUIET, write_seconds=0.2, max_pending=10**6)
    async for site in started(sqlite_sessions, settings):
        secret = await site.token(site.admin)
        open_streams = site.client.app[OPEN_STREAMS]
        host, port = site.client.server.host, site.client.server.port
        # A small receive window (set before connecting), never read: writes back up soon.
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.setblocking(False)
        await asyncio.get_running_loop().sock_connect(raw, (host, port))
        _reader, writer = await asyncio.open_connection(sock=raw)
        writer.write(f"GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}"
                     "\r\n\r\n".encode())
        await until_subscribers(site.hub, 1)
        assert open_streams.total == 1
        async with asyncio.timeout(WAIT):
            n = 0
            while open_streams.total:  # the handler still runs: feed it until it gives up
                n += 1
                site.hub.publish("agent", {"agent_id": "a1", "n": n, "pad": "x" * 65536})
                await asyncio.sleep(0.001)
        assert n > 10, "the stream ended before its writes could back up"
        writer.close()
