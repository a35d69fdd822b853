"""A callback and the call that asked for it, linked in the database, on SQLite and on a real
PostgreSQL: both records name the request, the callback's names the asking call, the request
keeps when its customer joined the line, and one filter finds every call of a request."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.core.clock import VirtualClock
from callcenter.core.records import CallbackRequest, CallRecord, Disposition
from callcenter.features.callbacks.store import CallbackRepository
from callcenter.features.calls.store import CallRepository
from callcenter.store import session_factory

T0 = 1_795_000_000.250_001


@pytest.fixture
def calls(engine: AsyncEngine) -> CallRepository:
    return CallRepository(session_factory(engine), clock=VirtualClock(start=T0))


@pytest.fixture
def callbacks(engine: AsyncEngine) -> CallbackRepository:
    return CallbackRepository(session_factory(engine), clock=VirtualClock(start=T0))


def asking_call(request_id: int | None) -> CallRecord:
    """Queued at T0 + 10, pressed 1 at T0 + 40."""
    return CallRecord(call_id="1795000000.1", started_at=T0, queue="support",
                      queued_at=T0 + 10, ended_at=T0 + 45, wait_seconds=35.0,
                      disposition=Disposition.CALLBACK_REQUESTED,
                      callback_request_id=request_id)


def callback_call(request_id: int, call_id: str = "1795000300.7") -> CallRecord:
    """Its callback 5 minutes later: the customer was put through at T0 + 310."""
    return CallRecord(call_id=call_id, started_at=T0 + 300, queue="support",
                      queued_at=T0 + 10, agent_id="agent1", agent_answered_at=T0 + 310,
                      wait_seconds=300.0, ended_at=T0 + 400, talk_seconds=90.0,
                      disposition=Disposition.ANSWERED, callback_request_id=request_id,
                      callback_of="1795000000.1")


async def test_the_request_and_both_records_read_back_linked(
        calls: CallRepository, callbacks: CallbackRepository) -> None:
    request = await callbacks.add(CallbackRequest(
        call_id="1795000000.1", queue="support", number="5551234", requested_at=T0 + 40,
        flow="virtual-hold", queued_at=T0 + 10))
    assert request.id is not None
    assert await callbacks.get(request.id) == request
    assert request.queued_at == T0 + 10
    for record in (asking_call(request.id), callback_call(request.id)):
        await calls.save(record)
        assert await calls.get(record.call_id) == record
    await calls.save(dataclasses.replace(asking_call(None), call_id="an-unrelated-call"))

    linked, total = await calls.list(callback_request=request.id)
    assert total == 2
    assert [r.call_id for r in linked] == ["1795000300.7", "1795000000.1"]  # newest first
    assert (await calls.list(callback_request=request.id + 1)) == ([], 0)


async def test_a_request_without_its_line_time_reads_back_without_one(
        callbacks: CallbackRepository) -> None:
    request = await callbacks.add(CallbackRequest(
        call_id="ivr-call", queue="support", number="5551234", requested_at=T0, flow="main"))
    assert request.id is not None
    stored = await callbacks.get(request.id)
    assert stored is not None and stored.queued_at is None


@pytest.mark.parametrize("bad", [0, -1, 2**63, True, "7"])
async def test_a_link_that_is_no_request_id_is_refused_naming_the_field(
        calls: CallRepository, bad: object) -> None:
    with pytest.raises(ValueError, match="callback_request_id"):
        await calls.save(dataclasses.replace(asking_call(None),
                                             callback_request_id=bad))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is not a callback request id"):
        await calls.list(callback_request=bad)  # type: ignore[arg-type]
