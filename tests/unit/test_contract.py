"""web/contract.py's parsing of a declared body: in what order its problems are found and
reported, and where an endpoint's rule on the body runs. Over real HTTP, without auth."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BeforeValidator

from callcenter.web.app import json_errors
from callcenter.web.auth import PUBLIC
from callcenter.web.contract import Body, Endpoint, checked_by, fail, ok, register
from callcenter.web.params import json_error


def _zebra_rule(value: object) -> None:
    if value != "stripes":
        raise ValueError(f"zebra: {str(value)[:40]!r} has no stripes")


def _whole(value: object) -> object:
    if not isinstance(value, int):
        fail(f"{str(value)[:40]!r} is no whole number")
    return value


class Animals(Body):
    # Declared out of alphabetical order on purpose: the order is the contract's.
    zebra: Annotated[str, checked_by(_zebra_rule)]
    ant: Annotated[int, BeforeValidator(_whole)]
    mole: Annotated[int | None, BeforeValidator(_whole)] = None


def no_moles(request: web.Request, sent: Mapping[str, Any], path: None) -> None:
    if sent.get("mole") == 0:
        raise json_error(web.HTTPForbidden, "mole: none may be zero")


async def echo(request: web.Request, body: Animals) -> web.Response:
    return web.json_response(body.model_dump())


ENDPOINTS = (
    Endpoint("POST", "/animals", echo, PUBLIC, "Echo", "tests", {200: ok({})}, body=Animals,
             body_example='{"zebra": "stripes", "ant": 1}', rule_before_body=no_moles),
    Endpoint("POST", "/animals/bare", echo, PUBLIC, "Echo", "tests", {200: ok({})},
             body=Animals, body_where=""),
)


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = web.Application(middlewares=[json_errors])
    register(app, ENDPOINTS)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def answer(client: TestClient, body: object, path: str = "/animals") -> tuple[int, Any]:
    response = await client.post(path, json=body)
    return response.status, await response.json()


@pytest.mark.parametrize(("body", "error"), [
    # The first missing field as the model declares them (zebra before ant), not sorted.
    ({}, "zebra: is required"),
    ({"zebra": "stripes"}, "ant: is required"),
    # Unknown fields first, the first by name; the list in alphabetical order.
    ({"yak": 1, "bee": 2}, "body: unknown field 'bee'; use ant, mole, zebra"),
    # Values in declaration order: zebra's problem before ant's and mole's.
    ({"zebra": "spots", "ant": "x", "mole": "y"}, "body: zebra: 'spots' has no stripes"),
    ({"zebra": "stripes", "ant": "x", "mole": "y"}, "body: ant: 'x' is no whole number"),
    ({"zebra": "stripes", "ant": 1, "mole": "y"}, "body: mole: 'y' is no whole number"),
    # What was sent is shown as sent, placeholders and all.
    ({"zebra": "{where}", "ant": 1}, "body: zebra: '{where}' has no stripes"),
    ({"zebra": "stripes", "ant": "{where}"}, "body: ant: '{where}' is no whole number"),
    ({"zebra": "stripes", "ant": "{message}"}, "body: ant: '{message}' is no whole number"),
])
async def test_a_body_s_first_problem_in_declaration_order(
    client: TestClient, body: dict[str, Any], error: str
) -> None:
    assert await answer(client, body) == (400, {"error": error, "status": 400})


async def test_a_rule_error_names_the_field_as_the_rule_wrote_it(client: TestClient) -> None:
    # checked_by: the rule's message already names its field; body_where still leads.
    status, sent = await answer(client, {"zebra": "dots", "ant": 1}, "/animals/bare")
    assert (status, sent["error"]) == (400, "zebra: 'dots' has no stripes")


@pytest.mark.parametrize(("body", "status", "error"), [
    # The rule runs once the body is an object of known fields with the required ones...
    ({"mole": 0}, 400, "zebra: is required"),
    ({"mole": 0, "cat": 1, "zebra": "stripes", "ant": 1}, 400,
     "body: unknown field 'cat'; use ant, mole, zebra"),
    # ...and before any value is checked.
    ({"zebra": "spots", "ant": "x", "mole": 0}, 403, "mole: none may be zero"),
    ({"zebra": "spots", "ant": "x", "mole": 1}, 400, "body: zebra: 'spots' has no stripes"),
])
async def test_an_endpoint_s_rule_runs_after_the_body_s_form_and_before_its_values(
    client: TestClient, body: dict[str, Any], status: int, error: str
) -> None:
    assert await answer(client, body) == (status, {"error": error, "status": status})


async def test_a_body_that_passes_reaches_the_handler_as_its_model(client: TestClient) -> None:
    assert await answer(client, {"ant": 3, "zebra": "stripes"}) == (
        200, {"zebra": "stripes", "ant": 3, "mole": None})
