"""Tables of the agent aggregates: agents' time and calls per 15-minute UTC bucket.

- ``agent_state_time``: microseconds an agent spent in a state (paused: per reason) in a
  bucket, from the state log; rewritten from the first bucket a stored change touches.
- ``agent_call_time``: per agent and bucket, calls handled, transfers made, productivity
  points and hold microseconds: the sums of ``agent_credits``.
- ``agent_credits``: what each source (a call record, ``call:<calls.id>``; a campaign
  disposition, ``disposition:<campaign_attempts.id>``) added, so that storing a record again
  takes its old credit off before adding the new one.

Every figure is rebuildable from the raw rows (features/reports/agent_store.py ``rebuild``).
No foreign keys: agents are never deleted, and the aggregates are derived data whose
rebuild is the way to repair them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.models import Base, RowId, UtcDateTime


class AgentStateTimeRow(Base):
    __tablename__ = "agent_state_time"

    agent_id: Mapped[str] = mapped_column(String, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    state: Mapped[str] = mapped_column(String, primary_key=True)
    reason: Mapped[str] = mapped_column(String, primary_key=True)  # "" unless paused
    micros: Mapped[int] = mapped_column(BigInteger)


class AgentCallTimeRow(Base):
    __tablename__ = "agent_call_time"

    agent_id: Mapped[str] = mapped_column(String, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    handled: Mapped[int] = mapped_column(Integer)
    transfers: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(BigInteger)
    hold_micros: Mapped[int] = mapped_column(BigInteger)


class AgentCreditRow(Base):
    __tablename__ = "agent_credits"
    __table_args__ = (Index("ix_agent_credits_source", "source"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    source: Mapped[str] = mapped_column(String)  # "call:<calls.id>" | "disposition:<id>"
    agent_id: Mapped[str] = mapped_column(String)
    bucket: Mapped[datetime] = mapped_column(UtcDateTime)
    handled: Mapped[int] = mapped_column(Integer)
    transfers: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(BigInteger)
    hold_micros: Mapped[int] = mapped_column(BigInteger)
