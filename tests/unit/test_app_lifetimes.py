"""The composition root's lifetimes: parts stop in reverse order of start, an error while
stopping one part is reported and the others still stop, and a start that fails half-way
stops what it had started. A real CallCenter on SQLite and real sockets; no Asterisk (its
AMI client keeps retrying in the background, as it would while Asterisk is down)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

import callcenter.app as app_module
from callcenter.app import CallCenter
from callcenter.config import Settings, load_settings
from callcenter.features.calls.recorder import RecordWriter
from tests.support.ports import free_port

STOP_ORDER = ["web", "recording retention", "reconciliation", "campaign dialer", "callbacks",
              "ami", "fastagi", "wallboard", "acd", "agent desk", "recordings", "queue mirror",
              "flows", "data dips", "records", "imports", "database"]


def settings(tmp_path: Path) -> Settings:
    return load_settings(env={
        "CALLCENTER_DATA_DIR": str(tmp_path),
        "CALLCENTER_ASTERISK__MODE": "external",  # nothing of Asterisk's is written
        "CALLCENTER_ASTERISK__AMI_SECRET": "not-used",
        "CALLCENTER_ASTERISK__AMI_PORT": str(free_port()),  # nobody listens there
        "CALLCENTER_SERVICE__AGI_PORT": str(free_port()),
        "CALLCENTER_SERVICE__HTTP_PORT": str(free_port()),
    })


@pytest.fixture
def stopped(monkeypatch) -> list[str]:
    """The names of the parts whose stop ran, in order (the real stops run too)."""
    names: list[str] = []
    register = app_module._stops_with

    def noting(parts: AsyncExitStack, name: str, stop: Callable[[], Awaitable[object]]) -> None:
        async def then_stop() -> object:
            names.append(name)
            return await stop()
        register(parts, name, then_stop)

    monkeypatch.setattr(app_module, "_stops_with", noting)
    return names


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def other_tasks() -> list[str]:
    return sorted(task.get_name() for task in asyncio.all_tasks()
                  if task is not asyncio.current_task())


async def test_an_error_stopping_one_part_is_reported_and_every_other_part_stops(
        tmp_path, monkeypatch, stopped, caplog):
    real_stop = RecordWriter.stop

    async def failing_stop(self: RecordWriter, timeout: float = 5.0) -> None:
        await real_stop(self, timeout)
        raise RuntimeError("the spool's disk is gone")

    monkeypatch.setattr(RecordWriter, "stop", failing_stop)
    center = CallCenter(settings(tmp_path))
    s = center.settings.service
    await center.start()
    assert listening(s.http_port) and listening(center.agi.port)
    with caplog.at_level(logging.ERROR, logger="callcenter.app"), \
            pytest.raises(RuntimeError, match="disk is gone"):
        await center.stop()
    assert "stopping records failed" in caplog.text
    assert stopped == STOP_ORDER  # the reverse of start, the database after the failure
    assert not listening(s.http_port) and not listening(center.agi.port)
    assert other_tasks() == []
    await center.stop()  # nothing left to stop
    assert stopped == STOP_ORDER


async def test_a_start_that_fails_half_way_stops_what_it_had_started(tmp_path, stopped):
    center = CallCenter(settings(tmp_path))
    with socket.socket() as taken:  # the HTTP port is someone else's
        taken.bind(("127.0.0.1", center.settings.service.http_port))
        taken.listen()
        with pytest.raises(OSError):
            await center.start()
    assert stopped == STOP_ORDER
    assert not listening(center.agi.port)
    assert other_tasks() == []
    await center.stop()  # start already stopped everything: no AttributeError, no repeat
    assert stopped == STOP_ORDER
