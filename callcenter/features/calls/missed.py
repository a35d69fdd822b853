"""Imports the calls the service missed from Asterisk's own channel event log.

Run on start and after every AMI (re)connect, while ``on_ready`` holds live events back:
read the log after the remembered position (callcenter/asterisk/cel_reader.py), plan what
to record (callcenter/core/missed_calls.py), then
- completed calls are taken back from the ledger and written through the record writer
  (it orders them after any older version of the same call);
- new records are inserted only if no record of the call exists, so the service's own
  record always wins; new records of calls still going on are adopted by the ledger, which
  follows them live from now;
- the position moves on once everything is stored.
Any failure leaves the position where it was: the next import reads the same rows again,
and stores nothing twice.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from callcenter.asterisk.cel_reader import (
    CEL_FILE,
    DEFAULT_EXTERNAL_LOG_DIR,
    CelLogError,
    log_identity,
    read_events,
)
from callcenter.asterisk.sandbox import Sandbox
from callcenter.config import Settings
from callcenter.core.calls import CallLedger
from callcenter.core.missed_calls import CHAN_START, plan_import
from callcenter.core.records import CallRecord
from callcenter.features.calls.recorder import RecordWriter
from callcenter.features.calls.store import CallRepository
from callcenter.store.asterisk_log import LogPositions

log = logging.getLogger(__name__)

FLUSH_TIMEOUT = 10.0  # completed records must be stored before the position moves on


def cel_log_path(settings: Settings) -> Path:
    """Where the service reads Asterisk's channel event log (setting ``asterisk.cel_log``)."""
    if settings.asterisk.cel_log:
        return Path(settings.asterisk.cel_log)
    if settings.asterisk.mode == "sandbox":
        return Sandbox(settings).instance_dir / "log" / CEL_FILE
    return Path(DEFAULT_EXTERNAL_LOG_DIR / CEL_FILE)


@dataclass(frozen=True)
class ImportOutcome:
    imported: int = 0  # new records of calls the service never recorded
    still_going_on: int = 0  # of those, calls the ledger now follows
    completed: int = 0  # the service's open records, completed
    next_row: int = 0


class MissedCalls:
    def __init__(self, *, path: Path, calls: CallRepository, positions: LogPositions,
                 ledger: CallLedger, writer: RecordWriter,
                 inbound_contexts: Iterable[str]) -> None:
        self.path = path
        self._calls = calls
        self._positions = positions
        self._ledger = ledger
        self._writer = writer
        self._inbound_contexts = tuple(inbound_contexts)
        self._said_missing = False
        self._lock = asyncio.Lock()  # one import at a time

    async def run(self) -> ImportOutcome | None:
        """Import what the log holds since the last import; None if it could not be read
        (the reason is logged; the next import tries again)."""
        async with self._lock:
            try:
                return await self._run()
            except FileNotFoundError:
                if not self._said_missing:
                    log.warning("%s does not exist: calls made while the service is down will "
                                "not be recorded (see docs/records.md)", self.path)
                    self._said_missing = True
            except CelLogError as exc:
                log.warning("missed calls not imported: %s", exc)
            except Exception:
                log.exception("missed calls not imported from %s; trying again at the next "
                              "AMI connect", self.path)
            return None

    async def _run(self) -> ImportOutcome:
        key = await asyncio.to_thread(log_identity, self.path)
        after = await self._positions.get(key)
        batch = await asyncio.to_thread(read_events, self.path, after)
        if batch.last_row < after:  # a new log (deleted, rotated): read it from its start
            log.warning("%s starts again (row %d < %d): reading it from its start",
                        self.path, batch.last_row, after)
            after = 0
            batch = await asyncio.to_thread(read_events, self.path, after)
        self._said_missing = False
        starts = [e.uniqueid for e in batch.events
                  if e.kind == CHAN_START and e.uniqueid == e.linkedid]
        stored = frozenset(await self._calls.stored_ids(starts))
        # From here to the adoptions: no await, so the ledger cannot change under the plan.
        tracked = {record.call_id: record for record in self._ledger.open_calls()}
        plan = plan_import(batch.events, after_row=after, tracked=tracked,
                           handled=self._ledger.handled_calls(), stored=stored,
                           inbound_contexts=self._inbound_contexts, last_row=batch.last_row)
        completed = [r for r in plan.completed if self._ledger.hand_over(r.call_id) is not None]
        for record in plan.adopt:
            self._ledger.adopt(copy.deepcopy(record))
        self._writer.submit(completed)
        imported = 0
        for record in plan.new:
            try:
                imported += await self._insert(record)
            except ValueError as exc:  # refused for good: the others still go in
                log.error("call %s from Asterisk's log not recorded: %s", record.call_id, exc)
        await self._writer.flush(FLUSH_TIMEOUT)
        await self._positions.set(key, plan.next_row)
        outcome = ImportOutcome(imported=imported, still_going_on=len(plan.adopt),
                                completed=len(completed), next_row=plan.next_row)
        if imported or completed:
            log.info("from Asterisk's log: %d call(s) recorded that the service missed "
                     "(%d still going on), %d completed", imported, len(plan.adopt),
                     len(completed))
        return outcome

    async def _insert(self, record: CallRecord) -> bool:
        try:
            return await self._calls.insert_if_absent(record)
        except IntegrityError:
            # Another call has its protocol number (two Asterisk runs, one second, one
            # sequence number): keep the call, without a number to tell the caller.
            log.warning("call %s from Asterisk's log: protocol number %s taken; recorded "
                        "without one", record.call_id, record.protocol)
            return await self._calls.insert_if_absent(dataclasses.replace(record,
                                                                          protocol=None))
