"""FastAGI under pressure: a session cap, and a per-command deadline for a peer that stops
answering (the handler sees a hangup, so the call's own end-of-call path runs)."""

from __future__ import annotations

import asyncio

import pytest
from test_agi_server import WAIT, FakeAsterisk, StartServer, start_server  # noqa: F401

from callcenter.asterisk.agi import AgiHangup
from callcenter.asterisk.agi_server import AgiSession, CommandTimeouts


def test_each_command_gets_a_deadline_that_fits_what_it_does() -> None:
    timeouts = CommandTimeouts(control=30.0, media=900.0)
    assert timeouts.for_command("ANSWER", ()) == 30.0
    assert timeouts.for_command("SET VARIABLE", ("X", "1")) == 30.0
    assert timeouts.for_command("WAIT FOR DIGIT", (5000,)) == 35.0
    assert timeouts.for_command("WAIT FOR DIGIT", (-1,)) == 900.0
    assert timeouts.for_command("STREAM FILE", ("welcome", "")) == 900.0
    assert timeouts.for_command("GET DATA", ("menu", 4000, 1)) == 904.0
    assert timeouts.for_command("RECORD FILE", ("/tmp/m", "wav", "#", 120_000, "BEEP")) == 1020.0
    assert timeouts.for_command("EXEC", ("Dial", "PJSIP/agent1")) is None  # the conversation


async def test_a_peer_that_does_not_answer_a_command_loses_the_session_and_the_handler_ends(
        start_server: StartServer) -> None:  # noqa: F811
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def ivr(session: AgiSession) -> None:
        await session.answer()
        try:
            await session.set_variable("STEP", "1")  # never answered
        except AgiHangup:
            outcome.set_result(f"hangup: {session.hangup_reason}")
            raise
        outcome.set_result("answered")

    server = await start_server({"ivr": ivr}, timeouts=CommandTimeouts(control=0.2))
    asterisk = await FakeAsterisk.call(server.port)
    await asterisk.expect("ANSWER", reply="200 result=0")
    assert await asterisk.read_command() == ["SET", "VARIABLE", "STEP", "1"]
    assert await asyncio.wait_for(outcome, WAIT) == \
        "hangup: no answer to SET VARIABLE within 0.2 s"
    assert await asterisk.closed_by_server()
    async with asyncio.timeout(WAIT):
        while server.sessions_active:
            await asyncio.sleep(0.01)


async def test_a_command_answered_in_time_keeps_no_deadline_behind(
        start_server: StartServer, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    loop = asyncio.get_running_loop()
    timers: list[tuple[str, asyncio.TimerHandle]] = []
    call_later = loop.call_later

    def recording_call_later(delay: float, callback, *args):  # type: ignore[no-untyped-def]
        handle = call_later(delay, callback, *args)
        timers.append((getattr(callback, "__name__", ""), handle))
        return handle

    monkeypatch.setattr(loop, "call_later", recording_call_later)
    done = asyncio.Event()

    async def ivr(session: AgiSession) -> None:
        for _ in range(3):
            await session.answer()
        await session.set_variable("DONE", "1")
        done.set()
        await session.wait_hangup()

    server = await start_server({"ivr": ivr}, timeouts=CommandTimeouts(control=0.2))
    asterisk = await FakeAsterisk.call(server.port)
    for _ in range(3):
        await asterisk.expect("ANSWER", reply="200 result=0")
    await asterisk.expect("SET", "VARIABLE", "DONE", "1", reply="200 result=1")
    await asyncio.wait_for(done.wait(), WAIT)
    deadlines = [handle for name, handle in timers if name == "_no_answer"]
    assert len(deadlines) == 4
    assert all(handle.cancelled() for handle in deadlines), "a deadline outlived its command"


async def test_beyond_max_sessions_a_connection_is_closed_at_once_and_others_go_on(
        start_server: StartServer) -> None:  # noqa: F811
    release = asyncio.Event()

    async def ivr(session: AgiSession) -> None:
        await session.answer()
        await release.wait()

    server = await start_server({"ivr": ivr}, max_sessions=2)
    first = await FakeAsterisk.call(server.port, uniqueid="1.1")
    second = await FakeAsterisk.call(server.port, uniqueid="1.2")
    await first.expect("ANSWER", reply="200 result=0")
    await second.expect("ANSWER", reply="200 result=0")
    third = await FakeAsterisk.call(server.port, uniqueid="1.3")
    assert await third.closed_by_server()
    assert server.sessions_refused == 1
    release.set()
    async with asyncio.timeout(WAIT):
        while server.sessions_active:
            await asyncio.sleep(0.01)
    fourth = await FakeAsterisk.call(server.port, uniqueid="1.4")
    await fourth.expect("ANSWER", reply="200 result=0")


@pytest.mark.parametrize("max_sessions", [0, -1])
def test_a_cap_below_one_is_refused(max_sessions: int) -> None:
    from callcenter.listener import GuardedListener

    with pytest.raises(ValueError):
        GuardedListener("x", asyncio.Protocol, "127.0.0.1", 0, max_connections=max_sessions,
                        active=lambda: 0)
