"""The two call-list file formats, CSV and XLSX, read as streams of numbered rows.

The thin I/O half of call-list uploads: bytes in, ``(line, cells)`` out, handed to the pure
``core.call_lists.CallListParser``. Neither reader holds the file in memory:

- CSV is read line by line from the binary file. UTF-8 (with or without a byte-order mark)
  by default; UTF-16 when the file starts with its byte-order mark (what Excel's "Unicode
  text" writes); a single-byte encoding (cp1252, latin-1) only when the uploader names it.
  Bytes that are not text in that encoding refuse the file, naming the line: guessing
  would store mangled names. The total, for progress, is a cheap first pass counting
  newlines (an upper bound of the rows when quoted fields hold newlines).
- XLSX is read with openpyxl in read-only mode, which streams the sheet's XML; the total is
  the sheet's recorded dimension when the file has one. openpyxl still loads the shared
  strings table whole, so its size is capped before opening.
"""

from __future__ import annotations

import codecs
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import Enum
from typing import IO

from callcenter.core.call_lists import (
    MAX_LINE_CHARS,
    CallListError,
    CallListParser,
    ColumnMapping,
    ListProgress,
    ListSummary,
    RowOutcome,
    csv_rows,
)

# Encodings an uploader may name besides UTF-8: ASCII-compatible and one byte per character,
# so splitting the bytes at b"\n" splits the text at its lines.
SINGLE_BYTE_ENCODINGS = frozenset({"cp1252", "iso8859_1", "iso8859_15", "mac_roman"})
MAX_LINE_BYTES = MAX_LINE_CHARS * 4  # UTF-8 needs up to 4 bytes a character
MAX_SHARED_STRINGS_BYTES = 256 * 1024 * 1024  # openpyxl loads xl/sharedStrings.xml whole
# Every other part but the sheets (styles, workbook, relations) is loaded whole too, and is
# small in a real workbook; the whole archive unpacked is capped as well (a zip bomb: a
# small upload that unpacks to gigabytes), sheets being streamed but still read in full.
MAX_OTHER_PART_BYTES = 64 * 1024 * 1024
MAX_UNPACKED_BYTES = 4 * 1024 * 1024 * 1024
_SNIFF_BYTES = 4096
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls


class ListFormat(Enum):
    CSV = "csv"
    XLSX = "xlsx"


def list_format(filename: str) -> ListFormat:
    """The format a file name says; CallListError for anything else."""
    lowered = filename.lower()
    if lowered.endswith((".csv", ".txt")):
        return ListFormat.CSV
    if lowered.endswith(".xlsx"):
        return ListFormat.XLSX
    if lowered.endswith(".xls"):
        raise CallListError(f"{filename}: old Excel (.xls) files are not read; save it as "
                            ".xlsx or as CSV UTF-8")
    raise CallListError(f"{filename}: a call list is a .csv or .xlsx file")


# ----------------------------------------------------------------------------------- CSV

def csv_lines(source: IO[bytes], encoding: str | None = None) -> Iterator[str]:
    """The file's text lines, each with its line ending, decoded strictly.

    ``encoding`` None: UTF-16 if the file starts with its byte-order mark, else UTF-8.
    """
    head = source.read(_SNIFF_BYTES)
    if head.startswith(_ZIP_MAGIC):
        raise CallListError("line 1: this is an XLSX (zip) file, not CSV; upload it as .xlsx")
    if head.startswith(_OLE_MAGIC):
        raise CallListError("line 1: this is an old Excel (.xls) file, not CSV; save it as "
                            ".xlsx or as CSV UTF-8")
    utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if encoding is None:
        if utf16:
            yield from _utf16_lines(head, source)
            return
        codec = "utf_8"
        if head.count(b"\x00") > len(head) // 8:
            raise CallListError(
                "line 1: the file is full of NUL bytes: UTF-16 without a byte-order mark, or "
                "not text at all; save it as CSV UTF-8"
            )
    else:
        try:
            codec = codecs.lookup(encoding).name.replace("-", "_")
        except LookupError:
            codec = ""
        if codec not in SINGLE_BYTE_ENCODINGS | {"utf_8"}:
            raise CallListError(
                f"encoding {encoding!r} is not read: use UTF-8, or one of "
                f"{', '.join(sorted(SINGLE_BYTE_ENCODINGS))}"
            )
    yield from _byte_lines(head, source, codec)


def _byte_lines(head: bytes, source: IO[bytes], codec: str) -> Iterator[str]:
    stream = io.BufferedReader(_Prefixed(head, source))  # type: ignore[arg-type]
    shown = codec.upper().replace("_", "-")  # "UTF-8", "CP1252"
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise CallListError(f"line {number}: longer than {MAX_LINE_CHARS} characters; "
                                "this is not a call list")
        try:
            yield raw.decode(codec)
        except UnicodeDecodeError as error:
            bad = raw[error.start:error.start + 4]
            raise CallListError(
                f"line {number}: byte {error.start + 1} ({bad!r}) is not {shown} text; save "
                "the file as CSV UTF-8, or say its encoding (e.g. cp1252)"
            ) from None


def _utf16_lines(head: bytes, source: IO[bytes]) -> Iterator[str]:
    text = io.TextIOWrapper(
        io.BufferedReader(_Prefixed(head, source)),  # type: ignore[arg-type]
        encoding="utf-16", errors="strict", newline="",
    )
    number = 0
    while True:
        try:
            line = text.readline(MAX_LINE_CHARS + 1)
        except UnicodeDecodeError:
            # The decoder works ahead in chunks: the line is a close guess, not exact.
            raise CallListError(f"around line {number + 1}: not UTF-16 text") from None
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_CHARS:
            raise CallListError(f"line {number}: longer than {MAX_LINE_CHARS} characters; "
                                "this is not a call list")
        yield line


class _Prefixed(io.RawIOBase):
    """The sniffed head, then the rest of the source: one raw stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def count_csv_rows(source: IO[bytes]) -> int | None:
    """Data rows at most (newlines, less the header), then rewinds; None if not seekable.

    A cheap pass: reads the bytes in 64 KiB chunks and counts b"\\n" (for UTF-16, b"\\n\\0"
    miscounts are harmless: it is a progress total, an upper bound, not an accounting).
    """
    if not source.seekable():
        return None
    start = source.tell()
    newlines = 0
    last = b""
    while chunk := source.read(1 << 16):
        newlines += chunk.count(b"\n")
        last = chunk
    source.seek(start)
    lines = newlines + (1 if last and not last.endswith(b"\n") else 0)
    return max(lines - 1, 0)


# ---------------------------------------------------------------------------------- XLSX

def xlsx_rows(
    source: IO[bytes], sheet: str | None = None
) -> tuple[int | None, Iterator[tuple[int, list[str | None]]]]:
    """(data rows when the sheet records its size, the sheet's rows numbered as Excel does).

    ``source`` must be seekable: a zip file's index is at its end (uploads are spooled).
    """
    import openpyxl  # only XLSX uploads pay for importing it

    try:
        with zipfile.ZipFile(source) as archive:
            _check_unpacked_sizes(archive.infolist())
        source.seek(0)
        workbook = openpyxl.load_workbook(source, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError) as error:
        raise CallListError(f"not a readable XLSX file ({error})") from None
    try:
        worksheet = workbook[sheet] if sheet is not None else workbook.active
    except KeyError:
        workbook.close()
        raise CallListError(f"the workbook has no sheet {sheet!r}; it has "
                            f"{', '.join(workbook.sheetnames)}") from None
    if worksheet is None:
        workbook.close()
        raise CallListError("the workbook has no sheet")
    max_row = getattr(worksheet, "max_row", None)
    total = max(max_row - 1, 0) if isinstance(max_row, int) else None

    def rows() -> Iterator[tuple[int, list[str | None]]]:
        try:
            # Read-only sheets give rows in order and fill skipped (empty) rows, so counting
            # from 1 is the sheet's row number.
            for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
                yield number, [_cell_text(value) for value in values]
        finally:
            workbook.close()

    return total, rows()


def _check_unpacked_sizes(parts: list[zipfile.ZipInfo]) -> None:
    """Refuse a workbook whose parts unpack past the caps, by the sizes the archive declares
    (zipfile never unpacks more than a part declares)."""
    total = 0
    for info in parts:
        total += info.file_size
        if info.filename.endswith("sharedStrings.xml"):
            if info.file_size > MAX_SHARED_STRINGS_BYTES:
                raise CallListError(
                    f"the workbook's text table is {info.file_size} bytes, over the "
                    f"limit of {MAX_SHARED_STRINGS_BYTES}"
                )
        elif (not info.filename.startswith("xl/worksheets/")
              and info.file_size > MAX_OTHER_PART_BYTES):
            raise CallListError(f"the workbook's part {info.filename[:60]!r} unpacks to "
                                f"{info.file_size} bytes, over the limit of "
                                f"{MAX_OTHER_PART_BYTES}; this is not a call list")
    if total > MAX_UNPACKED_BYTES:
        raise CallListError(f"the workbook unpacks to {total} bytes, over the limit of "
                            f"{MAX_UNPACKED_BYTES}; split the list")


def _cell_text(value: object) -> str | None:
    """A cell as the text a person sees; numbers without a float's '.0' or exponent."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone typed as a number: 5511987654321.0
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------------- both

@dataclass
class ListReading:
    """One upload being read: iterate ``outcomes``; ``summary`` once they are exhausted."""

    outcomes: Iterator[RowOutcome]
    parser: CallListParser
    rows_total: int | None

    def summary(self) -> ListSummary:
        return self.parser.summary()


def read_call_list(
    source: IO[bytes],
    file_format: ListFormat,
    mapping: ColumnMapping,
    default_region: str,
    *,
    encoding: str | None = None,
    sheet: str | None = None,
    progress: Callable[[ListProgress], None] | None = None,
) -> ListReading:
    """Start reading an upload; nothing is read past the sniffing until outcomes are drawn.

    Whole-file faults raise CallListError, possibly part-way through ``outcomes``: the
    caller stores the outcomes in one transaction and rolls it back then.
    """
    if file_format is ListFormat.CSV:
        total = count_csv_rows(source)
        rows: Iterator[tuple[int, list[str]]] | Iterator[tuple[int, list[str | None]]]
        rows = csv_rows(csv_lines(source, encoding))
    else:
        total, rows = xlsx_rows(source, sheet)
    parser = CallListParser(mapping, default_region, rows_total=total, progress=progress)
    return ListReading(parser.parse(rows), parser, total)
