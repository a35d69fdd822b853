"""The do-not-call list and the consent ledger in and out of the database.

Numbers are strict E.164 here (core/identifiers.py): a list upload normalises them first.
The ledger is append-only: this module has no UPDATE and no DELETE for it. Leaving the
do-not-call list is an admin's act and is not offered yet.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Insert, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.clock import Clock, SystemClock, to_datetime
from callcenter.core.consent import (
    ConsentEntry,
    ConsentKind,
    ConsentNow,
    ConsentSource,
    DoNotCall,
    consent_now,
    on_do_not_call,
)
from callcenter.core.identifiers import check_campaign_name, check_e164
from callcenter.features.compliance.models import GLOBAL, ConsentRow, DoNotCallRow
from callcenter.store.values import check_page, enum_value, required_text, text_value

MAX_PROOF_CHARS = 2000
MAX_REASON_CHARS = 500
BATCH_ROWS = 1000


class NumberIn(Protocol):
    """A checked row of a do-not-call file (compliance/uploads.py ``DoNotCallIn``)."""

    number: str
    reason: str


class ConsentIn(Protocol):
    """A checked row of a consent file (compliance/uploads.py ``ConsentIn``)."""

    number: str
    kind: ConsentKind
    at: float | None
    proof: str


@dataclass(frozen=True)
class Imported:
    """What an upload's rows did: new entries, and rows the store had already."""

    added: int
    already: int


class ComplianceStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 clock: Clock | None = None) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()

    # ------------------------------------------------------------------ do not call

    async def add_do_not_call(self, number: str, campaign: str | None, *, source: str,
                              reason: str, added_by: str | None = None) -> DoNotCall:
        """List ``number`` (for ``campaign``, or everywhere); listing it again keeps the
        first entry and returns it."""
        values = {
            "number": check_e164("number", number),
            "campaign": GLOBAL if campaign is None else check_campaign_name("campaign",
                                                                          campaign),
            "added_at": to_datetime(self._clock.now()),
            "source": required_text("source", source),
            "reason": _bounded("reason", reason, MAX_REASON_CHARS),
            "added_by": text_value("added_by", added_by),
        }
        try:
            async with self._sessions.begin() as session:
                session.add(row := DoNotCallRow(**values))
            return _do_not_call(row)
        except IntegrityError:
            existing = await self.do_not_call_entries(number)
            return next(e for e in existing if e.campaign == campaign)

    async def do_not_call_entries(self, number: str) -> list[DoNotCall]:
        query = select(DoNotCallRow).where(DoNotCallRow.number == check_e164("number", number))
        async with self._sessions() as session:
            return [_do_not_call(row) for row in await session.scalars(
                query.order_by(DoNotCallRow.id))]

    async def list_do_not_call(self, campaign: str | None, limit: int = 100, offset: int = 0
                               ) -> list[DoNotCall]:
        """The global list (``campaign`` None) or one campaign's, oldest first."""
        check_page(limit, offset)
        key = GLOBAL if campaign is None else check_campaign_name("campaign", campaign)
        query = (select(DoNotCallRow).where(DoNotCallRow.campaign == key)
                 .order_by(DoNotCallRow.id).limit(limit).offset(offset))
        async with self._sessions() as session:
            return [_do_not_call(row) for row in await session.scalars(query)]

    async def blocked(self, number: str, campaign: str) -> DoNotCall | None:
        """The entry that forbids dialing ``number`` for ``campaign`` now, if any."""
        return on_do_not_call(await self.do_not_call_entries(number), number, campaign)

    async def import_do_not_call(self, campaign: str | None, rows: Iterator[NumberIn], *,
                                 source: str, added_by: str | None) -> Imported:
        """List every number ``rows`` yield (read in a worker thread, a batch at a time), in
        ONE transaction: all or nothing. A number listed already keeps its
        first entry (counted in ``already``)."""
        key = GLOBAL if campaign is None else check_campaign_name("campaign", campaign)
        stamp = {"campaign": key, "added_at": to_datetime(self._clock.now()),
                 "source": required_text("source", source),
                 "added_by": text_value("added_by", added_by)}
        added = already = 0
        async with self._sessions.begin() as session:
            while batch := await asyncio.to_thread(_next_batch, rows):
                wanted = {row.number: row for row in batch}
                listed = set(await session.scalars(select(DoNotCallRow.number).where(
                    DoNotCallRow.campaign == key, DoNotCallRow.number.in_(list(wanted)))))
                new = [{"number": check_e164("number", row.number),
                        "reason": _bounded("reason", row.reason, MAX_REASON_CHARS), **stamp}
                       for number, row in wanted.items() if number not in listed]
                if new:  # one listed meanwhile (the API) is kept, not an error
                    await session.execute(_ignoring_duplicates(session, DoNotCallRow), new)
                added += len(new)
                already += len(wanted) - len(new)
        return Imported(added, already)

    # ------------------------------------------------------------------ consent ledger

    async def import_consents(self, campaign: str | None, rows: Iterator[ConsentIn], *,
                              source: ConsentSource, recorded_by: str | None) -> Imported:
        """Append every entry ``rows`` yield (read in a worker thread), in ONE
        transaction. An entry the ledger holds already (same number, scope, kind, time,
        source and proof: an upload sent again) is not added twice (``already``)."""
        key = GLOBAL if campaign is None else check_campaign_name("campaign", campaign)
        now = to_datetime(self._clock.now())
        origin = enum_value("source", ConsentSource, source)
        who = text_value("recorded_by", recorded_by)
        added = already = 0
        async with self._sessions.begin() as session:
            while batch := await asyncio.to_thread(_next_batch, rows):
                wanted = batch
                held = {(r.number, r.kind, r.at, r.proof) for r in await session.scalars(
                    select(ConsentRow).where(
                        ConsentRow.campaign == key, ConsentRow.source == origin,
                        ConsentRow.number.in_({row.number for row in wanted})))}
                new = []
                for row in wanted:
                    at = now if row.at is None else to_datetime(row.at)
                    entry = (row.number, enum_value("kind", ConsentKind, row.kind), at,
                             _bounded("proof", row.proof, MAX_PROOF_CHARS))
                    if entry in held:
                        already += 1
                        continue
                    held.add(entry)
                    new.append({"number": check_e164("number", row.number), "campaign": key,
                                "kind": entry[1], "at": at, "source": origin,
                                "proof": entry[3], "recorded_by": who})
                if new:
                    await session.execute(insert(ConsentRow), new)
                added += len(new)
        return Imported(added, already)

    async def record_consent(self, number: str, campaign: str | None, kind: ConsentKind,
                             *, source: ConsentSource, proof: str,
                             recorded_by: str | None = None) -> ConsentEntry:
        """Append a grant or revocation, stamped now."""
        row = ConsentRow(
            number=check_e164("number", number),
            campaign=GLOBAL if campaign is None else check_campaign_name("campaign", campaign),
            kind=enum_value("kind", ConsentKind, kind),
            at=to_datetime(self._clock.now()),
            source=enum_value("source", ConsentSource, source),
            proof=_bounded("proof", proof, MAX_PROOF_CHARS),
            recorded_by=text_value("recorded_by", recorded_by))
        async with self._sessions.begin() as session:
            session.add(row)
        return _consent(row)

    async def consent_entries(self, number: str) -> list[ConsentEntry]:
        """Every entry for ``number``, oldest first (the audit trail)."""
        query = (select(ConsentRow).where(ConsentRow.number == check_e164("number", number))
                 .order_by(ConsentRow.at, ConsentRow.id))
        async with self._sessions() as session:
            return [_consent(row) for row in await session.scalars(query)]

    async def ledger(self, campaign: str | None = None, batch: int = BATCH_ROWS
                     ) -> AsyncIterator[list[ConsentEntry]]:
        """The whole ledger in the order it was written (one campaign's entries and the
        ones for every campaign, when ``campaign`` is given), a batch at a time."""
        after = 0
        while True:
            query = select(ConsentRow).where(ConsentRow.id > after)
            if campaign is not None:
                key = check_campaign_name("campaign", campaign)
                query = query.where(or_(ConsentRow.campaign == key,
                                        ConsentRow.campaign == GLOBAL))
            async with self._sessions() as session:
                rows = list(await session.scalars(query.order_by(ConsentRow.id).limit(batch)))
            if not rows:
                return
            after = rows[-1].id
            yield [_consent(row) for row in rows]

    async def consent(self, number: str, campaign: str) -> ConsentNow:
        """What the ledger says for ``number`` in ``campaign`` now."""
        key = check_campaign_name("campaign", campaign)
        query = (select(ConsentRow)
                 .where(ConsentRow.number == check_e164("number", number),
                        or_(ConsentRow.campaign == key, ConsentRow.campaign == GLOBAL)))
        async with self._sessions() as session:
            entries = [_consent(row) for row in await session.scalars(query)]
        return consent_now(entries, campaign, self._clock.now())


def _next_batch(rows: Iterator[Any]) -> list[Any]:
    return list(itertools.islice(rows, BATCH_ROWS))


def _ignoring_duplicates(session: Any, table: type) -> Insert:
    """An INSERT that skips rows a unique constraint already holds (both databases)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def _bounded(where: str, value: object, most: int) -> str:
    text = required_text(where, value)
    if len(text) > most:
        raise ValueError(f"{where}: at most {most} characters")
    return text


def _do_not_call(row: DoNotCallRow) -> DoNotCall:
    return DoNotCall(number=row.number, campaign=row.campaign or None,
                     added_at=row.added_at.timestamp(), source=row.source, reason=row.reason,
                     added_by=row.added_by, id=row.id)


def _consent(row: ConsentRow) -> ConsentEntry:
    return ConsentEntry(number=row.number, campaign=row.campaign or None,
                        kind=ConsentKind(row.kind), at=row.at.timestamp(),
                        source=ConsentSource(row.source), proof=row.proof,
                        recorded_by=row.recorded_by, id=row.id)
