"""Quality evaluations: the score (hand-worked forms and hypothesis), forms refused with the
question and field named, the store on both databases (per-agent averages equal to a plain
mean of the rows, over random histories), and the routes with their roles."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from callcenter.core.evaluations import (
    EvaluationError,
    EvaluationForm,
    Question,
    average,
    score,
)
from callcenter.core.recording_policy import PolicyRule
from callcenter.features.accounts.store import Role
from callcenter.features.evaluations.store import EvaluationStore
from callcenter.features.recordings.models import CallRecordingRow
from callcenter.features.recordings.store import RecordingStore
from tests.support.web import client_signed_as
from tests.unit.test_recordings import ALL, served, stored_call, world_with

T0 = 1_795_000_000.0
FORM = EvaluationForm("basic", (
    Question("greeting", "Greeted the caller by name", 1, 5),
    Question("solved", "Solved the problem", 3, 1),
    Question("tone", "Friendly tone", 2, 10),
))


# --------------------------------------------------------------------------- the score


def test_a_hand_worked_score():
    # 100 * (1 * 4/5 + 3 * 1/1 + 2 * 5/10) / (1 + 3 + 2) = 100 * 4.8 / 6 = 80
    assert score(FORM, {"greeting": 4, "solved": 1, "tone": 5}) == pytest.approx(80)
    # The weightiest question failed: 100 * (1 + 0 + 2) / 6 = 50
    assert score(FORM, {"greeting": 5, "solved": 0, "tone": 10}) == pytest.approx(50)


@given(st.lists(st.tuples(st.floats(0.01, 100), st.integers(1, 10)), min_size=1,
                max_size=8), st.data())
def test_a_score_is_a_weighted_average_between_0_and_100(spec, data):
    form = EvaluationForm("f", tuple(Question(f"q{i}", "?", weight, scale)
                                     for i, (weight, scale) in enumerate(spec)))
    answers = {q.id: data.draw(st.integers(0, q.scale)) for q in form.questions}
    value = score(form, answers)
    assert 0 <= value <= 100
    assert score(form, {q.id: q.scale for q in form.questions}) == pytest.approx(100)
    assert score(form, {q.id: 0 for q in form.questions}) == 0
    # Doubling every weight changes nothing: only their proportions count.
    doubled = EvaluationForm("f", tuple(Question(q.id, q.text, 2 * q.weight, q.scale)
                                        for q in form.questions))
    assert score(doubled, answers) == pytest.approx(value)


@pytest.mark.parametrize(("answers", "message"), [
    ({"greeting": 4, "solved": 1}, "answers.tone: is required"),
    ({"greeting": 6, "solved": 1, "tone": 5}, "answers.greeting: 6 is not a whole number "
                                              "from 0 to 5"),
    ({"greeting": True, "solved": 1, "tone": 5}, "answers.greeting"),
    ({"greeting": 4, "solved": 1, "tone": 5, "extra": 1}, "answers.extra: the form"),
])
def test_an_answer_sheet_the_form_cannot_take_is_refused(answers, message):
    with pytest.raises(EvaluationError, match=message):
        score(FORM, answers)


@pytest.mark.parametrize(("questions", "message"), [
    ((), "at least one question"),
    ((Question("a", "A", 0, 5),), r"questions\[0\].weight: 0 is not a positive number"),
    ((Question("a", "A", -1, 5),), r"questions\[0\].weight"),
    ((Question("a", "A", math.inf, 5),), r"questions\[0\].weight"),
    ((Question("a", "A", 1, 0),), r"questions\[0\].scale"),
    ((Question("a", "A", 1, 5), Question("a", "B", 1, 5)), r"questions\[1\].id: 'a' is used"),
    ((Question("A b", "A", 1, 5),), r"questions\[0\].id"),
    ((Question("a", " ", 1, 5),), r"questions\[0\].text"),
])
def test_a_form_that_cannot_score_is_refused_naming_the_question(questions, message):
    with pytest.raises(EvaluationError, match=message):
        EvaluationForm("bad", questions)


def test_the_average_of_nothing_is_none():
    assert average([]).average is None and average([]).count == 0
    assert average([50, 100]).average == 75


# --------------------------------------------------------------------------- the store


async def recorded(sessions, tmp_path: Path, calls: dict[str, str]) -> dict[str, int]:
    """Stored recordings: call id -> agent; returns call id -> recording id."""
    w = world_with(sessions, tmp_path, [PolicyRule(ALL, queue="sales")])
    ids = {}
    for call_id, agent_id in calls.items():
        session_id = await stored_call(w, call_id)
        ids[call_id] = session_id
        if agent_id != "agent1":  # stored_call connects agent1: hand the row to another
            async with sessions.begin() as session:
                await session.execute(update(CallRecordingRow).where(
                    CallRecordingRow.id == session_id).values(agent_id=agent_id))
    return ids


async def test_an_evaluation_stores_its_score_with_who_and_when(sessions, tmp_path):
    ids = await recorded(sessions, tmp_path, {"c1": "agent1"})
    store, recordings = EvaluationStore(sessions), RecordingStore(sessions)
    form = await store.add_form(FORM, by="sue", at=T0)
    assert (await store.form(form.id)).form == FORM
    evaluation = await store.evaluate(await recordings.get(ids["c1"]), form.id,
                                      {"greeting": 4, "solved": 1, "tone": 5}, "good call",
                                      by="sue", at=T0 + 60)
    assert (evaluation.score, evaluation.agent_id, evaluation.call_id) == (
        pytest.approx(80), "agent1", "c1")
    assert (evaluation.evaluated_by, evaluation.evaluated_at) == ("sue", T0 + 60)
    [listed] = await store.evaluations(agent_id="agent1")
    assert listed == evaluation


async def test_a_recording_without_audio_cannot_be_evaluated(sessions, tmp_path):
    w = world_with(sessions, tmp_path, [PolicyRule(ALL, queue="sales")])
    recording_id = await stored_call(w, "c9")
    await w.service.delete(recording_id, "sue")
    store = EvaluationStore(sessions)
    form = await store.add_form(FORM, by="sue", at=T0)
    with pytest.raises(EvaluationError, match="no audio"):
        await store.evaluate(await w.store.get(recording_id), form.id,
                             {"greeting": 4, "solved": 1, "tone": 5}, "", by="sue", at=T0)


@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.integers(0, 5),
                                  st.integers(0, 1), st.integers(0, 10),
                                  st.integers(0, 20 * 86_400)), max_size=12),
       window=st.tuples(st.integers(0, 10 * 86_400), st.integers(1, 20 * 86_400)))
async def test_periodic_averages_equal_the_mean_of_the_rows_in_the_period(
        sessions, tmp_path_factory, history, window):
    tmp_path = tmp_path_factory.mktemp("evaluations")
    store = EvaluationStore(sessions)
    name = f"form-{tmp_path.name}"  # hypothesis reuses the database between examples
    form = await store.add_form(EvaluationForm(name, FORM.questions), by="sue", at=T0)
    calls = {f"{tmp_path.name}-{c}": agent for c, agent in
             (("c1", "agent1"), ("c2", "agent2"), ("c3", "agent1"))}
    ids = await recorded(sessions, tmp_path, calls)
    recordings = RecordingStore(sessions)
    made = []
    for call, greeting, solved, tone, at in history:
        call_id = f"{tmp_path.name}-{call}"
        made.append(await store.evaluate(
            await recordings.get(ids[call_id]), form.id,
            {"greeting": greeting, "solved": solved, "tone": tone}, "", by="sue",
            at=T0 + at))
    since, until = T0 + window[0], T0 + window[0] + window[1]
    figures = {a.agent_id: a.figures for a in await store.averages(
        since=since, until=until, form_id=form.id)}
    for agent_id in ("agent1", "agent2"):
        scores = [e.score for e in made if e.agent_id == agent_id
                  and since <= e.evaluated_at < until]
        if not scores:
            assert agent_id not in figures
            continue
        assert figures[agent_id].count == len(scores)
        assert figures[agent_id].average == pytest.approx(sum(scores) / len(scores))
        assert (figures[agent_id].lowest, figures[agent_id].highest) == (
            pytest.approx(min(scores)), pytest.approx(max(scores)))
        brute = await store.scores(agent_id, form.id, since=since, until=until)
        assert brute.count == len(scores)
        assert brute.average == pytest.approx(figures[agent_id].average)


# --------------------------------------------------------------------------- the routes


NEW_FORM = {"name": "basic", "questions": [
    {"id": "greeting", "text": "Greeted the caller", "weight": 1, "scale": 5},
    {"id": "solved", "text": "Solved it", "weight": 3, "scale": 1}]}


async def test_supervisors_make_forms_score_calls_and_read_averages(sessions, tmp_path):
    w, server, accounts = await served(sessions, tmp_path)
    recording_id = await stored_call(w, "1795000000.60")
    supervisor = await client_signed_as(server, accounts, [Role.SUPERVISOR], username="sue")
    agent = await client_signed_as(server, accounts, [Role.AGENT], agent_id="agent1")
    try:
        for method, path in (("post", "/api/evaluation-forms"), ("get", "/api/evaluations"),
                             ("get", "/api/evaluations/averages"),
                             ("get", "/api/evaluation-forms")):
            response = await getattr(agent, method)(path, json=NEW_FORM if method == "post"
                                                    else None)
            assert response.status == 403, path
        created = await supervisor.post("/api/evaluation-forms", json=NEW_FORM)
        assert created.status == 201, await created.text()
        form = await created.json()
        assert (await supervisor.post("/api/evaluation-forms", json=NEW_FORM)).status == 409
        scored = await supervisor.post("/api/evaluations", json={
            "recording_id": recording_id, "form_id": form["id"],
            "answers": {"greeting": 4, "solved": 1}, "comments": "kind"})
        assert scored.status == 201, await scored.text()
        body = await scored.json()
        assert body["score"] == pytest.approx(100 * (0.8 + 3) / 4)
        assert (body["agent_id"], body["evaluated_by"]) == ("agent1", "sue")
        averages = await (await supervisor.get("/api/evaluations/averages", params={
            "agent": "agent1", "since": "2026-01-01T00:00:00Z"})).json()
        assert [(a["agent_id"], a["evaluations"], a["average"]) for a in averages["averages"]] \
            == [("agent1", 1, pytest.approx(body["score"]))]
    finally:
        await supervisor.close()
        await agent.close()


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"name": "x", "questions": []}, 400, "questions"),
    ({"name": "x", "questions": [{"id": "a", "text": "A", "weight": 0, "scale": 5}]}, 400,
     r"questions\[0\].weight"),
    ({"name": "x", "questions": [{"id": "a", "text": "A", "weight": 1}]}, 400,
     r"questions\[0\]"),
    ({"name": "", "questions": NEW_FORM["questions"]}, 400, "name"),
])
async def test_a_bad_form_is_refused_and_nothing_is_stored(sessions, tmp_path, body, status,
                                                           message):
    _world, server, accounts = await served(sessions, tmp_path)
    admin = await client_signed_as(server, accounts, [Role.ADMIN])
    try:
        response = await admin.post("/api/evaluation-forms", json=body)
        assert response.status == status
        assert re.search(message, (await response.json())["error"])
        assert (await (await admin.get("/api/evaluation-forms")).json())["forms"] == []
    finally:
        await admin.close()


async def test_scoring_a_missing_recording_or_with_wrong_answers_is_refused(sessions, tmp_path):
    w, server, accounts = await served(sessions, tmp_path)
    recording_id = await stored_call(w, "1795000000.61")
    admin = await client_signed_as(server, accounts, [Role.ADMIN])
    try:
        form = await (await admin.post("/api/evaluation-forms", json=NEW_FORM)).json()
        missing = await admin.post("/api/evaluations", json={
            "recording_id": 999, "form_id": form["id"], "answers": {}})
        assert missing.status == 404
        wrong = await admin.post("/api/evaluations", json={
            "recording_id": recording_id, "form_id": form["id"], "answers": {"greeting": 9,
                                                                           "solved": 1}})
        assert wrong.status == 400
        assert "answers.greeting: 9 is not" in (await wrong.json())["error"]
        assert (await (await admin.get("/api/evaluations")).json())["evaluations"] == []
    finally:
        await admin.close()
