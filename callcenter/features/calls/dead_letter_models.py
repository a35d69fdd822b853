"""The ``call_dead_letters`` table: call records the database refused for good.

A record whose write can never succeed (a NUL in a text field, a constraint it breaks) is
moved here by the record writer, with the reason, so the records behind it are stored and an
operator can still see, fix and re-enter it. ``record`` is the record's JSON document as the
spool held it, ASCII-escaped (so a NUL is the six characters ``\\u0000``, which any column
can hold). ``callcenter.features.calls.store.DeadLetterRepository`` reads and writes it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.models import Base, RowId, UtcDateTime


class DeadLetterRow(Base):
    """One refused version of one call's record."""

    __tablename__ = "call_dead_letters"
    __table_args__ = (Index("ix_call_dead_letters_at", "at"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    call_id: Mapped[str] = mapped_column(String)  # control characters shown escaped
    record: Mapped[str] = mapped_column(Text)  # the record's JSON document
    reason: Mapped[str] = mapped_column(Text)  # why the database refused it
    at: Mapped[datetime] = mapped_column(UtcDateTime)  # when it was moved here
