"""Stores call records in the background, in order, without ever dropping one.

The ledger decides *what* to store; this writer decides *when*. A record handed over is
snapshotted (so later changes to the live object don't race the write), appended to the
local spool and fsync'd (spool.py), and only then written to the database. So:

- a crash (``kill -9``) while the database is down loses nothing: the next start replays
  the spool; shutdown leaves what is not yet stored there too;
- records are coalesced per call (only the newest version of a call is written, never an
  older one after it);
- a record the database refuses for good (``db_errors.classify``) is moved to the dead
  letters (the ``call_dead_letters`` table, or if even that fails a file in the data folder)
  with the reason, and the records behind it flow on;
- several records waiting are stored together, in one transaction (``MAX_BATCH`` at most);
  if the database refuses the batch they are written one by one, as below;
- while the database is away, writes are retried with exponential backoff; a record that
  keeps failing while others are stored is moved to the dead letters too (an error nobody
  classified, specific to that record, must not stall the rest).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from callcenter.core.calls import LedgerResult
from callcenter.core.clock import Clock, SystemClock
from callcenter.core.records import CallRecord
from callcenter.features.calls.spool import (
    SpoolBook,
    SpoolEntry,
    SpoolFile,
    append_dead_letter_file,
    encode,
    record_from_json,
    record_to_json,
)
from callcenter.features.calls.store import DeadLetter
from callcenter.store.db_errors import Failure, classify, describe, is_unavailable

log = logging.getLogger(__name__)

# At most this many records stored in one transaction when several wait (a store with
# ``save_many``): the followers' upkeep is paid per statement, not per record.
MAX_BATCH = 200

# A record that failed this many times, each time after other records were stored in
# between (so the database works), is refused for a reason nobody classified: move it aside.
STRIKES_BEFORE_DEAD_LETTER = 3


class CallStore(Protocol):
    """Where records go. A store that also has ``save_many(records)`` (all in one
    transaction, or none: ``CallRepository``) is given the records waiting together."""

    async def save(self, record: CallRecord) -> None: ...


class DeadLetterStore(Protocol):
    async def add(self, letter: DeadLetter) -> None: ...


Sleep = Callable[[float], Awaitable[None]]


@dataclass
class _Pending:
    """One call's newest version, waiting to be stored."""

    seq: int  # its spool entry (0 without a spool)
    record: CallRecord
    document: dict[str, Any]  # its JSON form, as spooled
    durable: bool  # on disk (or no spool): may be written to the database
    strikes: int = 0
    stored_at_last_failure: int | None = None  # the writer's stored count then


class RecordWriter:
    def __init__(self, store: CallStore, *, spool_path: Path | None = None,
                 dead_letters: DeadLetterStore | None = None,
                 dead_letter_path: Path | None = None, clock: Clock | None = None,
                 retry_min: float = 0.5, retry_max: float = 10.0, sleep: Sleep = asyncio.sleep,
                 compact_after: int | None = None) -> None:
        """Without ``spool_path``, records wait in memory only (tests of other parts)."""
        self._store = store
        self._dead_letters = dead_letters
        self._dead_letter_path = dead_letter_path
        self._clock = clock or SystemClock()
        self._spool = SpoolFile(spool_path) if spool_path is not None else None
        self._book = SpoolBook() if compact_after is None else SpoolBook(compact_after)
        self._pending: dict[str, _Pending] = {}
        self._unspooled: list[SpoolEntry] = []  # entries made, not yet appended to the file
        self._wakeup = asyncio.Event()  # a record became writable
        self._spool_wakeup = asyncio.Event()  # entries wait to be appended
        self._idle = asyncio.Event()
        self._idle.set()
        self._retry_min = retry_min
        self._retry_max = retry_max
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self._spool_task: asyncio.Task[None] | None = None
        self._closing = False
        self._stored = 0
        self.last_error: str | None = None
        self.dead_lettered = 0
        # Told of every version handed over (the wallboard counts calls from them): a
        # listener reads the writer's own snapshot and must not change it, nor block.
        self.listeners: list[Callable[[CallRecord], None]] = []

    # ------------------------------------------------------------------ handing over

    def apply(self, result: LedgerResult) -> None:
        self.submit(result.save)

    def submit(self, records: Iterable[CallRecord]) -> None:
        for record in records:
            snapshot = copy.deepcopy(record)
            document = record_to_json(snapshot)
            seq = 0
            if self._spool is not None:
                entry = self._book.put(record.call_id, document)
                self._unspooled.append(entry)
                self._spool_wakeup.set()
                seq = entry.seq
            # Re-insert so a call's newest version is written after older pending ones.
            self._pending.pop(record.call_id, None)
            self._pending[record.call_id] = _Pending(
                seq=seq, record=snapshot, document=document, durable=self._spool is None)
            self._idle.clear()
            self._wakeup.set()
            self._tell_listeners(snapshot)

    def _tell_listeners(self, record: CallRecord) -> None:
        for listener in self.listeners:
            try:
                listener(record)
            except Exception:  # a listener's fault must not cost the record
                log.exception("call %s: a record listener failed", record.call_id)

    @property
    def backlog(self) -> int:
        """Records handed over (or replayed) and not yet stored."""
        return len(self._pending)

    def pending_records(self) -> list[CallRecord]:
        """Copies of the records waiting to be stored, oldest first (at start: what the
        spool replayed and the database does not hold yet)."""
        return [copy.deepcopy(pending.record) for pending in self._pending.values()]

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Read the spool an earlier run left and queue what it never stored, oldest first.

        Call before ``start`` and before new records are handed over.
        """
        if self._spool is None:
            return
        decoded = await asyncio.to_thread(self._spool.open)
        if decoded.torn_tail:
            log.warning("record spool %s: ignored an incomplete last line (%d bytes) left by "
                        "a write cut short", self._spool.path, decoded.torn_tail)
        if decoded.damaged:
            log.error("record spool %s: skipped damaged lines %s", self._spool.path,
                      ", ".join(map(str, decoded.damaged[:20])))
        self._book.load(decoded.entries)
        unreadable: list[tuple[_Pending, str]] = []
        for entry in self._book.live():
            pending = _Pending(seq=entry.seq, record=CallRecord(entry.call_id, 0.0),
                               document=entry.record, durable=True)
            try:
                pending.record = record_from_json(entry.record)
            except ValueError as exc:  # written by another version: keep it, aside
                unreadable.append((pending, f"unreadable in the spool: {exc}"))
                continue
            self._pending[entry.call_id] = pending
        for pending, reason in unreadable:
            await self._dead_letter(pending.record.call_id, pending, reason)
        if self._pending:
            self._idle.clear()
            log.info("record spool %s: %d call records from an earlier run to store",
                     self._spool.path, len(self._pending))

    def start(self) -> None:
        if self._spool is not None and self._spool_task is None:
            self._spool_task = asyncio.create_task(self._run_spool(), name="record-spool")
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="record-writer")

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until everything handed over so far is stored."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def stop(self, timeout: float = 5.0) -> None:
        try:
            await self.flush(timeout)
        except TimeoutError:
            if self._spool is not None:
                log.warning("stopping with %d call records not yet stored; they stay in the "
                            "spool %s for the next start: %s", self.backlog, self._spool.path,
                            ", ".join(self._pending))
            else:
                log.error("stopping with %d call records not yet stored: %s", self.backlog,
                          ", ".join(self._pending))
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._spool_task is not None:
            # Not cancelled: it may be inside a write, which a thread finishes anyway. It
            # appends what is left (acks of the last writes too) and ends.
            self._closing = True
            self._spool_wakeup.set()
            await asyncio.gather(self._spool_task, return_exceptions=True)
            self._spool_task = None
        if self._spool is not None:
            await self._finish_spool()

    # ------------------------------------------------------------------ the spool

    async def _run_spool(self) -> None:
        """Append what was handed over, in batches (one fsync for many records), then let
        the database writer have it."""
        while not self._closing:
            await self._spool_wakeup.wait()
            self._spool_wakeup.clear()
            await self._append_unspooled()
            if not self._unspooled and self._book.should_compact and not self._closing:
                await self._compact()

    async def _append_unspooled(self) -> None:
        assert self._spool is not None
        batch, self._unspooled = self._unspooled, []
        if not batch:
            return
        data = b"".join(map(encode, batch))
        try:
            await asyncio.to_thread(self._spool.append, data)
        except OSError:
            # A full or failing disk: the records still go to the database, as before
            # there was a spool; they are only not crash-safe until the disk is fixed.
            log.exception("record spool %s: could not append %d entries", self._spool.path,
                          len(batch))
        else:
            self._book.appended(len(batch))
        for entry in batch:
            pending = self._pending.get(entry.call_id)
            if pending is not None and pending.seq == entry.seq:
                pending.durable = True
        self._wakeup.set()

    async def _compact(self) -> None:
        """Rewrite the file with only the entries not stored yet."""
        live = self._book.live()
        if await asyncio.to_thread(self._rewrite, b"".join(map(encode, live))):
            self._book.rewritten(len(live))

    def _rewrite(self, data: bytes) -> bool:
        assert self._spool is not None
        try:
            self._spool.rewrite(data)
        except OSError:
            log.exception("record spool %s: could not compact", self._spool.path)
            return False
        return True

    async def _finish_spool(self) -> None:
        """At stop: what was handed over reaches the file, which is compacted and closed."""
        assert self._spool is not None
        await self._append_unspooled()
        if self._book.entries_in_file > len(self._book.live()):
            await self._compact()
        self._spool.close()

    def _acknowledge(self, call_id: str, pending: _Pending) -> None:
        """``pending`` is done with (stored or moved aside): its spool entry too."""
        if self._pending.get(call_id) is pending:
            del self._pending[call_id]
        if self._spool is not None and self._book.is_live(call_id, pending.seq):
            self._unspooled.append(self._book.ack(call_id, pending.seq))
            self._spool_wakeup.set()

    # ------------------------------------------------------------------ the database

    def _writable(self, limit: int) -> list[tuple[str, _Pending]]:
        """Up to ``limit`` records that may be written, oldest first."""
        found: list[tuple[str, _Pending]] = []
        for call_id, pending in self._pending.items():
            if pending.durable:
                found.append((call_id, pending))
                if len(found) == limit:
                    break
        return found

    async def _save_batch(self, batch: list[tuple[str, _Pending]]) -> bool:
        """Store several records in one transaction; False if the store refused the batch
        (they are then written one by one, so that only a bad record is set aside)."""
        save_many = getattr(self._store, "save_many", None)
        assert save_many is not None
        try:
            await save_many([pending.record for _, pending in batch])
        except Exception as exc:
            log.info("could not store %d call records together (%s); storing them one by "
                     "one", len(batch), describe(exc))
            return False
        self.last_error = None
        self._stored += len(batch)
        for call_id, pending in batch:
            self._acknowledge(call_id, pending)
        return True

    async def _run(self) -> None:
        delay = self._retry_min
        singles = 0  # records to write one by one before batching again (after a refusal)
        batching = hasattr(self._store, "save_many")
        while True:
            if not self._pending:
                self._idle.set()
            writable = self._writable(MAX_BATCH if batching and not singles else 1)
            if not writable:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if len(writable) > 1:
                if await self._save_batch(writable):
                    delay = self._retry_min
                else:
                    singles = len(writable)
                continue
            singles = max(singles - 1, 0)
            call_id, pending = writable[0]
            try:
                await self._store.save(pending.record)
            except Exception as exc:
                reason = describe(exc)
                if classify(exc) is Failure.PERMANENT:
                    await self._dead_letter(call_id, pending, reason)
                    continue
                if self._struck_out(pending):
                    await self._dead_letter(
                        call_id, pending, f"failed {pending.strikes} times while other "
                        f"records were stored; last: {reason}")
                    continue
                # The database is down or busy: keep the record, let the others go first
                # (it may be this one's fault after all), and retry after a while.
                self.last_error = reason
                log.warning("could not store call %s (will retry in %.1fs): %s",
                            call_id, delay, self.last_error)
                if self._pending.get(call_id) is pending:
                    self._pending[call_id] = self._pending.pop(call_id)
                if is_unavailable(exc):  # no bad record to single out: batch once it is back
                    singles = 0
                await self._sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            delay = self._retry_min
            self.last_error = None
            self._stored += 1
            self._acknowledge(call_id, pending)

    def _struck_out(self, pending: _Pending) -> bool:
        if (pending.stored_at_last_failure is not None
                and self._stored > pending.stored_at_last_failure):
            pending.strikes += 1
        pending.stored_at_last_failure = self._stored
        return pending.strikes >= STRIKES_BEFORE_DEAD_LETTER

    async def _dead_letter(self, call_id: str, pending: _Pending, reason: str) -> None:
        """Move a record the database will not take aside, so the others flow on."""
        log.error("call %s: the database refused its record for good, moved to the dead "
                  "letters: %s", call_id, reason)
        letter = DeadLetter(call_id=call_id, reason=reason, at=self._clock.now(),
                            record=json.dumps(pending.document, ensure_ascii=True))
        if not await self._keep_letter(letter):
            # Nowhere to keep it: it stays in the spool (not acknowledged) for the next
            # start, but leaves the queue so it does not block the others now.
            if self._pending.get(call_id) is pending:
                del self._pending[call_id]
            return
        self.dead_lettered += 1
        self._acknowledge(call_id, pending)

    async def _keep_letter(self, letter: DeadLetter) -> bool:
        if self._dead_letters is not None:
            try:
                await self._dead_letters.add(letter)
                return True
            except Exception as exc:
                log.error("call %s: could not add to the dead-letter table (%s); using the "
                          "dead-letter file", letter.call_id, describe(exc))
        if self._dead_letter_path is None:
            log.error("call %s: no dead-letter file; the record stays in the spool: %s",
                      letter.call_id, letter.record)
            return False
        try:
            await asyncio.to_thread(append_dead_letter_file, self._dead_letter_path,
                                    {"call_id": letter.call_id, "reason": letter.reason,
                                     "at": letter.at, "record": json.loads(letter.record)})
        except OSError:
            log.exception("call %s: could not write the dead-letter file %s; the record stays "
                          "in the spool", letter.call_id, self._dead_letter_path)
            return False
        return True
