"""The wallboard over real HTTP: its snapshot route, its live events on /api/events (a real
ACD behind it, records stored and read back at start), and /metrics parsed as Prometheus
parses it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.acd import ConnectMode
from callcenter.core.clock import VirtualClock
from callcenter.core.records import CallRecord, Disposition
from callcenter.core.wallboard import Wallboard
from callcenter.features.accounts.store import Role
from callcenter.features.calls.store import CallRepository
from callcenter.features.wallboard.service import WallboardService, queue_targets
from callcenter.features.wallboard.store import queued_since
from callcenter.web.app import WebServices, make_app
from callcenter.web.events import EventHub
from callcenter.web.metrics import LiveReadings
from tests.support.agent_floor import FLOOR_T0, SETTINGS, Floor, build_floor
from tests.support.web import accounts_for, bearer_headers, health_probe
from tests.unit.test_web_acd import documented

WAIT = 5.0  # a safety net against a hung test, not a delay: every wait ends on an event
USERS = {"admin": Role.ADMIN, "supervisor": Role.SUPERVISOR, "agent": Role.AGENT}


def known_state() -> LiveReadings:
    """A state the /metrics test knows by heart."""
    return LiveReadings(
        calls_up=lambda: {"inbound": 3, "outbound": 1},
        queue_waiting=lambda: {"sales": 2, "support": 0},
        agents_by_state=lambda: {"ready": 4, "on_call": 2, "paused": 1},
        ami_connected=lambda: True, ami_logins=lambda: 3, agi_sessions=lambda: 5,
        agi_refused=lambda: 1, record_backlog=lambda: 7, dead_letters=lambda: 2,
        event_subscribers=lambda: 9, wallboard_snapshots=lambda: 11)


@dataclass
class Board:
    client: TestClient
    floor: Floor
    hub: EventHub
    service: WallboardService
    calls: CallRepository
    headers: dict[str, dict[str, str]]


@pytest.fixture
async def board(sqlite_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Board]:
    clock = VirtualClock(FLOOR_T0)
    floor = await build_floor(sqlite_sessions, clock)
    hub = EventHub(clock, epoch="w")
    calls = CallRepository(sqlite_sessions)
    # Calls of today stored by an earlier run: the board starts from them.
    for n, (answer, end) in enumerate([(10.0, Disposition.ANSWERED),
                                       (45.0, Disposition.ANSWERED),
                                       (None, Disposition.ABANDONED_IN_QUEUE)]):
        queued = FLOOR_T0 - 3600 + n * 60
        await calls.save(CallRecord(
            f"old{n}", started_at=queued - 5, queue="sales", queued_at=queued,
            agent_answered_at=None if answer is None else queued + answer,
            ended_at=queued + 100, disposition=end))
    await calls.save(CallRecord("yesterday", started_at=FLOOR_T0 - 86400, queue="sales",
                                queued_at=FLOOR_T0 - 86400, ended_at=FLOOR_T0 - 86000,
                                disposition=Disposition.ABANDONED_IN_QUEUE))
    wallboard = Wallboard(queue_targets(SETTINGS), ZoneInfo("UTC"), clock.now())
    service = WallboardService(wallboard, acd=floor.driver, clock=clock, publish=hub.publish)
    service.rebuild(await queued_since(sqlite_sessions, wallboard.day.start))
    floor.driver.on_agent_change(service.agent_changed)
    accounts = accounts_for(sqlite_sessions, clock)
    services = WebServices(calls, health_probe(), accounts, clock, events=hub,
                           agents=floor.admin, wallboard=service, metrics=known_state())
    headers = {who: await bearer_headers(accounts, [role], username=who,
                                         agent_id="alice" if role is Role.AGENT else None)
               for who, role in USERS.items()}
    async with TestClient(TestServer(make_app(services))) as client:
        yield Board(client, floor, hub, service, calls, headers)


async def read_event(response: ClientResponse) -> tuple[str, dict[str, Any]]:
    """The next server-sent event's kind and data."""
    fields: dict[str, str] = {}
    async with asyncio.timeout(WAIT):
        while True:
            line = (await response.content.readline()).decode().rstrip("\n")
            if line == "" and fields:
                return fields["event"], json.loads(fields["data"])["data"]
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value


async def test_a_board_that_connects_gets_todays_figures_rebuilt_from_stored_calls(board: Board):
    response = await board.client.get("/api/wallboard", headers=board.headers["supervisor"])
    assert response.status == 200
    snapshot = documented("GET", "/api/wallboard", 200, await response.json())
    sales = next(q for q in snapshot["queues"] if q["name"] == "sales")
    # old0 answered in 10 s, old1 in 45 s (late), old2 abandoned after 100 s; not yesterday's.
    assert sales["today"] == {
        "offered": 3, "answered": 2, "answered_in_time": 1, "abandoned": 1,
        "abandoned_after_t": 1, "short_abandoned": 0, "service_level": round(1 / 3, 4),
        "abandon_rate": round(1 / 3, 4)}
    assert sales["targets"]["service_level_below"] == 0.8
    assert snapshot["day"] == "2026-11-18" and snapshot["time_zone"] == "UTC"


@pytest.mark.parametrize("who, status", [("admin", 200), ("supervisor", 200), ("agent", 403),
                                         ("nobody", 401)])
async def test_only_staff_see_the_board(board: Board, who: str, status: int):
    response = await board.client.get("/api/wallboard", headers=board.headers.get(who, {}))
    assert response.status == status


async def test_the_feed_publishes_a_snapshot_when_the_board_changed_and_not_otherwise(
        board: Board):
    response = await board.client.get("/api/events?kinds=wallboard,wallboard_alert",
                                      headers=board.headers["supervisor"])
    assert response.status == 200
    board.service.refresh()  # a new board: its first snapshot
    kind, first = await read_event(response)
    assert kind == "wallboard" and first["agents"] == []
    floor, clock = board.floor, board.floor.clock
    floor.driver.login("bob", phone="bob", mode=ConnectMode.RING)  # serves support only
    clock.advance(3)
    floor.driver.enqueue("c1", "support", waiting_since=clock.now())  # bob is rung
    floor.driver.enqueue("c2", "support", waiting_since=clock.now())  # c2 waits
    clock.advance(7)
    assert board.service.refresh()
    kind, snapshot = await read_event(response)
    support = next(q for q in snapshot["queues"] if q["name"] == "support")
    assert (support["waiting"], support["longest_wait"]) == (2, 7.0)
    assert support["longest_waiting_since"] == "2026-11-18T11:06:43Z"
    assert support["agents"]["ringing"] == 1
    [bob] = snapshot["agents"]
    assert (bob["agent_id"], bob["state"], bob["seconds_in_state"]) == ("bob", "ringing", 7.0)
    # A second later only the waits grew: nothing new to publish.
    published = board.hub.last_id
    clock.advance(1)
    assert not board.service.refresh()
    assert board.hub.last_id == published


async def test_an_alert_is_published_once_when_a_queue_crosses_its_threshold(board: Board):
    response = await board.client.get("/api/events?kinds=wallboard_alert",
                                      headers=board.headers["supervisor"])
    clock = board.floor.clock
    # support: 10 calls needed before an alert; 9 late answers and a 10th.
    for n in range(10):
        board.service.record_changed(CallRecord(
            f"s{n}", started_at=clock.now(), queue="support", queued_at=clock.now(),
            agent_answered_at=clock.now() + 60))
    kind, alert = await read_event(response)
    assert kind == "wallboard_alert"
    assert alert == {"queue": "support", "figure": "service_level", "change": "raised",
                     "value": 0.0, "threshold": 0.8, "at": "2026-11-18T11:06:40Z"}
    board.service.record_changed(CallRecord(  # still below: no second alert
        "s10", started_at=clock.now(), queue="support", queued_at=clock.now(),
        agent_answered_at=clock.now() + 70))
    assert board.hub.last_id == 1


# --------------------------------------------------------------------------- /metrics


async def test_metrics_show_the_live_state_in_the_prometheus_text_format(board: Board):
    await board.client.get("/api/wallboard", headers=board.headers["supervisor"])
    await board.client.get("/api/wallboard/nothing/here", headers=board.headers["supervisor"])
    response = await board.client.get("/metrics", headers=board.headers["supervisor"])
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}

    def value(name: str, **labels: str) -> float:
        samples = [s for s in families[name].samples
                   if s.labels == labels and not s.name.endswith("_created")]
        assert len(samples) == 1, (name, labels, families[name].samples)
        return samples[0].value

    assert value("callcenter_calls_up", direction="inbound") == 3
    assert value("callcenter_calls_up", direction="outbound") == 1
    assert value("callcenter_queue_callers_waiting", queue="sales") == 2
    assert value("callcenter_agents", state="on_call") == 2
    assert value("callcenter_ami_connected") == 1
    assert families["callcenter_ami_reconnects"].type == "counter"
    assert value("callcenter_ami_reconnects") == 2
    assert value("callcenter_agi_sessions_active") == 5
    assert value("callcenter_agi_sessions_refused") == 1
    assert value("callcenter_record_writer_backlog_records") == 7
    assert value("callcenter_record_writer_dead_letters") == 2
    assert value("callcenter_event_stream_subscribers") == 9
    assert value("callcenter_http_requests", method="GET", route="/api/wallboard",
                 status="200") == 1
    # A path no route serves is one series, whatever was asked: no caller data, no blow-up.
    assert value("callcenter_http_requests", method="GET", route="unmatched",
                 status="404") == 1


@pytest.mark.parametrize("who, status", [("nobody", 401), ("agent", 403), ("admin", 200)])
async def test_metrics_are_refused_without_a_staff_token(board: Board, who: str, status: int):
    response = await board.client.get("/metrics", headers=board.headers.get(who, {}))
    assert response.status == status
    if status != 200:
        assert "callcenter_" not in await response.text()


async def test_a_refused_scrape_is_counted_too(board: Board):
    await board.client.get("/metrics", headers={"Authorization": "Bearer wrong"})
    response = await board.client.get("/metrics", headers=board.headers["admin"])
    text = await response.text()
    assert ('callcenter_http_requests_total{method="GET",route="/metrics",status="401"} 1.0'
            in text)


async def test_agents_show_with_their_pause_reason_and_leave_the_board_when_logged_out(
        board: Board):
    driver, clock = board.floor.driver, board.floor.clock
    driver.login("alice", phone="alice")
    clock.advance(5)
    driver.pause("alice", "lunch")
    clock.advance(60)
    [alice] = board.service.snapshot().agents
    assert (alice.state, alice.reason, alice.seconds_in_state) == ("paused", "lunch", 60.0)
    sales = next(q for q in board.service.snapshot().queues if q.name == "sales")
    assert sales.agents["paused"] == 1
    driver.logout("alice")
    assert board.service.snapshot().agents == []
