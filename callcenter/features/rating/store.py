"""Tariffs in the database, the price of every trunk leg as its call is stored, re-rating a
past period, and what calls cost (per call; per campaign, queue, agent or day).

- ``TariffStore.import_file``: a tariff file taken whole (``parse_tariff``: every bad line
  named) or not at all, in one transaction.
- ``CallPricer`` is a ``RecordFollower`` (features/calls/store.py): in the transaction that
  stores a call record it replaces the call's priced legs (``call_costs``), priced with the
  tariffs in memory (``TariffBook``: loaded once, again when an import lands here, and
  checked against the database's latest import every ``refresh_seconds``, for imports by
  the command line while the service runs).
- ``CallPricer.rerate``: the closed calls of a period priced again with the tariffs as they
  are now; the difference per day and currency; stored only when asked.
- ``CostQueries``: the stored prices summed, for the API and the reports.

Every statement is built with SQLAlchemy expressions and bound parameters.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Table, case, delete, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.clock import Clock, SystemClock, from_datetime, to_datetime
from callcenter.core.rating import (
    Increments,
    Rate,
    Rounding,
    Tariff,
    TariffError,
    TariffProblem,
    in_effect,
    parse_tariff,
)
from callcenter.core.records import CallRecord, Direction
from callcenter.core.trunk_legs import TrunkLeg, Trunks
from callcenter.features.calls.models import CallRow
from callcenter.features.rating.models import CallCostRow, TariffRateRow, TariffRow
from callcenter.store.values import MAX_PAGE, check_page, required_text

log = logging.getLogger(__name__)
NUMBER_RE = re.compile(r"^\+?[0-9]{1,15}$")
NO_NUMBER = "no number"  # the leg's number is unknown or not E.164 digits
NO_RATE = "no rate"  # no rate of the leg's direction and trunk matches its number then
MAX_DAYS = 400  # a day-by-day query covers at most this many days (a year and then some)
RERATE_BATCH = 500  # calls read, priced and written per statement group
MAX_NAME_CHARS = 200
UTC_ZONE = ZoneInfo("UTC")  # days of UTC unless a zone is given


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class TariffFile:
    """One imported tariff file."""

    id: int
    name: str
    currencies: tuple[str, ...]
    rate_count: int
    sha256: str
    imported_by: str
    imported_at: float


@dataclass(frozen=True)
class StoredRate:
    id: int
    tariff_id: int
    line: int
    rate: Rate


@dataclass(frozen=True)
class PricedLeg:
    """One trunk leg as stored: priced (cost and currency) or unpriced (why)."""

    leg: int
    kind: str
    direction: Direction
    trunk: str | None
    number: str | None
    answered_at: float
    billable_seconds: float
    billed_seconds: int
    cost: Decimal | None
    currency: str | None
    rate_id: int | None
    unpriced: str | None
    prefix: str | None = None  # the rate's, when priced
    tariff_id: int | None = None


@dataclass(frozen=True)
class CallCost:
    call_id: str
    legs: list[PricedLeg]

    @property
    def totals(self) -> dict[str, Decimal]:
        """The priced legs' cost per currency."""
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for leg in self.legs:
            if leg.cost is not None and leg.currency is not None:
                sums[leg.currency] += leg.cost
        return dict(sorted(sums.items()))

    @property
    def unpriced_legs(self) -> int:
        return sum(1 for leg in self.legs if leg.unpriced is not None)


class CostGrouping(StrEnum):
    DAY = "day"  # the day the leg was answered, in the given zone
    CAMPAIGN = "campaign"
    QUEUE = "queue"
    AGENT = "agent"  # the agent who answered the call (the record's agent_id)


@dataclass(frozen=True)
class CostTotal:
    """The legs of one group in one currency; ``currency`` None: the unpriced legs, counted
    apart (their ``cost`` is None, never zero)."""

    key: str | None  # the day (YYYY-MM-DD), campaign, queue or agent; None: none
    currency: str | None
    calls: int
    legs: int
    billable_seconds: float
    billed_seconds: int
    cost: Decimal | None


@dataclass(frozen=True)
class RerateLine:
    """One day and currency of a re-rating (``currency`` None: the unpriced legs)."""

    day: str
    currency: str | None
    old_total: Decimal | None
    new_total: Decimal | None
    old_legs: int
    new_legs: int

    @property
    def difference(self) -> Decimal | None:
        if self.currency is None:
            return None
        return (self.new_total or Decimal(0)) - (self.old_total or Decimal(0))


@dataclass
class Rerating:
    since: float
    until: float
    applied: bool
    calls_checked: int = 0
    calls_changed: int = 0
    lines: list[RerateLine] = field(default_factory=list)


# --------------------------------------------------------------------------- the tariffs


class TariffBook:
    """The rates of every imported file as one tariff (``in_effect``), with the stored id of
    each rate: what prices a leg."""

    def __init__(self, version: int, stored: Sequence[StoredRate]) -> None:
        self.version = version  # the latest import it holds (0: none)
        layers: dict[int, list[Rate]] = defaultdict(list)
        self._ids: dict[Rate, int] = {}
        for item in stored:  # oldest import first: a later file's same rate replaces it
            layers[item.tariff_id].append(item.rate)
            self._ids[item.rate] = item.id
        self.tariff = Tariff(in_effect(layers[key] for key in sorted(layers)))

    def price(self, call_pk: int, index: int, leg: TrunkLeg) -> dict[str, Any]:
        """The ``call_costs`` row of one leg."""
        row: dict[str, Any] = {
            "call_pk": call_pk, "leg": index, "kind": leg.kind.value,
            "direction": leg.direction.value, "trunk": leg.trunk, "number": leg.number,
            "answered_at": to_datetime(leg.answered_at),
            "billable_seconds": leg.billable_seconds, "billed_seconds": 0, "cost": None,
            "currency": None, "rate_id": None, "unpriced": None}
        if leg.number is None or not NUMBER_RE.fullmatch(leg.number):
            row["unpriced"] = NO_NUMBER
            return row
        priced = self.tariff.price(leg.number, leg.direction, row["answered_at"],
                                   leg.billable_seconds, leg.trunk)
        if priced.rate is None:
            row["unpriced"] = NO_RATE
            return row
        row.update(billed_seconds=priced.billed_seconds, cost=priced.cost,
                   currency=priced.currency, rate_id=self._ids[priced.rate])
        return row


_RATE_COLUMNS = tuple(TariffRateRow.__table__.c)


def _book_of(version: int, rows: Sequence[Any]) -> TariffBook:
    return TariffBook(version, [StoredRate(row.id, row.tariff_id, row.line, _rate_of(row))
                                for row in rows])


def _rate_of(row: Any) -> Rate:
    """A stored rate (an ORM row or a plain one with the same columns) as the core's."""
    return Rate(prefix=row.prefix, direction=Direction(row.direction),
                per_minute=row.per_minute, currency=row.currency,
                effective_from=row.effective_from, trunk=row.trunk,
                connection_fee=row.connection_fee,
                increments=Increments.parse(row.increments), minimum=row.minimum,
                decimals=row.decimals, rounding=Rounding(row.rounding),
                description=row.description)


def _file_of(row: TariffRow) -> TariffFile:
    return TariffFile(id=row.id, name=row.name, currencies=tuple(row.currencies.split()),
                      rate_count=row.rate_count, sha256=row.sha256,
                      imported_by=row.imported_by, imported_at=row.imported_at.timestamp())


def read_tariff_text(data: bytes) -> str:
    """A tariff file's bytes as text: UTF-8 (a byte-order mark allowed), strictly; a byte
    that is not raises ``TariffError`` naming its line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TariffError([TariffProblem(line, f"not UTF-8 text (byte {exc.start + 1} of "
                                               "the file); save it as UTF-8")]) from None


class TariffStore:
    """Imports tariff files and lists them; keeps the ``TariffBook`` that prices legs."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock | None = None,
                 *, refresh_seconds: float = 30.0) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()
        self._refresh_seconds = refresh_seconds
        self._book: TariffBook | None = None
        self._checked_at = float("-inf")
        self._loading = asyncio.Lock()

    async def import_file(self, name: str, data: bytes, imported_by: str) -> TariffFile:
        """Store a tariff file whole, or raise ``TariffError`` (every bad line) and store
        nothing. Its rates price the legs answered from their dates on."""
        name = required_text("name", name)[:MAX_NAME_CHARS]
        imported_by = required_text("imported_by", imported_by)
        # Tens of thousands of lines take a while to check: not on the loop that runs calls.
        numbered, rates = await asyncio.to_thread(_checked_rates, data)
        now = to_datetime(self._clock.now())
        currencies = " ".join(sorted({rate.currency for rate in rates}))
        digest = hashlib.sha256(data).hexdigest()
        async with self._sessions.begin() as session:
            tariff_id = (await session.execute(insert(TariffRow).values(
                name=name, currencies=currencies, rate_count=len(rates), sha256=digest,
                imported_by=imported_by, imported_at=now).returning(TariffRow.id))
                         ).scalar_one()
            await session.execute(insert(TariffRateRow), [
                {"tariff_id": tariff_id, "line": line, "prefix": rate.prefix,
                 "direction": rate.direction.value, "trunk": rate.trunk,
                 "per_minute": rate.per_minute, "connection_fee": rate.connection_fee,
                 "increments": str(rate.increments), "minimum": rate.minimum,
                 "currency": rate.currency, "decimals": rate.decimals,
                 "rounding": rate.rounding.value, "effective_from": rate.effective_from,
                 "description": rate.description}
                for line, rate in zip(numbered, rates, strict=True)])
        self._book = None  # the next leg priced sees it
        return TariffFile(tariff_id, name, tuple(currencies.split()), len(rates), digest,
                          imported_by, now.timestamp())

    async def tariffs(self) -> list[TariffFile]:
        """Every imported file, newest first."""
        async with self._sessions() as session:
            rows = await session.scalars(select(TariffRow).order_by(TariffRow.id.desc()))
            return [_file_of(row) for row in rows]

    async def rates(self, tariff_id: int | None = None, limit: int = 100,
                    offset: int = 0) -> list[StoredRate]:
        """The rates of one file (or of all, oldest file first), in file order."""
        check_page(limit, offset)
        query = select(TariffRateRow).order_by(TariffRateRow.tariff_id, TariffRateRow.line)
        if tariff_id is not None:
            query = query.where(TariffRateRow.tariff_id == tariff_id)
        async with self._sessions() as session:
            rows = await session.scalars(query.limit(limit).offset(offset))
            return [StoredRate(row.id, row.tariff_id, row.line, _rate_of(row)) for row in rows]

    async def exists(self, tariff_id: int) -> bool:
        async with self._sessions() as session:
            return await session.get(TariffRow, tariff_id) is not None

    async def book(self, session: AsyncSession, *, fresh: bool = False) -> TariffBook:
        """The tariffs in memory; read again after an import here, when ``fresh``, or when
        the database holds a newer import (checked every ``refresh_seconds``)."""
        now = self._clock.now()
        if self._book is not None and not fresh:
            if now - self._checked_at < self._refresh_seconds:
                return self._book
            self._checked_at = now
            if await self._version(session) == self._book.version:
                return self._book
        async with self._loading:  # calls ending together read it once
            version = await self._version(session)
            if not fresh and self._book is not None and self._book.version == version:
                return self._book
            rows = (await session.execute(
                select(*_RATE_COLUMNS).order_by(TariffRateRow.tariff_id, TariffRateRow.id)
            )).all()
            # Making tens of thousands of rates is CPU work: not on the loop that runs calls.
            self._book = await asyncio.to_thread(_book_of, version, rows)
            self._checked_at = now
            return self._book

    @staticmethod
    async def _version(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.coalesce(func.max(TariffRow.id), 0))) or 0)


def _checked_rates(data: bytes) -> tuple[list[int], list[Rate]]:
    """The rates of a tariff file with the line of each, or ``TariffError``."""
    lines = list(io.StringIO(read_tariff_text(data), newline=""))
    rates = parse_tariff(lines)
    if not rates:
        raise TariffError([TariffProblem(1, "the file has no rates: a header row, then one "
                                            "rate per line")])
    return _rate_lines(lines, len(rates)), rates


def _rate_lines(lines: Sequence[str], count: int) -> list[int]:
    """The line number of each rate ``parse_tariff`` returned (it keeps file order and skips
    only the header and blank lines; a quoted cell may span lines)."""
    reader = csv.reader(lines)
    next(reader)
    found = [reader.line_num for cells in reader if any(cell.strip() for cell in cells)]
    assert len(found) == count, "parse_tariff keeps every non-blank line"
    return found


# --------------------------------------------------------------------------- pricing


class CallPricer:
    """Prices each closed call's trunk legs as its record is stored (a ``RecordFollower``),
    and re-rates past periods."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], tariffs: TariffStore,
                 trunks: Trunks) -> None:
        self._sessions = sessions
        self._tariffs = tariffs
        self._trunks = trunks

    def legs(self, record: CallRecord) -> list[TrunkLeg]:
        return self._trunks.legs_of(record)

    async def follow(self, session: AsyncSession, call_pk: int, record: CallRecord) -> None:
        """Replace the call's priced legs: none while it is open, its legs once closed."""
        await self.follow_many(session, [(call_pk, record)])

    async def follow_many(self, session: AsyncSession,
                          stored: Sequence[tuple[int, CallRecord]]) -> None:
        """``follow`` for records stored in one transaction: one delete a page, one insert."""
        # Core statements on the table: the ORM's bulk machinery costs more than the work.
        call_pks = [call_pk for call_pk, _ in stored]
        for start in range(0, len(call_pks), MAX_PAGE):
            await session.execute(_COSTS.delete().where(
                _COSTS.c.call_pk.in_(call_pks[start:start + MAX_PAGE])))
        rows: list[dict[str, Any]] = []
        book: TariffBook | None = None
        for call_pk, record in stored:
            try:
                legs = self.legs(record)
                if not legs:
                    continue
                book = book or await self._tariffs.book(session)
                priced = [book.price(call_pk, i, leg) for i, leg in enumerate(legs)]
            except (ValueError, ArithmeticError, LookupError):
                # A price must never cost the record: it is stored, and re-rating prices it.
                log.exception("call %s: its trunk legs could not be priced; the record is "
                              "stored without them (callcenter rate re-prices its period)",
                              record.call_id)
            else:
                rows.extend(priced)  # all of a call's legs or none
        if rows:
            await session.execute(_COSTS.insert(), rows)

    async def rerate(self, since: float, until: float, *, apply: bool,
                     zone: ZoneInfo = UTC_ZONE) -> Rerating:
        """Price the closed calls that started in [since, until) again with the tariffs as
        they are now; the old and new totals per day (of the legs' answers, in ``zone``) and
        currency. ``apply``: store the new prices (only the calls that changed are
        written); else nothing is written."""
        if since >= until:
            raise ValueError("since must be before until")
        result = Rerating(since, until, apply)
        old: dict[tuple[str, str | None], list[Any]] = defaultdict(lambda: [Decimal(0), 0])
        new: dict[tuple[str, str | None], list[Any]] = defaultdict(lambda: [Decimal(0), 0])
        after_pk = 0
        async with self._sessions() as session:  # one transaction: committed if applied
            book = await self._tariffs.book(session, fresh=True)
            while True:
                calls = (await session.execute(
                    select(CallRow.id, CallRow.call_id, CallRow.started_at, CallRow.channel,
                           CallRow.caller_number, CallRow.direction, CallRow.callback_of,
                           CallRow.answered_at, CallRow.ended_at)
                    .where(CallRow.started_at >= to_datetime(since),
                           CallRow.started_at < to_datetime(until),
                           CallRow.ended_at.is_not(None), CallRow.id > after_pk)
                    .order_by(CallRow.id).limit(RERATE_BATCH))).all()
                if not calls:
                    break
                after_pk = calls[-1].id
                stored: dict[int, list[dict[str, Any]]] = defaultdict(list)
                for row in await session.scalars(
                        select(CallCostRow)
                        .where(CallCostRow.call_pk.in_([c.id for c in calls]))
                        .order_by(CallCostRow.call_pk, CallCostRow.leg)):
                    stored[row.call_pk].append(
                        {name: getattr(row, name) for name in (*_COMPARED, "answered_at")})
                changed: list[int] = []
                fresh: list[dict[str, Any]] = []
                for call in calls:
                    rows = [book.price(call.id, i, leg)
                            for i, leg in enumerate(self.legs(_record_of(call)))]
                    before = stored.get(call.id, [])
                    _add(old, before, zone)
                    _add(new, rows, zone)
                    result.calls_checked += 1
                    if [_compared(r) for r in before] != [_compared(r) for r in rows]:
                        result.calls_changed += 1
                        changed.append(call.id)
                        fresh.extend(rows)
                if apply and changed:
                    await session.execute(
                        delete(CallCostRow).where(CallCostRow.call_pk.in_(changed))
                        .execution_options(synchronize_session=False))
                    if fresh:
                        await session.execute(insert(CallCostRow), fresh)
            if apply:
                await session.commit()  # a dry run ends with the session: rolled back
        for day, currency in sorted(set(old) | set(new), key=lambda k: (k[0], k[1] or "~")):
            (old_cost, old_legs), (new_cost, new_legs) = old[(day, currency)], new[(day, currency)]
            result.lines.append(RerateLine(
                day, currency, None if currency is None else old_cost,
                None if currency is None else new_cost, old_legs, new_legs))
        return result


_COSTS: Table = CallCostRow.__table__  # type: ignore[assignment]  # declared as a Table
_COMPARED = ("leg", "kind", "trunk", "number", "billed_seconds", "cost", "currency", "rate_id",
             "unpriced")


def _compared(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in _COMPARED)


def _add(totals: dict[tuple[str, str | None], list[Any]], rows: Iterable[dict[str, Any]],
         zone: ZoneInfo) -> None:
    for row in rows:
        entry = totals[(row["answered_at"].astimezone(zone).date().isoformat(), row["currency"])]
        if row["cost"] is not None:
            entry[0] += row["cost"]
        entry[1] += 1


def _record_of(call: Any) -> CallRecord:
    """What ``trunk_legs`` reads of a stored call (its other fields play no part)."""
    return CallRecord(call_id=call.call_id, started_at=call.started_at.timestamp(),
                      channel=call.channel, caller_number=call.caller_number,
                      direction=Direction(call.direction), callback_of=call.callback_of,
                      answered_at=from_datetime(call.answered_at),
                      ended_at=from_datetime(call.ended_at))


# --------------------------------------------------------------------------- what calls cost


def local_days(since: float, until: float, zone: ZoneInfo) -> list[tuple[str, datetime]]:
    """Each day of [since, until) in ``zone`` with the UTC instant it starts (the first one:
    ``since`` itself), so a leg's day is the last start at or before its answer."""
    first = datetime.fromtimestamp(since, zone).date()
    last = datetime.fromtimestamp(until, zone).date()
    if (last - first).days > MAX_DAYS:
        raise ValueError(f"since..until spans {(last - first).days} days; a day-by-day "
                         f"query covers at most {MAX_DAYS}")
    days: list[tuple[str, datetime]] = []
    day: date = first
    while day <= last:
        start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        days.append((day.isoformat(), max(start, to_datetime(since) or start)))
        day += timedelta(days=1)
    return days


class CostQueries:
    """What calls cost, from the stored priced legs (``call_costs``)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def call_cost(self, call_id: str) -> CallCost | None:
        """The legs of one call with their prices; None: no such call."""
        async with self._sessions() as session:
            call_pk = await session.scalar(select(CallRow.id).where(CallRow.call_id == call_id))
            if call_pk is None:
                return None
            rows = (await session.execute(
                select(CallCostRow, TariffRateRow.prefix, TariffRateRow.tariff_id)
                .outerjoin(TariffRateRow, TariffRateRow.id == CallCostRow.rate_id)
                .where(CallCostRow.call_pk == call_pk).order_by(CallCostRow.leg))).all()
        return CallCost(call_id, [
            PricedLeg(leg=row.leg, kind=row.kind, direction=Direction(row.direction),
                      trunk=row.trunk, number=row.number,
                      answered_at=row.answered_at.timestamp(),
                      billable_seconds=row.billable_seconds, billed_seconds=row.billed_seconds,
                      cost=row.cost, currency=row.currency, rate_id=row.rate_id,
                      unpriced=row.unpriced, prefix=prefix, tariff_id=tariff_id)
            for row, prefix, tariff_id in rows])

    async def campaign_cost(self, campaign: str, since: float, until: float,
                            ) -> list[tuple[str, Decimal]]:
        """What the campaign's priced legs answered in [since, until) cost, per currency
        (the campaign report's cost; unpriced legs are in ``totals``)."""
        return [(t.currency, t.cost) for t in await self.totals(
                    CostGrouping.CAMPAIGN, since, until, campaign=campaign)
                if t.currency is not None and t.cost is not None]

    async def totals(self, by: CostGrouping, since: float, until: float, *,
                     zone: ZoneInfo = UTC_ZONE, campaign: str | None = None,
                     queue: str | None = None, agent: str | None = None) -> list[CostTotal]:
        """The legs answered in [since, until) summed per group and currency, ordered by
        group then currency; the unpriced legs of each group in a row of their own
        (currency None). ``campaign``, ``queue``, ``agent``: only those calls."""
        if since >= until:
            raise ValueError("since must be before until")
        key: ColumnElement[Any]
        if by is CostGrouping.DAY:
            days = local_days(since, until, zone)
            key = case(*[(CallCostRow.answered_at >= start, literal(name))
                         for name, start in reversed(days)], else_=literal(days[0][0]))
        else:
            key = {CostGrouping.CAMPAIGN: CallRow.campaign, CostGrouping.QUEUE: CallRow.queue,
                   CostGrouping.AGENT: CallRow.agent_id}[by]
        conditions = [CallCostRow.answered_at >= to_datetime(since),
                      CallCostRow.answered_at < to_datetime(until)]
        for column, value in ((CallRow.campaign, campaign), (CallRow.queue, queue),
                              (CallRow.agent_id, agent)):
            if value is not None:
                conditions.append(column == value)
        # Grouped outside: PostgreSQL would not see the CASE of the select list (its bound
        # day names and starts) as the same expression as the GROUP BY's.
        legs = (select(key.label("key"), CallCostRow.currency, CallCostRow.call_pk,
                       CallCostRow.billable_seconds, CallCostRow.billed_seconds,
                       CallCostRow.cost)
                .join(CallRow, CallRow.id == CallCostRow.call_pk)
                .where(*conditions).subquery())
        query = (select(legs.c.key, legs.c.currency,
                        func.count(func.distinct(legs.c.call_pk)).label("calls"),
                        func.count().label("legs"),
                        func.sum(legs.c.billable_seconds).label("billable"),
                        func.sum(legs.c.billed_seconds).label("billed"),
                        func.sum(legs.c.cost).label("cost"))
                 .group_by(legs.c.key, legs.c.currency))
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        totals = [CostTotal(key=row.key, currency=row.currency, calls=int(row.calls),
                            legs=int(row.legs), billable_seconds=float(row.billable or 0),
                            billed_seconds=int(row.billed or 0),
                            cost=None if row.currency is None else row.cost)
                  for row in rows]
        return sorted(totals, key=lambda t: (t.key is None, t.key or "", t.currency is None,
                                             t.currency or ""))
