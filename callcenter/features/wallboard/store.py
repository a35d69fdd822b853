"""Today's calls for the wallboard at start: only the columns its figures need, one query."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.clock import from_datetime, to_datetime
from callcenter.core.records import CallRecord, Direction, Disposition
from callcenter.features.calls.models import CallRow

# A call joins its first queue at most this long after it began (IVR, data dips): bounds the
# query by the indexed start time as well as by the (unindexed) time it joined.
LONGEST_BEFORE_QUEUE_SECONDS = 86400.0


async def queued_since(sessions: async_sessionmaker[AsyncSession], since: float,
                       ) -> list[CallRecord]:
    """Stored calls that joined a queue at or after ``since``, each as a record holding
    what ``core.wallboard.progress_of`` reads (oldest first)."""
    query = (
        select(CallRow.call_id, CallRow.started_at, CallRow.queue, CallRow.queued_at,
               CallRow.overflowed_from, CallRow.agent_answered_at, CallRow.ended_at,
               CallRow.disposition, CallRow.direction, CallRow.callback_of)
        .where(CallRow.started_at >= to_datetime(since - LONGEST_BEFORE_QUEUE_SECONDS),
               CallRow.queued_at >= to_datetime(since), CallRow.queue.is_not(None))
        .order_by(CallRow.queued_at, CallRow.id)
    )
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    return [CallRecord(
        call_id=row.call_id, started_at=from_datetime(row.started_at) or 0.0, queue=row.queue,
        queued_at=from_datetime(row.queued_at), overflowed_from=row.overflowed_from,
        agent_answered_at=from_datetime(
            row.agent_answered_at), ended_at=from_datetime(row.ended_at),
        disposition=None if row.disposition is None else Disposition(row.disposition),
        direction=Direction(row.direction), callback_of=row.callback_of) for row in rows]
