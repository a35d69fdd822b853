"""GET /api/events over real HTTP: server-sent events from the hub, as a browser gets them."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_runner import AppRunner, BaseRunner

from callcenter.core.clock import VirtualClock
from callcenter.web.app import json_errors
from callcenter.web.events import EventHub, StreamSettings, install_events, stream_events

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z
QUIET = StreamSettings(heartbeat_seconds=3600.0)  # no pings in the way of what is checked
WAIT = 5.0  # a safety net against a hung test, not a delay: every wait ends on an event


def make_hub(**options: object) -> EventHub:
    return EventHub(VirtualClock(T0), epoch="e", **options)  # type: ignore[arg-type]


@asynccontextmanager
async def serving(hub: EventHub, settings: StreamSettings = QUIET) -> AsyncIterator[TestClient]:
    app = web.Application(middlewares=[json_errors])
    install_events(app, hub, settings)
    async with TestClient(TestServer(app)) as client:
        yield client


async def read_frame(response: ClientResponse) -> list[str]:
    """The lines of the next frame (up to the blank line that ends it); [] at the end."""
    lines: list[str] = []
    async with asyncio.timeout(WAIT):
        while True:
            raw = await response.content.readline()
            if raw == b"":
                assert not lines, f"the stream ended inside a frame: {lines}"
                return []
            line = raw.decode("utf-8").removesuffix("\n")
            if line == "":
                return lines
            lines.append(line)


def fields(frame: list[str]) -> dict[str, str]:
    parsed = dict(line.split(": ", 1) for line in frame)
    assert len(parsed) == len(frame), f"a field is repeated in {frame}"
    return parsed


async def next_event(response: ClientResponse) -> dict[str, str]:
    return fields(await read_frame(response))


async def test_a_published_event_arrives_as_one_server_sent_event():
    hub = make_hub()
    async with serving(hub) as client:
        response = await client.get("/api/events")
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-cache"
        assert hub.subscriber_count == 1  # subscribed before the headers went out
        hub.publish("agent", {"agent_id": "alice", "state": "ready"})
        frame = await read_frame(response)
        assert frame == [
            "id: e-1",
            "event: agent",
            'data: {"at":"2026-11-18T11:06:40Z","data":{"agent_id":"alice","state":"ready"}}',
        ]
        response.close()


async def test_line_breaks_in_the_data_never_break_the_data_line():
    hub = make_hub()
    tricky = {"note": "first\nsecond\r\nthird\rfourth\u2028fifth", "nested": {"k\n": ["\n"]}}
    async with serving(hub) as client:
        response = await client.get("/api/events")
        hub.publish("call", tricky)
        hub.publish("call", {"after": True})
        event = await next_event(response)
        assert set(event) == {"id", "event", "data"}  # nothing spilled onto a line of its own
        assert json.loads(event["data"])["data"] == tricky
        assert json.loads((await next_event(response))["data"])["data"] == {"after": True}
        response.close()


async def test_kinds_chooses_which_events_come():
    hub = make_hub()
    async with serving(hub) as client:
        response = await client.get("/api/events", params={"kinds": "agent,queue"})
        for kind in ("call", "agent", "callback", "queue"):
            hub.publish(kind, {"kind": kind})
        first, second = await next_event(response), await next_event(response)
        assert (first["id"], first["event"]) == ("e-2", "agent")
        assert (second["id"], second["event"]) == ("e-4", "queue")
        response.close()


async def test_bad_queries_get_a_400_that_names_the_problem():
    hub = make_hub()
    async with serving(hub) as client:
        for params, says in [
            ({"kinds": "agent,agnets"}, "kinds: 'agnets' is not an event kind; use a "
                                        "comma-separated list of agent, call, callback, "
                                        "campaign, queue"),
            ({"kinds": ""}, "kinds: an empty name is not an event kind"),
            ({"kinds": "agent,,queue"}, "kinds: an empty name is not an event kind"),
            ({"kinds": "resync"}, "kinds: 'resync' is not an event kind"),
            ({"kind": "agent"}, "unknown parameter 'kind'; use kinds"),
        ]:
            response = await client.get("/api/events", params=params)
            assert response.status == 400, params
            assert says in (await response.json())["error"]
        response = await client.get("/api/events?kinds=agent&kinds=queue")
        assert response.status == 400
        assert "'kinds' is given more than once" in (await response.json())["error"]
        assert hub.subscriber_count == 0


async def test_a_reconnecting_browser_gets_what_it_missed_from_last_event_id():
    hub = make_hub()
    for n in range(1, 4):
        hub.publish("queue", {"n": n})
    async with serving(hub) as client:
        response = await client.get("/api/events", headers={"Last-Event-ID": "e-1"})
        assert [(await next_event(response))["id"] for _ in range(2)] == ["e-2", "e-3"]
        hub.publish("queue", {"n": 4})
        assert (await next_event(response))["id"] == "e-4"
        response.close()


async def test_a_browser_that_missed_too_much_is_told_to_resync():
    hub = make_hub(replay=2)
    for n in range(1, 6):
        hub.publish("agent", {"n": n})
    async with serving(hub) as client:
        response = await client.get("/api/events", headers={"Last-Event-ID": "e-1"})
        resync = await next_event(response)
        assert (resync["id"], resync["event"]) == ("e-5", "resync")
        assert "no longer kept" in json.loads(resync["data"])["data"]["reason"]
        response.close()
        response = await client.get("/api/events", headers={"Last-Event-ID": "old-7"})
        assert (await next_event(response))["event"] == "resync"  # from before a restart
        response.close()


async def test_a_client_that_falls_behind_gets_overflow_and_the_stream_ends():
    hub = make_hub()
    async with serving(hub, StreamSettings(heartbeat_seconds=3600.0, max_pending=2)) as client:
        response = await client.get("/api/events")
        for n in range(1, 5):  # all at once: the handler gets no turn to send in between
            hub.publish("call", {"n": n})
        assert [(await next_event(response))["id"] for _ in range(2)] == ["e-1", "e-2"]
        overflow = await next_event(response)
        assert (overflow["id"], overflow["event"]) == ("e-2", "overflow")
        assert await read_frame(response) == []  # the end: the browser reconnects from e-2
        assert hub.subscriber_count == 0


async def test_an_idle_stream_sends_a_comment_as_heartbeat():
    hub = make_hub()
    async with serving(hub, StreamSettings(heartbeat_seconds=0.01)) as client:
        response = await client.get("/api/events")
        assert await read_frame(response) == [": ping"]
        hub.publish("agent", {"n": 1})
        frame = await read_frame(response)
        while frame == [": ping"]:
            frame = await read_frame(response)
        assert fields(frame)["id"] == "e-1"
        response.close()


class ServerLikeRunApp(TestServer):
    """A test server that, like ``web.run_app`` by default, does not cancel a handler whose
    client went away: the handler finds out when it next writes."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return AppRunner(self.app, **{**kwargs, "handler_cancellation": False})


@pytest.mark.parametrize("cancels_handlers", [False, True])
async def test_a_client_that_disconnects_is_let_go(
    cancels_handlers: bool, caplog: pytest.LogCaptureFixture
):
    hub = make_hub()
    finished = asyncio.Event()
    raised: list[BaseException] = []

    async def tracked(request: web.Request) -> web.StreamResponse:
        try:
            return await stream_events(request)
        except BaseException as exc:
            raised.append(exc)
            raise
        finally:
            finished.set()

    app = web.Application(middlewares=[json_errors])
    install_events(app, hub, StreamSettings(heartbeat_seconds=0.01))
    app.router.add_get("/tracked", tracked)
    server = TestServer(app) if cancels_handlers else ServerLikeRunApp(app)
    async with TestClient(server) as client:
        response = await client.get("/tracked")
        hub.publish("agent", {})
        frame = await read_frame(response)
        while frame == [": ping"]:
            frame = await read_frame(response)
        response.close()  # the browser tab is gone
        async with asyncio.timeout(WAIT):
            await finished.wait()  # without cancelling: noticed at the next heartbeat
        assert hub.subscriber_count == 0
        if cancels_handlers:
            assert [type(exc) for exc in raised] == [asyncio.CancelledError]
        else:
            assert raised == []  # the handler ended by returning, not by an error
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_closing_the_hub_ends_every_stream_and_refuses_new_ones():
    hub = make_hub()
    async with serving(hub) as client:
        first = await client.get("/api/events")
        second = await client.get("/api/events", params={"kinds": "queue"})
        assert hub.subscriber_count == 2
        hub.close()
        assert await read_frame(first) == []
        assert await read_frame(second) == []
        response = await client.get("/api/events")
        assert response.status == 503
        assert (await response.json())["error"] == "the server is shutting down"


async def test_shutting_the_application_down_ends_open_streams():
    hub = make_hub()
    app = web.Application()
    install_events(app, hub)
    client = TestClient(TestServer(app))
    await client.start_server()
    response = await client.get("/api/events")
    assert hub.subscriber_count == 1
    async with asyncio.timeout(WAIT):
        await client.close()  # would wait for the open stream if the hub were not closed
    assert hub.closed
    assert hub.subscriber_count == 0
    response.close()
