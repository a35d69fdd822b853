"""A 1,000,000-row call list through the CSV reader and parser: rows per second and memory.

    .venv/bin/python bench/call_list_upload.py [--rows N] [--tracemalloc]

The CSV is generated on the fly (a non-seekable stream, so there is no progress total and no
file on disk); the run reports the wall time, rows per second, the process's peak resident
size before and after, and (with --tracemalloc, several times slower) Python's traced peak.
The parser keeps only the accepted numbers, so memory grows by that set alone.
"""

from __future__ import annotations

import argparse
import io
import resource
import time
import tracemalloc
from collections.abc import Iterator

from callcenter.core.call_lists import ColumnMapping
from callcenter.features.campaigns.list_files import ListFormat, read_call_list


class GeneratedCsv(io.RawIOBase):
    """A call list of ``rows`` distinct São Paulo mobiles, made as it is read."""

    def __init__(self, rows: int) -> None:
        self._lines = self._make(rows)
        self._pending = b""

    @staticmethod
    def _make(rows: int) -> Iterator[bytes]:
        yield b"phone,name,notes,plan\r\n"
        for i in range(rows):
            yield f"(11) 9{i:08d},Customer {i},called before; prefers mornings,gold\r\n".encode()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while len(self._pending) < len(buffer):
            chunk = next(self._lines, None)
            if chunk is None:
                break
            self._pending += chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if args.tracemalloc:
        tracemalloc.start()
    started = time.perf_counter()
    reading = read_call_list(io.BufferedReader(GeneratedCsv(args.rows)), ListFormat.CSV,
                             ColumnMapping("phone", "name"), "BR")
    for _ in reading.outcomes:
        pass
    elapsed = time.perf_counter() - started
    summary = reading.summary()
    after_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"rows: {summary.rows_read} (accepted {summary.accepted}, rejected "
          f"{summary.rejected}, duplicates {summary.duplicates})")
    print(f"time: {elapsed:.1f} s, {summary.rows_read / elapsed:,.0f} rows/s")
    print(f"peak RSS: {before_kib / 1024:.0f} MiB before, {after_kib / 1024:.0f} MiB after "
          f"({(after_kib - before_kib) * 1024 / max(summary.rows_read, 1):.0f} B/row)")
    if args.tracemalloc:
        _, peak = tracemalloc.get_traced_memory()
        print(f"traced peak: {peak / 2**20:.1f} MiB ({peak / max(summary.rows_read, 1):.0f} B/row)")


if __name__ == "__main__":
    main()
