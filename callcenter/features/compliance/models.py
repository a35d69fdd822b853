"""The ``do_not_call`` list (global and per campaign) and the append-only
``consent_ledger`` (store.py beside this module reads and writes them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.models import Base, RowId, UtcDateTime

GLOBAL = ""  # the campaign column of a global entry (unique constraints treat NULLs apart)


class DoNotCallRow(Base):
    __tablename__ = "do_not_call"
    __table_args__ = (UniqueConstraint("number", "campaign"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    number: Mapped[str] = mapped_column(String, index=True)  # E.164
    campaign: Mapped[str] = mapped_column(String)  # GLOBAL: every campaign
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String)
    reason: Mapped[str] = mapped_column(Text)
    added_by: Mapped[str | None] = mapped_column(String)


class ConsentRow(Base):
    """One grant or revocation; rows are only ever added."""

    __tablename__ = "consent_ledger"
    __table_args__ = (Index("ix_consent_ledger_number_at", "number", "at"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    number: Mapped[str] = mapped_column(String)  # E.164
    campaign: Mapped[str] = mapped_column(String)  # GLOBAL: every campaign
    kind: Mapped[str] = mapped_column(String)  # a ConsentKind value
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String)  # a ConsentSource value
    proof: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str | None] = mapped_column(String)
