"""/api/evaluation-forms and /api/evaluations: quality forms, scoring a recorded call, and
per-agent averages over a period ("periodic evaluations"). Supervisors and admins only."""

from __future__ import annotations

from aiohttp import web

from callcenter.core.clock import Clock
from callcenter.core.evaluations import EvaluationError, EvaluationForm, Question, check_questions
from callcenter.features.evaluations.schemas import (
    AverageAnswer,
    AveragesQuery,
    AveragesReport,
    EvaluationAnswer,
    EvaluationList,
    EvaluationQuery,
    FormAnswer,
    FormList,
    NewEvaluation,
    NewForm,
)
from callcenter.features.evaluations.store import EvaluationStore, FormExists, FormNotFound
from callcenter.features.recordings.store import RecordingNotFound, RecordingStore
from callcenter.web.auth import STAFF, current_user
from callcenter.web.contract import Endpoint, failed, ok, register
from callcenter.web.params import bad_request, iso, json_error

EVALUATIONS = web.AppKey("evaluations", EvaluationStore)
EVALUATED_RECORDINGS = web.AppKey("evaluated_recordings", RecordingStore)
EVALUATION_CLOCK = web.AppKey("evaluation_clock", Clock)


def install_evaluation_routes(app: web.Application, store: EvaluationStore,
                              recordings: RecordingStore, clock: Clock) -> None:
    app[EVALUATIONS] = store
    app[EVALUATED_RECORDINGS] = recordings
    app[EVALUATION_CLOCK] = clock
    register(app, ENDPOINTS)


async def add_form(request: web.Request, body: NewForm) -> web.Response:
    try:
        questions = tuple(Question(q["id"], q["text"], q["weight"], q["scale"])
                          for q in body.questions)
        check_questions(questions)
        form = EvaluationForm(body.name.strip(), questions)
    except EvaluationError as exc:
        raise bad_request(str(exc)) from None
    try:
        stored = await request.app[EVALUATIONS].add_form(
            form, by=current_user(request).username, at=request.app[EVALUATION_CLOCK].now())
    except FormExists as exc:
        raise json_error(web.HTTPConflict, str(exc)) from None
    return FormAnswer.of(stored).response(201)


async def list_forms(request: web.Request) -> web.Response:
    forms = await request.app[EVALUATIONS].forms()
    return FormList(forms=[FormAnswer.of(f) for f in forms]).response()


async def evaluate(request: web.Request, body: NewEvaluation) -> web.Response:
    try:
        recording = await request.app[EVALUATED_RECORDINGS].get(body.recording_id)
    except RecordingNotFound:
        raise json_error(web.HTTPNotFound, f"recording_id: no recording "
                                           f"{body.recording_id}") from None
    try:
        evaluation = await request.app[EVALUATIONS].evaluate(
            recording, body.form_id, dict(body.answers), body.comments,
            by=current_user(request).username, at=request.app[EVALUATION_CLOCK].now())
    except FormNotFound:
        raise json_error(web.HTTPNotFound, f"form_id: no form {body.form_id}") from None
    except EvaluationError as exc:
        raise bad_request(str(exc)) from None
    return EvaluationAnswer.of(evaluation).response(201)


async def list_evaluations(request: web.Request, query: EvaluationQuery) -> web.Response:
    rows = await request.app[EVALUATIONS].evaluations(
        agent_id=query.agent, form_id=query.form_id, since=query.since, until=query.until,
        limit=query.limit, offset=query.offset)
    return EvaluationList(evaluations=[EvaluationAnswer.of(e) for e in rows]).response()


async def averages(request: web.Request, query: AveragesQuery) -> web.Response:
    rows = await request.app[EVALUATIONS].averages(
        since=query.since, until=query.until, agent_id=query.agent, form_id=query.form_id)
    return AveragesReport(since=iso(query.since), until=iso(query.until),
                          averages=[AverageAnswer.of(a) for a in rows]).response()


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/api/evaluation-forms", add_form, STAFF,
             "Create a quality evaluation form", "evaluations",
             {201: ok(FormAnswer), 409: failed("A form of that name exists.")},
             body=NewForm,
             body_example='{"name": "basic", "questions": [{"id": "greeting", "text": '
                          '"Greeted the caller", "weight": 1, "scale": 5}]}', body_where="",
             description="Questions with positive weights and an answer scale 0..scale; at "
                         "least one. A call's score is 100 x sum(weight x answer / scale) / "
                         "sum(weight)."),
    Endpoint("GET", "/api/evaluation-forms", list_forms, STAFF,
             "Every evaluation form", "evaluations", {200: ok(FormList)}, takes_no_query=True),
    Endpoint("POST", "/api/evaluations", evaluate, STAFF,
             "Score a recorded call with a form", "evaluations",
             {201: ok(EvaluationAnswer),
              404: failed("No such recording or form.")},
             body=NewEvaluation,
             body_example='{"recording_id": 1, "form_id": 1, "answers": {"greeting": 4}, '
                          '"comments": ""}', body_where="",
             description="Every question answered, each within its scale; the recording "
                         "must have audio and an agent. Stored with who and when."),
    Endpoint("GET", "/api/evaluations", list_evaluations, STAFF,
             "Evaluations, newest first", "evaluations", {200: ok(EvaluationList)},
             query=EvaluationQuery),
    Endpoint("GET", "/api/evaluations/averages", averages, STAFF,
             "Per agent and form: evaluations and mean score over a period", "evaluations",
             {200: ok(AveragesReport)}, query=AveragesQuery,
             description="Evaluations count by when they were made, in [since, until)."),
)
