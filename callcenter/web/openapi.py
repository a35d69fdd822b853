"""The OpenAPI 3.1 description of the HTTP API, served at ``GET /api/openapi.json``.

Generated: each route declared as an ``Endpoint`` (web/contract.py, ``all_endpoints``)
becomes an operation, with the roles the application enforces (``x-roles``; empty for
public routes) and its models' JSON Schema as components. ``undocumented_routes`` and
``documented_but_missing`` compare the document with an application's real routes, so a
test keeps the two in step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from callcenter import __version__
from callcenter.features.accounts import http as accounts
from callcenter.features.accounts.store import Role
from callcenter.features.agent_transfers import http as transfers_http
from callcenter.features.agents import http as agents_http
from callcenter.features.agents.store import AGENT_ID_RE as STORED_AGENT_ID_RE
from callcenter.features.agents.store import MAX_NAME_CHARS
from callcenter.features.callbacks import http as callbacks
from callcenter.features.calls import http as calls
from callcenter.features.campaigns import dialing_http
from callcenter.features.campaigns import http as campaigns_http
from callcenter.features.compliance import http as compliance_http
from callcenter.features.evaluations import http as evaluations_http
from callcenter.features.queues import http as queues_http
from callcenter.features.rating import http as rating_http
from callcenter.features.recordings import http as recordings_http
from callcenter.features.reports import agents as agent_reports
from callcenter.features.reports import campaigns as campaign_reports
from callcenter.features.reports import http as reports
from callcenter.features.supervision import http as supervision
from callcenter.features.wallboard import http as wallboard_http
from callcenter.store.values import MAX_ROW_ID
from callcenter.web.auth import (
    CSRF_HEADER,
    CSRF_VALUE,
    SESSION_COOKIE,
)
from callcenter.web.contract import PUBLIC_ROLES, Endpoint, Reply
from callcenter.web.demo import DEMO_ENDPOINT
from callcenter.web.events import EVENTS_ENDPOINT
from callcenter.web.health import HEALTH_ENDPOINT
from callcenter.web.metrics import METRICS_ENDPOINT
from callcenter.web.params import QUEUE_NAME

Schema = dict[str, Any]
REF_TEMPLATE = "#/components/schemas/{model}"


class _NoFieldTitles(GenerateJsonSchema):
    """Components without pydantic's per-field titles (the field's name says it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: Any) -> Schema:
        """An optional field's ``None`` default means "not given", not a value to send."""
        json_schema = super().default_schema(schema)
        if "default" in json_schema and json_schema["default"] is None:
            del json_schema["default"]
        return json_schema


def all_endpoints() -> tuple[Endpoint, ...]:
    """Every route declared with web/contract.py's ``Endpoint``, whichever services run."""
    return (*accounts.ENDPOINTS, HEALTH_ENDPOINT, OPENAPI_ENDPOINT, DEMO_ENDPOINT,
            *queues_http.ENDPOINTS, *agents_http.ENDPOINTS, calls.CALLS_ENDPOINT,
            calls.DEAD_LETTERS_ENDPOINT, reports.FAQ_ENDPOINT, *reports.AGGREGATE_ENDPOINTS,
            *callbacks.ENDPOINTS, *supervision.ENDPOINTS, *transfers_http.ENDPOINTS,
            *campaigns_http.ENDPOINTS, *campaigns_http.LIST_ENDPOINTS, *dialing_http.ENDPOINTS,
            *compliance_http.ENDPOINTS, *compliance_http.UPLOAD_ENDPOINTS, EVENTS_ENDPOINT,
            *wallboard_http.ENDPOINTS, METRICS_ENDPOINT, calls.TIMELINE_ENDPOINT,
            *recordings_http.ENDPOINTS, *evaluations_http.ENDPOINTS,
            *agent_reports.ENDPOINTS, *campaign_reports.ENDPOINTS,
            *rating_http.ENDPOINTS)

# ----------------------------------------------------------------------- JSON Schema helpers


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def text(description: str = "", **rules: Any) -> Schema:
    return {"type": "string", **rules, **({"description": description} if description else {})}


def matching(regex: re.Pattern[str], description: str = "") -> Schema:
    """A string the whole of which matches ``regex`` (JSON Schema patterns search anywhere)."""
    core = regex.pattern.removeprefix("^").removesuffix("$")
    return text(description, pattern=f"^(?:{core})$")


def whole(low: int | None = None, high: int | None = None, description: str = "") -> Schema:
    schema: Schema = {"type": "integer"}
    if low is not None:
        schema["minimum"] = low
    if high is not None:
        schema["maximum"] = high
    return {**schema, **({"description": description} if description else {})}


def one_of_names(values: Iterable[str]) -> Schema:
    return {"type": "string", "enum": [str(value) for value in values]}  # StrEnum: its value


def or_null(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def list_of(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def record(required: Mapping[str, Schema], optional: Mapping[str, Schema] | None = None,
           *, closed: bool = True, description: str = "") -> Schema:
    """An object with these fields; ``closed``: no others (our answers list every field)."""
    schema: Schema = {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
    }
    if closed:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


TIME = text("ISO 8601, UTC (e.g. 2026-11-18T11:06:40Z)", format="date-time")
SECONDS = {"type": "number", "minimum": 0}
ROW_ID = whole(1, MAX_ROW_ID)
NAME = matching(QUEUE_NAME)  # queue names; pause reasons have the same shape
# Agents as stored: the directory accepts a little more than the API's new agents use.
AGENT_REF = matching(STORED_AGENT_ID_RE, "an agent's id, also their SIP user name")
AGENT_NAME = text(minLength=1, maxLength=MAX_NAME_CHARS)
LEVELS = {"type": "object", "additionalProperties": whole(1, 10),
          "description": "skill -> level"}

# ----------------------------------------------------------------------- schemas

SCHEMAS: dict[str, Schema] = {
    "Error": record(
        {"error": text("what is wrong, and where")},
        {"status": whole(400, 599),
         "allowed_roles": {**list_of(one_of_names(Role)), "description": "with a 403"},
         "limit_bytes": whole(1, description="with a 413: the largest body accepted")},
        description="Every error answer.",
    ),
    "Health": record({
        "status": one_of_names(("ok", "degraded")),
        "ami": one_of_names(("up", "down")),
        "fastagi": one_of_names(("up", "down")),
        "database": one_of_names(("up", "down")),
    }),
    "DemoOrder": record({
        "order": text(), "status": text(),
        "delivery": record({"days": whole(0)}),
    }),
    "LiveEventData": record({
        "at": TIME,
        "data": {"type": "object", "description": "what changed; its shape depends on the kind"},
    }, description="The JSON of one server-sent event's `data:` line."),
}

# ----------------------------------------------------------------------- routes


@dataclass(frozen=True)
class Answer:
    description: str
    schema: Schema | None = None  # None: no body
    media_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)  # name -> description


ERROR = ref("Error")


def failed(description: str) -> Answer:
    return Answer(description, ERROR)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    tag: str
    roles: tuple[Role, ...]
    answers: Mapping[int, Answer]
    body: Schema | None = None  # an application/json request body
    description: str = ""
    own_only: tuple[Role, ...] = ()  # these roles may act only on what is their own


# ----------------------------------------------------------------------- the document

COMMON_ANSWERS: dict[str, Schema] = {
    "BadRequest": {"description": "The request is wrong; the error says what and where.",
                   "content": {"application/json": {"schema": ERROR}}},
    "Unauthorized": {"description": "Not signed in (no valid session cookie or token).",
                     "content": {"application/json": {"schema": ERROR}}},
    "Forbidden": {"description": "Signed in, without a role that may do this; or a change "
                               f"sent with the cookie but without {CSRF_HEADER}.",
                  "content": {"application/json": {"schema": ERROR}}},
    "TooLarge": {"description": "The body is larger than the server accepts; the answer "
                             "states the limit in bytes (limit_bytes).",
                 "content": {"application/json": {"schema": ERROR}}},
    "NotJson": {"description": "The body is not sent as application/json.",
                "content": {"application/json": {"schema": ERROR}}},
}


def operation_id(route: Route) -> str:
    words = re.findall(r"[a-z0-9]+", route.path.removeprefix("/api/").lower())
    return "_".join([route.method.lower(), *words])


def _answer(answer: Answer) -> Schema:
    result: Schema = {"description": answer.description}
    if answer.schema is not None:
        result["content"] = {answer.media_type: {"schema": answer.schema}}
    if answer.headers:
        result["headers"] = {name: {"description": about, "schema": {"type": "string"}}
                             for name, about in answer.headers.items()}
    return result


def _answers(route: Route, *, has_parameters: bool = False) -> Schema:
    answers = {str(status): _answer(answer) for status, answer in route.answers.items()}

    def add(status: int, name: str) -> None:
        answers.setdefault(str(status), {"$ref": f"#/components/responses/{name}"})

    if has_parameters or route.body is not None:
        add(400, "BadRequest")
    if route.roles:
        add(401, "Unauthorized")
        add(403, "Forbidden")
    if route.body is not None:
        add(413, "TooLarge")
        add(415, "NotJson")
    return dict(sorted(answers.items()))


def _operation(route: Route) -> Schema:
    operation: Schema = {
        "operationId": operation_id(route),
        "summary": route.summary,
        "tags": [route.tag],
        "x-roles": [role.value for role in route.roles],
        "security": [{"session": []}, {"bearer": []}] if route.roles else [],
    }
    if route.own_only:
        operation["x-own-only"] = [role.value for role in route.own_only]
    if route.description:
        operation["description"] = route.description
    if route.body is not None:
        operation["requestBody"] = {
            "required": True, "content": {"application/json": {"schema": route.body}},
        }
    operation["responses"] = _answers(route)
    return operation


def endpoint_operation(endpoint: Endpoint, schemas: Mapping[type[BaseModel], Schema]) -> Schema:
    """The OpenAPI operation of a declared endpoint; ``schemas``: each model's schema."""
    parameters = [*_parameters(endpoint.path_args, "path"), *_parameters(endpoint.query, "query"),
                  *endpoint.parameters]
    body = None if endpoint.body is None else schemas[endpoint.body]
    answers: dict[int, Answer] = {
        status: Answer(reply.description, _reply_schema(reply.body, schemas),
                       reply.media_type, reply.headers)
        for status, reply in endpoint.answers.items()}
    if endpoint.takes_no_query:
        answers.setdefault(400, failed("A query parameter was sent: this route takes none."))
    roles = () if endpoint.roles is PUBLIC_ROLES else tuple(endpoint.roles)  # type: ignore[arg-type]
    route = Route(endpoint.method, endpoint.path, endpoint.summary, endpoint.tag,
                  tuple(sorted(roles, key=list(Role).index)), answers, body=body,
                  description=endpoint.description, own_only=endpoint.own_roles)
    operation = _operation(route)
    if endpoint.file_body:  # an upload: the file itself is the body
        operation["requestBody"] = {"required": True, "content": {
            media: {"schema": {"type": "string", "format": "binary"}}
            for media in endpoint.file_body}}
    if parameters:
        operation = {**operation, "parameters": parameters}
        operation["responses"] = _answers(route, has_parameters=True)
    return operation


def _reply_schema(body: type[BaseModel] | str | Schema | None,
                  schemas: Mapping[type[BaseModel], Schema]) -> Schema | None:
    if body is None or isinstance(body, dict):
        return body
    if isinstance(body, str):
        return ref(body)
    return schemas[body]


def _parameters(model: type[BaseModel] | None, where: str) -> list[Schema]:
    if model is None:
        return []
    properties = model.model_json_schema(ref_template=REF_TEMPLATE)["properties"]
    found = []
    for name, field_info in model.model_fields.items():
        schema = {key: value for key, value in properties[name].items() if key != "title"}
        description = schema.pop("description", "")
        if schema.get("default", ...) is None:
            del schema["default"]
        found.append({"name": name, "in": where,
                      "required": where == "path" or field_info.is_required(),
                      "description": description, "schema": schema})
    return found


def _models(endpoints: Iterable[Endpoint]) -> list[type[BaseModel]]:
    """Every model a body or an answer is (path and query models become parameters)."""
    found: dict[type[BaseModel], None] = {}
    for endpoint in endpoints:
        if endpoint.body is not None:
            found[endpoint.body] = None
        for reply in endpoint.answers.values():
            if isinstance(reply.body, type):
                found[reply.body] = None
    return list(found)


def build_document(endpoints: tuple[Endpoint, ...] | None = None) -> Schema:
    """The document: the declared endpoints, their models' JSON Schema as components
    beside the hand-written ``SCHEMAS``."""
    endpoints = all_endpoints() if endpoints is None else endpoints
    models = _models(endpoints)
    keyed, generated = models_json_schema([(model, "validation") for model in models],
                                          ref_template=REF_TEMPLATE,
                                          schema_generator=_NoFieldTitles)
    schemas = {model: keyed[(model, "validation")] for model in models}
    components = dict(SCHEMAS)
    for name, schema in generated.get("$defs", {}).items():
        if name in components:
            raise ValueError(f"component {name!r} is both a model and written by hand")
        components[name] = schema
    paths: dict[str, Schema] = {}
    operations = [(e.method, e.path, e.tag, lambda e=e: endpoint_operation(e, schemas))
                   for e in endpoints]
    for method, path, _tag, operation in operations:
        item = paths.setdefault(path, {})
        if method.lower() in item:
            raise ValueError(f"{method} {path} is in the table twice")
        item[method.lower()] = operation()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "callcenter",
            "version": __version__,
            "description": "The HTTP API of the call-center server. Sign in with "
                           "POST /api/login (a session cookie) or send an API token as "
                           "'Authorization: Bearer ...'. With the cookie, POST, PUT, PATCH and "
                           f"DELETE also need the header '{CSRF_HEADER}: {CSRF_VALUE}'. "
                           "`x-roles` lists who may call an operation (empty: anyone); "
                           "`x-own-only` roles may do it only for themselves.",
        },
        "tags": [{"name": tag} for tag in dict.fromkeys(tag for _, _, tag, _ in operations)],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "responses": COMMON_ANSWERS,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                            "description": "Set by POST /api/login."},
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "An API token from POST /api/tokens (cc_...)."},
            },
        },
    }


@cache
def _document_json() -> str:
    return json.dumps(build_document(), indent=1)


async def serve_openapi(request: web.Request) -> web.Response:
    """``GET /api/openapi.json``."""
    return web.Response(text=_document_json(), content_type="application/json")


OPENAPI_ENDPOINT = Endpoint(
    "GET", "/api/openapi.json", serve_openapi, PUBLIC_ROLES, "This document", "service",
    {200: Reply("The OpenAPI 3.1 document.", {"type": "object"})})


# ----------------------------------------------------------------------- compared with the app

_PLACEHOLDER = re.compile(r"\{[^}]*\}")


def _shape(method: str, path: str) -> tuple[str, str]:
    """``{id}``, ``{agent_id}`` and ``{id:\\d+}`` all stand for one path segment."""
    return method.upper(), _PLACEHOLDER.sub("{}", path)


def app_routes(app: web.Application) -> dict[tuple[str, str], str]:
    """The application's routes as ``"GET /api/x/{id}"``, keyed by their shape.

    Left out: the HEAD aiohttp adds beside each GET, and static files (not API operations).
    """
    found: dict[tuple[str, str], str] = {}
    for route in app.router.routes():
        resource = route.resource
        if resource is None or isinstance(resource, web.StaticResource):
            continue
        found[_shape(route.method, resource.canonical)] = f"{route.method} {resource.canonical}"
    gets = {path for method, path in found if method == "GET"}
    return {key: name for key, name in found.items() if not (key[0] == "HEAD" and key[1] in gets)}


def documented_routes(endpoints: tuple[Endpoint, ...] | None = None
                      ) -> dict[tuple[str, str], str]:
    endpoints = all_endpoints() if endpoints is None else endpoints
    return {_shape(r.method, r.path): f"{r.method} {r.path}" for r in endpoints}


def undocumented_routes(app: web.Application,
                        endpoints: tuple[Endpoint, ...] | None = None) -> list[str]:
    """Routes ``app`` serves that the document does not describe, e.g. ``["GET /api/x"]``."""
    documented = documented_routes(endpoints)
    return sorted(name for key, name in app_routes(app).items() if key not in documented)


def documented_but_missing(app: web.Application,
                           endpoints: tuple[Endpoint, ...] | None = None) -> list[str]:
    """Routes the document describes that ``app`` does not serve."""
    served = app_routes(app)
    documented = documented_routes(endpoints)
    return sorted(name for key, name in documented.items() if key not in served)
