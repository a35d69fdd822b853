"""The ``campaigns`` table (a campaign's settings and state) and its call lists:
``call_lists``, ``call_list_entries`` (the numbers to call) and ``call_list_problems`` (rows
not taken, with why), and ``campaign_attempts`` (every call the dialer placed, with its
outcome and the agent's disposition). store.py and lists.py beside this module read and
write them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.models import Base, RowId, UtcDateTime


class CampaignRow(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    mode: Mapped[str] = mapped_column(String)  # a CampaignMode value
    queue: Mapped[str] = mapped_column(String)  # whose agents take its calls
    caller_id: Mapped[str] = mapped_column(String)  # E.164, always sent
    default_region: Mapped[str] = mapped_column(String)  # for numbers without +country
    hours: Mapped[dict[str, Any]] = mapped_column(JSON)  # weekly, in the callee's time
    skip_holidays: Mapped[bool] = mapped_column(Boolean)
    max_attempts: Mapped[int] = mapped_column(Integer)
    retry_minutes: Mapped[dict[str, Any]] = mapped_column(JSON)  # outcome -> minutes
    ring_seconds: Mapped[int] = mapped_column(Integer)
    amd: Mapped[bool] = mapped_column(Boolean)
    machine_action: Mapped[str] = mapped_column(String)
    abandon_cap_percent: Mapped[float] = mapped_column(Double)
    safe_harbor_prompt: Mapped[str] = mapped_column(String)
    requires_consent: Mapped[bool] = mapped_column(Boolean)
    ahead_of_inbound: Mapped[bool] = mapped_column(Boolean, server_default=false())
    script: Mapped[str] = mapped_column(Text)
    dispositions: Mapped[list[Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String)  # a CampaignState value
    state_reason: Mapped[str | None] = mapped_column(String)
    created_by: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CallListRow(Base):
    """An uploaded call list of a campaign, with what its import counted."""

    __tablename__ = "call_lists"
    __table_args__ = (UniqueConstraint("campaign", "name"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    campaign: Mapped[str] = mapped_column(String, index=True)
    name: Mapped[str] = mapped_column(String)
    active: Mapped[bool] = mapped_column(Boolean)  # a disabled list is not dialled
    rows_read: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    duplicates: Mapped[int] = mapped_column(Integer)
    blank_rows: Mapped[int] = mapped_column(Integer)
    ambiguous_time_zones: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Recycled: attempts placed before this instant no longer count towards max_attempts
    # (final outcomes, do-not-call and consent still do), so the no-answers are dialled again.
    recycled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    uploads: Mapped[int] = mapped_column(Integer, server_default="1")  # the first + appended
    # Being imported: its rows are going in; shown nowhere, never dialled; deleted if the
    # import fails or the service stops (lists.py).
    importing: Mapped[bool] = mapped_column(Boolean, server_default=false())


class CallListEntryRow(Base):
    """One number to call, as the list gave it."""

    __tablename__ = "call_list_entries"
    __table_args__ = (Index("ix_call_list_entries_list_id_number", "list_id", "number"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    list_id: Mapped[int] = mapped_column(RowId, ForeignKey("call_lists.id", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column(Integer)  # where it stood in the upload
    upload: Mapped[int] = mapped_column(Integer, server_default="1")  # 1: the first; then appends
    number: Mapped[str] = mapped_column(String)  # E.164
    name: Mapped[str] = mapped_column(String)
    time_zones: Mapped[list[str]] = mapped_column(JSON)
    time_zone_source: Mapped[str] = mapped_column(String)
    extra: Mapped[list[Any]] = mapped_column(JSON)  # [[column, value, formula_like], ...]


class CallListProblemRow(Base):
    """A row of the upload that was not taken: rejected (why) or a duplicate (of which line)."""

    __tablename__ = "call_list_problems"

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    list_id: Mapped[int] = mapped_column(RowId, ForeignKey("call_lists.id", ondelete="CASCADE"),
                                         index=True)
    line: Mapped[int] = mapped_column(Integer)
    upload: Mapped[int] = mapped_column(Integer, server_default="1")  # which upload's line
    reason: Mapped[str] = mapped_column(Text)
    number: Mapped[str | None] = mapped_column(String)  # duplicates: the number
    first_line: Mapped[int | None] = mapped_column(Integer)  # duplicates: the line kept


class CampaignAttemptRow(Base):
    """One call the dialer placed to a list entry: written before the Originate, so no call
    is ever placed that the next decision does not count; completed when it ends.

    ``outcome`` (a dial_rules.Outcome value) is empty while the call is in flight. The agent's
    ``disposition`` (one of the campaign's names), ``notes`` and "call back at" come after a
    call an agent took. ``call_id`` is the customer channel's Uniqueid: the call record's
    ``call_id`` when the call reached the records (answered calls)."""

    __tablename__ = "campaign_attempts"
    __table_args__ = (
        Index("ix_campaign_attempts_entry_id", "entry_id"),
        Index("ix_campaign_attempts_campaign_placed_at", "campaign", "placed_at"),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    campaign: Mapped[str] = mapped_column(String)
    list_id: Mapped[int] = mapped_column(RowId, ForeignKey("call_lists.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(
        RowId, ForeignKey("call_list_entries.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String)  # E.164, as dialled
    attempt: Mapped[int] = mapped_column(Integer)  # 1 for the entry's first call
    placed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[str | None] = mapped_column(String)  # a dial_rules.Outcome value
    amd_status: Mapped[str | None] = mapped_column(String)  # AMD(): HUMAN, MACHINE, NOTSURE
    hangup_cause: Mapped[str | None] = mapped_column(String)
    abandoned: Mapped[bool] = mapped_column(Boolean, default=False)  # a live answer no agent took
    call_id: Mapped[str | None] = mapped_column(String, index=True)
    agent_id: Mapped[str | None] = mapped_column(String)
    disposition: Mapped[str | None] = mapped_column(String)
    notes: Mapped[str | None] = mapped_column(Text)
    call_back_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    call_back_agent: Mapped[str | None] = mapped_column(String)  # a personal callback's agent
    disposed_by: Mapped[str | None] = mapped_column(String)
    disposed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
