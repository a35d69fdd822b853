"""Stores call records in the background, in order, without ever dropping one.

The ledger decides *what* to store; this writer decides *when*: records are snapshotted
when handed over (so later changes to the live object don't race the write), coalesced per
call (only the newest version of a call matters), and retried with backoff while the
database is down. Nothing is lost while the process lives.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterable
from typing import Protocol

from callcenter.core.calls import LedgerResult
from callcenter.core.records import CallRecord

log = logging.getLogger(__name__)


class CallStore(Protocol):
    async def save(self, record: CallRecord) -> None: ...


class RecordWriter:
    def __init__(self, store: CallStore, *, retry_min: float = 0.5, retry_max: float = 10.0):
        self._store = store
        self._pending: dict[str, CallRecord] = {}
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._retry_min = retry_min
        self._retry_max = retry_max
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None

    def apply(self, result: LedgerResult) -> None:
        self.submit(result.save)

    def submit(self, records: Iterable[CallRecord]) -> None:
        for record in records:
            # Re-insert so a call's newest version is written after older pending ones.
            self._pending.pop(record.call_id, None)
            self._pending[record.call_id] = copy.deepcopy(record)
            self._idle.clear()
            self._wakeup.set()

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="record-writer")

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until everything handed over so far is stored."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def stop(self, timeout: float = 5.0) -> None:
        try:
            await self.flush(timeout)
        except TimeoutError:
            log.error("stopping with %d call records not yet stored: %s", self.backlog,
                      ", ".join(self._pending))
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        delay = self._retry_min
        while True:
            if not self._pending:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            call_id, record = next(iter(self._pending.items()))
            try:
                await self._store.save(record)
            except Exception as exc:  # the database is down or refused: keep it and retry
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("could not store call %s (will retry in %.1fs): %s",
                            call_id, delay, self.last_error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            delay = self._retry_min
            self.last_error = None
            if self._pending.get(call_id) is record:
                del self._pending[call_id]
