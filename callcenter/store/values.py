"""Checked column values: every store turns its dataclasses' fields into column values
through these, so a bad value is refused with what and where, before the database sees it;
and the few statement helpers the stores share."""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.core.clock import to_datetime

MAX_PAGE = 500
MAX_ROW_ID = 2**63 - 1  # BIGINT's top; SQLite's INTEGER has the same range


def dialect_insert(session: AsyncSession) -> Callable[..., Any]:
    """The dialect's INSERT, which knows ON CONFLICT DO UPDATE (an atomic upsert)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"call records: database dialect {dialect!r} is not supported")


def check_page(limit: object, offset: object) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit: {limit!r} is not a whole number from 1 to {MAX_PAGE}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset: {offset!r} is not a whole number of 0 or more")


def time_range(
    column: Any, since: float | None, until: float | None
) -> builtins.list[ColumnElement[bool]]:
    """Conditions keeping ``column`` in the half-open range [since, until)."""
    start = _time_filter("since", since)
    end = _time_filter("until", until)
    if start is not None and end is not None and start > end:
        raise ValueError(f"since ({since}) is after until ({until})")
    conditions: builtins.list[ColumnElement[bool]] = []
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return conditions


def _time_filter(name: str, value: float | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: {value!r} is not a time in POSIX seconds")
    try:
        return to_datetime(value)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{name}: {value!r} is not a representable POSIX time") from None


def text_value(where: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected text, got {value!r}")
    if "\x00" in value:
        raise ValueError(f"{where}: contains a NUL character, which cannot be stored")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{where}: {value!r} is not valid Unicode text") from None
    return value


def required_text(where: str, value: object) -> str:
    text = text_value(where, value)
    if text is None or not text.strip():
        raise ValueError(f"{where}: must be non-empty text, got {value!r}")
    return text


def number_value(where: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def time_value(where: str, value: object) -> datetime | None:
    seconds = number_value(where, value)
    try:
        return to_datetime(seconds)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{where}: {value!r} is not a representable POSIX time") from None


def required_time(where: str, value: object) -> datetime:
    when = time_value(where, value)
    if when is None:
        raise ValueError(f"{where}: is required")
    return when


def enum_value(where: str, kind: type[StrEnum], value: object) -> Any:
    if value is None:
        return None
    try:
        return kind(value).value
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        shown = repr(value[:40]) if isinstance(value, str) else repr(value)
        raise ValueError(f"{where}: {shown} is not one of {allowed}") from None


def printable(text: str) -> str:
    """``text`` with NUL and other control characters (but not the tab) as escapes."""
    return "".join(c if c.isprintable() or c == "\t" else repr(c)[1:-1] for c in text)
