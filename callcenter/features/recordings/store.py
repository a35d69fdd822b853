"""Call recording rows in and out of the database (models.py beside this module).

A row is made when a policy covers a call (``decided``), then moves on as the call does:
the announcement said, an agent connected, the agent asked for on-demand recording, the
file stored (or found to hold nothing), and finally deleted by retention or by a user. Each
step is one UPDATE of that row; none changes another call's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.clock import to_datetime
from callcenter.core.recording_policy import (
    FILE_FORMAT,
    RecordingDecision,
    RecordingReason,
    expires_at,
)
from callcenter.features.recordings.models import CallRecordingRow
from callcenter.store.values import check_page


class RecordingStatus(StrEnum):
    PENDING = "pending"  # the call is on; the file (if any) is Asterisk's still
    STORED = "stored"  # the file is in the recordings folder
    NO_AUDIO = "no_audio"  # nothing to keep: not sampled, never asked for, never bridged
    DELETED = "deleted"  # by retention or by a user: the file is gone


@dataclass(frozen=True)
class Recording:
    """One call's recording row, times as POSIX seconds."""

    id: int
    call_id: str
    queue: str | None
    campaign: str | None
    agent_id: str | None
    reason: RecordingReason
    status: RecordingStatus
    announced: bool
    announced_at: float | None
    started_at: float
    requested_at: float | None
    requested_by: str | None
    ended_at: float | None
    file: str | None
    format: str
    seconds: float | None
    size_bytes: int | None
    retention_days: int
    expires_at: float
    deleted_at: float | None
    deleted_by: str | None

    @property
    def has_audio(self) -> bool:
        return self.status is RecordingStatus.STORED and self.file is not None


class RecordingNotFound(LookupError):
    pass


def _seconds(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _recording(row: CallRecordingRow) -> Recording:
    return Recording(
        id=row.id, call_id=row.call_id, queue=row.queue, campaign=row.campaign,
        agent_id=row.agent_id, reason=RecordingReason(row.reason),
        status=RecordingStatus(row.status), announced=row.announced,
        announced_at=_seconds(row.announced_at), started_at=row.started_at.timestamp(),
        requested_at=_seconds(row.requested_at), requested_by=row.requested_by,
        ended_at=_seconds(row.ended_at), file=row.file, format=row.format,
        seconds=row.seconds, size_bytes=row.size_bytes, retention_days=row.retention_days,
        expires_at=row.expires_at.timestamp(), deleted_at=_seconds(row.deleted_at),
        deleted_by=row.deleted_by)


class RecordingStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def decided(self, call_id: str, decision: RecordingDecision, *, queue: str | None,
                      campaign: str | None, at: float) -> Recording:
        """The row of a call a policy covers (``decision.kept``); deciding the same call
        again returns the first row unchanged (a call is decided once)."""
        if decision.reason is None:
            raise ValueError("decision: the policy keeps nothing for this call")
        row = CallRecordingRow(
            call_id=call_id, queue=queue, campaign=campaign, agent_id=None,
            reason=decision.reason.value,
            status=(RecordingStatus.PENDING if decision.armed
                    else RecordingStatus.NO_AUDIO).value,
            announced=False, started_at=to_datetime(at), format=FILE_FORMAT,
            retention_days=decision.retention_days,
            expires_at=to_datetime(expires_at(at, decision.retention_days)))
        try:
            async with self._sessions.begin() as session:
                session.add(row)
            return _recording(row)
        except IntegrityError:
            return await self.by_call(call_id)

    async def announced(self, call_id: str, at: float) -> None:
        await self._update(call_id, announced=True, announced_at=to_datetime(at))

    async def connected(self, call_id: str, agent_id: str) -> None:
        """The first agent connected to the call (a later one, after a transfer, is not)."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(CallRecordingRow)
                .where(CallRecordingRow.call_id == call_id, CallRecordingRow.agent_id.is_(None))
                .values(agent_id=agent_id))

    async def requested(self, call_id: str, by: str, at: float) -> bool:
        """The agent (or a supervisor) asked to record an on-demand call; False if it was
        asked before (the first request stands)."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(CallRecordingRow)
                .where(CallRecordingRow.call_id == call_id,
                       CallRecordingRow.requested_at.is_(None))
                .values(requested_at=to_datetime(at), requested_by=by))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def stored(self, call_id: str, *, file: str, seconds: float, size_bytes: int,
                     ended_at: float) -> None:
        await self._update(call_id, status=RecordingStatus.STORED.value, file=file,
                           seconds=seconds, size_bytes=size_bytes, ended_at=to_datetime(ended_at))

    async def no_audio(self, call_id: str, ended_at: float) -> None:
        await self._update(call_id, status=RecordingStatus.NO_AUDIO.value,
                           ended_at=to_datetime(ended_at))

    async def deleted(self, recording_id: int, *, by: str, at: float) -> Recording:
        """Mark one recording deleted (its file already removed); RecordingNotFound if there
        is no such row or it was deleted before."""
        async with self._sessions.begin() as session:
            row = await session.get(CallRecordingRow, recording_id)
            if row is None or row.status == RecordingStatus.DELETED.value:
                raise RecordingNotFound(recording_id)
            row.status = RecordingStatus.DELETED.value
            row.deleted_at = to_datetime(at)
            row.deleted_by = by
            await session.flush()
            return _recording(row)

    async def get(self, recording_id: int) -> Recording:
        async with self._sessions() as session:
            row = await session.get(CallRecordingRow, recording_id)
        if row is None:
            raise RecordingNotFound(recording_id)
        return _recording(row)

    async def by_call(self, call_id: str) -> Recording:
        async with self._sessions() as session:
            row = (await session.execute(select(CallRecordingRow).where(
                CallRecordingRow.call_id == call_id))).scalar_one_or_none()
        if row is None:
            raise RecordingNotFound(call_id)
        return _recording(row)

    async def expired(self, now: float, limit: int = 500) -> list[Recording]:
        """Stored rows past their retention, oldest first (a pending row is finished first:
        ``CallRecordings.sweep``)."""
        async with self._sessions() as session:
            rows = (await session.execute(
                select(CallRecordingRow)
                .where(CallRecordingRow.status == RecordingStatus.STORED.value,
                       CallRecordingRow.expires_at <= to_datetime(now))
                .order_by(CallRecordingRow.expires_at, CallRecordingRow.id)
                .limit(limit))).scalars().all()
        return [_recording(row) for row in rows]

    async def pending(self) -> list[Recording]:
        """Rows whose call was still on (or whose file was not yet moved) when last seen."""
        async with self._sessions() as session:
            rows = (await session.execute(
                select(CallRecordingRow)
                .where(CallRecordingRow.status == RecordingStatus.PENDING.value)
                .order_by(CallRecordingRow.id))).scalars().all()
        return [_recording(row) for row in rows]

    async def listing(self, *, since: float | None = None, until: float | None = None,
                      agent_id: str | None = None, queue: str | None = None,
                      with_audio: bool = False, limit: int = 100, offset: int = 0,
                      ) -> list[Recording]:
        """Newest first, filtered by the time it started, agent and queue."""
        check_page(limit, offset)
        query = select(CallRecordingRow)
        if since is not None:
            query = query.where(CallRecordingRow.started_at >= to_datetime(since))
        if until is not None:
            query = query.where(CallRecordingRow.started_at < to_datetime(until))
        if agent_id is not None:
            query = query.where(CallRecordingRow.agent_id == agent_id)
        if queue is not None:
            query = query.where(CallRecordingRow.queue == queue)
        if with_audio:
            query = query.where(CallRecordingRow.status == RecordingStatus.STORED.value)
        query = query.order_by(CallRecordingRow.started_at.desc(), CallRecordingRow.id.desc())
        async with self._sessions() as session:
            rows = (await session.execute(query.limit(limit).offset(offset))).scalars().all()
        return [_recording(row) for row in rows]

    async def _update(self, call_id: str, **values: object) -> None:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(CallRecordingRow).where(CallRecordingRow.call_id == call_id)
                .values(**values))
        if not result.rowcount:  # type: ignore[attr-defined]
            raise RecordingNotFound(call_id)
