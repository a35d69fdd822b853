"""Call detail records survive the database: on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.core.clock import VirtualClock, to_datetime
from callcenter.core.records import (
    AgentAttempt,
    AttemptOutcome,
    CallRecord,
    Disposition,
    FaqOutcome,
    FaqResult,
    HangupBy,
    IvrStep,
    SurveyAnswer,
)
from callcenter.features.calls.models import AttemptRow, CallRow
from callcenter.features.calls.store import CallRepository
from callcenter.store import create_engine, ping, schema, session_factory, upgrade
from callcenter.store.db import alembic_config
from tests.support.store import count_rows, migrate, table_names

T0 = 1_732_812_345.170_001  # 2024-11-28T16:45:45.170001Z


def open_call(call_id: str, started_at: float = T0, queue: str | None = "sales") -> CallRecord:
    """A call in the IVR, queued, with one agent's phone ringing."""
    return CallRecord(
        call_id=call_id,
        started_at=started_at,
        linked_id=call_id,
        channel=f"PJSIP/trunk-{call_id}",
        caller_number="+4930123456",
        caller_name="Ada",
        dialed_number="100",
        answered_at=started_at + 0.25,
        ivr_path=[
            IvrStep(node="welcome", at=started_at + 0.5),
            IvrStep(node="main", at=started_at + 3.000_017, input="1"),
        ],
        queue=queue,
        queued_at=None if queue is None else started_at + 4.5,
        attempts=[AgentAttempt(agent_id="agent1", started_at=started_at + 5.000_001)],
    )


def closed(record: CallRecord) -> CallRecord:
    """The same call after agent1 missed it, agent2 took it and the caller hung up."""
    start = record.started_at
    return dataclasses.replace(
        record,
        ended_at=start + 95.999_999,
        wait_seconds=20.5,
        agent_id="agent2",
        agent_answered_at=start + 25.0,
        talk_seconds=70.999_999,
        hangup_by=HangupBy.CALLER,
        hangup_cause="16",
        disposition=Disposition.ANSWERED,
        attempts=[
            AgentAttempt("agent1", start + 5.000_001, start + 20.0, AttemptOutcome.NO_ANSWER),
            AgentAttempt("agent2", start + 20.000_002, start + 25.0, AttemptOutcome.ANSWERED),
        ],
    )


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=T0)


@pytest.fixture
def repository(engine: AsyncEngine, clock: VirtualClock) -> CallRepository:
    return CallRepository(session_factory(engine), clock=clock)


# --------------------------------------------------------------------------- schema


# Every table the models describe (each feature's row module), plus Alembic's own.
ALL_TABLES = {"alembic_version", *schema.metadata.tables}


async def test_upgrade_creates_all_tables_and_can_run_again(empty_db_url: str) -> None:
    engine = create_engine(empty_db_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(table_names) == set()
        await upgrade(empty_db_url)
        await upgrade(empty_db_url)  # already at head: nothing to do, no error
        async with engine.connect() as connection:
            assert await connection.run_sync(table_names) == ALL_TABLES
            version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
        head = ScriptDirectory.from_config(alembic_config(empty_db_url)).get_current_head()
        assert version == head
    finally:
        await engine.dispose()


async def test_the_self_service_migration_downgrades_and_upgrades_again(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(migrate, db_url, "downgrade", "0002")
        async with engine.connect() as connection:
            assert await connection.run_sync(table_names) == {
                "alembic_version", "calls", "call_attempts"
            }
        await upgrade(db_url)
        async with engine.connect() as connection:
            assert await connection.run_sync(table_names) == ALL_TABLES
    finally:
        await engine.dispose()


async def test_migration_builds_exactly_the_schema_the_models_describe(engine: AsyncEngine) -> None:
    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, schema.metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_sqlite_file_and_its_folder_are_created_with_wal(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'new' / 'deeper' / 'cdr.db'}"
    await upgrade(url)
    assert (tmp_path / "new" / "deeper" / "cdr.db").exists()
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("PRAGMA journal_mode")) == "wal"
            assert await connection.scalar(text("PRAGMA foreign_keys")) == 1
    finally:
        await engine.dispose()


def test_an_unsupported_database_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="'mysql\\+aiomysql' is not supported") as refused:
        create_engine("mysql+aiomysql://admin:s3cret@db/cdr")
    assert "s3cret" not in str(refused.value)


# --------------------------------------------------------------------------- saving and reading


async def test_an_open_call_then_its_closed_record_read_back_exactly(
    repository: CallRepository, engine: AsyncEngine
) -> None:
    record = open_call("1732812345.17")
    await repository.save(record)
    assert await repository.get("1732812345.17") == record

    finished = closed(record)
    await repository.save(finished)
    stored = await repository.get("1732812345.17")
    assert stored == finished
    assert stored is not None
    assert [a.agent_id for a in stored.attempts] == ["agent1", "agent2"]
    assert stored.ivr_path[1] == IvrStep(node="main", at=T0 + 3.000_017, input="1")
    assert await count_rows(engine, CallRow) == 1


async def test_times_keep_their_microseconds_and_are_stored_as_utc(
    repository: CallRepository, engine: AsyncEngine
) -> None:
    started = datetime(2024, 11, 28, 23, 59, 59, 999_999, tzinfo=UTC).timestamp()
    await repository.save(open_call("1.1", started_at=started))
    stored = await repository.get("1.1")
    assert stored is not None
    assert stored.started_at == started
    async with engine.connect() as connection:
        row = (await connection.execute(select(CallRow.started_at))).one()
    assert row.started_at == datetime(2024, 11, 28, 23, 59, 59, 999_999, tzinfo=UTC)
    assert row.started_at.utcoffset().total_seconds() == 0


async def test_a_time_finer_than_a_microsecond_comes_back_to_the_nearest_one(
    repository: CallRepository,
) -> None:
    precise = T0 + 0.000_000_3
    await repository.save(open_call("1.2", started_at=precise))
    stored = await repository.get("1.2")
    assert stored is not None
    assert abs(stored.started_at - precise) < 0.000_001
    assert to_datetime(stored.started_at) == to_datetime(precise)


async def test_saving_the_same_call_again_does_not_duplicate_attempts(
    repository: CallRepository, engine: AsyncEngine
) -> None:
    record = closed(open_call("1.3"))
    for _ in range(3):
        await repository.save(record)
    assert await count_rows(engine, CallRow) == 1
    assert await count_rows(engine, AttemptRow) == 2
    stored = await repository.get("1.3")
    assert stored is not None
    assert stored.attempts == record.attempts


async def test_fewer_attempts_replace_the_stored_ones(
    repository: CallRepository, engine: AsyncEngine
) -> None:
    await repository.save(closed(open_call("1.4")))
    await repository.save(dataclasses.replace(open_call("1.4"), attempts=[]))
    assert await count_rows(engine, AttemptRow) == 0
    stored = await repository.get("1.4")
    assert stored is not None
    assert stored.attempts == []


async def test_quotes_and_unicode_in_text_round_trip(repository: CallRepository) -> None:
    tricky = "O'Brien \"Zoë\" 陳 📞 '); DROP TABLE calls; --"
    record = dataclasses.replace(
        open_call("1.5"),
        caller_name=tricky,
        note="reconciled: channel gone\nafter restart",
        ivr_path=[IvrStep(node='menü "main"', at=T0 + 1, input="invalid:'")],
    )
    await repository.save(record)
    assert await repository.get("1.5") == record


async def test_an_unknown_call_is_none(repository: CallRepository) -> None:
    assert await repository.get("no.such.call") is None


async def test_deleting_a_call_deletes_its_attempts(
    repository: CallRepository, engine: AsyncEngine
) -> None:
    await repository.save(closed(open_call("1.6")))
    async with engine.begin() as connection:
        await connection.execute(delete(CallRow).where(CallRow.call_id == "1.6"))
    assert await count_rows(engine, AttemptRow) == 0


async def test_updated_at_follows_the_clock(
    repository: CallRepository, engine: AsyncEngine, clock: VirtualClock
) -> None:
    async def stamp() -> float:
        async with engine.connect() as connection:
            return (await connection.scalar(select(CallRow.updated_at))).timestamp()

    await repository.save(open_call("1.7"))
    assert await stamp() == T0
    clock.advance(30.5)
    await repository.save(closed(open_call("1.7")))
    assert await stamp() == T0 + 30.5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"caller_name": "Ada\x00"}, "caller_name: contains a NUL character"),
        ({"caller_number": "\ud800"}, "caller_number: '\\\\ud800' is not valid Unicode"),
        ({"disposition": "hung"}, "disposition: 'hung' is not one of answered"),
        ({"ended_at": float("nan")}, "ended_at: expected a finite number"),
        ({"call_id": " "}, "call_id must be a non-empty string"),
        ({"ivr_path": [IvrStep(node="main", at=float("inf"))]}, r"ivr_path\[0\].at"),
    ],
)
async def test_a_bad_record_is_refused_naming_the_field_and_nothing_is_written(
    repository: CallRepository, engine: AsyncEngine, change: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await repository.save(dataclasses.replace(open_call("1.8"), **change))
    assert await count_rows(engine, CallRow) == 0


class _Follower:
    """Remembers what it was shown, or refuses a closed record."""

    def __init__(self, refuse_closed: bool = False) -> None:
        self.seen: list[tuple[int, str, bool]] = []
        self._refuse_closed = refuse_closed

    async def follow(self, session: object, call_pk: int, record: CallRecord) -> None:
        if self._refuse_closed and not record.is_open:
            raise RuntimeError("refused")
        self.seen.append((call_pk, record.call_id, record.is_open))


async def test_followers_see_every_stored_record_with_its_row_id(
    engine: AsyncEngine, clock: VirtualClock
) -> None:
    follower = _Follower()
    repository = CallRepository(session_factory(engine), clock=clock, followers=[follower])
    await repository.save(open_call("1.9"))
    await repository.save(closed(open_call("1.9")))
    assert await repository.insert_if_absent(closed(open_call("1.10")))
    assert not await repository.insert_if_absent(closed(open_call("1.9")))
    (first_pk, _, _), (again_pk, _, _), (other_pk, _, _) = follower.seen
    assert [(call_id, is_open) for _, call_id, is_open in follower.seen] == [
        ("1.9", True), ("1.9", False), ("1.10", False)]
    assert first_pk == again_pk != other_pk


async def test_a_follower_that_fails_takes_the_record_down_with_it(
    engine: AsyncEngine, clock: VirtualClock
) -> None:
    """Derived rows and the record stand or fall together: nothing derived is ever left
    for a record the database does not hold, nor the other way round."""
    repository = CallRepository(session_factory(engine), clock=clock,
                                followers=[_Follower(refuse_closed=True)])
    await repository.save(open_call("1.11"))
    with pytest.raises(RuntimeError, match="refused"):
        await repository.save(closed(open_call("1.11")))
    stored = await repository.get("1.11")
    assert stored is not None and stored.is_open


async def test_records_saved_together_are_stored_as_saved_one_by_one(
    repository: CallRepository, engine: AsyncEngine
) -> None:
    await repository.save(closed(open_call("2.1")))  # stored before: replaced
    await repository.save_many([
        open_call("2.1"), open_call("2.2"), closed(open_call("2.3", queue=None)),
        closed(open_call("2.2")),  # the same call again: its last version wins
    ])
    assert await repository.get("2.1") == open_call("2.1")
    assert await repository.get("2.2") == closed(open_call("2.2"))
    assert await repository.get("2.3") == closed(open_call("2.3", queue=None))
    assert await count_rows(engine, CallRow) == 3
    assert await count_rows(engine, AttemptRow) == 1 + 2 + 2
    await repository.save_many([])


async def test_records_saved_together_stand_or_fall_together(
    repository: CallRepository, engine: AsyncEngine
) -> None:
    bad = dataclasses.replace(open_call("2.5"), caller_name="a\x00")
    with pytest.raises(ValueError, match="caller_name"):
        await repository.save_many([open_call("2.4"), bad])
    assert await count_rows(engine, CallRow) == 0
    refusing = CallRepository(session_factory(engine), followers=[_Follower(refuse_closed=True)])
    with pytest.raises(RuntimeError, match="refused"):
        await refusing.save_many([open_call("2.6"), closed(open_call("2.7"))])
    assert await count_rows(engine, CallRow) == 0


async def test_followers_without_follow_many_see_each_record_saved_together(
    engine: AsyncEngine, clock: VirtualClock
) -> None:
    follower = _Follower()
    repository = CallRepository(session_factory(engine), clock=clock, followers=[follower])
    await repository.save(open_call("2.8"))
    await repository.save_many([closed(open_call("2.8")), open_call("2.9")])
    (first_pk, _, _), (again_pk, _, _), (other_pk, _, _) = follower.seen
    assert [(call_id, is_open) for _, call_id, is_open in follower.seen] == [
        ("2.8", True), ("2.8", False), ("2.9", True)]
    assert first_pk == again_pk != other_pk


# --------------------------------------------------------------------------- listing


async def test_list_pages_newest_first_filtered_by_time_range_and_queue(
    repository: CallRepository,
) -> None:
    # Ten calls a minute apart, alternating between two queues.
    for minute in range(10):
        queue = "sales" if minute % 2 == 0 else "support"
        await repository.save(open_call(f"100.{minute}", T0 + 60 * minute, queue=queue))

    everything, total = await repository.list()
    assert total == 10
    assert [r.call_id for r in everything] == [f"100.{m}" for m in range(9, -1, -1)]

    window, total = await repository.list(since=T0 + 120, until=T0 + 420)  # minutes 2..6
    assert total == 5
    assert [r.call_id for r in window] == ["100.6", "100.5", "100.4", "100.3", "100.2"]

    sales, total = await repository.list(since=T0 + 120, until=T0 + 420, queue="sales")
    assert total == 3
    assert [r.call_id for r in sales] == ["100.6", "100.4", "100.2"]

    first, total = await repository.list(queue="support", limit=2)
    second, _ = await repository.list(queue="support", limit=2, offset=2)
    beyond, beyond_total = await repository.list(queue="support", limit=2, offset=10)
    assert total == 5
    assert [r.call_id for r in first] == ["100.9", "100.7"]
    assert [r.call_id for r in second] == ["100.5", "100.3"]
    assert (beyond, beyond_total) == ([], 5)
    assert all(r.attempts for r in first + second)


async def test_until_excludes_a_call_starting_exactly_then(repository: CallRepository) -> None:
    await repository.save(open_call("200.1", T0))
    assert await repository.list(until=T0) == ([], 0)
    records, total = await repository.list(since=T0, until=T0 + 0.000_001)
    assert (total, [r.call_id for r in records]) == (1, ["200.1"])


@pytest.mark.parametrize(
    "arguments",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": -5},
        {"offset": -1},
        {"since": T0 + 10, "until": T0},
        {"since": float("nan")},
    ],
)
async def test_list_refuses_bad_paging_and_ranges(
    repository: CallRepository, arguments: dict[str, float]
) -> None:
    with pytest.raises(ValueError):
        await repository.list(**arguments)  # type: ignore[arg-type]


async def test_open_calls_are_those_not_yet_ended_oldest_first(
    repository: CallRepository,
) -> None:
    await repository.save(open_call("300.2", T0 + 20))
    await repository.save(closed(open_call("300.1", T0 + 10)))
    await repository.save(open_call("300.0", T0))
    assert [r.call_id for r in await repository.open_calls()] == ["300.0", "300.2"]
    await repository.save(closed(open_call("300.0", T0)))
    assert [r.call_id for r in await repository.open_calls()] == ["300.2"]


# --------------------------------------------------------------------------- health


async def test_ping_is_true_for_a_live_database(engine: AsyncEngine) -> None:
    assert await ping(engine) is True


async def test_ping_is_false_when_postgresql_is_unreachable() -> None:
    engine = create_engine("postgresql+asyncpg://nobody:x@127.0.0.1:1/none")
    try:
        assert await ping(engine) is False
    finally:
        await engine.dispose()


async def test_ping_gives_up_after_its_timeout_when_the_server_never_answers() -> None:
    silent: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    engine = create_engine(f"postgresql+asyncpg://nobody:x@127.0.0.1:{port}/none")
    try:
        started = time.monotonic()
        assert await ping(engine, timeout=0.2) is False
        assert time.monotonic() - started < 2
    finally:
        await engine.dispose()
        for writer in silent:
            writer.close()
        server.close()
        await server.wait_closed()


# --------------------------------------------------------------------------- any record


def posix_times() -> st.SearchStrategy[float]:
    """Whole microseconds between 2000 and 2100, the precision the store keeps."""
    return st.integers(946_684_800_000_000, 4_102_444_800_000_000).map(lambda us: us / 1e6)


text_values = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
optional_text = st.none() | text_values
optional_times = st.none() | posix_times()
durations = st.none() | st.floats(min_value=0, max_value=1e7, allow_nan=False)

attempts = st.builds(
    AgentAttempt,
    agent_id=text_values,
    started_at=posix_times(),
    ended_at=optional_times,
    outcome=st.sampled_from(AttemptOutcome),
)

named = text_values.filter(str.strip)
faq_outcomes = st.builds(
    FaqOutcome,
    flow=named,
    topic=named,
    heard_at=posix_times(),
    result=st.sampled_from(FaqResult),
    answered_at=optional_times,
)
survey_answers = st.builds(
    SurveyAnswer, survey=named, question=named, answer=text_values, answered_at=posix_times()
)

call_records = st.builds(
    CallRecord,
    call_id=st.from_regex(r"[0-9]{1,10}\.[0-9]{1,5}", fullmatch=True),
    started_at=posix_times(),
    linked_id=optional_text,
    channel=optional_text,
    caller_number=optional_text,
    caller_name=optional_text,
    dialed_number=optional_text,
    answered_at=optional_times,
    ended_at=optional_times,
    ivr_path=st.lists(
        st.builds(IvrStep, node=text_values, at=posix_times(), input=optional_text), max_size=4
    ),
    queue=optional_text,
    queued_at=optional_times,
    wait_seconds=durations,
    agent_id=optional_text,
    agent_answered_at=optional_times,
    talk_seconds=durations,
    hangup_by=st.none() | st.sampled_from(HangupBy),
    hangup_cause=optional_text,
    disposition=st.none() | st.sampled_from(Disposition),
    # Attempts come back ordered by start time, as the core records them.
    attempts=st.lists(attempts, max_size=4).map(
        lambda found: sorted(found, key=lambda a: a.started_at)
    ),
    # So do FAQ outcomes and survey answers, by the time they were heard or given.
    faq_outcomes=st.lists(faq_outcomes, max_size=4).map(
        lambda found: sorted(found, key=lambda f: f.heard_at)
    ),
    survey_answers=st.lists(survey_answers, max_size=4).map(
        lambda found: sorted(found, key=lambda a: a.answered_at)
    ),
    note=optional_text,
)


@pytest.fixture
async def sqlite_repository(tmp_path: Path) -> AsyncIterator[CallRepository]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cdr.db'}"
    await upgrade(url)
    engine = create_engine(url)
    yield CallRepository(session_factory(engine))
    await engine.dispose()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(record=call_records)
async def test_any_call_record_round_trips_through_sqlite(
    sqlite_repository: CallRepository, record: CallRecord
) -> None:
    # The database is shared by the examples, so a repeated call_id is an update: still exact.
    await sqlite_repository.save(record)
    assert await sqlite_repository.get(record.call_id) == record


async def test_a_call_is_found_by_its_protocol_number(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        repo = CallRepository(session_factory(engine))
        for n in range(3):
            await repo.save(CallRecord(call_id=f"p.{n}", started_at=1_795_000_000.0 + n,
                                       protocol=f"2026111811064{n}000001"))
        found, total = await repo.list(protocol="20261118110641000001")
        assert total == 1 and [r.call_id for r in found] == ["p.1"]
        assert (await repo.get("p.1")).protocol == "20261118110641000001"
    finally:
        await engine.dispose()
