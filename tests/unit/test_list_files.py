"""The call-list file readers (features/campaigns/list_files.py): encodings, XLSX built here
with openpyxl, a 100,000-row CSV for accounting and progress, and a traced memory bound."""

from __future__ import annotations

import codecs
import io
import tracemalloc
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from callcenter.core.call_lists import (
    AcceptedRow,
    CallListError,
    ColumnMapping,
    DuplicateRow,
    ListProgress,
    RejectedRow,
    RowOutcome,
)
from callcenter.features.campaigns.list_files import (
    ListFormat,
    count_csv_rows,
    list_format,
    read_call_list,
)

MAPPING = ColumnMapping("Phone", "Name")
CSV_TEXT = "Phone,Name,Cidade\r\n11987654321,José,São Paulo\r\n12,Bad,x\r\n"


def read_csv(data: bytes, encoding: str | None = None) -> list[RowOutcome]:
    reading = read_call_list(io.BytesIO(data), ListFormat.CSV, MAPPING, "BR",
                             encoding=encoding)
    return list(reading.outcomes)


def accepted_names(outcomes: list[RowOutcome]) -> list[tuple[str, str]]:
    return [(o.name, o.extra[0].value) for o in outcomes if isinstance(o, AcceptedRow)]


@pytest.mark.parametrize("data", [
    CSV_TEXT.encode("utf-8"),
    codecs.BOM_UTF8 + CSV_TEXT.encode("utf-8"),
    CSV_TEXT.encode("utf-16"),  # with its byte-order mark, as Excel's "Unicode text"
    codecs.BOM_UTF16_BE + CSV_TEXT.encode("utf-16-be"),
])
def test_utf8_and_utf16_with_a_bom_read_the_same(data: bytes) -> None:
    outcomes = read_csv(data)
    assert accepted_names(outcomes) == [("José", "São Paulo")]
    assert isinstance(outcomes[1], RejectedRow) and outcomes[1].line == 3


def test_a_latin1_file_is_refused_naming_the_line_unless_its_encoding_is_given() -> None:
    data = CSV_TEXT.encode("cp1252")
    with pytest.raises(CallListError) as raised:
        read_csv(data)
    assert str(raised.value).startswith("line 2: byte 16 (b'\\xe9,S\\xe3') is not UTF-8 text")
    assert accepted_names(read_csv(data, encoding="cp1252")) == [("José", "São Paulo")]
    assert accepted_names(read_csv(data, encoding="Windows-1252")) == [("José", "São Paulo")]
    assert accepted_names(read_csv(CSV_TEXT.encode("latin-1"), encoding="latin-1")) == [
        ("José", "São Paulo")]


@pytest.mark.parametrize(("data", "encoding", "expected"), [
    (CSV_TEXT.encode("utf-16-le"), None, "full of NUL bytes"),  # UTF-16 without its BOM
    (b"PK\x03\x04rest", None, "this is an XLSX (zip) file, not CSV"),
    (b"\xd0\xcf\x11\xe0rest", None, "old Excel (.xls)"),
    (CSV_TEXT.encode(), "utf-16", "encoding 'utf-16' is not read"),
    (CSV_TEXT.encode(), "klingon", "encoding 'klingon' is not read: use UTF-8, or one of"),
    (b"", None, "the file is empty"),
    (b"\r\n\r\n", None, "the file is empty"),
    (b"Phone,Name\r\n", None, "a header (line 1) but no rows"),
    (b"Phone,Name\n" + b"1" * 300_000 + b"\n", None, "line 2: longer than 65536 characters"),
])
def test_a_file_that_is_not_a_readable_csv_is_refused(
        data: bytes, encoding: str | None, expected: str) -> None:
    with pytest.raises(CallListError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        read_csv(data, encoding)


def test_file_names_say_the_format() -> None:
    assert list_format("Lista.CSV") is ListFormat.CSV
    assert list_format("list.xlsx") is ListFormat.XLSX
    with pytest.raises(CallListError, match="old Excel"):
        list_format("list.xls")
    with pytest.raises(CallListError, match=r"a \.csv or \.xlsx file"):
        list_format("list.pdf")


def test_the_csv_total_counts_lines_less_the_header_and_rewinds() -> None:
    source = io.BytesIO(b"Phone\n1\n2\n3")
    assert count_csv_rows(source) == 3
    assert source.tell() == 0


# ---------------------------------------------------------------------------------- XLSX

def make_xlsx(rows: list[list[object]], *, title: str = "Sheet") -> io.BytesIO:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = title
    for number, row in enumerate(rows, start=1):
        for column, value in enumerate(row, start=1):
            if value is not None:
                sheet.cell(row=number, column=column, value=value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    buffer.seek(0)
    return buffer


def test_an_xlsx_is_read_with_sheet_row_numbers_numbers_as_text_and_formulas_as_text() -> None:
    source = make_xlsx([
        ["Phone", "Name", "Since", "Notes"],
        [5511987654321, "Ana", date(2024, 3, 1), "=1+1"],  # a phone typed as a number
        [None, None, None, None],  # an empty row: blank, counted
        ["(11) 98765-4322", "Bo", None, None],
        ["+55 11 98765-4321", "Dup", None, None],
        ["12", "Bad", None, None],
    ])
    seen: list[ListProgress] = []
    reading = read_call_list(source, ListFormat.XLSX, MAPPING, "BR", progress=seen.append)
    outcomes = list(reading.outcomes)
    assert [(type(o).__name__, o.line) for o in outcomes] == [
        ("AcceptedRow", 2), ("AcceptedRow", 4), ("DuplicateRow", 5), ("RejectedRow", 6)]
    first = outcomes[0]
    assert isinstance(first, AcceptedRow) and first.number == "+5511987654321"
    # openpyxl saves "=1+1" as a formula with no cached value, so it reads back empty: a
    # formula is never evaluated here, only a cached value read as text.
    assert [(f.column, f.value) for f in first.extra] == [
        ("Since", "2024-03-01T00:00:00"), ("Notes", "")]
    assert outcomes[2] == DuplicateRow(5, "+5511987654321", 2)
    assert reading.rows_total == 5
    assert seen == [ListProgress(4, 5)]
    summary = reading.summary()
    assert (summary.rows_read, summary.blank_rows) == (4, 1)


def test_an_xlsx_text_cell_starting_like_a_formula_is_flagged() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Phone", "Name", "Notes"])
    sheet.append(["11987654321", "Ana", "@SUM(A1)"])
    sheet["C2"].data_type = "s"  # a text cell, as a sheet typed with a leading quote has
    buffer = io.BytesIO()
    workbook.save(buffer)
    buffer.seek(0)
    outcomes = list(read_call_list(buffer, ListFormat.XLSX, MAPPING, "BR").outcomes)
    accepted = outcomes[0]
    assert isinstance(accepted, AcceptedRow)
    assert accepted.extra[0].value == "@SUM(A1)" and accepted.extra[0].formula_like


def test_an_xlsx_missing_a_mapped_column_or_sheet_or_not_a_zip_is_refused() -> None:
    with pytest.raises(CallListError, match="line 1: the header has no column 'Name'"):
        list(read_call_list(make_xlsx([["Phone"], ["11987654321"]]), ListFormat.XLSX,
                            MAPPING, "BR").outcomes)
    with pytest.raises(CallListError, match="no sheet 'Leads'; it has Sheet"):
        read_call_list(make_xlsx([["Phone"]]), ListFormat.XLSX, MAPPING, "BR", sheet="Leads")
    with pytest.raises(CallListError, match="not a readable XLSX file"):
        read_call_list(io.BytesIO(b"Phone\n1\n"), ListFormat.XLSX, MAPPING, "BR")


# ---------------------------------------------------------------------------- large lists

def write_list(path: Path, rows: int) -> None:
    """``rows`` distinct mobiles, every 10th repeating the one before, every 50th bad."""
    with path.open("w", newline="", encoding="utf-8") as out:
        out.write("phone,name,notes,plan\r\n")
        for i in range(rows):
            if i % 50 == 49:
                out.write(f"12{i},Bad {i},,\r\n")
            elif i % 10 == 9:
                out.write(f"(11) 9{i - 1:08d},Again {i},,\r\n")
            else:
                out.write(f"(11) 9{i:08d},Customer {i},called before; mornings,gold\r\n")


def test_a_100k_row_csv_accounts_for_every_row_and_reports_progress(tmp_path: Path) -> None:
    rows = 100_000
    path = tmp_path / "list.csv"
    write_list(path, rows)
    seen: list[ListProgress] = []
    counts = {"AcceptedRow": 0, "RejectedRow": 0, "DuplicateRow": 0}
    with path.open("rb") as source:
        reading = read_call_list(source, ListFormat.CSV, ColumnMapping("phone", "name"),
                                 "BR", progress=seen.append)
        for outcome in reading.outcomes:
            counts[type(outcome).__name__] += 1
    summary = reading.summary()
    assert summary.rows_read == rows and summary.accounted
    assert counts == {"RejectedRow": rows // 50, "DuplicateRow": rows // 10 - rows // 50,
                      "AcceptedRow": rows - rows // 10}
    assert len(seen) == rows // 1000
    assert seen[0] == ListProgress(1000, rows) and seen[-1] == ListProgress(rows, rows)


def test_memory_grows_only_by_the_numbers_seen(tmp_path: Path) -> None:
    """Traced peak under 512 KiB + 150 B per row (measured: about 100 B per distinct number
    and 250 KiB of buffers and table resizing); keeping each row's outcome instead would
    take over 700 B per row. 5,000 rows, because tracing slows the parser several times;
    bench/call_list_upload.py runs a million."""
    rows = 5_000
    path = tmp_path / "list.csv"
    write_list(path, rows)
    mapping = ColumnMapping("phone", "name")
    warm_up = io.BytesIO(b"phone,name\n11987654321,Ana\n")  # metadata and zones load once
    list(read_call_list(warm_up, ListFormat.CSV, mapping, "BR").outcomes)
    tracemalloc.start()
    try:
        with path.open("rb") as source:
            reading = read_call_list(source, ListFormat.CSV, mapping, "BR")
            for _ in reading.outcomes:
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reading.summary().rows_read == rows
    assert peak < 512 * 1024 + 150 * rows, f"traced peak {peak} bytes for {rows} rows"
