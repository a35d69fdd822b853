"""Pricing a trunk leg: which rate applies, how many seconds are billed, what it costs.

Pure: rates come in as values (read from a tariff file by ``parse_tariff``), a leg as its
number, trunk, direction, answer time and billable seconds; nothing here reads a clock or a
store. Money is ``Decimal`` throughout, never float.

- **Which rate**: the rates of the leg's direction, in force at the leg's answer time (from
  ``effective_from`` on, until a later rate for the same prefix, trunk and direction takes
  over), for the leg's trunk (a rate naming the trunk beats one for every trunk), the
  longest prefix of the number (E.164 without ``+``) wins. The rate in force when the leg
  was answered prices the whole leg, as carriers bill: a call across midnight, when a new
  tariff starts, is priced at the old one.
- **Billed seconds**: whole seconds, rounded up, then the increments: ``30/6`` bills the
  first 30 s as a block, then 6 s blocks (``60/60`` whole minutes, ``1/1`` per second). A leg
  with no billable second (never answered) costs nothing, not even the connection fee.
- **Cost**: connection fee + rate per minute x billed seconds / 60, at least the minimum
  charge, rounded to the rate's decimal places in its rounding mode, in its currency.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import TypeVar

import pycountry

from callcenter.core.records import Direction

PREFIX_RE = re.compile(r"^[0-9]{1,15}$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
INCREMENTS_RE = re.compile(r"^([0-9]{1,4})/([0-9]{1,4})$")
TRUNK_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_DECIMALS = 6  # amounts are stored with six decimal places: no rate is rounded on import
MAX_WHOLE_DIGITS = 12  # before the point: a trillion a minute is a typo, not a rate
MIN_BILLABLE_SECONDS = 0.001
COLUMNS = ("prefix", "direction", "trunk", "per_minute", "connection_fee", "increments",
           "minimum", "currency", "decimals", "rounding", "effective_from", "description")
REQUIRED = ("prefix", "direction", "per_minute", "currency", "effective_from")


class Rounding(StrEnum):
    """How a price is rounded to the rate's decimal places (Decimal's modes)."""

    HALF_UP = "half_up"
    HALF_EVEN = "half_even"
    UP = "up"  # away from zero: a carrier never loses a fraction of a cent
    DOWN = "down"


_MODES = {Rounding.HALF_UP: ROUND_HALF_UP, Rounding.HALF_EVEN: ROUND_HALF_EVEN,
          Rounding.UP: ROUND_UP, Rounding.DOWN: ROUND_DOWN}


@dataclass(frozen=True)
class Increments:
    """``first`` seconds billed as one block, then blocks of ``then`` seconds."""

    first: int
    then: int

    def __post_init__(self) -> None:
        if self.first < 1 or self.then < 1:
            raise ValueError(f"increments {self}: both blocks are 1 second or more")

    def __str__(self) -> str:
        return f"{self.first}/{self.then}"

    @classmethod
    def parse(cls, text: str) -> Increments:
        found = INCREMENTS_RE.fullmatch(text.strip())
        if found is None:
            raise ValueError(f"{text!r} is not increments such as 30/6, 60/60 or 1/1")
        return cls(int(found.group(1)), int(found.group(2)))

    def billed(self, seconds: float) -> int:
        """The seconds billed for a leg of ``seconds`` billable seconds (under a millisecond
        is nothing; float noise past a whole second is not another second)."""
        if seconds < MIN_BILLABLE_SECONDS:
            return 0
        whole = math.ceil(seconds - 1e-9)
        if whole <= self.first:
            return self.first
        return self.first + math.ceil((whole - self.first) / self.then) * self.then


@dataclass(frozen=True)
class Rate:
    prefix: str  # E.164 digits, no "+": "55" Brazil, "5511" São Paulo, "" nothing
    direction: Direction
    per_minute: Decimal
    currency: str  # ISO 4217
    effective_from: datetime  # UTC
    trunk: str | None = None  # None: every trunk
    connection_fee: Decimal = Decimal(0)
    increments: Increments = Increments(60, 60)
    minimum: Decimal = Decimal(0)  # the least a priced leg costs
    decimals: int = 2
    rounding: Rounding = Rounding.HALF_UP
    description: str = ""

    def __post_init__(self) -> None:
        if not PREFIX_RE.fullmatch(self.prefix):
            raise ValueError(f"prefix {self.prefix!r}: 1 to 15 digits (E.164 without +)")
        if not CURRENCY_RE.fullmatch(self.currency):
            raise ValueError(f"currency {self.currency!r}: three capital letters (ISO 4217)")
        if self.trunk is not None and not TRUNK_RE.fullmatch(self.trunk):
            raise ValueError(f"trunk {self.trunk!r}: a lowercase name")
        for name in ("per_minute", "connection_fee", "minimum"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise ValueError(f"{name} {value!r}: a Decimal amount, 0 or more")
            _check_digits(name, value)
        if not 0 <= self.decimals <= MAX_DECIMALS:
            raise ValueError(f"decimals {self.decimals}: 0 to {MAX_DECIMALS}")
        if self.effective_from.tzinfo is None:
            raise ValueError("effective_from: a time with its zone (UTC)")

    def cost(self, billable_seconds: float) -> Decimal:
        """What a leg of ``billable_seconds`` costs at this rate."""
        billed = self.increments.billed(billable_seconds)
        if billed == 0:
            return Decimal(0).quantize(self._step)
        amount = self.connection_fee + self.per_minute * billed / 60
        return max(amount, self.minimum).quantize(self._step, rounding=_MODES[self.rounding])

    @property
    def _step(self) -> Decimal:
        return Decimal(1).scaleb(-self.decimals)

    @property
    def key(self) -> tuple[str, Direction, str | None]:
        """Rates with the same key replace each other at their effective dates."""
        return self.prefix, self.direction, self.trunk


def is_currency(code: str) -> bool:
    """Whether ``code`` is a current ISO 4217 currency (pycountry's copy of the standard,
    from Debian's iso-codes: 'BRL', 'USD', 'EUR'; not 'XYZ', not a withdrawn one)."""
    return pycountry.currencies.get(alpha_3=code) is not None


def _check_digits(name: str, value: Decimal) -> None:
    """An amount the store keeps exactly: at most ``MAX_DECIMALS`` decimal places (0.1234567
    would be rounded) and ``MAX_WHOLE_DIGITS`` digits before the point."""
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMALS:
        raise ValueError(f"{name} {value}: at most {MAX_DECIMALS} decimal places")
    if value >= Decimal(10) ** MAX_WHOLE_DIGITS:
        raise ValueError(f"{name} {value}: at most {MAX_WHOLE_DIGITS} digits before the point")


def amount_text(value: Decimal) -> str:
    """An amount as text for people and JSON: no exponent, trailing zeros dropped down to two
    decimal places (the store keeps six: 0.250000 is "0.25", 0.072000 "0.072", 1 "1.00")."""
    text = format(value, "f")
    if "." not in text:
        return text + ".00"
    whole, fraction = text.split(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"


def in_effect(layers: Iterable[Iterable[Rate]]) -> list[Rate]:
    """The rates of several tariff files, oldest file first, as one tariff: a later file's
    rate with the same prefix, direction, trunk and effective date replaces the earlier
    one (a correction); every other rate stays, so each still prices the calls of its own
    period until a later-dated rate for its prefix takes over."""
    latest: dict[tuple[str, Direction, str | None, datetime], Rate] = {}
    for rates in layers:
        for rate in rates:
            latest[(*rate.key, rate.effective_from)] = rate
    return list(latest.values())


@dataclass(frozen=True)
class Priced:
    rate: Rate | None  # None: no rate applies (the leg is reported unpriced, not free)
    billed_seconds: int
    cost: Decimal | None
    currency: str | None


class Tariff:
    """A set of rates, asked which applies to a leg."""

    def __init__(self, rates: Iterable[Rate]) -> None:
        self._by_prefix: dict[str, list[Rate]] = {}
        for rate in sorted(rates, key=lambda r: r.effective_from):
            self._by_prefix.setdefault(rate.prefix, []).append(rate)
        self._longest = max((len(p) for p in self._by_prefix), default=0)

    def rate_for(self, number: str, direction: Direction, at: datetime,
                 trunk: str | None = None) -> Rate | None:
        """The rate for ``number`` (E.164, with or without +) at ``at``."""
        digits = number.removeprefix("+")
        for length in range(min(len(digits), self._longest), 0, -1):
            found = self._in_force(digits[:length], direction, at, trunk)
            if found is not None:
                return found
        return None

    def _in_force(self, prefix: str, direction: Direction, at: datetime,
                  trunk: str | None) -> Rate | None:
        candidates = [r for r in self._by_prefix.get(prefix, ())
                      if r.direction is direction and r.effective_from <= at]
        for wanted in ((trunk,) if trunk is None else (trunk, None)):
            latest = [r for r in candidates if r.trunk == wanted]
            if latest:
                return latest[-1]  # sorted by effective_from: the newest in force
        return None

    def price(self, number: str, direction: Direction, answered_at: datetime,
              billable_seconds: float, trunk: str | None = None) -> Priced:
        rate = self.rate_for(number, direction, answered_at, trunk)
        if rate is None:
            return Priced(None, 0, None, None)
        return Priced(rate, rate.increments.billed(billable_seconds),
                      rate.cost(billable_seconds), rate.currency)


# --------------------------------------------------------------------------- tariff files


@dataclass(frozen=True)
class TariffProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class TariffError(ValueError):
    """A tariff file with problems: every one, each with its line. Nothing from it is used."""

    def __init__(self, problems: Sequence[TariffProblem]) -> None:
        self.problems = list(problems)
        shown = "\n".join(str(p) for p in self.problems[:50])
        more = len(self.problems) - 50
        super().__init__(shown + (f"\n... and {more} more" if more > 0 else ""))


def parse_tariff(lines: Iterable[str]) -> list[Rate]:
    """The rates of a CSV tariff file (a header row naming ``COLUMNS``; ``REQUIRED`` ones
    must be there). ``TariffError`` lists every bad line: a file is taken whole or not at
    all."""
    reader = csv.reader(lines)
    problems: list[TariffProblem] = []
    try:
        header = [cell.strip().lower() for cell in next(reader)]
    except StopIteration:
        raise TariffError([TariffProblem(1, "the file is empty: a header row is needed")]
                          ) from None
    unknown = [c for c in header if c not in COLUMNS]
    missing = [c for c in REQUIRED if c not in header]
    if unknown or missing or len(set(header)) != len(header):
        message = "; ".join(filter(None, [
            f"unknown column(s) {', '.join(map(repr, unknown))}" if unknown else "",
            f"missing column(s) {', '.join(missing)}" if missing else "",
            "a column is named twice" if len(set(header)) != len(header) else ""]))
        raise TariffError([TariffProblem(1, f"{message} (columns: {', '.join(COLUMNS)})")])
    rates: list[Rate] = []
    seen: dict[tuple[str, Direction, str | None, datetime], int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            problems.append(TariffProblem(line, f"{len(cells)} cells, the header has "
                                                f"{len(header)}"))
            continue
        try:
            rate = _rate(dict(zip(header, (c.strip() for c in cells), strict=True)))
        except ValueError as exc:
            problems.append(TariffProblem(line, str(exc)))
            continue
        key = (*rate.key, rate.effective_from)
        if key in seen:
            problems.append(TariffProblem(line, f"the same prefix, direction, trunk and date "
                                                f"as line {seen[key]}"))
            continue
        seen[key] = line
        rates.append(rate)
    if problems:
        raise TariffError(problems)
    return rates


def _rate(row: dict[str, str]) -> Rate:
    """The rate of one line; ValueError naming every bad cell of it (so one pass over the
    file shows all there is to fix)."""
    problems: list[str] = []

    def given(name: str) -> str | None:
        return row.get(name) or None

    def checked(parse: Callable[[], _T]) -> _T | None:
        try:
            return parse()
        except ValueError as exc:
            problems.append(str(exc))
            return None

    prefix = row["prefix"].removeprefix("+")
    if not PREFIX_RE.fullmatch(prefix):
        problems.append(f"prefix {row['prefix']!r}: 1 to 15 digits (E.164 without +)")
    direction = checked(lambda: _choice("direction", row["direction"], Direction))
    currency = row["currency"]
    if not CURRENCY_RE.fullmatch(currency):
        problems.append(f"currency {currency!r}: three capital letters (ISO 4217)")
    # Checked on import, not by Rate: a stored rate stays readable if its currency is later
    # withdrawn from the standard (HRK was, in 2023), and keeps pricing its own period.
    elif not is_currency(currency):
        problems.append(f"currency {currency!r}: not an ISO 4217 currency code")
    trunk = given("trunk")
    if trunk is not None and not TRUNK_RE.fullmatch(trunk):
        problems.append(f"trunk {trunk!r}: a lowercase name")
    rounding = checked(lambda: _choice("rounding", given("rounding") or Rounding.HALF_UP.value,
                                       Rounding))
    decimals_text = given("decimals") or "2"
    if not decimals_text.isdigit() or int(decimals_text) > MAX_DECIMALS:
        problems.append(f"decimals {decimals_text!r}: a whole number 0 to {MAX_DECIMALS}")
    per_minute = checked(lambda: _amount("per_minute", row["per_minute"]))
    effective_from = checked(lambda: _when(row["effective_from"]))
    connection_fee = checked(lambda: _amount("connection_fee", given("connection_fee") or "0"))
    increments = checked(lambda: Increments.parse(given("increments") or "60/60"))
    minimum = checked(lambda: _amount("minimum", given("minimum") or "0"))
    if problems:
        raise ValueError("; ".join(problems))
    assert direction is not None and rounding is not None and per_minute is not None
    assert effective_from is not None and connection_fee is not None
    assert increments is not None and minimum is not None
    return Rate(
        prefix=prefix, direction=direction, per_minute=per_minute, currency=currency,
        effective_from=effective_from, trunk=trunk, connection_fee=connection_fee,
        increments=increments, minimum=minimum, decimals=int(decimals_text),
        rounding=rounding, description=row.get("description", ""))


_T = TypeVar("_T")
_Choice = TypeVar("_Choice", bound=StrEnum)


def _choice(name: str, text: str, choices: type[_Choice]) -> _Choice:
    try:
        return choices(text.lower())
    except ValueError:
        raise ValueError(f"{name} {text!r}: one of "
                         f"{', '.join(c.value for c in choices)}") from None


def _amount(name: str, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{name} {text!r}: an amount such as 0.12") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} {text!r}: an amount, 0 or more")
    return value


def _when(text: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 time with its offset."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"effective_from {text!r}: a date (2027-01-01) or a time with its "
                         "offset (2027-01-01T00:00:00-03:00)") from None
    if len(text) == 10:  # a plain date: from its midnight, UTC
        return when.replace(tzinfo=UTC)
    if when.tzinfo is None:
        raise ValueError(f"effective_from {text!r}: give the offset (Z, -03:00, ...)")
    return when.astimezone(UTC)
