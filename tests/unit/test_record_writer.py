"""The record writer: a refused record does not block the others, transient errors are
retried with backoff, records survive a SIGKILL and a shutdown in the spool and are stored
exactly once after the restart. On SQLite and a real PostgreSQL where a database is used."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import socket
import stat
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.clock import VirtualClock
from callcenter.core.records import CallRecord, Disposition, HangupBy, IvrStep
from callcenter.features.calls.recorder import (
    MAX_BATCH,
    STRIKES_BEFORE_DEAD_LETTER,
    RecordWriter,
)
from callcenter.features.calls.spool import (
    SpoolAck,
    SpoolPut,
    decode,
    encode,
    record_to_json,
)
from callcenter.features.calls.store import CallRepository, DeadLetter, DeadLetterRepository
from callcenter.store.db import create_engine, session_factory
from callcenter.store.db_errors import Failure, classify, is_unavailable

T0 = 1_795_000_000.0
WAIT = 15.0  # seconds a condition gets before the test fails


def call(call_id: str, *, at: float = T0, ended: bool = True, **changes: object) -> CallRecord:
    record = CallRecord(call_id=call_id, started_at=at, caller_number="5551234",
                        dialed_number="100", protocol=f"p{call_id}",
                        ivr_path=[IvrStep("welcome", at + 0.5)])
    if ended:
        record.ended_at = at + 30
        record.hangup_by = HangupBy.CALLER
        record.disposition = Disposition.ABANDONED_IN_IVR
    for name, value in changes.items():
        setattr(record, name, value)
    return record


def database_down() -> OperationalError:
    return OperationalError("INSERT INTO calls ...", {}, ConnectionRefusedError(111, "refused"))


class FakeStore:
    """Stores in memory; can be down (every write fails) or refuse chosen calls."""

    def __init__(self) -> None:
        self.stored: dict[str, CallRecord] = {}
        self.saves: Counter[str] = Counter()
        self.down = False
        self.refuse: dict[str, Exception] = {}

    async def save(self, record: CallRecord) -> None:
        if self.down:
            raise database_down()
        if record.call_id in self.refuse:
            raise self.refuse[record.call_id]
        self.stored[record.call_id] = copy.deepcopy(record)
        self.saves[record.call_id] += 1


class FakeBatchStore(FakeStore):
    """A FakeStore that also stores several records at once, all or none."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    async def save_many(self, records: list[CallRecord]) -> None:
        if self.down:
            raise database_down()
        for record in records:
            if record.call_id in self.refuse:
                raise self.refuse[record.call_id]
        self.batches.append([record.call_id for record in records])
        for record in records:
            self.stored[record.call_id] = copy.deepcopy(record)


class FakeLetters:
    def __init__(self, error: Exception | None = None) -> None:
        self.letters: list[DeadLetter] = []
        self.error = error

    async def add(self, letter: DeadLetter) -> None:
        if self.error is not None:
            raise self.error
        self.letters.append(letter)


class RecordedSleep:
    """Backoff without waiting: records each delay and lets the other tasks run."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.on_sleep: Callable[[int], None] = lambda count: None

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.on_sleep(len(self.delays))
        await asyncio.sleep(0)


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.01)
    assert condition(), what


def spooled(path: Path) -> list[SpoolPut | SpoolAck]:
    return decode(path.read_bytes()).entries if path.exists() else []


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "data" / "record-spool.jsonl"


@pytest.fixture
async def writers() -> AsyncIterator[Callable[..., Awaitable[RecordWriter]]]:
    """Opened and started writers, stopped at the end."""
    started: list[RecordWriter] = []

    async def make(store: object, **options: object) -> RecordWriter:
        options.setdefault("sleep", RecordedSleep())
        writer = RecordWriter(store, **options)  # type: ignore[arg-type]
        await writer.open()
        writer.start()
        started.append(writer)
        return writer

    yield make
    for writer in started:
        await writer.stop(timeout=0.1)


@dataclass
class Database:
    calls: CallRepository
    letters: DeadLetterRepository


@pytest.fixture
def database(sessions: async_sessionmaker[AsyncSession]) -> Database:
    return Database(CallRepository(sessions), DeadLetterRepository(sessions))


# --------------------------------------------------------------------------- refused records


async def test_a_refused_record_does_not_block_the_next_five(database: Database, spool: Path,
                                                             writers) -> None:
    await database.calls.save(call("first", protocol="p-taken"))
    writer = await writers(database.calls, spool_path=spool, dead_letters=database.letters,
                           clock=VirtualClock(T0 + 60))
    nul = call("nul", caller_name="Mallory\x00")  # refused by the repository's checks
    duplicate = call("dup", protocol="p-taken")  # refused by the database: a unique index
    good = [call(f"ok{i}", at=T0 + i) for i in range(5)]

    writer.submit([nul, duplicate, *good])
    await writer.flush(WAIT)

    records, total = await database.calls.list()
    assert total == 6 and {r.call_id for r in records} == {"first", *(g.call_id for g in good)}
    letters = {letter.call_id: letter for letter in await database.letters.list()}
    assert set(letters) == {"nul", "dup"} and writer.dead_lettered == 2
    assert "NUL" in letters["nul"].reason
    assert "IntegrityError" in letters["dup"].reason or "unique" in letters["dup"].reason.lower()
    assert json.loads(letters["nul"].record) == record_to_json(nul)  # NUL and all
    assert letters["nul"].at == T0 + 60
    await writer.stop()
    assert spool.read_bytes() == b""  # everything done with: compacted away at stop


async def test_a_record_failing_for_an_unknown_reason_while_others_are_stored_is_moved_aside(
        spool: Path, writers) -> None:
    store, letters = FakeStore(), FakeLetters()
    store.refuse["odd"] = RuntimeError("something only this record triggers")
    writer = await writers(store, spool_path=spool, dead_letters=letters)

    writer.submit([call("odd"), *(call(f"ok{i}") for i in range(5))])
    for more in range(STRIKES_BEFORE_DEAD_LETTER):
        stored = 5 + more
        await wait_until(lambda: len(store.stored) == stored, "the others are stored")  # noqa: B023
        writer.submit([call(f"more{more}")])
    await writer.flush(WAIT)

    assert [letter.call_id for letter in letters.letters] == ["odd"]
    assert "failed 3 times while other records were stored" in letters.letters[0].reason
    assert len(store.stored) == 5 + STRIKES_BEFORE_DEAD_LETTER


async def test_a_database_outage_never_moves_records_aside(spool: Path, writers) -> None:
    store, letters, sleep = FakeStore(), FakeLetters(), RecordedSleep()
    store.down = True
    sleep.on_sleep = lambda count: setattr(store, "down", count < 20)
    writer = await writers(store, spool_path=spool, dead_letters=letters, sleep=sleep)
    writer.submit([call("a"), call("b"), call("c")])
    await writer.flush(WAIT)
    assert letters.letters == [] and set(store.stored) == {"a", "b", "c"}


async def test_when_the_dead_letter_table_fails_the_letter_goes_to_a_0600_file(
        tmp_path: Path, spool: Path, writers) -> None:
    store = FakeStore()
    store.refuse["bad"] = ValueError("call record 'bad': caller_name: contains a NUL character")
    dead_file = tmp_path / "data" / "dead-letter-records.jsonl"
    writer = await writers(store, spool_path=spool, dead_letters=FakeLetters(database_down()),
                           dead_letter_path=dead_file)
    bad = call("bad", caller_name="x\x00")
    writer.submit([bad, call("good")])
    await writer.flush(WAIT)

    assert set(store.stored) == {"good"}
    [line] = dead_file.read_text().splitlines()
    letter = json.loads(line)
    assert letter["call_id"] == "bad" and "NUL" in letter["reason"]
    assert letter["record"] == record_to_json(bad)
    assert stat.S_IMODE(dead_file.stat().st_mode) == 0o600


async def test_with_nowhere_to_put_it_a_refused_record_stays_in_the_spool(
        tmp_path: Path, spool: Path, writers) -> None:
    store = FakeStore()
    store.refuse["bad"] = ValueError("refused")
    writer = await writers(store, spool_path=spool, dead_letters=FakeLetters(database_down()),
                           dead_letter_path=tmp_path)  # a folder: the file cannot be written
    writer.submit([call("bad"), call("good")])
    await writer.flush(WAIT)
    assert set(store.stored) == {"good"} and writer.backlog == 0
    await writer.stop()
    assert [entry.call_id for entry in spooled(spool)] == ["bad"]


async def test_an_unreadable_spooled_record_is_moved_aside_at_open(spool: Path,
                                                                   writers) -> None:
    spool.parent.mkdir(parents=True)
    spool.write_bytes(encode(SpoolPut(1, "old", {"call_id": "old", "started_at": "noon"}))
                      + encode(SpoolPut(2, "fine", record_to_json(call("fine")))))
    store, letters = FakeStore(), FakeLetters()
    writer = await writers(store, spool_path=spool, dead_letters=letters)
    await writer.flush(WAIT)
    assert set(store.stored) == {"fine"}
    [letter] = letters.letters
    assert letter.call_id == "old" and "unreadable in the spool" in letter.reason


async def test_records_waiting_together_are_stored_together_in_order(writers) -> None:
    store = FakeBatchStore()
    writer = await writers(store)
    writer.submit([call(f"c{i}", at=T0 + i) for i in range(MAX_BATCH + 5)])
    await writer.flush(WAIT)
    assert store.batches == [[f"c{i}" for i in range(MAX_BATCH)],
                             [f"c{i}" for i in range(MAX_BATCH, MAX_BATCH + 5)]]
    assert store.saves == Counter() and writer.backlog == 0


async def test_a_refused_batch_is_written_one_by_one_so_only_the_bad_record_is_set_aside(
        writers) -> None:
    store, letters = FakeBatchStore(), FakeLetters()
    store.refuse["bad"] = ValueError("call record 'bad': caller_name: contains a NUL character")
    writer = await writers(store, dead_letters=letters)
    writer.submit([call("a"), call("bad"), call("b")])
    await writer.flush(WAIT)
    assert [letter.call_id for letter in letters.letters] == ["bad"]
    assert set(store.stored) == {"a", "b"} and store.saves == Counter({"a": 1, "b": 1})
    assert store.batches == []
    writer.submit([call("c"), call("d")])  # then together again
    await writer.flush(WAIT)
    assert store.batches == [["c", "d"]]


async def test_an_outage_never_moves_records_stored_together_aside(writers) -> None:
    store, letters, sleep = FakeBatchStore(), FakeLetters(), RecordedSleep()
    store.down = True
    sleep.on_sleep = lambda count: setattr(store, "down", count < 5)
    writer = await writers(store, dead_letters=letters, sleep=sleep)
    writer.submit([call("a"), call("b"), call("c")])
    await writer.flush(WAIT)
    assert letters.letters == [] and set(store.stored) == {"a", "b", "c"}
    assert sleep.delays == [0.5, 1, 2, 4, 8]
    # Back up: stored together again, not one by one (the outage was no record's fault).
    [batch] = store.batches
    assert sorted(batch) == ["a", "b", "c"] and store.saves == Counter()


# --------------------------------------------------------------------------- retries


async def test_transient_errors_retry_the_record_with_exponential_backoff(spool: Path,
                                                                          writers) -> None:
    store, sleep = FakeStore(), RecordedSleep()
    store.down = True
    seen_while_down: list[tuple[str | None, int]] = []

    def outage(count: int) -> None:
        seen_while_down.append((writer.last_error, writer.backlog))
        store.down = count < 7

    sleep.on_sleep = outage
    writer = await writers(store, spool_path=spool, sleep=sleep, retry_min=0.5, retry_max=10)

    writer.submit([call("a")])
    await writer.flush(WAIT)
    last_error, backlog = seen_while_down[0]
    assert last_error is not None and "OperationalError" in last_error and backlog == 1
    assert sleep.delays == [0.5, 1, 2, 4, 8, 10, 10]
    assert writer.last_error is None and store.saves == Counter({"a": 1})

    store.down = True  # a new outage starts again from the shortest delay
    sleep.on_sleep = lambda count: setattr(store, "down", count < 9)
    writer.submit([call("b")])
    await writer.flush(WAIT)
    assert sleep.delays[7:] == [0.5, 1]


async def test_only_the_newest_version_of_a_call_is_written(spool: Path, writers) -> None:
    store, sleep = FakeStore(), RecordedSleep()
    store.down = True
    writer = await writers(store, spool_path=spool, sleep=sleep)
    record = call("a", ended=False)
    writer.submit([record])
    await wait_until(lambda: writer.last_error is not None, "the write fails")
    record.queue = "sales"  # the live object changes: the writer holds a snapshot
    writer.submit([record])
    store.down = False
    await writer.flush(WAIT)
    assert store.saves == Counter({"a": 1}) and store.stored["a"].queue == "sales"


# --------------------------------------------------------------------------- crash and stop

KILLED_WRITER = """
import asyncio, json, sys
from pathlib import Path
from callcenter.features.calls.spool import record_from_json
from callcenter.features.calls.recorder import RecordWriter

class DatabaseDown:
    async def save(self, record):
        raise ConnectionRefusedError(111, "Connect call failed")

async def main():
    writer = RecordWriter(DatabaseDown(), spool_path=Path(sys.argv[1]), retry_min=0.01,
                          retry_max=0.02)
    await writer.open()
    writer.start()
    for batch in json.loads(Path(sys.argv[2]).read_text()):
        writer.submit([record_from_json(document) for document in batch])
        await asyncio.sleep(0.01)
    print("submitted", flush=True)
    await asyncio.Event().wait()  # until SIGKILL

asyncio.run(main())
"""


async def test_killed_during_an_outage_every_record_is_stored_once_after_the_restart(
        tmp_path: Path, spool: Path, database: Database, writers) -> None:
    """SIGKILL a real process whose database is down, then restart on a working one."""
    versions = {"a": [call("a", ended=False), call("a", queue="sales")],
                "b": [call("b", ended=False, at=T0 + 1)],
                "c": [call("c", ended=False, at=T0 + 2), call("c", at=T0 + 2, note="v2"),
                      call("c", at=T0 + 2, note="v3")],
                "d": [call("d", at=T0 + 3)]}
    batches = [[record_to_json(v[0]) for v in versions.values()],
               [record_to_json(v[-1]) for v in versions.values() if len(v) > 1],
               [record_to_json(versions["c"][1])],  # an older version after a newer one:
               [record_to_json(versions["c"][2])]]  # the writer only keeps the last given
    (tmp_path / "batches.json").write_text(json.dumps(batches))
    (tmp_path / "killed.py").write_text(KILLED_WRITER)
    process = subprocess.Popen([sys.executable, str(tmp_path / "killed.py"), str(spool),
                                str(tmp_path / "batches.json")],
                               stdout=subprocess.PIPE, cwd=Path(__file__).parents[2])
    try:
        assert process.stdout is not None
        assert await asyncio.to_thread(process.stdout.readline) == b"submitted\n"
        expected_puts = sum(len(batch) for batch in batches)
        await wait_until(lambda: len(spooled(spool)) == expected_puts, "all puts on disk")
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=WAIT)
    assert process.returncode == -signal.SIGKILL
    with spool.open("ab") as torn:  # and a write cut short by the kill
        torn.write(encode(SpoolPut(99, "x", record_to_json(call("x"))))[:25])
    # The first process stored "d" but died before its ack reached the spool.
    await database.calls.save(versions["d"][0])

    writer = await writers(database.calls, spool_path=spool, dead_letters=database.letters)
    await writer.flush(WAIT)

    records, total = await database.calls.list()
    assert total == 4
    stored = {record.call_id: record for record in records}
    assert stored == {call_id: v[-1] for call_id, v in versions.items()}
    assert stored["c"].note == "v3"
    assert await database.letters.list() == []
    await writer.stop()
    assert spool.read_bytes() == b""


async def test_shutdown_leaves_what_is_not_stored_in_the_spool_for_the_next_start(
        spool: Path, writers) -> None:
    store = FakeStore()
    store.down = True
    writer = await writers(store, spool_path=spool)
    writer.submit([call("a"), call("b", ended=False)])
    writer.submit([call("b")])
    await writer.stop(timeout=0.1)
    assert {entry.call_id for entry in spooled(spool)} == {"a", "b"}
    assert len(spooled(spool)) == 2  # compacted: b's first version is gone

    store.down = False
    again = await writers(store, spool_path=spool)
    assert {record.call_id for record in again.pending_records()} == {"a", "b"}
    await again.flush(WAIT)
    assert store.saves == Counter({"a": 1, "b": 1}) and store.stored["b"].ended_at
    await again.stop()
    assert spool.read_bytes() == b""


async def test_the_spool_is_compacted_as_records_are_stored(spool: Path, writers) -> None:
    store = FakeStore()
    writer = await writers(store, spool_path=spool, compact_after=8)
    largest = 0
    for i in range(60):
        writer.submit([call(f"c{i}", ended=False)])
        writer.submit([call(f"c{i}")])
        await writer.flush(WAIT)
        largest = max(largest, len(spooled(spool)))
    assert len(store.stored) == 60
    assert largest < 8 + 6, f"the spool grew to {largest} entries"
    await writer.stop()
    assert spool.read_bytes() == b""


async def test_without_a_spool_records_wait_in_memory(writers) -> None:
    store = FakeStore()
    writer = await writers(store)
    writer.submit([call("a")])
    await writer.flush(WAIT)
    assert set(store.stored) == {"a"}


# --------------------------------------------------------------------------- classification


async def test_real_errors_are_classified(database: Database, db_url: str) -> None:
    await database.calls.save(call("first", protocol="p-taken"))
    with pytest.raises(Exception) as duplicate:
        await database.calls.save(call("second", protocol="p-taken"))
    assert classify(duplicate.value) is Failure.PERMANENT
    assert not is_unavailable(duplicate.value)

    with pytest.raises(ValueError) as nul:
        await database.calls.save(call("nul", caller_name="a\x00"))
    assert classify(nul.value) is Failure.PERMANENT

    if db_url.startswith("postgresql"):
        # Past the repository's checks, PostgreSQL itself refuses a NUL: SQLSTATE 22021,
        # which asyncpg reports as a bare DBAPIError.
        engine = create_engine(db_url)
        try:
            with pytest.raises(Exception) as refused:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT :name"), {"name": "a\x00"})
        finally:
            await engine.dispose()
        assert classify(refused.value) is Failure.PERMANENT
        assert not is_unavailable(refused.value)


async def test_an_unreachable_database_is_transient_and_unavailable(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nobody listens here once closed
    for url in (f"postgresql+asyncpg://user:secret@127.0.0.1:{port}/calls",
                f"sqlite+aiosqlite:///{tmp_path}"):  # a folder: "unable to open database file"
        engine = create_engine(url)
        try:
            with pytest.raises(Exception) as unreachable:
                await CallRepository(session_factory(engine)).save(call("a"))
        finally:
            await engine.dispose()
        assert classify(unreachable.value) is Failure.TRANSIENT, unreachable.value
        assert is_unavailable(unreachable.value), unreachable.value
        message = str(unreachable.value)
        assert "Connect call failed" in message or "unable to open" in message, message


def test_an_os_error_not_from_the_driver_is_no_outage() -> None:
    try:
        raise ConnectionResetError(104, "the web client hung up")
    except ConnectionResetError as exc:
        assert not is_unavailable(exc)
        assert classify(exc) is Failure.TRANSIENT


async def test_listeners_hear_every_version_handed_over_and_a_failing_one_costs_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    store = FakeStore()
    writer = RecordWriter(store, clock=VirtualClock(T0))
    heard: list[tuple[str, object]] = []

    def broken(record: CallRecord) -> None:
        raise RuntimeError("a listener's own bug")

    writer.listeners += [broken, lambda record: heard.append((record.call_id, record.ended_at))]
    record = call("c1", ended=False)
    writer.submit([record])
    record.ended_at = T0 + 30
    writer.submit([record])
    assert heard == [("c1", None), ("c1", T0 + 30)]  # each version, as it was then
    writer.start()
    await writer.flush(WAIT)
    await writer.stop()
    assert store.stored["c1"].ended_at == T0 + 30
    assert "a record listener failed" in caplog.text
