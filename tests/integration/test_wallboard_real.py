"""The wallboard on a real call: a SIPp caller waiting in a queue shows on the board (live
events and GET /api/wallboard) with the instant their wait began; when they hang up, the
board counts an abandoned call. Real Asterisk 22, the whole service in-process."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from callcenter.core.records import Disposition
from callcenter.features.accounts.store import Role
from tests.support.asterisk import phone_agent
from tests.support.calls import MENU_DIGIT_MS, call_center, caller, finished, the_only_closed_call
from tests.support.sipp import CallerPlan, free_port
from tests.support.web import bearer_headers

pytestmark = pytest.mark.asterisk

WAIT = 30.0  # a safety net, not a delay: each wait ends on an event
WAIT_MS = 8000  # the caller's time in line before hanging up: past short_abandon_seconds


async def snapshot_where(stream: aiohttp.ClientResponse,
                         wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first `wallboard` event whose `sales` queue is as wanted."""
    fields: dict[str, str] = {}
    async with asyncio.timeout(WAIT):
        while True:
            line = (await stream.content.readline()).decode().rstrip("\n")
            if line == "" and fields:
                data = json.loads(fields["data"])["data"]
                fields = {}
                sales = next(q for q in data["queues"] if q["name"] == "sales")
                if wanted(sales):
                    return sales
            elif line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value


def seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def test_a_caller_waiting_in_a_queue_shows_on_the_board_with_their_wait(tmp_path):
    agents = [phone_agent("agent3", free_port(), queues=["sales"], logged_in=False)]
    async with call_center(tmp_path, agents) as center:
        s = center.settings.service
        base = f"http://{s.http_host}:{s.http_port}"
        headers = await bearer_headers(center.accounts, [Role.SUPERVISOR], username="board")
        async with aiohttp.ClientSession(headers=headers) as http:
            stream = await http.get(f"{base}/api/events?kinds=wallboard")
            assert stream.status == 200
            call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "1"),),
                                             hangup_after_ms=MENU_DIGIT_MS + WAIT_MS))
            waiting = await snapshot_where(stream, lambda q: q["waiting"] == 1)
            await asyncio.sleep(2.0)  # let the wait grow: the board must count it up
            answer = await http.get(f"{base}/api/wallboard")
            assert answer.status == 200
            asked_at = time.time()
            now = next(q for q in (await answer.json())["queues"] if q["name"] == "sales")
            result = await finished(call)
            gone = await snapshot_where(stream, lambda q: q["waiting"] == 0
                                        and q["today"]["abandoned"] == 1)
            stream.close()
        record = await the_only_closed_call(center)

    assert record.disposition is Disposition.ABANDONED_IN_QUEUE and record.queue == "sales"
    # The board's wait began when the record's did (one instant for both, waiting.py).
    began = seconds(waiting["longest_waiting_since"])
    assert abs(began - record.queued_at) < 0.01, (waiting, record.queued_at)
    # The same instant from both (the live event and the GET), each rounded on its way out.
    assert now["waiting"] == 1
    assert abs(seconds(now["longest_waiting_since"]) - began) < 0.002
    assert now["longest_wait"] >= 2.0
    assert abs(now["longest_wait"] - (asked_at - record.queued_at)) < 1.0
    # What the caller's phone measured: from the key that queued them to their BYE.
    at = {event.name: event.at_ms for event in result.events}
    real_wait = (at["local-bye"] - at["dtmf 1"]) / 1000
    assert abs(record.wait_seconds - real_wait) < 1.0
    assert gone["today"] == {
        "offered": 1, "answered": 0, "answered_in_time": 0, "abandoned": 1,
        "abandoned_after_t": 0, "short_abandoned": 0, "service_level": None,
        "abandon_rate": 1.0}
