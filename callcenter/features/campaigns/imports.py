"""Imports of uploaded files, run in the background once the file is on disk.

An upload route stores the body (uploads.py), starts an ``ImportJob`` here and answers 202
with its id; ``GET /api/imports/{id}`` then tells its state and progress:

- ``queued``: waiting for a free slot (``at_once`` imports run at the same time: each holds a
  database transaction and a worker thread);
- ``reading``: rows are being read and stored, ``rows_done`` of ``rows_total`` (the reader's
  estimate: for CSV the line breaks counted in a first pass, an upper bound; for XLSX the
  sheet's recorded size; null when unknown);
- ``done`` with what was stored; ``failed`` with the error and, when the file is at fault,
  its line; ``cancelled`` (``DELETE``).

Whatever way an import ends, its file is deleted, and the import's single transaction is
either committed whole or not at all: a failure, a cancel or a killed service leave nothing.
Jobs are kept in memory: after a restart an import id is unknown (the list was not stored;
upload it again). The last ``keep`` finished jobs are remembered.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.call_lists import ListProgress
from callcenter.core.clock import Clock
from callcenter.features.campaigns.lists import CallLists
from callcenter.features.campaigns.uploads import (
    UPLOAD_FOLDER,
    StoredUpload,
    UploadFolder,
    UploadLimits,
)

log = logging.getLogger(__name__)

_LINE_RE = re.compile(r"^(?:around )?line (\d+)")
IMPORT_ID_RE = re.compile(r"^[0-9a-f]{16}$")
MAX_REJECTS_LISTED = 1000  # rows not taken that a do-not-call or consent import lists


class ImportState(Enum):
    QUEUED = "queued"
    READING = "reading"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({ImportState.DONE, ImportState.FAILED, ImportState.CANCELLED})


class ImportKind(Enum):
    CALL_LIST = "call_list"  # a new list of a campaign
    CALL_LIST_ROWS = "call_list_rows"  # rows appended to a list
    DO_NOT_CALL = "do_not_call"
    CONSENTS = "consents"


@dataclass
class ImportJob:
    id: str
    kind: ImportKind
    campaign: str | None
    target: str  # what it fills: the list's name, "do-not-call", "consents"
    created_by: str
    size_bytes: int
    created_at: float
    state: ImportState = ImportState.QUEUED
    rows_done: int = 0
    rows_total: int | None = None
    error: str | None = None
    error_line: int | None = None
    finished_at: float | None = None
    result: dict[str, Any] = field(default_factory=dict)  # what was stored, when done
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def key(self) -> tuple[ImportKind, str | None, str]:
        return self.kind, self.campaign, self.target

    def progressed(self, progress: ListProgress) -> None:
        """The reader's progress (called from its worker thread: plain assignments)."""
        self.rows_total = progress.rows_total
        self.rows_done = progress.rows_done


# The work of one import: read the file and store it, reporting progress on the job;
# returns what was stored (shown in the job's result). ValueError and LookupError are the
# input's fault (the message says what and where); anything else is ours.
Work = Callable[[ImportJob, IO[bytes]], Awaitable[dict[str, Any]]]


class ImportBusy(ValueError):
    """An import of the same thing is under way."""


class Imports:
    def __init__(self, clock: Clock, *, at_once: int = 1, keep: int = 200) -> None:
        self._clock = clock
        self._slots = asyncio.Semaphore(at_once)
        self._keep = keep
        self._jobs: dict[str, ImportJob] = {}

    def start(self, kind: ImportKind, campaign: str | None, target: str, created_by: str,
              upload: StoredUpload[Any], work: Work) -> ImportJob:
        """Run ``work`` on the stored upload in the background; the upload is deleted when
        it ends. ``ImportBusy`` (and the upload deleted) if the same is being imported."""
        running = self.under_way(kind, campaign, target)
        if running is not None:
            upload.discard()
            raise ImportBusy(f"import {running.id} of {target!r} is under way; see "
                             f"/api/imports/{running.id}")
        job = ImportJob(secrets.token_hex(8), kind, campaign, target, created_by, upload.size,
                        self._clock.now())
        self._jobs[job.id] = job
        job.task = asyncio.create_task(self._run(job, upload, work), name=f"import {job.id}")
        self._forget_old()
        return job

    def now(self) -> float:
        return self._clock.now()

    def get(self, job_id: str) -> ImportJob | None:
        return self._jobs.get(job_id)

    def under_way(self, kind: ImportKind, campaign: str | None, target: str
                  ) -> ImportJob | None:
        return next((job for job in self._jobs.values()
                     if job.key == (kind, campaign, target) and job.state not in FINISHED),
                    None)

    async def cancel(self, job_id: str) -> ImportJob | None:
        """Stop the import and wait until its transaction is rolled back."""
        job = self._jobs.get(job_id)
        if job is None or job.task is None:
            return job
        if job.state not in FINISHED:
            job.task.cancel()
            await asyncio.wait([job.task])
        return job

    async def close(self) -> None:
        """Cancel every import under way (the service stops): nothing half-stored."""
        tasks = [job.task for job in self._jobs.values()
                 if job.task is not None and not job.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _run(self, job: ImportJob, upload: StoredUpload[Any], work: Work) -> None:
        try:
            async with self._slots:
                job.state = ImportState.READING
                with upload.path.open("rb") as source:
                    job.result = await work(job, source)
            job.state = ImportState.DONE
        except asyncio.CancelledError:
            job.state, job.error = ImportState.CANCELLED, "cancelled; nothing was stored"
            raise
        except (ValueError, LookupError) as exc:
            job.state, job.error = ImportState.FAILED, f"{exc}; nothing was stored"
            match = _LINE_RE.search(str(exc))  # anchored: "line N: ..." at the start
            job.error_line = int(match.group(1)) if match else None
        except Exception as exc:  # the database, a bug: logged whole, told in short
            log.exception("import %s of %r failed", job.id, job.target)
            job.state = ImportState.FAILED
            job.error = f"the import failed ({type(exc).__name__}); nothing was stored"
        finally:
            job.finished_at = self._clock.now()
            upload.discard()

    def _forget_old(self) -> None:
        finished = [job for job in self._jobs.values() if job.state in FINISHED]
        for job in finished[:max(len(finished) - self._keep, 0)]:
            del self._jobs[job.id]


@dataclass(frozen=True)
class UploadServices:
    """What the upload routes need: where files land, who imports them, the lists' store."""

    folder: UploadFolder
    imports: Imports
    lists: CallLists


async def upload_services(data_path: Path, sessions: async_sessionmaker[AsyncSession],
                          clock: Clock, *, max_megabytes: int, grace_seconds: float
                          ) -> UploadServices:
    """The service's uploads, in ``<data folder>/uploads``. What an earlier run killed
    mid-upload or mid-import left is deleted now, before anything is served: its files, and
    the lists it was staging."""
    folder = UploadFolder(data_path / UPLOAD_FOLDER, UploadLimits(
        max_bytes=max_megabytes * 1024 * 1024, grace_seconds=grace_seconds))
    folder.remove_stale()
    lists = CallLists(sessions, clock)
    staged = await lists.discard_unfinished()
    if staged:
        log.warning("deleted %d call list(s) an earlier run left half-imported", staged)
    return UploadServices(folder, Imports(clock), lists)
