"""The callback dialer carrying out its machine's decisions, with a fake AMI, fake FastAGI
sessions, an in-memory request store, the real ACD and ledger, and virtual time (nothing
sleeps): what goes to Asterisk (Originates, AGI commands), the call records, the store, the
ACD, and the timers. The decisions themselves, path by path, are tested on the pure machine
(test_callback_machine.py); test_originate_fate.py uses these fakes too."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from callcenter.asterisk import confgen
from callcenter.asterisk.agi import AgiEnvironment, AgiHangup
from callcenter.asterisk.ami import AmiNotConnected
from callcenter.asterisk.events import Hangup
from callcenter.config import OutboundSettings, QueueSettings, Settings
from callcenter.core.acd import (
    Acd,
    AgentSpec,
    AgentState,
    AgentStateChanged,
    ConnectMode,
    QueueRules,
)
from callcenter.core.calls import CallLedger, LedgerResult
from callcenter.core.clock import VirtualClock
from callcenter.core.records import (
    CallbackRequest,
    CallbackStatus,
    CallRecord,
    Disposition,
    HangupBy,
)
from callcenter.features.agents.dialplan import caller_join_arguments
from callcenter.features.callbacks.dialer import CallbackDialer
from callcenter.features.queues.driver import AcdDriver
from callcenter.features.queues.waiting import QueueCalls, QueuePlace, QueueRequest, WaitOutcome

GUARD = 2.0  # seconds a test waits for something that must happen at once: never a pause
CUSTOMER = "+5511999990000"
RULES = {"support": QueueRules("support", ring_timeout=15.0, wrap_up=10.0),
         "operator": QueueRules("operator", ring_timeout=15.0)}
SETTINGS = Settings(
    outbound=OutboundSettings(trunk_host="127.0.0.1:5099", caller_id="+551130000000",
                              allowed_prefixes=("+55",), extension_patterns=("555XXXX",),
                              dial_timeout=20),
    queues=(QueueSettings("support", ring_timeout=15, wrap_up=10), QueueSettings("operator")),
)


# --------------------------------------------------------------------------- fakes


class Timers:
    """The dialer's sleep on the virtual clock: sleepers wake when the test advances it."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.clock.now() + seconds, future))
        await future

    async def advance(self, seconds: float) -> None:
        await settle()  # whatever is about to sleep starts sleeping before time moves
        self.clock.advance(seconds)
        for due, future in list(self._sleepers):
            if due <= self.clock.now() and not future.done():
                future.set_result(None)
        self._sleepers = [(d, f) for d, f in self._sleepers if not f.done()]
        await settle()


class Requests:
    """The callback store, in memory, with the repository's rules for status changes."""

    def __init__(self) -> None:
        self.rows: dict[int, CallbackRequest] = {}

    async def add(self, request: CallbackRequest) -> CallbackRequest:
        stored = dataclasses.replace(request, id=len(self.rows) + 1)
        self.rows[stored.id] = stored  # type: ignore[index]
        return stored

    async def get(self, callback_id: int) -> CallbackRequest | None:
        return self.rows.get(callback_id)

    async def list(self, *, status: Any = None, queue: str | None = None, limit: int = 50,
                   offset: int = 0) -> tuple[list[CallbackRequest], int]:
        found = [r for r in self.rows.values() if status is None or r.status == status]
        return found[offset:offset + limit], len(found)

    async def set_status(self, callback_id: int, status: Any) -> CallbackRequest:
        current = self.rows[callback_id]
        if current.status is not CallbackStatus.PENDING:
            raise ValueError(f"request {callback_id} is {current.status}")
        self.rows[callback_id] = dataclasses.replace(current, status=CallbackStatus(status))
        return self.rows[callback_id]

    def status(self, callback_id: int) -> CallbackStatus:
        return self.rows[callback_id].status


class Originate:
    def __init__(self, action: Mapping[str, Any]) -> None:
        self.action = dict(action)
        self.future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    @property
    def variables(self) -> dict[str, str]:
        return dict(v.split("=", 1) for v in self.action.get("Variable", []))

    @property
    def token(self) -> str:
        return self.variables["CALLCENTER_CALLBACK"]

    def answered(self) -> None:
        self._respond("Success", "4")

    def failed(self, reason: str) -> None:
        self._respond("Failure", reason)

    def _respond(self, response: str, reason: str) -> None:
        self.future.set_result([
            {"Response": "Success", "Message": "Originate successfully queued"},
            {"Event": "OriginateResponse", "Response": response, "Reason": reason},
        ])


class Ami:
    def __init__(self) -> None:
        self.sent: list[Originate] = []
        self.error: Exception | None = None
        self._new: asyncio.Queue[Originate] = asyncio.Queue()

    async def send(self, action: Mapping[str, Any], *, timeout: float | None = None) -> Any:
        assert action["Action"] == "Originate" and action["Async"] is True
        assert timeout is not None and timeout > int(action["Timeout"]) / 1000
        if self.error is not None:
            raise self.error
        originate = Originate(action)
        self.sent.append(originate)
        self._new.put_nowait(originate)
        return await originate.future

    async def next(self) -> Originate:
        return await asyncio.wait_for(self._new.get(), GUARD)

    def nothing_sent(self) -> bool:
        return self._new.empty()


_uniqueids = iter(range(1, 1_000_000))


class Session:
    """One FastAGI session as the dialer (or a waiting caller's handler) sees it. Dial and
    ConfBridge block until the test ends them (``end``) or hangs the channel up
    (``hang_up``)."""

    def __init__(self, step: str, token: str, channel: str = "Local/s@x-00000001;1",
                 callerid: str = "unknown") -> None:
        self.env = AgiEnvironment.from_lines({
            "agi_network_script": "callback", "agi_request": "agi://127.0.0.1/callback",
            "agi_channel": channel, "agi_uniqueid": f"1700000000.{next(_uniqueids)}",
            "agi_callerid": callerid, "agi_arg_1": step, "agi_arg_2": token})
        self.commands: list[tuple[str, str]] = []
        self.variables: dict[str, str] = {}
        self.hung_up = False
        self.hangup_event = asyncio.Event()
        self.broken = False  # set_variable raises, as a bug of ours would
        self._blocking: asyncio.Future[tuple[str, str] | None] | None = None
        self.blocked = asyncio.Event()

    async def exec(self, app: str, args: str = "") -> int:
        self.commands.append((app, args))
        if app in ("Dial", "ConfBridge"):
            self._blocking = asyncio.get_running_loop().create_future()
            self.blocked.set()
            result = await self._blocking
            if result is None:
                raise AgiHangup("the channel hung up")
            self.variables[result[0]] = result[1]
        return 0

    async def stream_file(self, name: str, escape_digits: str = "") -> str | None:
        self.commands.append(("play", name))
        return None

    async def set_variable(self, name: str, value: str) -> None:
        if self.broken:
            raise RuntimeError("a bug")
        self.commands.append(("set", f"{name}={value}"))

    async def set_music(self, on: bool, moh_class: str = "default") -> None:
        self.commands.append(("music", "on" if on else "off"))

    async def say_number(self, number: int, escape_digits: str = "") -> str | None:
        self.commands.append(("say", str(number)))
        return None

    async def get_variable(self, name: str) -> str | None:
        return self.variables.get(name)

    async def hangup(self) -> None:
        if not self.hung_up:
            self.commands.append(("hangup", ""))
            self.hung_up = True
            self.hangup_event.set()

    async def until_blocked(self) -> tuple[str, str]:
        await asyncio.wait_for(self.blocked.wait(), GUARD)
        return self.commands[-1]

    def end(self, variable: str, value: str) -> None:
        assert self._blocking is not None
        self._blocking.set_result((variable, value))

    def hang_up(self) -> None:
        assert self._blocking is not None
        self.hung_up = True
        self.hangup_event.set()
        self._blocking.set_result(None)

    def played(self) -> list[str]:
        return [args for app, args in self.commands if app == "play"]


class Records:
    """The record writer: keeps the last saved version of each call record."""

    def __init__(self) -> None:
        self.saved: dict[str, CallRecord] = {}

    def apply(self, result: LedgerResult) -> None:
        for record in result.save:
            self.saved[record.call_id] = dataclasses.replace(record)

    def closed(self) -> list[CallRecord]:
        return [r for r in self.saved.values() if not r.is_open]


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GUARD
    while not condition():
        assert loop.time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0)


def following(request_id: int | None) -> bool:
    """Whether the dialer's task for the request still runs (none is left behind)."""
    return any(task.get_name() == f"callback {request_id}" and not task.done()
               for task in asyncio.all_tasks())


@dataclasses.dataclass
class World:
    clock: VirtualClock
    timers: Timers
    acd: AcdDriver
    requests: Requests
    ami: Ami
    records: Records
    ledger: CallLedger
    dialer: CallbackDialer
    steps: list[asyncio.Task[None]] = dataclasses.field(default_factory=list)
    changes: list[AgentStateChanged] = dataclasses.field(default_factory=list)

    def login(self, agent_id: str, mode: ConnectMode = ConnectMode.RING) -> None:
        self.acd.login(agent_id, phone=agent_id, mode=mode)

    def state(self, agent_id: str) -> AgentState:
        return self.acd.acd.agent_state(agent_id)

    def reason(self, agent_id: str) -> str | None:
        return self.acd.acd.agent(agent_id).reason

    def history(self, agent_id: str) -> list[tuple[str, str | None]]:
        """The agent's state changes since login: (state, reason)."""
        return [(c.state.value, c.reason) for c in self.changes
                if c.agent_id == agent_id][1:]

    async def request(self, number: str = CUSTOMER, queue: str = "support",
                      ago: float = 60.0, flow: str = "main") -> CallbackRequest:
        return await self.requests.add(CallbackRequest(
            call_id=f"caller-{len(self.requests.rows) + 1}", queue=queue, number=number,
            requested_at=self.clock.now() - ago, flow=flow, caller_name="Ana"))

    def step(self, step: str, token: str, **options: str) -> Session:
        session = Session(step, token, **options)
        self.steps.append(asyncio.create_task(self.dialer.handle(session)))  # type: ignore[arg-type]
        return session

    async def agent_answers(self, originate: Originate) -> Session:
        """The agent picked up: Asterisk runs the ``agent`` step, then answers the action."""
        session = self.step("agent", originate.token)
        originate.answered()
        await session.until_blocked()
        return session

    def channel_gone(self, session: Session) -> None:
        """AMI's Hangup of the step's channel (the ledger closes a record with it)."""
        self.records.apply(self.ledger.on_event(Hangup(
            uniqueid=session.env.uniqueid, linkedid=session.env.uniqueid,
            channel=session.env.channel, cause=16, cause_text="Normal Clearing"),
            self.clock.now()))

    async def customer_answers(self, originate: Originate) -> Session:
        session = self.step("answered", originate.token, channel="Local/+55@out-0002;1")
        await until(lambda: session.played() == ["callcenter/callback-connecting"],
                    "the customer heard who calls")
        return session


@pytest.fixture
async def world() -> Iterator[World]:
    clock = VirtualClock()
    timers = Timers(clock)
    acd = AcdDriver(Acd(RULES, [AgentSpec("agent1", ("support", "operator")),
                                AgentSpec("agent2", ("support",))], clock.now()), clock)
    requests, ami, records, ledger = Requests(), Ami(), Records(), CallLedger()
    dialer = CallbackDialer(settings=SETTINGS, clock=clock, acd=acd, store=requests,
                            send=ami.send, ledger=ledger, writer=records,  # type: ignore[arg-type]
                            sleep=timers.sleep, max_attempts=2, retry_after=300.0,
                            rescan_every=60.0, agi_start_timeout=10.0)
    the_world = World(clock, timers, acd, requests, ami, records, ledger, dialer)
    acd.on_agent_change(the_world.changes.append)
    yield the_world  # type: ignore[misc]
    await dialer.stop()
    for task in the_world.steps:
        task.cancel()
    await asyncio.gather(*the_world.steps, return_exceptions=True)


# --------------------------------------------------------------------------- tests


async def test_the_agent_is_rung_first_then_the_customer_and_the_request_is_done(world):
    request = await world.request()
    world.login("agent1")
    await world.dialer.start()

    ring = await world.ami.next()
    assert ring.action["Channel"] == "Local/s@callcenter-callback-ring/n"
    assert (ring.action["Context"], ring.action["Exten"]) == ("callcenter-callback", "agent")
    assert ring.variables["CALLCENTER_CALLBACK_AGENT"] == "agent1"
    assert ring.variables["CALLCENTER_CALLBACK_RING"] == "15"
    assert ring.action["CallerID"] == f'"Callback" <{CUSTOMER}>'  # what the agent's phone shows
    assert world.state("agent1") is AgentState.RINGING

    agent = await world.agent_answers(ring)
    assert agent.commands == [
        ("set", "CALLERID(all)=<+551130000000>"),  # the customer sees the call center
        ("Dial", f"Local/{CUSTOMER}@callcenter-outbound/n,25,"
                 f"gU(callcenter-callback-answered^{ring.token})"),
    ]
    assert world.state("agent1") is AgentState.RINGING  # not talking until the customer is
    assert world.requests.status(request.id) is CallbackStatus.PENDING

    world.clock.advance(8)
    customer = await world.customer_answers(ring)
    assert world.state("agent1") is AgentState.ON_CALL
    assert world.requests.status(request.id) is CallbackStatus.DONE
    assert customer.commands == [("play", "callcenter/callback-connecting")]  # no hangup

    world.clock.advance(120)
    agent.end("DIALSTATUS", "ANSWER")  # the customer hung up; the agent was still there
    await until(lambda: world.state("agent1") is AgentState.WRAP_UP, "the talk ended")
    await until(lambda: ("hangup", "") in agent.commands, "the agent's call ended")
    assert world.dialer.holding() == []
    assert world.acd.acd.waiting("support") == []
    await until(lambda: not following(request.id), "the request's task ended")
    world.channel_gone(agent)  # who hung up first is the handler's to say; the end, AMI's
    [record] = world.records.closed()
    assert record.call_id == agent.env.uniqueid
    assert (record.disposition, record.hangup_by) == (Disposition.ANSWERED, HangupBy.CALLER)
    assert (record.queue, record.agent_id, record.caller_number) == ("support", "agent1",
                                                                     CUSTOMER)
    assert record.talk_seconds == 120
    assert record.note == f"callback request {request.id} of call {request.call_id}"
    assert len(world.ami.sent) == 1
    # Linked to the call that asked, and waiting as the customer did: from their request
    # (60 s before the dialer started) to being put through (8 s after the agent answered).
    assert (record.callback_of, record.callback_request_id) == (request.call_id, request.id)
    assert record.queued_at == request.requested_at
    assert record.wait_seconds == 68


async def test_a_customer_who_does_not_answer_is_tried_again_later_then_given_up(world):
    request = await world.request()
    world.login("agent1")
    await world.dialer.start()

    for attempt in (1, 2):
        ring = await world.ami.next()
        agent = await world.agent_answers(ring)
        world.clock.advance(25)
        agent.end("DIALSTATUS", "NOANSWER")
        await until(lambda a=agent: ("hangup", "") in a.commands, "the agent's call ended")
        # The agent is free at once (no RONA: they answered); the customer is out of line.
        assert world.state("agent1") is AgentState.READY
        assert world.reason("agent1") == "callback not answered"
        assert world.acd.acd.waiting("support") == []
        if attempt == 1:
            assert world.requests.status(request.id) is CallbackStatus.PENDING
            await settle()  # the dialer reads the ACD's CallbackUnanswered: back in 300 s
            await world.timers.advance(299)
            assert world.ami.nothing_sent()
            await world.timers.advance(1)  # back in line after retry_after

    await until(lambda: world.requests.status(request.id) is CallbackStatus.FAILED,
                "the request failed after max_attempts calls")
    assert world.dialer.holding() == []
    await world.timers.advance(3600)
    assert world.ami.nothing_sent() and len(world.ami.sent) == 2
    failed = world.records.closed()
    assert [r.disposition for r in failed] == [Disposition.FAILED] * 2
    assert failed[0].note == (f"callback request {request.id}: {CUSTOMER} did not answer "
                              "(NOANSWER)")


async def test_an_agent_who_does_not_answer_is_paused_and_the_callback_keeps_its_place(world):
    request = await world.request(ago=300)
    world.login("agent1")
    world.login("agent2")
    world.acd.pause("agent2", "break")
    await world.dialer.start()
    live = world.acd.enqueue("live-caller", "support")  # came later than the request
    assert world.acd.acd.waiting("support") == [f"callback-{request.id}", "live-caller"]

    ring = await world.ami.next()
    world.clock.advance(20)  # rang out, with the dialplan's own ring timeout
    ring.failed("0")
    await until(lambda: world.state("agent1") is AgentState.PAUSED, "agent1 paused")
    assert world.reason("agent1") == "RONA"
    assert world.acd.acd.waiting("support") == [f"callback-{request.id}", "live-caller"]
    assert live.empty()

    world.acd.ready("agent2")  # the next agent gets the callback first, not the live caller
    again = await world.ami.next()
    assert again.variables["CALLCENTER_CALLBACK_AGENT"] == "agent2"
    assert again.token != ring.token
    assert live.empty()
    assert world.requests.status(request.id) is CallbackStatus.PENDING


async def test_without_ami_the_offer_is_given_back_and_tried_again_after_a_pause(world):
    await world.request()
    world.ami.error = AmiNotConnected("not connected to AMI")
    world.login("agent1")
    await world.dialer.start()
    await settle()
    # The agent is ready again (no RONA) and, being the only one, is offered the callback
    # again at once; but after a failure that fast the dialer waits before ringing (the
    # machine's pause, test_callback_machine), on the injected sleep.
    assert world.history("agent1") == [("ringing", "call callback-1"),
                                       ("ready", "offer rejected"),
                                       ("ringing", "call callback-1")]
    assert world.ami.sent == []
    world.ami.error = None
    await world.timers.advance(4.9)
    assert world.ami.nothing_sent()
    await world.timers.advance(0.1)
    retry = await world.ami.next()
    assert retry.variables["CALLCENTER_CALLBACK_AGENT"] == "agent1"


async def test_pending_requests_are_picked_up_on_start_and_stored_ones_at_once(world):
    first = await world.request(ago=600)
    by_hand = await world.request(number="11987654321")  # not E.164: a person calls back
    orphan = await world.request(queue="gone", ago=30)  # its queue left the settings
    done = await world.request()
    await world.requests.set_status(done.id, CallbackStatus.DONE)
    await world.dialer.start()

    assert world.dialer.holding() == [first.id, orphan.id]
    assert world.acd.acd.waiting("support") == [f"callback-{first.id}"]
    assert world.acd.acd.waiting("operator") == [f"callback-{orphan.id}"]  # the fallback
    assert world.requests.status(by_hand.id) is CallbackStatus.PENDING

    # The IVR stores a new one through the dialer: in line at once, by its request time.
    new = await world.dialer.add(CallbackRequest(
        call_id="caller-9", queue="support", number="5551234",
        requested_at=world.clock.now() - 900, flow="main"))
    assert world.acd.acd.waiting("support") == [f"callback-{new.id}", f"callback-{first.id}"]
    # A scan takes nothing twice.
    assert await world.dialer.pick_up_pending() == 0
    # A request stored behind the dialer's back is found by the next periodic scan.
    late = await world.request()
    await world.timers.advance(60)
    assert late.id in world.dialer.holding()
    assert world.ami.sent == []  # nobody is logged in


async def test_virtual_hold_takes_the_callers_place_in_line(world):
    world.login("agent1")
    world.acd.pause("agent1", "break")
    await world.dialer.start()
    world.clock.advance(10)
    world.acd.enqueue("second-caller", "support")  # joined after the first caller
    request = await world.requests.add(CallbackRequest(
        call_id="first-caller", queue="support", number=CUSTOMER,
        requested_at=world.clock.now(), flow="virtual-hold"))
    world.dialer.hold(request, QueuePlace("support", waiting_since=world.clock.now() - 10))
    assert world.acd.acd.waiting("support") == [f"callback-{request.id}", "second-caller"]
    world.dialer.hold(request, QueuePlace("support", waiting_since=0))  # said twice: once
    assert world.acd.acd.waiting("support") == [f"callback-{request.id}", "second-caller"]

    world.acd.ready("agent1")
    ring = await world.ami.next()
    assert ring.variables["CALLCENTER_CALLBACK_AGENT"] == "agent1"


async def test_a_request_cancelled_while_in_line_is_not_called(world):
    request = await world.request()
    await world.dialer.start()
    await world.requests.set_status(request.id, CallbackStatus.CANCELLED)
    world.login("agent1")
    await until(lambda: world.dialer.holding() == [], "the entry was dropped")
    await until(lambda: not following(request.id), "the request's task ended")
    assert world.ami.sent == []
    assert world.state("agent1") is AgentState.READY
    assert world.acd.acd.waiting("support") == []


async def test_an_agent_who_hangs_up_before_the_customer_answers_gives_the_callback_back(
        world):
    request = await world.request()
    world.login("agent1")
    await world.dialer.start()
    ring = await world.ami.next()
    agent = await world.agent_answers(ring)
    agent.hang_up()
    await until(lambda: ("ready", "offer rejected") in world.history("agent1"),
                "agent1 gave the callback back")
    assert world.acd.acd.waiting("support") == [f"callback-{request.id}"]
    assert world.requests.status(request.id) is CallbackStatus.PENDING
    [record] = world.records.closed()
    assert record.hangup_by is HangupBy.AGENT and record.disposition is Disposition.FAILED
    await world.timers.advance(4)
    assert world.ami.nothing_sent()  # the same agent is not rung again straight away
    await world.timers.advance(1)
    await world.ami.next()


async def test_a_nailed_up_agent_gets_the_customer_joined_to_their_bridge(world):
    request = await world.request()
    world.login("agent1", ConnectMode.NAILED)
    await world.dialer.start()

    dial = await world.ami.next()
    assert dial.action["Channel"] == f"Local/{CUSTOMER}@callcenter-outbound/n"
    assert (dial.action["Context"], dial.action["Exten"]) == ("callcenter-callback", "customer")
    assert dial.action["CallerID"] == "<+551130000000>"
    customer = world.step("customer", dial.token, channel="Local/+55@out-0003;1")
    dial.answered()
    assert await customer.until_blocked() == ("ConfBridge", caller_join_arguments("agent1"))
    assert customer.played() == ["callcenter/callback-connecting"]
    assert world.state("agent1") is AgentState.ON_CALL
    assert world.requests.status(request.id) is CallbackStatus.DONE

    world.clock.advance(60)
    customer.end("CONFBRIDGE_RESULT", "KICKED")  # the agent ended it with '#'
    await until(lambda: world.state("agent1") is AgentState.WRAP_UP, "the talk ended")
    [record] = world.records.closed()
    assert (record.agent_id, record.hangup_by, record.talk_seconds) == (
        "agent1", HangupBy.AGENT, 60)


async def test_an_answered_originate_whose_step_never_comes_is_given_back(world):
    await world.request()
    world.login("agent1")
    await world.dialer.start()
    ring = await world.ami.next()
    ring.answered()  # ... and no FastAGI step: the dialplan lacks it, or it failed
    await world.timers.advance(9)
    assert world.history("agent1") == [("ringing", "call callback-1")]
    await world.timers.advance(1)
    await until(lambda: ("ready", "offer rejected") in world.history("agent1"),
                "the offer was given back")
    late = world.step("agent", ring.token)  # a step that comes after all finds nothing
    await until(lambda: late.hung_up, "the late step hung up")
    assert [app for app, _ in late.commands] == ["hangup"]


async def test_a_step_that_breaks_still_gives_the_offer_back(world):
    request = await world.request()
    world.login("agent1")
    await world.dialer.start()
    ring = await world.ami.next()
    session = Session("agent", ring.token)
    session.broken = True
    step = asyncio.create_task(world.dialer.handle(session))  # type: ignore[arg-type]
    ring.answered()
    with pytest.raises(RuntimeError, match="a bug"):  # the FastAGI server logs it
        await asyncio.wait_for(step, GUARD)
    await until(lambda: ("ready", "offer rejected") in world.history("agent1"),
                "the offer went back to the ACD")
    assert world.acd.acd.waiting("support") == [f"callback-{request.id}"]


async def test_steps_with_unknown_tokens_are_hung_up(world):
    for token in ("cb0000", "bad token", ""):
        session = world.step("agent", token)
        await until(lambda s=session: s.hung_up, "hung up")
        assert [app for app, _ in session.commands] == ["hangup"]


def test_the_callback_contexts_exist_only_with_a_trunk_and_before_the_outbound_one():
    settings = dataclasses.replace(SETTINGS, service=dataclasses.replace(
        SETTINGS.service, agi_port=14573))
    dialplan = confgen.extensions(settings)
    ring = dialplan.split("[callcenter-callback-ring]\n")[1].split("\n\n")[0].splitlines()
    assert ring[0] == ("exten => s,1,Dial(PJSIP/${CALLCENTER_CALLBACK_AGENT},"
                       "${CALLCENTER_CALLBACK_RING})")
    assert " same => n(busy),Busy()" in ring and " same => n,Congestion()" in ring
    callback = dialplan.split("[callcenter-callback]\n")[1].split("\n\n")[0].splitlines()
    assert callback == [
        "exten => agent,1,AGI(agi://127.0.0.1:14573/callback,agent,${CALLCENTER_CALLBACK})",
        " same => n,Hangup()",
        "exten => customer,1,AGI(agi://127.0.0.1:14573/callback,customer,"
        "${CALLCENTER_CALLBACK})",
        " same => n,Hangup()",
    ]
    answered = dialplan.split("[callcenter-callback-answered]\n")[1].split("\n\n")[0]
    assert answered.splitlines() == [
        "exten => s,1,AGI(agi://127.0.0.1:14573/callback,answered,${ARG1})",
        " same => n,Return()"]
    assert dialplan.index("[callcenter-callback-answered]") < dialplan.index(
        "[callcenter-outbound]")
    no_trunk = dataclasses.replace(settings, outbound=OutboundSettings())
    assert "callcenter-callback" not in confgen.extensions(no_trunk)


async def test_without_a_trunk_nothing_is_held_and_requests_are_only_stored():
    clock = VirtualClock()
    acd = AcdDriver(Acd(RULES, [AgentSpec("agent1", ("support",))], clock.now()), clock)
    requests = Requests()
    dialer = CallbackDialer(settings=dataclasses.replace(SETTINGS, outbound=OutboundSettings()),
                            clock=clock, acd=acd, store=requests, send=Ami().send,
                            ledger=CallLedger(), writer=Records())  # type: ignore[arg-type]
    assert not dialer.enabled
    await dialer.start()
    stored = await dialer.add(CallbackRequest(call_id="c", queue="support", number=CUSTOMER,
                                              requested_at=clock.now(), flow="main"))
    assert requests.status(stored.id) is CallbackStatus.PENDING  # type: ignore[arg-type]
    assert dialer.holding() == [] and acd.acd.waiting("support") == []
    with pytest.raises(ValueError, match="no outbound trunk"):
        dialer.hold(stored, QueuePlace("support", waiting_since=clock.now()))
    await dialer.stop()


# --------------------------------------------------------------------------- QueueCalls' side

OFFERING = dataclasses.replace(SETTINGS, queues=(
    QueueSettings("support", ring_timeout=15, wrap_up=10, offer_callback=True),
    QueueSettings("operator")))


class SlowRequests(Requests):
    """A store whose ``add`` waits for the test: things happen while it writes."""

    def __init__(self) -> None:
        super().__init__()
        self.adding = asyncio.Event()
        self.gate: asyncio.Future[None] = asyncio.get_event_loop().create_future()

    async def add(self, request: CallbackRequest) -> CallbackRequest:
        self.adding.set()
        await self.gate
        return await super().add(request)


def waiting_caller(world: World, requests: Requests) -> tuple[QueueCalls, Session]:
    queues = QueueCalls(settings=OFFERING, clock=world.clock, acd=world.acd,
                        ledger=world.ledger, writer=world.records,  # type: ignore[arg-type]
                        callbacks=requests, virtual_hold=world.dialer)
    caller = Session("", "", channel="PJSIP/anonymous-00000001", callerid="5551234")
    world.records.apply(world.ledger.handler_started(
        "caller-1", channel=caller.env.channel, caller_number="5551234", caller_name=None,
        dialed_number="100", now=world.clock.now()))
    return queues, caller


async def test_a_waiting_caller_who_presses_1_hands_their_place_to_the_callback(world):
    queues, caller = waiting_caller(world, world.requests)
    waiting = asyncio.create_task(queues.wait(caller, "caller-1",  # type: ignore[arg-type]
                                              QueueRequest("support", priority=2)))
    await until(lambda: world.acd.holds("caller-1"), "the caller is in line")
    world.clock.advance(30)
    world.acd.enqueue("later-caller", "support", priority=2)
    world.acd.key_pressed("caller-1", "1")
    assert await asyncio.wait_for(waiting, GUARD) is WaitOutcome.CALLBACK

    [request] = world.requests.rows.values()
    assert (request.call_id, request.flow, request.number, request.status) == (
        "caller-1", "virtual-hold", "5551234", CallbackStatus.PENDING)
    # The callback stands where the caller stood: ahead of who came later.
    assert world.acd.acd.waiting("support") == [f"callback-{request.id}", "later-caller"]
    assert caller.played()[-1] == "callcenter/queue-callback-registered"
    assert caller.hung_up
    world.acd.left("caller-1")  # the inbound handler's end: the callback stays in line
    assert world.acd.acd.waiting("support") == [f"callback-{request.id}", "later-caller"]
    assert world.dialer.holding() == [request.id]


async def test_an_offer_made_while_the_request_is_stored_wins_and_the_request_is_cancelled(
        world):
    requests = SlowRequests()
    queues, caller = waiting_caller(world, requests)
    world.login("agent1")
    world.acd.pause("agent1", "break")
    waiting = asyncio.create_task(queues.wait(caller, "caller-1",  # type: ignore[arg-type]
                                              QueueRequest("support")))
    await until(lambda: world.acd.holds("caller-1"), "the caller is in line")
    world.acd.key_pressed("caller-1", "1")
    await asyncio.wait_for(requests.adding.wait(), GUARD)
    world.acd.ready("agent1")  # an offer for the caller while the request is written
    requests.gate.set_result(None)

    assert await caller.until_blocked() == (
        "Dial", "PJSIP/agent1,15,m(default)gtb(callcenter-consult^leg^1)")
    [request] = requests.rows.values()
    assert request.status is CallbackStatus.CANCELLED  # nobody calls them back as well
    assert world.dialer.holding() == []
    caller.end("DIALSTATUS", "ANSWER")
    assert await asyncio.wait_for(waiting, GUARD) is WaitOutcome.TALKED


async def test_the_callback_of_a_waiting_caller_waits_from_their_first_queueing(world):
    queues, caller = waiting_caller(world, world.requests)
    joined = world.clock.now()
    waiting = asyncio.create_task(queues.wait(caller, "caller-1",  # type: ignore[arg-type]
                                              QueueRequest("support")))
    await until(lambda: world.acd.holds("caller-1"), "the caller is in line")
    world.clock.advance(30)
    world.acd.key_pressed("caller-1", "1")
    assert await asyncio.wait_for(waiting, GUARD) is WaitOutcome.CALLBACK
    [request] = world.requests.rows.values()
    assert request.queued_at == joined  # a restart's scan puts it back there too
    world.records.apply(world.ledger.handler_finished(
        "caller-1", world.clock.now(), hangup_by=HangupBy.SYSTEM, callback_requested=True))
    asked = world.records.saved["caller-1"]
    assert (asked.disposition, asked.callback_request_id) == (
        Disposition.CALLBACK_REQUESTED, request.id)
    assert asked.wait_seconds == 30

    world.clock.advance(100)
    await world.dialer.start()
    world.login("agent1")
    ring = await world.ami.next()
    agent = await world.agent_answers(ring)
    world.clock.advance(5)
    await world.customer_answers(ring)
    agent.end("DIALSTATUS", "ANSWER")
    await until(lambda: ("hangup", "") in agent.commands, "the agent's call ended")
    world.channel_gone(agent)
    [record] = [r for r in world.records.closed() if r.call_id != "caller-1"]
    assert (record.callback_of, record.callback_request_id) == ("caller-1", request.id)
    # The customer's whole wait, counted once: 30 s on their call, 105 s more for the callback.
    assert record.queued_at == asked.queued_at == joined
    assert record.wait_seconds == 135


async def test_a_stored_request_picked_up_later_keeps_the_place_its_customer_had(world):
    world.acd.enqueue("a-caller", "support", waiting_since=world.clock.now() - 100)
    kept = await world.requests.add(CallbackRequest(
        call_id="caller-1", queue="support", number=CUSTOMER, requested_at=world.clock.now(),
        flow="virtual-hold", queued_at=world.clock.now() - 300))
    await world.dialer.start()
    assert world.acd.acd.waiting("support") == [f"callback-{kept.id}", "a-caller"]


async def test_the_ivr_call_that_asks_names_its_callback_request(world):
    world.records.apply(world.ledger.handler_started(
        "ivr-call", channel="PJSIP/anonymous-00000002", caller_number=CUSTOMER,
        caller_name=None, dialed_number="100", now=world.clock.now()))
    await world.dialer.start()
    stored = await world.dialer.add(CallbackRequest(
        call_id="ivr-call", queue="support", number=CUSTOMER, requested_at=world.clock.now(),
        flow="main"))
    asking = world.ledger.get("ivr-call")
    assert asking is not None and asking.callback_request_id == stored.id


# --------------------------------------------------------------------------- no offer


def caller_who_waits(world: World, callerid: str, *, trunk: bool = True,
                     offer: bool = True) -> tuple[QueueCalls, Session, list[dict[str, Any]]]:
    published: list[dict[str, Any]] = []
    settings = OFFERING if offer else SETTINGS
    queues = QueueCalls(settings=settings, clock=world.clock, acd=world.acd,
                        ledger=world.ledger, writer=world.records,  # type: ignore[arg-type]
                        callbacks=world.requests if trunk else None,  # type: ignore[arg-type]
                        virtual_hold=world.dialer if trunk else None,
                        publish=lambda kind, data: published.append({"kind": kind, **data}))
    caller = Session("", "", channel="PJSIP/anonymous-00000001", callerid=callerid)
    world.records.apply(world.ledger.handler_started(
        "caller-1", channel=caller.env.channel, caller_number=callerid, caller_name=None,
        dialed_number="100", now=world.clock.now()))
    return queues, caller, published


NOT_ALLOWED_JSON = {"reason": "number_not_allowed",
                    "text": "number not allowed by the outbound rules"}


async def test_a_caller_the_rules_refuse_hears_no_offer_said_once_and_counted(world, caplog):
    caplog.set_level(logging.INFO, logger="callcenter.features.queues.waiting")
    queues, caller, published = caller_who_waits(world, "4441234")
    waiting = asyncio.create_task(queues.wait(caller, "caller-1",  # type: ignore[arg-type]
                                              QueueRequest("support")))
    await until(lambda: world.acd.holds("caller-1"), "the caller is in line")
    world.clock.advance(20)
    world.acd.key_pressed("caller-1", "1")  # the key does nothing for them
    await settle()
    assert not waiting.done() and not caller.hung_up
    assert world.requests.rows == {}
    figures = queues.callbacks_not_offered("support")
    assert (figures.waiting, figures.recent) == (1, 1)

    caller.hung_up = True
    caller.hangup_event.set()
    with pytest.raises(AgiHangup):
        await asyncio.wait_for(waiting, GUARD)
    figures = queues.callbacks_not_offered("support")
    assert (figures.waiting, figures.recent) == (0, 1)
    assert [(e["kind"], e["queue"], e["change"], e["call_id"], e["reason"])
            for e in published] == [
        ("queue", "support", "callbacks_not_offered", "caller-1", "number_not_allowed"),
        ("queue", "support", "callbacks_not_offered", "caller-1", None)]
    assert [e["callbacks_not_offered"] for e in published] == [
        {"waiting": 1, "last_day": 1, "reasons": [{**NOT_ALLOWED_JSON, "waiting": 1,
                                                   "last_day": 1}]},
        {"waiting": 0, "last_day": 1, "reasons": [{**NOT_ALLOWED_JSON, "waiting": 0,
                                                   "last_day": 1}]}]
    said = [(r.levelno, r.getMessage()) for r in caplog.records
            if "offers callbacks" in r.getMessage()]
    assert said == [(logging.INFO, "call caller-1: queue support offers callbacks, but not to "
                     "this caller: number not allowed by the outbound rules (extension 4441234 "
                     "matches none of outbound.extension_patterns (555XXXX))")]


@pytest.mark.parametrize(("callerid", "trunk", "reason", "level", "details"), [
    ("unknown", True, "no_number", logging.INFO, "caller ID 'unknown'"),
    ("anonymous", True, "no_number", logging.INFO, "caller ID 'anonymous'"),
    ("+4420790000", True, "number_not_allowed", logging.INFO,
     "outside number +4420790000 starts with none of outbound.allowed_prefixes (+55)"),
    ("5551234", False, "callbacks_disabled", logging.WARNING, "outbound.trunk_host is not set"),
])
async def test_each_reason_for_no_offer_is_named(world, caplog, callerid, trunk, reason, level,
                                                 details):
    caplog.set_level(logging.INFO, logger="callcenter.features.queues.waiting")
    queues, caller, published = caller_who_waits(world, callerid, trunk=trunk)
    waiting = asyncio.create_task(queues.wait(caller, "caller-1",  # type: ignore[arg-type]
                                              QueueRequest("support")))
    await until(lambda: world.acd.holds("caller-1"), "the caller is in line")
    [event] = published
    assert event["reason"] == reason
    [said] = [r for r in caplog.records if "offers callbacks" in r.getMessage()]
    assert said.levelno == level
    assert said.getMessage().endswith(f"({details})")
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)


@pytest.mark.parametrize(("callerid", "offer"), [("5551234", True), ("+5511999990000", True),
                                                 ("4441234", False)])
async def test_callers_offered_a_callback_or_in_queues_without_one_are_not_counted(
        world, caplog, callerid, offer):
    caplog.set_level(logging.INFO, logger="callcenter.features.queues.waiting")
    queues, caller, published = caller_who_waits(world, callerid, offer=offer)
    waiting = asyncio.create_task(queues.wait(caller, "caller-1",  # type: ignore[arg-type]
                                              QueueRequest("support")))
    await until(lambda: world.acd.holds("caller-1"), "the caller is in line")
    assert published == []
    assert queues.callbacks_not_offered("support").recent == 0
    assert not [r for r in caplog.records if "offers callbacks" in r.getMessage()]
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
