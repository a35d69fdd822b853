"""Uploads over real sockets from hostile clients: a wrong type, too big (declared or
growing), empty, a slow trickle, a body cut off, a zip bomb posing as XLSX, too many at
once. Each gets a clear 4xx/5xx naming what is wrong and leaves no file and no list. Then
the import's own end states: cancelled mid-way (on both databases) stores nothing, and the
files a killed run left are deleted at start."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.call_lists import (
    AcceptedRow,
    ListSummary,
    RowOutcome,
    TimeZoneSource,
)
from callcenter.core.campaigns import Campaign, CampaignMode
from callcenter.core.clock import VirtualClock
from callcenter.features.accounts.store import Role
from callcenter.features.campaigns import list_files
from callcenter.features.campaigns.imports import (
    ImportJob,
    ImportKind,
    Imports,
    ImportState,
    upload_services,
)
from callcenter.features.campaigns.lists import BATCH_ROWS, CallLists
from callcenter.features.campaigns.models import CallListEntryRow, CallListRow
from callcenter.features.campaigns.store import CampaignRepository
from callcenter.features.campaigns.uploads import (
    XLSX_TYPE,
    StoredUpload,
    UploadFolder,
    UploadLimits,
)
from tests.support.web import bearer_headers
from tests.unit.test_call_list_api import (
    LIST_CSV,
    UPLOAD,
    WAIT,
    Served,
    count,
    imported,
    serving,
    upload,
)
from tests.unit.test_call_list_api import manager as manager  # the fixture, on served below

T0 = 1_795_000_000.0
SMALL = UploadLimits(max_bytes=4096, grace_seconds=0.3, min_bytes_per_second=1024,
                     max_at_once=2)


@pytest.fixture
async def served(sqlite_sessions: async_sessionmaker[AsyncSession],
                 tmp_path: Path) -> AsyncIterator[Served]:
    """Small limits; ordinary bodies must arrive within 0.2 s, uploads have their own pace."""
    async for it in serving(sqlite_sessions, tmp_path / "uploads", SMALL, body_seconds=0.2):
        yield it


async def raw_request(served: Served, head: str, body: bytes = b"", *,
                      end_body: bool = False) -> tuple[int, dict[str, Any]]:
    """Send ``head`` (request line and headers, signed) and ``body`` over a socket; then
    wait for the answer (``end_body``: half-close first, as a client cut off does)."""
    headers = await bearer_headers(served.accounts, [Role.CAMPAIGN_MANAGER],
                                   username=f"raw{id(body)}{len(head)}")
    assert served.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", served.server.port)
    signed = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    writer.write(f"{head}\r\nHost: x\r\n{signed}\r\n".encode() + body)
    if end_body:
        writer.write_eof()
    try:
        status, body = await asyncio.wait_for(read_answer(reader), WAIT)
    except (ConnectionResetError, asyncio.IncompleteReadError):
        status, body = 0, {}
    writer.close()
    return status, body


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    """One answer, read to the end of its body (the server may keep reading what the client
    sends for a while before it closes)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return status, json.loads(await reader.readexactly(length))


def post_head(length: int | None, content_type: str = "text/csv") -> str:
    sized = f"\r\nContent-Length: {length}" if length is not None else \
        "\r\nTransfer-Encoding: chunked"
    return (f"POST {UPLOAD}?list=november&phone=phone HTTP/1.1\r\n"
            f"Content-Type: {content_type}{sized}\r\nConnection: close")


async def nothing_left(served: Served) -> None:
    assert served.uploads.folder.files() == []
    assert await count(served, CallListRow) == 0
    assert all(job.state is not ImportState.READING
               for job in served.uploads.imports._jobs.values())


# --------------------------------------------------------------------------- hostile bodies


@pytest.mark.parametrize(("content_type", "shown"), [
    ("application/json", "'application/json'"),
    ("multipart/form-data; boundary=x", "'multipart/form-data; boundary=x'"),
    ("text/plain", "'text/plain'"),
    ("application/vnd.ms-excel", "'application/vnd.ms-excel'"),
    (None, "'application/octet-stream'"),
])
async def test_a_wrong_content_type_is_a_415_naming_the_accepted_ones(
        served: Served, manager: TestClient, content_type: str | None, shown: str):
    headers = {} if content_type is None else {"Content-Type": content_type}
    answer = await manager.post(UPLOAD, params={"list": "n", "phone": "phone"},
                                data=LIST_CSV.encode(), headers=headers)
    body = await answer.json()
    assert answer.status == 415, body
    assert body["error"].startswith(
        f"body: send the file with Content-Type text/csv or {XLSX_TYPE}, not"), body
    await nothing_left(served)


@pytest.mark.parametrize(("data", "content_type", "error"), [
    (b"PK\x03\x04rest of a zip", "text/csv", "this is an XLSX (zip) file, not CSV"),
    (b"\xd0\xcf\x11\xe0old excel", "text/csv", "this is an old Excel (.xls) file"),
    (LIST_CSV.encode(), XLSX_TYPE, "this is not an XLSX file"),
])
async def test_a_body_that_contradicts_its_type_is_a_400(
        served: Served, manager: TestClient, data: bytes, content_type: str, error: str):
    answer = await upload(manager, data, content_type=content_type)
    body = await answer.json()
    assert answer.status == 400 and error in body["error"], body
    await nothing_left(served)


async def test_an_empty_file_is_a_400(served: Served, manager: TestClient):
    answer = await upload(manager, b"")
    assert answer.status == 400
    assert (await answer.json())["error"] == "body: the file is empty"
    await nothing_left(served)


async def test_a_declared_size_over_the_limit_is_a_413_before_reading(served: Served):
    status, body = await raw_request(served, post_head(SMALL.max_bytes + 1))  # no body sent
    assert status == 413, body
    assert body["limit_bytes"] == 4096
    assert "larger than the 4096 bytes" in body["error"]
    await nothing_left(served)


async def test_a_chunked_body_growing_past_the_limit_is_a_413(served: Served,
                                                             manager: TestClient):
    async def chunks() -> AsyncIterator[bytes]:
        yield b"phone,name\n"
        for _ in range(10):
            yield b"11987654321,Ana\n" * 64

    answer = await manager.post(UPLOAD, params={"list": "n", "phone": "phone"},
                                data=chunks(), headers={"Content-Type": "text/csv"})
    assert answer.status == 413
    assert (await answer.json())["limit_bytes"] == 4096
    await nothing_left(served)


async def test_a_slow_trickle_is_cut_off_by_the_pace_rule_not_the_body_deadline(
        served: Served):
    """Ordinary bodies get 0.2 s here; the upload gets 0.3 s of grace, then must keep up
    1 KiB/s: ten bytes and silence are cut off at about 0.31 s, by the upload's own rule."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, body = await raw_request(served, post_head(1000), b"phone,name")
    assert status == 408, body
    assert body["error"].startswith("body: the upload is too slow: 10 bytes in 0 s; after "
                                    "the first 0.3 s it must arrive at 1 KiB/s or more")
    assert 0.3 <= loop.time() - started < WAIT
    await nothing_left(served)


async def test_a_body_cut_off_before_its_length_keeps_nothing(served: Served):
    status, body = await raw_request(served, post_head(1000), b"phone,name\n1198",
                                     end_body=True)
    assert status in (0, 400), body  # the client is gone: it may not even hear the answer
    if status == 400:
        assert "cut off" in body["error"]
    await nothing_left(served)


async def test_uploads_beyond_the_number_at_once_are_a_503(served: Served):
    """Two uploads hold their connections (headers sent, body pending): a third is turned
    away at once, and room comes back when they end."""
    assert served.server.port is not None
    headers = await bearer_headers(served.accounts, [Role.CAMPAIGN_MANAGER], username="h")
    signed = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    held = []
    for _ in range(2):
        reader, writer = await asyncio.open_connection("127.0.0.1", served.server.port)
        writer.write(f"{post_head(1000)}\r\nHost: x\r\n{signed}\r\nphone".encode())
        held.append((reader, writer))
    async with asyncio.timeout(WAIT):
        while served.uploads.folder._receiving < 2:
            await asyncio.sleep(0.01)  # a poll until both are being received
    status, body = await raw_request(served, post_head(5), b"phone")
    assert status == 503 and "2 uploads are being received already" in body["error"]
    for reader, writer in held:
        status, _body = await asyncio.wait_for(read_answer(reader), WAIT)
        assert status == 408  # each ends by the pace rule
        writer.close()
    await nothing_left(served)


async def test_nul_bytes_refuse_a_file_of_them_and_reject_a_row_with_one(
        served: Served, manager: TestClient):
    job = await imported(served, manager, await upload(manager, b"\x00\x00" * 100))
    assert job["state"] == "failed" and "NUL" in job["error"]
    job = await imported(served, manager, await upload(
        manager, "phone,name\n11987654321,A\x00na\n11987654322,Bia\n"))
    assert job["state"] == "done" and job["counts"]["rejected"] == 1


async def test_a_zip_bomb_posing_as_xlsx_is_refused_by_its_declared_sizes(
        served: Served, manager: TestClient, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(list_files, "MAX_OTHER_PART_BYTES", 512 * 1024)
    monkeypatch.setattr(list_files, "MAX_UNPACKED_BYTES", 1024 * 1024)
    bombs = []
    for name, size in (("xl/styles.xml", 600 * 1024),
                       ("xl/worksheets/sheet1.xml", 1536 * 1024)):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(name, b"\x00" * size)  # unpacks to megabytes
        assert len(buffer.getvalue()) < SMALL.max_bytes  # from a few KiB
        bombs.append(buffer.getvalue())
    first = await imported(served, manager, await upload(manager, bombs[0],
                                                          content_type=XLSX_TYPE))
    assert first["state"] == "failed"
    assert "part 'xl/styles.xml' unpacks to 614400 bytes, over the limit" in first["error"]
    second = await imported(served, manager, await upload(manager, bombs[1],
                                                           content_type=XLSX_TYPE))
    assert "the workbook unpacks to 1572864 bytes, over the limit" in second["error"]
    await nothing_left(served)


# --------------------------------------------------------------------------- killed, cancelled


def stored_upload(tmp_path: Path, folder: UploadFolder) -> StoredUpload[Any]:
    path = folder.folder / "upload-test.part"
    path.write_bytes(b"placeholder: the rows come from the work below")
    return StoredUpload(path, path.stat().st_size, None)


def rows_then_wait(reached: threading.Event, release: threading.Event
                   ) -> Iterator[RowOutcome]:
    """More than a batch of rows, then a reader stuck mid-file (in its worker thread)."""
    for i in range(BATCH_ROWS + 10):
        if i == BATCH_ROWS + 5:
            reached.set()
            release.wait(WAIT)
        yield AcceptedRow(i + 2, f"+55119{i:08d}", "", False, ("America/Sao_Paulo",),
                          TimeZoneSource.NUMBER, ())


def campaign(name: str) -> Campaign:
    return Campaign(name=name, mode=CampaignMode.PROGRESSIVE, queue="sales",
                    caller_id="+551130000000", default_region="BR",
                    hours={"mon-fri": ["09:00-20:00"]})


async def lists_of_a_campaign(sessions: async_sessionmaker[AsyncSession],
                              clock: VirtualClock) -> CallLists:
    await CampaignRepository(sessions, clock).add(campaign("renewals"))
    return CallLists(sessions, clock)


async def until_set(event: threading.Event) -> None:
    """Until the reader's thread sets ``event`` (a poll, with a guard)."""
    async with asyncio.timeout(WAIT):
        while not event.is_set():
            await asyncio.sleep(0.01)


async def test_an_import_cancelled_mid_way_stores_nothing_and_deletes_its_file(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path):
    clock = VirtualClock(T0)
    lists = await lists_of_a_campaign(sessions, clock)
    folder = UploadFolder(tmp_path / "uploads")
    imports = Imports(clock)
    reached, release = threading.Event(), threading.Event()

    async def work(job: ImportJob, source: IO[bytes]) -> dict[str, Any]:
        stored = await lists.import_list(
            "renewals", "november", rows_then_wait(reached, release),
            lambda: ListSummary(BATCH_ROWS + 10, BATCH_ROWS + 10, 0, 0, 0, 0))
        return {"list": stored}

    job = imports.start(ImportKind.CALL_LIST, "renewals", "november", "ana",
                        stored_upload(tmp_path, folder), work)
    try:
        await until_set(reached)  # a batch is stored; the second is being read
        cancelled = asyncio.create_task(imports.cancel(job.id))
        await asyncio.sleep(0)  # the cancel is asked for before the reader goes on
    finally:
        release.set()
    await asyncio.wait_for(cancelled, WAIT)
    assert job.state is ImportState.CANCELLED
    assert job.error == "cancelled; nothing was stored"
    assert folder.files() == []
    assert await lists.lists("renewals") == []
    async with sessions() as session:
        entries = await session.scalar(select(func.count()).select_from(CallListEntryRow))
    assert entries == 0


async def test_an_import_under_way_is_shown_nowhere_and_holds_no_writer_up(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path):
    """Its rows go in by short transactions under a staged list: other writes (SQLite has
    one writer) go on meanwhile, and the list appears only when it is whole."""
    clock = VirtualClock(T0)
    lists = await lists_of_a_campaign(sessions, clock)
    reached, release = threading.Event(), threading.Event()
    importing = asyncio.create_task(lists.import_list(
        "renewals", "november", rows_then_wait(reached, release),
        lambda: ListSummary(BATCH_ROWS + 10, BATCH_ROWS + 10, 0, 0, 0, 0)))
    try:
        await until_set(reached)  # a batch is in; the reader is stuck on the next
        assert await lists.lists("renewals") == []
        async with asyncio.timeout(2):  # well under SQLite's 5 s busy wait
            await CampaignRepository(sessions, clock).add(campaign("winback"))
    finally:
        release.set()
    stored = await asyncio.wait_for(importing, WAIT)
    assert await lists.lists("renewals") == [stored]
    assert stored.active and stored.summary.accepted == BATCH_ROWS + 10
    assert len(await lists.entries(stored.id, limit=5000)) == BATCH_ROWS + 10


async def test_the_lists_a_killed_run_was_importing_are_deleted_at_start(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path):
    clock = VirtualClock(T0)
    lists = await lists_of_a_campaign(sessions, clock)
    reached, release = threading.Event(), threading.Event()
    killed = asyncio.create_task(lists.import_list(
        "renewals", "november", rows_then_wait(reached, release),
        lambda: ListSummary(0, 0, 0, 0, 0, 0)))
    await until_set(reached)
    # The process dies here: the task never runs again, nothing cleans up after it.
    async with sessions() as session:
        staged = await session.scalar(select(func.count()).select_from(CallListEntryRow))
    assert staged == BATCH_ROWS  # a batch of a list being imported is in the database
    restarted = await upload_services(tmp_path, sessions, clock, max_megabytes=200,
                                      grace_seconds=30)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(CallListEntryRow)) == 0
        assert await session.scalar(select(func.count()).select_from(CallListRow)) == 0
    assert await restarted.lists.lists("renewals") == []
    release.set()  # let the "dead" run's thread end: its next batch has no list to go to
    with pytest.raises(IntegrityError):
        await asyncio.wait_for(killed, WAIT)


async def test_the_files_a_killed_run_left_are_deleted_at_start(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    left = [folder / "upload-0a1b2c.part", folder / "upload-ffff.part"]
    for path in left:
        path.write_bytes(b"phone\n119876")
    other = folder / "keep.txt"  # not an upload: not ours to delete
    other.write_text("x")
    services = await upload_services(tmp_path, sessions, VirtualClock(T0), max_megabytes=200,
                               grace_seconds=30)
    assert services.folder.files() == []
    assert other.exists()
    assert services.folder.limits.max_bytes == 200 * 1024 * 1024


async def test_a_new_upload_folder_is_private_and_so_are_its_files(
        served: Served, manager: TestClient):
    folder = served.uploads.folder.folder
    assert folder.stat().st_mode & 0o077 == 0
    seen: list[int] = []
    original = served.uploads.imports.start

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(args[4].path.stat().st_mode & 0o777)
        return original(*args, **kwargs)

    served.uploads.imports.start = spy  # type: ignore[method-assign]
    job = await imported(served, manager, await upload(manager, LIST_CSV))
    assert job["state"] == "done" and seen == [0o600]
