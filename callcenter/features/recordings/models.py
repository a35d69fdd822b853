"""``call_recordings``: one row per call a recording policy covered (store.py reads and
writes it; docs/recordings.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.models import Base, RowId, UtcDateTime


class CallRecordingRow(Base):
    __tablename__ = "call_recordings"
    __table_args__ = (Index("ix_call_recordings_status_expires_at", "status", "expires_at"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    call_id: Mapped[str] = mapped_column(String, unique=True)  # the caller channel's Uniqueid
    queue: Mapped[str | None] = mapped_column(String)
    campaign: Mapped[str | None] = mapped_column(String)
    agent_id: Mapped[str | None] = mapped_column(String, index=True)  # first agent connected
    reason: Mapped[str] = mapped_column(String)  # a RecordingReason value
    status: Mapped[str] = mapped_column(String)  # a RecordingStatus value
    announced: Mapped[bool] = mapped_column(Boolean)
    announced_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)  # decided/armed
    requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # on demand: asked
    requested_by: Mapped[str | None] = mapped_column(String)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # the caller hung up
    file: Mapped[str | None] = mapped_column(String)  # YYYY/MM/DD/<name>, under the folder
    format: Mapped[str] = mapped_column(String)
    seconds: Mapped[float | None] = mapped_column(Float)  # audio length, read from the file
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    retention_days: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deleted_by: Mapped[str | None] = mapped_column(String)  # a user, or "retention"
