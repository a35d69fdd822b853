"""The IVR's self-service facts in the database, on SQLite and on a real PostgreSQL:
FAQ outcomes and survey answers of each call, the FAQ report, and callback requests."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.core.clock import VirtualClock
from callcenter.core.records import (
    CallbackRequest,
    CallbackStatus,
    CallRecord,
    Disposition,
    FaqOutcome,
    FaqResult,
    SurveyAnswer,
)
from callcenter.features.callbacks.models import CallbackRow
from callcenter.features.callbacks.store import CallbackNotFound, CallbackRepository
from callcenter.features.calls.models import CallRow, FaqOutcomeRow, SurveyAnswerRow
from callcenter.features.calls.store import CallRepository, FaqTopicFigures
from callcenter.store import session_factory
from tests.support.store import count_rows

T0 = 1_795_000_000.250_001  # 2026-11-18T11:06:40.250001Z


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=T0)


@pytest.fixture
def calls(engine: AsyncEngine, clock: VirtualClock) -> CallRepository:
    return CallRepository(session_factory(engine), clock=clock)


@pytest.fixture
def callbacks(engine: AsyncEngine, clock: VirtualClock) -> CallbackRepository:
    return CallbackRepository(session_factory(engine), clock=clock)


def self_served(call_id: str, started_at: float = T0, *, ended: bool = True) -> CallRecord:
    """A caller who heard two FAQ answers (the second solved it) and answered a survey."""
    return CallRecord(
        call_id=call_id,
        started_at=started_at,
        answered_at=started_at + 0.5,
        ended_at=started_at + 90.000_001 if ended else None,
        disposition=Disposition.COMPLETED_IN_IVR if ended else None,
        faq_outcomes=[
            FaqOutcome("support", "opening_hours", started_at + 10.000_003,
                       FaqResult.NOT_SOLVED, started_at + 30),
            FaqOutcome("support", "reset_password", started_at + 35, FaqResult.SOLVED,
                       started_at + 60.5),
        ],
        survey_answers=[
            SurveyAnswer("csat", "overall", "5", started_at + 70),
            SurveyAnswer("csat", "recommend", "yes", started_at + 75.25),
        ],
    )


# --------------------------------------------------------------------------- per-call facts


async def test_faq_outcomes_and_survey_answers_round_trip_through_every_read(
    calls: CallRepository,
) -> None:
    still_in_ivr = self_served("1.1", ended=False)
    await calls.save(still_in_ivr)
    assert await calls.get("1.1") == still_in_ivr
    assert await calls.open_calls() == [still_in_ivr]

    finished = self_served("1.1")
    await calls.save(finished)
    assert await calls.get("1.1") == finished
    records, total = await calls.list()
    assert (records, total) == ([finished], 1)
    assert await calls.open_calls() == []


async def test_saving_again_replaces_the_facts_never_duplicates_them(
    calls: CallRepository, engine: AsyncEngine
) -> None:
    record = self_served("1.2")
    for _ in range(3):
        await calls.save(record)
    assert await count_rows(engine, FaqOutcomeRow) == 2
    assert await count_rows(engine, SurveyAnswerRow) == 2

    fewer = dataclasses.replace(record, faq_outcomes=record.faq_outcomes[:1], survey_answers=[])
    await calls.save(fewer)
    assert await calls.get("1.2") == fewer
    assert await count_rows(engine, FaqOutcomeRow) == 1
    assert await count_rows(engine, SurveyAnswerRow) == 0


async def test_one_calls_facts_do_not_leak_into_another(calls: CallRepository) -> None:
    await calls.save(self_served("1.3"))
    plain = CallRecord(call_id="1.4", started_at=T0 + 1)
    await calls.save(plain)
    assert await calls.get("1.4") == plain
    assert (await calls.get("1.3")) == self_served("1.3")


async def test_deleting_a_call_deletes_its_faq_outcomes_and_survey_answers(
    calls: CallRepository, engine: AsyncEngine
) -> None:
    await calls.save(self_served("1.5"))
    async with engine.begin() as connection:
        await connection.execute(delete(CallRow).where(CallRow.call_id == "1.5"))
    assert await count_rows(engine, FaqOutcomeRow) == 0
    assert await count_rows(engine, SurveyAnswerRow) == 0


def faq(**change: object) -> dict[str, object]:
    return {"faq_outcomes": [dataclasses.replace(self_served("x").faq_outcomes[0], **change)]}


def survey(**change: object) -> dict[str, object]:
    return {"survey_answers": [dataclasses.replace(self_served("x").survey_answers[0], **change)]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (faq(topic=" "), r"faq_outcomes\[0\]\.topic: must be non-empty text"),
        (faq(flow=None), r"faq_outcomes\[0\]\.flow: must be non-empty text"),
        (faq(result="maybe"), r"faq_outcomes\[0\]\.result: 'maybe' is not one of solved"),
        (faq(heard_at=float("nan")), r"faq_outcomes\[0\]\.heard_at: expected a finite number"),
        (faq(heard_at=None), r"faq_outcomes\[0\]\.heard_at: is required"),
        (faq(answered_at=1e300), r"faq_outcomes\[0\]\.answered_at: .* not a representable"),
        (survey(answer=None), r"survey_answers\[0\]\.answer is required"),
        (survey(answer="5\x00"), r"survey_answers\[0\]\.answer: contains a NUL"),
        (survey(question=""), r"survey_answers\[0\]\.question: must be non-empty text"),
        (survey(answered_at="soon"), r"survey_answers\[0\]\.answered_at: expected a finite"),
    ],
)
async def test_a_bad_fact_is_refused_naming_it_and_nothing_is_written(
    calls: CallRepository, engine: AsyncEngine, change: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await calls.save(dataclasses.replace(self_served("1.6"), **change))
    assert await count_rows(engine, CallRow) == 0
    assert await count_rows(engine, FaqOutcomeRow) == 0


# --------------------------------------------------------------------------- the FAQ report


def heard(flow: str, topic: str, at: float, result: FaqResult) -> FaqOutcome:
    return FaqOutcome(flow, topic, at, result, None if result is FaqResult.HUNG_UP else at + 5)


async def test_faq_report_counts_each_outcome_per_flow_and_topic(calls: CallRepository) -> None:
    outcomes = {
        "2.1": [heard("support", "hours", T0, FaqResult.SOLVED),
                heard("support", "password", T0 + 20, FaqResult.NOT_SOLVED)],
        "2.2": [heard("support", "hours", T0 + 60, FaqResult.SOLVED)],
        "2.3": [heard("support", "hours", T0 + 120, FaqResult.NO_ANSWER),
                heard("sales", "hours", T0 + 130, FaqResult.HUNG_UP)],
        "2.4": [heard("support", "hours", T0 + 180, FaqResult.HUNG_UP)],
    }
    for call_id, found in outcomes.items():
        await calls.save(dataclasses.replace(self_served(call_id, T0), faq_outcomes=found))

    assert await calls.faq_report() == [
        FaqTopicFigures("sales", "hours", heard=1, solved=0, not_solved=0, no_answer=0,
                        hung_up=1),
        FaqTopicFigures("support", "hours", heard=4, solved=2, not_solved=0, no_answer=1,
                        hung_up=1),
        FaqTopicFigures("support", "password", heard=1, solved=0, not_solved=1, no_answer=0,
                        hung_up=0),
    ]
    hours = (await calls.faq_report(flow="support"))[0]
    assert hours.self_service_rate == 0.5

    # [since, until) on the time each answer was heard: 2.2's and 2.3's support answers only.
    window = await calls.faq_report(since=T0 + 60, until=T0 + 130, flow="support")
    assert window == [FaqTopicFigures("support", "hours", 2, 1, 0, 1, 0)]
    assert await calls.faq_report(flow="billing") == []


async def test_an_undecided_answer_of_a_call_in_progress_is_not_counted_yet(
    calls: CallRepository,
) -> None:
    in_progress = dataclasses.replace(
        self_served("3.1", ended=False),
        faq_outcomes=[heard("support", "hours", T0, FaqResult.SOLVED),
                      heard("support", "hours", T0 + 40, FaqResult.HUNG_UP)],  # not answered yet
    )
    await calls.save(in_progress)
    assert await calls.faq_report() == [FaqTopicFigures("support", "hours", 1, 1, 0, 0, 0)]

    await calls.save(dataclasses.replace(in_progress, ended_at=T0 + 50))  # the caller left
    assert await calls.faq_report() == [FaqTopicFigures("support", "hours", 2, 1, 0, 0, 1)]


def test_the_self_service_rate_is_none_when_nothing_was_heard() -> None:
    assert FaqTopicFigures("f", "t", 0, 0, 0, 0, 0).self_service_rate is None
    assert FaqTopicFigures("f", "t", 4, 3, 1, 0, 0).self_service_rate == 0.75


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"since": T0 + 1, "until": T0}, "since .* is after until"),
        ({"since": float("inf")}, "since: inf is not a time"),
        ({"until": "today"}, "until: 'today' is not a time"),
        ({"flow": ""}, "flow: must be non-empty text"),
        ({"flow": 7}, "flow: expected text"),
    ],
)
async def test_faq_report_refuses_bad_arguments(
    calls: CallRepository, arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await calls.faq_report(**arguments)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- callbacks


def callback_for(call_id: str, at: float = T0, queue: str = "support") -> CallbackRequest:
    return CallbackRequest(
        call_id=call_id,
        queue=queue,
        number="5511987654321",
        requested_at=at,
        flow="support",
        protocol="20261118110640000001",
        caller_name="Zoë O'Brien",
        name_recording="/var/spool/asterisk/callcenter/names/4.1",
    )


async def test_a_request_is_stored_given_an_id_and_read_back(
    callbacks: CallbackRepository, engine: AsyncEngine
) -> None:
    request = callback_for("4.1")  # no call row exists: the record writer may come later
    stored = await callbacks.add(request)
    assert stored.id is not None and stored.id >= 1
    assert stored == dataclasses.replace(request, id=stored.id)
    assert await callbacks.get(stored.id) == stored
    assert await callbacks.get(stored.id + 1000) is None
    assert await count_rows(engine, CallbackRow) == 1


async def test_the_list_puts_pending_requests_first_oldest_first_and_pages(
    callbacks: CallbackRepository,
) -> None:
    ids = {}
    for n, (at, queue) in enumerate([(T0 + 30, "support"), (T0, "sales"), (T0 + 10, "support"),
                                     (T0 + 5, "support")]):
        ids[n] = (await callbacks.add(callback_for(f"5.{n}", at, queue))).id
    await callbacks.set_status(ids[3], CallbackStatus.DONE)  # the second oldest is closed

    everything, total = await callbacks.list()
    assert total == 4
    assert [r.id for r in everything] == [ids[1], ids[2], ids[0], ids[3]]

    pending, total = await callbacks.list(status="pending", queue="support")
    assert (total, [r.id for r in pending]) == (2, [ids[2], ids[0]])
    done, total = await callbacks.list(status=CallbackStatus.DONE)
    assert (total, [(r.id, r.status) for r in done]) == (1, [(ids[3], CallbackStatus.DONE)])

    first, total = await callbacks.list(limit=3)
    rest, _ = await callbacks.list(limit=3, offset=3)
    beyond = await callbacks.list(limit=3, offset=100)
    assert [r.id for r in first + rest] == [r.id for r in everything]
    assert beyond == ([], 4)


@pytest.mark.parametrize("final", [CallbackStatus.DONE, CallbackStatus.CANCELLED, "failed"])
async def test_a_pending_request_may_become_any_final_status_once(
    callbacks: CallbackRepository, engine: AsyncEngine, clock: VirtualClock, final: str
) -> None:
    stored = await callbacks.add(callback_for("6.1"))
    clock.advance(42.5)
    changed = await callbacks.set_status(stored.id, final)
    assert changed == dataclasses.replace(stored, status=CallbackStatus(final))
    assert await callbacks.get(stored.id) == changed
    async with engine.connect() as connection:
        updated_at = await connection.scalar(select(CallbackRow.updated_at))
    assert updated_at.timestamp() == T0 + 42.5

    for again in ("pending", "done", "cancelled"):
        with pytest.raises(ValueError, match=f"cannot change from {changed.status} to {again}"):
            await callbacks.set_status(stored.id, again)
    assert await callbacks.get(stored.id) == changed


async def test_pending_to_pending_is_not_a_change(callbacks: CallbackRepository) -> None:
    stored = await callbacks.add(callback_for("6.2"))
    with pytest.raises(ValueError, match="from pending to pending"):
        await callbacks.set_status(stored.id, CallbackStatus.PENDING)


async def test_two_clients_racing_to_close_a_request_cannot_both_win(
    callbacks: CallbackRepository,
) -> None:
    stored = await callbacks.add(callback_for("6.3"))
    results = await asyncio.gather(
        callbacks.set_status(stored.id, "done"),
        callbacks.set_status(stored.id, "cancelled"),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, CallbackRequest)]
    losers = [r for r in results if isinstance(r, ValueError)]
    assert len(winners) == 1 and len(losers) == 1
    assert await callbacks.get(stored.id) == winners[0]


async def test_an_unknown_request_cannot_change(callbacks: CallbackRepository) -> None:
    with pytest.raises(CallbackNotFound, match="callback request 999: no such request"):
        await callbacks.set_status(999, "done")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"number": "55 11 98765"}, "number: '55 11 98765' is not a phone number"),
        ({"number": ""}, "number: must be non-empty text"),
        ({"number": "5511987654321\n"}, r"number: '5511987654321\\n' is not a phone"),
        ({"queue": None}, "queue: must be non-empty text"),
        ({"call_id": "  "}, "call_id: must be non-empty text"),
        ({"flow": "sup\x00port"}, "flow: contains a NUL"),
        ({"requested_at": float("-inf")}, "requested_at: expected a finite number"),
        ({"status": "lost"}, "status: 'lost' is not one of pending, done"),
        ({"caller_name": b"Ada"}, "caller_name: expected text"),
        ({"id": 7}, "id: a new request has no id yet, got 7"),
    ],
)
async def test_a_bad_request_is_refused_naming_the_field_and_nothing_is_written(
    callbacks: CallbackRepository, engine: AsyncEngine, change: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await callbacks.add(dataclasses.replace(callback_for("7.1"), **change))
    assert await count_rows(engine, CallbackRow) == 0


@pytest.mark.parametrize("bad_id", [0, -1, True, "1", 1.0, 2**63])
async def test_a_bad_id_is_refused(callbacks: CallbackRepository, bad_id: object) -> None:
    with pytest.raises(ValueError, match=r"id: .* is not a callback request id"):
        await callbacks.get(bad_id)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"id: .* is not a callback request id"):
        await callbacks.set_status(bad_id, "done")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"limit": 0}, "limit: 0 is not a whole number from 1 to 500"),
        ({"limit": 10**6}, "limit"),
        ({"offset": -1}, "offset: -1"),
        ({"status": "open"}, "status: 'open' is not one of"),
        ({"queue": ""}, "queue: must be non-empty text"),
    ],
)
async def test_the_list_refuses_bad_arguments(
    callbacks: CallbackRepository, arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await callbacks.list(**arguments)  # type: ignore[arg-type]


async def test_set_status_refuses_an_unknown_or_missing_status(
    callbacks: CallbackRepository,
) -> None:
    stored = await callbacks.add(callback_for("8.1"))
    with pytest.raises(ValueError, match="status: 'closed' is not one of pending"):
        await callbacks.set_status(stored.id, "closed")
    with pytest.raises(ValueError, match="status: is required"):
        await callbacks.set_status(stored.id, None)  # type: ignore[arg-type]
    assert (await callbacks.get(stored.id)).status is CallbackStatus.PENDING
