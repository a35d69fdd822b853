"""The ``tariffs`` (one imported tariff file each), their ``tariff_rates``, and
``call_costs`` (one priced trunk leg of a call each).

Money is ``Money``: exact on every backend (PostgreSQL NUMERIC; SQLite, which has no
decimal type and would keep a float, whole millionths in an integer), so sums are exact.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from callcenter.core.rating import MAX_DECIMALS
from callcenter.store.models import Base, RowId, UtcDateTime

MONEY_DIGITS = 18  # 12 before the point, MAX_DECIMALS after


class Money(TypeDecorator[Decimal]):
    """A Decimal amount with up to MAX_DECIMALS places, stored exactly."""

    impl = Numeric(MONEY_DIGITS, MAX_DECIMALS)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(MONEY_DIGITS, MAX_DECIMALS, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            scaled = Decimal(value).scaleb(MAX_DECIMALS)
            if scaled != scaled.to_integral_value():
                raise ValueError(f"amount {value}: more than {MAX_DECIMALS} decimal places")
            return int(scaled)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-MAX_DECIMALS)
        return Decimal(value)


# The column as migrations write it (the same types Money picks per backend).
MONEY_COLUMN_TYPE = Numeric(MONEY_DIGITS, MAX_DECIMALS).with_variant(BigInteger(), "sqlite")


class TariffRow(Base):
    """One imported tariff file: taken whole, never changed afterwards."""

    __tablename__ = "tariffs"

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    name: Mapped[str] = mapped_column(String)  # the file's name, or the one the admin gave
    currencies: Mapped[str] = mapped_column(String)  # its rates' currencies: "BRL" or "BRL USD"
    rate_count: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String)  # of the file as sent
    imported_by: Mapped[str] = mapped_column(String)
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TariffRateRow(Base):
    """One line of an imported tariff file (core.rating.Rate)."""

    __tablename__ = "tariff_rates"
    __table_args__ = (Index("ix_tariff_rates_prefix", "prefix"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    tariff_id: Mapped[int] = mapped_column(
        RowId, ForeignKey("tariffs.id", ondelete="CASCADE"), index=True)
    line: Mapped[int] = mapped_column(Integer)  # its line in the file
    prefix: Mapped[str] = mapped_column(String)
    direction: Mapped[str] = mapped_column(String)  # a records.Direction value
    trunk: Mapped[str | None] = mapped_column(String)  # None: every trunk
    per_minute: Mapped[Decimal] = mapped_column(Money)
    connection_fee: Mapped[Decimal] = mapped_column(Money)
    increments: Mapped[str] = mapped_column(String)  # "first/then"
    minimum: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String)
    decimals: Mapped[int] = mapped_column(Integer)
    rounding: Mapped[str] = mapped_column(String)  # a rating.Rounding value
    effective_from: Mapped[datetime] = mapped_column(UtcDateTime)
    description: Mapped[str] = mapped_column(String)


class CallCostRow(Base):
    """One trunk leg of a closed call, priced (or unpriced: no rate applied)."""

    __tablename__ = "call_costs"
    __table_args__ = (Index("ix_call_costs_answered_at", "answered_at"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    call_pk: Mapped[int] = mapped_column(
        RowId, ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    leg: Mapped[int] = mapped_column(Integer)  # its place among the call's legs, from 0
    kind: Mapped[str] = mapped_column(String)  # a trunk_legs.LegKind value
    direction: Mapped[str] = mapped_column(String)
    trunk: Mapped[str | None] = mapped_column(String)
    number: Mapped[str | None] = mapped_column(String)
    answered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    billable_seconds: Mapped[float] = mapped_column(Double)
    billed_seconds: Mapped[int] = mapped_column(Integer)
    cost: Mapped[Decimal | None] = mapped_column(Money)  # None: unpriced
    currency: Mapped[str | None] = mapped_column(String)
    rate_id: Mapped[int | None] = mapped_column(
        RowId, ForeignKey("tariff_rates.id"), index=True)
    unpriced: Mapped[str | None] = mapped_column(String)  # why no rate applied; None: priced
