"""A transferred call's record in the database (SQLite and PostgreSQL): each agent leg with
its answer and talk, each transfer with how it ended, read back exactly; fewer transfers on a
later save replace the stored ones."""

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
    Transfer,
    TransferMode,
    TransferOutcome,
)
from callcenter.features.calls.models import TransferRow
from callcenter.features.calls.schemas import record_json
from callcenter.features.calls.store import CallRepository
from tests.support.store import count_rows

T0 = 1_795_000_000.0


def transferred_call() -> CallRecord:
    """agent1 answered after 2 s in support and talked 10.5 s; a blind transfer to agent3 was
    refused (unreachable), one to sales completed: agent2 answered and talked 30 s."""
    return CallRecord(
        call_id="1795000000.7", started_at=T0, queue="support", queued_at=T0 + 4,
        agent_id="agent1", agent_answered_at=T0 + 6, talk_seconds=10.5, wait_seconds=2,
        ended_at=T0 + 47.5, hangup_by=HangupBy.CALLER, disposition=Disposition.ANSWERED,
        attempts=[
            AgentAttempt("agent1", T0 + 4, T0 + 16.5, AttemptOutcome.ANSWERED, T0 + 6, 10.5),
            AgentAttempt("agent2", T0 + 17, T0 + 47.5, AttemptOutcome.ANSWERED, T0 + 17.5, 30),
        ],
        transfers=[
            Transfer(TransferMode.BLIND, "agent1", T0 + 15, to_agent="agent3",
                     outcome=TransferOutcome.REFUSED, ended_at=T0 + 15,
                     reason="agent 'agent3' has no reachable phone (not registered)"),
            Transfer(TransferMode.BLIND, "agent1", T0 + 16.25, to_queue="sales",
                     outcome=TransferOutcome.COMPLETED, ended_at=T0 + 17.5),
        ],
    )


@pytest.fixture
def repository(sessions: async_sessionmaker[AsyncSession]) -> CallRepository:
    return CallRepository(sessions)


async def test_a_transferred_call_reads_back_leg_by_leg_and_transfer_by_transfer(
        repository: CallRepository, engine: AsyncEngine) -> None:
    record = transferred_call()
    await repository.save(record)
    assert await repository.get(record.call_id) == record

    pending = dataclasses.replace(record, transfers=[dataclasses.replace(
        record.transfers[1], outcome=TransferOutcome.PENDING, ended_at=None)])
    await repository.save(pending)
    assert await repository.get(record.call_id) == pending
    assert await count_rows(engine, TransferRow) == 1


async def test_a_transfer_with_an_unknown_outcome_is_refused_naming_the_field(
        repository: CallRepository) -> None:
    record = transferred_call()
    record.transfers[0].outcome = "lost"  # type: ignore[assignment]
    with pytest.raises(ValueError, match=r"transfers\[0\]: outcome: 'lost' is not one of"):
        await repository.save(record)
    assert await repository.get(record.call_id) is None


def test_the_record_json_of_a_transferred_call_matches_the_document() -> None:
    from tests.unit.test_openapi import check_against

    body = record_json(transferred_call())
    check_against({"$ref": "#/components/schemas/Call"}, body)
    assert body["attempts"][0] == {
        "agent_id": "agent1", "started_at": "2026-11-18T11:06:44Z",
        "ended_at": "2026-11-18T11:06:56.500000Z", "outcome": "answered",
        "answered_at": "2026-11-18T11:06:46Z", "talk_seconds": 10.5}
    assert body["transfers"][1] == {
        "mode": "blind", "from_agent": "agent1", "requested_at": "2026-11-18T11:06:56.250000Z",
        "to_agent": None, "to_queue": "sales", "outcome": "completed",
        "ended_at": "2026-11-18T11:06:57.500000Z", "reason": None}
