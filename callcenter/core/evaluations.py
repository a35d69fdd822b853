"""Quality evaluation forms and their scores: pure rules, no I/O (docs/recordings.md).

A form is a list of questions, each with a positive weight and an answer scale from 0 to
``scale`` (e.g. 0-5, or 0-1 for yes/no). A supervisor answers every question for one
recorded call; the score is the weighted average of the answers, each as a share of its
scale, times 100:

    score = 100 * sum(weight_i * answer_i / scale_i) / sum(weight_i)

so it lies in 0..100 whatever the scales. Averages over a period are plain means of the
scores (every evaluated call counts the same).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

QUESTION_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_QUESTIONS = 50
MAX_SCALE = 100
MAX_WEIGHT = 1000


class EvaluationError(ValueError):
    """A form or an answer sheet that cannot be used; the message says what and where."""


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    weight: float
    scale: int  # answers are whole numbers 0..scale


@dataclass(frozen=True)
class EvaluationForm:
    name: str
    questions: tuple[Question, ...]

    def __post_init__(self) -> None:
        check_questions(self.questions)

    @property
    def total_weight(self) -> float:
        return sum(question.weight for question in self.questions)


def check_questions(questions: Sequence[Question]) -> None:
    """EvaluationError naming the question and field of the first problem."""
    if not questions:
        raise EvaluationError("questions: a form needs at least one question")
    if len(questions) > MAX_QUESTIONS:
        raise EvaluationError(f"questions: at most {MAX_QUESTIONS}, got {len(questions)}")
    seen: set[str] = set()
    for index, question in enumerate(questions):
        where = f"questions[{index}]"
        if not isinstance(question.id, str) or not QUESTION_ID_RE.fullmatch(question.id):
            raise EvaluationError(f"{where}.id: {str(question.id)[:40]!r} is not a question id "
                                  "(a lowercase letter, then up to 31 lowercase letters, "
                                  "digits or '_')")
        if question.id in seen:
            raise EvaluationError(f"{where}.id: {question.id!r} is used twice")
        seen.add(question.id)
        if not isinstance(question.text, str) or not question.text.strip():
            raise EvaluationError(f"{where}.text: must not be empty")
        weight = question.weight
        if isinstance(weight, bool) or not isinstance(weight, int | float) \
                or not math.isfinite(weight) or not 0 < weight <= MAX_WEIGHT:
            raise EvaluationError(f"{where}.weight: {weight!r} is not a positive number "
                                  f"up to {MAX_WEIGHT}")
        scale = question.scale
        if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= MAX_SCALE:
            raise EvaluationError(f"{where}.scale: {scale!r} is not a whole number from 1 "
                                  f"to {MAX_SCALE}")


def score(form: EvaluationForm, answers: Mapping[str, int]) -> float:
    """The weighted score 0..100 of one answer sheet; EvaluationError when a question is
    unanswered, an answer is off its scale, or an answer names no question of the form."""
    known = {question.id for question in form.questions}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise EvaluationError(f"answers.{unknown[0][:40]}: the form {form.name!r} has no "
                              "such question")
    weighted = 0.0
    for question in form.questions:
        if question.id not in answers:
            raise EvaluationError(f"answers.{question.id}: is required")
        answer = answers[question.id]
        if isinstance(answer, bool) or not isinstance(answer, int) \
                or not 0 <= answer <= question.scale:
            raise EvaluationError(f"answers.{question.id}: {answer!r} is not a whole number "
                                  f"from 0 to {question.scale}")
        weighted += question.weight * answer / question.scale
    return 100 * weighted / form.total_weight


@dataclass(frozen=True)
class ScoreAverage:
    count: int
    average: float | None  # None: nothing evaluated in the period
    lowest: float | None
    highest: float | None


def average(scores: Iterable[float]) -> ScoreAverage:
    values = list(scores)
    if not values:
        return ScoreAverage(0, None, None, None)
    return ScoreAverage(len(values), math.fsum(values) / len(values), min(values), max(values))
