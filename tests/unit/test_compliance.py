"""Do-not-call and consent: what the ledger says (core/consent.py, with hypothesis), the
store on both databases (append-only, strict E.164), and the routes with their roles."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.clock import VirtualClock
from callcenter.core.consent import (
    ConsentEntry,
    ConsentKind,
    ConsentSource,
    DoNotCall,
    consent_now,
    on_do_not_call,
)
from callcenter.features.accounts.store import Role
from callcenter.features.calls.store import CallRepository
from callcenter.features.compliance.store import ComplianceStore
from callcenter.web.app import WebServices, make_app
from tests.support.web import accounts_for, client_signed_as, health_probe
from tests.unit.test_web_acd import answer_schema, check_against

T0 = 1_795_000_000.0
NUMBER = "+5511999990000"


def entry(kind: ConsentKind, at: float, campaign: str | None = "renewals", number: str = NUMBER,
          id: int | None = None) -> ConsentEntry:
    return ConsentEntry(number, campaign, kind, at, ConsentSource.API, "proof", id=id)


GRANTED, REVOKED = ConsentKind.GRANTED, ConsentKind.REVOKED


# --------------------------------------------------------------------------- the ledger


def test_nothing_recorded_is_no_consent():
    now = consent_now([], "renewals", T0)
    assert (now.granted, now.revoked, now.entry) == (False, False, None)


def test_a_revocation_wins_over_an_earlier_grant_and_a_later_grant_lifts_it():
    grant, revoke, again = entry(GRANTED, T0, id=1), entry(REVOKED, T0 + 10, id=2), \
        entry(GRANTED, T0 + 20, id=3)
    assert consent_now([grant], "renewals", T0 + 5).granted
    assert consent_now([grant, revoke], "renewals", T0 + 15).revoked
    # A revocation counts whatever its time (a skewed clock never postpones it); a grant
    # dated later does not count yet.
    assert consent_now([grant, revoke], "renewals", T0 + 5).revoked
    assert not consent_now([again], "renewals", T0 + 5).granted
    assert consent_now([again, grant, revoke], "renewals", T0 + 25).granted


def test_an_entry_for_every_campaign_applies_to_each_and_another_campaign_s_to_none():
    everywhere = entry(REVOKED, T0 + 10, campaign=None, id=2)
    grant = entry(GRANTED, T0, id=1)
    assert consent_now([grant, everywhere], "renewals", T0 + 20).revoked
    other = entry(GRANTED, T0, campaign="winback", id=3)
    assert not consent_now([other], "renewals", T0 + 20).granted


def test_in_the_same_second_the_revocation_wins_whichever_was_written_first():
    assert consent_now([entry(GRANTED, T0, id=1), entry(REVOKED, T0, id=2)], "renewals",
                       T0).revoked
    assert consent_now([entry(REVOKED, T0, id=1), entry(GRANTED, T0, id=2)], "renewals",
                       T0).revoked


ENTRIES = st.lists(st.tuples(st.sampled_from([GRANTED, REVOKED]),
                             st.integers(0, 100), st.sampled_from(["renewals", None, "other"])),
                   max_size=12)


@given(ENTRIES, st.integers(0, 120))
def test_granted_only_by_a_grant_made_by_then_and_after_every_revocation(raw, at):
    entries = [entry(kind, T0 + t, campaign=c, id=i + 1) for i, (kind, t, c) in enumerate(raw)]
    now = consent_now(reversed(entries), "renewals", T0 + at)
    applying = [e for e in entries if e.campaign in ("renewals", None)]
    grants = [e.at for e in applying if e.kind is GRANTED and e.at <= T0 + at]
    revocations = [e.at for e in applying if e.kind is REVOKED]
    expected = bool(grants) and all(r < max(grants) for r in revocations)
    assert now.granted == expected
    assert now.revoked == (bool(revocations) and not expected)
    if now.entry is not None:
        assert now.entry in applying


def test_the_global_do_not_call_list_forbids_every_campaign_a_campaign_s_only_its_own():
    glob = DoNotCall(NUMBER, None, T0, "api", "asked")
    own = DoNotCall(NUMBER, "renewals", T0, "agent", "do_not_call disposition")
    assert on_do_not_call([own, glob], NUMBER, "winback") == glob
    assert on_do_not_call([own], NUMBER, "renewals") == own
    assert on_do_not_call([own], NUMBER, "winback") is None
    assert on_do_not_call([own], "+5511888880000", "renewals") is None


# --------------------------------------------------------------------------- the store


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def store(sessions: async_sessionmaker[AsyncSession], clock: VirtualClock) -> ComplianceStore:
    return ComplianceStore(sessions, clock)


async def test_the_ledger_keeps_every_entry_in_order_and_says_what_holds_now(
        store: ComplianceStore, clock: VirtualClock):
    await store.record_consent(NUMBER, "renewals", GRANTED, source=ConsentSource.API,
                               proof="web form #1", recorded_by="ana")
    assert (await store.consent(NUMBER, "renewals")).granted
    clock.advance(60)
    await store.record_consent(NUMBER, None, REVOKED, source=ConsentSource.IVR,
                               proof="pressed 9 on the safe-harbor message")
    now = await store.consent(NUMBER, "renewals")
    assert now.revoked and now.entry is not None and now.entry.source is ConsentSource.IVR
    history = await store.consent_entries(NUMBER)
    assert [(e.kind, e.campaign, e.at) for e in history] == [
        (GRANTED, "renewals", T0), (REVOKED, None, T0 + 60)]


async def test_a_number_listed_twice_keeps_its_first_entry(store: ComplianceStore):
    first = await store.add_do_not_call(NUMBER, None, source="api", reason="asked")
    again = await store.add_do_not_call(NUMBER, None, source="agent", reason="again")
    assert again == first
    own = await store.add_do_not_call(NUMBER, "renewals", source="agent", reason="dispo")
    assert await store.blocked(NUMBER, "winback") == first
    assert [e.campaign for e in await store.list_do_not_call(None)] == [None]
    assert await store.list_do_not_call("renewals") == [own]


@pytest.mark.parametrize("number", ["5511999990000", "+0511999990000", "+55 11 99999",
                                    "+5511999990000\n", ""])
async def test_a_number_that_is_not_strict_e164_is_refused_and_nothing_stored(
        store: ComplianceStore, number: str):
    with pytest.raises(ValueError, match=r"number: .* is not an E\.164 number"):
        await store.add_do_not_call(number, None, source="api", reason="x")
    with pytest.raises(ValueError, match=r"number: .* is not an E\.164 number"):
        await store.record_consent(number, None, GRANTED, source=ConsentSource.API,
                                   proof="x")
    assert await store.list_do_not_call(None) == []


# --------------------------------------------------------------------------- the routes


@pytest.fixture
async def server(sqlite_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Any]:
    accounts = accounts_for(sqlite_sessions)
    services = WebServices(CallRepository(sqlite_sessions), health_probe(), accounts,
                           VirtualClock(T0),
                           compliance=ComplianceStore(sqlite_sessions, VirtualClock(T0)))
    server = TestServer(make_app(services))
    await server.start_server()
    yield server, accounts
    await server.close()


async def client_as(server: Any, *roles: Role) -> TestClient:
    return await client_signed_as(server[0], server[1], roles)


async def test_a_manager_lists_a_number_and_records_consent_supervisors_read_agents_not(
        server: Any):
    manager = await client_as(server, Role.CAMPAIGN_MANAGER)
    listed = await manager.post("/api/do-not-call", json={"number": NUMBER, "reason": "asked"})
    body = await listed.json()
    assert listed.status == 201, body
    check_against(answer_schema("POST", "/api/do-not-call", 201), body)
    assert (body["campaign"], body["added_by"]) == (None, "campaign_manager")
    consent = await manager.post("/api/consents", json={
        "number": NUMBER, "campaign": "renewals", "kind": "revoked", "proof": "by email"})
    assert consent.status == 201, await consent.text()
    supervisor = await client_as(server, Role.SUPERVISOR)
    history = await supervisor.get("/api/consents", params={"number": NUMBER})
    body = await history.json()
    assert history.status == 200, body
    check_against(answer_schema("GET", "/api/consents", 200), body)
    assert [e["kind"] for e in body["entries"]] == ["revoked"]
    page = await (await supervisor.get("/api/do-not-call")).json()
    assert [e["number"] for e in page["entries"]] == [NUMBER]
    assert (await supervisor.post("/api/do-not-call", json={
        "number": NUMBER, "reason": "x"})).status == 403
    agent = await client_as(server, Role.AGENT)
    assert (await agent.get("/api/consents", params={"number": NUMBER})).status == 403
    for client in (manager, supervisor, agent):
        await client.close()


@pytest.mark.parametrize(("path", "sent", "error"), [
    ("/api/do-not-call", {"number": "11999990000", "reason": "x"},
     "body: number: '11999990000' is not an E.164 number"),
    ("/api/do-not-call", {"number": NUMBER, "reason": ""}, "body: reason: expected text of 1"),
    ("/api/do-not-call", {"number": NUMBER, "reason": "x", "campaign": "Bad"},
     "body: campaign: 'Bad' is not a campaign name"),
    ("/api/do-not-call", {"number": NUMBER, "reason": "asked\x00"},
     "body: reason: contains a NUL character, which cannot be stored"),
    ("/api/consents", {"number": NUMBER, "kind": "granted", "proof": "\x00"},
     "body: proof: contains a NUL character, which cannot be stored"),
    ("/api/consents", {"number": NUMBER, "kind": "maybe", "proof": "x"},
     "body: kind: 'maybe' is not one of granted, revoked"),
    ("/api/consents", {"number": NUMBER, "kind": "granted", "proof": "x" * 2001},
     "body: proof: expected text of 1 to 2000 characters"),
    ("/api/consents", {"number": NUMBER, "kind": "granted", "proof": "x", "source": "fax"},
     "body: source: 'fax' is not one of api, agent, ivr, import"),
])
async def test_bad_entries_are_refused_naming_the_field(server: Any, path: str,
                                                        sent: dict[str, Any], error: str):
    manager = await client_as(server, Role.CAMPAIGN_MANAGER)
    answer = await manager.post(path, json=sent)
    assert answer.status == 400
    assert (await answer.json())["error"].startswith(error)
    await manager.close()


async def test_the_history_needs_a_strict_number(server: Any):
    manager = await client_as(server, Role.CAMPAIGN_MANAGER)
    for params, error in [({}, "number: is required"),
                          ({"number": "11999990000"}, "number: '11999990000' is not an E.164")]:
        answer = await manager.get("/api/consents", params=params)
        assert answer.status == 400
        assert error in (await answer.json())["error"]
    await manager.close()


async def test_the_ledger_exports_as_csv_in_writing_order_for_an_audit(server: Any):
    manager = await client_as(server, Role.CAMPAIGN_MANAGER)
    for campaign, kind, proof in (("renewals", "granted", "web form #1"),
                                  (None, "revoked", "=HYPERLINK(\"http://x\")"),
                                  ("other", "granted", "call recording 7")):
        answer = await manager.post("/api/consents", json={
            "number": NUMBER, "campaign": campaign, "kind": kind, "proof": proof}
            if campaign else {"number": NUMBER, "kind": kind, "proof": proof})
        assert answer.status == 201, await answer.text()
    supervisor = await client_as(server, Role.SUPERVISOR)
    exported = await supervisor.get("/api/consents/export")
    assert exported.status == 200
    assert exported.headers["Content-Type"].startswith("text/csv")
    lines = (await exported.text()).removeprefix("\ufeff").splitlines()
    assert lines[0] == "id,at,number,campaign,kind,source,proof,recorded_by"
    assert [line.split(",")[3:6] for line in lines[1:]] == [
        ["renewals", "granted", "api"], ["", "revoked", "api"], ["other", "granted", "api"]]
    assert "'=HYPERLINK" in lines[2]  # shown as text, never run by a spreadsheet
    one = await (await supervisor.get("/api/consents/export",
                                      params={"campaign": "renewals"})).text()
    assert [line.split(",")[3] for line in one.splitlines()[1:]] == ["renewals", ""]
    bad = await supervisor.get("/api/consents/export", params={"campaign": "Bad!"})
    assert bad.status == 400
    agent = await client_as(server, Role.AGENT)
    assert (await agent.get("/api/consents/export")).status == 403
    for client in (manager, supervisor, agent):
        await client.close()
