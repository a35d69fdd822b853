"""Who may do what: sign-in, sessions, API tokens, users, and an access policy per route.

Every request passes ``auth_middleware``. It looks up the policy declared for the matched
route (``protect`` or ``add_route``); a route without one answers 403, so no route is public
by accident. A public route runs as is. Any other request must carry a session cookie or an
``Authorization: Bearer`` token of an active user holding one of the route's roles; a
cookie-authenticated POST/PUT/PATCH/DELETE must also carry ``X-Requested-With: callcenter``
(a page's fetch sends it; a cross-site form cannot).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from aiohttp import web

from callcenter.core.clock import Clock
from callcenter.store.accounts import (
    MAX_PASSWORD_LENGTH,
    MAX_ROW_ID,
    SESSION_LIFETIME,
    AccountRepository,
    ApiToken,
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
LOGIN_FAILURES_ALLOWED = 5
LOGIN_WINDOW = 15 * 60.0
LOGIN_LOCKOUT = 15 * 60.0
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


# --------------------------------------------------------------------------- sign-in throttle


class LoginLocked(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"locked for {retry_after:.0f} s")
        self.retry_after = retry_after


class LoginThrottle:
    """After ``failures`` failed sign-ins for one username within ``window`` seconds, refuse
    that username for ``lockout`` seconds. In memory; time from the clock.

    An attempt counts as failed from its start until it succeeds, so attempts sent in
    parallel cannot get more than ``failures`` guesses checked.
    """

    MAX_TRACKED = 10_000  # usernames; beyond this, stale entries are swept

    def __init__(
        self,
        clock: Clock,
        failures: int = LOGIN_FAILURES_ALLOWED,
        window: float = LOGIN_WINDOW,
        lockout: float = LOGIN_LOCKOUT,
    ) -> None:
        self._clock = clock
        self._failures = failures
        self._window = window
        self._lockout = lockout
        self._attempts: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}

    def start(self, username: str) -> None:
        """An attempt begins; raises ``LoginLocked`` when the username is locked out."""
        now = self._clock.now()
        until = self._locked_until.get(username)
        if until is not None:
            if now < until:
                raise LoginLocked(until - now)
            del self._locked_until[username]
        attempts = self._attempts.setdefault(username, deque())
        while attempts and attempts[0] <= now - self._window:
            attempts.popleft()
        attempts.append(now)
        if len(attempts) >= self._failures:
            self._locked_until[username] = now + self._lockout
            del self._attempts[username]
        if len(self._attempts) > self.MAX_TRACKED:
            self._sweep(now)

    def succeeded(self, username: str) -> None:
        self._attempts.pop(username, None)
        self._locked_until.pop(username, None)

    def _sweep(self, now: float) -> None:
        for name in [n for n, a in self._attempts.items() if a[-1] <= now - self._window]:
            del self._attempts[name]
        for name in [n for n, until in self._locked_until.items() if until <= now]:
            del self._locked_until[name]


# --------------------------------------------------------------------------- setup


@dataclass(frozen=True)
class AuthSettings:
    clock: Clock
    secure_cookies: bool
    session_lifetime: float


ACCOUNTS = web.AppKey("accounts", AccountRepository)
AUTH_SETTINGS = web.AppKey("auth_settings", AuthSettings)
LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)


def setup_auth(
    app: web.Application,
    accounts: AccountRepository,
    clock: Clock,
    *,
    secure_cookies: bool = False,
    session_lifetime: float = SESSION_LIFETIME,
) -> None:
    """Install the middleware (inside those already there) and the account routes."""
    app[ACCOUNTS] = accounts
    app[AUTH_SETTINGS] = AuthSettings(clock, secure_cookies, session_lifetime)
    app[LOGIN_THROTTLE] = LoginThrottle(clock)
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
# lookup (``reauthenticate``), at once when a session, a token or a user changed (web/events.py).
CREDENTIALS_CHANGED = web.AppKey("credentials_changed", list[Callable[[], None]])


async def reauthenticate(request: web.Request) -> Identity | None:
    """The middleware's lookup again, for a request still running; None once its session or
    token has ended or its user was deactivated."""
    try:
        return await _authenticate(request)
    except web.HTTPUnauthorized:
        return None


def credentials_changed(app: web.Application) -> None:
    """A session, token or user changed: open event streams check theirs again now."""
    for listener in app.get(CREDENTIALS_CHANGED, ()):
        listener()


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
    throttle = request.app[LOGIN_THROTTLE]
    try:
        throttle.start(username)
    except LoginLocked as locked:
        raise web.HTTPTooManyRequests(
            text=json.dumps({
                "error": "too many failed sign-ins for this username; try again later",
                "status": 429,
            }),
            content_type="application/json",
            headers={"Retry-After": str(max(1, round(locked.retry_after)))},
        ) from None
    accounts = request.app[ACCOUNTS]
    user = await accounts.authenticate(username, password)
    if user is None:
        raise _unauthorized(LOGIN_FAILED)
    throttle.succeeded(username)
    await accounts.delete_expired_sessions()
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        await accounts.delete_session(previous)
    settings = request.app[AUTH_SETTINGS]
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
    identity = current_identity(request)
    if identity.session_secret is not None:
        await request.app[ACCOUNTS].delete_session(identity.session_secret)
        credentials_changed(request.app)
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
    credentials_changed(request.app)
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
    credentials_changed(request.app)
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
