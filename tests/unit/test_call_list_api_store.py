"""What the call-list routes ask of the store, on both databases: an append checked against
the list (one transaction), disable, recycle, the rows not taken by upload and line, the
export's entries with their attempts, and a delete only of a list never dialled."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.call_lists import CallListError, ColumnMapping
from callcenter.core.campaigns import Campaign, CampaignMode
from callcenter.core.clock import VirtualClock, to_datetime
from callcenter.features.campaigns.list_files import ListFormat, read_call_list
from callcenter.features.campaigns.lists import (
    CallListNotFound,
    CallLists,
    ListDialled,
    StoredList,
)
from callcenter.features.campaigns.models import CallListEntryRow, CampaignAttemptRow
from callcenter.features.campaigns.store import CampaignRepository

T0 = 1_795_000_000.0
FIRST = "phone,name,plan\n11 98765-4321,Ana,gold\n(21) 3456-7890,Bia,=1+1\n"
SECOND = "phone,name,city\n+55 11 98765-4321,Ana again,SP\n11 91234-5678,Caio,Rio\nx,y,z\n"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
async def lists(sessions: async_sessionmaker[AsyncSession], clock: VirtualClock) -> CallLists:
    await CampaignRepository(sessions, clock).add(Campaign(
        name="renewals", mode=CampaignMode.PROGRESSIVE, queue="sales",
        caller_id="+551130000000", default_region="BR", hours={"mon-fri": ["09:00-20:00"]}))
    return CallLists(sessions, clock)


def reading(text: str):
    return read_call_list(io.BytesIO(text.encode()), ListFormat.CSV,
                          ColumnMapping("phone", "name"), "BR")


async def first_list(lists: CallLists) -> StoredList:
    upload = reading(FIRST)
    return await lists.import_list("renewals", "november", upload.outcomes, upload.summary)


async def test_an_append_reports_numbers_the_list_has_and_adds_up_the_counts(
        lists: CallLists):
    stored = await first_list(lists)
    upload = reading(SECOND)
    now, counted = await lists.append_rows("renewals", stored.id, upload.outcomes,
                                           upload.summary)
    assert (counted.rows_read, counted.accepted, counted.rejected, counted.duplicates) == (
        3, 1, 1, 1)
    assert (now.uploads, now.summary.rows_read, now.summary.accepted,
            now.summary.duplicates) == (2, 5, 3, 1)
    assert await lists.get("renewals", stored.id) == now
    problems = await lists.problems(stored.id)
    assert [(p["upload"], p["line"], p["first_line"]) for p in problems] == [
        (2, 2, 2), (2, 4, None)]
    assert problems[0]["reason"] == "+5511987654321 is already in the list (line 2 of upload 1)"
    assert await lists.problems(stored.id, limit=1, offset=1) == problems[1:]
    assert await lists.extra_columns("renewals", stored.id) == ["plan", "city"]


async def test_an_append_that_fails_half_way_changes_nothing(lists: CallLists):
    stored = await first_list(lists)
    upload = reading("phone,name\n11 91234-5678,Caio\n\"open\n")
    with pytest.raises(CallListError):
        await lists.append_rows("renewals", stored.id, upload.outcomes, upload.summary)
    assert await lists.get("renewals", stored.id) == stored
    assert len(await lists.entries(stored.id)) == 2


async def test_a_list_of_another_campaign_is_not_found(lists: CallLists):
    stored = await first_list(lists)
    upload = reading(SECOND)
    for call in (lambda: lists.get("winback", stored.id),
                 lambda: lists.set_active("renewals", stored.id + 1, False),
                 lambda: lists.recycle("winback", stored.id),
                 lambda: lists.delete("winback", stored.id),
                 lambda: lists.append_rows("winback", stored.id, upload.outcomes,
                                           upload.summary)):
        with pytest.raises(CallListNotFound, match="has no list"):
            await call()


async def test_disable_and_recycle_are_stored_and_shown(lists: CallLists,
                                                        clock: VirtualClock):
    stored = await first_list(lists)
    assert (await lists.set_active("renewals", stored.id, False)).active is False
    assert (await lists.lists("renewals"))[0].active is False
    clock.advance(90)
    recycled = await lists.recycle("renewals", stored.id)
    assert recycled.recycled_at == T0 + 90
    assert (await lists.get("renewals", stored.id)).recycled_at == T0 + 90


async def test_the_export_gives_each_entry_its_attempts_last_outcome_and_disposition(
        lists: CallLists, sessions: async_sessionmaker[AsyncSession]):
    stored = await first_list(lists)
    async with sessions.begin() as session:
        entry_id = await session.scalar(select(CallListEntryRow.id).where(
            CallListEntryRow.number == "+5511987654321"))
        for attempt, (outcome, disposition) in enumerate(
                [("no_answer", None), ("human", "call_back"), ("machine", None)], start=1):
            await session.execute(insert(CampaignAttemptRow).values(
                campaign="renewals", list_id=stored.id, entry_id=entry_id,
                number="+5511987654321", attempt=attempt, abandoned=False,
                placed_at=to_datetime(T0 + attempt), outcome=outcome,
                disposition=disposition))
    batches = [batch async for batch in lists.with_outcomes("renewals", stored.id, batch=1)]
    assert [len(batch) for batch in batches] == [1, 1]
    ana, bia = batches[0][0], batches[1][0]
    assert (ana.attempts, ana.last_outcome, ana.last_disposition, ana.last_placed_at) == (
        3, "machine", "call_back", T0 + 3)
    assert (bia.attempts, bia.last_outcome, bia.last_disposition) == (0, None, None)
    with pytest.raises(ListDialled, match=r"\(3 calls\)"):
        await lists.delete("renewals", stored.id)
    assert len(await lists.entries(stored.id)) == 2


async def test_a_list_never_dialled_is_deleted_with_its_numbers_and_problems(
        lists: CallLists):
    stored = await first_list(lists)
    upload = reading(SECOND)
    await lists.append_rows("renewals", stored.id, upload.outcomes, upload.summary)
    await lists.delete("renewals", stored.id)
    assert await lists.lists("renewals") == []
    assert await lists.entries(stored.id) == [] and await lists.problems(stored.id) == []
    again = reading(FIRST)  # the name is free again
    await lists.import_list("renewals", "november", again.outcomes, again.summary)
