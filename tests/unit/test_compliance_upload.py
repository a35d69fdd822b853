"""Do-not-call and consent files through the streamed upload path: each row checked as the
API checks one entry, rejects with their line, the good rows stored in one transaction (on
both databases), a whole-file fault or a failure half-way storing nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.clock import VirtualClock
from callcenter.core.consent import ConsentKind, ConsentSource
from callcenter.features.accounts.store import Role
from callcenter.features.compliance.store import ComplianceStore
from callcenter.features.compliance.uploads import ConsentIn, DoNotCallIn
from tests.unit.test_call_list_api import Served, serving
from tests.unit.test_call_list_api import manager as manager  # the fixture, on served below
from tests.unit.test_web_acd import answer_schema, check_against

T0 = 1_795_000_000.0
DNC = "/api/do-not-call/uploads"
CONSENTS = "/api/consents/uploads"


@pytest.fixture
async def served(sqlite_sessions: async_sessionmaker[AsyncSession],
                 tmp_path: Path) -> AsyncIterator[Served]:
    async for it in serving(sqlite_sessions, tmp_path / "uploads"):
        yield it


async def send(served: Served, client: TestClient, path: str, data: bytes | str,
               **query: str) -> dict[str, Any]:
    """Upload ``data``; the import as GET answers it once it has ended."""
    body = data.encode() if isinstance(data, str) else data
    answer = await client.post(path, params=query, data=body,
                               headers={"Content-Type": "text/csv"})
    started = await answer.json()
    assert answer.status == 202, started
    check_against(answer_schema("POST", path, 202), started)
    await served.finished(started["id"])
    return await (await client.get(f"/api/imports/{started['id']}")).json()


async def listed(client: TestClient, campaign: str | None = None) -> list[tuple[str, str]]:
    params = {"campaign": campaign} if campaign else {}
    body = await (await client.get("/api/do-not-call", params=params)).json()
    return [(e["number"], e["reason"]) for e in body["entries"]]


# --------------------------------------------------------------------------- do not call


async def test_a_do_not_call_file_lists_the_good_numbers_and_rejects_the_rest_by_line(
        served: Served, manager: TestClient):
    before = await manager.post("/api/do-not-call", json={"number": "+5511999990001",
                                                          "reason": "asked by phone"})
    assert before.status == 201
    data = ("Phone,Why\n"
            "+5511999990000,\n"
            "+5511999990001,again\n"
            "11 99999-0002,\n"
            "+5511999990000,twice\n"
            "+5511999990003,Bad\x00reason\n"
            "\n"
            "+5511999990004,wants none\n")
    job = await send(served, manager, DNC, data, number="phone", reason="registry 2026-12",
                     reason_column="why")
    assert (job["state"], job["kind"], job["target"]) == (
        "done", "do_not_call", "global do-not-call"), job
    assert job["counts"] == {"rows_read": 6, "accepted": 2, "rejected": 3, "duplicates": 1,
                             "blank_rows": 1}
    assert job["rejects"] == [
        {"line": 4, "reason": "number: '11 99999-0002' is not an E.164 number (+, then 8-15 "
                              "digits); name the region of numbers written without +"},
        {"line": 5, "reason": "+5511999990000 is already on line 2"},
        {"line": 6, "reason": "reason: contains a NUL character"},
    ]
    assert await listed(manager) == [("+5511999990001", "asked by phone"),
                                     ("+5511999990000", "registry 2026-12"),
                                     ("+5511999990004", "wants none")]
    assert job["rows_done"] == 6 and job["rows_total"] == 7  # lines after the header


async def test_with_a_region_national_numbers_are_listed_for_one_campaign(
        served: Served, manager: TestClient):
    job = await send(served, manager, DNC, "number\n(11) 99999-0002\n12\n", number="number",
                     reason="crm", region="BR", campaign="renewals")
    assert job["counts"]["accepted"] == 1 and job["counts"]["rejected"] == 1, job
    assert job["target"] == "do-not-call of renewals"
    assert await listed(manager, "renewals") == [("+5511999990002", "crm")]
    assert await listed(manager) == []


@pytest.mark.parametrize(("data", "error", "line"), [
    ("tel\n+5511999990000\n", "line 1: the header has no column 'number'", 1),
    ("number\n+5511999990000\n+55119\xe9\n".encode("latin-1"), "line 3: byte", 3),
    (b"", "the file is empty", None),
    ("number\n\"+5511999990000\n", "line 2", 2),
])
async def test_a_bad_do_not_call_file_stores_nothing_and_says_where(
        served: Served, manager: TestClient, data: bytes | str, error: str,
        line: int | None):
    if data == b"":
        answer = await manager.post(DNC, params={"number": "number", "reason": "x"},
                                    data=b"", headers={"Content-Type": "text/csv"})
        assert answer.status == 400  # refused before an import starts
        return
    job = await send(served, manager, DNC, data, number="number", reason="x")
    assert job["state"] == "failed" and error in job["error"], job
    assert job["error_line"] == line
    assert await listed(manager) == []


@pytest.mark.parametrize(("path", "query", "error"), [
    (DNC, {"number": "n"}, "reason: is required"),
    (DNC, {"reason": "x"}, "number: is required"),
    (DNC, {"number": "n", "reason": "x", "campaign": "Bad Name"}, "campaign: 'Bad Name' is "
                                                                  "not a campaign name"),
    (DNC, {"number": "n", "reason": "x", "region": "bra"}, "region: 'bra' is not a two-letter"),
    (DNC, {"number": "n", "reason": "x" * 501}, "reason: expected text of 1 to 500"),
    (CONSENTS, {"number": "n"}, "proof: is required"),
    (CONSENTS, {"number": "n", "proof": "p", "source": "fax"}, "source: 'fax' is not one of"),
    (CONSENTS, {"number": "n", "proof": "p", "encoding": "ebcdic"}, "encoding: 'ebcdic' is "
                                                                    "not read"),
])
async def test_a_bad_upload_query_is_a_400_naming_it(served: Served, manager: TestClient,
                                                     path: str, query: dict[str, str],
                                                     error: str):
    answer = await manager.post(path, params=query, data=b"number\n+5511999990000\n",
                                headers={"Content-Type": "text/csv"})
    body = await answer.json()
    assert answer.status == 400 and error in body["error"], body
    assert served.uploads.folder.files() == []


async def test_only_managers_and_admins_upload_and_only_csv(served: Served,
                                                            manager: TestClient):
    supervisor = await served.client(Role.SUPERVISOR)
    for path, query in ((DNC, {"number": "n", "reason": "x"}),
                        (CONSENTS, {"number": "n", "proof": "p"})):
        refused = await supervisor.post(path, params=query, data=b"n\n",
                                        headers={"Content-Type": "text/csv"})
        assert refused.status == 403
        xlsx = await manager.post(path, params=query,
                                  data=b"PK\x03\x04", headers={
                                      "Content-Type": "application/vnd.openxmlformats-"
                                                      "officedocument.spreadsheetml.sheet"})
        assert xlsx.status == 415
        assert "Content-Type text/csv, not" in (await xlsx.json())["error"]
    await supervisor.close()


# --------------------------------------------------------------------------- consents


async def test_a_consent_file_appends_grants_and_revocations_and_a_resend_adds_nothing(
        served: Served, manager: TestClient):
    data = ("number,proof,kind,when\n"
            "+5511999990000,web form #1,granted,2026-11-01T10:00:00Z\n"
            "+5511999990000,phone call #7,REVOKED,2026-11-02T10:00:00Z\n"
            "+5511999990001,web form #2,,\n"
            "+5511999990002,,granted,\n"
            "+5511999990003,form,maybe,\n"
            "+5511999990004,form,granted,2027-01-01T00:00:00Z\n"
            "+5511999990005,form,granted,yesterday\n")
    query = {"number": "number", "proof": "proof", "kind": "kind", "at": "when",
             "campaign": "renewals"}
    job = await send(served, manager, CONSENTS, data, **query)
    assert (job["state"], job["kind"]) == ("done", "consents"), job
    assert job["counts"] == {"rows_read": 7, "accepted": 3, "rejected": 4, "duplicates": 0,
                             "blank_rows": 0}
    assert [(r["line"], r["reason"]) for r in job["rejects"]] == [
        (5, "proof: is empty"),
        (6, "kind: 'maybe' is not one of granted, revoked"),
        (7, "at: '2027-01-01T00:00:00Z' is in the future"),
        (8, "at: 'yesterday' is not an ISO 8601 time (e.g. 2026-11-28T21:00:00Z)"),
    ]
    trail = await (await manager.get("/api/consents",
                                     params={"number": "+5511999990000"})).json()
    assert [(e["kind"], e["at"], e["source"], e["campaign"], e["recorded_by"])
            for e in trail["entries"]] == [
        ("granted", "2026-11-01T10:00:00Z", "import", "renewals", "campaign_manager"),
        ("revoked", "2026-11-02T10:00:00Z", "import", "renewals", "campaign_manager")]
    again = await send(served, manager, CONSENTS, data, **query)  # a retry: nothing doubled
    assert again["counts"]["accepted"] == 0 and again["counts"]["duplicates"] == 3, again
    served.clock.advance(60)  # a row without a time is dated now: later, it is a new entry
    later = await send(served, manager, CONSENTS, data, **query)
    assert later["counts"]["accepted"] == 1 and later["counts"]["duplicates"] == 2, later


# --------------------------------------------------------------------------- the store


@pytest.fixture
def store(sessions: async_sessionmaker[AsyncSession]) -> ComplianceStore:
    return ComplianceStore(sessions, VirtualClock(T0))


def failing_after(rows: list[Any]) -> Iterator[Any]:
    yield from rows
    raise ValueError("line 1502: broken quoting")


async def test_a_do_not_call_import_is_all_or_nothing_and_keeps_first_entries(
        store: ComplianceStore):
    await store.add_do_not_call("+5511999900001", None, source="api", reason="first")
    rows = [DoNotCallIn(i + 2, f"+55119999{i:05d}", "file") for i in range(2500)]
    with pytest.raises(ValueError, match="line 1502"):
        await store.import_do_not_call(None, failing_after(rows), source="import",
                                       added_by="ana")
    assert len(await store.list_do_not_call(None, 500)) == 1
    imported = await store.import_do_not_call(None, iter(rows), source="import",
                                              added_by="ana")
    assert (imported.added, imported.already) == (2499, 1)
    assert (await store.do_not_call_entries("+5511999900001"))[0].reason == "first"
    assert len(await store.list_do_not_call(None, 500, 2000)) == 500


async def test_a_consent_import_is_all_or_nothing_and_a_resent_entry_is_not_doubled(
        store: ComplianceStore):
    rows = [ConsentIn(2, "+5511999990000", ConsentKind.GRANTED, T0 - 86400, "form #1"),
            ConsentIn(3, "+5511999990000", ConsentKind.REVOKED, T0 - 3600, "call #2"),
            ConsentIn(4, "+5511999990001", ConsentKind.GRANTED, None, "form #3")]
    with pytest.raises(ValueError):
        await store.import_consents("renewals", failing_after(rows),
                                    source=ConsentSource.IMPORT, recorded_by="ana")
    assert await store.consent_entries("+5511999990000") == []
    first = await store.import_consents("renewals", iter(rows), source=ConsentSource.IMPORT,
                                        recorded_by="ana")
    assert (first.added, first.already) == (3, 0)
    again = await store.import_consents("renewals", iter(rows[:2]),
                                        source=ConsentSource.IMPORT, recorded_by="ana")
    assert (again.added, again.already) == (0, 2)
    trail = await store.consent_entries("+5511999990000")
    assert [(e.kind, e.at, e.campaign) for e in trail] == [
        (ConsentKind.GRANTED, T0 - 86400, "renewals"), (ConsentKind.REVOKED, T0 - 3600,
                                                        "renewals")]
    assert not (await store.consent("+5511999990000", "renewals")).granted
