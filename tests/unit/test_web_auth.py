"""Sign-in, sessions, API tokens, users and the access policy of every route, over real HTTP
on each database backend. Time is a virtual clock: sign-in delays and expiries pass without
sleeping.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import DummyCookieJar, web
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.config import ConfigError, load_settings
from callcenter.core.clock import VirtualClock
from callcenter.features.accounts.http import ENDPOINTS as ACCOUNT_ENDPOINTS
from callcenter.features.accounts.store import AccountRepository, HashGate, Role, User
from callcenter.features.calls.store import CallRepository
from callcenter.store.db import session_factory
from callcenter.web.app import WebServices, json_errors, make_app
from callcenter.web.auth import (
    PUBLIC,
    REVOCATIONS,
    SESSION_COOKIE,
    SIGNED_IN,
    Identity,
    add_route,
    current_identity,
    current_user,
    install_auth,
    protect,
    require_own_agent,
    still_valid,
    undeclared_routes,
)
from callcenter.web.contract import register
from tests.support.web import health_probe

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z
PASSWORD = "correct horse battery"
CSRF = {"X-Requested-With": "callcenter"}
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
LOGIN_FAILED = "wrong username or password"


# --------------------------------------------------------------------------- a small site


async def who_am_i(request: web.Request) -> web.Response:
    return web.json_response({"username": current_user(request).username})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def pause_agent(request: web.Request) -> web.Response:
    agent = request.match_info["agent"]
    require_own_agent(request, agent)
    return web.json_response({"paused": agent})


def build_app(
    accounts: AccountRepository, clock: VirtualClock, **auth_options: Any
) -> web.Application:
    """Routes shaped like the real ones, declared both ways the auth module offers. The
    test client is a trusted proxy, so ``X-Forwarded-For`` plays clients at any address."""
    app = web.Application(middlewares=[json_errors], client_max_size=64 * 1024)
    auth_options.setdefault("trusted_proxies", ["127.0.0.1", "::1"])
    install_auth(app, accounts, clock, **auth_options)
    register(app, ACCOUNT_ENDPOINTS)
    app.router.add_get("/healthz", health)
    protect(app, "GET", "/healthz", roles=PUBLIC)
    app.router.add_get("/api/calls", who_am_i)
    protect(app, "GET", "/api/calls", roles=[Role.ADMIN, Role.SUPERVISOR])
    add_route(app, "POST", "/api/callbacks/{id}", who_am_i,
              roles=[Role.ADMIN, Role.SUPERVISOR, Role.AGENT])
    add_route(app, "POST", "/api/agents/{agent}/pause", pause_agent, roles=SIGNED_IN)
    app.router.add_get("/api/forgotten", health)  # added with no policy: must stay closed
    return app


@dataclass
class Site:
    client: TestClient
    accounts: AccountRepository
    clock: VirtualClock
    admin: User

    async def login(self, username: str = "root", password: str = PASSWORD) -> str:
        """Sign in; the session cookie's value."""
        response = await self.client.post(
            "/api/login", json={"username": username, "password": password}
        )
        assert response.status == 200, await response.text()
        return response.cookies[SESSION_COOKIE].value

    async def user(self, username: str, *roles: str, agent_id: str | None = None) -> User:
        return await self.accounts.create_user(username, PASSWORD, roles, agent_id=agent_id)

    async def token(self, user: User, name: str = "script") -> str:
        return (await self.accounts.create_token(user.id, name)).secret


def cookie(secret: str, **headers: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={secret}", **headers}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def start(accounts: AccountRepository, clock: VirtualClock, **options: Any) -> TestClient:
    # No cookie jar: each request says exactly which session it carries.
    client = TestClient(TestServer(build_app(accounts, clock, **options)),
                        cookie_jar=DummyCookieJar())
    await client.start_server()
    return client


@pytest.fixture
async def site(engine: AsyncEngine) -> AsyncIterator[Site]:
    clock = VirtualClock(start=T0)
    accounts = AccountRepository(session_factory(engine), clock=clock, hasher=FAST)
    admin = await accounts.create_user("root", PASSWORD, ["admin"], display_name="Root")
    client = await start(accounts, clock)
    try:
        yield Site(client, accounts, clock, admin)
    finally:
        await client.close()


async def error_of(response: Any) -> str:
    body = await response.json()
    assert body["status"] == response.status
    return body["error"]


# --------------------------------------------------------------------------- policies


async def test_a_route_with_no_policy_is_closed_even_to_an_admin(site: Site) -> None:
    session = await site.login()
    for headers in ({}, cookie(session)):
        response = await site.client.get("/api/forgotten", headers=headers)
        assert response.status == 403
        assert "GET /api/forgotten: route has no access policy" in await error_of(response)
    assert undeclared_routes(site.client.app) == ["GET /api/forgotten", "HEAD /api/forgotten"]


async def test_public_routes_need_nobody(site: Site) -> None:
    assert (await site.client.get("/healthz")).status == 200
    assert (await site.client.head("/healthz")).status == 200  # HEAD follows GET's policy
    response = await site.client.post("/api/login", json={"username": "root", "password": "x"})
    assert response.status == 401  # reached the handler: a wrong password, not "sign in first"
    assert await error_of(response) == LOGIN_FAILED


async def test_without_credentials_a_protected_route_answers_401_with_a_bearer_challenge(
    site: Site,
) -> None:
    for method, path in [("GET", "/api/calls"), ("POST", "/api/callbacks/1"), ("GET", "/api/me"),
                         ("GET", "/api/users"), ("HEAD", "/api/calls")]:
        response = await site.client.request(method, path)
        assert response.status == 401, (method, path)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        if method != "HEAD":
            assert "sign in first" in await error_of(response)


async def test_a_wrong_role_gets_403_naming_the_roles_that_may(site: Site) -> None:
    await site.user("ann", "agent", agent_id="ann")
    await site.user("sue", "supervisor")
    response = await site.client.get("/api/calls", headers=cookie(await site.login("ann")))
    assert response.status == 403
    body = await response.json()
    assert body["error"] == "GET /api/calls is only for admin, supervisor; you are agent"
    assert body["allowed_roles"] == ["admin", "supervisor"]
    response = await site.client.get("/api/calls", headers=cookie(await site.login("sue")))
    assert response.status == 200
    assert await response.json() == {"username": "sue"}


async def test_an_agent_acts_only_for_their_own_agent(site: Site) -> None:
    await site.user("ann", "agent", agent_id="ann")
    await site.user("nobody", "campaign_manager")
    ann = cookie(await site.login("ann"), **CSRF)
    assert (await site.client.post("/api/agents/ann/pause", headers=ann)).status == 200
    response = await site.client.post("/api/agents/bob/pause", headers=ann)
    assert response.status == 403
    assert "you may act only for your own; your agent is 'ann'" in await error_of(response)
    root = cookie(await site.login(), **CSRF)
    assert (await site.client.post("/api/agents/bob/pause", headers=root)).status == 200
    manager = cookie(await site.login("nobody"), **CSRF)
    assert (await site.client.post("/api/agents/bob/pause", headers=manager)).status == 403


def test_a_policy_cannot_be_declared_twice_differently_nor_with_an_unknown_role() -> None:
    app = web.Application()
    protect(app, "GET", "/x", roles=[Role.ADMIN])
    protect(app, "get", "/x", roles=["admin"])  # the same again is harmless
    with pytest.raises(ValueError, match="already declared with another policy"):
        protect(app, "GET", "/x", roles=PUBLIC)
    with pytest.raises(ValueError, match="roles: 'root' is not a role"):
        protect(app, "GET", "/y", roles=["root"])
    with pytest.raises(ValueError, match="roles: give at least one"):
        protect(app, "GET", "/y", roles=[])
    with pytest.raises(ValueError, match="path: 'y' must start with /"):
        protect(app, "GET", "y", roles=[Role.ADMIN])


# --------------------------------------------------------------------------- sign-in


async def test_signing_in_sets_a_strict_http_only_session_cookie(site: Site) -> None:
    response = await site.client.post(
        "/api/login", json={"username": "root", "password": PASSWORD}
    )
    assert response.status == 200
    body = await response.json()
    assert body == {"user": {
        "id": site.admin.id, "username": "root", "display_name": "Root", "agent_id": None,
        "roles": ["admin"], "active": True, "created_at": "2026-11-18T11:06:40Z",
    }}
    (header,) = response.headers.getall("Set-Cookie")
    parts = {p.strip().split("=")[0].lower() for p in header.split(";")}
    assert {"httponly", "samesite", "max-age", "path"} <= parts
    assert "SameSite=Strict" in header and "Max-Age=43200" in header
    assert "secure" not in parts
    secret = response.cookies[SESSION_COOKIE].value
    assert len(secret) == 43
    me = await site.client.get("/api/me", headers=cookie(secret))
    assert await me.json() == {**body, "via": "session"}


async def test_the_cookie_is_secure_when_the_setting_says_so(
    site: Site,
) -> None:
    client = await start(site.accounts, site.clock, secure_cookies=True)
    try:
        response = await client.post("/api/login", json={"username": "root", "password": PASSWORD})
        (header,) = response.headers.getall("Set-Cookie")
        assert "Secure" in header
        response = await client.post("/api/logout", headers=cookie(
            response.cookies[SESSION_COOKIE].value, **CSRF))
        (header,) = response.headers.getall("Set-Cookie")
        assert "Secure" in header and "Max-Age=0" in header
    finally:
        await client.close()


@pytest.mark.parametrize("secure", [True, False])
async def test_the_service_settings_decide_secure_cookies_and_trusted_proxies(
    site: Site, engine: AsyncEngine, tmp_path: Path, secure: bool,
) -> None:
    settings = load_settings(env={
        "CALLCENTER_DATA_DIR": str(tmp_path), "CALLCENTER_SERVICE__SECURE_COOKIES": str(secure),
        "CALLCENTER_SERVICE__TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"})
    assert settings.service.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")

    services = WebServices(
        calls=CallRepository(session_factory(engine)), accounts=site.accounts, clock=site.clock,
        health=health_probe(),
        secure_cookies=settings.service.secure_cookies,
        trusted_proxies=settings.service.trusted_proxies)
    async with TestClient(TestServer(make_app(services)), cookie_jar=DummyCookieJar()) as client:
        for _ in range(3):
            await client.post("/api/login", headers=at("192.0.2.1"),
                              json={"username": "root", "password": "guess guess"})
        assert (await client.post("/api/login", headers=at("192.0.2.1"), json={
            "username": "root", "password": PASSWORD})).status == 429
        response = await client.post("/api/login", headers=at("192.0.2.2"),
                                     json={"username": "root", "password": PASSWORD})
        (header,) = response.headers.getall("Set-Cookie")
        assert ("Secure" in header) is secure


@pytest.mark.parametrize("proxies", ["10.0.0.300", "proxy.example", "10.0.0.0/33"])
def test_a_trusted_proxy_that_is_no_address_stops_the_start(
    tmp_path: Path, proxies: str
) -> None:
    with pytest.raises(ConfigError, match=r"^service\.trusted_proxies\[0\]: .* is not an IP"):
        load_settings(env={"CALLCENTER_DATA_DIR": str(tmp_path),
                           "CALLCENTER_SERVICE__TRUSTED_PROXIES": proxies})


async def test_unknown_user_wrong_password_and_inactive_user_get_the_same_answer(
    site: Site,
) -> None:
    ann = await site.user("ann", "agent")
    await site.accounts.update_user(ann.id, active=False)
    answers = []
    for username, password in [("nobody", PASSWORD), ("root", "not the password"),
                               ("ann", PASSWORD)]:
        response = await site.client.post(
            "/api/login", json={"username": username, "password": password}
        )
        assert "Set-Cookie" not in response.headers
        answers.append((response.status, await response.json()))
    assert answers == [(401, {"error": LOGIN_FAILED, "status": 401})] * 3


def at(address: str, **headers: str) -> dict[str, str]:
    """Headers of a request from a client at ``address`` (through the trusted test proxy)."""
    return {"X-Forwarded-For": address, **headers}


async def sign_in(site: Site, username: str, password: str, address: str = "198.51.100.7"
                  ) -> Any:
    return await site.client.post("/api/login", headers=at(address),
                                  json={"username": username, "password": password})


async def test_wrong_passwords_from_elsewhere_never_lock_the_admin_out(site: Site) -> None:
    for _ in range(3):
        assert (await sign_in(site, "root", "guess guess", "203.0.113.66")).status == 401
    for _ in range(20):  # the attacker keeps trying: refused before any password is checked
        refused = await sign_in(site, "root", PASSWORD, "203.0.113.66")
        assert refused.status == 429
    assert "too many failed sign-ins from your address" in await error_of(refused)
    # The admin, from their own address, gets in at once with the right password.
    assert (await sign_in(site, "root", PASSWORD, "198.51.100.7")).status == 200


async def test_failures_of_one_address_and_user_meet_doubling_delays(site: Site) -> None:
    for _ in range(3):  # three failures are free: typos happen
        assert (await sign_in(site, "root", "guess guess")).status == 401
    waits = []
    for _ in range(5):
        refused = await sign_in(site, "root", "guess guess")
        assert refused.status == 429
        waits.append(int(refused.headers["Retry-After"]))
        assert (await refused.json())["retry_after"] == waits[-1]
        site.clock.advance(waits[-1] - 0.5)
        assert (await sign_in(site, "root", "guess guess")).status == 429  # not yet
        site.clock.advance(0.5)
        assert (await sign_in(site, "root", "guess guess")).status == 401  # checked, wrong
    assert waits == [1, 2, 4, 8, 16]
    site.clock.advance(32)
    assert (await sign_in(site, "root", PASSWORD)).status == 200
    # The right password starts the pair afresh: the next typos are free again.
    for _ in range(3):
        assert (await sign_in(site, "root", "guess guess")).status == 401


async def test_delays_are_capped_and_forgotten_after_an_idle_hour(site: Site) -> None:
    for _ in range(40):
        site.clock.advance(300)
        assert (await sign_in(site, "root", "guess guess")).status == 401
    refused = await sign_in(site, "root", PASSWORD)
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) == 300  # never more than five minutes
    site.clock.advance(3600)
    assert (await sign_in(site, "root", "guess guess")).status == 401  # afresh: free again


async def test_made_up_names_from_one_address_are_throttled_like_real_ones(
    site: Site,
) -> None:
    for index in range(20):  # each name new, each a failure of the address
        assert (await sign_in(site, f"ghost{index}", PASSWORD, "203.0.113.9")).status == 401
    refused = await sign_in(site, "ghost-next", PASSWORD, "203.0.113.9")
    assert refused.status == 429
    assert (await sign_in(site, "root", PASSWORD, "203.0.113.9")).status == 429
    assert (await sign_in(site, "root", PASSWORD, "203.0.113.10")).status == 200


async def test_a_client_cannot_choose_its_address_unless_it_is_a_trusted_proxy(
    site: Site,
) -> None:
    client = await start(site.accounts, site.clock, trusted_proxies=[])
    try:
        for index in range(3):  # a different X-Forwarded-For each time: ignored
            response = await client.post(
                "/api/login", headers=at(f"192.0.2.{index}"),
                json={"username": "root", "password": "guess guess"})
            assert response.status == 401
        response = await client.post("/api/login", headers=at("192.0.2.200"),
                                     json={"username": "root", "password": PASSWORD})
        assert response.status == 429
    finally:
        await client.close()


class GatedHasher(PasswordHasher):
    """Argon2 whose verify waits for the test's go, and which counts verifies at once."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.go = threading.Event()
        self._lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            assert self.go.wait(timeout=30), "the test never let the hashes go"
            return super().verify(hash, password)
        finally:
            with self._lock:
                self.running -= 1


async def test_parallel_sign_ins_hash_one_at_a_time_and_the_surplus_hears_503(
    engine: AsyncEngine,
) -> None:
    clock = VirtualClock(start=T0)
    hasher = GatedHasher()
    accounts = AccountRepository(session_factory(engine), clock=clock, hasher=hasher,
                                 hash_gate=HashGate(1, max_waiting=3, wait=30))
    await accounts.create_user("root", PASSWORD, ["admin"])
    client = await start(accounts, clock)
    try:
        async def attempt(index: int) -> Any:  # made-up names, each from its own address
            return await client.post(
                "/api/login", headers=at(f"10.{index // 250}.{index % 250}.1"),
                json={"username": f"made-up-{index}", "password": PASSWORD})

        attempts = [asyncio.create_task(attempt(index)) for index in range(40)]
        refused = []
        async with asyncio.timeout(30):
            while len(refused) < 36:  # one hashing, three waiting, the rest refused at once
                done, _ = await asyncio.wait(
                    [a for a in attempts if a not in refused], return_when="FIRST_COMPLETED")
                refused.extend(done)
        for response in [a.result() for a in refused]:
            assert response.status == 503
            assert int(response.headers["Retry-After"]) >= 1
            assert "too many sign-ins at once" in await error_of(response)
        hasher.go.set()
        checked = [await a for a in attempts if a not in refused]
        assert [r.status for r in checked] == [401] * 4
        assert hasher.most_at_once == 1
        # Refused attempts were never checked: they cost those addresses nothing.
        assert (await client.post("/api/login", headers=at("10.0.9.1"), json={
            "username": "root", "password": PASSWORD})).status == 200
    finally:
        hasher.go.set()
        await client.close()


async def test_parallel_guesses_from_one_address_get_no_more_than_three_checked(
    site: Site,
) -> None:
    answers = await asyncio.gather(*[sign_in(site, "root", "guess guess") for _ in range(12)])
    assert sorted(r.status for r in answers) == [401] * 3 + [429] * 9


async def test_a_session_ends_after_twelve_hours(site: Site) -> None:
    session = await site.login()
    site.clock.advance(12 * 3600 - 1)
    assert (await site.client.get("/api/me", headers=cookie(session))).status == 200
    site.clock.advance(1)
    response = await site.client.get("/api/me", headers=cookie(session))
    assert response.status == 401
    assert "your session has ended" in await error_of(response)


async def test_logging_out_ends_that_session_on_the_server_and_no_other(site: Site) -> None:
    session = await site.login()
    other = await site.login()  # another browser of the same user: a wallboard goes on
    ann = await site.user("ann", "supervisor")
    ann_session = await site.login("ann")
    token = await site.token(site.admin)
    response = await site.client.post("/api/logout", headers=cookie(session, **CSRF))
    assert response.status == 200
    assert (await response.json()) == {"logged_out": True}
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert (await site.client.get("/api/me", headers=cookie(session))).status == 401
    assert (await site.client.get("/api/me", headers=cookie(other))).status == 200
    assert (await site.client.get("/api/me", headers=cookie(ann_session))).status == 200
    assert (await site.client.get("/api/me", headers=bearer(token))).status == 200
    assert ann.id != site.admin.id


def app_of(site: Site) -> web.Application:
    app = site.client.server.app
    assert app is not None
    return app


async def identity_of(site: Site, headers: dict[str, str]) -> Identity:
    """The identity a request with these headers would have (as an SSE stream holds it)."""
    seen: list[Identity] = []

    async def catch(request: web.Request) -> web.Response:
        seen.append(current_identity(request))
        return web.json_response({})

    app = web.Application()
    install_auth(app, site.accounts, site.clock)
    register(app, ACCOUNT_ENDPOINTS)
    add_route(app, "GET", "/probe", catch, roles=SIGNED_IN)
    probe = TestClient(TestServer(app), cookie_jar=DummyCookieJar())
    await probe.start_server()
    try:
        assert (await probe.get("/probe", headers=headers)).status == 200
    finally:
        await probe.close()
    return seen[0]


async def test_logout_password_change_and_deactivation_tell_open_streams_to_end(
    site: Site,
) -> None:
    ann = await site.user("ann", "supervisor")
    ann_token = await site.token(ann)
    root = cookie(await site.login(), **CSRF)
    revocations = app_of(site)[REVOCATIONS]

    by_session = await identity_of(site, cookie(await site.login("ann")))
    by_token = await identity_of(site, bearer(ann_token))
    with revocations.watch(by_session) as session_ended, \
            revocations.watch(by_token) as token_ended:
        assert await still_valid(app_of(site), by_session)
        response = await site.client.patch(f"/api/users/{ann.id}", headers=root,
                                           json={"password": "a new long password"})
        assert response.status == 200
        assert session_ended.is_set() and not token_ended.is_set()
        assert not await still_valid(app_of(site), by_session)
        assert await still_valid(app_of(site), by_token)

        response = await site.client.patch(f"/api/users/{ann.id}", headers=root,
                                           json={"active": False})
        assert response.status == 200
        assert token_ended.is_set()
        assert not await still_valid(app_of(site), by_token)
    assert revocations.watching(ann.id) == 0
    assert await site.accounts.list_tokens(ann.id) == []  # deactivation revoked them

    root_session = await site.login()
    by_root = await identity_of(site, cookie(root_session))
    with revocations.watch(by_root) as ended:
        await site.client.post("/api/logout", headers=cookie(root_session, **CSRF))
        assert ended.is_set()


async def test_a_revoked_token_ends_its_streams_only(site: Site) -> None:
    first, second = await site.token(site.admin, "one"), await site.token(site.admin, "two")
    revocations = app_of(site)[REVOCATIONS]
    one, two = await identity_of(site, bearer(first)), await identity_of(site, bearer(second))
    with revocations.watch(one) as one_ended, revocations.watch(two) as two_ended:
        response = await site.client.delete(f"/api/tokens/{one.token_id}",
                                            headers=bearer(second))
        assert response.status == 200
        assert one_ended.is_set() and not two_ended.is_set()
    assert not await still_valid(app_of(site), one)
    assert await still_valid(app_of(site), two)


async def test_a_session_expiring_is_no_longer_valid_for_a_stream(site: Site) -> None:
    identity = await identity_of(site, cookie(await site.login()))
    site.clock.advance(12 * 3600)
    assert not await still_valid(app_of(site), identity)


@pytest.mark.parametrize(("body", "content_type", "status", "says"), [
    (b"username=root", "application/x-www-form-urlencoded", 415, "send Content-Type"),
    (b"{", "application/json", 400, "body: is not JSON"),
    (b"\xff", "application/json", 400, "body: is not UTF-8 text"),
    (b"[]", "application/json", 400, "body: expected a JSON object"),
    (b'{"username": "root"}', "application/json", 400, "password: is required"),
    (b'{"username": "root", "password": "x", "remember": true}', "application/json", 400,
     "body: unknown field 'remember'"),
    (b'{"username": ["root"], "password": "x"}', "application/json", 400, "username: ['root']"),
    (b'{"username": "ro ot", "password": "x"}', "application/json", 400,
     "username: 'ro ot' is not 1-64 characters"),
    (b'{"username": "root", "password": 12345678901}', "application/json", 400,
     "password: expected text"),
])
async def test_a_malformed_sign_in_gets_400_naming_the_field(
    site: Site, body: bytes, content_type: str, status: int, says: str
) -> None:
    response = await site.client.post(
        "/api/login", data=body, headers={"Content-Type": content_type}
    )
    assert response.status == status
    assert says in await error_of(response)


# --------------------------------------------------------------------------- CSRF


async def test_a_cookie_authenticated_change_needs_the_requested_with_header(site: Site) -> None:
    session = await site.login()
    response = await site.client.post("/api/callbacks/1", headers=cookie(session))
    assert response.status == 403
    assert "needs the header X-Requested-With: callcenter" in await error_of(response)
    wrong = cookie(session, **{"X-Requested-With": "XMLHttpRequest"})
    assert (await site.client.post("/api/callbacks/1", headers=wrong)).status == 403
    ok = await site.client.post("/api/callbacks/1", headers=cookie(session, **CSRF))
    assert ok.status == 200
    # Reading needs no header; a bearer token needs none either: a browser never adds one.
    assert (await site.client.get("/api/calls", headers=cookie(session))).status == 200
    token = await site.token(site.admin)
    assert (await site.client.post("/api/callbacks/1", headers=bearer(token))).status == 200


# --------------------------------------------------------------------------- API tokens


async def test_a_token_is_shown_once_and_then_works_as_a_bearer(site: Site) -> None:
    session = cookie(await site.login(), **CSRF)
    response = await site.client.post(
        "/api/tokens", json={"name": "nightly", "expires_in_days": 2}, headers=session
    )
    assert response.status == 201
    made = await response.json()
    assert made["token"].startswith("cc_")
    assert made["name"] == "nightly" and made["username"] == "root"
    assert made["created_at"] == "2026-11-18T11:06:40Z"
    assert made["expires_at"] == "2026-11-20T11:06:40Z"
    assert made["last_used_at"] is None

    site.clock.advance(10)
    me = await site.client.get("/api/me", headers=bearer(made["token"]))
    assert (await me.json())["via"] == "token"
    listed = await (await site.client.get("/api/tokens", headers=session)).json()
    assert listed == {"tokens": [{k: v for k, v in made.items() if k != "token"}
                                 | {"last_used_at": "2026-11-18T11:06:50Z"}]}
    assert made["token"] not in json.dumps(listed)

    site.clock.advance(2 * 86400)
    response = await site.client.get("/api/me", headers=bearer(made["token"]))
    assert response.status == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_a_revoked_token_stops_working_at_once(site: Site) -> None:
    token = await site.token(site.admin)
    tokens = await (await site.client.get("/api/tokens", headers=bearer(token))).json()
    token_id = tokens["tokens"][0]["id"]
    response = await site.client.delete(f"/api/tokens/{token_id}", headers=bearer(token))
    assert await response.json() == {"id": token_id, "revoked": True}
    assert (await site.client.get("/api/me", headers=bearer(token))).status == 401


async def test_tokens_are_private_unless_you_are_admin(site: Site) -> None:
    ann = await site.user("ann", "agent")
    ann_token = await site.token(ann, "ann's")
    root_token = await site.token(site.admin, "root's")
    ann_list = await (await site.client.get("/api/tokens", headers=bearer(ann_token))).json()
    assert [t["name"] for t in ann_list["tokens"]] == ["ann's"]
    response = await site.client.get("/api/tokens?all=1", headers=bearer(ann_token))
    assert response.status == 403
    assert "only an admin may list everyone's tokens" in await error_of(response)
    everyone = await (await site.client.get("/api/tokens?all=1", headers=bearer(root_token)))\
        .json()
    assert [t["name"] for t in everyone["tokens"]] == ["ann's", "root's"]
    root_id = everyone["tokens"][1]["id"]
    ann_id = everyone["tokens"][0]["id"]

    response = await site.client.delete(f"/api/tokens/{root_id}", headers=bearer(ann_token))
    assert response.status == 404  # someone else's token does not exist, for an agent
    assert (await site.client.get("/api/me", headers=bearer(root_token))).status == 200
    response = await site.client.delete(f"/api/tokens/{ann_id}", headers=bearer(root_token))
    assert response.status == 200  # an admin revokes anyone's
    assert (await site.client.get("/api/me", headers=bearer(ann_token))).status == 401


async def test_an_admin_makes_tokens_for_others_and_nobody_else_does(site: Site) -> None:
    ann = await site.user("ann", "agent")
    ann_token = await site.token(ann)
    response = await site.client.post(
        "/api/tokens", json={"name": "for root", "user_id": site.admin.id},
        headers=bearer(ann_token),
    )
    assert response.status == 403
    assert "only an admin may make tokens for others" in await error_of(response)
    response = await site.client.post(
        "/api/tokens", json={"name": "for ann", "user_id": ann.id},
        headers=bearer(await site.token(site.admin)),
    )
    assert response.status == 201
    made = await response.json()
    assert made["username"] == "ann"
    me = await site.client.get("/api/me", headers=bearer(made["token"]))
    assert (await me.json())["user"]["username"] == "ann"


@pytest.mark.parametrize(("body", "says"), [
    ({}, "name: is required"),
    ({"name": ""}, "name: expected 1-100 characters"),
    ({"name": 7}, "name: expected"),
    ({"name": "x", "expires_in_days": 0}, "expires_in_days: expected a whole number from 1"),
    ({"name": "x", "expires_in_days": True}, "expires_in_days: expected"),
    ({"name": "x", "expires_in_days": 1.5}, "expires_in_days: expected"),
    ({"name": "x", "user_id": 999}, "user_id: no user has id 999"),
    ({"name": "x", "user_id": "1"}, "user_id: expected a user id"),
    ({"name": "x", "scope": "all"}, "body: unknown field 'scope'"),
])
async def test_a_malformed_token_request_gets_400_naming_the_field(
    site: Site, body: dict[str, Any], says: str
) -> None:
    token = await site.token(site.admin)
    response = await site.client.post("/api/tokens", json=body, headers=bearer(token))
    assert response.status == 400
    assert says in await error_of(response)


@pytest.mark.parametrize("header", [
    "Basic cm9vdDpwYXNzd29yZA==", "Bearer", "Bearer ", "Bearer a b", "bearer cc_short", "Token x",
])
async def test_a_malformed_or_unknown_authorization_header_gets_401(
    site: Site, header: str
) -> None:
    session = await site.login()
    # A bad Authorization header is not saved by a good cookie beside it.
    response = await site.client.get(
        "/api/me", headers={"Authorization": header, **cookie(session)}
    )
    assert response.status == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


# --------------------------------------------------------------------------- users


async def test_an_admin_creates_lists_and_changes_users(site: Site) -> None:
    root = cookie(await site.login(), **CSRF)
    response = await site.client.post("/api/users", headers=root, json={
        "username": "ann", "password": PASSWORD, "roles": ["agent"], "display_name": "Ann",
        "agent_id": "ann",
    })
    assert response.status == 201
    ann = (await response.json())["user"]
    assert ann["roles"] == ["agent"] and ann["agent_id"] == "ann" and ann["active"] is True

    listed = await (await site.client.get("/api/users", headers=root)).json()
    assert [u["username"] for u in listed["users"]] == ["ann", "root"]

    response = await site.client.patch(f"/api/users/{ann['id']}", headers=root, json={
        "roles": ["supervisor", "agent"], "display_name": None, "password": "another password",
    })
    assert response.status == 200
    changed = (await response.json())["user"]
    assert changed["roles"] == ["supervisor", "agent"]
    assert changed["display_name"] is None and changed["agent_id"] == "ann"
    await site.login("ann", "another password")


async def test_a_taken_username_gets_409(site: Site) -> None:
    root = cookie(await site.login(), **CSRF)
    response = await site.client.post("/api/users", headers=root, json={
        "username": "root", "password": PASSWORD, "roles": ["agent"]})
    assert response.status == 409
    assert "username: 'root' is taken" in await error_of(response)


@pytest.mark.parametrize(("body", "says"), [
    ({"password": PASSWORD, "roles": ["agent"]}, "username: is required"),
    ({"username": "ann", "roles": ["agent"]}, "password: is required"),
    ({"username": "ann", "password": PASSWORD}, "roles: is required"),
    ({"username": "ann", "password": "too short", "roles": ["agent"]},
     "password: must be at least 10 characters"),
    ({"username": "ann", "password": PASSWORD, "roles": ["root"]}, "roles: 'root' is not a role"),
    ({"username": "ann", "password": PASSWORD, "roles": "agent"}, "roles: expected a list"),
    ({"username": "ann", "password": PASSWORD, "roles": []}, "roles: give at least one"),
    ({"username": "a/b", "password": PASSWORD, "roles": ["agent"]}, "username: 'a/b' is not"),
    ({"username": 5, "password": PASSWORD, "roles": ["agent"]}, "username: 5 is not"),
    ({"username": "ann", "password": PASSWORD, "roles": ["agent"], "agent_id": "Ann!"},
     "agent_id: 'Ann!' is not an agent id"),
    ({"username": "ann", "password": PASSWORD, "roles": ["agent"], "display_name": 3},
     "display_name: expected"),
    ({"username": "ann", "password": PASSWORD, "roles": ["agent"], "admin": True},
     "body: unknown field 'admin'"),
])
async def test_a_malformed_new_user_gets_400_naming_the_field(
    site: Site, body: dict[str, Any], says: str
) -> None:
    root = cookie(await site.login(), **CSRF)
    response = await site.client.post("/api/users", headers=root, json=body)
    assert response.status == 400
    assert says in await error_of(response)
    assert [u.username for u in await site.accounts.list_users()] == ["root"]


@pytest.mark.parametrize(("body", "says"), [
    ({}, "body: nothing to change"),
    ({"active": "no"}, "active: expected true or false"),
    ({"password": None}, "password: expected text"),
    ({"password": "short"}, "password: must be at least 10"),
    ({"roles": ["agent", "boss"]}, "roles: 'boss' is not a role"),
    ({"agent_id": 12}, "agent_id: 12 is not an agent id"),
    ({"username": "renamed"}, "body: unknown field 'username'"),
])
async def test_a_malformed_user_change_gets_400_naming_the_field(
    site: Site, body: dict[str, Any], says: str
) -> None:
    ann = await site.user("ann", "agent")
    root = cookie(await site.login(), **CSRF)
    response = await site.client.patch(f"/api/users/{ann.id}", headers=root, json=body)
    assert response.status == 400
    assert says in await error_of(response)
    assert await site.accounts.get_user(ann.id) == ann


async def test_changing_an_unknown_or_malformed_user_id(site: Site) -> None:
    root = cookie(await site.login(), **CSRF)
    response = await site.client.patch("/api/users/999", headers=root, json={"active": True})
    assert response.status == 404
    response = await site.client.patch("/api/users/x1", headers=root, json={"active": True})
    assert response.status == 400
    assert "id: 'x1' is not an id" in await error_of(response)
    response = await site.client.delete(f"/api/users/{site.admin.id}", headers=root)
    assert response.status == 405  # no deleting: deactivate instead


async def test_an_admin_can_neither_demote_nor_deactivate_themselves(site: Site) -> None:
    await site.user("other", "admin")  # even with another admin around
    root = cookie(await site.login(), **CSRF)
    path = f"/api/users/{site.admin.id}"
    response = await site.client.patch(path, headers=root, json={"roles": ["supervisor"]})
    assert response.status == 409
    assert "you cannot remove your own admin role" in await error_of(response)
    response = await site.client.patch(path, headers=root, json={"active": False})
    assert response.status == 409
    assert "you cannot deactivate yourself" in await error_of(response)
    response = await site.client.patch(
        path, headers=root, json={"roles": ["admin", "supervisor"], "display_name": "Boss"}
    )
    assert response.status == 200
    assert await site.accounts.get_user(site.admin.id) is not None


async def test_a_deactivated_user_is_shut_out_at_once(site: Site) -> None:
    ann = await site.user("ann", "supervisor")
    ann_session = await site.login("ann")
    ann_token = await site.token(ann)
    assert (await site.client.get("/api/calls", headers=cookie(ann_session))).status == 200
    assert (await site.client.get("/api/calls", headers=bearer(ann_token))).status == 200

    root = cookie(await site.login(), **CSRF)
    response = await site.client.patch(f"/api/users/{ann.id}", headers=root,
                                       json={"active": False})
    assert (await response.json())["user"]["active"] is False
    assert (await site.client.get("/api/calls", headers=cookie(ann_session))).status == 401
    assert (await site.client.get("/api/calls", headers=bearer(ann_token))).status == 401
    response = await site.client.post("/api/login", json={"username": "ann", "password": PASSWORD})
    assert response.status == 401


async def test_a_role_taken_away_counts_at_the_next_request(site: Site) -> None:
    ann = await site.user("ann", "supervisor")
    ann_token = await site.token(ann)
    assert (await site.client.get("/api/calls", headers=bearer(ann_token))).status == 200
    await site.accounts.update_user(ann.id, roles=["agent"])
    assert (await site.client.get("/api/calls", headers=bearer(ann_token))).status == 403


async def test_users_are_for_admins_only(site: Site) -> None:
    await site.user("sue", "supervisor", "campaign_manager")
    sue = cookie(await site.login("sue"), **CSRF)
    response = await site.client.get("/api/users", headers=sue)
    assert response.status == 403
    assert (await response.json())["allowed_roles"] == ["admin"]
    response = await site.client.post("/api/users", headers=sue, json={
        "username": "eve", "password": PASSWORD, "roles": ["admin"]})
    assert response.status == 403
    assert await site.accounts.get_user_by_username("eve") is None


# --------------------------------------------------------------------------- hostile input


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=12,
)
login_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"username": st.one_of(st.sampled_from(["root", "nobody"]), json_values),
         "password": st.one_of(st.sampled_from([PASSWORD, ""]), json_values)},
        optional={"extra": json_values},
    ).map(lambda v: json.dumps(v).encode()),
)
# What an HTTP client can put in a header: no CR, LF or NUL.
header_values = st.text(
    st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=120
)


@pytest.fixture
async def sqlite_site(sqlite_sessions: async_sessionmaker[AsyncSession],
                      ) -> AsyncIterator[Site]:
    clock = VirtualClock(start=T0)
    accounts = AccountRepository(sqlite_sessions, clock=clock, hasher=FAST)
    admin = await accounts.create_user("root", PASSWORD, ["admin"])
    client = await start(accounts, clock)
    try:
        yield Site(client, accounts, clock, admin)
    finally:
        await client.close()


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=login_bodies)
async def test_any_login_body_gets_a_clear_answer_and_never_a_session_by_accident(
    sqlite_site: Site, body: bytes
) -> None:
    sqlite_site.clock.advance(3600)  # examples share the throttle: let each start unlocked
    response = await sqlite_site.client.post(
        "/api/login", data=body, headers={"Content-Type": "application/json"}
    )
    answer = await response.json()
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        parsed = None
    right = parsed == {"username": "root", "password": PASSWORD}
    if right:
        assert response.status == 200
        assert SESSION_COOKIE in response.cookies
    else:
        assert response.status in (400, 401), answer
        assert answer["status"] == response.status
        assert "Set-Cookie" not in response.headers


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=header_values)
async def test_any_authorization_header_is_refused_with_401(
    sqlite_site: Site, value: str
) -> None:
    response = await sqlite_site.client.get("/api/calls", headers={"Authorization": value})
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.json())["status"] == 401


# ------------------------------------ path and query parsed by the Endpoint models, as before


@pytest.mark.parametrize(("method", "path", "status", "says"), [
    ("DELETE", "/api/tokens/abc", 400, "id: 'abc' is not an id (a whole number from 1)"),
    ("DELETE", "/api/tokens/0", 400, "id: '0' is not an id (a whole number from 1)"),
    ("DELETE", "/api/tokens/99999999999999999999", 400,
     "id: '99999999999999999999' is not an id (a whole number from 1)"),
    ("DELETE", "/api/tokens/42", 404, "token 42: no such token"),
    ("GET", "/api/tokens?all=2", 400, "all: '2' is not 0 or 1"),
    ("GET", "/api/tokens?al=1", 400, "unknown parameter 'al'; use all"),
    ("GET", "/api/tokens?all=1&all=1", 400, "parameter 'all' is given more than once"),
    ("GET", "/api/users?all=1", 400, "unknown parameter 'all'; use "),
])
async def test_a_wrong_id_or_parameter_is_answered_as_before(
    site: Site, method: str, path: str, status: int, says: str
) -> None:
    root = cookie(await site.login(), **CSRF)
    response = await site.client.request(method, path, headers=root)
    assert response.status == status
    assert await error_of(response) == says


async def test_every_user_and_token_answer_has_the_fields_in_the_order_it_had(
    site: Site,
) -> None:
    root = cookie(await site.login(), **CSRF)
    made = await site.client.post("/api/tokens", headers=root, json={"name": "nightly"})
    assert made.status == 201
    assert list(await made.json()) == ["id", "name", "user_id", "username", "created_at",
                                       "last_used_at", "expires_at", "token"]
    me = await (await site.client.get("/api/me", headers=root)).json()
    assert list(me) == ["user", "via"]
    assert list(me["user"]) == ["id", "username", "display_name", "agent_id", "roles",
                                "active", "created_at"]


# ------------------------------ bodies parsed by the Endpoint models: the same first error

ROLES_NO_LIST = ('roles: expected a list such as ["agent"], of admin, supervisor, agent, '
                 'campaign_manager')
SELF_DEMOTION = ("roles: you cannot remove your own admin role; another admin must, so that "
                 "there is always an admin")
SELF_DEACTIVATION = ("active: you cannot deactivate yourself; another admin must, so that "
                     "there is always an admin")
DISPLAY_NAME = ("display_name: expected 1-100 characters of text without control characters, "
                "or null")


@pytest.mark.parametrize(("caller", "method", "path", "body", "status", "says"), [
    # Missing fields in the order the model declares them, not sorted.
    ("nobody", "POST", "/api/login", {}, 400, "username: is required"),
    ("ann", "POST", "/api/users", {}, 403, "POST /api/users is only for admin; you are agent"),
    ("root", "POST", "/api/users", {"roles": "agent"}, 400, "username: is required"),
    # A token for someone else is refused before its other fields are looked at...
    ("ann", "POST", "/api/tokens", {"name": 7, "user_id": "<root>", "expires_in_days": 0}, 403,
     "user_id: only an admin may make tokens for others"),
    # ...but not before a user_id that is no id, and null is none.
    ("ann", "POST", "/api/tokens", {"name": 7, "user_id": "1"}, 400,
     "user_id: expected a user id (a whole number from 1)"),
    ("ann", "POST", "/api/tokens", {"name": 7, "user_id": None}, 400,
     "user_id: expected a user id (a whole number from 1)"),
    ("root", "POST", "/api/tokens", {"name": 7, "expires_in_days": 0}, 400,
     "expires_in_days: expected a whole number from 1 to 3650"),
    ("root", "POST", "/api/tokens", {"name": "a\x00", "expires_in_days": None}, 400,
     "name: expected 1-100 characters of text without control characters"),
    # Roles that are no list come first; then username, password, roles, names.
    ("root", "POST", "/api/users", {"username": 5, "password": "x", "roles": "agent"}, 400,
     ROLES_NO_LIST),
    ("root", "POST", "/api/users", {"username": 5, "password": "short", "roles": ["boss"]}, 400,
     "username: 5 is not 1-64 characters of A-Z a-z 0-9 . _ @ -"),
    ("root", "POST", "/api/users", {"username": "u", "password": "short", "roles": ["boss"]},
     400, "password: must be at least 10 characters"),
    ("root", "POST", "/api/users", {"username": "u", "password": PASSWORD, "roles": ["boss"],
                                    "display_name": 3}, 400,
     "roles: 'boss' is not a role; use admin, supervisor, agent, campaign_manager"),
    # An admin keeping themselves: the 409 before a later field's 400.
    ("root", "PATCH", "<root>", {"roles": ["agent"], "active": "no"}, 409, SELF_DEMOTION),
    ("root", "PATCH", "<root>", {"active": False, "password": None}, 409, SELF_DEACTIVATION),
    ("root", "PATCH", "<root>", {"roles": ["admin"], "active": False, "display_name": 3}, 409,
     SELF_DEACTIVATION),
    ("root", "PATCH", "<root>", {"roles": "x", "active": False}, 400, ROLES_NO_LIST),
    ("root", "PATCH", "<root>", {"roles": None, "display_name": 3}, 400, ROLES_NO_LIST),
    ("root", "PATCH", "<root>", {"roles": ["admin"], "active": "no"}, 400,
     "active: expected true or false"),
    # A password that is no text before the names; one too short after them.
    ("root", "PATCH", "<ann>", {"password": 5, "display_name": 3}, 400,
     "password: expected text"),
    ("root", "PATCH", "<ann>", {"password": "short", "display_name": 3}, 400, DISPLAY_NAME),
    ("root", "PATCH", "<ann>", {"password": "short", "agent_id": "A"}, 400,
     "agent_id: 'A' is not an agent id (a-z first, then a-z 0-9 _ -, up to 32 characters), "
     "or null"),
    ("root", "PATCH", "<ann>", {"password": "short", "agent_id": None}, 400,
     "password: must be at least 10 characters"),
    ("root", "PATCH", "/api/users/x1", {}, 400, "id: 'x1' is not an id (a whole number from 1)"),
    # A value quoting a placeholder is shown as sent.
    ("root", "PATCH", "<ann>", {"agent_id": "{named}"}, 400,
     "agent_id: '{named}' is not an agent id (a-z first, then a-z 0-9 _ -, up to 32 "
     "characters), or null"),
])
async def test_of_several_wrong_fields_the_one_named_is_the_one_it_always_was(
    site: Site, caller: str, method: str, path: str, body: dict[str, Any], status: int,
    says: str,
) -> None:
    ann = await site.user("ann", "agent")
    ids = {"<root>": site.admin.id, "<ann>": ann.id}
    body = {name: ids.get(value, value) if isinstance(value, str) else value
            for name, value in body.items()}
    if path in ids:
        path = f"/api/users/{ids[path]}"
    headers = {} if caller == "nobody" else bearer(
        await site.token(site.admin if caller == "root" else ann))
    response = await site.client.request(method, path, json=body, headers=headers)
    assert (response.status, await error_of(response)) == (status, says)
