"""Who may do what: sessions, API tokens and an access policy per route, checked on every
request. The account routes (sign-in, tokens, users) are features/accounts/http.py's.

Every request passes ``auth_middleware``. It looks up the policy declared for the matched
route (``protect`` or ``add_route``); a route without one answers 403, so no route is public
by accident. A public route runs as is. Any other request must carry a session cookie or an
``Authorization: Bearer`` token of an active user holding one of the route's roles; a
cookie-authenticated POST/PUT/PATCH/DELETE must also carry ``X-Requested-With: callcenter``
(a page's fetch sends it; a cross-site form cannot).

Sign-in attempts meet growing delays per client address and per (address, username)
(``core.signin_throttle``; ``client_address`` says who is asking), never a lock on the
username; hashing is capped by the accounts' ``HashGate``. Logout, a new password and
deactivation end the user's sessions on the server and tell open streams through
``Revocations`` (see docs/security-auth.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum

from aiohttp import web

from callcenter.core.clock import Clock
from callcenter.core.signin_throttle import SignInThrottle
from callcenter.features.accounts.store import (
    SESSION_LIFETIME,
    AccountRepository,
    Role,
    User,
    check_roles,
)
from callcenter.netaddr import IpNetwork, address_in, parse_address, parse_networks
from callcenter.web.params import json_error

SESSION_COOKIE = "callcenter_session"
CSRF_HEADER = "X-Requested-With"
CSRF_VALUE = "callcenter"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Public(Enum):
    PUBLIC = "public"


PUBLIC = _Public.PUBLIC  # a route anyone may call, signed in or not
SIGNED_IN = frozenset(Role)  # a route for every signed-in user, whatever their role
ADMINS = (Role.ADMIN,)
STAFF = (Role.ADMIN, Role.SUPERVISOR)
FLOOR = (Role.ADMIN, Role.SUPERVISOR, Role.AGENT)  # staff and agents
CAMPAIGN_MANAGERS = (Role.ADMIN, Role.CAMPAIGN_MANAGER)  # who set campaigns up and run them
CAMPAIGN_READERS = (Role.ADMIN, Role.CAMPAIGN_MANAGER, Role.SUPERVISOR)


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


def install_auth(
    app: web.Application,
    accounts: AccountRepository,
    clock: Clock,
    *,
    secure_cookies: bool = False,
    session_lifetime: float = SESSION_LIFETIME,
    trusted_proxies: Iterable[str] = (),
    throttle: SignInThrottle | None = None,
) -> None:
    """Install the middleware (inside those already there) and what it and the account
    routes (features/accounts/http.py ``ENDPOINTS``, registered beside it) share.

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
            raise unauthorized('Authorization: expected "Bearer <token>"', invalid=True)
        found = await accounts.user_for_token(secret)
        if found is None:
            raise unauthorized("the API token is unknown, revoked or expired", invalid=True)
        user, token = found
        return Identity(user=user, via="token", token_id=token.id)
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        user = await accounts.user_for_session(secret)
        if user is None:
            raise unauthorized("your session has ended; sign in again")
        return Identity(user=user, via="session", session_secret=secret)
    raise unauthorized("sign in first (POST /api/login), or send Authorization: Bearer <token>")


# An event stream outlives the request that authenticated it: it asks again through the same
# lookup (``reauthenticate``), at once when Revocations says credentials ended (web/events.py).


async def reauthenticate(request: web.Request) -> Identity | None:
    """The middleware's lookup again, for a request still running; None once its session or
    token has ended or its user was deactivated."""
    try:
        return await _authenticate(request)
    except web.HTTPUnauthorized:
        return None


def unauthorized(message: str, *, invalid: bool = False) -> web.HTTPError:
    challenge = 'Bearer realm="callcenter"' + (', error="invalid_token"' if invalid else "")
    return web.HTTPUnauthorized(
        text=json.dumps({"error": message, "status": 401}),
        content_type="application/json",
        headers={"WWW-Authenticate": challenge},
    )


def _wrong_role(method: str, path: str, allowed: frozenset[Role], user: User) -> web.HTTPError:
    may = role_list(allowed)
    have = ", ".join(role_list(user.roles))
    return web.HTTPForbidden(
        text=json.dumps({
            "error": f"{method} {path} is only for {', '.join(may)}; you are {have}",
            "status": 403,
            "allowed_roles": may,
        }),
        content_type="application/json",
    )


def role_list(roles: Iterable[Role]) -> list[str]:
    chosen = set(roles)
    return [role.value for role in Role if role in chosen]  # always in the same order
