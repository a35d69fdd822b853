"""The ``calls`` table with its ``call_attempts``, ``call_faq_outcomes``,
``call_survey_answers``, ``call_transfers`` and ``call_holds``.

Rows hold the same facts as ``callcenter.core.records.CallRecord``; store.py beside this
module converts between the two, so nothing outside this folder sees these classes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Double,
    ForeignKey,
    Index,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.store.models import Base, RowId, UtcDateTime


class CallRow(Base):
    """One inbound call; ``call_id`` is the caller channel's Asterisk Uniqueid."""

    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_started_at", "started_at"),
        Index("ix_calls_queue_started_at", "queue", "started_at"),
        Index("ix_calls_protocol", "protocol", unique=True),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    call_id: Mapped[str] = mapped_column(String, unique=True)
    protocol: Mapped[str | None] = mapped_column(String)
    linked_id: Mapped[str | None] = mapped_column(String)
    channel: Mapped[str | None] = mapped_column(String)
    caller_number: Mapped[str | None] = mapped_column(String)
    caller_name: Mapped[str | None] = mapped_column(String)
    caller_id_raw: Mapped[str | None] = mapped_column(String)  # URI-encoded, as sent
    dialed_number: Mapped[str | None] = mapped_column(String)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # A list of {"node": str, "at": ISO-8601 UTC str, "input": str | None}.
    ivr_path: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    queue: Mapped[str | None] = mapped_column(String)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    overflowed_from: Mapped[str | None] = mapped_column(String)  # the first queue, if moved on
    # IVR transfers out: [{"number", "dial_status", "ended_at", "answered_at"}] (ISO-8601 UTC).
    outside_legs: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    wait_seconds: Mapped[float | None] = mapped_column(Double)
    agent_id: Mapped[str | None] = mapped_column(String)
    agent_answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    talk_seconds: Mapped[float | None] = mapped_column(Double)
    hangup_by: Mapped[str | None] = mapped_column(String)  # a records.HangupBy value
    hangup_cause: Mapped[str | None] = mapped_column(String)
    disposition: Mapped[str | None] = mapped_column(String)  # a records.Disposition value
    note: Mapped[str | None] = mapped_column(String)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Who wrote the record: a records.RecordSource value ("asterisk": imported from its log).
    source: Mapped[str] = mapped_column(String, server_default="service")
    # Callbacks: the request a call asked for or served; a callback's call that asked.
    callback_request_id: Mapped[int | None] = mapped_column(RowId, index=True)
    callback_of: Mapped[str | None] = mapped_column(String)
    # Outbound campaigns' calls (core.records.Direction): the campaign and its attempt.
    direction: Mapped[str] = mapped_column(String, server_default="inbound")
    campaign: Mapped[str | None] = mapped_column(String)
    campaign_attempt_id: Mapped[int | None] = mapped_column(RowId, index=True)

    attempts: Mapped[list[AttemptRow]] = relationship(
        back_populates="call",
        order_by=lambda: (AttemptRow.started_at, AttemptRow.id),
        cascade="all, delete-orphan",
        passive_deletes=True,  # the database's ON DELETE CASCADE does the work
        lazy="raise",  # async sessions cannot lazy-load: ask for attempts explicitly
    )
    faq_outcomes: Mapped[list[FaqOutcomeRow]] = relationship(
        back_populates="call",
        order_by=lambda: (FaqOutcomeRow.heard_at, FaqOutcomeRow.id),
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
    )
    survey_answers: Mapped[list[SurveyAnswerRow]] = relationship(
        back_populates="call",
        order_by=lambda: (SurveyAnswerRow.answered_at, SurveyAnswerRow.id),
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
    )
    transfers: Mapped[list[TransferRow]] = relationship(
        back_populates="call",
        order_by=lambda: TransferRow.id,  # written in the record's order
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
    )
    holds: Mapped[list[HoldRow]] = relationship(
        back_populates="call",
        order_by=lambda: (HoldRow.started_at, HoldRow.id),
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
    )


class AttemptRow(Base):
    """One agent's leg of a call: rung, maybe answered, ended; its talk."""

    __tablename__ = "call_attempts"
    # An agent's latest legs: the calls whose wrap-up a new state change may alter
    # (features/reports/wrap_ups.py).
    __table_args__ = (Index("ix_call_attempts_agent_id_ended_at", "agent_id", "ended_at"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    call_pk: Mapped[int] = mapped_column(
        RowId, ForeignKey("calls.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[str] = mapped_column(String)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[str] = mapped_column(String)  # a records.AttemptOutcome value
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    talk_seconds: Mapped[float | None] = mapped_column(Double)

    call: Mapped[CallRow] = relationship(back_populates="attempts", lazy="raise")


class FaqOutcomeRow(Base):
    """One FAQ answer a caller heard in the IVR, and whether it solved their problem."""

    __tablename__ = "call_faq_outcomes"
    __table_args__ = (Index("ix_call_faq_outcomes_heard_at", "heard_at"),)  # the FAQ report

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    call_pk: Mapped[int] = mapped_column(
        RowId, ForeignKey("calls.id", ondelete="CASCADE"), index=True
    )
    flow: Mapped[str] = mapped_column(String)
    topic: Mapped[str] = mapped_column(String)
    heard_at: Mapped[datetime] = mapped_column(UtcDateTime)
    result: Mapped[str] = mapped_column(String)  # a records.FaqResult value
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    call: Mapped[CallRow] = relationship(back_populates="faq_outcomes", lazy="raise")


class SurveyAnswerRow(Base):
    """One answer to one survey question, given during or after a call."""

    __tablename__ = "call_survey_answers"

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    call_pk: Mapped[int] = mapped_column(
        RowId, ForeignKey("calls.id", ondelete="CASCADE"), index=True
    )
    survey: Mapped[str] = mapped_column(String)
    question: Mapped[str] = mapped_column(String)
    answer: Mapped[str] = mapped_column(String)
    answered_at: Mapped[datetime] = mapped_column(UtcDateTime)

    call: Mapped[CallRow] = relationship(back_populates="survey_answers", lazy="raise")


class TransferRow(Base):
    """One transfer of a talking caller, blind or attended, and how it ended."""

    __tablename__ = "call_transfers"

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    call_pk: Mapped[int] = mapped_column(
        RowId, ForeignKey("calls.id", ondelete="CASCADE"), index=True
    )
    mode: Mapped[str] = mapped_column(String)  # a records.TransferMode value
    from_agent: Mapped[str] = mapped_column(String)
    to_agent: Mapped[str | None] = mapped_column(String)
    to_queue: Mapped[str | None] = mapped_column(String)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[str] = mapped_column(String)  # a records.TransferOutcome value
    reason: Mapped[str | None] = mapped_column(String)

    call: Mapped[CallRow] = relationship(back_populates="transfers", lazy="raise")


class HoldRow(Base):
    """One time the call was on hold: who held (an agent's phone, or the caller's), when."""

    __tablename__ = "call_holds"

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    call_pk: Mapped[int] = mapped_column(
        RowId, ForeignKey("calls.id", ondelete="CASCADE"), index=True
    )
    held_by: Mapped[str] = mapped_column(String)  # a records.HoldBy value
    agent_id: Mapped[str | None] = mapped_column(String)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # None: still on hold

    call: Mapped[CallRow] = relationship(back_populates="holds", lazy="raise")
