"""A ``ReportTable`` (core/report_table.py) as a CSV, an XLSX workbook or a PNG chart.

Generic: every report (queues, IVR, surveys, agents, campaigns) renders through these, so a
figure looks the same in every download. Text cells that start like a spreadsheet formula
(``=``, ``+``, ``-``, ``@``, tab, CR: core/call_lists.py's ``needs_formula_escape``) get a
leading apostrophe in CSV and XLSX, as the campaign export does: names come from admins and
callers, and a sheet must never run them. Numbers stay numbers (ratios as fractions, shown
as percentages in XLSX). matplotlib and openpyxl are imported only when used.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from aiohttp import web

from callcenter.core.call_lists import needs_formula_escape
from callcenter.core.report_table import Cell, CellKind, ReportTable

BOM = "\ufeff"  # Excel reads the CSV as UTF-8 only with it
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PNG_TYPE = "image/png"


def _escaped(cell: Cell, kind: CellKind) -> Cell:
    if isinstance(cell, str) and kind is CellKind.TEXT and needs_formula_escape(cell):
        return f"'{cell}"
    return cell


def to_csv(table: ReportTable) -> bytes:
    """UTF-8 with a byte-order mark, CRLF lines; the header is the columns' keys; an
    undefined cell is empty."""
    text = io.StringIO()
    text.write(BOM)
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow([column.key for column in table.columns])
    for row in table.rows:
        writer.writerow(["" if cell is None else _escaped(cell, column.kind)
                         for cell, column in zip(row, table.columns, strict=True)])
    return text.getvalue().encode()


_NUMBER_FORMATS = {CellKind.RATIO: "0.0%", CellKind.SECONDS: "0.0", CellKind.NUMBER: "0.00",
                   CellKind.COUNT: "0"}


def to_xlsx(table: ReportTable) -> bytes:
    """One sheet: the columns' titles, the rows, then the notes (definitions) below."""
    from openpyxl import Workbook  # only for downloads
    from openpyxl.styles import Font

    workbook = Workbook(write_only=False)
    sheet = workbook.active
    assert sheet is not None
    sheet.title = table.title[:31]  # Excel's limit for a sheet's name
    sheet.append([column.title for column in table.columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in table.rows:
        sheet.append([_escaped(cell, column.kind)
                      for cell, column in zip(row, table.columns, strict=True)])
    for index, column in enumerate(table.columns, start=1):
        number_format = _NUMBER_FORMATS.get(column.kind)
        letter = sheet.cell(row=1, column=index).column_letter
        sheet.column_dimensions[letter].width = max(10, min(40, len(column.title) + 2))
        if number_format is None:
            continue
        for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
            cell.number_format = number_format
    if table.notes:
        sheet.append([])
        for note in table.notes:
            sheet.append([_escaped(note, CellKind.TEXT)])
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


@dataclass(frozen=True)
class Series:
    column: str  # a column's key
    style: str = "bar"  # "bar", "line", or "stack" (the panel's stacks: one bar, piled up)


@dataclass(frozen=True)
class Chart:
    """A chart of a table: one panel per series group, the ``x`` column along the bottom."""

    title: str
    x: str  # a column's key (the interval's label)
    panels: tuple[tuple[str, tuple[Series, ...]], ...]  # (panel title, its series)


def to_png(table: ReportTable, chart: Chart) -> bytes:
    """The chart as a PNG. Ratios are drawn as percentages; undefined cells as gaps."""
    import matplotlib  # only for charts: the service runs without loading it

    matplotlib.use("Agg")  # no display: draw into memory
    import matplotlib.pyplot as plt

    labels = [str(row[table.column(chart.x)]) for row in table.rows]
    positions = list(range(len(labels)))
    figure, axes = plt.subplots(len(chart.panels), 1, sharex=True, squeeze=False,
                                figsize=(max(8.0, min(24.0, 0.35 * len(labels) + 4)),
                                         3.2 * len(chart.panels) + 0.8))
    try:
        for (panel_title, series), (axis,) in zip(chart.panels, axes, strict=True):
            bars = [item for item in series if item.style == "bar"]
            width = 0.8 / max(1, len(bars))
            piled = [0.0] * len(positions)  # the "stack" series so far, bottom up
            for item in series:
                index = table.column(item.column)
                column = table.columns[index]
                values = [_plotted(row[index], column.kind) for row in table.rows]
                if item.style == "stack":
                    heights = [0.0 if v is None else v for v in values]
                    axis.bar(positions, heights, 0.8, bottom=piled, label=column.title)
                    piled = [low + high for low, high in zip(piled, heights, strict=True)]
                elif item.style == "bar":
                    shift = (bars.index(item) - (len(bars) - 1) / 2) * width
                    axis.bar([p + shift for p in positions],
                             [0.0 if v is None else v for v in values], width,
                             label=column.title)
                else:
                    axis.plot(positions, [float("nan") if v is None else v for v in values],
                              marker="o", label=column.title)
            if all(table.columns[table.column(item.column)].kind is CellKind.RATIO
                   for item in series):
                axis.set_ylim(0, 105)  # a percentage: its whole scale, not the data's
            axis.set_title(panel_title)
            axis.legend(loc="upper left", fontsize="small")
            axis.grid(axis="y", alpha=0.3)
        bottom = axes[-1][0]
        step = max(1, len(labels) // 24)  # at most ~24 labels along the bottom
        bottom.set_xticks(positions[::step], labels[::step], rotation=45, ha="right",
                          fontsize="small")
        figure.suptitle(chart.title)
        figure.tight_layout()
        output = io.BytesIO()
        figure.savefig(output, format="png", dpi=90)
        return output.getvalue()
    finally:
        plt.close(figure)


def _plotted(cell: Cell, kind: CellKind) -> float | None:
    if cell is None or isinstance(cell, str):
        return None
    return 100 * float(cell) if kind is CellKind.RATIO else float(cell)


def download(body: bytes, content_type: str, filename: str) -> web.Response:
    """An attachment named ``filename`` (made of our own report names and dates only)."""
    return web.Response(body=body, headers={
        "Content-Type": content_type,
        "Content-Disposition": f'attachment; filename="{filename}"'})
