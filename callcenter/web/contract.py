"""Each HTTP route declared once: method, path, handler, roles, what it takes and answers.

An ``Endpoint`` names its path, query and body models (pydantic v2); ``register`` adds the
route with its roles (web/auth.py enforces them) and parses what the client sent with those
models before the handler runs, so a handler gets typed values; ``web/openapi.py`` turns the
same declarations into the OpenAPI document (components from the models' JSON Schema).

Errors keep the API's shape: 400 ``{"error": "<where>: <what is wrong>", "status": 400}``,
never echoing more than 40 characters of what was sent. The message of a failed check is
the one its validator raises (``fail``, or a rule kept elsewhere run by ``checked_by``), so
the wording is ours, not pydantic's. The first problem is reported: a body's missing fields
and then its values in the order the model declares its fields, so a model's field order is
part of its contract.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn, TypeVar

from aiohttp import web
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema
from pydantic_core import PydanticCustomError

from callcenter.core.clock import to_datetime
from callcenter.features.accounts.store import Role
from callcenter.web.auth import PUBLIC, _Public, add_route, require_own_agent
from callcenter.web.params import bad_request, body_too_large, check_params, json_error, json_kind

Schema = dict[str, Any]
PUBLIC_ROLES = PUBLIC  # anyone, signed in or not
Handler = Callable[..., Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)
# A rule an endpoint applies to the body as sent, before its model checks the values (see
# ``Endpoint.rule_before_body``): the request, the body, the parsed path (or None).
BodyRule = Callable[[web.Request, Mapping[str, Any], Any], None]

TIME_SCHEMA: Schema = {"type": "string", "format": "date-time",
                       "description": "ISO 8601, UTC (e.g. 2026-11-18T11:06:40Z)"}


# ----------------------------------------------------------------------- models


class Body(BaseModel):
    """A JSON request body. Unknown fields and missing required ones (in the order the model
    declares them) are refused before the model runs (``json_object``), with the wording the
    API always had; then the model checks the values, field by field in declaration order."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Query(BaseModel):
    """Query parameters: unknown ones and ones given twice are refused (``check_params``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PathArgs(BaseModel):
    """The placeholders of a route's path."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Answer(BaseModel):
    """A JSON answer: every field listed, no others (``additionalProperties: false``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def response(self, status: int = 200) -> web.Response:
        return web.json_response(self.model_dump(mode="json"), status=status)


def fail(message: str, *, where: str | None = None) -> NoReturn:
    """Refuse a value with this message, shown after the field's name (or ``where``, for a
    place inside the field, e.g. ``to.queue``)."""
    # The message goes last: pydantic fills the template's placeholders in this order, and a
    # message quoting what was sent (say "{where}") must not have it filled in.
    raise PydanticCustomError("contract", "{message}", {"where": where, "message": message})


def checked_by(check: Callable[[Any], object]) -> BeforeValidator:
    """A field checked by a rule kept elsewhere (e.g. the store's ``check_username``) whose
    ``ValueError`` already names the field: its message is the error, word for word. The
    value goes on as it was sent."""
    def validate(value: object) -> object:
        try:
            check(value)
        except ValueError as exc:
            refuse_as_named(str(exc))
        return value
    return BeforeValidator(validate)


def refuse_as_named(message: str) -> NoReturn:
    """Refuse with ``message`` as it is: it already begins with the field's name."""
    raise PydanticCustomError("contract", "{message}", {"named": True, "message": message})


def shown(value: object) -> str:
    """A JSON value named without echoing more than 40 characters of it."""
    return repr(value[:40]) if isinstance(value, str) else json_kind(value)


# ----------------------------------------------------------------------- field types


def _json_type(expected: str, check: Callable[[object], bool]) -> BeforeValidator:
    def validate(value: object) -> object:
        if not check(value):
            fail(f"expected {expected}, got {json_kind(value)}")
        return value
    return BeforeValidator(validate)


TEXT_VALIDATOR = _json_type("text", lambda value: isinstance(value, str))
Text = Annotated[str, TEXT_VALIDATOR]
Flag = Annotated[bool, _json_type("true or false", lambda value: isinstance(value, bool))]
JSON_OBJECT_VALIDATOR = _json_type("an object", lambda value: isinstance(value, dict))
JsonObject = Annotated[dict[str, Any], JSON_OBJECT_VALIDATOR]


def refuse_nul(value: str, *, where: str | None = None) -> None:
    """Text the database cannot hold (a NUL character) is refused here, as a 400 naming the
    field, rather than by the store later."""
    if "\x00" in value:
        fail("contains a NUL character, which cannot be stored", where=where)


def stored_text(least: int, most: int) -> Any:
    """Text stored as sent: ``least`` to ``most`` characters (not blank when ``least``), no
    NUL."""
    size = f"at most {most}" if least == 0 else f"{least} to {most}"

    def validate(value: object) -> object:
        if not isinstance(value, str) or len(value) > most or len(value.strip()) < least:
            fail(f"expected text of {size} characters, got {shown(value)}")
        refuse_nul(value)
        return value
    return Annotated[str, BeforeValidator(validate),
                     WithJsonSchema({"type": "string", "minLength": least, "maxLength": most})]


def pattern_text(regex: re.Pattern[str], what: str, *, expected: str = "text",
                 nullable: bool = False, **schema: Any) -> Any:
    """Text the whole of which matches ``regex``; else "'<value>' is not <what>". Not text:
    "expected <expected>, got <kind>". ``nullable``: the field may be left out (None), but
    null itself is refused like any other wrong type."""
    def validate(value: object) -> object:
        if not isinstance(value, str):
            fail(f"expected {expected}, got {shown(value)}")
        if not regex.fullmatch(value):  # match() would let "x\n" through
            fail(f"{value[:40]!r} is not {what}")
        return value
    return Annotated[str | None if nullable else str, BeforeValidator(validate),  # type: ignore[misc]
                     WithJsonSchema({**whole_match(regex), **schema})]


def whole_match(regex: re.Pattern[str]) -> Schema:
    """A string the whole of which matches ``regex`` (JSON Schema patterns search anywhere)."""
    core = regex.pattern.removeprefix("^").removesuffix("$")
    return {"type": "string", "pattern": f"^(?:{core})$"}


def one_of(values: Iterable[str], **schema: Any) -> Any:
    """Text that is one of ``values``; else "'<value>' is not one of a, b, c"."""
    allowed = [str(value) for value in values]

    def validate(value: object) -> object:
        if not isinstance(value, str):
            fail(f"expected text, got {json_kind(value)}")
        if value not in allowed:
            fail(f"{value[:40]!r} is not one of {', '.join(allowed)}")
        return value
    return Annotated[str, BeforeValidator(validate),
                     WithJsonSchema({"type": "string", "enum": allowed, **schema})]


def _parse_time(raw: object) -> float | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        return raw  # type: ignore[return-value]  # already a time: let the float check it
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{raw[:40]!r} is not an ISO 8601 time (e.g. 2026-11-28T21:00:00Z)")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        to_datetime(when.timestamp())  # a zone offset can push year 9999 out of range
    except (OverflowError, OSError, ValueError):
        fail(f"{raw[:40]!r} is out of range")
    return when.timestamp()


# A time sent as a query parameter, as POSIX seconds; "" is no time.
TimeParam = Annotated[float | None, BeforeValidator(_parse_time), WithJsonSchema(TIME_SCHEMA)]


class TimeRange(Query):
    """``since`` and ``until`` as POSIX seconds; since must come before until."""

    since: Annotated[TimeParam, Field(description="only what happened at or after this "
                                                  "time")] = None
    until: Annotated[TimeParam, Field(description="only what happened before this time "
                                                  "(after since)")] = None

    @model_validator(mode="after")
    def _since_before_until(self) -> TimeRange:
        if self.since is not None and self.until is not None and self.since >= self.until:
            fail("since must be before until")
        return self


def whole_param(low: int, high: int) -> Any:
    """A whole number sent as a query parameter, in low..high."""
    def validate(raw: object) -> object:
        if not isinstance(raw, str):
            return raw
        if not re.fullmatch(r"[0-9]{1,9}", raw):
            fail(f"{raw[:40]!r} is not a whole number")
        value = int(raw)
        if not low <= value <= high:
            fail(f"{value} is outside {low}..{high}")
        return value
    return Annotated[int, BeforeValidator(validate),
                     WithJsonSchema({"type": "integer", "minimum": low, "maximum": high})]


def name_param(regex: re.Pattern[str], what: str, *, json_schema: Schema | None = None,
               **schema: Any) -> Any:
    """A name sent as a query parameter; "" is none. ``json_schema``: what the document
    says instead of the pattern (e.g. an integer)."""
    def validate(raw: object) -> object:
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str) or not regex.fullmatch(raw):
            fail(f"{str(raw)[:40]!r} is not {what}")
        return raw
    return Annotated[str | None, BeforeValidator(validate),
                     WithJsonSchema(json_schema or {**whole_match(regex), **schema})]


# An answer's time: ISO 8601 text (built with web/params.py's ``iso``).
Time = Annotated[str, WithJsonSchema(TIME_SCHEMA)]
Seconds = Annotated[float, Field(ge=0)]


# ----------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Reply:
    """One status an operation answers: in words, and its body's model (or a component
    schema's name, or a literal schema; None: no body)."""

    description: str
    body: type[BaseModel] | str | Schema | None = "Error"
    media_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)  # name -> description


def ok(body: type[BaseModel] | str | Schema, description: str = "OK") -> Reply:
    return Reply(description, body)


def failed(description: str) -> Reply:
    return Reply(description, "Error")


@dataclass(frozen=True)
class Endpoint:
    """One route, declared once: everything ``register`` and the OpenAPI document need."""

    method: str
    path: str
    handler: Handler | None  # None: served elsewhere (web/events.py)
    roles: tuple[Role, ...] | frozenset[Role] | _Public
    summary: str
    tag: str
    answers: Mapping[int, Reply]
    path_args: type[PathArgs] | None = None
    query: type[Query] | None = None
    body: type[Body] | None = None
    body_example: str = "{}"
    body_where: str = "body: "  # how errors about the body begin
    # A file sent as the raw body, in one of these media types (an upload: its handler
    # streams it; the route must also be declared with web/limits.py's ``stream_body``).
    file_body: tuple[str, ...] = ()
    # A rule the endpoint applies to the body as sent (a JSON object of known fields, the
    # required ones present) before its model checks the values, for a refusal (403, 409)
    # the API reports before a later field's 400. It looks only at values that are valid and
    # leaves any other to the model, which names it.
    rule_before_body: BodyRule | None = None
    takes_no_query: bool = False  # refuse any query parameter ("this route takes none")
    own_agent: str | None = None  # the path argument an agent may name only as themselves
    own_only: tuple[Role, ...] = ()  # roles limited to their own (documented; see own_agent)
    description: str = ""
    # For a route whose handler reads its own query (the event stream, the demo): its
    # parameters as literal OpenAPI.
    parameters: tuple[Schema, ...] = ()

    @property
    def own_roles(self) -> tuple[Role, ...]:
        return (Role.AGENT,) if self.own_agent is not None else self.own_only


def register(app: web.Application, endpoints: Iterable[Endpoint]) -> None:
    """Add each endpoint's route with its roles; its handler gets the parsed arguments."""
    for endpoint in endpoints:
        assert endpoint.handler is not None, f"{endpoint.method} {endpoint.path}: no handler"
        add_route(app, endpoint.method, endpoint.path, _parsing(endpoint), roles=endpoint.roles)


def _parsing(endpoint: Endpoint) -> Handler:
    handler = endpoint.handler
    assert handler is not None
    if not (endpoint.path_args or endpoint.query or endpoint.body or endpoint.takes_no_query):
        return handler
    query_names = set() if endpoint.query is None else set(endpoint.query.model_fields)
    body_fields = {} if endpoint.body is None else endpoint.body.model_fields
    body_required = tuple(name for name, f in body_fields.items() if f.is_required())

    async def parse_then_handle(request: web.Request) -> web.StreamResponse:
        # The order of the checks is the API's: what the query names, the path, whose it
        # is, the query's values, then the body: its form, the endpoint's rule, its values.
        if endpoint.takes_no_query and request.query:
            name = sorted(request.query)[0][:40]
            raise bad_request(f"unknown parameter {name!r}: this route takes none")
        if endpoint.query is not None:
            check_params(request, query_names)
        arguments: dict[str, Any] = {}
        if endpoint.path_args is not None:
            path = parsed(endpoint.path_args, dict(request.match_info), "")
            arguments["path"] = path
            if endpoint.own_agent is not None:
                require_own_agent(request, getattr(path, endpoint.own_agent))
        if endpoint.query is not None:
            arguments["query"] = parsed(endpoint.query, dict(request.query), "")
        if endpoint.body is not None:
            sent = await json_object(request, set(body_fields), endpoint.body_example,
                                     required=body_required)
            if endpoint.rule_before_body is not None:
                endpoint.rule_before_body(request, sent, arguments.get("path"))
            arguments["body"] = parsed(endpoint.body, sent, endpoint.body_where)
        return await handler(request, **arguments)

    return parse_then_handle


async def json_object(
    request: web.Request,
    fields: set[str],
    example: str,
    *,
    required: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The body as a JSON object with only known fields and the ``required`` ones (the
    first missing named); 400/413/415 saying what is wrong."""
    # Demanding JSON also makes a browser ask first (CORS preflight) before a cross-site POST.
    if request.content_type != "application/json":
        raise json_error(
            web.HTTPUnsupportedMediaType,
            f"body: send Content-Type: application/json, not {request.content_type[:40]!r}",
        )
    try:
        raw = await request.read()  # the application caps the size (client_max_size)
    except web.HTTPRequestEntityTooLarge:
        raise body_too_large(request.client_max_size) from None
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad_request("body: is not UTF-8 text") from None
    except (ValueError, RecursionError):
        raise bad_request(f"body: is not JSON; send e.g. {example}") from None
    if not isinstance(body, dict):
        raise bad_request(f"body: expected a JSON object like {example}")
    unknown = sorted(set(body) - fields)
    if unknown:
        raise bad_request(
            f"body: unknown field {unknown[0][:40]!r}; use {', '.join(sorted(fields))}"
        )
    for name in required:
        if name not in body:
            raise bad_request(f"{name}: is required")
    return body


def parsed(model: type[M], values: Mapping[str, Any], where: str) -> M:
    """``values`` as a ``model``, or a 400 naming the first field that is wrong."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise bad_request(first_error(exc, where)) from None


def first_error(exc: ValidationError, where: str) -> str:
    """The first error as one sentence. Fields are checked in the order the model declares
    them, so the first error is the one the API always reported first."""
    error = exc.errors(include_url=False)[0]
    context = error.get("ctx") or {}
    if context.get("named"):
        return f"{where}{error['msg']}"
    location = context.get("where") or _location(error["loc"])
    message = error["msg"] if error["type"] == "contract" else _plain(error)
    return f"{where}{location}: {message}" if location else f"{where}{message}"


def _location(loc: tuple[int | str, ...]) -> str:
    text = str(loc[0]) if loc else ""
    for part in loc[1:]:
        if part != "[key]":  # pydantic's mark of a dict key's own error
            text += f"[{part!r}]"
    return text


def _plain(error: Mapping[str, Any]) -> str:
    """pydantic's own checks (ranges, lengths): its message, with what was sent."""
    return f"{error['msg'][:1].lower()}{error['msg'][1:]}, got {shown(error.get('input'))}"
