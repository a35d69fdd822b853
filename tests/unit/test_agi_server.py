"""The FastAGI server over real TCP, with the test playing Asterisk's side of each call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest
from test_agi import asterisk_parse_args

from callcenter.asterisk.agi import (
    AgiCommandError,
    AgiHangup,
    AgiRecordingHangup,
    RecordOutcome,
    parse_response,
    record_file_arguments,
    record_outcome,
)
from callcenter.asterisk.agi_server import AgiHandler, AgiServer, AgiSession

WAIT = 5.0  # a guard against a hung test, never a pause


class FakeAsterisk:
    """Asterisk's end of one FastAGI connection: sends the environment, reads commands as
    res_agi would split them, and answers what the test tells it to."""

    opened: list[FakeAsterisk] = []  # closed after each test

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        FakeAsterisk.opened.append(self)

    @classmethod
    async def call(
        cls, port: int, path: str = "ivr", uniqueid: str = "1732822000.1", channel: str = ""
    ) -> FakeAsterisk:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        channel = channel or f"PJSIP/caller-{uniqueid}"
        writer.write(
            (
                "agi_network: yes\n"
                f"agi_network_script: {path}\n"
                f"agi_request: agi://127.0.0.1:{port}/{path}\n"
                f"agi_channel: {channel}\n"
                f"agi_uniqueid: {uniqueid}\n"
                "agi_callerid: 0612345678\n"
                "agi_extension: 100\n"
                "agi_context: from-callers\n"
                "\n"
            ).encode()
        )
        await writer.drain()
        return cls(reader, writer)

    async def read_command(self) -> list[str]:
        line = await asyncio.wait_for(self.reader.readline(), WAIT)
        if not line:
            raise EOFError("the server closed the connection")
        assert line.endswith(b"\n")
        return asterisk_parse_args(line.decode("utf-8")[:-1])

    async def send(self, *lines: str) -> None:
        self.writer.write("".join(line + "\n" for line in lines).encode())
        await self.writer.drain()

    async def expect(self, *command: str, reply: str) -> None:
        assert await self.read_command() == list(command)
        await self.send(reply)

    async def closed_by_server(self) -> bool:
        """True when the server closed the connection without sending anything more.
        (Closing with our unread late answer in its buffer makes the kernel send a reset.)"""
        try:
            rest = await asyncio.wait_for(self.reader.read(), WAIT)
        except ConnectionResetError:
            return True
        return rest == b""

    def close(self) -> None:
        self.writer.close()

    @classmethod
    async def close_all(cls) -> None:
        while cls.opened:
            fake = cls.opened.pop()
            fake.writer.close()
            with contextlib.suppress(ConnectionError):
                await fake.writer.wait_closed()


StartServer = Callable[..., Awaitable[AgiServer]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    servers: list[AgiServer] = []

    async def start(handler: AgiHandler | Mapping[str, AgiHandler], **options: Any) -> AgiServer:
        server = AgiServer(handler, "127.0.0.1", 0, **options)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()
    await FakeAsterisk.close_all()


async def test_a_call_to_a_routed_path_runs_its_handler_with_typed_commands(
    start_server: StartServer,
) -> None:
    outcome: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()

    async def ivr(session: AgiSession) -> None:
        await session.answer()
        pressed = await session.stream_file("welcome", "123")
        account = await session.get_data("enter-account", 3000, 4)
        nothing = await session.get_data("enter-account", 3000, 4)
        waited = await session.wait_for_digit(2000)
        city = await session.get_variable("CITY")
        missing = await session.get_variable("NOPE")
        await session.set_variable("IVR_CHOICE", 'a "quoted" \\ value')
        await session.set_music(True)
        await session.set_music(False, "jazz")
        exec_result = await session.exec("Playback", "beep&beep")
        await session.verbose("caller is in the IVR", 3)
        outcome.set_result({
            "env": (session.env.path, session.env.uniqueid),
            "pressed": pressed, "account": account, "nothing": nothing, "waited": waited,
            "city": city, "missing": missing, "exec": exec_result,
        })

    server = await start_server({"ivr": ivr})
    assert server.port != 0 and server.is_serving
    asterisk = await FakeAsterisk.call(server.port, "ivr", uniqueid="1732822000.5")
    await asterisk.expect("ANSWER", reply="200 result=0")
    await asterisk.expect("STREAM", "FILE", "welcome", "123", reply="200 result=50 endpos=4000")
    await asterisk.expect("GET", "DATA", "enter-account", "3000", "4", reply="200 result=0042")
    await asterisk.expect("GET", "DATA", "enter-account", "3000", "4",
                          reply="200 result= (timeout)")
    await asterisk.expect("WAIT", "FOR", "DIGIT", "2000", reply="200 result=0")
    await asterisk.expect("GET", "VARIABLE", "CITY", reply="200 result=1 (Saint-Étienne (42))")
    await asterisk.expect("GET", "VARIABLE", "NOPE", reply="200 result=0")
    await asterisk.expect("SET", "VARIABLE", "IVR_CHOICE", 'a "quoted" \\ value',
                          reply="200 result=1")
    await asterisk.expect("SET", "MUSIC", "on", "default", reply="200 result=0")
    await asterisk.expect("SET", "MUSIC", "off", "jazz", reply="200 result=0")
    await asterisk.expect("EXEC", "Playback", "beep&beep", reply="200 result=0")
    await asterisk.expect("VERBOSE", "caller is in the IVR", "3", reply="200 result=1")
    assert await asterisk.closed_by_server()
    assert await asyncio.wait_for(outcome, WAIT) == {
        "env": ("ivr", "1732822000.5"),
        "pressed": "2", "account": "0042", "nothing": "", "waited": None,
        "city": "Saint-Étienne (42)", "missing": None, "exec": 0,
    }


async def test_an_unknown_path_is_logged_and_closed_without_a_command(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def ivr(session: AgiSession) -> None:
        raise AssertionError("must not run")

    server = await start_server({"ivr": ivr})
    asterisk = await FakeAsterisk.call(server.port, "nowhere", uniqueid="1732822000.9")
    assert await asterisk.closed_by_server()
    assert "no route for path 'nowhere'" in caplog.text
    assert "1732822000.9" in caplog.text
    assert "known: ivr" in caplog.text


async def test_a_single_handler_serves_every_path(start_server: StartServer) -> None:
    paths: list[str] = []

    async def anything(session: AgiSession) -> None:
        paths.append(session.env.path)

    server = await start_server(anything)
    for path in ("ivr", "queue"):
        assert await (await FakeAsterisk.call(server.port, path)).closed_by_server()
    assert paths == ["ivr", "queue"]


async def test_hangup_during_a_command_raises_at_once_and_later_commands_are_not_sent(
    start_server: StartServer,
) -> None:
    seen: asyncio.Future[tuple[object, ...]] = asyncio.get_running_loop().create_future()

    async def ivr(session: AgiSession) -> None:
        try:
            await session.get_data("enter-account", 5000, 4)
        except AgiHangup:
            hung_up_flags = (session.hung_up, session.hangup_event.is_set())
            try:
                await session.verbose("after the hangup")
            except AgiHangup as exc:
                seen.set_result((*hung_up_flags, str(exc)))
                raise

    server = await start_server({"ivr": ivr})
    asterisk = await FakeAsterisk.call(server.port)
    assert await asterisk.read_command() == ["GET", "DATA", "enter-account", "5000", "4"]
    await asterisk.send("HANGUP")  # before the response, as Asterisk may do
    hung_up, event_set, message = await asyncio.wait_for(seen, WAIT)
    assert hung_up and event_set
    # Refused before sending: VERBOSE never reaches the wire.
    assert str(message).startswith("VERBOSE: the channel has hung up (HANGUP from Asterisk)")
    await asterisk.send("200 result=-1")  # the late answer is accepted and dropped
    assert await asterisk.closed_by_server()


async def test_a_hangup_between_commands_is_noticed_while_the_handler_waits(
    start_server: StartServer,
) -> None:
    waited: asyncio.Future[tuple[bool, bool]] = asyncio.get_running_loop().create_future()
    waiting = asyncio.Event()

    async def ivr(session: AgiSession) -> None:
        await session.answer()
        short = await session.wait_hangup(timeout=0)
        waiting.set()
        waited.set_result((short, await session.wait_hangup(timeout=WAIT)))

    server = await start_server({"ivr": ivr})
    asterisk = await FakeAsterisk.call(server.port)
    await asterisk.expect("ANSWER", reply="200 result=0")
    await asyncio.wait_for(waiting.wait(), WAIT)
    await asterisk.send("HANGUP")
    assert await asyncio.wait_for(waited, WAIT) == (False, True)
    assert await asterisk.closed_by_server()


async def test_the_socket_closing_mid_command_is_a_hangup(start_server: StartServer) -> None:
    caught: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def ivr(session: AgiSession) -> None:
        try:
            await session.stream_file("welcome")
        except AgiHangup as exc:
            caught.set_result(session.hangup_reason)
            raise exc

    server = await start_server({"ivr": ivr})
    asterisk = await FakeAsterisk.call(server.port)
    assert await asterisk.read_command() == ["STREAM", "FILE", "welcome", ""]
    asterisk.close()
    assert "closed the connection" in await asyncio.wait_for(caught, WAIT)


async def test_result_minus_one_on_a_hung_up_channel_is_a_hangup(
    start_server: StartServer,
) -> None:
    caught: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def ivr(session: AgiSession) -> None:
        try:
            await session.stream_file("welcome", "#")
        except BaseException as exc:
            caught.set_result(exc)

    server = await start_server({"ivr": ivr})
    asterisk = await FakeAsterisk.call(server.port)
    await asterisk.expect("STREAM", "FILE", "welcome", "#", reply="200 result=-1 endpos=960")
    # Asterisk notices the hangup before it reads the next command, as res_agi does.
    assert await asterisk.read_command() == ["CHANNEL", "STATUS"]
    await asterisk.send("HANGUP", "511 Command Not Permitted on a dead channel")
    assert isinstance(await asyncio.wait_for(caught, WAIT), AgiHangup)


async def test_result_minus_one_on_a_live_channel_is_a_command_error_not_a_hangup(
    start_server: StartServer,
) -> None:
    """STREAM FILE of a missing file answers -1 too: the caller must not be dropped."""
    outcome: asyncio.Future[tuple[object, ...]] = asyncio.get_running_loop().create_future()

    async def ivr(session: AgiSession) -> None:
        try:
            await session.stream_file("no-such-prompt")
        except AgiCommandError as exc:
            digits = await session.get_data("beep", 1000, 1)
            outcome.set_result((exc.command, exc.reason, session.hung_up, digits))

    server = await start_server({"ivr": ivr})
    asterisk = await FakeAsterisk.call(server.port)
    await asterisk.expect("STREAM", "FILE", "no-such-prompt", "", reply="200 result=-1 endpos=0")
    await asterisk.expect("CHANNEL", "STATUS", reply="200 result=6")
    await asterisk.expect("GET", "DATA", "beep", "1000", "1", reply="200 result=7")
    command, reason, hung_up, digits = await asyncio.wait_for(outcome, WAIT)
    assert command == "STREAM FILE"
    assert "channel is up" in str(reason)
    assert hung_up is False
    assert digits == "7"


@pytest.mark.parametrize(
    ("replies", "expected"),
    [
        (["510 Invalid or unknown command"], "unknown command (510 Invalid or unknown command)"),
        (
            [
                "520-Invalid command syntax.  Proper usage follows:",
                " Usage: EXEC <application> <options>",
                "520 End of proper usage.",
            ],
            "invalid syntax (520 Invalid command syntax.",
        ),
        (["503 result=-2 Memory allocation failure"], "failed (503"),
        (["200 result=-2"], "no dialplan application 'Nope'"),
    ],
)
async def test_refused_commands_raise_a_command_error_naming_the_command(
    start_server: StartServer, replies: list[str], expected: str
) -> None:
    caught: asyncio.Future[AgiCommandError] = asyncio.get_running_loop().create_future()

    async def ivr(session: AgiSession) -> None:
        try:
            await session.exec("Nope", "x")
        except AgiCommandError as exc:
            caught.set_result(exc)

    server = await start_server({"ivr": ivr})
    asterisk = await FakeAsterisk.call(server.port)
    assert await asterisk.read_command() == ["EXEC", "Nope", "x"]
    await asterisk.send(*replies)
    error = await asyncio.wait_for(caught, WAIT)
    assert error.command == "EXEC"
    assert expected in str(error)


async def test_511_is_a_hangup(start_server: StartServer) -> None:
    caught: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def ivr(session: AgiSession) -> None:
        try:
            await session.answer()
        except AgiHangup:
            caught.set_result(session.hung_up)

    server = await start_server({"ivr": ivr})
    asterisk = await FakeAsterisk.call(server.port)
    await asterisk.expect(
        "ANSWER", reply="511 Command Not Permitted on a dead channel or intercept routine"
    )
    assert await asyncio.wait_for(caught, WAIT) is True


async def test_a_cancelled_command_does_not_steal_the_next_commands_response(
    start_server: StartServer,
) -> None:
    outcome: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
    command_seen = asyncio.Event()

    async def ivr(session: AgiSession) -> None:
        pending = asyncio.create_task(session.get_data("menu", 10000, 1))
        await command_seen.wait()
        pending.cancel()
        outcome.set_result(await session.get_variable("CHOICE"))

    server = await start_server({"ivr": ivr})
    asterisk = await FakeAsterisk.call(server.port)
    assert await asterisk.read_command() == ["GET", "DATA", "menu", "10000", "1"]
    command_seen.set()
    assert await asterisk.read_command() == ["GET", "VARIABLE", "CHOICE"]
    await asterisk.send("200 result=5", "200 result=1 (right)")
    assert await asyncio.wait_for(outcome, WAIT) == "right"


async def test_an_unsafe_argument_raises_before_anything_is_sent(
    start_server: StartServer,
) -> None:
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def ivr(session: AgiSession) -> None:
        try:
            await session.set_variable("NAME", 'x"\nEXEC System "rm -rf /')
        except ValueError as exc:
            outcome.set_result(str(exc))

    server = await start_server({"ivr": ivr})
    asterisk = await FakeAsterisk.call(server.port)
    assert "line break" in await asyncio.wait_for(outcome, WAIT)
    assert await asterisk.closed_by_server()


async def test_more_than_a_hundred_calls_are_served_at_once_each_with_its_own_state(
    start_server: StartServer,
) -> None:
    calls = 120
    all_started = asyncio.Event()
    started = 0
    answers: dict[str, tuple[str | None, str]] = {}

    async def ivr(session: AgiSession) -> None:
        nonlocal started
        started += 1
        if started == calls:
            all_started.set()
        await all_started.wait()
        await session.answer()
        name = await session.get_variable("CALLER_NAME")
        digits = await session.get_data("menu", 3000, 3)
        answers[session.env.uniqueid] = (name, digits)

    server = await start_server({"ivr": ivr})

    async def caller(index: int) -> None:
        asterisk = await FakeAsterisk.call(server.port, uniqueid=f"1732822000.{index}")
        await asterisk.expect("ANSWER", reply="200 result=0")
        await asterisk.expect("GET", "VARIABLE", "CALLER_NAME", reply=f"200 result=1 (c{index})")
        await asterisk.expect("GET", "DATA", "menu", "3000", "3", reply=f"200 result={index}")
        assert await asterisk.closed_by_server()

    tasks = [asyncio.create_task(caller(i)) for i in range(calls)]
    await asyncio.wait_for(all_started.wait(), WAIT)
    assert server.sessions_active == calls
    await asyncio.wait_for(asyncio.gather(*tasks), WAIT * 4)
    assert answers == {f"1732822000.{i}": (f"c{i}", str(i)) for i in range(calls)}
    assert server.sessions_active == 0


async def test_a_handler_that_raises_is_logged_with_its_call_and_harms_no_other_call(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    finished: list[str] = []

    async def boom(session: AgiSession) -> None:
        raise RuntimeError("bug in the flow")

    async def ivr(session: AgiSession) -> None:
        await session.answer()
        finished.append(session.env.uniqueid)

    server = await start_server({"boom": boom, "ivr": ivr})
    broken = await FakeAsterisk.call(server.port, "boom", uniqueid="1.1", channel="PJSIP/b-01")
    healthy = await FakeAsterisk.call(server.port, "ivr", uniqueid="2.2")
    assert await broken.closed_by_server()
    await healthy.expect("ANSWER", reply="200 result=0")
    assert await healthy.closed_by_server()
    assert finished == ["2.2"]
    assert server.is_serving
    failure = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert "PJSIP/b-01 (1.1) /boom" in failure.getMessage()
    assert failure.exc_info is not None and "bug in the flow" in str(failure.exc_info[1])


async def test_garbage_or_silence_instead_of_an_environment_is_dropped(
    start_server: StartServer,
) -> None:
    async def ivr(session: AgiSession) -> None:
        raise AssertionError("must not run")

    server = await start_server({"ivr": ivr}, environment_timeout=0.05)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await asyncio.wait_for(reader.read(), WAIT) == b""
    silent_reader, silent_writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert await asyncio.wait_for(silent_reader.read(), WAIT) == b""
    writer.close()
    silent_writer.close()
    assert server.sessions_active == 0


async def test_stop_closes_the_listener_and_cancels_running_calls() -> None:
    cancelled = asyncio.Event()
    running = asyncio.Event()

    async def ivr(session: AgiSession) -> None:
        running.set()
        try:
            await session.wait_hangup()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = AgiServer({"ivr": ivr}, port=0)
    await server.start()
    port = server.port
    asterisk = await FakeAsterisk.call(port)
    await asyncio.wait_for(running.wait(), WAIT)
    await server.stop()
    assert cancelled.is_set()
    assert not server.is_serving
    assert server.sessions_active == 0
    assert await asterisk.closed_by_server()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    await FakeAsterisk.close_all()


async def test_hangup_command_is_idempotent_after_the_channel_is_gone(
    start_server: StartServer,
) -> None:
    done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def ivr(session: AgiSession) -> None:
        await session.hangup()
        await session.wait_hangup(WAIT)
        await session.hangup()  # nothing is sent: the channel is already gone
        done.set_result(session.hung_up)

    server = await start_server({"ivr": ivr})
    asterisk = await FakeAsterisk.call(server.port)
    await asterisk.expect("HANGUP", reply="200 result=1")
    await asterisk.send("HANGUP")
    assert await asyncio.wait_for(done, WAIT) is True
    assert await asterisk.closed_by_server()


# --------------------------------------------------------------------------- RECORD FILE


async def record_in_a_call(
    start_server: StartServer, **kwargs: Any
) -> tuple[FakeAsterisk, asyncio.Future[object]]:
    """A call whose handler records one message; the future holds its outcome or error."""
    outcome: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    async def voicemail(session: AgiSession) -> None:
        try:
            outcome.set_result(await session.record_file(**kwargs))
        except Exception as exc:
            outcome.set_result(exc)

    server = await start_server({"ivr": voicemail})
    return await FakeAsterisk.call(server.port), outcome


async def test_a_message_ended_by_the_pound_key_reports_the_key_and_its_length(
    start_server: StartServer,
) -> None:
    asterisk, outcome = await record_in_a_call(
        start_server, path="voicemail/1732822000.1", timeout_ms=60000, silence_seconds=3
    )
    # Split as res_agi's parse_args() splits it: the arguments handle_recordfile reads.
    await asterisk.expect("RECORD", "FILE", "voicemail/1732822000.1", "wav", "#", "60000",
                          "BEEP", "s=3", reply="200 result=35 (dtmf) endpos=24160")
    assert await asyncio.wait_for(outcome, WAIT) == RecordOutcome("key", "#", 24160)
    assert await asterisk.closed_by_server()


async def test_a_message_that_reaches_the_time_limit_ends_by_timeout(
    start_server: StartServer,
) -> None:
    asterisk, outcome = await record_in_a_call(
        start_server, path="/var/spool/callcenter/m1", fmt="gsm", escape_digits="",
        timeout_ms=5000, beep=False,
    )
    await asterisk.expect("RECORD", "FILE", "/var/spool/callcenter/m1", "gsm", "", "5000",
                          reply="200 result=0 (timeout) endpos=40000")
    assert await asyncio.wait_for(outcome, WAIT) == RecordOutcome("timeout", None, 40000)


@pytest.mark.parametrize(
    ("timeout_ms", "reply", "ended_by"),
    [
        # Asterisk's result is the time left of the limit when it stopped: seconds left
        # mean the silence ended it ...
        (60000, "200 result=41230 (timeout) endpos=150400", "silence"),
        # ... nothing left means the limit did, silence detection or not ...
        (60000, "200 result=1 (timeout) endpos=480000", "timeout"),
        # ... and with no limit only the silence can end it (Asterisk answers 0 then).
        (-1, "200 result=0 (timeout) endpos=96000", "silence"),
    ],
)
async def test_with_silence_detection_the_time_left_tells_silence_from_the_limit(
    start_server: StartServer, timeout_ms: int, reply: str, ended_by: str
) -> None:
    asterisk, outcome = await record_in_a_call(
        start_server, path="msg", timeout_ms=timeout_ms, silence_seconds=2
    )
    assert (await asterisk.read_command())[5:] == [str(timeout_ms), "BEEP", "s=2"]
    await asterisk.send(reply)
    result = await asyncio.wait_for(outcome, WAIT)
    assert isinstance(result, RecordOutcome)
    assert result.ended_by == ended_by and result.digit is None


async def test_a_key_pressed_during_the_beep_ends_it_before_anything_is_recorded(
    start_server: StartServer,
) -> None:
    asterisk, outcome = await record_in_a_call(start_server, path="msg", timeout_ms=9000)
    await asterisk.expect("RECORD", "FILE", "msg", "wav", "#", "9000", "BEEP",
                          reply="200 result=35 (randomerror) endpos=0")
    assert await asyncio.wait_for(outcome, WAIT) == RecordOutcome("key", "#", 0)


async def test_a_caller_who_hangs_up_while_recording_raises_a_hangup_that_keeps_the_length(
    start_server: StartServer,
) -> None:
    asterisk, outcome = await record_in_a_call(start_server, path="msg", timeout_ms=60000)
    assert (await asterisk.read_command())[:3] == ["RECORD", "FILE", "msg"]
    await asterisk.send("200 result=-1 (hangup) endpos=32000")
    error = await asyncio.wait_for(outcome, WAIT)
    assert isinstance(error, AgiRecordingHangup) and isinstance(error, AgiHangup)
    assert error.outcome == RecordOutcome("hangup", None, 32000)
    # A hangup Asterisk names needs no CHANNEL STATUS: the handler ends, the call closes.
    assert await asterisk.closed_by_server()


async def test_a_hangup_notice_before_the_answer_still_gives_the_recorded_length(
    start_server: StartServer,
) -> None:
    asterisk, outcome = await record_in_a_call(start_server, path="msg", timeout_ms=60000)
    await asterisk.read_command()
    await asterisk.send("HANGUP")
    await asterisk.send("200 result=-1 (hangup) endpos=16000")
    error = await asyncio.wait_for(outcome, WAIT)
    assert isinstance(error, AgiRecordingHangup)
    assert error.outcome.endpos == 16000


async def test_a_hangup_notice_then_a_closed_socket_still_ends_the_recording_as_a_hangup(
    start_server: StartServer,
) -> None:
    asterisk, outcome = await record_in_a_call(start_server, path="msg", timeout_ms=60000)
    await asterisk.read_command()
    await asterisk.send("HANGUP")
    asterisk.close()
    error = await asyncio.wait_for(outcome, WAIT)
    assert type(error) is AgiHangup
    assert "closed the connection" in str(error)


@pytest.mark.parametrize(
    ("status", "expected"), [("200 result=6", AgiCommandError), ("511 dead", AgiRecordingHangup)]
)
async def test_waiting_for_audio_failing_is_a_hangup_only_when_the_channel_is_gone(
    start_server: StartServer, status: str, expected: type[Exception]
) -> None:
    asterisk, outcome = await record_in_a_call(start_server, path="msg", timeout_ms=60000)
    await asterisk.read_command()
    await asterisk.send("200 result=-1 (waitfor) endpos=800")
    await asterisk.expect("CHANNEL", "STATUS", reply=status)
    assert type(await asyncio.wait_for(outcome, WAIT)) is expected


async def test_a_file_asterisk_cannot_create_is_a_command_error(
    start_server: StartServer,
) -> None:
    asterisk, outcome = await record_in_a_call(start_server, path="/nowhere/msg", timeout_ms=1000)
    await asterisk.read_command()
    await asterisk.send("200 result=-1 (writefile)")
    error = await asyncio.wait_for(outcome, WAIT)
    assert isinstance(error, AgiCommandError)
    assert error.command == "RECORD FILE" and "could not create the file" in str(error)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "my message"}, "has a space or line break at position 2"),
        ({"path": "msg\nEXEC System reboot"}, "has a space or line break at position 3"),
        ({"path": 'msg"x'}, "has a quote or backslash at position 3"),
        ({"path": "it's"}, "has a quote or backslash at position 2"),
        ({"path": ""}, "is empty"),
        ({"path": "msg", "fmt": "wav x"}, "the format 'wav x'"),
        ({"path": "msg", "escape_digits": "#x"}, "holds 'x'"),
        ({"path": "msg", "timeout_ms": 0}, "timeout_ms 0 must be a positive number"),
        ({"path": "msg", "silence_seconds": 0}, "silence_seconds 0 must be a whole number"),
    ],
)
async def test_bad_recording_arguments_raise_a_value_error_before_anything_is_sent(
    start_server: StartServer, kwargs: dict[str, Any], message: str
) -> None:
    asterisk, outcome = await record_in_a_call(start_server, **{"timeout_ms": 5000, **kwargs})
    error = await asyncio.wait_for(outcome, WAIT)
    assert isinstance(error, ValueError)
    assert str(error).startswith("RECORD FILE: ") and message in str(error)
    assert await asterisk.closed_by_server()  # no command reached the wire


def test_every_answer_shape_of_record_file_is_read_or_refused() -> None:
    def outcome(raw: str, timeout_ms: int = 10000, silence: bool = False) -> RecordOutcome:
        return record_outcome(parse_response(raw), timeout_ms=timeout_ms,
                              silence_detection=silence)

    assert outcome("200 result=42 (dtmf) endpos=8000") == RecordOutcome("key", "*", 8000)
    assert outcome("200 result=5000 (timeout) endpos=1") == RecordOutcome("timeout", None, 1)
    assert outcome("200 result=-1 (randomerror) endpos=0").ended_by == "hangup"
    with pytest.raises(AgiCommandError, match="not a key code"):
        outcome("200 result=120 (dtmf) endpos=8000")  # 'x' is no key
    with pytest.raises(AgiCommandError, match="unexpected answer"):
        outcome("200 result=1")
    assert record_file_arguments("m", "sln16", "0123456789*#ABCD", -1, False, None) == (
        "m", "sln16", "0123456789*#ABCD", -1
    )


# --------------------------------------------------------------------------- connections


async def test_a_connection_that_closes_before_its_environment_is_logged_and_forgotten(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def ivr(session: AgiSession) -> None:
        raise AssertionError("must not run")

    server = await start_server({"ivr": ivr})
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network: yes\nagi_request: agi://127.0.0.1/ivr\n")
    await writer.drain()
    writer.close()
    for _ in range(100):  # the server hears the close on one of its next loop turns
        if server.sessions_active == 0 and "no valid environment" in caplog.text:
            break
        await asyncio.sleep(0)
    assert server.sessions_active == 0
    assert "closed before the AGI environment ended" in caplog.text


async def test_stop_also_closes_connections_still_sending_their_environment() -> None:
    server = AgiServer({}, port=0)
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network: yes\n")
    await writer.drain()
    for _ in range(100):
        if server.sessions_active:
            break
        await asyncio.sleep(0)
    assert server.sessions_active == 1
    await server.stop()
    assert server.sessions_active == 0
    assert await FakeAsterisk(reader, writer).closed_by_server()
