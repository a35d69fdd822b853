"""A call's holds in the database (SQLite and PostgreSQL): who held and when, read back
exactly, replaced on a later save, and a bad hold refused naming the field (nothing stored)."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.core.records import (
    AgentAttempt,
    AttemptOutcome,
    CallRecord,
    Disposition,
    HangupBy,
    Hold,
    HoldBy,
)
from callcenter.features.calls.models import HoldRow
from callcenter.features.calls.schemas import record_json
from callcenter.features.calls.store import CallRepository
from tests.support.store import count_rows

T0 = 1_795_000_000.0


def held_call() -> CallRecord:
    """agent1 talked from 6 s to 40 s, held the caller 10-15.5 s; the caller's phone held
    20-22 s."""
    return CallRecord(
        call_id="1795000000.9", started_at=T0, queue="support", queued_at=T0 + 4,
        agent_id="agent1", agent_answered_at=T0 + 6, talk_seconds=34, wait_seconds=2,
        ended_at=T0 + 40, hangup_by=HangupBy.CALLER, disposition=Disposition.ANSWERED,
        attempts=[AgentAttempt("agent1", T0 + 4, T0 + 40, AttemptOutcome.ANSWERED, T0 + 6, 34)],
        holds=[Hold(HoldBy.AGENT, T0 + 10, T0 + 15.5, "agent1"),
               Hold(HoldBy.CALLER, T0 + 20, T0 + 22)],
    )


@pytest.fixture
def repository(sessions: async_sessionmaker[AsyncSession]) -> CallRepository:
    return CallRepository(sessions)


async def test_a_held_call_reads_back_hold_by_hold(repository: CallRepository,
                                                   engine: AsyncEngine) -> None:
    record = held_call()
    await repository.save(record)
    assert await repository.get(record.call_id) == record

    still_held = dataclasses.replace(record, ended_at=None, holds=[
        Hold(HoldBy.AGENT, T0 + 10, None, "agent1")])
    await repository.save(still_held)
    assert await repository.get(record.call_id) == still_held
    assert await count_rows(engine, HoldRow) == 1


@pytest.mark.parametrize(("hold", "error"), [
    (Hold("nobody", T0 + 1, T0 + 2), r"holds\[0\]: held_by: 'nobody' is not one of"),  # type: ignore[arg-type]
    (Hold(HoldBy.AGENT, T0 + 1, T0 + 2), r"holds\[0\]: an agent's hold names the agent"),
    (Hold(HoldBy.CALLER, T0 + 1, T0 + 2, "agent1"), r"holds\[0\]: an agent's hold names"),
    (Hold(HoldBy.CALLER, T0 + 3, T0 + 2), r"holds\[0\]: ended_at is before started_at"),
])
async def test_a_bad_hold_is_refused_naming_the_field_and_nothing_is_stored(
        repository: CallRepository, hold: Hold, error: str) -> None:
    record = dataclasses.replace(held_call(), holds=[hold])
    with pytest.raises(ValueError, match=error):
        await repository.save(record)
    assert await repository.get(record.call_id) is None


def test_the_record_json_of_a_held_call_matches_the_document() -> None:
    from tests.unit.test_openapi import check_against

    body = record_json(held_call())
    check_against({"$ref": "#/components/schemas/Call"}, body)
    assert body["holds"] == [
        {"held_by": "agent", "agent_id": "agent1", "started_at": "2026-11-18T11:06:50Z",
         "ended_at": "2026-11-18T11:06:55.500000Z"},
        {"held_by": "caller", "agent_id": None, "started_at": "2026-11-18T11:07:00Z",
         "ended_at": "2026-11-18T11:07:02Z"}]
