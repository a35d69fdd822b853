"""GET /api/calls shows how a callback and the call that asked for it are linked, as the
OpenAPI document says, and finds every call of one callback request."""

from __future__ import annotations

import dataclasses

import pytest

from callcenter.core.records import Disposition
from tests.unit.test_web_acd import answer_schema, check_against
from tests.unit.test_web_api import T0, Repos, answered, client_for, repo  # noqa: F401 - fixture


async def test_both_records_name_the_request_and_the_callback_names_the_call_that_asked(
        repo: Repos):  # noqa: F811 - the fixture
    asked = dataclasses.replace(
        answered("d.1", T0, "support"), agent_id=None, agent_answered_at=None,
        talk_seconds=None, wait_seconds=30.0, disposition=Disposition.CALLBACK_REQUESTED,
        attempts=[], callback_request_id=7)
    callback = dataclasses.replace(
        answered("d.2", T0 + 300, "support"), queued_at=T0 + 5, wait_seconds=303.25,
        callback_request_id=7, callback_of="d.1")
    for record in (asked, callback, answered("d.3", T0 + 600, "support")):
        await repo.calls.save(record)
    client = await client_for(repo)
    try:
        response = await client.get("/api/calls", params={"callback_request": "7"})
        body = await response.json()
    finally:
        await client.close()
    assert response.status == 200, body
    check_against(answer_schema("GET", "/api/calls", 200), body)
    assert [(c["call_id"], c["callback_request_id"], c["callback_of"]) for c in body["calls"]] == [
        ("d.2", 7, "d.1"), ("d.1", 7, None)]
    assert body["calls"][0]["queued_at"] == "2026-11-18T11:06:45Z"  # when the customer queued
    assert body["calls"][0]["wait_seconds"] == 303.25


@pytest.mark.parametrize("value", ["0", "x", "-1", "7\n", "1" * 19])
async def test_a_callback_request_filter_that_is_no_id_is_refused(
        repo: Repos, value: str):  # noqa: F811 - the fixture
    client = await client_for(repo)
    try:
        response = await client.get("/api/calls", params={"callback_request": value})
        body = await response.json()
    finally:
        await client.close()
    assert response.status == 400
    assert "callback_request:" in body["error"] and "is not a callback request id" in body["error"]
