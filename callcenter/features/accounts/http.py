"""The account routes: sign-in and sign-out, who is signed in, API tokens, users (admins).

Each is declared once as an ``Endpoint`` (web/contract.py) with the models of what it
answers; web/auth.py is the machinery they stand on (sessions, cookies, the sign-in
throttle, revocations). The JSON bodies are still read by hand (``json_body`` and the
store's own checks), so their errors keep the wording and order the API always had; the
document describes them with the literal schemas below.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Annotated, Any

from aiohttp import web
from pydantic import BeforeValidator, Field
from pydantic.json_schema import WithJsonSchema

from callcenter.core.identifiers import AGENT_ID_RE
from callcenter.features.accounts.store import (
    MAX_DISPLAY_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    MAX_ROW_ID,
    MAX_TOKEN_NAME_LENGTH,
    MIN_PASSWORD_LENGTH,
    USERNAME_RE,
    HashingBusy,
    LastAdmin,
    Role,
    TokenNotFound,
    UsernameTaken,
    UserNotFound,
    check_roles,
    check_username,
)
from callcenter.features.accounts.store import ApiToken as StoredToken
from callcenter.features.accounts.store import User as StoredUser
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
    role_list,
    unauthorized,
)
from callcenter.web.contract import (
    Answer,
    Endpoint,
    PathArgs,
    Query,
    Reply,
    Schema,
    Time,
    fail,
    failed,
    ok,
    whole_match,
)
from callcenter.web.params import bad_request, check_params, iso, json_body, json_error

MAX_TOKEN_DAYS = 3650
LOGIN_FAILED = "wrong username or password"


# --------------------------------------------------------------------------- models

ROW_ID_SCHEMA: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID}
USERNAME_SCHEMA = whole_match(USERNAME_RE)
AGENT_ID_SCHEMA: Schema = {**whole_match(AGENT_ID_RE),
                           "description": "the agent's id, also their SIP user name"}
ROLES_SCHEMA: Schema = {"type": "array",
                        "items": {"type": "string", "enum": [role.value for role in Role]},
                        "minItems": 1, "uniqueItems": True}
PASSWORD_SCHEMA: Schema = {"type": "string", "minLength": MIN_PASSWORD_LENGTH,
                           "maxLength": MAX_PASSWORD_LENGTH}
DISPLAY_NAME_SCHEMA: Schema = {"anyOf": [
    {"type": "string", "minLength": 1, "maxLength": MAX_DISPLAY_NAME_LENGTH}, {"type": "null"}]}

RowId = Annotated[int, WithJsonSchema(ROW_ID_SCHEMA)]
Username = Annotated[str, WithJsonSchema(USERNAME_SCHEMA)]
Roles = Annotated[list[str], WithJsonSchema(ROLES_SCHEMA)]


def _path_id(raw: object) -> object:
    if not isinstance(raw, str):
        return raw
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not 1 <= int(raw) <= MAX_ROW_ID:
        fail(f"{raw[:40]!r} is not an id (a whole number from 1)")
    return int(raw)


PathId = Annotated[int, BeforeValidator(_path_id), WithJsonSchema(ROW_ID_SCHEMA)]


class UserInPath(PathArgs):
    id: Annotated[PathId, Field(description="the user's id")]


class TokenInPath(PathArgs):
    id: Annotated[PathId, Field(description="the token's id")]


def _zero_or_one(raw: object) -> object:
    if isinstance(raw, str) and raw not in ("0", "1"):
        fail(f"{raw[:40]!r} is not 0 or 1")
    return raw


class TokenList(Query):
    all: Annotated[str, BeforeValidator(_zero_or_one),
                   WithJsonSchema({"type": "string", "enum": ["0", "1"], "default": "0"}),
                   Field(description="1: every user's tokens (admins only)")] = "0"


class User(Answer):
    id: RowId
    username: Username
    display_name: Annotated[str | None, WithJsonSchema(DISPLAY_NAME_SCHEMA)]
    agent_id: Annotated[str | None, WithJsonSchema({"anyOf": [AGENT_ID_SCHEMA,
                                                              {"type": "null"}]})]
    roles: Roles
    active: bool
    created_at: Time


class OneUser(Answer):
    user: User


class Me(Answer):
    user: User
    via: Annotated[str, WithJsonSchema({"type": "string", "enum": ["session", "token"]})]


class ApiToken(Answer):
    id: RowId
    name: Annotated[str, Field(max_length=MAX_TOKEN_NAME_LENGTH)]
    user_id: RowId
    username: Username
    created_at: Time
    last_used_at: Time | None
    expires_at: Time | None


class IssuedToken(ApiToken):
    """The new token's details and, this once, its secret."""

    token: Annotated[str, Field(
        description="send as 'Authorization: Bearer <token>'; shown only this once",
        pattern="^cc_[A-Za-z0-9_-]{43}$")]


class LoggedOut(Answer):
    logged_out: Annotated[bool, WithJsonSchema({"const": True})]


class Tokens(Answer):
    tokens: list[ApiToken]


class RevokedToken(Answer):
    id: RowId
    revoked: Annotated[bool, WithJsonSchema({"const": True})]


class Users(Answer):
    users: list[User]


def user_answer(user: StoredUser) -> User:
    return User(id=user.id, username=user.username, display_name=user.display_name,
                agent_id=user.agent_id, roles=role_list(user.roles), active=user.active,
                created_at=iso(user.created_at) or "")


def token_answer(token: StoredToken) -> ApiToken:
    return ApiToken(id=token.id, name=token.name, user_id=token.user_id,
                    username=token.username, created_at=iso(token.created_at) or "",
                    last_used_at=iso(token.last_used_at), expires_at=iso(token.expires_at))


# Request bodies: described literally, read by hand (see the module's docstring).


def _object(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {"type": "object", "properties": {**required, **(optional or {})},
            "required": list(required), "additionalProperties": False}


LOGIN_BODY = _object({"username": USERNAME_SCHEMA,
                      "password": {"type": "string", "maxLength": MAX_PASSWORD_LENGTH}})
TOKEN_BODY = _object(
    {"name": {"type": "string", "minLength": 1, "maxLength": MAX_TOKEN_NAME_LENGTH}},
    {"expires_in_days": {"type": "integer", "minimum": 1, "maximum": MAX_TOKEN_DAYS,
                         "description": "none: it never expires"},
     "user_id": {**ROW_ID_SCHEMA, "description": "whose token (admins only; default: yours)"}})
_NULLABLE_AGENT_ID = {"anyOf": [AGENT_ID_SCHEMA, {"type": "null"}]}
NEW_USER_BODY = _object(
    {"username": USERNAME_SCHEMA, "password": PASSWORD_SCHEMA, "roles": ROLES_SCHEMA},
    {"display_name": DISPLAY_NAME_SCHEMA, "agent_id": _NULLABLE_AGENT_ID})
USER_CHANGES_BODY = {
    **_object({}, {"roles": ROLES_SCHEMA, "display_name": DISPLAY_NAME_SCHEMA,
                   "agent_id": _NULLABLE_AGENT_ID, "password": PASSWORD_SCHEMA,
                   "active": {"type": "boolean"}}),
    "minProperties": 1,
    "description": "Only the fields given change; null clears display_name or agent_id. "
                   "Deactivating a user ends their sessions."}


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


async def list_users(request: web.Request) -> web.Response:
    check_params(request, set())
    users = await request.app[ACCOUNTS].list_users()
    return Users(users=[user_answer(u) for u in users]).response()


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
    return OneUser(user=user_answer(user)).response(201)


async def change_user(request: web.Request, path: UserInPath) -> web.Response:
    caller = current_user(request)
    user_id = path.id
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


# --------------------------------------------------------------------------- declarations

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/api/login", login, PUBLIC, "Sign in: sets the session cookie",
             "accounts",
             {200: Reply("Signed in.", OneUser, headers={
                 "Set-Cookie": f"{SESSION_COOKIE}=...; HttpOnly; SameSite=Strict; Path=/"}),
              401: failed("Wrong username or password, or the user is inactive."),
              429: Reply("Too many failed sign-ins for this username; try again later.",
                         headers={"Retry-After": "seconds to wait"})},
             raw_body=LOGIN_BODY),
    Endpoint("POST", "/api/logout", logout, SIGNED_IN, "Sign out: ends this session",
             "accounts", {200: ok(LoggedOut, "Signed out; the cookie is cleared.")}),
    Endpoint("GET", "/api/me", me, SIGNED_IN, "Who is signed in, and how", "accounts",
             {200: ok(Me)}),
    Endpoint("POST", "/api/tokens", create_token, SIGNED_IN, "Issue an API token for scripts",
             "accounts", {201: ok(IssuedToken, "Issued; the secret is in this answer only.")},
             raw_body=TOKEN_BODY),
    Endpoint("GET", "/api/tokens", list_tokens, SIGNED_IN,
             "API tokens: your own, or everyone's for an admin", "accounts",
             {200: ok(Tokens, "The tokens (never their secrets).")}, query=TokenList),
    Endpoint("DELETE", "/api/tokens/{id}", revoke_token, SIGNED_IN, "Revoke an API token",
             "accounts",
             {200: ok(RevokedToken, "Revoked."),
              404: failed("No such token (or not yours, for a non-admin).")},
             path_args=TokenInPath),
    Endpoint("GET", "/api/users", list_users, ADMINS, "Every user, by username", "users",
             {200: ok(Users, "The users.")}),
    Endpoint("POST", "/api/users", create_user, ADMINS, "Create a user", "users",
             {201: ok(OneUser, "Created."), 409: failed("The username is taken.")},
             raw_body=NEW_USER_BODY),
    Endpoint("PATCH", "/api/users/{id}", change_user, ADMINS,
             "Change a user's roles, names, password or activity", "users",
             {200: ok(OneUser, "Changed."), 404: failed("No such user."),
              409: failed("No active admin would remain (nor may admins demote or deactivate "
                          "themselves).")},
             path_args=UserInPath, raw_body=USER_CHANGES_BODY),
)
