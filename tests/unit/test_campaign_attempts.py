"""The dialer's ledger on both databases: which entries come next, and what each attempt
left behind (in flight, final, attempts used, a recycled list)."""

from __future__ import annotations

import dataclasses
import io

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.call_lists import ColumnMapping
from callcenter.core.campaigns import Campaign, CampaignMode
from callcenter.core.clock import VirtualClock, to_datetime
from callcenter.core.dial_rules import DispositionKind, Outcome
from callcenter.features.campaigns.attempts import AttemptStore, DialEntry
from callcenter.features.campaigns.list_files import ListFormat, read_call_list
from callcenter.features.campaigns.lists import CallLists
from callcenter.features.campaigns.models import CallListRow, CampaignAttemptRow
from callcenter.features.campaigns.store import CampaignRepository

T0 = 1_795_000_000.0
CAMPAIGN = Campaign(name="renewals", mode=CampaignMode.PROGRESSIVE, queue="sales",
                    caller_id="+551130000000", default_region="US",
                    hours={"mon-sun": ["00:00-23:59"]}, max_attempts=2)
NUMBERS = ["+12025550100", "+12025550101", "+12025550102", "+12025550103"]


@pytest.fixture
async def store(sessions: async_sessionmaker[AsyncSession]) -> AttemptStore:
    await CampaignRepository(sessions, VirtualClock(T0)).add(CAMPAIGN)
    text = "phone,name\n" + "".join(f"{n},N{i}\n" for i, n in enumerate(NUMBERS))
    upload = read_call_list(io.BytesIO(text.encode()), ListFormat.CSV,
                            ColumnMapping(phone="phone", name="name"), "US")
    await CallLists(sessions, VirtualClock(T0)).import_list(
        "renewals", "november", upload.outcomes, upload.summary)
    return AttemptStore(sessions)


async def call(store: AttemptStore, entry: DialEntry, outcome: Outcome | None, at: float,
               **fields: object) -> int:
    placed = await store.placed("renewals", entry, at)
    if outcome is not None:
        await store.ended(placed.id, outcome, at + 30, **fields)  # type: ignore[arg-type]
    return placed.id


async def numbers(store: AttemptStore, campaign: Campaign = CAMPAIGN) -> list[str]:
    return [e.number for e in await store.candidates(campaign, limit=10)]


async def test_never_called_entries_come_first_in_list_order(store: AttemptStore):
    first = (await store.candidates(CAMPAIGN, limit=10))[0]
    assert await numbers(store) == NUMBERS
    await call(store, first, Outcome.NO_ANSWER, T0)
    assert await numbers(store) == [*NUMBERS[1:], NUMBERS[0]]
    again = await store.entry_now(CAMPAIGN, first.entry_id)
    assert again is not None and again.calls_made == 1
    assert [a.outcome for a in again.attempts] == [Outcome.NO_ANSWER]


async def test_calls_in_flight_final_outcomes_and_used_attempts_leave_the_line(
        store: AttemptStore):
    a, b, c, d = await store.candidates(CAMPAIGN, limit=10)
    await call(store, a, None, T0)  # ringing now
    await call(store, b, Outcome.HUMAN, T0, agent_id="agent1")  # no disposition yet: final
    await call(store, c, Outcome.BUSY, T0)
    await call(store, c, Outcome.BUSY, T0 + 100)  # max_attempts = 2
    assert await numbers(store) == [d.number]


async def test_a_retry_disposition_keeps_a_person_answered_number_in_line(
        store: AttemptStore, sessions: async_sessionmaker[AsyncSession]):
    a = (await store.candidates(CAMPAIGN, limit=1))[0]
    attempt = await call(store, a, Outcome.HUMAN, T0)
    async with sessions.begin() as session:
        await session.execute(update(CampaignAttemptRow).where(CampaignAttemptRow.id == attempt)
                              .values(disposition="call_back"))
    assert a.number in await numbers(store)
    fresh = await store.entry_now(CAMPAIGN, a.entry_id)
    assert fresh is not None
    assert fresh.attempts[0].disposition is not None
    assert fresh.attempts[0].disposition.kind is DispositionKind.RETRY


async def test_recycling_a_list_gives_its_no_answers_their_attempts_again(
        store: AttemptStore, sessions: async_sessionmaker[AsyncSession]):
    a, b, *_ = await store.candidates(CAMPAIGN, limit=10)
    for at in (T0, T0 + 100):
        await call(store, a, Outcome.NO_ANSWER, at)
    await call(store, b, Outcome.HUMAN, T0)  # final: a recycling does not bring it back
    assert a.number not in await numbers(store)
    async with sessions.begin() as session:
        await session.execute(update(CallListRow).values(recycled_at=to_datetime(T0 + 200)))
    assert a.number in await numbers(store)
    assert b.number not in await numbers(store)
    fresh = await store.entry_now(CAMPAIGN, a.entry_id)
    assert fresh is not None and fresh.attempts == () and fresh.calls_made == 2


async def test_a_disabled_list_is_not_dialled(store: AttemptStore,
                                              sessions: async_sessionmaker[AsyncSession]):
    a = (await store.candidates(CAMPAIGN, limit=1))[0]
    async with sessions.begin() as session:
        await session.execute(update(CallListRow).values(active=False))
    assert await numbers(store) == []
    assert await store.entry_now(CAMPAIGN, a.entry_id) is None
    other = dataclasses.replace(CAMPAIGN, name="other")
    assert await store.entry_now(other, a.entry_id) is None


async def test_attempts_left_open_by_a_dead_run_are_closed_as_failed(store: AttemptStore):
    a = (await store.candidates(CAMPAIGN, limit=1))[0]
    await call(store, a, None, T0)
    assert await store.close_left_open(T0 + 5) == 1
    [attempt] = await store.attempts("renewals")
    assert (attempt["outcome"], attempt["ended_at"]) == ("failed", T0 + 5)
    assert a.number in await numbers(store)


async def test_a_personal_call_back_names_its_agent_until_the_next_call(store: AttemptStore):
    a = (await store.candidates(CAMPAIGN, limit=1))[0]
    attempt = await call(store, a, Outcome.HUMAN, T0, agent_id="agent1")
    assert await store.dispose(attempt, disposition="call_back", notes=None,
                               call_back_at=T0 + 3600, call_back_agent="agent1", by="agent1",
                               at=T0 + 40)
    assert not await store.dispose(attempt, disposition="sale", notes=None, call_back_at=None,
                                   call_back_agent=None, by="agent1", at=T0 + 50)
    fresh = await store.entry_now(CAMPAIGN, a.entry_id)
    assert fresh is not None and fresh.personal_agent == "agent1"
    assert fresh.attempts[0].call_back_at == T0 + 3600
    await call(store, fresh, Outcome.NO_ANSWER, T0 + 4000)
    later = await store.entry_now(CAMPAIGN, a.entry_id)
    assert later is not None and later.personal_agent is None
