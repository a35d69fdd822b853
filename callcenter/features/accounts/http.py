"""The account routes: sign-in and sign-out, who is signed in, API tokens, users (admins).

Each is declared once as an ``Endpoint`` (web/contract.py) with the models of what it
takes and answers (schemas.py); web/auth.py is the machinery they stand on (sessions, cookies, the
sign-in throttle, revocations). The body models check each value with the store's own rule
(``check_username``, ...), so an error has the store's wording, and declare their fields in
the order the API always checked them. Two refusals come before a later field's 400, as
they always did: a token for someone else (403, ``_tokens_for_others_by_admins_only``) and
an admin demoting or deactivating themselves (409, ``_admins_keep_themselves``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from callcenter.features.accounts.schemas import (
    LOGIN_FAILED,
    IssuedToken,
    LoggedOut,
    Me,
    NewToken,
    NewUser,
    NoParameters,
    OneUser,
    RevokedToken,
    SignIn,
    TokenInPath,
    TokenList,
    Tokens,
    UserChanges,
    UserInPath,
    Users,
    is_row_id,
    token_answer,
    user_answer,
)
from callcenter.features.accounts.store import (
    HashingBusy,
    LastAdmin,
    Role,
    TokenNotFound,
    UsernameTaken,
    UserNotFound,
    check_roles,
)
from callcenter.web.auth import (
    ACCOUNTS,
    ADMINS,
    AUTH_SETTINGS,
    LOGIN_THROTTLE,
    PUBLIC,
    REVOCATIONS,
    SESSION_COOKIE,
    SIGNED_IN,
    client_address,
    current_identity,
    current_user,
    unauthorized,
)
from callcenter.web.contract import (
    Endpoint,
    Reply,
    failed,
    ok,
)
from callcenter.web.params import bad_request, json_error


async def login(request: web.Request, body: SignIn) -> web.Response:
    username, password = body.username, body.password
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
        raise unauthorized(LOGIN_FAILED)
    throttle.succeeded(address, username)
    await accounts.delete_expired_sessions()
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        await accounts.delete_session(previous)
    issued = await accounts.create_session(user.id, settings.session_lifetime)
    response = OneUser(user=user_answer(user)).response()
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
    response = LoggedOut(logged_out=True).response()
    settings = request.app[AUTH_SETTINGS]
    response.del_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="Strict", secure=settings.secure_cookies
    )
    return response


async def me(request: web.Request) -> web.Response:
    identity = current_identity(request)
    return Me(user=user_answer(identity.user), via=identity.via).response()


# --------------------------------------------------------------------------- API tokens


def _tokens_for_others_by_admins_only(request: web.Request, sent: Mapping[str, Any],
                                      path: None) -> None:
    caller = current_user(request)
    owner = sent.get("user_id", caller.id)
    if is_row_id(owner) and owner != caller.id and Role.ADMIN not in caller.roles:
        raise json_error(web.HTTPForbidden, "user_id: only an admin may make tokens for others")


async def create_token(request: web.Request, body: NewToken) -> web.Response:
    caller = current_user(request)
    owner = caller.id if body.user_id is None else body.user_id
    days = body.expires_in_days
    now = request.app[AUTH_SETTINGS].clock.now()
    expires_at = None if days is None else now + days * 86400.0
    try:
        issued = await request.app[ACCOUNTS].create_token(owner, body.name, expires_at)
    except UserNotFound:
        raise bad_request(f"user_id: no user has id {owner}") from None
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return IssuedToken(**token_answer(issued.token).model_dump(), token=issued.secret).response(201)


async def list_tokens(request: web.Request, query: TokenList) -> web.Response:
    caller = current_user(request)
    everyone = query.all
    if everyone == "1" and Role.ADMIN not in caller.roles:
        raise json_error(web.HTTPForbidden, "all: only an admin may list everyone's tokens")
    tokens = await request.app[ACCOUNTS].list_tokens(None if everyone == "1" else caller.id)
    return Tokens(tokens=[token_answer(t) for t in tokens]).response()


async def revoke_token(request: web.Request, path: TokenInPath) -> web.Response:
    caller = current_user(request)
    token_id = path.id
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
    return RevokedToken(id=token_id, revoked=True).response()


# --------------------------------------------------------------------------- users (admin)


async def list_users(request: web.Request, query: NoParameters) -> web.Response:
    users = await request.app[ACCOUNTS].list_users()
    return Users(users=[user_answer(u) for u in users]).response()


async def create_user(request: web.Request, body: NewUser) -> web.Response:
    try:
        user = await request.app[ACCOUNTS].create_user(
            body.username,
            body.password,
            body.roles,
            display_name=body.display_name,
            agent_id=body.agent_id,
        )
    except ValueError as exc:  # the model ran the same checks; each names its field
        raise bad_request(str(exc)) from None
    except HashingBusy as busy:
        raise _busy(busy) from None
    except UsernameTaken as exc:
        raise json_error(web.HTTPConflict, str(exc)) from None
    return OneUser(user=user_answer(user)).response(201)


def _admins_keep_themselves(request: web.Request, sent: Mapping[str, Any],
                            path: UserInPath) -> None:
    """An admin may neither drop their own admin role nor deactivate themselves (another
    admin must, so that there is always an admin): 409, before the fields after roles and
    active are looked at."""
    if path.id != current_user(request).id:
        return
    if "roles" in sent:
        roles = _valid_roles(sent["roles"])
        if roles is None:
            return  # the model names what is wrong with them first
        if Role.ADMIN not in roles:
            raise json_error(
                web.HTTPConflict,
                "roles: you cannot remove your own admin role; another admin must, "
                "so that there is always an admin",
            )
    if sent.get("active") is False:
        raise json_error(
            web.HTTPConflict,
            "active: you cannot deactivate yourself; another admin must, "
            "so that there is always an admin",
        )


def _valid_roles(value: object) -> frozenset[Role] | None:
    if not isinstance(value, list):
        return None
    try:
        return check_roles(value)
    except ValueError:
        return None


async def change_user(request: web.Request, path: UserInPath, body: UserChanges) -> web.Response:
    user_id = path.id
    changes = body.changes()
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
    return OneUser(user=user_answer(user)).response()


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


# --------------------------------------------------------------------------- declarations

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/api/login", login, PUBLIC, "Sign in: sets the session cookie",
             "accounts",
             {200: Reply("Signed in.", OneUser, headers={
                 "Set-Cookie": f"{SESSION_COOKIE}=...; HttpOnly; SameSite=Strict; Path=/"}),
              401: failed("Wrong username or password, or the user is inactive."),
              429: Reply("Too many failed sign-ins for this username; try again later.",
                         headers={"Retry-After": "seconds to wait"})},
             body=SignIn, body_example='{"username": "ada", "password": "..."}', body_where=""),
    Endpoint("POST", "/api/logout", logout, SIGNED_IN, "Sign out: ends this session",
             "accounts", {200: ok(LoggedOut, "Signed out; the cookie is cleared.")}),
    Endpoint("GET", "/api/me", me, SIGNED_IN, "Who is signed in, and how", "accounts",
             {200: ok(Me)}),
    Endpoint("POST", "/api/tokens", create_token, SIGNED_IN, "Issue an API token for scripts",
             "accounts", {201: ok(IssuedToken, "Issued; the secret is in this answer only.")},
             body=NewToken, body_example='{"name": "nightly report", "expires_in_days": 90}',
             body_where="", rule_before_body=_tokens_for_others_by_admins_only),
    Endpoint("GET", "/api/tokens", list_tokens, SIGNED_IN,
             "API tokens: your own, or everyone's for an admin", "accounts",
             {200: ok(Tokens, "The tokens (never their secrets).")}, query=TokenList),
    Endpoint("DELETE", "/api/tokens/{id}", revoke_token, SIGNED_IN, "Revoke an API token",
             "accounts",
             {200: ok(RevokedToken, "Revoked."),
              404: failed("No such token (or not yours, for a non-admin).")},
             path_args=TokenInPath),
    Endpoint("GET", "/api/users", list_users, ADMINS, "Every user, by username", "users",
             {200: ok(Users, "The users.")}, query=NoParameters),
    Endpoint("POST", "/api/users", create_user, ADMINS, "Create a user", "users",
             {201: ok(OneUser, "Created."), 409: failed("The username is taken.")},
             body=NewUser, body_example='{"username": "ada", "password": "at least 10 '
             'characters", "roles": ["agent"], "agent_id": "ada"}', body_where=""),
    Endpoint("PATCH", "/api/users/{id}", change_user, ADMINS,
             "Change a user's roles, names, password or activity", "users",
             {200: ok(OneUser, "Changed."), 404: failed("No such user."),
              409: failed("No active admin would remain (nor may admins demote or deactivate "
                          "themselves).")},
             path_args=UserInPath, body=UserChanges,
             body_example='{"roles": ["agent", "supervisor"], "active": true}', body_where="",
             rule_before_body=_admins_keep_themselves),
)
