"""Do-not-call and consent files: CSV rows in, one checked row or one reject out.

The file is read like a call list's CSV (list_files.csv_lines: UTF-8, UTF-16 with its mark,
or a named single-byte encoding, strictly decoded; core.call_lists.csv_rows: physical line
numbers, capped lines). Each row is checked as the API checks one entry
(compliance/schemas.py): the number strict E.164 (or, with a ``region``, a number written
the national way, put in E.164 first), the text fields 1 to their stored length and no NUL,
a consent's kind and time. A bad row is a reject with its line and why; a number twice in
the file is a reject naming the first line. Whole-file faults (no header, a missing column,
broken quoting, bad encoding) raise ``CallListError`` naming the line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO

import phonenumbers

from callcenter.core.call_lists import CallListError, csv_rows
from callcenter.core.consent import ConsentKind
from callcenter.core.identifiers import E164_RE
from callcenter.features.campaigns.list_files import csv_lines
from callcenter.features.compliance.store import MAX_PROOF_CHARS, MAX_REASON_CHARS


@dataclass(frozen=True)
class DoNotCallIn:
    line: int
    number: str
    reason: str


@dataclass(frozen=True)
class ConsentIn:
    line: int
    number: str
    kind: ConsentKind
    at: float | None  # None: now
    proof: str


@dataclass(frozen=True)
class Reject:
    line: int
    reason: str


@dataclass
class RowCounter:
    """What the reader saw, for progress and the import's counts."""

    rows_read: int = 0
    blank_rows: int = 0
    rejected: int = 0
    first_line_of: dict[str, int] = field(default_factory=dict)


class _Rows:
    """The header's columns found by name (any case, spaces ignored), then each row's
    cells by role."""

    def __init__(self, source: IO[bytes], columns: dict[str, str | None],
                 encoding: str | None, counter: RowCounter) -> None:
        self._rows = csv_rows(csv_lines(source, encoding))
        self._counter = counter
        try:
            line, header = next(self._rows)
        except StopIteration:
            raise CallListError("the file is empty") from None
        keys = {cell.strip().casefold(): index for index, cell in enumerate(header)}
        self.index: dict[str, int | None] = {}
        for role, column in columns.items():
            if column is None:
                self.index[role] = None
                continue
            found = keys.get(column.strip().casefold())
            if found is None:
                raise CallListError(
                    f"line {line}: the header has no column {column!r} (the {role} column); "
                    f"it has: {', '.join(repr(c) for c in header)}")
            self.index[role] = found

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        for line, cells in self._rows:
            if not any(cell.strip() for cell in cells):
                self._counter.blank_rows += 1
                continue
            self._counter.rows_read += 1
            yield line, {role: cells[i].strip() if i is not None and i < len(cells) else ""
                         for role, i in self.index.items()}


def _number(raw: str, region: str | None) -> str:
    """The number in E.164, or ValueError saying why not."""
    if E164_RE.fullmatch(raw):
        return raw
    if region is not None and raw:
        try:
            parsed = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            parsed = None
        if parsed is not None:
            e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            if E164_RE.fullmatch(e164):
                return e164
    shown = repr(raw[:40]) if raw else "empty"
    raise ValueError(f"number: {shown} is not an E.164 number (+, then 8-15 digits)"
                     + ("" if region else "; name the region of numbers written without +"))


def _text(role: str, value: str, most: int) -> str:
    if not value:
        raise ValueError(f"{role}: is empty")
    if len(value) > most:
        raise ValueError(f"{role}: {len(value)} characters, over the limit of {most}")
    if "\x00" in value:
        raise ValueError(f"{role}: contains a NUL character")
    return value


def _once(counter: RowCounter, line: int, number: str) -> None:
    first = counter.first_line_of.setdefault(number, line)
    if first != line:
        raise ValueError(f"{number} is already on line {first}")


def do_not_call_rows(source: IO[bytes], *, number: str, reason_column: str | None,
                     reason: str, region: str | None, encoding: str | None,
                     counter: RowCounter) -> Iterator[DoNotCallIn | Reject]:
    """Each data row as a number to list (with its reason: the row's, else ``reason``)."""
    rows = _Rows(source, {"number": number, "reason": reason_column}, encoding, counter)
    for line, cells in rows:
        try:
            e164 = _number(cells["number"], region)
            text = _text("reason", cells["reason"] or reason, MAX_REASON_CHARS)
            _once(counter, line, e164)
        except ValueError as exc:
            counter.rejected += 1
            yield Reject(line, str(exc))
            continue
        yield DoNotCallIn(line, e164, text)


def consent_rows(source: IO[bytes], *, number: str, proof: str, kind: str | None,
                 at: str | None, region: str | None, encoding: str | None, now: float,
                 counter: RowCounter) -> Iterator[ConsentIn | Reject]:
    """Each data row as a ledger entry: granted unless its kind says revoked, dated by its
    time column (never in the future) or now."""
    rows = _Rows(source, {"number": number, "proof": proof, "kind": kind, "at": at},
                 encoding, counter)
    for line, cells in rows:
        try:
            e164 = _number(cells["number"], region)
            entry = ConsentIn(line, e164, _kind(cells["kind"]), _time(cells["at"], now),
                              _text("proof", cells["proof"], MAX_PROOF_CHARS))
        except ValueError as exc:
            counter.rejected += 1
            yield Reject(line, str(exc))
            continue
        yield entry


def _kind(value: str) -> ConsentKind:
    if not value:
        return ConsentKind.GRANTED
    try:
        return ConsentKind(value.casefold())
    except ValueError:
        raise ValueError(f"kind: {value[:40]!r} is not one of "
                         f"{', '.join(k.value for k in ConsentKind)}") from None


def _time(value: str, now: float) -> float | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"at: {value[:40]!r} is not an ISO 8601 time (e.g. "
                         "2026-11-28T21:00:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when.timestamp() > now:
        raise ValueError(f"at: {value[:40]!r} is in the future")
    return when.timestamp()
