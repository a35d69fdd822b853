"""What the account routes take and answer (see web/contract.py): sign-in, tokens, users.

The body models check each value with the store's own rule (``checked_by``), in the order
the API always checked them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, model_validator
from pydantic.json_schema import WithJsonSchema

from callcenter.core.identifiers import AGENT_ID_RE
from callcenter.features.accounts.store import (
    MAX_DISPLAY_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    MAX_ROW_ID,
    MAX_TOKEN_NAME_LENGTH,
    MIN_PASSWORD_LENGTH,
    USERNAME_RE,
    Role,
    check_agent_id,
    check_display_name,
    check_new_password,
    check_roles,
    check_token_name,
    check_username,
)
from callcenter.features.accounts.store import ApiToken as StoredToken
from callcenter.features.accounts.store import User as StoredUser
from callcenter.web.auth import (
    role_list,
)
from callcenter.web.contract import (
    Answer,
    Body,
    PathArgs,
    Query,
    Schema,
    Time,
    checked_by,
    fail,
    refuse_as_named,
    whole_match,
)
from callcenter.web.params import iso

MAX_TOKEN_DAYS = 3650


LOGIN_FAILED = "wrong username or password"


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


class NoParameters(Query):
    """A route that takes no query parameters (any is "unknown")."""


_NULLABLE_AGENT_ID = {"anyOf": [AGENT_ID_SCHEMA, {"type": "null"}]}


ROLE_LIST_WORDING = f"expected a list such as [\"agent\"], of {', '.join(r.value for r in Role)}"


def _role_list(value: object) -> object:
    if not isinstance(value, list):
        fail(ROLE_LIST_WORDING)
    try:
        check_roles(value)
    except ValueError as exc:
        refuse_as_named(str(exc))
    return value


def _whole_number(value: object, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def is_row_id(value: object) -> bool:
    return _whole_number(value, 1, MAX_ROW_ID)


def _token_owner(value: object) -> object:
    if not is_row_id(value):  # null too: leave the field out for your own token
        fail("expected a user id (a whole number from 1)")
    return value


def _token_days(value: object) -> object:
    if value is not None and not _whole_number(value, 1, MAX_TOKEN_DAYS):  # null: never ends
        fail(f"expected a whole number from 1 to {MAX_TOKEN_DAYS}")
    return value


def _sign_in_password(value: object) -> object:
    if not isinstance(value, str) or len(value) > MAX_PASSWORD_LENGTH:
        fail(f"expected text of at most {MAX_PASSWORD_LENGTH} characters")
    return value


def _flag(value: object) -> object:
    if not isinstance(value, bool):
        fail("expected true or false")
    return value


def _text(value: object) -> object:
    if not isinstance(value, str):  # null too: it would read as "no change"
        fail("expected text")
    return value


CheckedUsername = Annotated[str, checked_by(check_username), WithJsonSchema(USERNAME_SCHEMA)]


NewPassword = Annotated[str, checked_by(check_new_password), WithJsonSchema(PASSWORD_SCHEMA)]


RoleList = Annotated[list[str], BeforeValidator(_role_list), WithJsonSchema(ROLES_SCHEMA)]


DisplayName = Annotated[str | None, checked_by(check_display_name),
                        WithJsonSchema(DISPLAY_NAME_SCHEMA)]


AgentIdOrNull = Annotated[str | None, checked_by(check_agent_id),
                          WithJsonSchema(_NULLABLE_AGENT_ID)]


class SignIn(Body):
    username: CheckedUsername
    password: Annotated[str, BeforeValidator(_sign_in_password),
                        WithJsonSchema({"type": "string", "maxLength": MAX_PASSWORD_LENGTH})]


class NewToken(Body):
    # Checked in this order, as the API always did: whose token it is (and, before the
    # model, whether you may make it: _tokens_for_others_by_admins_only), how long it
    # lasts, then its name.
    user_id: Annotated[int | None, BeforeValidator(_token_owner), WithJsonSchema(
        {**ROW_ID_SCHEMA, "description": "whose token (admins only; default: yours)"})] = None
    expires_in_days: Annotated[int | None, BeforeValidator(_token_days), WithJsonSchema(
        {"type": "integer", "minimum": 1, "maximum": MAX_TOKEN_DAYS,
         "description": "none: it never expires"})] = None
    name: Annotated[str, checked_by(check_token_name), WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": MAX_TOKEN_NAME_LENGTH})]


class NewUser(Body):
    username: CheckedUsername
    password: NewPassword
    roles: RoleList
    display_name: DisplayName = None
    agent_id: AgentIdOrNull = None

    @model_validator(mode="before")
    @classmethod
    def _roles_a_list_first(cls, sent: object) -> object:
        # The API always refused roles that are no list before looking at the username.
        if isinstance(sent, Mapping) and "roles" in sent and not isinstance(sent["roles"], list):
            fail(ROLE_LIST_WORDING, where="roles")
        return sent


class UserChanges(Body):
    model_config = ConfigDict(json_schema_extra={
        "minProperties": 1,
        "description": "Only the fields given change; null clears display_name or agent_id. "
                       "Deactivating a user ends their sessions."})

    # Checked in this order, as the API always did (the password's length last, once the
    # others are right; _admins_keep_themselves before the model).
    # null is refused like any other wrong value: the validators run before None could match.
    roles: Annotated[list[str] | None, BeforeValidator(_role_list),
                     WithJsonSchema(ROLES_SCHEMA)] = None
    active: Annotated[bool | None, BeforeValidator(_flag),
                      WithJsonSchema({"type": "boolean"})] = None
    password: Annotated[str | None, BeforeValidator(_text),
                        WithJsonSchema(PASSWORD_SCHEMA)] = None
    display_name: DisplayName = None
    agent_id: AgentIdOrNull = None

    @model_validator(mode="before")
    @classmethod
    def _something(cls, sent: object) -> object:
        if isinstance(sent, Mapping) and not sent:
            fail("nothing to change; give roles, display_name, password, active or agent_id",
                 where="body")
        return sent

    @model_validator(mode="after")
    def _password_long_enough(self) -> UserChanges:
        if self.password is not None:
            try:
                check_new_password(self.password)
            except ValueError as exc:
                refuse_as_named(str(exc))
        return self

    def changes(self) -> dict[str, Any]:
        """The fields given, by name (a null display_name or agent_id among them)."""
        return {name: getattr(self, name) for name in type(self).model_fields
                if name in self.model_fields_set}
