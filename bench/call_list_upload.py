"""A 1,000,000-row call list through the CSV reader and parser, or through the whole HTTP
upload: rows per second, progress and memory.

    .venv/bin/python bench/call_list_upload.py [--rows N] [--tracemalloc]
    .venv/bin/python bench/call_list_upload.py --http [--rows N] [--database-url URL]

The CSV is generated on the fly. Without --http it goes straight to the reader (a
non-seekable stream, so there is no progress total and no file on disk); the run reports the
wall time, rows per second, the process's peak resident size before and after, and (with
--tracemalloc, several times slower) Python's traced peak. The parser keeps only the
accepted numbers, so memory grows by that set alone.

With --http the service's web application runs here (a fresh SQLite database in a temporary
folder, or --database-url, migrated), and the CSV is sent to POST
/api/campaigns/bench/lists as a chunked body from the generator (never whole in memory on
either side); the import is then polled every second, printing rows done / total and the
resident size, until it ends. The same process serves and sends, so the peak resident size
bounds both.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import resource
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
from aiohttp import web

from callcenter.core.call_lists import ColumnMapping
from callcenter.core.campaigns import Campaign, CampaignMode
from callcenter.core.clock import SystemClock
from callcenter.features.accounts.store import AccountRepository, Role
from callcenter.features.calls.store import CallRepository
from callcenter.features.campaigns.imports import upload_services
from callcenter.features.campaigns.list_files import ListFormat, read_call_list
from callcenter.features.campaigns.store import CampaignRepository
from callcenter.store.db import create_engine, session_factory, upgrade
from callcenter.web.app import WebServices, make_app
from callcenter.web.health import HealthProbe
from callcenter.web.limits import HttpLimits, install_body_deadline


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


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _database_up() -> bool:
    return True


async def through_http(rows: int, database_url: str | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="call-list-bench-"))
    url = database_url or f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    await upgrade(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    clock = SystemClock()
    campaigns = CampaignRepository(sessions, clock)
    await campaigns.add(Campaign(name="bench", mode=CampaignMode.PROGRESSIVE, queue="sales",
                                 caller_id="+551130000000", default_region="BR",
                                 hours={"mon-fri": ["09:00-20:00"]}))
    accounts = AccountRepository(sessions, clock)
    user = await accounts.create_user("bench", "a long enough password",
                                      [Role.CAMPAIGN_MANAGER])
    token = (await accounts.create_token(user.id, "bench")).secret
    uploads = await upload_services(folder, sessions, clock, max_megabytes=200, grace_seconds=30)
    app = make_app(WebServices(
        CallRepository(sessions), HealthProbe(lambda: True, lambda: True, _database_up),
        accounts, clock, campaigns=campaigns, queue_names=("sales",), uploads=uploads))
    install_body_deadline(app, HttpLimits())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    before = peak_mib()

    async def body() -> AsyncIterator[bytes]:
        source = io.BufferedReader(GeneratedCsv(rows))
        while chunk := source.read(1 << 16):
            yield chunk

    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            started = time.perf_counter()
            answer = await http.post(f"{base}/api/campaigns/bench/lists", data=body(),
                                     params={"list": "million", "phone": "phone",
                                             "name": "name"},
                                     headers={"Content-Type": "text/csv"})
            job = await answer.json()
            assert answer.status == 202, job
            uploaded = time.perf_counter() - started
            print(f"upload: {job['size_bytes'] / 2**20:.0f} MiB stored in {uploaded:.1f} s; "
                  f"import {job['id']}")
            refused = 0
            while job["state"] in ("queued", "reading"):
                await asyncio.sleep(1)
                polled = await http.get(f"{base}{answer.headers['Location']}")
                if polled.status != 200:  # SQLite: the import holds the only write lock
                    refused += 1
                    print(f"  {time.perf_counter() - started:6.1f} s  GET answered "
                          f"{polled.status}: {(await polled.json())['error']}", flush=True)
                    continue
                job = await polled.json()
                print(f"  {time.perf_counter() - started:6.1f} s  {job['state']:8} "
                      f"{job['rows_done']:>9,} / {job['rows_total'] or 0:,} rows  "
                      f"peak RSS {peak_mib():.0f} MiB", flush=True)
            print(f"polls refused meanwhile: {refused}")
            elapsed = time.perf_counter() - started
            print(f"state: {job['state']} {job['error'] or ''}")
            counts = job["counts"] or {}
            print(f"rows: {counts.get('rows_read')} (accepted {counts.get('accepted')}, "
                  f"rejected {counts.get('rejected')}, duplicates {counts.get('duplicates')})")
            print(f"time: {elapsed:.1f} s, {rows / elapsed:,.0f} rows/s through HTTP and the "
                  "database")
            print(f"peak RSS: {before:.0f} MiB before the upload, {peak_mib():.0f} MiB after "
                  f"({(peak_mib() - before) * 2**20 / max(rows, 1):.0f} B/row)")
            print(f"upload files left: {len(uploads.folder.files())}")
    finally:
        await uploads.imports.close()
        await runner.cleanup()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--http", action="store_true",
                        help="through POST /api/campaigns/{name}/lists and the database")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if args.http:
        asyncio.run(through_http(args.rows, args.database_url))
        return
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
