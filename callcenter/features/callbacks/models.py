"""The ``callback_requests`` table (store.py beside this module converts its rows to the
core's ``CallbackRequest``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Index,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.models import Base, RowId, UtcDateTime


class CallbackRow(Base):
    """A caller's request to be called back.

    ``call_id`` is no foreign key: the request is written when the caller leaves the IVR,
    before the record writer may have saved the call itself.
    """

    __tablename__ = "callback_requests"
    __table_args__ = (
        # The work list: pending requests, oldest first.
        Index("ix_callback_requests_status_requested_at", "status", "requested_at"),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    call_id: Mapped[str] = mapped_column(String, index=True)
    queue: Mapped[str] = mapped_column(String)
    number: Mapped[str] = mapped_column(String)
    caller_name: Mapped[str | None] = mapped_column(String)
    name_recording: Mapped[str | None] = mapped_column(String)
    flow: Mapped[str] = mapped_column(String)
    protocol: Mapped[str | None] = mapped_column(String)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String)  # a records.CallbackStatus value
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # When the customer joined the line the callback keeps (null: requested_at).
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
