"""``evaluation_forms`` and ``evaluations``: quality forms and the scores supervisors gave
recorded calls with them (store.py; docs/recordings.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.models import Base, RowId, UtcDateTime


class EvaluationFormRow(Base):
    __tablename__ = "evaluation_forms"

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    # [{"id", "text", "weight", "scale"}, ...] in the form's order; checked before stored.
    questions: Mapped[list[dict[str, object]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String)


class EvaluationRow(Base):
    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_agent_id_evaluated_at", "agent_id", "evaluated_at"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    recording_id: Mapped[int] = mapped_column(RowId, ForeignKey("call_recordings.id"),
                                              index=True)
    form_id: Mapped[int] = mapped_column(RowId, ForeignKey("evaluation_forms.id"), index=True)
    call_id: Mapped[str] = mapped_column(String)
    agent_id: Mapped[str] = mapped_column(String)
    score: Mapped[float] = mapped_column(Float)  # 0..100, core/evaluations.py
    answers: Mapped[dict[str, int]] = mapped_column(JSON)  # question id -> answer
    comments: Mapped[str] = mapped_column(Text)
    evaluated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    evaluated_by: Mapped[str] = mapped_column(String)
