"""The import's adapters: Asterisk's channel event log read from a SQLite file laid out as
Asterisk creates it, and the import run against a real database (both backends) with the
real ledger and record writer."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.asterisk.cel_reader import COLUMNS, CelLogError, log_identity, read_events
from callcenter.core.calls import CallLedger
from callcenter.core.records import CallRecord, Disposition, RecordSource
from callcenter.features.calls.missed import MissedCalls
from callcenter.features.calls.recorder import RecordWriter
from callcenter.features.calls.store import CallRepository
from callcenter.store.asterisk_log import LogPositions
from callcenter.store.db import session_factory

T0 = 1_796_640_397.0
CALLER = "PJSIP/anonymous-00000000"
AGENT = "PJSIP/agent1-00000001"


def hangup_extra(source: str) -> str:
    return '{"hangupcause":16,"hangupsource":"' + source + '","dialstatus":""}'


class CelFile:
    """The table cel_sqlite3_custom creates: ``AcctId INTEGER PRIMARY KEY`` and our columns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with sqlite3.connect(path) as db:
            db.execute(f"CREATE TABLE cel (AcctId INTEGER PRIMARY KEY, {', '.join(COLUMNS)})")

    def add(self, kind: str, at: object, uniqueid: str, channel: str, *, linkedid: str = "",
            context: str = "callers", exten: str = "100", number: str = "5551234",
            name: str = "Caller", app: str = "", app_data: str = "", extra: str = "") -> None:
        with sqlite3.connect(self.path) as db:
            db.execute(f"INSERT INTO cel VALUES (NULL, {', '.join('?' for _ in COLUMNS)})",
                       (kind, str(at), uniqueid, linkedid or uniqueid, channel, context, exten,
                        number, name, app, app_data, extra))

    def answered_call(self, call_id: str = "1796640397.0", t: float = T0, *,
                      until: str = "end") -> None:
        """The fallback connects the caller to agent1, who hangs up (as seen on real Asterisk)."""
        leg = call_id + "1"
        self.add("CHAN_START", t, call_id, CALLER)
        self.add("ANSWER", t, call_id, CALLER, app="Answer")
        self.add("APP_START", t + 6, call_id, CALLER, context="callcenter-fallback",
                 exten="q-operator", app="Queue", app_data="operator,,,,600")
        self.add("CHAN_START", t + 6, leg, AGENT, linkedid=call_id, context="agents")
        self.add("ANSWER", t + 7, leg, AGENT, linkedid=call_id)
        self.add("BRIDGE_ENTER", t + 7, leg, AGENT, linkedid=call_id)
        if until == "talking":
            return
        extra = f'{{"hangupcause":16,"hangupsource":"{AGENT}","dialstatus":"ANSWER"}}'
        self.add("HANGUP", t + 9, call_id, CALLER, extra=extra)
        self.add("CHAN_END", t + 9, call_id, CALLER)
        self.add("HANGUP", t + 9, leg, AGENT, linkedid=call_id, extra=extra)
        self.add("CHAN_END", t + 9, leg, AGENT, linkedid=call_id)
        self.add("LINKEDID_END", t + 9, leg, AGENT, linkedid=call_id)


# --------------------------------------------------------------------------- the reader


def test_the_reader_types_each_row_and_keeps_hostile_caller_ids_as_plain_text(tmp_path):
    log = CelFile(tmp_path / "cel.db")
    log.add("CHAN_START", T0, "1.0", CALLER, name='x"\r\n200 result=0\0\\', number="5'5")
    log.add("HANGUP", T0 + 1, "1.0", CALLER, extra=hangup_extra(CALLER))
    log.add("HANGUP", T0 + 1, "1.0", CALLER, extra="not json")
    log.add("BRIDGE_ENTER", T0 + 1, "1.0", CALLER)  # not read
    log.add("CHAN_END", "yesterday", "1.0", CALLER)  # does not parse: skipped

    batch = read_events(log.path, 0)
    start, hangup, garbled = batch.events
    assert (batch.last_row, batch.skipped) == (5, 1)
    assert start.caller_name == 'x"\r\n200 result=0\\' and start.caller_number == "5'5"
    assert (start.row, start.kind, start.at, start.context) == (1, "CHAN_START", T0, "callers")
    assert (hangup.hangup_cause, hangup.hangup_source) == (16, CALLER)
    assert (garbled.hangup_cause, garbled.hangup_source) == (None, "")
    assert [e.row for e in read_events(log.path, 2).events] == [3]


def test_a_missing_log_and_a_foreign_file_are_told_apart(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_events(tmp_path / "nowhere.db", 0)
    foreign = tmp_path / "foreign.db"
    foreign.write_bytes(b"this is not a database, just a file")
    with pytest.raises(CelLogError):
        read_events(foreign, 0)


# --------------------------------------------------------------------------- the import


class Service:
    """The parts of one run of the service that the import touches."""

    def __init__(self, engine: AsyncEngine, log: CelFile) -> None:
        self.calls = CallRepository(session_factory(engine))
        self.ledger = CallLedger(inbound_contexts=("callers", "agents"))
        self.writer = RecordWriter(self.calls)
        self.positions = LogPositions(session_factory(engine))
        self.missed = MissedCalls(path=log.path, calls=self.calls, positions=self.positions,
                                  ledger=self.ledger, writer=self.writer,
                                  inbound_contexts=("callers", "agents"))

    async def __aenter__(self) -> Service:
        for record in await self.calls.open_calls():  # as CallCenter.start does
            self.ledger.adopt(record)
        self.writer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.writer.stop()

    async def stored(self) -> list[CallRecord]:
        records, _ = await self.calls.list()
        return records


async def test_a_call_only_asterisk_saw_is_recorded_once_however_often_it_is_imported(
        tmp_path, engine):
    log = CelFile(tmp_path / "cel.db")
    log.answered_call()
    for _ in range(2):  # two runs of the service
        async with Service(engine, log) as service:
            for _ in range(2):  # two AMI connects each
                await service.missed.run()
            [record] = await service.stored()
    assert record.source is RecordSource.ASTERISK and record.disposition is Disposition.ANSWERED
    assert (record.agent_id, record.talk_seconds, record.wait_seconds) == ("agent1", 2.0, 1.0)
    assert await service.positions.get(log_identity(log.path)) == 11


async def test_a_call_going_on_is_stored_open_followed_by_the_ledger_and_completed_later(
        tmp_path, engine):
    log = CelFile(tmp_path / "cel.db")
    log.answered_call(until="talking")
    async with Service(engine, log) as service:
        outcome = await service.missed.run()
        [stored] = await service.stored()
        assert outcome is not None and outcome.still_going_on == 1
        assert stored.is_open and stored.agent_id == "agent1"
        assert service.ledger.get(stored.call_id) is not None, "the ledger follows it live"
        assert await service.positions.get(log_identity(log.path)) == 0
    # The service dies; the call ends; the next run completes the record it adopts.
    leg, extra = "1796640397.01", hangup_extra(CALLER)
    log.add("HANGUP", T0 + 20, "1796640397.0", CALLER, extra=extra)
    log.add("HANGUP", T0 + 20, leg, AGENT, linkedid="1796640397.0", extra=extra)
    async with Service(engine, log) as service:
        outcome = await service.missed.run()
        [record] = await service.stored()
    assert outcome is not None and (outcome.imported, outcome.completed) == (0, 1)
    assert record.ended_at == T0 + 20 and record.talk_seconds == 13.0
    assert record.source is RecordSource.ASTERISK, "begun and completed from Asterisk's log"
    assert len(service.ledger) == 0


async def test_the_service_own_record_is_never_replaced_by_the_import(tmp_path, engine):
    log = CelFile(tmp_path / "cel.db")
    log.answered_call()
    async with Service(engine, log) as service:
        own = CallRecord(call_id="1796640397.0", started_at=T0, ended_at=T0 + 9,
                         disposition=Disposition.ANSWERED, agent_id="agent1", note="service's")
        await service.calls.save(own)
        await service.missed.run()
        [record] = await service.stored()
    assert record.source is RecordSource.SERVICE and record.note == "service's"


async def test_a_log_that_starts_again_is_read_from_its_start(tmp_path, engine):
    log = CelFile(tmp_path / "cel.db")
    log.answered_call()
    async with Service(engine, log) as service:
        await service.missed.run()
        log.path.unlink()  # rotated away by the admin
        log = CelFile(log.path)
        log.answered_call("1796649999.3", T0 + 3600)
        await service.missed.run()
        records = await service.stored()
    assert sorted(r.call_id for r in records) == ["1796640397.0", "1796649999.3"]


async def test_a_protocol_number_taken_by_another_call_does_not_lose_the_call(tmp_path, engine):
    log = CelFile(tmp_path / "cel.db")
    log.answered_call()
    async with Service(engine, log) as service:
        # The number the import gives 1796640397.0 (protocol_number(T0, "….0")).
        other = CallRecord(call_id="elsewhere.0", started_at=T0, ended_at=T0 + 1,
                           protocol="20261207104637000000")
        await service.calls.save(other)
        await service.missed.run()
        records = {r.call_id: r for r in await service.stored()}
    assert records["1796640397.0"].protocol is None
    assert records["elsewhere.0"].protocol == other.protocol
