"""What the evaluation routes take and answer (see web/contract.py)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from callcenter.core.evaluations import MAX_QUESTIONS, MAX_SCALE, MAX_WEIGHT
from callcenter.core.identifiers import AGENT_ID_RE
from callcenter.features.evaluations.store import AgentAverage, Evaluation, StoredForm
from callcenter.web.contract import (
    Answer,
    Body,
    Time,
    TimeRange,
    fail,
    name_param,
    shown,
    stored_text,
    whole_param,
)
from callcenter.web.params import iso

MAX_COMMENT_CHARS = 4000


def _question_list(value: object) -> object:
    if not isinstance(value, list):
        fail(f"expected a list of questions, got {shown(value)}")
    if not 1 <= len(value) <= MAX_QUESTIONS:
        fail(f"a form needs 1 to {MAX_QUESTIONS} questions, got {len(value)}")
    for index, question in enumerate(value):
        if not isinstance(question, dict) or set(question) != {"id", "text", "weight",
                                                               "scale"}:
            fail("expected an object with id, text, weight and scale",
                 where=f"questions[{index}]")
    return value


QUESTIONS_SCHEMA = {
    "type": "array", "minItems": 1, "maxItems": MAX_QUESTIONS,
    "items": {"type": "object", "additionalProperties": False,
              "required": ["id", "text", "weight", "scale"],
              "properties": {
                  "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,31}$"},
                  "text": {"type": "string", "minLength": 1, "maxLength": 500},
                  "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WEIGHT},
                  "scale": {"type": "integer", "minimum": 1, "maximum": MAX_SCALE,
                            "description": "answers are whole numbers 0..scale"}}}}


class NewForm(Body):
    name: Annotated[stored_text(1, 100), Field(description="unique")]
    questions: Annotated[list[dict[str, Any]], BeforeValidator(_question_list),
                         Field(json_schema_extra=QUESTIONS_SCHEMA)]


def _answers(value: object) -> object:
    if not isinstance(value, dict):
        fail(f"expected an object of question id -> whole number, got {shown(value)}")
    for key, answer in value.items():
        if isinstance(answer, bool) or not isinstance(answer, int):
            fail(f"expected a whole number, got {shown(answer)}", where=f"answers.{key[:40]}")
    return value


class NewEvaluation(Body):
    recording_id: Annotated[int, Field(ge=1, description="the recorded call scored")]
    form_id: Annotated[int, Field(ge=1)]
    answers: Annotated[dict[str, int], BeforeValidator(_answers),
                       Field(description="question id -> answer, 0..the question's scale; "
                                         "every question answered")]
    comments: Annotated[stored_text(0, MAX_COMMENT_CHARS), Field()] = ""


class QuestionAnswer(Answer):
    id: str
    text: str
    weight: float
    scale: int


class FormAnswer(Answer):
    id: int
    name: str
    questions: list[QuestionAnswer]
    created_at: Time
    created_by: str

    @classmethod
    def of(cls, stored: StoredForm) -> FormAnswer:
        return cls(id=stored.id, name=stored.form.name,
                   questions=[QuestionAnswer(id=q.id, text=q.text, weight=q.weight,
                                             scale=q.scale) for q in stored.form.questions],
                   created_at=iso(stored.created_at) or "", created_by=stored.created_by)


class FormList(Answer):
    forms: list[FormAnswer]


class EvaluationAnswer(Answer):
    id: int
    recording_id: int
    form_id: int
    call_id: str
    agent_id: str
    score: float = Field(ge=0, le=100, description="weighted average of the answers, 0-100")
    answers: dict[str, int]
    comments: str
    evaluated_at: Time
    evaluated_by: str

    @classmethod
    def of(cls, e: Evaluation) -> EvaluationAnswer:
        return cls(id=e.id, recording_id=e.recording_id, form_id=e.form_id, call_id=e.call_id,
                   agent_id=e.agent_id, score=e.score, answers=e.answers, comments=e.comments,
                   evaluated_at=iso(e.evaluated_at) or "", evaluated_by=e.evaluated_by)


class EvaluationList(Answer):
    evaluations: list[EvaluationAnswer]


def _form_id(raw: object) -> object:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or len(raw) > 18 \
            or int(raw) < 1:
        fail(f"{str(raw)[:40]!r} is not a form id (a whole number from 1)")
    return int(raw)


FormIdParam = Annotated[int | None, BeforeValidator(_form_id)]


class EvaluationQuery(TimeRange):
    agent: Annotated[name_param(AGENT_ID_RE, "an agent id"),
                     Field(description="only this agent's calls")] = None
    form_id: Annotated[FormIdParam, Field(description="only with this form")] = None
    limit: Annotated[whole_param(1, 1000), Field(description="at most this many")] = 100
    offset: Annotated[whole_param(0, 10_000_000), Field(description="skip this many")] = 0


class AveragesQuery(TimeRange):
    agent: Annotated[name_param(AGENT_ID_RE, "an agent id"),
                     Field(description="only this agent")] = None
    form_id: Annotated[FormIdParam, Field(description="only this form")] = None


class AverageAnswer(Answer):
    agent_id: str
    form_id: int
    evaluations: int = Field(ge=0)
    average: float | None = Field(description="mean score 0-100")
    lowest: float | None
    highest: float | None

    @classmethod
    def of(cls, a: AgentAverage) -> AverageAnswer:
        return cls(agent_id=a.agent_id, form_id=a.form_id, evaluations=a.figures.count,
                   average=a.figures.average, lowest=a.figures.lowest,
                   highest=a.figures.highest)


class AveragesReport(Answer):
    since: Time | None
    until: Time | None
    averages: list[AverageAnswer]

