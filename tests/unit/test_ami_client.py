"""The AMI client's state machine against a small fake AMI server speaking the text protocol.

The fake only plays the parts of Asterisk the client relies on (banner, Login, FullyBooted,
CoreShowChannels, Ping, Reload); behaviour against the real Asterisk 22 is an integration
test. Reconnection delays go through an injected sleep: they are checked, never waited.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from callcenter.asterisk.ami import (
    AmiActionError,
    AmiClient,
    AmiConnectionLost,
    AmiNotConnected,
    AmiTimeout,
    AmiValueError,
    backoff_delay,
    check_action,
)
from callcenter.asterisk.events import (
    AmiEvent,
    CoreShowChannel,
    FullyBooted,
    Hangup,
    Newchannel,
    Newstate,
)

WAIT = 5.0  # a guard against a hung test, never a pause
SECRET = "s3cret-pass"


def block(**headers: str) -> bytes:
    return "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n"


def channel_event(event: str, uniqueid: str, **extra: str) -> bytes:
    """An event with a whole channel snapshot, as Asterisk writes it (AmiFramer checks)."""
    snapshot = {"Channel": f"PJSIP/caller-{uniqueid}", "ChannelState": "6",
                "ChannelStateDesc": "Up", "CallerIDNum": "<unknown>",
                "CallerIDName": "<unknown>", "ConnectedLineNum": "<unknown>",
                "ConnectedLineName": "<unknown>", "Language": "en", "AccountCode": "",
                "Context": "callers", "Exten": "100", "Priority": "1", "Uniqueid": uniqueid,
                "Linkedid": uniqueid}
    snapshot.update((key, value) for key, value in extra.items() if key in snapshot)
    rest = {key: value for key, value in extra.items() if key not in snapshot}
    return block(Event=event, Privilege="call,all", Timestamp="1732822000.5", **snapshot,
                 **rest)


class FakeAmi:
    """Asterisk's manager port, as far as the client's state machine needs it."""

    def __init__(self, channels: tuple[str, ...] = ()) -> None:
        self.channels = list(channels)  # uniqueids listed by CoreShowChannels
        self.refuse_logins = 0
        self.banner = b"Asterisk Call Manager/9.0.0\r\n"
        self.actions: list[dict[str, Any]] = []
        self.logins = 0
        self.writers: list[asyncio.StreamWriter] = []
        # Called with the writer between the list's start and its items: live events that
        # Asterisk interleaves with a snapshot.
        self.during_snapshot: Callable[[asyncio.StreamWriter], None] | None = None
        self.after_snapshot: Callable[[asyncio.StreamWriter], None] | None = None
        self.ignored_actions = {"hold"}
        self.denied_actions: set[str] = set()  # answered "Permission denied"
        self._server: asyncio.Server | None = None
        self._received = asyncio.Condition()
        self.port = 0

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self.drop()
            await self._server.wait_closed()
            self._server = None

    def drop(self) -> None:
        """Cut every connection, as a crash or a network failure would."""
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    def send_event(self, data: bytes) -> None:
        for writer in self.writers:
            writer.write(data)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(self.banner)
        while True:
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            action: dict[str, Any] = {}
            for line in raw.decode().split("\r\n"):
                if line:
                    key, _, value = line.partition(": ")
                    action[key] = [action[key], value] if key in action else value
            async with self._received:
                self.actions.append(action)
                self._received.notify_all()
            self._answer(action, writer)

    async def wait_action(self, name: str) -> None:
        async with self._received:
            await asyncio.wait_for(
                self._received.wait_for(lambda: any(a["Action"] == name for a in self.actions)),
                WAIT,
            )

    def _answer(self, action: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        name = action["Action"].lower()
        action_id = action["ActionID"]
        if name in self.ignored_actions:
            return
        if name in self.denied_actions:
            writer.write(block(Response="Error", ActionID=action_id, Message="Permission denied"))
            return
        if name == "login":
            self.logins += 1
            if self.refuse_logins > 0 or action.get("Secret") != SECRET:
                self.refuse_logins -= 1
                writer.write(block(Response="Error", ActionID=action_id,
                                   Message="Authentication failed"))
                writer.close()
                return
            writer.write(block(Response="Success", ActionID=action_id,
                               Message="Authentication accepted"))
            writer.write(block(Event="FullyBooted", Privilege="system,all", Uptime="5",
                               LastReload="5", Status="Fully Booted"))
        elif name == "coreshowchannels":
            writer.write(block(Response="Success", ActionID=action_id, EventList="start",
                               Message="Channels will follow"))
            if self.during_snapshot is not None:
                self.during_snapshot(writer)
            for uniqueid in self.channels:
                writer.write(block(
                    Event="CoreShowChannel", ActionID=action_id,
                    Channel=f"PJSIP/caller-{uniqueid}", ChannelStateDesc="Up",
                    Context="from-callers", Exten="100", Uniqueid=uniqueid, Linkedid=uniqueid,
                    BridgeId="", Application="AGI", Duration="00:00:42",
                ))
            writer.write(block(Event="CoreShowChannelsComplete", ActionID=action_id,
                               EventList="Complete", ListItems=str(len(self.channels))))
            if self.after_snapshot is not None:
                self.after_snapshot(writer)
        elif name == "ping":
            writer.write(block(Response="Success", ActionID=action_id, Ping="Pong",
                               Timestamp="1732822000.000000"))
        elif name == "reload":
            if action.get("Module") == "nope.so":
                writer.write(block(Response="Error", ActionID=action_id,
                                   Message="No such module"))
            else:
                writer.write(block(Response="Success", ActionID=action_id,
                                   Message="Module Reloaded"))
        else:
            writer.write(block(Response="Error", ActionID=action_id,
                               Message="Invalid/unknown command"))


class Recorder:
    """on_event / on_ready callbacks that keep what they were given, in order."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[AmiEvent] = asyncio.Queue()
        self.snapshots: asyncio.Queue[list[CoreShowChannel]] = asyncio.Queue()

    def on_event(self, event: AmiEvent) -> None:
        self.events.put_nowait(event)

    def on_ready(self, snapshot: list[CoreShowChannel]) -> None:
        self.snapshots.put_nowait(snapshot)

    async def next_event(self) -> AmiEvent:
        return await asyncio.wait_for(self.events.get(), WAIT)

    def delivered(self) -> list[AmiEvent]:
        items = []
        while not self.events.empty():
            items.append(self.events.get_nowait())
        return items


class SleepRecorder:
    """The client's sleep: records each backoff delay; returns at once, or when released."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.recorded = asyncio.Condition()
        self.before_return: Callable[[float], Awaitable[None]] | None = None

    async def __call__(self, delay: float) -> None:
        async with self.recorded:
            self.delays.append(delay)
            self.recorded.notify_all()
        if self.before_return is not None:
            await self.before_return(delay)
        await asyncio.sleep(0)

    async def wait_count(self, count: int) -> None:
        async with self.recorded:
            await asyncio.wait_for(self.recorded.wait_for(lambda: len(self.delays) >= count),
                                   WAIT)


@pytest.fixture
async def fake_ami() -> AsyncIterator[FakeAmi]:
    fake = FakeAmi(channels=("1732822000.1", "1732822050.3"))
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def clients() -> AsyncIterator[list[AmiClient]]:
    made: list[AmiClient] = []
    yield made
    for client in made:
        await client.stop()


def make_client(
    clients: list[AmiClient], port: int, recorder: Recorder, **options: Any
) -> AmiClient:
    options.setdefault("on_ready", recorder.on_ready)
    options.setdefault("ping_interval", None)
    client = AmiClient("127.0.0.1", port, "callcenter", options.pop("secret", SECRET),
                       recorder.on_event, **options)
    clients.append(client)
    return client


# --------------------------------------------------------------------------- pure helpers


def test_actions_with_line_breaks_or_nul_anywhere_are_refused() -> None:
    for action in (
        {"Action": "Originate", "Channel": "PJSIP/agent1\r\nAction: Command"},
        {"Action": "Originate", "Variable": ["A=1", "B=2\nC=3"]},
        {"Action": "Setvar", "Value": "x\0y"},
        {"Action": "Originate", "Chan\nnel": "PJSIP/agent1"},
        {"Action": "Ping\r\nAction: Command"},
    ):
        with pytest.raises(AmiValueError, match=r"line break or NUL|header name"):
            check_action(action)


def test_checked_actions_keep_their_headers_as_text() -> None:
    assert check_action({"Action": "Originate", "Timeout": 30000, "Async": True,
                         "Variable": ["A=1", "B=2"]}) == {
        "Action": "Originate", "Timeout": "30000", "Async": "true", "Variable": ["A=1", "B=2"],
    }


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"Channel": "x"}, "needs one 'Action' header"),
        ({"Action": ""}, "needs one 'Action' header"),
        ({"Action": "Ping", "ActionID": "mine"}, "ActionID is set by the client"),
        ({"Action": "Ping", "action": "Login"}, "given twice"),
        ({"Action": "Ping", "Data": 1.5}, "must be text or a number"),
        ({"Action": "Ping", "Data": None}, "must be text or a number"),
    ],
)
def test_malformed_actions_are_refused_with_the_reason(
    action: dict[str, Any], message: str
) -> None:
    with pytest.raises(AmiValueError, match=message):
        check_action(action)


def test_backoff_grows_exponentially_up_to_the_cap_with_jitter() -> None:
    rng = random.Random(42)
    delays = [backoff_delay(attempt, 0.5, 30.0, rng) for attempt in range(12)]
    ceilings = [min(30.0, 0.5 * 2 ** (attempt + 1)) for attempt in range(12)]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert 0.5 <= delay <= ceiling
    assert ceilings[-1] == 30.0
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered: no two alike
    many = [backoff_delay(8, 0.5, 30.0, rng) for _ in range(500)]
    assert min(many) < 5 and max(many) > 25  # full jitter spreads over the whole range
    assert sum(delays[6:]) / 6 > sum(delays[:3]) / 3  # later attempts wait longer
    twin = random.Random(42)
    assert delays == [backoff_delay(attempt, 0.5, 30.0, twin) for attempt in range(12)]


def test_a_client_refuses_nonsense_backoff_bounds() -> None:
    with pytest.raises(ValueError, match="reconnect_min"):
        AmiClient("127.0.0.1", 5038, "u", "s", lambda e: None, reconnect_min=0)
    with pytest.raises(ValueError, match="reconnect_min"):
        AmiClient("127.0.0.1", 5038, "u", "s", lambda e: None, reconnect_min=5,
                  reconnect_max=1)


# --------------------------------------------------------------------------- the client


async def test_connect_logs_in_snapshots_and_then_delivers_live_events(
    fake_ami: FakeAmi, clients: list[AmiClient]
) -> None:
    recorder = Recorder()
    client = make_client(clients, fake_ami.port, recorder)
    assert not client.connected
    await client.start()
    await client.wait_ready(WAIT)
    assert client.connected and client.ready
    assert client.protocol_version == "9.0.0"
    snapshot = recorder.snapshots.get_nowait()
    assert [channel.uniqueid for channel in snapshot] == ["1732822000.1", "1732822050.3"]
    assert snapshot[0].duration_seconds == 42
    login = fake_ami.actions[0]
    assert (login["Action"], login["Username"], login["Secret"], login["Events"]) == (
        "Login", "callcenter", SECRET, "on",
    )
    assert fake_ami.actions[1]["Action"] == "CoreShowChannels"
    assert await recorder.next_event() == FullyBooted()
    fake_ami.send_event(channel_event("Newchannel", "1732822100.7", CallerIDNum="0611"))
    event = await recorder.next_event()
    assert isinstance(event, Newchannel)
    assert (event.uniqueid, event.caller_number, event.timestamp) == (
        "1732822100.7", "0611", 1732822000.5,
    )
    assert client.last_error is None


async def test_events_during_the_snapshot_wait_for_on_ready_and_keep_their_order(
    fake_ami: FakeAmi, clients: list[AmiClient]
) -> None:
    recorder = Recorder()
    fake_ami.during_snapshot = lambda w: w.write(channel_event("Newstate", "e1"))
    fake_ami.after_snapshot = lambda w: w.write(channel_event("Newstate", "e2"))
    seen_in_on_ready: list[list[AmiEvent]] = []

    async def on_ready(snapshot: list[CoreShowChannel]) -> None:
        seen_in_on_ready.append(recorder.delivered())
        fake_ami.send_event(channel_event("Hangup", "e3", Cause="16"))
        # A Ping answered after e3 proves e3 reached the client while on_ready runs.
        await client.send({"Action": "Ping"})
        seen_in_on_ready.append(recorder.delivered())

    client = make_client(clients, fake_ami.port, recorder, on_ready=on_ready)
    await client.start()
    await client.wait_ready(WAIT)
    assert seen_in_on_ready == [[], []]
    delivered = recorder.delivered()
    assert [type(e) for e in delivered] == [FullyBooted, Newstate, Newstate, Hangup]
    assert [getattr(e, "uniqueid", None) for e in delivered[1:]] == ["e1", "e2", "e3"]
    fake_ami.send_event(channel_event("Newstate", "e4"))
    live = await recorder.next_event()
    assert isinstance(live, Newstate) and live.uniqueid == "e4"


async def test_a_cut_connection_fails_pending_actions_then_reconnects_and_resyncs(
    fake_ami: FakeAmi, clients: list[AmiClient]
) -> None:
    recorder = Recorder()
    sleep = SleepRecorder()
    client = make_client(clients, fake_ami.port, recorder, reconnect_min=0.01,
                         reconnect_max=1.0, rng=random.Random(7), sleep=sleep)
    await client.start()
    await client.wait_ready(WAIT)
    await asyncio.wait_for(recorder.snapshots.get(), WAIT)

    pending = asyncio.create_task(client.send({"Action": "Hold", "Channel": "PJSIP/x"}))
    await fake_ami.wait_action("Hold")
    fake_ami.drop()
    with pytest.raises(AmiConnectionLost, match="Hold"):
        await asyncio.wait_for(pending, WAIT)

    second_snapshot = await asyncio.wait_for(recorder.snapshots.get(), WAIT)
    await client.wait_ready(WAIT)
    assert len(second_snapshot) == 2
    assert fake_ami.logins == 2
    assert client.logins == 2  # what /metrics reports as one reconnect
    assert sleep.delays == [backoff_delay(0, 0.01, 1.0, random.Random(7))]
    assert not any(a["Action"] == "Hold" for a in fake_ami.actions[-2:])  # never re-sent
    fake_ami.send_event(channel_event("Newstate", "after"))
    events = [await recorder.next_event() for _ in range(3)]
    assert [type(e) for e in events] == [FullyBooted, FullyBooted, Newstate]


async def test_an_absent_asterisk_is_retried_with_growing_jittered_delays_reset_by_login(
    clients: list[AmiClient],
) -> None:
    fake = FakeAmi()
    await fake.start()
    port = fake.port
    await fake.stop()  # nothing listens there now: connections are refused
    recorder = Recorder()
    sleep = SleepRecorder()

    async def asterisk_comes_back(delay: float) -> None:
        if len(sleep.delays) == 6:
            await fake.start(port)

    sleep.before_return = asterisk_comes_back
    client = make_client(clients, port, recorder, reconnect_min=0.01, reconnect_max=0.2,
                         rng=random.Random(3), sleep=sleep)
    await client.start()
    await client.wait_ready(WAIT)
    assert await asyncio.wait_for(recorder.snapshots.get(), WAIT) == []
    twin = random.Random(3)
    assert sleep.delays == [backoff_delay(a, 0.01, 0.2, twin) for a in range(6)]
    for attempt, delay in enumerate(sleep.delays):
        assert 0.01 <= delay <= min(0.2, 0.01 * 2 ** (attempt + 1))
    assert len(set(sleep.delays)) == 6

    fake.drop()  # after a successful login the next delay starts small again
    await sleep.wait_count(7)
    assert sleep.delays[6] == backoff_delay(0, 0.01, 0.2, twin)
    assert sleep.delays[6] <= 0.02
    await client.wait_ready(WAIT)
    await client.stop()
    await fake.stop()


async def test_a_refused_login_is_logged_exposed_and_retried_with_backoff(
    fake_ami: FakeAmi, clients: list[AmiClient], caplog: pytest.LogCaptureFixture
) -> None:
    fake_ami.refuse_logins = 2
    recorder = Recorder()
    sleep = SleepRecorder()
    errors: list[str | None] = []

    async def note_error(delay: float) -> None:
        errors.append(client.last_error)

    sleep.before_return = note_error
    client = make_client(clients, fake_ami.port, recorder, reconnect_min=0.01,
                         reconnect_max=1.0, rng=random.Random(1), sleep=sleep)
    await client.start()
    await client.wait_ready(WAIT)
    assert fake_ami.logins == 3
    assert errors == ["AMI login as 'callcenter' refused: Authentication failed"] * 2
    twin = random.Random(1)
    assert sleep.delays == [backoff_delay(0, 0.01, 1.0, twin), backoff_delay(1, 0.01, 1.0, twin)]
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert refused and all(r.levelno == logging.ERROR for r in refused)
    assert client.last_error is None


async def test_wrong_credentials_never_connect_and_say_why(
    fake_ami: FakeAmi, clients: list[AmiClient]
) -> None:
    sleep = SleepRecorder()
    client = make_client(clients, fake_ami.port, Recorder(), secret="wrong", sleep=sleep,
                         reconnect_min=0.01)
    await client.start()
    await sleep.wait_count(3)
    with pytest.raises(AmiTimeout, match="refused: Authentication failed"):
        await client.wait_ready(0.01)
    with pytest.raises(AmiNotConnected, match="Authentication failed"):
        await client.send({"Action": "Ping"})


async def test_a_snapshot_asterisk_refuses_is_an_error_retried_with_backoff(
    fake_ami: FakeAmi, clients: list[AmiClient], caplog: pytest.LogCaptureFixture
) -> None:
    fake_ami.denied_actions.add("coreshowchannels")
    sleep = SleepRecorder()
    client = make_client(clients, fake_ami.port, Recorder(), sleep=sleep, reconnect_min=0.01)
    await client.start()
    await sleep.wait_count(2)
    assert client.last_error == "AMI CoreShowChannels failed: Permission denied"
    assert not client.ready
    assert any(r.levelno == logging.ERROR and "Permission denied" in r.getMessage()
               for r in caplog.records)


async def test_an_error_answer_ends_even_an_action_expecting_a_list(
    fake_ami: FakeAmi, clients: list[AmiClient]
) -> None:
    client = make_client(clients, fake_ami.port, Recorder())
    await client.start()
    await client.wait_ready(WAIT)
    fake_ami.denied_actions.add("coreshowchannels")
    with pytest.raises(AmiActionError, match="Permission denied"):
        await client.send({"Action": "CoreShowChannels"}, as_list=True)
    with pytest.raises(AmiActionError, match="Permission denied"):
        await client.core_show_channels()


async def test_something_that_is_not_asterisk_is_a_protocol_error(
    fake_ami: FakeAmi, clients: list[AmiClient]
) -> None:
    fake_ami.banner = b"SSH-2.0-OpenSSH_9.2\r\n"
    sleep = SleepRecorder()
    client = make_client(clients, fake_ami.port, Recorder(), sleep=sleep, reconnect_min=0.01)
    await client.start()
    await sleep.wait_count(1)
    assert "not an Asterisk manager" in str(client.last_error)


async def test_on_event_errors_are_logged_with_the_event_and_do_not_stop_delivery(
    fake_ami: FakeAmi, clients: list[AmiClient], caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()

    def on_event(event: AmiEvent) -> None:
        if isinstance(event, Newstate) and event.uniqueid == "bad":
            raise KeyError("unknown call")
        recorder.on_event(event)

    client = make_client(clients, fake_ami.port, recorder)
    client._on_event = on_event  # the callback under test
    await client.start()
    await client.wait_ready(WAIT)
    fake_ami.send_event(channel_event("Newstate", "bad") + channel_event("Newstate", "good"))
    assert await recorder.next_event() == FullyBooted()
    good = await recorder.next_event()
    assert isinstance(good, Newstate) and good.uniqueid == "good"
    failure = next(r for r in caplog.records if "on_event failed" in r.getMessage())
    assert "uniqueid='bad'" in failure.getMessage()
    assert failure.exc_info is not None
    assert client.ready


async def test_a_failing_on_ready_is_logged_and_live_events_still_flow(
    fake_ami: FakeAmi, clients: list[AmiClient], caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()

    async def on_ready(snapshot: list[CoreShowChannel]) -> None:
        raise RuntimeError("reconcile bug")

    client = make_client(clients, fake_ami.port, recorder, on_ready=on_ready)
    await client.start()
    await client.wait_ready(WAIT)
    assert "on_ready failed" in caplog.text
    assert client.last_error == "on_ready failed: RuntimeError('reconcile bug')"
    fake_ami.send_event(channel_event("Newstate", "x"))
    assert await recorder.next_event() == FullyBooted()
    assert isinstance(await recorder.next_event(), Newstate)


async def test_unsafe_actions_never_reach_asterisk(
    fake_ami: FakeAmi, clients: list[AmiClient]
) -> None:
    client = make_client(clients, fake_ami.port, Recorder())
    await client.start()
    await client.wait_ready(WAIT)
    sent_before = len(fake_ami.actions)
    with pytest.raises(AmiValueError):
        await client.send({"Action": "Originate",
                           "Channel": "PJSIP/0611\r\nAction: Command\r\nCommand: core stop now"})
    with pytest.raises(AmiValueError):
        await client.send({"Action": "Setvar", "Variable": "X", "Value": "a\nb"})
    await client.send({"Action": "Ping"})
    assert [a["Action"] for a in fake_ami.actions[sent_before:]] == ["Ping"]


async def test_action_errors_name_the_action(fake_ami: FakeAmi,
                                            clients: list[AmiClient]) -> None:
    client = make_client(clients, fake_ami.port, Recorder())
    await client.start()
    await client.wait_ready(WAIT)
    await client.send({"Action": "Reload", "Module": "app_queue.so"})
    await client.send({"Action": "Reload"})
    with pytest.raises(AmiActionError, match="Reload failed: No such module") as failure:
        await client.send({"Action": "Reload", "Module": "nope.so"})
    assert failure.value.action == "Reload"
    reloads = [a for a in fake_ami.actions if a["Action"] == "Reload"]
    assert [a.get("Module") for a in reloads] == ["app_queue.so", None, "nope.so"]
    response = await client.send({"Action": "Ping"})
    assert not isinstance(response, list) and response["Ping"] == "Pong"
    with pytest.raises(AmiActionError, match="Invalid/unknown command"):
        await client.send({"Action": "NoSuchThing"})


async def test_an_unanswered_action_times_out_and_is_forgotten(
    fake_ami: FakeAmi, clients: list[AmiClient]
) -> None:
    client = make_client(clients, fake_ami.port, Recorder())
    await client.start()
    await client.wait_ready(WAIT)
    with pytest.raises(AmiTimeout, match="Hold: no response"):
        await client.send({"Action": "Hold"}, timeout=0.01)
    assert client.connected
    assert client._protocol is not None and client._protocol.responses == {}


async def test_a_silently_dead_connection_is_noticed_by_ping_and_replaced(
    fake_ami: FakeAmi, clients: list[AmiClient]
) -> None:
    fake_ami.ignored_actions.add("ping")  # Asterisk (or the network) stops answering
    sleep = SleepRecorder()
    recorder = Recorder()
    client = make_client(clients, fake_ami.port, recorder, sleep=sleep, ping_interval=0.01,
                         action_timeout=0.3)
    await client.start()
    await client.wait_ready(WAIT)
    await sleep.wait_count(1)
    assert client.last_error == "AmiConnectionLost: AMI no answer to Ping"
    fake_ami.ignored_actions.discard("ping")
    await client.wait_ready(WAIT)
    assert fake_ami.logins >= 2


async def test_sending_before_connecting_says_so() -> None:
    client = AmiClient("127.0.0.1", 1, "u", "s", lambda e: None)
    with pytest.raises(AmiNotConnected, match=r"not connected to AMI at 127\.0\.0\.1:1"):
        await client.send({"Action": "Ping"})
    with pytest.raises(AmiValueError):  # unsafe values are refused even then
        await client.send({"Action": "Ping\n"})


async def test_stop_ends_a_client_waiting_to_reconnect(clients: list[AmiClient]) -> None:
    fake = FakeAmi()
    await fake.start()
    port = fake.port
    await fake.stop()
    sleep = SleepRecorder()
    parked = asyncio.Event()

    async def park(delay: float) -> None:
        parked.set()
        await asyncio.Event().wait()  # a very long backoff

    sleep.before_return = park
    client = make_client(clients, port, Recorder(), sleep=sleep)
    await client.start()
    await asyncio.wait_for(parked.wait(), WAIT)
    await asyncio.wait_for(client.stop(), WAIT)
    assert not client.connected
    await client.stop()  # twice is harmless
