"""Database tables of agents: ``agents`` with their ``agent_queue_memberships`` and
``agent_skills``, and the ``agent_state_changes`` history.

An agent's ``id`` is also their SIP user name and PJSIP endpoint name. Agents are never
deleted, only deactivated: their state history refers to them (no cascade), so a row with
history cannot be deleted by accident. ``store.agents.AgentDirectory`` converts these rows to
plain dataclasses; nothing outside ``store/`` sees them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.store.models import Base, RowId, UtcDateTime


class AgentRow(Base):
    """One agent account: who they are, how their phone authenticates, whether it is active."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    # MD5(id:realm:password) in hex, PJSIP's digest credential; the password is not stored.
    sip_digest: Mapped[str] = mapped_column(String)
    # A static SIP contact (a test phone that never registers); None: the phone registers.
    contact: Mapped[str | None] = mapped_column(String)
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    memberships: Mapped[list[AgentQueueRow]] = relationship(
        back_populates="agent",
        order_by=lambda: (AgentQueueRow.queue,),
        cascade="all, delete-orphan",
        passive_deletes=True,  # the database's ON DELETE CASCADE does the work
        lazy="raise",  # async sessions cannot lazy-load: ask for them explicitly
    )
    skills: Mapped[list[AgentSkillRow]] = relationship(
        back_populates="agent",
        order_by=lambda: (AgentSkillRow.skill,),
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
    )


class AgentQueueRow(Base):
    """An agent serves a queue at a tier: 0 primary, 1.. overflow tiers opening later."""

    __tablename__ = "agent_queue_memberships"
    __table_args__ = (CheckConstraint("tier >= 0", name="tier_not_negative"),)

    agent_id: Mapped[str] = mapped_column(
        String, ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    queue: Mapped[str] = mapped_column(String, primary_key=True)
    tier: Mapped[int] = mapped_column(Integer)

    agent: Mapped[AgentRow] = relationship(back_populates="memberships", lazy="raise")


class AgentSkillRow(Base):
    """One skill of an agent, at a level from 1 to 10."""

    __tablename__ = "agent_skills"
    __table_args__ = (CheckConstraint("level BETWEEN 1 AND 10", name="level_range"),)

    agent_id: Mapped[str] = mapped_column(
        String, ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    skill: Mapped[str] = mapped_column(String, primary_key=True)
    level: Mapped[int] = mapped_column(Integer)

    agent: Mapped[AgentRow] = relationship(back_populates="skills", lazy="raise")


class AgentStateChangeRow(Base):
    """One change of an agent's state (logged out, ready, ringing, on a call, paused...)."""

    __tablename__ = "agent_state_changes"
    __table_args__ = (
        # An agent's history over a time range: occupancy and pause reports.
        Index("ix_agent_state_changes_agent_id_at", "agent_id", "at"),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    agent_id: Mapped[str] = mapped_column(String, ForeignKey("agents.id"))
    state: Mapped[str] = mapped_column(String)
    reason: Mapped[str | None] = mapped_column(String)  # the pause reason, "login", ...
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    previous: Mapped[str] = mapped_column(String)
