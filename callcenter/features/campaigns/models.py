"""The ``campaigns`` table: an outbound campaign's settings and state (store.py beside this
module converts its rows to ``Campaign`` values)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Double, Integer, String, Text
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
    script: Mapped[str] = mapped_column(Text)
    dispositions: Mapped[list[Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String)  # a CampaignState value
    state_reason: Mapped[str | None] = mapped_column(String)
    created_by: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
