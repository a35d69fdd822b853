"""The dialer's ledger: which list entries a campaign may call next, and every call placed.

An attempt row is written BEFORE its Originate (``placed``), so no call is ever placed that
the next decision does not count, even when the service dies a moment later; it is completed
when the call ends (``ended``). Attempts still open when the service starts belong to a run
that died: ``close_left_open`` ends them as failed (their calls ended with that run's
channels, or will be hung up by the dialplan when they find no service).

``candidates`` reads entries of the campaign's active lists in the order the dialer wants
them (never called first, then the longest since their last call), leaving out what SQL can
tell is done: an entry with a call in flight, a final outcome (a person answered and the
disposition is not a retry), or all its attempts used since the list was last recycled.
The calling rules (core/dial_rules.py) decide the rest at dial time, with ``entry_now``'s
fresh history and the do-not-call and consent ledgers read again.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.campaign_figures import AttemptFacts
from callcenter.core.campaigns import Campaign
from callcenter.core.clock import from_datetime, to_datetime
from callcenter.core.dial_rules import Attempt, Disposition, DispositionKind, Outcome
from callcenter.features.campaigns.models import (
    CallListEntryRow,
    CallListRow,
    CampaignAttemptRow,
)


@dataclass(frozen=True)
class DialEntry:
    """A list entry with what the calling rules need from its past."""

    entry_id: int
    list_id: int
    number: str  # E.164
    name: str
    time_zones: tuple[str, ...]
    attempts: tuple[Attempt, ...]  # those that count: since the list's recycling, or final
    calls_made: int  # every attempt ever placed (the next one's number is this + 1)
    personal_agent: str | None = None  # the last call's "call back at" is this agent's own
    extra: tuple[tuple[str, str], ...] = ()  # the list's other columns, shown to the agent


@dataclass(frozen=True)
class PlacedAttempt:
    id: int
    campaign: str
    entry_id: int
    number: str
    attempt: int
    placed_at: float


class AttemptFollower(Protocol):
    """Keeps something derived from the attempts (the campaign report aggregates) in step:
    called in the transaction that writes an attempt, with it as it was and as it is."""

    async def attempt_changed(self, session: AsyncSession, attempt_id: int,
                              before: AttemptFacts | None, after: AttemptFacts | None,
                              ) -> None:
        ...


class AttemptStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 followers: Sequence[AttemptFollower] = ()) -> None:
        self._sessions = sessions
        self._followers = tuple(followers)

    async def candidates(self, campaign: Campaign, *, limit: int,
                         skip: Collection[int] = ()) -> list[DialEntry]:
        """Up to ``limit`` entries the campaign may want to call next, best first: never
        called ones in list order (an index walk that stops at ``limit``, however long the
        list), then called ones by their number of calls and the oldest last call (grouped
        over the entries that have attempts only)."""
        wanted = limit + len(skip)
        fresh = (
            select(CallListEntryRow.id)
            .join(CallListRow, CallListRow.id == CallListEntryRow.list_id)
            .where(CallListRow.campaign == campaign.name, CallListRow.active.is_(True),
                   ~select(CampaignAttemptRow.id)
                   .where(CampaignAttemptRow.entry_id == CallListEntryRow.id).exists())
            .order_by(CallListEntryRow.id).limit(wanted))
        async with self._sessions() as session:
            ids = [i for i in await session.scalars(fresh) if i not in skip]
            if len(ids) < limit:
                ids += [i for i in await session.scalars(self._called(campaign, wanted))
                        if i not in skip]
            return await self._entries(session, ids[:limit], campaign.dispositions)

    @staticmethod
    def _called(campaign: Campaign, limit: int) -> Any:
        """SQL: entries called before that may be called again, fewest calls and oldest
        last call first."""
        counts = _since_recycle()
        in_flight = func.sum(case((CampaignAttemptRow.ended_at.is_(None), 1), else_=0))
        return (
            select(CallListEntryRow.id)
            .join(CallListRow, CallListRow.id == CallListEntryRow.list_id)
            .join(CampaignAttemptRow, CampaignAttemptRow.entry_id == CallListEntryRow.id)
            .where(CallListRow.campaign == campaign.name, CallListRow.active.is_(True))
            .group_by(CallListEntryRow.id)
            .having(in_flight == 0, _final_calls(campaign) == 0,
                    counts < campaign.max_attempts)
            .order_by(func.count(CampaignAttemptRow.id),
                      func.max(CampaignAttemptRow.ended_at), CallListEntryRow.id)
            .limit(limit))

    async def entry_now(self, campaign: Campaign, entry_id: int) -> DialEntry | None:
        """The entry with its history as stored now (None: deleted meanwhile, or its list
        disabled)."""
        async with self._sessions() as session:
            active = await session.scalar(
                select(CallListRow.active).join(
                    CallListEntryRow, CallListEntryRow.list_id == CallListRow.id)
                .where(CallListEntryRow.id == entry_id,
                       CallListRow.campaign == campaign.name))
            if not active:
                return None
            found = await self._entries(session, [entry_id], campaign.dispositions)
        return found[0] if found else None

    async def _entries(self, session: AsyncSession, ids: list[int],
                       dispositions: Iterable[Disposition]) -> list[DialEntry]:
        if not ids:
            return []
        by_name = {d.name: d for d in dispositions}
        rows = (await session.execute(
            select(CallListEntryRow, CallListRow.recycled_at)
            .join(CallListRow, CallListRow.id == CallListEntryRow.list_id)
            .where(CallListEntryRow.id.in_(ids)))).all()
        history: dict[int, list[CampaignAttemptRow]] = {}
        for attempt in await session.scalars(
                select(CampaignAttemptRow).where(CampaignAttemptRow.entry_id.in_(ids))
                .order_by(CampaignAttemptRow.id)):
            history.setdefault(attempt.entry_id, []).append(attempt)
        entries = {}
        for entry, recycled_at in rows:
            past = history.get(entry.id, [])
            ended = [(row, _attempt(row, by_name)) for row in past
                     if row.ended_at is not None and row.outcome]
            counted = tuple(attempt for row, attempt in ended
                            if recycled_at is None or row.placed_at >= recycled_at
                            or attempt.final_reason is not None)
            last = past[-1] if past else None
            personal = (last.call_back_agent
                        if last is not None and last.call_back_at is not None else None)
            entries[entry.id] = DialEntry(
                entry.id, entry.list_id, entry.number, entry.name, tuple(entry.time_zones),
                counted, len(past), personal,
                tuple((str(field[0]), str(field[1])) for field in entry.extra))
        return [entries[i] for i in ids if i in entries]

    async def placed(self, campaign: str, entry: DialEntry, at: float) -> PlacedAttempt:
        """Write the attempt before its call is placed."""
        number = entry.calls_made + 1
        async with self._sessions.begin() as session:
            attempt_id = (await session.execute(insert(CampaignAttemptRow).values(
                campaign=campaign, list_id=entry.list_id, entry_id=entry.entry_id,
                number=entry.number, attempt=number, placed_at=to_datetime(at),
                abandoned=False).returning(CampaignAttemptRow.id))).scalar_one()
            await self._follow(session, [attempt_id], {})
        return PlacedAttempt(attempt_id, campaign, entry.entry_id, entry.number, number, at)

    async def answered(self, attempt_id: int, at: float, call_id: str) -> None:
        await self._update(attempt_id, answered_at=to_datetime(at), call_id=call_id)

    async def ended(self, attempt_id: int, outcome: Outcome, at: float, *,
                    amd_status: str | None = None, hangup_cause: str | None = None,
                    abandoned: bool = False, agent_id: str | None = None) -> None:
        await self._update(attempt_id, outcome=outcome.value, ended_at=to_datetime(at),
                           amd_status=amd_status, hangup_cause=hangup_cause,
                           abandoned=abandoned, agent_id=agent_id)

    async def get(self, campaign: str, attempt_id: int) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row = await session.get(CampaignAttemptRow, attempt_id)
        return _attempt_view(row) if row is not None and row.campaign == campaign else None

    async def time_zones(self, entry_id: int) -> tuple[str, ...]:
        async with self._sessions() as session:
            zones = await session.scalar(select(CallListEntryRow.time_zones)
                                         .where(CallListEntryRow.id == entry_id))
        return tuple(zones or ())

    async def dispose(self, attempt_id: int, *, disposition: str, notes: str | None,
                      call_back_at: float | None, call_back_agent: str | None, by: str,
                      at: float) -> bool:
        """Store the agent's disposition once; False when the attempt has one already."""
        async with self._sessions.begin() as session:
            before = await self._facts(session, [attempt_id])
            result = await session.execute(
                update(CampaignAttemptRow)
                .where(CampaignAttemptRow.id == attempt_id,
                       CampaignAttemptRow.disposition.is_(None))
                .values(disposition=disposition, notes=notes,
                        call_back_at=to_datetime(call_back_at),
                        call_back_agent=call_back_agent, disposed_by=by,
                        disposed_at=to_datetime(at))
                .execution_options(synchronize_session=False))
            await self._follow(session, [attempt_id], before)
        return bool(getattr(result, "rowcount", 0))

    async def last_undisposed(self, agent_id: str, since: float) -> dict[str, Any] | None:
        """The agent's latest call since ``since`` that has no disposition yet."""
        query = (select(CampaignAttemptRow)
                 .where(CampaignAttemptRow.agent_id == agent_id,
                        CampaignAttemptRow.disposition.is_(None),
                        CampaignAttemptRow.placed_at >= to_datetime(since))
                 .order_by(CampaignAttemptRow.id.desc()).limit(1))
        async with self._sessions() as session:
            row = await session.scalar(query)
        return _attempt_view(row) if row is not None else None

    async def live_answers(self, campaign: str, since: float) -> list[tuple[float, bool]]:
        """(answered at, abandoned) of every live answer since ``since``: what the abandon
        budget counts (people, not machines), to rebuild it when the service starts."""
        query = (select(CampaignAttemptRow.answered_at, CampaignAttemptRow.abandoned)
                 .where(CampaignAttemptRow.campaign == campaign,
                        CampaignAttemptRow.answered_at >= to_datetime(since),
                        CampaignAttemptRow.outcome.in_([Outcome.HUMAN.value,
                                                        Outcome.DROPPED.value]))
                 .order_by(CampaignAttemptRow.answered_at))
        async with self._sessions() as session:
            return [(at.timestamp(), abandoned)
                    for at, abandoned in await session.execute(query)]

    async def outcome_counts(self, campaign: str, since: float) -> dict[str, int]:
        """Attempts placed since ``since`` by outcome (``in_flight`` for those not ended),
        ``abandoned`` among them, and ``placed`` in all."""
        query = (select(CampaignAttemptRow.outcome, CampaignAttemptRow.abandoned, func.count())
                 .where(CampaignAttemptRow.campaign == campaign,
                        CampaignAttemptRow.placed_at >= to_datetime(since))
                 .group_by(CampaignAttemptRow.outcome, CampaignAttemptRow.abandoned))
        counts = {outcome.value: 0 for outcome in Outcome} | {"in_flight": 0, "abandoned": 0,
                                                              "placed": 0}
        async with self._sessions() as session:
            for outcome, abandoned, count in await session.execute(query):
                counts[outcome or "in_flight"] += count
                counts["abandoned"] += count if abandoned else 0
                counts["placed"] += count
        return counts

    async def list_progress(self, campaign: Campaign) -> tuple[int, int, int]:
        """(entries of the active lists, entries called at least once, entries done: a final
        outcome or every attempt used since the list's recycling)."""
        per_entry = (
            select(func.count(CampaignAttemptRow.id).label("calls"),
                   _final_calls(campaign).label("final"),
                   _since_recycle().label("counted"))
            .select_from(CallListEntryRow)
            .join(CallListRow, CallListRow.id == CallListEntryRow.list_id)
            .outerjoin(CampaignAttemptRow, CampaignAttemptRow.entry_id == CallListEntryRow.id)
            .where(CallListRow.campaign == campaign.name, CallListRow.active.is_(True))
            .group_by(CallListEntryRow.id).subquery())
        done = or_(per_entry.c.final > 0, per_entry.c.counted >= campaign.max_attempts)
        query = select(func.count(), func.sum(case((per_entry.c.calls > 0, 1), else_=0)),
                       func.sum(case((done, 1), else_=0)))
        async with self._sessions() as session:
            total, called, finished = (await session.execute(query)).one()
        return int(total or 0), int(called or 0), int(finished or 0)

    async def close_left_open(self, at: float) -> int:
        """End the attempts an earlier run left open, as failed; how many."""
        async with self._sessions.begin() as session:
            open_ids = list(await session.scalars(
                select(CampaignAttemptRow.id).where(CampaignAttemptRow.ended_at.is_(None))
            )) if self._followers else []
            before = await self._facts(session, open_ids)
            result = await session.execute(
                update(CampaignAttemptRow).where(CampaignAttemptRow.ended_at.is_(None))
                .values(ended_at=to_datetime(at), outcome=Outcome.FAILED.value,
                        hangup_cause="the service stopped during the call"))
            await self._follow(session, open_ids, before)
        return int(getattr(result, "rowcount", 0) or 0)

    async def attempts(self, campaign: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The campaign's attempts, newest first (for the API and tests)."""
        query = (select(CampaignAttemptRow).where(CampaignAttemptRow.campaign == campaign)
                 .order_by(CampaignAttemptRow.id.desc()).limit(limit))
        async with self._sessions() as session:
            return [_attempt_view(row) for row in await session.scalars(query)]

    async def _update(self, attempt_id: int, **values: Any) -> None:
        async with self._sessions.begin() as session:
            before = await self._facts(session, [attempt_id])
            await session.execute(update(CampaignAttemptRow)
                                  .where(CampaignAttemptRow.id == attempt_id).values(**values))
            await self._follow(session, [attempt_id], before)

    async def _facts(self, session: AsyncSession, ids: list[int]) -> dict[int, AttemptFacts]:
        """These attempts as the followers see them (nothing read when none follow)."""
        if not self._followers or not ids:
            return {}
        return await attempt_facts(session, ids)

    async def _follow(self, session: AsyncSession, ids: list[int],
                      before: dict[int, AttemptFacts]) -> None:
        if not self._followers:
            return
        after = await attempt_facts(session, ids)
        for attempt_id in ids:
            for follower in self._followers:
                await follower.attempt_changed(session, attempt_id, before.get(attempt_id),
                                               after.get(attempt_id))


async def attempt_facts(session: AsyncSession, ids: Collection[int] | None,
                        ) -> dict[int, AttemptFacts]:
    """What the report aggregates count of these attempts (None: of every attempt)."""
    row = CampaignAttemptRow
    query = select(row.id, row.campaign, row.placed_at, row.answered_at, row.outcome,
                   row.abandoned, row.disposition, row.agent_id, row.disposed_at)
    if ids is not None:
        query = query.where(row.id.in_(list(ids)))
    return {
        attempt_id: AttemptFacts(campaign, placed_at.timestamp(), from_datetime(answered_at),
                                 outcome, bool(abandoned), disposition, agent_id,
                                 from_datetime(disposed_at))
        for (attempt_id, campaign, placed_at, answered_at, outcome, abandoned, disposition,
             agent_id, disposed_at) in await session.execute(query.order_by(row.id))}


def _final_calls(campaign: Campaign) -> Any:
    """SQL: the entry's calls a person answered whose disposition is not a retry (none yet
    counts as final: the agent has not said to call again)."""
    retry_names = [d.name for d in campaign.dispositions if d.kind is DispositionKind.RETRY]
    return func.sum(case((and_(CampaignAttemptRow.outcome == Outcome.HUMAN.value,
                               or_(CampaignAttemptRow.disposition.is_(None),
                                   CampaignAttemptRow.disposition.not_in(retry_names))),
                          1), else_=0))


def _since_recycle() -> Any:
    """SQL: the entry's attempts placed since its list was recycled (all when never)."""
    return func.sum(case((and_(CampaignAttemptRow.id.is_not(None),
                               or_(CallListRow.recycled_at.is_(None),
                                   CampaignAttemptRow.placed_at >= CallListRow.recycled_at)),
                          1), else_=0))


def _attempt(row: CampaignAttemptRow, dispositions: dict[str, Disposition]) -> Attempt:
    assert row.ended_at is not None and row.outcome is not None
    disposition = dispositions.get(row.disposition) if row.disposition else None
    if row.disposition and disposition is None:  # a name the campaign no longer has: final
        disposition = Disposition(row.disposition, DispositionKind.FINAL)
    return Attempt(ended_at=row.ended_at.timestamp(), outcome=Outcome(row.outcome),
                   disposition=disposition, call_back_at=from_datetime(row.call_back_at))


def _attempt_view(row: CampaignAttemptRow) -> dict[str, Any]:
    return {"id": row.id, "campaign": row.campaign, "list_id": row.list_id,
            "entry_id": row.entry_id, "number": row.number, "attempt": row.attempt,
            "placed_at": from_datetime(row.placed_at),
            "answered_at": from_datetime(row.answered_at),
            "ended_at": from_datetime(row.ended_at), "outcome": row.outcome,
            "amd_status": row.amd_status, "hangup_cause": row.hangup_cause,
            "abandoned": row.abandoned, "call_id": row.call_id, "agent_id": row.agent_id,
            "disposition": row.disposition, "notes": row.notes,
            "call_back_at": from_datetime(row.call_back_at),
            "call_back_agent": row.call_back_agent, "disposed_by": row.disposed_by,
            "disposed_at": from_datetime(row.disposed_at)}
