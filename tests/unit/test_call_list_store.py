"""A campaign's call list is stored whole or not at all, on both databases: every row of
the upload is a number to call or a problem with its line; a file that turns out bad
half-way, or a failing reader, leaves no list and no numbers behind."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.call_lists import CallListError, ColumnMapping, RowOutcome
from callcenter.core.campaigns import Campaign, CampaignMode
from callcenter.core.clock import VirtualClock
from callcenter.features.campaigns.list_files import ListFormat, read_call_list
from callcenter.features.campaigns.lists import BATCH_ROWS, CallLists, ListNameTaken
from callcenter.features.campaigns.models import CallListEntryRow, CallListRow
from callcenter.features.campaigns.store import CampaignNotFound, CampaignRepository

T0 = 1_795_000_000.0
MAPPING = ColumnMapping(phone="phone", name="name")
CSV = ("phone,name,plan\n"
       "11 98765-4321,Ana,gold\n"
       "not a number,Bruno,silver\n"
       "+55 11 98765-4321,Ana again,gold\n"
       "(21) 3456-7890,Carla,=1+1\n")


@pytest.fixture
async def lists(sessions: async_sessionmaker[AsyncSession]) -> CallLists:
    await CampaignRepository(sessions, VirtualClock(T0)).add(Campaign(
        name="renewals", mode=CampaignMode.PROGRESSIVE, queue="sales",
        caller_id="+551130000000", default_region="BR", hours={"mon-fri": ["09:00-20:00"]}))
    return CallLists(sessions, VirtualClock(T0))


def reading(text: str):
    return read_call_list(io.BytesIO(text.encode()), ListFormat.CSV, MAPPING, "BR")


async def count(sessions: async_sessionmaker[AsyncSession], table: type) -> int:
    async with sessions() as session:
        return (await session.execute(select(func.count()).select_from(table))).scalar_one()


async def test_every_row_is_a_number_to_call_or_a_problem_with_its_line(lists: CallLists):
    upload = reading(CSV)
    stored = await lists.import_list("renewals", "november", upload.outcomes, upload.summary,
                                     created_by="ana")
    summary = stored.summary
    assert (summary.rows_read, summary.accepted, summary.rejected, summary.duplicates) == \
        (4, 2, 1, 1)
    assert await lists.lists("renewals") == [stored]
    entries = await lists.entries(stored.id)
    assert [(e["line"], e["number"], e["name"]) for e in entries] == [
        (2, "+5511987654321", "Ana"), (5, "+552134567890", "Carla")]
    assert entries[0]["time_zones"] == ["America/Sao_Paulo"]
    assert entries[1]["extra"] == [["plan", "=1+1", True]]  # a formula kept as text, flagged
    problems = await lists.problems(stored.id)
    assert [(p["line"], p["first_line"]) for p in problems] == [(3, None), (4, 2)]
    assert "phone" in problems[0]["reason"]
    assert problems[1]["reason"] == "+5511987654321 is already on line 2"


async def test_a_file_that_turns_out_bad_half_way_leaves_nothing_behind(
        lists: CallLists, sessions: async_sessionmaker[AsyncSession]):
    good = "".join(f"11 9{n:04d}-{n:04d},n{n}\n" for n in range(BATCH_ROWS + 10))
    broken = ("phone,name\n" + good).encode() + b"11 98888-7777,\xff\xfe bad bytes\n"
    upload = read_call_list(io.BytesIO(broken), ListFormat.CSV, MAPPING, "BR")
    with pytest.raises(CallListError):
        await lists.import_list("renewals", "broken", upload.outcomes, upload.summary)
    assert await lists.lists("renewals") == []
    assert await count(sessions, CallListRow) == 0
    assert await count(sessions, CallListEntryRow) == 0


async def test_a_reader_that_fails_stores_nothing_and_a_retry_then_succeeds(
        lists: CallLists, sessions: async_sessionmaker[AsyncSession]):
    upload = reading(CSV)

    def failing() -> Iterator[RowOutcome]:
        yield next(upload.outcomes)
        raise OSError("the upload's connection dropped")
    with pytest.raises(OSError, match="connection dropped"):
        await lists.import_list("renewals", "november", failing(), upload.summary)
    assert await count(sessions, CallListEntryRow) == 0
    again = reading(CSV)
    stored = await lists.import_list("renewals", "november", again.outcomes, again.summary)
    assert stored.summary.accepted == 2


async def test_a_list_name_is_once_per_campaign_and_the_campaign_must_exist(lists: CallLists):
    first = reading(CSV)
    await lists.import_list("renewals", "november", first.outcomes, first.summary)
    second = reading(CSV)
    with pytest.raises(ListNameTaken, match="has a list named 'november'"):
        await lists.import_list("renewals", "november", second.outcomes, second.summary)
    with pytest.raises(CampaignNotFound):
        await lists.import_list("winback", "november", second.outcomes, second.summary)
    with pytest.raises(ValueError, match="name: at most 80"):
        await lists.import_list("renewals", "x" * 81, second.outcomes, second.summary)
