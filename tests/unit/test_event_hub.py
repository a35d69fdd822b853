"""The live-event hub: fan-out, filters, slow subscribers, replay after a reconnect, shutdown."""

from __future__ import annotations

import asyncio
import math

import pytest

from callcenter.core.clock import VirtualClock
from callcenter.web.events import EventHub, LiveEvent, Subscription


def make_hub(**options: object) -> tuple[EventHub, VirtualClock]:
    clock = VirtualClock(1_800_000_000.0)
    return EventHub(clock, epoch="run1", **options), clock  # type: ignore[arg-type]


async def drain(subscription: Subscription) -> list[LiveEvent]:
    """What is already pending, without waiting (the hub queues synchronously)."""
    events: list[LiveEvent] = []
    while subscription.pending:
        event = await subscription.get(timeout=0)
        assert event is not None
        events.append(event)
    return events


async def collect(subscription: Subscription) -> list[LiveEvent]:
    """Every event up to the end of a subscription that has already ended."""
    assert subscription.ended
    return [event async for event in subscription]


async def test_a_subscriber_gets_each_event_in_order_with_rising_ids_and_the_clock_time():
    hub, clock = make_hub()
    with hub.subscribe() as events:
        hub.publish("agent", {"agent_id": "alice", "state": "ready"})
        clock.advance(2.5)
        hub.publish("queue", {"queue": "sales", "waiting": 3})
        first, second = await anext(events), await anext(events)
    assert first == LiveEvent(1, "agent", {"agent_id": "alice", "state": "ready"},
                              1_800_000_000.0)
    assert second == LiveEvent(2, "queue", {"queue": "sales", "waiting": 3}, 1_800_000_002.5)
    assert hub.last_id == 2
    assert hub.cursor(second) == "run1-2"


async def test_a_waiting_subscriber_wakes_up_when_an_event_is_published():
    hub, _ = make_hub()
    with hub.subscribe() as events:
        waiting = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)  # let it start waiting (a scheduling step, not a delay)
        assert not waiting.done()
        hub.publish("call", {"call_id": "c.1"})
        assert (await waiting).data == {"call_id": "c.1"}


async def test_the_event_keeps_its_own_copy_of_the_data():
    hub, _ = make_hub()
    with hub.subscribe() as events:
        state = {"agent_id": "alice", "queues": ["sales"]}
        hub.publish("agent", state)
        state["queues"].append("support")
        state["agent_id"] = "bob"
        assert (await anext(events)).data == {"agent_id": "alice", "queues": ["sales"]}


async def test_a_filtered_subscriber_gets_only_the_kinds_it_asked_for():
    hub, _ = make_hub()
    with hub.subscribe(frozenset({"agent", "callback"})) as events:
        hub.publish("queue", {"queue": "sales"})
        hub.publish("agent", {"agent_id": "alice"})
        hub.publish("call", {"call_id": "c.1"})
        hub.publish("callback", {"id": 7})
        assert [(e.id, e.kind) for e in await drain(events)] == [(2, "agent"), (4, "callback")]


def test_bad_kinds_and_bad_data_are_refused_naming_what_is_wrong():
    hub, _ = make_hub()
    with pytest.raises(ValueError, match="kinds: 'agnet' is not an event kind"):
        hub.subscribe(frozenset({"agent", "agnet"}))
    with pytest.raises(ValueError, match="give at least one kind"):
        hub.subscribe(frozenset())
    with pytest.raises(ValueError, match="max_pending: 0"):
        hub.subscribe(max_pending=0)
    with pytest.raises(ValueError, match="kind: 'overflow' is not one of"):
        hub.publish("overflow", {})
    with pytest.raises(ValueError, match="'agent' event is not JSON"):
        hub.publish("agent", {"since": object()})
    with pytest.raises(ValueError, match="'agent' event is not JSON"):
        hub.publish("agent", {"occupancy": math.nan})
    with pytest.raises(ValueError, match="expected a mapping, got list"):
        hub.publish("agent", ["alice"])  # type: ignore[arg-type]
    assert hub.last_id == 0  # nothing bad was numbered or kept
    with pytest.raises(ValueError, match="'resync' is not a usable event kind"):
        EventHub(VirtualClock(), kinds={"agent", "resync"})
    with pytest.raises(ValueError, match="'Agent' is not a usable event kind"):
        EventHub(VirtualClock(), kinds={"Agent"})
    with pytest.raises(ValueError, match="epoch"):
        EventHub(VirtualClock(), epoch="run-1")


async def test_a_slow_subscriber_is_dropped_with_overflow_and_the_others_carry_on():
    hub, _ = make_hub()
    slow = hub.subscribe(max_pending=3)
    fast = hub.subscribe()
    for n in range(1, 6):
        hub.publish("queue", {"waiting": n})  # never blocks, never raises
    assert hub.subscriber_count == 1
    got = await collect(slow)
    assert [(e.id, e.kind) for e in got] == [(1, "queue"), (2, "queue"), (3, "queue"),
                                             (3, "overflow")]
    assert "more than 3 events" in got[-1].data["reason"]
    assert [e.id for e in await drain(fast)] == [1, 2, 3, 4, 5]
    hub.publish("queue", {"waiting": 6})
    assert slow.pending == 0


async def test_after_an_overflow_reconnecting_from_its_id_resumes_without_a_gap():
    hub, _ = make_hub()
    slow = hub.subscribe(frozenset({"agent"}), max_pending=2)
    for n in range(1, 7):
        hub.publish("agent" if n % 2 else "queue", {"n": n})
    overflow = (await collect(slow))[-1]
    assert overflow.kind == "overflow"
    with hub.subscribe(frozenset({"agent"}), last_event_id=hub.cursor(overflow)) as again:
        assert [e.data["n"] for e in await drain(again)] == [5]


async def test_a_reconnecting_subscriber_gets_what_it_missed_then_live_events():
    hub, _ = make_hub()
    for n in range(1, 4):
        hub.publish("agent", {"n": n})
    with hub.subscribe(last_event_id="run1-1") as events:
        hub.publish("agent", {"n": 4})
        assert [e.id for e in await drain(events)] == [2, 3, 4]


async def test_replay_keeps_to_the_kinds_asked_for():
    hub, _ = make_hub()
    for kind in ("agent", "queue", "agent", "call"):
        hub.publish(kind, {})
    with hub.subscribe(frozenset({"agent", "call"}), last_event_id="run1-1") as events:
        assert [(e.id, e.kind) for e in await drain(events)] == [(3, "agent"), (4, "call")]


async def test_a_subscriber_that_missed_nothing_gets_only_live_events():
    hub, _ = make_hub()
    hub.publish("agent", {})
    hub.publish("agent", {})
    with hub.subscribe(last_event_id="run1-2") as events:
        assert events.pending == 0
        hub.publish("queue", {})
        assert [e.id for e in await drain(events)] == [3]


async def test_the_replay_buffer_keeps_the_last_500_events():
    hub, _ = make_hub()
    for n in range(1, 601):
        hub.publish("queue", {"n": n})
    with hub.subscribe(last_event_id="run1-100") as events:
        replayed = await drain(events)
        assert [e.id for e in replayed] == list(range(101, 601))
    with hub.subscribe(last_event_id="run1-99") as events:
        (resync,) = await drain(events)
        assert resync.kind == "resync"
        assert "events after run1-99 are no longer kept" in resync.data["reason"]


async def test_snapshots_keep_only_their_newest_in_the_buffer_and_push_nothing_out():
    hub, _ = make_hub(replay=5)
    hub.publish("agent", {"n": 1})
    hub.publish("wallboard", {"board": 1})
    for board in range(2, 100):  # an hour of boards would otherwise fill any buffer
        hub.publish("wallboard", {"board": board})
    hub.publish("agent", {"n": 2})
    with hub.subscribe(last_event_id="run1-1") as events:  # missed a board and an agent
        replayed = await drain(events)
    assert [(e.kind, e.data) for e in replayed] == [
        ("wallboard", {"board": 99}), ("agent", {"n": 2})]
    with hub.subscribe(last_event_id="run1-0", kinds=frozenset({"agent"})) as events:
        assert [e.data for e in await drain(events)] == [{"n": 1}, {"n": 2}]
    # Events that are not snapshots still go when the buffer is full, and say so.
    for n in range(3, 9):
        hub.publish("agent", {"n": n})
    with hub.subscribe(last_event_id="run1-1") as events:
        (resync,) = await drain(events)
    assert resync.kind == "resync"


@pytest.mark.parametrize(("last_event_id", "says"), [
    ("run0-2", "is not from this run of the server"),  # an id from before a restart
    ("run1-9", "is not from this run of the server"),  # ahead of anything published
    ("garbage", "'garbage' is not from this run"),
    ("run1-1\nevent: fake", "is not from this run"),
    ("x" * 5000, "is not from this run"),
])
async def test_an_id_not_from_this_run_gets_a_resync(last_event_id: str, says: str):
    hub, clock = make_hub()
    hub.publish("agent", {})
    hub.publish("agent", {})
    clock.advance(10)
    with hub.subscribe(last_event_id=last_event_id) as events:
        hub.publish("agent", {"after": "resync"})
        resync, live = await drain(events)
    assert (resync.id, resync.kind, resync.at) == (2, "resync", 1_800_000_010.0)
    assert says in resync.data["reason"]
    assert len(resync.data["reason"]) < 200  # the id is not echoed at any length
    assert live.data == {"after": "resync"}


async def test_too_many_missed_events_for_one_stream_get_a_resync():
    hub, _ = make_hub()
    for _ in range(5):
        hub.publish("call", {})
    with hub.subscribe(last_event_id="run1-1", max_pending=3) as events:
        (resync,) = await drain(events)
    assert resync.kind == "resync"
    assert "4 events were missed, more than the 3" in resync.data["reason"]


async def test_a_hub_without_replay_answers_every_gap_with_resync():
    hub, _ = make_hub(replay=0)
    hub.publish("agent", {})
    hub.publish("agent", {})
    with hub.subscribe(last_event_id="run1-1") as events:
        assert [e.kind for e in await drain(events)] == ["resync"]
    with hub.subscribe(last_event_id="run1-2") as events:
        assert events.pending == 0


async def test_close_ends_every_subscription_even_one_that_is_waiting():
    hub, _ = make_hub()
    waiting = hub.subscribe()
    behind = hub.subscribe()
    hub.publish("agent", {})
    await drain(waiting)
    next_event = asyncio.ensure_future(anext(waiting))
    await asyncio.sleep(0)
    hub.close()
    with pytest.raises(StopAsyncIteration):
        await next_event
    assert await collect(behind) == []  # what was pending is dropped: the server is stopping
    assert hub.subscriber_count == 0
    hub.publish("agent", {})  # after close: nothing, and no error
    assert hub.last_id == 1
    late = hub.subscribe()
    assert late.ended
    assert await collect(late) == []


async def test_closing_a_subscription_leaves_the_hub():
    hub, _ = make_hub()
    with hub.subscribe() as events:
        assert hub.subscriber_count == 1
    assert events.ended
    assert hub.subscriber_count == 0
    hub.publish("agent", {})
    assert events.pending == 0


async def test_a_timeout_while_waiting_loses_no_event():
    hub, _ = make_hub()
    with hub.subscribe() as events:
        with pytest.raises(TimeoutError):
            await events.get(timeout=0)
        hub.publish("agent", {"n": 1})
        event = await events.get(timeout=0)
        assert event is not None
        assert event.data == {"n": 1}
