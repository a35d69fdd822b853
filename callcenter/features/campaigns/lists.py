"""A campaign's call lists in the database: an upload is stored whole or not at all.

The reader (core/call_lists.py through list_files.py) yields one outcome per row; the import
writes them in batches inside ONE transaction, so a file that turns out bad half-way (a
``CallListError``), a database that fails, or a service killed mid-upload leaves nothing
behind: no list, no numbers. Reading and checking a row costs tens of microseconds
(phonenumbers), so batches are drawn from the reader in a worker thread and the event loop
keeps serving calls meanwhile.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.call_lists import AcceptedRow, DuplicateRow, ListSummary, RowOutcome
from callcenter.core.clock import Clock, SystemClock, to_datetime
from callcenter.core.identifiers import check_campaign_name
from callcenter.features.campaigns.models import (
    CallListEntryRow,
    CallListProblemRow,
    CallListRow,
    CampaignRow,
)
from callcenter.features.campaigns.store import CampaignNotFound
from callcenter.store.values import required_text

BATCH_ROWS = 1000
MAX_LIST_NAME_CHARS = 80


class ListNameTaken(ValueError):
    """The campaign has a list of that name already."""


@dataclass(frozen=True)
class StoredList:
    id: int
    campaign: str
    name: str
    active: bool
    summary: ListSummary
    created_by: str | None
    created_at: float


class CallLists:
    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 clock: Clock | None = None) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()

    async def import_list(self, campaign: str, name: str, outcomes: Iterator[RowOutcome],
                          summary: Callable[[], ListSummary], *,
                          created_by: str | None = None) -> StoredList:
        """Store the list ``outcomes`` yield, whole; ``summary`` is read once they are
        exhausted. Any error (the reader's ``CallListError`` included) stores nothing."""
        check_campaign_name("campaign", campaign)
        list_name = required_text("name", name)
        if len(list_name) > MAX_LIST_NAME_CHARS:
            raise ValueError(f"name: at most {MAX_LIST_NAME_CHARS} characters")
        now = self._clock.now()
        async with self._sessions.begin() as session:
            if await session.scalar(select(CampaignRow.id).where(
                    CampaignRow.name == campaign)) is None:
                raise CampaignNotFound(f"campaign {campaign!r}: no such campaign")
            try:  # the unique name decides a race between two uploads of one name
                list_id = (await session.execute(insert(CallListRow).values(
                    campaign=campaign, name=list_name, active=True, rows_read=0, accepted=0,
                    rejected=0, duplicates=0, blank_rows=0, ambiguous_time_zones=0,
                    created_by=created_by, created_at=to_datetime(now),
                ).returning(CallListRow.id))).scalar_one()
            except IntegrityError:
                raise ListNameTaken(
                    f"campaign {campaign!r} has a list named {list_name!r}") from None
            while batch := await asyncio.to_thread(_next_batch, outcomes):
                entries, problems = _split(list_id, batch)
                if entries:
                    await session.execute(insert(CallListEntryRow), entries)
                if problems:
                    await session.execute(insert(CallListProblemRow), problems)
            counted = summary()
            row = await session.get_one(CallListRow, list_id)
            row.rows_read, row.accepted = counted.rows_read, counted.accepted
            row.rejected, row.duplicates = counted.rejected, counted.duplicates
            row.blank_rows = counted.blank_rows
            row.ambiguous_time_zones = counted.ambiguous_time_zones
        return StoredList(list_id, campaign, list_name, True, counted, created_by, now)

    async def lists(self, campaign: str) -> list[StoredList]:
        query = (select(CallListRow)
                 .where(CallListRow.campaign == check_campaign_name("campaign", campaign))
                 .order_by(CallListRow.id))
        async with self._sessions() as session:
            return [_stored(row) for row in await session.scalars(query)]

    async def entries(self, list_id: int, limit: int = 100, after_line: int = 0
                      ) -> list[dict[str, Any]]:
        """The list's numbers in upload order, a page at a time."""
        query = (select(CallListEntryRow).where(CallListEntryRow.list_id == list_id,
                                                CallListEntryRow.line > after_line)
                 .order_by(CallListEntryRow.line).limit(limit))
        async with self._sessions() as session:
            return [{"line": r.line, "number": r.number, "name": r.name,
                     "time_zones": list(r.time_zones), "time_zone_source": r.time_zone_source,
                     "extra": [list(field) for field in r.extra]}
                    for r in await session.scalars(query)]

    async def problems(self, list_id: int) -> list[dict[str, Any]]:
        """Every row not taken, by line: rejected with the reason, or a duplicate."""
        query = (select(CallListProblemRow).where(CallListProblemRow.list_id == list_id)
                 .order_by(CallListProblemRow.line))
        async with self._sessions() as session:
            return [{"line": r.line, "reason": r.reason, "number": r.number,
                     "first_line": r.first_line} for r in await session.scalars(query)]


def _next_batch(outcomes: Iterator[RowOutcome]) -> list[RowOutcome]:
    return list(itertools.islice(outcomes, BATCH_ROWS))


def _split(list_id: int, batch: list[RowOutcome]
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    entries: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    for outcome in batch:
        if isinstance(outcome, AcceptedRow):
            entries.append({
                "list_id": list_id, "line": outcome.line, "number": outcome.number,
                "name": outcome.name, "time_zones": list(outcome.time_zones),
                "time_zone_source": outcome.time_zone_source.value,
                "extra": [[f.column, f.value, f.formula_like] for f in outcome.extra]})
        elif isinstance(outcome, DuplicateRow):
            problems.append({
                "list_id": list_id, "line": outcome.line, "number": outcome.number,
                "first_line": outcome.first_line,
                "reason": f"{outcome.number} is already on line {outcome.first_line}"})
        else:
            problems.append({"list_id": list_id, "line": outcome.line,
                             "reason": outcome.reason, "number": None, "first_line": None})
    return entries, problems


def _stored(row: CallListRow) -> StoredList:
    return StoredList(row.id, row.campaign, row.name, row.active, ListSummary(
        rows_read=row.rows_read, accepted=row.accepted, rejected=row.rejected,
        duplicates=row.duplicates, blank_rows=row.blank_rows,
        ambiguous_time_zones=row.ambiguous_time_zones), row.created_by,
        row.created_at.timestamp())
