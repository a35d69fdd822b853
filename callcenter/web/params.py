"""What every API handler shares: JSON errors, unknown query parameters, times. Bodies are
read, and the values of declared routes checked, by their models (web/contract.py).

Everything a client sends is checked at the boundary; an error says what is wrong and
where, and never echoes more than 40 characters of what was sent.
"""

from __future__ import annotations

import json
import re

from aiohttp import web

from callcenter.core.clock import to_datetime
from callcenter.core.identifiers import QUEUE_NAME_RE

MAX_LIMIT = 500  # the most rows one page may hold
QUEUE_NAME = QUEUE_NAME_RE  # core/identifiers.py, the one home of the rule
PROTOCOL = re.compile(r"^[0-9]{1,32}$")

def json_error(error: type[web.HTTPError], message: str) -> web.HTTPError:
    """An HTTP error whose JSON body says what is wrong."""
    return error(text=json.dumps({"error": message, "status": error.status_code}),
                 content_type="application/json")


def body_too_large(limit_bytes: int) -> web.HTTPError:
    """413 stating the limit, so a client knows by how much to shrink what it sends."""
    message = f"body: larger than the {limit_bytes} bytes this server accepts"
    return web.HTTPRequestEntityTooLarge(
        limit_bytes, text=json.dumps({"error": message, "status": 413,
                                      "limit_bytes": limit_bytes}),
        content_type="application/json")


def bad_request(message: str) -> web.HTTPError:
    return json_error(web.HTTPBadRequest, message)


def check_params(request: web.Request, allowed: set[str]) -> None:
    """Refuse unknown query parameters and parameters given twice (which one would count?)."""
    unknown = set(request.query) - allowed
    if unknown:
        name = sorted(unknown)[0][:40]
        raise bad_request(f"unknown parameter {name!r}; use {', '.join(sorted(allowed))}")
    for name in request.query:
        if len(request.query.getall(name)) > 1:
            raise bad_request(f"parameter {name!r} is given more than once")


def iso(ts: float | None) -> str | None:
    when = to_datetime(ts)
    return when.isoformat().replace("+00:00", "Z") if when else None


def json_kind(value: object, *, none: str = "null") -> str:
    """What a JSON value is, for an error message, without echoing it (it may be huge or
    deeply nested); ``none`` names JSON null."""
    if value is None:
        return none
    names = {bool: "true/false", int: "a number", float: "a number", list: "a list",
             dict: "an object", str: "text"}
    return names.get(type(value), type(value).__name__)
