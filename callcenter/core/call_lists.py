"""Reading an uploaded call list: rows in, one typed outcome per row out. Pure, streaming.

A campaign manager uploads a CSV or XLSX file and says which column holds the phone number,
which the name and which (optionally) the callee's time zone; every other column is an extra
field, kept in the file's order and shown to the agent. This module never opens a file: the
file formats' readers (``features/campaigns/list_files.py``) turn bytes into numbered rows of
text, and ``CallListParser`` turns each row into exactly one outcome:

- ``AcceptedRow``: the number in E.164, the name, the callee's time zone(s), the extra fields;
- ``RejectedRow``: the row's line number and why (a bad number, an unknown time zone, ...);
- ``DuplicateRow``: a number already accepted on an earlier line (the first row wins).

So the outcomes account for every data row: accepted + rejected + duplicates == rows read
(``ListSummary.accounted``). Whole-file faults (no header, a missing mapped column, duplicate
column names, an over-long line, no rows at all) raise ``CallListError`` naming what and
where: the upload is refused as a whole, never half-read.

Memory: rows stream through; the parser keeps only the numbers it has accepted (to merge
duplicates), as a dict from the number's digits (an int) to its first line: about 110 bytes
per distinct number (bench/call_list_upload.py: a million rows, +104 MiB peak), whatever the
width of the rows; tests/unit/test_list_files.py bounds it under tracemalloc.

Time zones come from ``phonenumbers`` metadata and the system's IANA database (``zoneinfo``):
reference data, read once, not input.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType
from phonenumbers import timezone as number_zones

from callcenter.core.hours import known_time_zones
from callcenter.core.identifiers import E164_RE

# Caps on hostile input. A line longer than MAX_LINE_CHARS (or a quoted record spanning
# lines longer than that in total) refuses the whole file: a call list has no such line, and
# an unclosed quote would otherwise swallow the rest of the file into one field.
MAX_LINE_CHARS = 65_536
MAX_FIELD_CHARS = 4_096  # one cell; a longer cell rejects its row
MAX_COLUMNS = 256
MAX_PHONE_CHARS = 64  # the phone cell; phonenumbers itself gives up at 250
PROGRESS_EVERY = 1_000  # rows between two progress reports

# A cell a spreadsheet would run as a formula when the list is exported and opened again
# (OWASP "CSV injection"): kept as text here, flagged so the export escapes it.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# Number types the dialer must not call: the callee (or we) would pay a premium rate.
UNDIALABLE_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
}
_POSSIBLE_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "its country code does not exist",
    phonenumbers.ValidationResult.TOO_SHORT: "too short",
    phonenumbers.ValidationResult.INVALID_LENGTH: "a length no number there has",
    phonenumbers.ValidationResult.TOO_LONG: "too long",
}
_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "its country code does not exist",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}


class CallListError(ValueError):
    """The whole file is refused: the message names what is wrong and where."""


@dataclass(frozen=True)
class ColumnMapping:
    """Which header names hold the phone number, the name and a time zone override.

    Names match the header case-insensitively, ignoring surrounding spaces.
    """

    phone: str
    name: str | None = None
    time_zone: str | None = None

    def __post_init__(self) -> None:
        named = [("phone", self.phone), ("name", self.name), ("time zone", self.time_zone)]
        seen: dict[str, str] = {}
        for role, column in named:
            if column is None:
                continue
            key = _column_key(column)
            if not key:
                raise ValueError(f"column mapping: the {role} column has no name")
            if key in seen:
                raise ValueError(
                    f"column mapping: column {column!r} is mapped twice "
                    f"({seen[key]} and {role})"
                )
            seen[key] = role


class TimeZoneSource(Enum):
    OVERRIDE = "override"  # the list's time zone column
    NUMBER = "number"  # derived from the number (phonenumbers' prefix table)


@dataclass(frozen=True)
class ExtraField:
    """One unmapped column's cell, as text, in the file's column order."""

    column: str
    value: str
    # Starts like a spreadsheet formula: stored as is, escaped when exported.
    formula_like: bool


@dataclass(frozen=True)
class AcceptedRow:
    line: int  # the CSV file's physical line where the row starts, or the XLSX sheet row
    number: str  # E.164, matches identifiers.E164_RE
    name: str  # "" when unmapped or empty
    name_formula_like: bool
    # The callee's IANA zone(s): one from an override; one or more from the number. Several
    # means the number does not tell (a mobile, a toll-free): the calling-hours rule must
    # hold in all of them (the strictest wins).
    time_zones: tuple[str, ...]
    time_zone_source: TimeZoneSource
    extra: tuple[ExtraField, ...]

    @property
    def time_zone_ambiguous(self) -> bool:
        return len(self.time_zones) > 1


@dataclass(frozen=True)
class RejectedRow:
    line: int
    reason: str  # says which column and why, in the campaign manager's words


@dataclass(frozen=True)
class DuplicateRow:
    line: int
    number: str  # E.164
    first_line: int  # the accepted row it duplicates


RowOutcome = AcceptedRow | RejectedRow | DuplicateRow


@dataclass(frozen=True)
class ListProgress:
    rows_done: int
    rows_total: int | None  # None when the reader cannot tell beforehand


@dataclass(frozen=True)
class ListSummary:
    rows_read: int  # data rows: every non-blank row after the header
    accepted: int
    rejected: int
    duplicates: int
    blank_rows: int  # rows with every cell empty: skipped, counted here, not data rows
    ambiguous_time_zones: int  # accepted rows whose number spans several zones

    @property
    def accounted(self) -> bool:
        return self.accepted + self.rejected + self.duplicates == self.rows_read


@functools.cache
def _zone_names_by_key() -> dict[str, str]:
    """Each known zone under its case-folded name: "america/sao_paulo" is accepted too."""
    return {zone.casefold(): zone for zone in known_time_zones()}


def needs_formula_escape(value: str) -> bool:
    return value.startswith(FORMULA_STARTS)


def _column_key(name: str) -> str:
    return name.strip().casefold()


@dataclass(frozen=True)
class _Layout:
    """The header, resolved: where each mapped column is and the extra columns' order."""

    width: int
    phone: int
    name: int | None
    time_zone: int | None
    extra: tuple[tuple[int, str], ...]  # (index, header name)
    column_names: tuple[str, ...]


class CallListParser:
    """Turns a header and then data rows (lists of cells, each with its line) into outcomes.

    Feed the header once (``header``), then each row (``row``), then call ``finish``.
    ``parse`` does all three over an iterable. Keeps no row: only the accepted numbers.
    """

    def __init__(
        self,
        mapping: ColumnMapping,
        default_region: str,
        *,
        rows_total: int | None = None,
        progress: Callable[[ListProgress], None] | None = None,
        progress_every: int = PROGRESS_EVERY,
    ) -> None:
        region = default_region.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(
                f"default region {default_region!r} is not a two-letter country code "
                "phonenumbers knows (e.g. BR, US, GB)"
            )
        self._mapping = mapping
        self._region = region
        self._rows_total = rows_total
        self._progress = progress
        self._progress_every = max(1, progress_every)
        self._layout: _Layout | None = None
        self._header_line = 0
        self._first_line_of: dict[int, int] = {}  # the number's digits -> its first line
        self._zones_cache: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._rows_read = 0
        self._accepted = 0
        self._rejected = 0
        self._duplicates = 0
        self._blank = 0
        self._ambiguous = 0

    # ------------------------------------------------------------------------- the header

    def header(self, cells: Sequence[str | None], line: int) -> None:
        if self._layout is not None:
            raise CallListError(f"line {line}: a second header")
        names = [_text(cell).strip() for cell in cells]
        while names and not names[-1]:
            names.pop()  # spreadsheets often carry empty trailing columns
        if not names:
            raise CallListError(f"line {line}: the header is empty")
        if len(names) > MAX_COLUMNS:
            raise CallListError(
                f"line {line}: the header has {len(names)} columns, over the limit of "
                f"{MAX_COLUMNS}"
            )
        by_key: dict[str, int] = {}
        for index, name in enumerate(names):
            where = f"line {line}, column {index + 1}"
            if not name:
                raise CallListError(f"{where}: the header cell is empty; every column "
                                    "needs a name")
            if "\x00" in name or len(name) > MAX_FIELD_CHARS:
                raise CallListError(f"{where}: the header cell is not a column name")
            key = _column_key(name)
            if key in by_key:
                raise CallListError(
                    f"{where}: column {name!r} appears twice in the header (also column "
                    f"{by_key[key] + 1})"
                )
            by_key[key] = index

        def find(role: str, column: str | None) -> int | None:
            if column is None:
                return None
            index = by_key.get(_column_key(column))
            if index is None:
                raise CallListError(
                    f"line {line}: the header has no column {column!r} (the {role} column "
                    f"of the mapping); it has: {', '.join(repr(n) for n in names)}"
                )
            return index

        phone = find("phone", self._mapping.phone)
        assert phone is not None
        name = find("name", self._mapping.name)
        zone = find("time zone", self._mapping.time_zone)
        mapped = {phone, name, zone}
        self._layout = _Layout(
            width=len(names),
            phone=phone,
            name=name,
            time_zone=zone,
            extra=tuple((i, n) for i, n in enumerate(names) if i not in mapped),
            column_names=tuple(names),
        )
        self._header_line = line

    # -------------------------------------------------------------------------- the rows

    def row(self, cells: Sequence[str | None], line: int) -> RowOutcome | None:
        """The row's outcome; None for a blank row (counted in ``blank_rows``)."""
        layout = self._layout
        if layout is None:
            raise CallListError(f"line {line}: a row before the header")
        texts = [_text(cell) for cell in cells]
        if not any(t.strip() for t in texts):
            self._blank += 1
            return None
        self._rows_read += 1
        outcome = self._judge(layout, texts, line)
        if isinstance(outcome, AcceptedRow):
            self._accepted += 1
            if outcome.time_zone_ambiguous:
                self._ambiguous += 1
        elif isinstance(outcome, RejectedRow):
            self._rejected += 1
        else:
            self._duplicates += 1
        if self._progress is not None and self._rows_read % self._progress_every == 0:
            self._progress(ListProgress(self._rows_read, self._rows_total))
        return outcome

    def _judge(self, layout: _Layout, texts: list[str], line: int) -> RowOutcome:
        names = layout.column_names
        if len(texts) > layout.width:
            surplus = [i + 1 for i in range(layout.width, len(texts)) if texts[i].strip()]
            if surplus:
                return RejectedRow(
                    line,
                    f"{len(texts)} cells but the header names {layout.width} columns "
                    f"(a value in column {surplus[0]}, which has no name)",
                )
        texts.extend([""] * (layout.width - len(texts)))  # short rows: missing cells empty
        for index in range(layout.width):
            text = texts[index]
            if "\x00" in text:
                return RejectedRow(line, f"column {names[index]!r} contains a NUL character")
            if len(text) > MAX_FIELD_CHARS:
                return RejectedRow(
                    line,
                    f"column {names[index]!r} has {len(text)} characters, over the limit "
                    f"of {MAX_FIELD_CHARS}",
                )

        parsed = self._number(texts[layout.phone], names[layout.phone])
        if isinstance(parsed, str):
            return RejectedRow(line, parsed)
        number, e164 = parsed

        zones: tuple[str, ...]
        source: TimeZoneSource
        override = texts[layout.time_zone].strip() if layout.time_zone is not None else ""
        if override:
            zone = _zone_names_by_key().get(override.casefold())
            if zone is None:
                assert layout.time_zone is not None
                return RejectedRow(
                    line,
                    f"column {names[layout.time_zone]!r}: {override[:60]!r} is not a known "
                    "IANA time zone (e.g. America/Sao_Paulo)",
                )
            zones, source = (zone,), TimeZoneSource.OVERRIDE
        else:
            zones, source = self._zones_of(number), TimeZoneSource.NUMBER
            if not zones:
                return RejectedRow(
                    line,
                    f"no time zone is known for {e164}; give one in the time zone "
                    "column",
                )

        digits = int(e164[1:])  # an int costs less memory than the str
        first_line = self._first_line_of.get(digits)
        if first_line is not None:
            return DuplicateRow(line, e164, first_line)
        self._first_line_of[digits] = line

        name = texts[layout.name].strip() if layout.name is not None else ""
        return AcceptedRow(
            line=line,
            number=e164,
            name=name,
            name_formula_like=needs_formula_escape(name),
            time_zones=zones,
            time_zone_source=source,
            extra=tuple(
                ExtraField(column, texts[index], needs_formula_escape(texts[index]))
                for index, column in layout.extra
            ),
        )

    def _number(self, raw: str, column: str) -> tuple[phonenumbers.PhoneNumber, str] | str:
        """The parsed number and its E.164 form, or the reason it is rejected."""
        text = raw.strip()
        where = f"column {column!r}"
        if not text:
            return f"{where} is empty"
        shown = text[:40]
        if len(text) > MAX_PHONE_CHARS:
            return f"{where}: {shown!r}... is too long for a phone number"
        try:
            number = phonenumbers.parse(text, self._region)
        except NumberParseException as error:
            reason = _PARSE_REASONS.get(error.error_type, "not a phone number")
            return f"{where}: {shown!r} is {reason}"
        if number.extension:
            return f"{where}: {shown!r} has an extension, which the dialer cannot dial"
        possible = phonenumbers.is_possible_number_with_reason(number)
        if possible not in (phonenumbers.ValidationResult.IS_POSSIBLE,
                            phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
            reason = _POSSIBLE_REASONS.get(possible, "not a possible number")
            return f"{where}: {shown!r} is not a possible number ({reason})"
        if possible == phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
            return (f"{where}: {shown!r} is a local number without its area code")
        if not phonenumbers.is_valid_number(number):
            region = phonenumbers.region_code_for_number(number) or self._region
            return f"{where}: {shown!r} is not a valid number in {region}"
        undialable = UNDIALABLE_TYPES.get(phonenumbers.number_type(number))
        if undialable is not None:
            return f"{where}: {shown!r} is {undialable}, which campaigns do not call"
        e164 = _e164(number)
        if E164_RE.fullmatch(e164) is None:
            return f"{where}: {shown!r} ({e164}) is too short to be dialled as E.164"
        return number, e164

    def _zones_of(self, number: phonenumbers.PhoneNumber) -> tuple[str, ...]:
        """The number's zones that zoneinfo knows; () when unknown. Shared tuples, cached."""
        found = tuple(number_zones.time_zones_for_number(number))
        cached = self._zones_cache.get(found)
        if cached is None:
            known = known_time_zones()
            cached = tuple(zone for zone in found if zone in known)
            self._zones_cache[found] = cached
        return cached

    # -------------------------------------------------------------------------- the end

    def finish(self) -> ListSummary:
        """The summary; refuses a file with no header or no data row."""
        if self._layout is None:
            raise CallListError("the file is empty: no header row")
        if self._rows_read == 0:
            raise CallListError(f"the file has a header (line {self._header_line}) but no rows")
        if self._progress is not None and self._rows_read % self._progress_every != 0:
            self._progress(ListProgress(self._rows_read, self._rows_total))
        summary = self.summary()
        assert summary.accounted
        return summary

    def summary(self) -> ListSummary:
        return ListSummary(
            rows_read=self._rows_read,
            accepted=self._accepted,
            rejected=self._rejected,
            duplicates=self._duplicates,
            blank_rows=self._blank,
            ambiguous_time_zones=self._ambiguous,
        )

    def parse(self, rows: Iterable[tuple[int, Sequence[str | None]]]) -> Iterator[RowOutcome]:
        """Every data row's outcome, header first; ``finish`` runs when the rows end.

        The first non-blank row is the header. Blank rows give no outcome (counted).
        """
        for line, cells in rows:
            if self._layout is None:
                if any(_text(cell).strip() for cell in cells):
                    self.header(cells, line)
                continue
            outcome = self.row(cells, line)
            if outcome is not None:
                yield outcome
        self.finish()


def _text(cell: str | None) -> str:
    return "" if cell is None else cell


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


# --------------------------------------------------------------------------- CSV text

def csv_rows(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """CSV records from text lines (each with its line ending), with their first line.

    Line numbers are the file's physical lines (1-based), so a record whose quoted field
    spans lines is numbered by the line it starts on. A leading byte-order mark is dropped.
    A line, or a quoted record, longer than MAX_LINE_CHARS, or broken quoting, refuses the
    file (``CallListError`` with the line).
    """
    state = _LineCounter(lines)
    reader = csv.reader(state, dialect="excel", strict=True)
    while True:
        start = state.lines_read + 1
        state.record_chars = 0
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise CallListError(f"line {start}: not valid CSV ({error})") from None
        yield start, cells


class _LineCounter:
    """Feeds csv.reader, counting physical lines and enforcing the length caps."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.lines_read = 0
        self.record_chars = 0

    def __iter__(self) -> _LineCounter:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.lines_read += 1
        if self.lines_read == 1 and line.startswith("\ufeff"):
            line = line[1:]
        if len(line) > MAX_LINE_CHARS:
            raise CallListError(
                f"line {self.lines_read}: longer than {MAX_LINE_CHARS} characters; this is "
                "not a call list"
            )
        self.record_chars += len(line)
        if self.record_chars > MAX_LINE_CHARS:
            raise CallListError(
                f"line {self.lines_read}: a quoted field runs over {MAX_LINE_CHARS} "
                "characters (an unclosed quote?)"
            )
        return line
