"""A report as data: typed columns and rows of cells, whatever it will be rendered as.

Every report (queues, IVR, surveys, agents, campaigns) builds one ``ReportTable``; the same
table becomes JSON rows, a CSV, an XLSX sheet or a PNG chart (features/reports/render.py),
so a figure is computed once and shown the same way everywhere. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

Cell = str | int | float | None  # None: undefined (a rate with nothing to divide by)


class CellKind(StrEnum):
    TEXT = "text"
    TIME = "time"  # ISO 8601 text of an instant (UTC), e.g. an interval's start
    COUNT = "count"  # a whole number
    SECONDS = "seconds"  # a duration in seconds (float)
    RATIO = "ratio"  # a fraction 0..1 (shown as a percentage in sheets)
    NUMBER = "number"  # anything else numeric (an average score, NPS -100..100)


@dataclass(frozen=True)
class Column:
    key: str  # the JSON field and CSV header: lowercase, underscores
    title: str  # what a person reads in a sheet or a chart
    kind: CellKind
    description: str = ""


@dataclass(frozen=True)
class ReportTable:
    """``rows`` each hold one cell per column, in the columns' order."""

    name: str  # file names: <name>.csv, <name>.xlsx
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    notes: tuple[str, ...] = field(default=())  # the definitions, under the sheet

    def __post_init__(self) -> None:
        for index, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"{self.name} row {index}: {len(row)} cells for "
                                 f"{len(self.columns)} columns")

    def column(self, key: str) -> int:
        for index, column in enumerate(self.columns):
            if column.key == key:
                return index
        raise KeyError(key)

    def records(self) -> list[dict[str, Cell]]:
        """The rows as JSON objects keyed by column."""
        keys = [column.key for column in self.columns]
        return [dict(zip(keys, row, strict=True)) for row in self.rows]


def table_from_records(name: str, title: str, columns: Sequence[Column],
                       records: Sequence[Mapping[str, Cell]],
                       notes: Sequence[str] = ()) -> ReportTable:
    """A table from mappings holding (at least) every column's key."""
    return ReportTable(name, title, tuple(columns),
                       tuple(tuple(record[column.key] for column in columns)
                             for record in records), tuple(notes))


def ratio(part: float, whole: float) -> float | None:
    """part ÷ whole, None (undefined, not zero) when whole is 0."""
    return part / whole if whole else None
