"""A campaign's call lists in the database: an upload is stored whole or not at all.

A list is made by its first upload and may take more (``append_rows``): each upload's rows
keep their own line numbers, with the upload's number (1 for the first). A number already in
the list is a duplicate of the line that holds it. Lists are disabled and enabled, recycled
(``recycled_at``: the dialer counts only the attempts placed since towards max attempts),
exported with their outcomes (export.py), and deleted only if never dialled.

The reader (core/call_lists.py through list_files.py) yields one outcome per row; the import
writes them under a *staged* list (``importing``: not active, shown by no query here, never
dialled), a batch per short transaction, and completes it in one last transaction. A file
that turns out bad half-way (a ``CallListError``), a database that fails or a cancel deletes
the staged list; a service killed mid-upload leaves one, deleted at the next start
(``discard_unfinished``): nothing of it is ever seen. Not one long transaction, because on
SQLite that holds the only write lock for the whole import (a million rows: 90 s) and every
other write (call records, sign-ins) would fail meanwhile. Reading and checking a row costs
tens of microseconds (phonenumbers), so batches are drawn from the reader in a worker thread
and the event loop keeps serving calls meanwhile.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.call_lists import (
    AcceptedRow,
    DuplicateRow,
    ListSummary,
    RejectedRow,
    RowOutcome,
)
from callcenter.core.clock import Clock, SystemClock, to_datetime
from callcenter.core.identifiers import check_campaign_name
from callcenter.features.campaigns.models import (
    CallListEntryRow,
    CallListProblemRow,
    CallListRow,
    CampaignAttemptRow,
    CampaignRow,
)
from callcenter.features.campaigns.store import CampaignNotFound
from callcenter.store.values import required_text

BATCH_ROWS = 1000
MAX_LIST_NAME_CHARS = 80


class ListNameTaken(ValueError):
    """The campaign has a list of that name already."""


class CallListNotFound(LookupError):
    """The campaign has no list with that id."""


class ListDialled(ValueError):
    """The list cannot be deleted: the campaign has dialled it."""


@dataclass(frozen=True)
class StoredList:
    id: int
    campaign: str
    name: str
    active: bool
    summary: ListSummary  # every upload's counts, added up
    created_by: str | None
    created_at: float
    recycled_at: float | None = None
    uploads: int = 1


@dataclass(frozen=True)
class EntryOutcomes:
    """One list entry with what its calls gave (for the export)."""

    entry: CallListEntryRow
    attempts: int
    last_outcome: str | None
    last_disposition: str | None
    last_placed_at: float | None


class CallLists:
    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 clock: Clock | None = None) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()

    async def import_list(self, campaign: str, name: str, outcomes: Iterator[RowOutcome],
                          summary: Callable[[], ListSummary], *,
                          created_by: str | None = None) -> StoredList:
        """Store the list ``outcomes`` yield, whole; ``summary`` is read once they are
        exhausted. Any error (the reader's ``CallListError`` included) or a cancel stores
        nothing: the list is staged (``importing``: shown nowhere, dialled never) and either
        completed in one last short transaction or deleted."""
        check_campaign_name("campaign", campaign)
        list_name = check_list_name(name)
        now = self._clock.now()
        async with self._sessions.begin() as session:
            if await session.scalar(select(CampaignRow.id).where(
                    CampaignRow.name == campaign)) is None:
                raise CampaignNotFound(f"campaign {campaign!r}: no such campaign")
            try:  # the unique name decides a race between two uploads of one name
                list_id = await _new_list(session, campaign, list_name, created_by, now)
            except IntegrityError:
                raise ListNameTaken(
                    f"campaign {campaign!r} has a list named {list_name!r}") from None
        try:
            counted = await _store_rows(self._sessions, list_id, 1, outcomes, summary,
                                        against=None)
            async with self._sessions.begin() as session:
                row = await session.get_one(CallListRow, list_id)
                _add_counts(row, counted)
                row.active, row.importing = True, False
                stored = _stored(row)
        except BaseException:
            await self._discard(list_id)
            raise
        return stored

    async def append_rows(self, campaign: str, list_id: int, outcomes: Iterator[RowOutcome],
                          summary: Callable[[], ListSummary]) -> tuple[StoredList, ListSummary]:
        """Add an upload's rows to a list, whole or not at all, by the same rules; a number
        the list has already is a duplicate of the line (and upload) that holds it. The rows
        are staged apart (a hidden list) and moved into the list in one last transaction.
        Returns the list and this upload's own counts."""
        async with self._sessions.begin() as session:
            target = await _list_row(session, campaign, list_id)
            staging = await _new_list(session, target.campaign,
                                      f"{secrets.token_hex(8)} appending to {list_id}",
                                      None, self._clock.now())
        try:
            counted = await _store_rows(self._sessions, staging, 0, outcomes, summary,
                                        against=list_id)
            async with self._sessions.begin() as session:
                # Locks the list's row (PostgreSQL): two appends end one after the other.
                row = await _list_row(session, campaign, list_id, lock=True)
                upload = row.uploads + 1
                for table in (CallListEntryRow, CallListProblemRow):
                    await session.execute(
                        update(table).where(table.list_id == staging)
                        .values(list_id=list_id, upload=upload)
                        .execution_options(synchronize_session=False))
                await session.execute(delete(CallListRow).where(CallListRow.id == staging))
                row.uploads = upload
                _add_counts(row, counted)
                stored = _stored(row)
        except BaseException:
            await self._discard(staging)
            raise
        return stored, counted

    async def discard_unfinished(self) -> int:
        """Delete the staged lists a killed run left (call it at start, before imports
        run); returns how many."""
        async with self._sessions() as session:
            staged = list(await session.scalars(select(CallListRow.id).where(
                CallListRow.importing.is_(True))))
        for list_id in staged:
            await self._discard(list_id)
        return len(staged)

    async def _discard(self, list_id: int) -> None:
        async with self._sessions.begin() as session:
            for table in (CallListProblemRow, CallListEntryRow):
                await session.execute(delete(table).where(table.list_id == list_id))
            await session.execute(delete(CallListRow).where(CallListRow.id == list_id,
                                                            CallListRow.importing.is_(True)))

    async def lists(self, campaign: str) -> list[StoredList]:
        query = (select(CallListRow)
                 .where(CallListRow.campaign == check_campaign_name("campaign", campaign),
                        CallListRow.importing.is_(False))
                 .order_by(CallListRow.id))
        async with self._sessions() as session:
            return [_stored(row) for row in await session.scalars(query)]

    async def get(self, campaign: str, list_id: int) -> StoredList:
        async with self._sessions() as session:
            return _stored(await _list_row(session, campaign, list_id))

    async def set_active(self, campaign: str, list_id: int, active: bool) -> StoredList:
        """Enable or disable the list (a disabled list is not dialled)."""
        async with self._sessions.begin() as session:
            row = await _list_row(session, campaign, list_id)
            row.active = active
            stored = _stored(row)
        return stored

    async def recycle(self, campaign: str, list_id: int) -> StoredList:
        """From now on, the attempts placed before now no longer count towards the
        campaign's max attempts (the dialer reads ``recycled_at``)."""
        async with self._sessions.begin() as session:
            row = await _list_row(session, campaign, list_id)
            row.recycled_at = to_datetime(self._clock.now())
            stored = _stored(row)
        return stored

    async def delete(self, campaign: str, list_id: int) -> None:
        """Delete a list the campaign never dialled; ``ListDialled`` otherwise."""
        async with self._sessions.begin() as session:
            await _list_row(session, campaign, list_id, lock=True)
            dialled = await session.scalar(select(func.count()).select_from(
                CampaignAttemptRow).where(CampaignAttemptRow.list_id == list_id))
            if dialled:
                raise ListDialled(
                    f"list {list_id} has been dialled ({dialled} calls): its history stays; "
                    "disable it instead")
            for table in (CallListProblemRow, CallListEntryRow):
                await session.execute(delete(table).where(table.list_id == list_id))
            await session.execute(delete(CallListRow).where(CallListRow.id == list_id))

    async def entries(self, list_id: int, limit: int = 100, after_id: int = 0
                      ) -> list[dict[str, Any]]:
        """The list's numbers in the order they were stored, a page at a time."""
        query = (select(CallListEntryRow).where(CallListEntryRow.list_id == list_id,
                                                CallListEntryRow.id > after_id)
                 .order_by(CallListEntryRow.id).limit(limit))
        async with self._sessions() as session:
            return [{"id": r.id, "upload": r.upload, "line": r.line, "number": r.number,
                     "name": r.name, "time_zones": list(r.time_zones),
                     "time_zone_source": r.time_zone_source,
                     "extra": [list(field) for field in r.extra]}
                    for r in await session.scalars(query)]

    async def problems(self, list_id: int, limit: int | None = None, offset: int = 0
                       ) -> list[dict[str, Any]]:
        """Every row not taken, by upload and line: rejected with the reason, or a
        duplicate; ``limit`` rows from ``offset``, or all."""
        query = (select(CallListProblemRow).where(CallListProblemRow.list_id == list_id)
                 .order_by(CallListProblemRow.upload, CallListProblemRow.line,
                           CallListProblemRow.id)
                 .offset(offset))
        if limit is not None:
            query = query.limit(limit)
        async with self._sessions() as session:
            return [{"upload": r.upload, "line": r.line, "reason": r.reason,
                     "number": r.number, "first_line": r.first_line}
                    for r in await session.scalars(query)]

    async def extra_columns(self, campaign: str, list_id: int) -> list[str]:
        """The extra fields' column names, in the order the uploads gave them (every row of
        an upload has the same columns, so its first row tells them)."""
        await self.get(campaign, list_id)
        firsts = (select(func.min(CallListEntryRow.id))
                  .where(CallListEntryRow.list_id == list_id)
                  .group_by(CallListEntryRow.upload))
        async with self._sessions() as session:
            extras = await session.scalars(
                select(CallListEntryRow.extra).where(CallListEntryRow.id.in_(firsts))
                .order_by(CallListEntryRow.id))
            names: dict[str, None] = {}
            for extra in extras:
                names.update((column, None) for column, _value, _formula in extra)
        return list(names)

    async def with_outcomes(self, campaign: str, list_id: int, batch: int = BATCH_ROWS
                            ) -> AsyncIterator[list[EntryOutcomes]]:
        """Every entry of the list with its attempts so far, a batch at a time (each batch
        its own short read: an export of a million rows holds no transaction open)."""
        await self.get(campaign, list_id)  # CallListNotFound before the first batch
        after = 0
        while True:
            async with self._sessions() as session:
                entries = list(await session.scalars(
                    select(CallListEntryRow).where(CallListEntryRow.list_id == list_id,
                                                   CallListEntryRow.id > after)
                    .order_by(CallListEntryRow.id).limit(batch)))
                if not entries:
                    return
                attempts = await session.execute(
                    select(CampaignAttemptRow.entry_id, CampaignAttemptRow.outcome,
                           CampaignAttemptRow.disposition, CampaignAttemptRow.placed_at)
                    .where(CampaignAttemptRow.entry_id.in_([e.id for e in entries]))
                    .order_by(CampaignAttemptRow.entry_id, CampaignAttemptRow.placed_at,
                              CampaignAttemptRow.id))
            by_entry: dict[int, list[Any]] = {}
            for attempt in attempts:
                by_entry.setdefault(attempt.entry_id, []).append(attempt)
            yield [_with_outcomes(entry, by_entry.get(entry.id, [])) for entry in entries]
            after = entries[-1].id


def check_list_name(name: object) -> str:
    list_name = required_text("name", name)
    if len(list_name) > MAX_LIST_NAME_CHARS:
        raise ValueError(f"name: at most {MAX_LIST_NAME_CHARS} characters")
    return list_name


async def _list_row(session: AsyncSession, campaign: str, list_id: int, *,
                    lock: bool = False) -> CallListRow:
    query = select(CallListRow).where(
        CallListRow.id == list_id,
        CallListRow.campaign == check_campaign_name("campaign", campaign),
        CallListRow.importing.is_(False))
    row = await session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise CallListNotFound(f"campaign {campaign!r} has no list {list_id}")
    return row


async def _new_list(session: AsyncSession, campaign: str, name: str,
                    created_by: str | None, now: float) -> int:
    """A staged list: not active, ``importing`` until its rows are all in."""
    return (await session.execute(insert(CallListRow).values(
        campaign=campaign, name=name, active=False, importing=True, rows_read=0, accepted=0,
        rejected=0, duplicates=0, blank_rows=0, ambiguous_time_zones=0,
        created_by=created_by, created_at=to_datetime(now), uploads=1,
    ).returning(CallListRow.id))).scalar_one()


async def _store_rows(sessions: async_sessionmaker[AsyncSession], list_id: int, upload: int,
                      outcomes: Iterator[RowOutcome], summary: Callable[[], ListSummary],
                      *, against: int | None) -> ListSummary:
    """Insert the outcomes under the staged list, a batch per short transaction (so the
    database's writers are never held up long: SQLite has one); ``against``: a list whose
    numbers are duplicates of their line. Returns this upload's counts."""
    repeated = 0
    while batch := await asyncio.to_thread(_next_batch, outcomes):
        async with sessions.begin() as session:
            if against is not None:
                batch = await _against_list(session, against, batch)
                repeated += sum(1 for outcome in batch if isinstance(outcome, _KnownNumber))
            entries, problems = _split(list_id, upload, batch)
            if entries:
                await session.execute(insert(CallListEntryRow), entries)
            if problems:
                await session.execute(insert(CallListProblemRow), problems)
    counted = summary()
    if repeated:
        counted = dataclasses.replace(counted, accepted=counted.accepted - repeated,
                                      duplicates=counted.duplicates + repeated)
    return counted


@dataclass(frozen=True)
class _KnownNumber:
    """An accepted row whose number an earlier upload of the list holds."""

    line: int
    number: str
    first_line: int
    first_upload: int


async def _against_list(session: AsyncSession, list_id: int, batch: list[RowOutcome]
                        ) -> list[RowOutcome | _KnownNumber]:
    numbers = [o.number for o in batch if isinstance(o, AcceptedRow)]
    if not numbers:
        return list(batch)
    held: dict[str, tuple[int, int]] = {}
    found = await session.execute(
        select(CallListEntryRow.number, CallListEntryRow.line, CallListEntryRow.upload)
        .where(CallListEntryRow.list_id == list_id, CallListEntryRow.number.in_(numbers))
        .order_by(CallListEntryRow.id))
    for number, line, upload in found:
        held.setdefault(number, (line, upload))
    result: list[RowOutcome | _KnownNumber] = []
    for outcome in batch:
        if isinstance(outcome, AcceptedRow) and outcome.number in held:
            line, upload = held[outcome.number]
            result.append(_KnownNumber(outcome.line, outcome.number, line, upload))
        else:
            result.append(outcome)
    return result


def _add_counts(row: CallListRow, counted: ListSummary) -> None:
    row.rows_read += counted.rows_read
    row.accepted += counted.accepted
    row.rejected += counted.rejected
    row.duplicates += counted.duplicates
    row.blank_rows += counted.blank_rows
    row.ambiguous_time_zones += counted.ambiguous_time_zones


def _next_batch(outcomes: Iterator[RowOutcome]) -> list[RowOutcome]:
    return list(itertools.islice(outcomes, BATCH_ROWS))


def _split(list_id: int, upload: int, batch: list[RowOutcome] | list[RowOutcome | _KnownNumber]
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    entries: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    for outcome in batch:
        if isinstance(outcome, AcceptedRow):
            entries.append({
                "list_id": list_id, "upload": upload, "line": outcome.line,
                "number": outcome.number, "name": outcome.name,
                "time_zones": list(outcome.time_zones),
                "time_zone_source": outcome.time_zone_source.value,
                "extra": [[f.column, f.value, f.formula_like] for f in outcome.extra]})
        elif isinstance(outcome, DuplicateRow):
            problems.append({
                "list_id": list_id, "upload": upload, "line": outcome.line,
                "number": outcome.number, "first_line": outcome.first_line,
                "reason": f"{outcome.number} is already on line {outcome.first_line}"})
        elif isinstance(outcome, _KnownNumber):
            problems.append({
                "list_id": list_id, "upload": upload, "line": outcome.line,
                "number": outcome.number, "first_line": outcome.first_line,
                "reason": f"{outcome.number} is already in the list (line "
                          f"{outcome.first_line} of upload {outcome.first_upload})"})
        else:
            assert isinstance(outcome, RejectedRow)
            problems.append({"list_id": list_id, "upload": upload, "line": outcome.line,
                             "reason": outcome.reason, "number": None, "first_line": None})
    return entries, problems


def _with_outcomes(entry: CallListEntryRow, attempts: list[Any]) -> EntryOutcomes:
    last = attempts[-1] if attempts else None
    disposed = [a.disposition for a in attempts if a.disposition is not None]
    return EntryOutcomes(
        entry, len(attempts), last.outcome if last is not None else None,
        disposed[-1] if disposed else None,
        last.placed_at.timestamp() if last is not None else None)


def _stored(row: CallListRow) -> StoredList:
    return StoredList(row.id, row.campaign, row.name, row.active, ListSummary(
        rows_read=row.rows_read, accepted=row.accepted, rejected=row.rejected,
        duplicates=row.duplicates, blank_rows=row.blank_rows,
        ambiguous_time_zones=row.ambiguous_time_zones), row.created_by,
        row.created_at.timestamp(),
        row.recycled_at.timestamp() if row.recycled_at is not None else None,
        row.uploads)
