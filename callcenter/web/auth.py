"""Who may do what: sign-in, sessions, API tokens, users, and an access policy per route.

Every request passes ``auth_middleware``. It looks up the policy declared for the matched
route (``protect`` or ``add_route``); a route without one answers 403, so no route is public
by accident. A public route runs as is. Any other request must carry a session cookie or an
``Authorization: Bearer`` token of an active user holding one of the route's roles; a
cookie-authenticated POST/PUT/PATCH/DELETE must also carry ``X-Requested-With: callcenter``
(a page's fetch sends it; a cross-site form cannot).

Sign-in attempts meet growing delays per client address and per (address, username)
(``core.signin_throttle``), never a lock on the username; hashing is capped by the accounts'
``HashGate``. Logout, a new password and deactivation end the user's sessions on the server
and tell open streams through ``Revocations`` (see docs/security-auth.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import math
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from aiohttp import web

from callcenter.core.clock import Clock
from callcenter.core.signin_throttle import SignInThrottle
from callcenter.netaddr import IpNetwork, address_in, parse_address, parse_networks
from callcenter.store.accounts import (
    MAX_PASSWORD_LENGTH,
    MAX_ROW_ID,
    SESSION_LIFETIME,
    AccountRepository,
    ApiToken,
    HashingBusy,
    LastAdmin,
    Role,
    TokenNotFound,
    User,
    UsernameTaken,
    UserNotFound,
    check_roles,
    check_username,
)
from callcenter.web.params import bad_request, check_params, iso, json_body, json_error

SESSION_COOKIE = "callcenter_session"
CSRF_HEADER = "X-Requested-With"
CSRF_VALUE = "callcenter"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_TOKEN_DAYS = 3650
LOGIN_FAILED = "wrong username or password"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Public(Enum):
    PUBLIC = "public"


PUBLIC = _Public.PUBLIC  # a route anyone may call, signed in or not
SIGNED_IN = frozenset(Role)  # a route for every signed-in user, whatever their role
ADMINS = (Role.ADMIN,)
STAFF = (Role.ADMIN, Role.SUPERVISOR)
FLOOR = (Role.ADMIN, Role.SUPERVISOR, Role.AGENT)  # staff and agents


# --------------------------------------------------------------------------- policies


class AccessPolicies:
    """The roles each (method, route) allows; what is not declared is refused."""

    def __init__(self) -> None:
        self._roles: dict[tuple[str, str], frozenset[Role] | _Public] = {}

    def declare(self, method: str, path: str, roles: Iterable[Role | str] | _Public) -> None:
        key = (_method(method), _path(path))
        allowed = PUBLIC if roles is PUBLIC else check_roles(roles)
        known = self._roles.get(key)
        if known is not None and known != allowed:
            raise ValueError(f"{key[0]} {key[1]}: already declared with another policy")
        self._roles[key] = allowed

    def lookup(self, method: str, path: str) -> frozenset[Role] | _Public | None:
        found = self._roles.get((method, path))
        if found is None and method == "HEAD":  # add_get adds HEAD: it reads like GET
            found = self._roles.get(("GET", path))
        return found


ACCESS_POLICIES = web.AppKey("access_policies", AccessPolicies)


def protect(
    app: web.Application, method: str, path: str, *, roles: Iterable[Role | str] | _Public
) -> None:
    """Declare who may call ``method path``; ``path`` as the route's canonical form
    (``/api/callbacks/{id}``, without any ``{id:regex}`` part). ``roles=PUBLIC`` for anyone,
    ``roles=SIGNED_IN`` for any signed-in user."""
    if ACCESS_POLICIES not in app:
        app[ACCESS_POLICIES] = AccessPolicies()
    app[ACCESS_POLICIES].declare(method, path, roles)


def add_route(
    app: web.Application,
    method: str,
    path: str,
    handler: Handler,
    *,
    roles: Iterable[Role | str] | _Public,
) -> web.AbstractRoute:
    """Add a route and its policy in one step: the way to add routes."""
    route = app.router.add_route(method, path, handler)
    resource = route.resource
    assert resource is not None
    protect(app, method, resource.canonical, roles=roles)
    return route


def undeclared_routes(app: web.Application) -> list[str]:
    """``METHOD path`` of every route with no policy (they answer 403)."""
    policies = app.get(ACCESS_POLICIES) or AccessPolicies()
    found = []
    for route in app.router.routes():
        if route.resource is None or route.method == "*":
            continue
        if policies.lookup(route.method, route.resource.canonical) is None:
            found.append(f"{route.method} {route.resource.canonical}")
    return sorted(found)


def _method(method: str) -> str:
    if not isinstance(method, str) or not method.isalpha():
        raise ValueError(f"method: {method!r} is not an HTTP method")
    return method.upper()


def _path(path: str) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"path: {path!r} must start with /")
    return path


# --------------------------------------------------------------------------- who is asking


@dataclass(frozen=True)
class Identity:
    user: User
    via: str  # "session" or "token"
    token_id: int | None = None
    session_secret: str | None = None


_IDENTITY = web.RequestKey("identity", Identity)  # where the middleware leaves who is asking


def current_identity(request: web.Request) -> Identity:
    """Who made this request; only on routes that are not public."""
    identity = request.get(_IDENTITY)
    if not isinstance(identity, Identity):
        raise RuntimeError("current_identity: this request was not authenticated")
    return identity


def current_user(request: web.Request) -> User:
    return current_identity(request).user


def may_act_for_agent(user: User, agent_id: str) -> bool:
    """Admins and supervisors act for every agent; an agent only for their own."""
    if user.has_any({Role.ADMIN, Role.SUPERVISOR}):
        return True
    return Role.AGENT in user.roles and user.agent_id is not None and user.agent_id == agent_id


def require_own_agent(request: web.Request, agent_id: str) -> None:
    """403 unless the user may act for ``agent_id`` (see ``may_act_for_agent``)."""
    user = current_user(request)
    if not may_act_for_agent(user, agent_id):
        mine = f"your agent is {user.agent_id!r}" if user.agent_id else "you are no agent"
        raise json_error(
            web.HTTPForbidden, f"agent {agent_id[:40]!r}: you may act only for your own; {mine}"
        )


# --------------------------------------------------------------------------- client address

def client_address(request: web.Request, trusted_proxies: Sequence[IpNetwork] = ()) -> str:
    """Who is asking, as the sign-in throttle counts them.

    The TCP peer, unless that peer is a trusted proxy: then the nearest address in
    ``X-Forwarded-For`` that is not a trusted proxy itself (the header's earlier entries are
    whatever the client wrote). An IPv6 address counts as its /64, since one host usually
    has a whole /64 to choose from.
    """
    peer = parse_address(request.remote)
    if peer is None:
        return "local"  # a Unix socket or a test transport: one client
    if trusted_proxies and address_in(peer, trusted_proxies):
        hops = [h.strip() for v in request.headers.getall("X-Forwarded-For", [])
                for h in v.split(",")]
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                break  # garbage from here on was written by the client: stop trusting
            peer = address
            if not address_in(address, trusted_proxies):
                break
    if peer.version == 6:
        return str(ipaddress.ip_network(f"{peer}/64", strict=False))
    return str(peer)


# --------------------------------------------------------------------------- revocations


class Revocations:
    """Tells long-lived answers (the SSE streams) that the credentials they were opened
    with ended: a logout, a password change, a deactivation, a revoked token.

    ``with revocations.watch(identity) as ended: ...`` gives an ``asyncio.Event`` that is set
    when that identity's session or token ends in this process; ``still_valid`` re-reads
    the database (for expiry, or a change made by another process).
    """

    def __init__(self) -> None:
        self._watchers: dict[int, set[tuple[Identity, asyncio.Event]]] = {}
        # Called after any ending: open event streams check their credentials again now.
        self.listeners: list[Callable[[], None]] = []

    @contextlib.contextmanager
    def watch(self, identity: Identity) -> Iterator[asyncio.Event]:
        ended = asyncio.Event()
        entry = (identity, ended)
        self._watchers.setdefault(identity.user.id, set()).add(entry)
        try:
            yield ended
        finally:
            watchers = self._watchers.get(identity.user.id)
            if watchers is not None:
                watchers.discard(entry)
                if not watchers:
                    del self._watchers[identity.user.id]

    def session_ended(self, user_id: int, session_secret: str) -> None:
        """One web session ended (its logout)."""
        self._end(user_id, lambda identity: identity.session_secret == session_secret)

    def sessions_ended(self, user_id: int) -> None:
        """Every web session of the user ended (a new password)."""
        self._end(user_id, lambda identity: identity.via == "session")

    def user_ended(self, user_id: int) -> None:
        """Sessions and tokens of the user ended (deactivation)."""
        self._end(user_id, lambda identity: True)

    def token_ended(self, user_id: int, token_id: int) -> None:
        self._end(user_id, lambda identity: identity.token_id == token_id)

    def watching(self, user_id: int) -> int:
        return len(self._watchers.get(user_id, ()))

    def _end(self, user_id: int, matches: Callable[[Identity], bool]) -> None:
        for identity, ended in self._watchers.get(user_id, set()):
            if matches(identity):
                ended.set()
        for listener in self.listeners:
            listener()


async def still_valid(app: web.Application, identity: Identity) -> bool:
    """Whether the session or token behind ``identity`` still lets its user in (an SSE
    stream asks this now and then, and ends when the answer is no)."""
    accounts = app[ACCOUNTS]
    if identity.via == "session" and identity.session_secret is not None:
        return await accounts.user_for_session(identity.session_secret) is not None
    if identity.via == "token" and identity.token_id is not None:
        return await accounts.token_valid(identity.token_id)
    return False


# --------------------------------------------------------------------------- setup


@dataclass(frozen=True)
class AuthSettings:
    clock: Clock
    secure_cookies: bool
    session_lifetime: float
    trusted_proxies: tuple[IpNetwork, ...] = ()


ACCOUNTS = web.AppKey("accounts", AccountRepository)
AUTH_SETTINGS = web.AppKey("auth_settings", AuthSettings)
LOGIN_THROTTLE = web.AppKey("login_throttle", SignInThrottle)
REVOCATIONS = web.AppKey("revocations", Revocations)


def setup_auth(
    app: web.Application,
    accounts: AccountRepository,
    clock: Clock,
    *,
    secure_cookies: bool = False,
    session_lifetime: float = SESSION_LIFETIME,
    trusted_proxies: Iterable[str] = (),
    throttle: SignInThrottle | None = None,
) -> None:
    """Install the middleware (inside those already there) and the account routes.

    ``trusted_proxies``: addresses or networks of reverse proxies whose ``X-Forwarded-For``
    names the client; from anyone else the header is ignored.
    """
    app[ACCOUNTS] = accounts
    app[AUTH_SETTINGS] = AuthSettings(clock, secure_cookies, session_lifetime,
                                      parse_networks(trusted_proxies, "trusted_proxies"))
    app[LOGIN_THROTTLE] = throttle or SignInThrottle()
    app[REVOCATIONS] = Revocations()
    if ACCESS_POLICIES not in app:
        app[ACCESS_POLICIES] = AccessPolicies()
    app.middlewares.append(auth_middleware)
    add_route(app, "POST", "/api/login", login, roles=PUBLIC)
    add_route(app, "POST", "/api/logout", logout, roles=SIGNED_IN)
    add_route(app, "GET", "/api/me", me, roles=SIGNED_IN)
    add_route(app, "POST", "/api/tokens", create_token, roles=SIGNED_IN)
    add_route(app, "GET", "/api/tokens", list_tokens, roles=SIGNED_IN)
    add_route(app, "DELETE", "/api/tokens/{id}", revoke_token, roles=SIGNED_IN)
    add_route(app, "GET", "/api/users", list_users, roles=[Role.ADMIN])
    add_route(app, "POST", "/api/users", create_user, roles=[Role.ADMIN])
    add_route(app, "PATCH", "/api/users/{id}", change_user, roles=[Role.ADMIN])


# --------------------------------------------------------------------------- middleware


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    match_info = request.match_info
    if match_info.http_exception is not None:  # no such path or method: let it answer
        return await handler(request)
    resource = match_info.route.resource
    path = resource.canonical if resource is not None else request.path
    policies = request.app.get(ACCESS_POLICIES) or AccessPolicies()
    allowed = policies.lookup(request.method, path)
    if allowed is None:
        raise json_error(web.HTTPForbidden, f"{request.method} {path}: route has no access policy")
    if allowed is PUBLIC:
        return await handler(request)
    identity = await _authenticate(request)
    if (
        identity.via == "session"
        and request.method in UNSAFE_METHODS
        and request.headers.get(CSRF_HEADER) != CSRF_VALUE
    ):
        raise json_error(
            web.HTTPForbidden,
            f"{request.method} with a session cookie needs the header "
            f"{CSRF_HEADER}: {CSRF_VALUE} (a guard against cross-site requests)",
        )
    if not identity.user.has_any(allowed):
        raise _wrong_role(request.method, path, allowed, identity.user)
    request[_IDENTITY] = identity
    return await handler(request)


async def _authenticate(request: web.Request) -> Identity:
    accounts = request.app[ACCOUNTS]
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        secret = secret.strip(" ")
        if scheme.lower() != "bearer" or not secret or " " in secret:
            raise _unauthorized('Authorization: expected "Bearer <token>"', invalid=True)
        found = await accounts.user_for_token(secret)
        if found is None:
            raise _unauthorized("the API token is unknown, revoked or expired", invalid=True)
        user, token = found
        return Identity(user=user, via="token", token_id=token.id)
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        user = await accounts.user_for_session(secret)
        if user is None:
            raise _unauthorized("your session has ended; sign in again")
        return Identity(user=user, via="session", session_secret=secret)
    raise _unauthorized("sign in first (POST /api/login), or send Authorization: Bearer <token>")


# An event stream outlives the request that authenticated it: it asks again through the same
# lookup (``reauthenticate``), at once when Revocations says credentials ended (web/events.py).


async def reauthenticate(request: web.Request) -> Identity | None:
    """The middleware's lookup again, for a request still running; None once its session or
    token has ended or its user was deactivated."""
    try:
        return await _authenticate(request)
    except web.HTTPUnauthorized:
        return None


def _unauthorized(message: str, *, invalid: bool = False) -> web.HTTPError:
    challenge = 'Bearer realm="callcenter"' + (', error="invalid_token"' if invalid else "")
    return web.HTTPUnauthorized(
        text=json.dumps({"error": message, "status": 401}),
        content_type="application/json",
        headers={"WWW-Authenticate": challenge},
    )


def _wrong_role(method: str, path: str, allowed: frozenset[Role], user: User) -> web.HTTPError:
    may = _role_list(allowed)
    have = ", ".join(_role_list(user.roles))
    return web.HTTPForbidden(
        text=json.dumps({
            "error": f"{method} {path} is only for {', '.join(may)}; you are {have}",
            "status": 403,
            "allowed_roles": may,
        }),
        content_type="application/json",
    )


def _role_list(roles: Iterable[Role]) -> list[str]:
    chosen = set(roles)
    return [role.value for role in Role if role in chosen]  # always in the same order


# --------------------------------------------------------------------------- sign-in


async def login(request: web.Request) -> web.Response:
    body = await json_body(
        request,
        {"username", "password"},
        '{"username": "ada", "password": "..."}',
        required=("username", "password"),
    )
    username = _valid(check_username, body["username"])
    password = body["password"]
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
        raise bad_request(f"password: expected text of at most {MAX_PASSWORD_LENGTH} characters")
    settings = request.app[AUTH_SETTINGS]
    address = client_address(request, settings.trusted_proxies)
    throttle = request.app[LOGIN_THROTTLE]
    wait = throttle.begin(address, username, settings.clock.now())
    if wait > 0:
        raise _retry_later(
            web.HTTPTooManyRequests,
            "too many failed sign-ins from your address; wait and try again", wait,
        )
    accounts = request.app[ACCOUNTS]
    try:
        user = await accounts.authenticate(username, password)
    except HashingBusy as busy:
        throttle.abandoned(address, username)
        raise _busy(busy) from None
    if user is None:
        raise _unauthorized(LOGIN_FAILED)
    throttle.succeeded(address, username)
    await accounts.delete_expired_sessions()
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        await accounts.delete_session(previous)
    issued = await accounts.create_session(user.id, settings.session_lifetime)
    response = web.json_response({"user": user_json(user)})
    response.set_cookie(
        SESSION_COOKIE,
        issued.secret,
        max_age=int(settings.session_lifetime),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=settings.secure_cookies,
    )
    return response


async def logout(request: web.Request) -> web.Response:
    """This browser's session ends on the server, and so do the event streams opened with
    it. The user's other sessions (a wallboard, another desk) go on: a new password or a
    deactivation ends them all. API tokens are kept (revoke them by DELETE)."""
    identity = current_identity(request)
    if identity.session_secret is not None:
        await request.app[ACCOUNTS].delete_session(identity.session_secret)
        request.app[REVOCATIONS].session_ended(identity.user.id, identity.session_secret)
    response = web.json_response({"logged_out": True})
    settings = request.app[AUTH_SETTINGS]
    response.del_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="Strict", secure=settings.secure_cookies
    )
    return response


async def me(request: web.Request) -> web.Response:
    identity = current_identity(request)
    return web.json_response({"user": user_json(identity.user), "via": identity.via})


# --------------------------------------------------------------------------- API tokens


async def create_token(request: web.Request) -> web.Response:
    caller = current_user(request)
    body = await json_body(
        request,
        {"name", "expires_in_days", "user_id"},
        '{"name": "nightly report", "expires_in_days": 90}',
        required=("name",),
    )
    owner = _valid(_row_id_value, body.get("user_id", caller.id), "user_id")
    if owner != caller.id and Role.ADMIN not in caller.roles:
        raise json_error(web.HTTPForbidden, "user_id: only an admin may make tokens for others")
    days = body.get("expires_in_days")
    if days is not None and (
        isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_TOKEN_DAYS
    ):
        raise bad_request(f"expires_in_days: expected a whole number from 1 to {MAX_TOKEN_DAYS}")
    now = request.app[AUTH_SETTINGS].clock.now()
    expires_at = None if days is None else now + days * 86400.0
    try:
        issued = await request.app[ACCOUNTS].create_token(owner, body["name"], expires_at)
    except UserNotFound:
        raise bad_request(f"user_id: no user has id {owner}") from None
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return web.json_response({**token_json(issued.token), "token": issued.secret}, status=201)


async def list_tokens(request: web.Request) -> web.Response:
    check_params(request, {"all"})
    caller = current_user(request)
    everyone = request.query.get("all", "0")
    if everyone not in ("0", "1"):
        raise bad_request(f"all: {everyone[:40]!r} is not 0 or 1")
    if everyone == "1" and Role.ADMIN not in caller.roles:
        raise json_error(web.HTTPForbidden, "all: only an admin may list everyone's tokens")
    tokens = await request.app[ACCOUNTS].list_tokens(None if everyone == "1" else caller.id)
    return web.json_response({"tokens": [token_json(t) for t in tokens]})


async def revoke_token(request: web.Request) -> web.Response:
    caller = current_user(request)
    token_id = _path_id(request)
    accounts = request.app[ACCOUNTS]
    token = await accounts.get_token(token_id)
    # Someone else's token is "not found" for a non-admin: its existence is not theirs to know.
    if token is None or (token.user_id != caller.id and Role.ADMIN not in caller.roles):
        raise json_error(web.HTTPNotFound, f"token {token_id}: no such token")
    try:
        await accounts.delete_token(token_id)
    except TokenNotFound as exc:  # revoked meanwhile
        raise json_error(web.HTTPNotFound, str(exc)) from None
    request.app[REVOCATIONS].token_ended(token.user_id, token_id)
    return web.json_response({"id": token_id, "revoked": True})


# --------------------------------------------------------------------------- users (admin)


async def list_users(request: web.Request) -> web.Response:
    check_params(request, set())
    users = await request.app[ACCOUNTS].list_users()
    return web.json_response({"users": [user_json(u) for u in users]})


async def create_user(request: web.Request) -> web.Response:
    body = await json_body(
        request,
        {"username", "password", "roles", "display_name", "agent_id"},
        '{"username": "ada", "password": "at least 10 characters", "roles": ["agent"], '
        '"agent_id": "ada"}',
        required=("username", "password", "roles"),
    )
    _roles_must_be_a_list(body["roles"])
    try:
        user = await request.app[ACCOUNTS].create_user(
            body["username"],
            body["password"],
            body["roles"],
            display_name=body.get("display_name"),
            agent_id=body.get("agent_id"),
        )
    except ValueError as exc:  # each message starts with the field's name
        raise bad_request(str(exc)) from None
    except HashingBusy as busy:
        raise _busy(busy) from None
    except UsernameTaken as exc:
        raise json_error(web.HTTPConflict, str(exc)) from None
    return web.json_response({"user": user_json(user)}, status=201)


async def change_user(request: web.Request) -> web.Response:
    caller = current_user(request)
    user_id = _path_id(request)
    body = await json_body(
        request,
        {"roles", "display_name", "password", "active", "agent_id"},
        '{"roles": ["agent", "supervisor"], "active": true}',
    )
    if not body:
        raise bad_request("body: nothing to change; give roles, display_name, password, "
                          "active or agent_id")
    changes: dict[str, Any] = dict(body)
    if "roles" in changes:
        _roles_must_be_a_list(changes["roles"])
        roles = _valid(check_roles, changes["roles"])
        if user_id == caller.id and Role.ADMIN not in roles:
            raise json_error(
                web.HTTPConflict,
                "roles: you cannot remove your own admin role; another admin must, "
                "so that there is always an admin",
            )
    if "active" in changes:
        if not isinstance(changes["active"], bool):
            raise bad_request("active: expected true or false")
        if user_id == caller.id and changes["active"] is False:
            raise json_error(
                web.HTTPConflict,
                "active: you cannot deactivate yourself; another admin must, "
                "so that there is always an admin",
            )
    if "password" in changes and not isinstance(changes["password"], str):
        raise bad_request("password: expected text")  # null would mean "no change" below
    try:
        user = await request.app[ACCOUNTS].update_user(user_id, **changes)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    except UserNotFound as exc:
        raise json_error(web.HTTPNotFound, str(exc)) from None
    except LastAdmin as exc:
        raise json_error(web.HTTPConflict, str(exc)) from None
    except HashingBusy as busy:
        raise _busy(busy) from None
    # The database ended the sessions (and, at deactivation, the tokens): now the streams.
    revocations = request.app[REVOCATIONS]
    if changes.get("active") is False:
        revocations.user_ended(user_id)
    elif "password" in changes:
        revocations.sessions_ended(user_id)
    return web.json_response({"user": user_json(user)})


# --------------------------------------------------------------------------- JSON


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "agent_id": user.agent_id,
        "roles": _role_list(user.roles),
        "active": user.active,
        "created_at": iso(user.created_at),
    }


def token_json(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "user_id": token.user_id,
        "username": token.username,
        "created_at": iso(token.created_at),
        "last_used_at": iso(token.last_used_at),
        "expires_at": iso(token.expires_at),
    }


def _busy(busy: HashingBusy) -> web.HTTPError:
    return _retry_later(web.HTTPServiceUnavailable,
                        "too many sign-ins at once; try again in a moment", busy.retry_after)


def _retry_later(error: type[web.HTTPError], message: str, seconds: float) -> web.HTTPError:
    wait = max(1, math.ceil(seconds))
    return error(
        text=json.dumps({"error": message, "status": error.status_code, "retry_after": wait}),
        content_type="application/json",
        headers={"Retry-After": str(wait)},
    )


def _valid(check: Callable[..., Any], value: object, *args: object) -> Any:
    """Run a store check; its ValueError (which names the field) becomes a 400."""
    try:
        return check(value, *args)
    except ValueError as exc:
        raise bad_request(str(exc)) from None


def _row_id_value(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ROW_ID:
        raise ValueError(f"{name}: expected a user id (a whole number from 1)")
    return value


def _roles_must_be_a_list(value: object) -> None:
    if not isinstance(value, list):
        raise bad_request(
            f"roles: expected a list such as [\"agent\"], of {', '.join(r.value for r in Role)}"
        )


def _path_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not 1 <= int(raw) <= MAX_ROW_ID:
        raise bad_request(f"id: {raw[:40]!r} is not an id (a whole number from 1)")
    return int(raw)
