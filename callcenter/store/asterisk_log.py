"""How far the service has read Asterisk's own channel event log: one row per log.

The import (callcenter/features/calls/missed.py) reads the log from the row after this
position and moves it on once the records it made are stored, so a restart does not read
the whole log again (reading it again would store nothing twice either: records are keyed
by call id).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.core.clock import Clock, SystemClock, to_datetime
from callcenter.store.models import Base, UtcDateTime


class AsteriskLogPositionRow(Base):
    """The last row imported from one of Asterisk's logs, named by its path and first row
    (cel_reader.log_identity: a log recreated or rotated is another log, read from its start)."""

    __tablename__ = "asterisk_log_positions"

    log: Mapped[str] = mapped_column(String, primary_key=True)
    last_row: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LogPositions:
    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 clock: Clock | None = None) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()

    async def get(self, log: str) -> int:
        """The last row imported from ``log``; 0 if none yet."""
        async with self._sessions() as session:
            row = await session.scalar(select(AsteriskLogPositionRow.last_row)
                                       .where(AsteriskLogPositionRow.log == log))
            return int(row) if row is not None else 0

    async def set(self, log: str, last_row: int) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(AsteriskLogPositionRow, log)
            now = to_datetime(self._clock.now())
            if row is None:
                session.add(AsteriskLogPositionRow(log=log, last_row=last_row, updated_at=now))
            else:
                row.last_row = last_row
                row.updated_at = now
