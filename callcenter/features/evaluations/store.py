"""Evaluation forms and evaluations in and out of the database (models.py beside this
module). Forms are checked by the core (core/evaluations.py) before they are stored, and
each evaluation's score is computed from its form there too: the store never keeps a score
that its answers and form do not give."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.clock import to_datetime
from callcenter.core.evaluations import (
    EvaluationError,
    EvaluationForm,
    Question,
    ScoreAverage,
    average,
    score,
)
from callcenter.features.evaluations.models import EvaluationFormRow, EvaluationRow
from callcenter.features.recordings.store import Recording
from callcenter.store.values import check_page


class FormNotFound(LookupError):
    pass


class FormExists(ValueError):
    pass


@dataclass(frozen=True)
class StoredForm:
    id: int
    form: EvaluationForm
    created_at: float
    created_by: str


@dataclass(frozen=True)
class Evaluation:
    id: int
    recording_id: int
    form_id: int
    call_id: str
    agent_id: str
    score: float
    answers: dict[str, int]
    comments: str
    evaluated_at: float
    evaluated_by: str


@dataclass(frozen=True)
class AgentAverage:
    agent_id: str
    form_id: int
    figures: ScoreAverage


def _form(row: EvaluationFormRow) -> StoredForm:
    questions = tuple(Question(str(q["id"]), str(q["text"]), float(q["weight"]),  # type: ignore[arg-type]
                               int(q["scale"]))  # type: ignore[call-overload]
                      for q in row.questions)
    return StoredForm(row.id, EvaluationForm(row.name, questions), row.created_at.timestamp(),
                      row.created_by)


def _evaluation(row: EvaluationRow) -> Evaluation:
    return Evaluation(row.id, row.recording_id, row.form_id, row.call_id, row.agent_id,
                      row.score, dict(row.answers), row.comments, row.evaluated_at.timestamp(),
                      row.evaluated_by)


class EvaluationStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add_form(self, form: EvaluationForm, *, by: str, at: float) -> StoredForm:
        """Store a checked form; FormExists when its name is taken."""
        row = EvaluationFormRow(
            name=form.name, created_at=to_datetime(at), created_by=by,
            questions=[{"id": q.id, "text": q.text, "weight": q.weight, "scale": q.scale}
                       for q in form.questions])
        try:
            async with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            raise FormExists(f"name: a form named {form.name!r} exists already") from None
        return _form(row)

    async def form(self, form_id: int) -> StoredForm:
        async with self._sessions() as session:
            row = await session.get(EvaluationFormRow, form_id)
        if row is None:
            raise FormNotFound(form_id)
        return _form(row)

    async def forms(self) -> list[StoredForm]:
        async with self._sessions() as session:
            rows = (await session.execute(
                select(EvaluationFormRow).order_by(EvaluationFormRow.id))).scalars().all()
        return [_form(row) for row in rows]

    async def evaluate(self, recording: Recording, form_id: int, answers: dict[str, int],
                       comments: str, *, by: str, at: float) -> Evaluation:
        """Score a recorded call with a form: EvaluationError for answers the form does not
        take, or a recording with no agent or no audio (nothing to evaluate)."""
        if not recording.has_audio:
            raise EvaluationError(f"recording_id: recording {recording.id} has no audio to "
                                  "evaluate")
        if recording.agent_id is None:
            raise EvaluationError(f"recording_id: recording {recording.id} has no agent")
        stored = await self.form(form_id)
        value = score(stored.form, answers)
        row = EvaluationRow(recording_id=recording.id, form_id=form_id,
                            call_id=recording.call_id, agent_id=recording.agent_id,
                            score=value, answers=dict(answers), comments=comments,
                            evaluated_at=to_datetime(at), evaluated_by=by)
        async with self._sessions.begin() as session:
            session.add(row)
        return _evaluation(row)

    async def evaluations(self, *, agent_id: str | None = None, form_id: int | None = None,
                          recording_id: int | None = None, since: float | None = None,
                          until: float | None = None, limit: int = 100, offset: int = 0,
                          ) -> list[Evaluation]:
        """Newest first."""
        check_page(limit, offset)
        query = _filtered(select(EvaluationRow), agent_id=agent_id, form_id=form_id,
                          since=since, until=until)
        if recording_id is not None:
            query = query.where(EvaluationRow.recording_id == recording_id)
        query = query.order_by(EvaluationRow.evaluated_at.desc(), EvaluationRow.id.desc())
        async with self._sessions() as session:
            rows = (await session.execute(query.limit(limit).offset(offset))).scalars().all()
        return [_evaluation(row) for row in rows]

    async def averages(self, *, since: float | None, until: float | None,
                       agent_id: str | None = None, form_id: int | None = None,
                       ) -> list[AgentAverage]:
        """Per agent and form: how many evaluations in [since, until), their mean, lowest
        and highest score; ordered by agent, then form."""
        query = _filtered(
            select(EvaluationRow.agent_id, EvaluationRow.form_id, func.count(),
                   func.avg(EvaluationRow.score), func.min(EvaluationRow.score),
                   func.max(EvaluationRow.score)),
            agent_id=agent_id, form_id=form_id, since=since, until=until,
        ).group_by(EvaluationRow.agent_id, EvaluationRow.form_id).order_by(
            EvaluationRow.agent_id, EvaluationRow.form_id)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [AgentAverage(agent, form, ScoreAverage(count, float(mean), float(low),
                                                       float(high)))
                for agent, form, count, mean, low, high in rows]

    async def scores(self, agent_id: str, form_id: int, *, since: float | None,
                     until: float | None) -> ScoreAverage:
        """The same figures computed in Python from the rows (the tests' brute force)."""
        query = _filtered(select(EvaluationRow.score), agent_id=agent_id, form_id=form_id,
                          since=since, until=until)
        async with self._sessions() as session:
            values = (await session.execute(query)).scalars().all()
        return average(values)


def _filtered(query: Select[Any], *, agent_id: str | None, form_id: int | None,
              since: float | None, until: float | None) -> Select[Any]:
    if agent_id is not None:
        query = query.where(EvaluationRow.agent_id == agent_id)
    if form_id is not None:
        query = query.where(EvaluationRow.form_id == form_id)
    if since is not None:
        query = query.where(EvaluationRow.evaluated_at >= to_datetime(since))
    if until is not None:
        query = query.where(EvaluationRow.evaluated_at < to_datetime(until))
    return query
