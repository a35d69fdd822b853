"""The call-list API: an upload streamed to disk and imported in the background with its
progress, the lists of a campaign (shown with their rows not taken, appended, disabled,
recycled, exported with outcomes, deleted), the roles, and the family of bad inputs each
answered with what is wrong and where, nothing half-stored."""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.campaigns import Campaign, CampaignMode
from callcenter.core.clock import VirtualClock, to_datetime
from callcenter.features.accounts.store import AccountRepository, Role
from callcenter.features.calls.store import CallRepository
from callcenter.features.campaigns.imports import Imports, ImportState, UploadServices
from callcenter.features.campaigns.lists import CallLists
from callcenter.features.campaigns.models import (
    CallListEntryRow,
    CallListRow,
    CampaignAttemptRow,
)
from callcenter.features.campaigns.store import CampaignRepository
from callcenter.features.campaigns.uploads import XLSX_TYPE, UploadFolder, UploadLimits
from callcenter.features.compliance.store import ComplianceStore
from callcenter.web.app import WebServices, make_app
from callcenter.web.limits import HttpLimits, install_body_deadline
from tests.support.web import accounts_for, client_signed_as, health_probe
from tests.unit.test_web_acd import DOCUMENT, answer_schema, check_against

T0 = 1_795_000_000.0
WAIT = 10.0  # a guard against a hung test, never a pause
CSV_TYPE = "text/csv"
LIST_CSV = ("phone,name,plan\n"
            "11 98765-4321,Ana,gold\n"
            "not a number,Bruno,silver\n"
            "+55 11 98765-4321,Ana again,gold\n"
            "(21) 3456-7890,=HYPERLINK(\"http://x\"),=1+1\n")
UPLOAD = "/api/campaigns/renewals/lists"
LISTS = "/api/campaigns/{name}/lists"  # as the document names the routes


@dataclass
class Served:
    server: TestServer
    accounts: AccountRepository
    uploads: UploadServices
    sessions: async_sessionmaker[AsyncSession]
    clock: VirtualClock

    async def client(self, *roles: Role) -> TestClient:
        return await client_signed_as(self.server, self.accounts, roles)

    async def finished(self, import_id: str) -> None:
        job = self.uploads.imports.get(import_id)
        assert job is not None and job.task is not None
        await asyncio.wait_for(asyncio.shield(job.task), WAIT)


async def serve(sessions: async_sessionmaker[AsyncSession], folder: Path,
                limits: UploadLimits | None = None, *, body_seconds: float = 30.0,
                imports: Imports | None = None) -> Served:
    clock = VirtualClock(T0)
    campaigns = CampaignRepository(sessions, clock)
    await campaigns.add(Campaign(name="renewals", mode=CampaignMode.PROGRESSIVE, queue="sales",
                                 caller_id="+551130000000", default_region="BR",
                                 hours={"mon-fri": ["09:00-20:00"]}))
    uploads = UploadServices(UploadFolder(folder, limits), imports or Imports(clock),
                             CallLists(sessions, clock))
    accounts = accounts_for(sessions)
    app = make_app(WebServices(CallRepository(sessions), health_probe(), accounts, clock,
                               campaigns=campaigns, compliance=ComplianceStore(sessions, clock),
                               queue_names=("sales",), uploads=uploads))
    install_body_deadline(app, HttpLimits(body_seconds=body_seconds))
    server = TestServer(app)
    await server.start_server()
    return Served(server, accounts, uploads, sessions, clock)


async def serving(sessions: async_sessionmaker[AsyncSession], folder: Path,
                  limits: UploadLimits | None = None, *, body_seconds: float = 30.0
                  ) -> AsyncIterator[Served]:
    """A fixture's body: the app served until the test ends, its imports stopped then."""
    it = await serve(sessions, folder, limits, body_seconds=body_seconds)
    yield it
    await it.uploads.imports.close()
    await it.server.close()


@pytest.fixture
async def served(sqlite_sessions: async_sessionmaker[AsyncSession],
                 tmp_path: Path) -> AsyncIterator[Served]:
    async for it in serving(sqlite_sessions, tmp_path / "uploads"):
        yield it


@pytest.fixture
async def manager(served: Served) -> AsyncIterator[TestClient]:
    client = await served.client(Role.CAMPAIGN_MANAGER)
    yield client
    await client.close()


async def upload(client: TestClient, data: bytes | str, *, path: str = UPLOAD,
                 content_type: str = CSV_TYPE, **query: str) -> ClientResponse:
    params = {"list": "november", "phone": "phone", "name": "name", **query}
    if path.endswith("/rows"):
        params.pop("list")
    body = data.encode() if isinstance(data, str) else data
    return await client.post(path, params={k: v for k, v in params.items() if v is not None},
                             data=body, headers={"Content-Type": content_type})


async def imported(served: Served, client: TestClient, answer: ClientResponse
                   ) -> dict[str, Any]:
    """The import the upload started, once it has ended, as GET answers it."""
    started = await answer.json()
    assert answer.status == 202, started
    check_against(answer_schema("POST", LISTS, 202), started)
    assert answer.headers["Location"] == f"/api/imports/{started['id']}"
    await served.finished(started["id"])
    shown = await client.get(answer.headers["Location"])
    body = await shown.json()
    assert shown.status == 200, body
    check_against(answer_schema("GET", "/api/imports/{import_id}", 200), body)
    return body


async def count(served: Served, table: type) -> int:
    async with served.sessions() as session:
        return (await session.execute(select(func.count()).select_from(table))).scalar_one()


# --------------------------------------------------------------------------- upload, progress


async def test_an_upload_is_imported_in_the_background_with_its_progress_and_counts(
        served: Served, manager: TestClient):
    job = await imported(served, manager, await upload(manager, LIST_CSV))
    assert (job["state"], job["kind"], job["target"], job["created_by"]) == (
        "done", "call_list", "november", "campaign_manager")
    assert (job["rows_done"], job["rows_total"], job["size_bytes"]) == (
        4, 4, len(LIST_CSV.encode()))
    assert job["counts"] == {"rows_read": 4, "accepted": 2, "rejected": 1, "duplicates": 1,
                             "blank_rows": 0}
    listed = job["call_list"]
    assert (listed["name"], listed["active"], listed["accepted"], listed["uploads"]) == (
        "november", True, 2, 1)
    assert served.uploads.folder.files() == []  # the file is gone once imported
    lists = await (await manager.get(UPLOAD)).json()
    check_against(answer_schema("GET", LISTS, 200), lists)
    assert [entry["id"] for entry in lists["lists"]] == [listed["id"]]


async def test_progress_is_reported_while_reading_rows_done_of_the_counted_total(
        served: Served, manager: TestClient):
    rows = "".join(f"(11) 9{i:08d},Customer {i}\n" for i in range(2500))
    answer = await upload(manager, "phone,name\n" + rows)
    job = served.uploads.imports.get((await answer.json())["id"])
    assert job is not None
    seen: list[tuple[int, int | None]] = []
    async with asyncio.timeout(WAIT):
        while job.state is not ImportState.DONE:
            seen.append((job.rows_done, job.rows_total))
            await asyncio.sleep(0)  # let the import run a step; a poll, not a pause
    assert (job.rows_done, job.rows_total) == (2500, 2500)
    assert any(0 < done < 2500 for done, _total in seen), "progress seen part-way"


async def test_an_xlsx_upload_is_read_with_its_sheet_rows(served: Served,
                                                          manager: TestClient):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in (["Phone", "Name"], [5511987654321, "Ana"], ["x", "Bad"]):
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    job = await imported(served, manager, await upload(
        manager, buffer.getvalue(), content_type=XLSX_TYPE, phone="Phone", name="Name"))
    assert job["state"] == "done", job
    assert job["counts"]["accepted"] == 1 and job["counts"]["rejected"] == 1
    detail = await (await manager.get(f"{UPLOAD}/{job['call_list']['id']}")).json()
    assert [(p["upload"], p["line"]) for p in detail["problems"]] == [(1, 3)]


# --------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(("data", "query", "error", "line"), [
    ("name,plan\nAna,gold\n", {}, "line 1: the header has no column 'phone'", 1),
    ("phone,name\n", {}, "no rows", None),
    ("phone,name,phone\n1,2,3\n", {}, "appears twice in the header", 1),
    ("phone,name\n11987654321,Jos\xe9\n".encode("latin-1"), {},
     "line 2: byte 16 (b'\\xe9\\n') is not UTF-8 text", 2),
    ("phone,name\n" + "1" * 70_000 + "\n", {}, "line 2: longer than 65536 characters", 2),
    ("phone,name\n11987654321,\"open quote\n", {}, "line 2", 2),
    (b"\x00" * 200, {}, "the file is full of NUL bytes", 1),
])
async def test_a_file_refused_as_a_whole_fails_its_import_saying_what_and_where_and_stores_nothing(
        served: Served, manager: TestClient, data: bytes | str, query: dict[str, str],
        error: str, line: int | None):
    job = await imported(served, manager, await upload(manager, data, **query))
    assert job["state"] == "failed", job
    assert error in job["error"] and job["error"].endswith("nothing was stored"), job["error"]
    assert job["error_line"] == line
    assert job["call_list"] is None
    assert await count(served, CallListRow) == 0
    assert served.uploads.folder.files() == []


async def test_a_file_in_a_named_encoding_is_read_in_it(served: Served, manager: TestClient):
    data = "phone,name\n11987654321,José\n".encode("cp1252")
    job = await imported(served, manager, await upload(manager, data, encoding="cp1252"))
    assert job["state"] == "done", job
    entries = await served.uploads.lists.entries(job["call_list"]["id"])
    assert entries[0]["name"] == "José"


async def test_rows_with_bad_numbers_nul_extra_cells_and_bad_zones_are_each_reported(
        served: Served, manager: TestClient):
    data = ("phone,name,tz\n"
            "11987654321,Ana,\n"
            "123,Short,\n"
            "11987654322,Nul\x00,\n"
            "11987654323,Extra,,surplus\n"
            "11987654324,Zone,Mars/Olympus\n"
            "11 98765-4321,Again,\n"
            "11987654325,Short row\n")
    job = await imported(served, manager, await upload(manager, data, time_zone="tz"))
    assert job["counts"] == {"rows_read": 7, "accepted": 2, "rejected": 4, "duplicates": 1,
                             "blank_rows": 0}
    detail = await (await manager.get(f"{UPLOAD}/{job['call_list']['id']}")).json()
    check_against(answer_schema("GET", LISTS + "/{list_id}", 200), detail)
    reasons = {p["line"]: p["reason"] for p in detail["problems"]}
    assert sorted(reasons) == [3, 4, 5, 6, 7]
    assert "too short" in reasons[3]
    assert "NUL" in reasons[4]
    assert "which has no name" in reasons[5]
    assert "'Mars/Olympus' is not a known IANA time zone" in reasons[6]
    assert reasons[7] == "+5511987654321 is already on line 2"
    page = await (await manager.get(f"{UPLOAD}/{job['call_list']['id']}",
                                    params={"limit": "2", "offset": "1"})).json()
    assert [p["line"] for p in page["problems"]] == [4, 5]


@pytest.mark.parametrize(("query", "error"), [
    ({"phone": None}, "phone: is required"),
    ({"list": None}, "list: is required"),
    ({"list": "  "}, "list: expected text of 1 to 80 characters"),
    ({"list": "x" * 81}, "list: expected text of 1 to 80 characters"),
    ({"list": "nov\x00"}, "list: contains a NUL character"),
    ({"name": "phone"}, "column mapping: column 'phone' is mapped twice (phone and name)"),
    ({"encoding": "utf-7"}, "encoding: 'utf-7' is not read; use one of utf-8, cp1252"),
    ({"columns": "x"}, "unknown parameter 'columns'"),
])
async def test_a_bad_upload_query_is_a_400_naming_it_before_the_body_is_read(
        served: Served, manager: TestClient, query: dict[str, str | None], error: str):
    answer = await upload(manager, LIST_CSV, **query)  # type: ignore[arg-type]
    body = await answer.json()
    assert answer.status == 400, body
    assert error in body["error"], body["error"]
    assert served.uploads.folder.files() == [] and await count(served, CallListRow) == 0


async def test_unknown_campaign_list_and_import_are_404(served: Served, manager: TestClient):
    answer = await upload(manager, LIST_CSV, path="/api/campaigns/nope/lists", list="x")
    assert answer.status == 404, await answer.text()
    assert "'nope': no such campaign" in (await answer.json())["error"]
    for method, path in [("GET", f"{UPLOAD}/99"), ("PATCH", f"{UPLOAD}/99"),
                         ("POST", f"{UPLOAD}/99/recycle"), ("GET", f"{UPLOAD}/99/export"),
                         ("DELETE", f"{UPLOAD}/99"), ("GET", "/api/imports/0123456789abcdef"),
                         ("DELETE", "/api/imports/0123456789abcdef")]:
        answer = await manager.request(method, path, json={"active": False}
                                       if method == "PATCH" else None)
        assert answer.status == 404, (method, path, await answer.text())
    appended = await upload(manager, LIST_CSV, path=f"{UPLOAD}/99/rows")
    assert appended.status == 404
    bad = await manager.get(f"{UPLOAD}/x1")
    assert bad.status == 400 and "list_id" in (await bad.json())["error"]


async def test_a_retried_upload_is_refused_while_under_way_and_once_stored(
        served: Served, manager: TestClient):
    slots = served.uploads.imports._slots
    async with slots:  # the import waits for a slot: it stays under way meanwhile
        first = await upload(manager, LIST_CSV)
        assert first.status == 202
        again = await upload(manager, LIST_CSV)
        assert again.status == 409
        assert "is under way; see /api/imports/" in (await again.json())["error"]
        queued = await (await manager.get(first.headers["Location"])).json()
        assert queued["state"] == "queued"
    await served.finished((await first.json())["id"])
    later = await upload(manager, LIST_CSV)
    assert later.status == 409
    assert "has a list named 'november'" in (await later.json())["error"]
    assert await count(served, CallListRow) == 1
    assert served.uploads.folder.files() == []


async def test_managers_and_admins_write_supervisors_read_agents_nothing(
        served: Served, manager: TestClient):
    job = await imported(served, manager, await upload(manager, LIST_CSV))
    list_path = f"{UPLOAD}/{job['call_list']['id']}"
    supervisor = await served.client(Role.SUPERVISOR)
    agent = await served.client(Role.AGENT)
    admin = await served.client(Role.ADMIN)
    for path in (UPLOAD, list_path, f"{list_path}/export", f"/api/imports/{job['id']}"):
        assert (await supervisor.get(path)).status == 200, path
        assert (await agent.get(path)).status == 403, path
    assert (await upload(supervisor, LIST_CSV, list="other")).status == 403
    assert (await supervisor.patch(list_path, json={"active": False})).status == 403
    assert (await supervisor.post(f"{list_path}/recycle")).status == 403
    assert (await supervisor.delete(list_path)).status == 403
    assert (await supervisor.delete(f"/api/imports/{job['id']}")).status == 403
    assert (await upload(supervisor, LIST_CSV, path=f"{list_path}/rows")).status == 403
    assert (await admin.patch(list_path, json={"active": False})).status == 200
    assert served.uploads.folder.files() == []
    for client in (supervisor, agent, admin):
        await client.close()


# --------------------------------------------------------------------------- the lists


async def test_appended_rows_are_checked_against_the_list_and_counted_with_it(
        served: Served, manager: TestClient):
    job = await imported(served, manager, await upload(manager, LIST_CSV))
    list_id = job["call_list"]["id"]
    more = ("Telefone,Nome\n"
            "(21) 99999-0000,Dora\n"
            "+55 11 98765-4321,Ana third time\n"
            "garbage,Eva\n")
    appended = await imported(served, manager, await upload(
        manager, more, path=f"{UPLOAD}/{list_id}/rows", phone="telefone", name="nome"))
    assert appended["state"] == "done" and appended["kind"] == "call_list_rows", appended
    assert appended["counts"] == {"rows_read": 3, "accepted": 1, "rejected": 1,
                                  "duplicates": 1, "blank_rows": 0}
    whole = appended["call_list"]
    assert (whole["uploads"], whole["rows_read"], whole["accepted"], whole["duplicates"]) == (
        2, 7, 3, 2)
    detail = await (await manager.get(f"{UPLOAD}/{list_id}")).json()
    second = [p for p in detail["problems"] if p["upload"] == 2]
    assert (second[0]["line"], second[0]["reason"]) == (
        3, "+5511987654321 is already in the list (line 2 of upload 1)")
    assert second[1]["line"] == 4
    entries = await served.uploads.lists.entries(list_id)
    assert [(e["upload"], e["line"], e["name"]) for e in entries][-1] == (2, 2, "Dora")


async def test_an_append_that_fails_half_way_adds_nothing(served: Served,
                                                          manager: TestClient):
    job = await imported(served, manager, await upload(manager, LIST_CSV))
    list_id = job["call_list"]["id"]
    rows = "".join(f"(11) 9{i:08d},C{i}\n" for i in range(1500))
    broken = "phone,name\n" + rows + "1" * 70_000 + "\n"
    failed = await imported(served, manager, await upload(
        manager, broken, path=f"{UPLOAD}/{list_id}/rows"))
    assert failed["state"] == "failed" and failed["error_line"] == 1502, failed
    assert await count(served, CallListEntryRow) == 2
    shown = await (await manager.get(f"{UPLOAD}/{list_id}")).json()
    assert shown["call_list"]["uploads"] == 1 and shown["call_list"]["rows_read"] == 4


async def test_a_list_is_disabled_enabled_and_recycled(served: Served, manager: TestClient):
    job = await imported(served, manager, await upload(manager, LIST_CSV))
    path = f"{UPLOAD}/{job['call_list']['id']}"
    off = await manager.patch(path, json={"active": False})
    assert off.status == 200 and (await off.json())["active"] is False
    assert (await (await manager.get(UPLOAD)).json())["lists"][0]["active"] is False
    on = await manager.patch(path, json={"active": True})
    assert (await on.json())["active"] is True
    bad = await manager.patch(path, json={"active": "no"})
    assert bad.status == 400 and "active: expected true or false" in (await bad.json())["error"]
    assert job["call_list"]["recycled_at"] is None
    served.clock.advance(3600)
    recycled = await manager.post(f"{path}/recycle")
    body = await recycled.json()
    assert recycled.status == 200, body
    check_against(answer_schema("POST", LISTS + "/{list_id}/recycle", 200), body)
    assert body["recycled_at"] == "2026-11-18T12:06:40Z"


async def test_a_list_never_dialled_is_deleted_a_dialled_one_must_be_disabled(
        served: Served, manager: TestClient):
    first = await imported(served, manager, await upload(manager, LIST_CSV))
    second = await imported(served, manager, await upload(manager, LIST_CSV, list="december"))
    await dial(served, second["call_list"]["id"], "no_answer", None)
    gone = await manager.delete(f"{UPLOAD}/{first['call_list']['id']}")
    assert gone.status == 204
    kept = await manager.delete(f"{UPLOAD}/{second['call_list']['id']}")
    assert kept.status == 409
    assert "has been dialled (1 calls): its history stays; disable it instead" in (
        await kept.json())["error"]
    assert [entry["name"] for entry in (await (await manager.get(UPLOAD)).json())["lists"]] \
        == ["december"]
    assert await count(served, CallListEntryRow) == 2


async def dial(served: Served, list_id: int, outcome: str, disposition: str | None,
               number: str = "+5511987654321") -> None:
    """An attempt as the dialer records it."""
    async with served.sessions.begin() as session:
        entry_id = await session.scalar(select(CallListEntryRow.id).where(
            CallListEntryRow.list_id == list_id, CallListEntryRow.number == number))
        attempts = await session.scalar(select(func.count()).select_from(
            CampaignAttemptRow).where(CampaignAttemptRow.entry_id == entry_id))
        await session.execute(insert(CampaignAttemptRow).values(
            campaign="renewals", list_id=list_id, entry_id=entry_id, number=number,
            attempt=attempts + 1, placed_at=to_datetime(served.clock.now()),
            outcome=outcome, disposition=disposition, abandoned=False))
    served.clock.advance(60)


async def test_the_export_has_every_number_with_its_outcomes_and_formulas_escaped(
        served: Served, manager: TestClient):
    job = await imported(served, manager, await upload(manager, LIST_CSV))
    list_id = job["call_list"]["id"]
    await dial(served, list_id, "no_answer", None)
    await dial(served, list_id, "human", "sale")
    await dial(served, list_id, "busy", None)
    exported = await manager.get(f"{UPLOAD}/{list_id}/export")
    assert exported.status == 200
    assert exported.content_type == "text/csv"
    assert 'filename="renewals-list-' in exported.headers["Content-Disposition"]
    raw = await exported.read()
    assert raw.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["upload", "line", "number", "name", "time_zones", "plan", "attempts",
                       "last_outcome", "last_disposition", "last_call_at"]
    assert rows[1] == ["1", "2", "+5511987654321", "Ana", "America/Sao_Paulo", "gold", "3",
                       "busy", "sale", "2026-11-18T11:08:40Z"]
    assert rows[2] == ["1", "5", "+552134567890", "'=HYPERLINK(\"http://x\")",
                       "America/Sao_Paulo", "'=1+1", "0", "", "", ""]
    assert len(rows) == 3


@pytest.mark.parametrize("value", ["=cmd", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
async def test_every_formula_start_is_escaped_in_the_export(served: Served,
                                                            manager: TestClient, value: str):
    data = io.StringIO()
    csv.writer(data).writerows([["phone", "name", value], ["11987654321", value, value]])
    job = await imported(served, manager, await upload(manager, data.getvalue()))
    raw = await (await manager.get(f"{UPLOAD}/{job['call_list']['id']}/export")).read()
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    trimmed = value.strip()  # a header name and the name are kept without surrounding blanks
    escaped_trimmed = "'" + trimmed if trimmed == value else trimmed
    assert rows[0][5] == rows[1][3] == escaped_trimmed
    assert rows[1][5] == "'" + value  # an extra field is kept as written


def test_the_upload_routes_document_their_file_bodies_and_refusals():
    operation = DOCUMENT["paths"][LISTS]["post"]
    assert set(operation["requestBody"]["content"]) == {CSV_TYPE, XLSX_TYPE}
    assert {"202", "400", "403", "404", "408", "409", "413", "415", "503"} <= set(
        operation["responses"])
    assert operation["x-roles"] == ["admin", "campaign_manager"]
    assert {p["name"] for p in operation["parameters"]} == {
        "name", "list", "phone", "time_zone", "encoding", "sheet"}
