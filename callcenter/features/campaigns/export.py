"""A call list exported with its outcomes, as CSV, a batch of rows at a time.

One row per number: where it came from (upload, line), the number, the name, its time zones,
every extra field (by column, in the uploads' order), then what the calls gave: how many
attempts, the last outcome, the last disposition an agent set, when the last call was
placed. UTF-8 with a byte-order mark, so Excel reads the accents right.

Cells that came from the upload and start like a spreadsheet formula (``=``, ``+``, ``-``,
``@``, a tab, a carriage return: core/call_lists.py's ``needs_formula_escape``) are written
with a leading ``'``, so a spreadsheet opening the export shows them as text and never runs
them (OWASP "CSV injection"). The number (E.164, ``+`` and digits, checked on upload) and
the values the dialer writes (outcomes, disposition codes, times) are never formulas.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence

from aiohttp import web

from callcenter.core.call_lists import needs_formula_escape
from callcenter.features.campaigns.lists import EntryOutcomes
from callcenter.web.params import iso

BOM = "\ufeff"
FIXED_BEFORE = ("upload", "line", "number", "name", "time_zones")
FIXED_AFTER = ("attempts", "last_outcome", "last_disposition", "last_call_at")


def escaped(value: str) -> str:
    """A cell as text a spreadsheet will not run."""
    return f"'{value}" if needs_formula_escape(value) else value


def header(extra_columns: list[str]) -> list[str]:
    return [*FIXED_BEFORE, *(escaped(c) for c in extra_columns), *FIXED_AFTER]


def row(item: EntryOutcomes, extra_columns: list[str]) -> list[str]:
    entry = item.entry
    extra = {column: value for column, value, _formula in entry.extra}
    return [str(entry.upload), str(entry.line), entry.number, escaped(entry.name),
            " ".join(entry.time_zones),
            *(escaped(extra.get(column, "")) for column in extra_columns),
            str(item.attempts), item.last_outcome or "", item.last_disposition or "",
            iso(item.last_placed_at) or ""]


async def export_csv(extra_columns: list[str],
                     batches: AsyncIterator[list[EntryOutcomes]]) -> AsyncIterator[bytes]:
    """The CSV's bytes: the header, then a chunk per batch of entries."""
    async def rows() -> AsyncIterator[list[list[str]]]:
        async for batch in batches:
            yield [row(item, extra_columns) for item in batch]

    async for chunk in csv_chunks(header(extra_columns), rows()):
        yield chunk


async def csv_chunks(columns: Sequence[str], batches: AsyncIterator[list[list[str]]]
                     ) -> AsyncIterator[bytes]:
    """A CSV (UTF-8 with a byte-order mark, CRLF) a chunk per batch of rows: the rows'
    cells must be escaped already where they come from outside."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    text.write(BOM)
    writer.writerow(columns)
    yield text.getvalue().encode()
    async for batch in batches:
        text.seek(0)
        text.truncate()
        writer.writerows(batch)
        yield text.getvalue().encode()


async def stream_csv(request: web.Request, filename: str, chunks: AsyncIterator[bytes]
                     ) -> web.StreamResponse:
    """Send ``chunks`` as a CSV download named ``filename``."""
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{filename}"'})
    await response.prepare(request)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response
