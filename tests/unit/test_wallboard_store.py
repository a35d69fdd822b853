"""Today's calls read back for the wallboard at start, on SQLite and PostgreSQL: the calls
that joined a queue since the day began (also those that began the day before), and what
``progress_of`` needs of each."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.records import CallRecord, Direction, Disposition
from callcenter.core.wallboard import CallProgress, progress_of
from callcenter.features.calls.store import CallRepository
from callcenter.features.wallboard.store import queued_since

DAY_START = 1_795_046_400.0  # 2026-11-19T00:00:00Z


async def test_the_calls_that_joined_a_queue_since_the_day_began_come_back(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    calls = CallRepository(sessions)
    for record in [
        CallRecord("before", started_at=DAY_START - 100, queue="sales",
                   queued_at=DAY_START - 10, ended_at=DAY_START + 20,
                   disposition=Disposition.ABANDONED_IN_QUEUE),
        CallRecord("across", started_at=DAY_START - 100, queue="sales",
                   queued_at=DAY_START + 5, agent_answered_at=DAY_START + 12.5,
                   ended_at=DAY_START + 300, disposition=Disposition.ANSWERED),
        CallRecord("gave-up", started_at=DAY_START + 50, queue="support",
                   queued_at=DAY_START + 60, ended_at=DAY_START + 90,
                   disposition=Disposition.ABANDONED_IN_QUEUE, overflowed_from="sales"),
        CallRecord("waiting", started_at=DAY_START + 70, queue="sales",
                   queued_at=DAY_START + 80),
        CallRecord("ivr-only", started_at=DAY_START + 70, ended_at=DAY_START + 75,
                   disposition=Disposition.COMPLETED_IN_IVR),
        CallRecord("dialer", started_at=DAY_START + 70, queue="sales",
                   queued_at=DAY_START + 71, direction=Direction.OUTBOUND),
    ]:
        await calls.save(record)
    records = await queued_since(sessions, DAY_START)
    assert [r.call_id for r in records] == ["across", "gave-up", "dialer", "waiting"]
    assert [progress_of(r) for r in records] == [
        CallProgress("across", "sales", DAY_START + 5, answered_after=7.5),
        # Entered sales, overflowed to support: counted in sales, as the reports count it.
        CallProgress("gave-up", "sales", DAY_START + 60, abandoned_after=30.0),
        None,  # the dialer's calls are not the queue's offered calls
        CallProgress("waiting", "sales", DAY_START + 80),
    ]
