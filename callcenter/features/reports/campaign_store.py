"""The campaign aggregates in the database: counters per campaign and 15-minute UTC bucket
(core/campaign_figures.py), kept up to date as the dialer writes its attempts, in the same
transaction (an ``AttemptFollower`` of features/campaigns/attempts.py), and rebuildable
from ``campaign_attempts``.

The follower also passes each disposition on to the agent aggregates (its points).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.agent_figures import bucket_of, micros, micros_of
from callcenter.core.campaign_figures import AttemptFacts, CountKey, count_changes, counts
from callcenter.features.campaigns.attempts import attempt_facts
from callcenter.features.reports.agent_store import AgentAggregates, as_datetime
from callcenter.features.reports.campaign_models import CampaignCountRow
from callcenter.store.values import dialect_insert


class CampaignAggregates:
    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 agents: AgentAggregates | None = None) -> None:
        self._sessions = sessions
        self._agents = agents

    async def attempt_changed(self, session: AsyncSession, attempt_id: int,
                              before: AttemptFacts | None, after: AttemptFacts | None,
                              ) -> None:
        for key, amount in count_changes(before, after).items():
            await _bump(session, key, amount)
        if self._agents is not None and _disposal(before) != _disposal(after):
            agent_id, disposition, disposed_at = _disposal(after)
            if disposition is None or disposed_at is None:
                await self._agents.disposed(session, attempt_id, None, "", 0.0)
            else:
                await self._agents.disposed(session, attempt_id, agent_id, disposition,
                                            disposed_at)

    async def rebuild(self) -> int:
        """Count every stored attempt again, in one transaction; how many attempts."""
        async with self._sessions.begin() as session:
            await session.execute(delete(CampaignCountRow).execution_options(
                synchronize_session=False))
            facts = await attempt_facts(session, None)
            totals: Counter[CountKey] = Counter()
            for attempt in facts.values():
                totals.update(counts(attempt))
            rows = [{"campaign": campaign, "bucket": as_datetime(bucket), "counter": counter,
                     "count": amount}
                    for (campaign, bucket, counter), amount in sorted(totals.items())
                    if amount]
            if rows:
                await session.execute(CampaignCountRow.__table__.insert(), rows)
        return len(facts)

    async def totals(self, since: float, until: float, campaigns: Iterable[str],
                     ) -> dict[str, dict[int, Counter[str]]]:
        """campaign -> bucket start (microseconds) -> counters, for the buckets starting
        in [since, until)."""
        wanted = sorted(set(campaigns))
        result: dict[str, dict[int, Counter[str]]] = {name: {} for name in wanted}
        if not wanted:
            return result
        table = CampaignCountRow
        query = select(table.campaign, table.bucket, table.counter, table.count).where(
            table.campaign.in_(wanted),
            table.bucket >= as_datetime(bucket_of(micros(since))),
            table.bucket < as_datetime(micros(until)))
        async with self._sessions() as session:
            for campaign, bucket, counter, count in await session.execute(query):
                result[campaign].setdefault(micros_of(bucket), Counter())[counter] += count
        return result


def _disposal(facts: AttemptFacts | None) -> tuple[str | None, str | None, float | None]:
    if facts is None:
        return None, None, None
    return facts.agent_id, facts.disposition, facts.disposed_at


async def _bump(session: AsyncSession, key: CountKey, amount: int) -> None:
    campaign, bucket, counter = key
    table = CampaignCountRow
    upsert = dialect_insert(session)(table).values(
        campaign=campaign, bucket=as_datetime(bucket), counter=counter, count=amount)
    upsert = upsert.on_conflict_do_update(
        index_elements=[table.campaign, table.bucket, table.counter],
        set_={"count": table.count + upsert.excluded.count})
    await session.execute(upsert)
    if amount < 0:  # a counter back at 0 is no row, as a rebuild would leave it
        await session.execute(
            delete(table).where(table.campaign == campaign,
                                table.bucket == as_datetime(bucket), table.counter == counter,
                                table.count == 0)
            .execution_options(synchronize_session=False))
