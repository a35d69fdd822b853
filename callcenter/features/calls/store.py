"""Call detail records in and out of the database, as the core's ``CallRecord``; and the
records the database refused (dead letters).

Every statement is built with SQLAlchemy expressions and bound parameters.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Select, and_, case, delete, func, insert, not_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from callcenter.core.clock import Clock, SystemClock, from_datetime, to_datetime
from callcenter.core.records import (
    AgentAttempt,
    AttemptOutcome,
    CallRecord,
    Direction,
    Disposition,
    FaqOutcome,
    FaqResult,
    HangupBy,
    Hold,
    HoldBy,
    IvrStep,
    OutsideLeg,
    RecordSource,
    SurveyAnswer,
    Transfer,
    TransferMode,
    TransferOutcome,
)
from callcenter.features.callbacks.store import checked_callback_id
from callcenter.features.calls.dead_letter_models import DeadLetterRow
from callcenter.features.calls.models import (
    AttemptRow,
    CallRow,
    FaqOutcomeRow,
    HoldRow,
    SurveyAnswerRow,
    TransferRow,
)
from callcenter.store.values import (
    MAX_PAGE,
    check_page,
    dialect_insert,
    enum_value,
    number_value,
    printable,
    required_text,
    required_time,
    text_value,
    time_range,
    time_value,
)

_TEXT_FIELDS = (
    "call_id",
    "protocol",
    "linked_id",
    "channel",
    "caller_number",
    "caller_name",
    "caller_id_raw",
    "dialed_number",
    "queue",
    "overflowed_from",
    "agent_id",
    "hangup_cause",
    "note",
)
_TIME_FIELDS = ("started_at", "answered_at", "ended_at", "queued_at", "agent_answered_at")
_DURATION_FIELDS = ("wait_seconds", "talk_seconds")


@dataclasses.dataclass(frozen=True)
class FaqTopicFigures:
    """How one FAQ answer of one flow did: outcomes counted over a time range."""

    flow: str
    topic: str
    heard: int
    solved: int
    not_solved: int
    no_answer: int
    hung_up: int

    @property
    def self_service_rate(self) -> float | None:
        """Solved ÷ heard (DOMAIN.md's self-service resolution); None when none was heard."""
        return self.solved / self.heard if self.heard else None


class RecordFollower(Protocol):
    """Keeps something derived from call records (a call's price, the report aggregates) in
    step with them: called in the transaction that stores a record, every time it is stored
    (open or closed, first time or again), so it must replace what it derived before.

    ``follow_many`` is the same for several records stored in one transaction (each call
    once): the outcome must be exactly that of ``follow`` on each in turn, in fewer
    statements."""

    async def follow(self, session: AsyncSession, call_pk: int, record: CallRecord) -> None:
        ...

    async def follow_many(self, session: AsyncSession,
                          stored: Sequence[tuple[int, CallRecord]]) -> None:
        ...


async def follow_each(follower: Any, session: AsyncSession,
                      stored: Sequence[tuple[int, CallRecord]]) -> None:
    """``follower.follow_many`` if it has one, else ``follow`` record by record."""
    follow_many = getattr(follower, "follow_many", None)
    if follow_many is not None:
        await follow_many(session, stored)
        return
    for call_pk, record in stored:
        await follower.follow(session, call_pk, record)


class CallRepository:
    """Saves and reads call detail records; one transaction per call (with its followers'
    derived rows: they stand or fall with the record)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock | None = None,
        followers: Sequence[RecordFollower] = (),
    ) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()  # stamps updated_at
        self._followers = tuple(followers)

    async def save(self, record: CallRecord) -> None:
        """Insert or update the call by ``call_id``.

        Its attempts, FAQ outcomes and survey answers become exactly the record's lists.
        """
        await self.save_many([record])

    async def save_many(self, records: Sequence[CallRecord]) -> None:
        """``save`` for several records in one transaction: all are stored or none (the
        first refusal raises). A call given more than once is stored as its last version.
        The statements are set-based: one upsert of the calls, one delete and one insert
        per child table, and each follower's ``follow_many``."""
        latest = {record.call_id: record for record in records}
        if not latest:
            return
        now = to_datetime(self._clock.now())
        prepared = []
        for record in latest.values():  # every check before the first statement
            values = _call_values(record)
            values["updated_at"] = now
            prepared.append((record, values, _child_values(record)))
        async with self._sessions.begin() as session:
            rows = [values for _, values, _ in prepared]
            upsert = dialect_insert(session)(CallRow)
            upsert = upsert.on_conflict_do_update(
                index_elements=[CallRow.call_id],
                set_={name: upsert.excluded[name] for name in rows[0] if name != "call_id"},
            ).returning(CallRow.call_id, CallRow.id)
            pks: dict[str, int] = {}
            for start in range(0, len(rows), MAX_PAGE):
                result = await session.execute(upsert, rows[start:start + MAX_PAGE])
                pks.update((call_id, call_pk) for call_id, call_pk in result)
            stored = [(pks[record.call_id], record) for record, _, _ in prepared]
            all_pks = [call_pk for call_pk, _ in stored]
            for index, (table, _) in enumerate(prepared[0][2]):
                for start in range(0, len(all_pks), MAX_PAGE):
                    await session.execute(
                        delete(table).where(table.call_pk.in_(all_pks[start:start + MAX_PAGE]))
                        .execution_options(synchronize_session=False))
                child_rows = []
                for (call_pk, _), (_, _, children) in zip(stored, prepared, strict=True):
                    for row in children[index][1]:
                        row["call_pk"] = call_pk
                        child_rows.append(row)
                if child_rows:  # Core: one executemany (the ORM splits rows by their Nones)
                    await session.execute(insert(table.__table__), child_rows)
            for follower in self._followers:
                await follow_each(follower, session, stored)

    async def insert_if_absent(self, record: CallRecord) -> bool:
        """Insert the call unless a record of it exists: whoever stored it first wins. True
        if inserted. For records imported from Asterisk's log, which must never overwrite the
        service's own. Another call's protocol number raises IntegrityError."""
        values = _call_values(record)
        values["updated_at"] = to_datetime(self._clock.now())
        children = _child_values(record)
        async with self._sessions.begin() as session:
            insert_new = (dialect_insert(session)(CallRow).values(values)
                          .on_conflict_do_nothing(index_elements=[CallRow.call_id])
                          .returning(CallRow.id))
            call_pk = (await session.execute(insert_new)).scalar_one_or_none()
            if call_pk is None:
                return False
            for table, rows in children:
                for row in rows:
                    row["call_pk"] = call_pk
                if rows:
                    await session.execute(insert(table), rows)
            await self._follow(session, call_pk, record)
        return True

    async def _follow(self, session: AsyncSession, call_pk: int, record: CallRecord) -> None:
        for follower in self._followers:
            await follower.follow(session, call_pk, record)

    async def stored_ids(self, call_ids: Iterable[str]) -> set[str]:
        """Which of these calls have a record, open or closed."""
        wanted = builtins.list(dict.fromkeys(call_ids))
        found: set[str] = set()
        async with self._sessions() as session:
            for start in range(0, len(wanted), MAX_PAGE):  # bounded IN lists
                chunk = wanted[start:start + MAX_PAGE]
                found.update(await session.scalars(
                    select(CallRow.call_id).where(CallRow.call_id.in_(chunk))))
        return found

    async def get(self, call_id: str) -> CallRecord | None:
        async with self._sessions() as session:
            row = await session.scalar(
                _with_children(select(CallRow)).where(CallRow.call_id == call_id)
            )
            return None if row is None else _to_record(row)

    async def open_calls(self) -> builtins.list[CallRecord]:
        """Calls not yet ended (oldest first), to reconcile with Asterisk at startup."""
        query = (
            _with_children(select(CallRow))
            .where(CallRow.ended_at.is_(None))
            .order_by(CallRow.started_at, CallRow.id)
        )
        async with self._sessions() as session:
            return [_to_record(row) for row in await session.scalars(query)]

    async def list(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        queue: str | None = None,
        protocol: str | None = None,
        limit: int = 50,
        offset: int = 0,
        callback_request: int | None = None,
    ) -> tuple[builtins.list[CallRecord], int]:
        """A page of calls, newest first, and how many match in all.

        ``since``/``until`` bound ``started_at`` as the half-open range [since, until).
        ``callback_request``: only the call that asked for that callback and its calls.
        """
        check_page(limit, offset)
        conditions = time_range(CallRow.started_at, since, until)
        if queue is not None:
            conditions.append(CallRow.queue == queue)
        if protocol is not None:
            conditions.append(CallRow.protocol == protocol)
        if callback_request is not None:
            conditions.append(CallRow.callback_request_id == checked_callback_id(callback_request))
        page = (
            _with_children(select(CallRow))
            .where(*conditions)
            .order_by(CallRow.started_at.desc(), CallRow.id.desc())
            .limit(limit)
            .offset(offset)
        )
        count = select(func.count()).select_from(CallRow).where(*conditions)
        async with self._sessions() as session:
            # Two statements, two snapshots (no read transaction on SQLite, READ COMMITTED on
            # PostgreSQL): a call stored between them must not make the total smaller than
            # the page shown. Records are never deleted, so counting last and clamping holds.
            records = [_to_record(row) for row in await session.scalars(page)]
            total = (await session.execute(count)).scalar_one()
        return records, max(total, offset + len(records)) if records else total

    async def records_by_pk(
        self, *, since: float | None = None, until: float | None = None,
        after_pk: int | None = None, limit: int = 500,
    ) -> builtins.list[tuple[int, CallRecord]]:
        """Records with their row ids in id order, after ``after_pk``, that started in
        [since, until): a walk over every record a page at a time (`reports rebuild`)."""
        conditions = time_range(CallRow.started_at, since, until)
        if after_pk is not None:
            conditions.append(CallRow.id > after_pk)
        page = _with_children(select(CallRow)).where(*conditions).order_by(CallRow.id)
        async with self._sessions() as session:
            return [(row.id, _to_record(row)) for row in await session.scalars(page.limit(limit))]

    async def faq_report(
        self, since: float | None = None, until: float | None = None, flow: str | None = None
    ) -> builtins.list[FaqTopicFigures]:
        """Outcomes of each FAQ answer, per (flow, topic), ordered by flow then topic.

        Counts FAQ answers heard in [since, until). An answer whose caller is still in the
        call and has not answered yet (``hung_up`` is only the default until the call ends)
        is not counted: it is undecided.
        """
        conditions = time_range(FaqOutcomeRow.heard_at, since, until)
        if flow is not None:
            conditions.append(FaqOutcomeRow.flow == required_text("flow", flow))
        undecided = and_(
            CallRow.ended_at.is_(None), FaqOutcomeRow.result == FaqResult.HUNG_UP.value
        )
        counts = [
            func.sum(case((FaqOutcomeRow.result == result.value, 1), else_=0)).label(result.value)
            for result in FaqResult
        ]
        query = (
            select(
                FaqOutcomeRow.flow, FaqOutcomeRow.topic, func.count().label("heard"), *counts
            )
            .join(CallRow, CallRow.id == FaqOutcomeRow.call_pk)
            .where(*conditions, not_(undecided))
            .group_by(FaqOutcomeRow.flow, FaqOutcomeRow.topic)
            .order_by(FaqOutcomeRow.flow, FaqOutcomeRow.topic)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [
            FaqTopicFigures(
                flow=row.flow,
                topic=row.topic,
                heard=int(row.heard),
                **{result.value: int(getattr(row, result.value)) for result in FaqResult},
            )
            for row in rows
        ]


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A call record the database refused for good, as the record writer moved it aside."""

    call_id: str
    record: str  # the record's JSON document
    reason: str
    at: float
    id: int | None = None  # given by the store


class DeadLetterRepository:
    """Refused call records (``call_dead_letters``): kept with the reason, newest first."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, letter: DeadLetter) -> None:
        # Shown escaped: the refused data may be the very NUL the database cannot hold.
        values = {
            "call_id": printable(letter.call_id),
            "record": printable(letter.record),
            "reason": printable(letter.reason),
            "at": to_datetime(letter.at),
        }
        async with self._sessions.begin() as session:
            await session.execute(insert(DeadLetterRow).values(values))

    async def list(self, limit: int = 50) -> builtins.list[DeadLetter]:
        check_page(limit, 0)
        query = select(DeadLetterRow).order_by(DeadLetterRow.at.desc(), DeadLetterRow.id.desc())
        async with self._sessions() as session:
            rows = await session.scalars(query.limit(limit))
            return [
                DeadLetter(call_id=row.call_id, record=row.record, reason=row.reason,
                           at=row.at.timestamp(), id=row.id)
                for row in rows
            ]


# --------------------------------------------------------------------------- statements


async def records_after(session: AsyncSession, after: int, limit: int = MAX_PAGE,
                        ) -> builtins.list[tuple[int, CallRecord]]:
    """Up to ``limit`` stored records whose row id is above ``after``, with their row ids,
    by id: what a follower's rebuild reads, batch by batch, to derive its rows again."""
    query = (_with_children(select(CallRow)).where(CallRow.id > after)
             .order_by(CallRow.id).limit(limit))
    return [(row.id, _to_record(row)) for row in await session.scalars(query)]


async def records_with_pks(session: AsyncSession, pks: Iterable[int], *,
                           legs_only: bool = False) -> builtins.list[tuple[int, CallRecord]]:
    """The stored records with these row ids, with their row ids, by id: what a follower
    reads to derive its rows again for calls something else touched (an agent's state log
    and the queue report's wrap-up: features/reports/wrap_ups.py). ``legs_only``: with
    their agent legs but no other children (empty lists), for what depends on the legs
    alone: two statements instead of six."""
    wanted = sorted(set(pks))
    if not wanted:
        return []
    if not legs_only:
        query = _with_children(select(CallRow)).where(CallRow.id.in_(wanted))
        return [(row.id, _to_record(row))
                for row in await session.scalars(query.order_by(CallRow.id))]
    query = select(CallRow).options(selectinload(CallRow.attempts)).where(
        CallRow.id.in_(wanted)).order_by(CallRow.id)
    found = []
    for row in (await session.scalars(query)).all():
        for name in _NOT_LEGS:
            set_committed_value(row, name, [])
        found.append((row.id, _to_record(row)))
        session.expunge(row)  # its empty children are not the stored ones: not kept
    return found


_NOT_LEGS = ("faq_outcomes", "survey_answers", "transfers", "holds")


ChildRow = AttemptRow | FaqOutcomeRow | SurveyAnswerRow | TransferRow | HoldRow


def _with_children(query: Select[tuple[CallRow]]) -> Select[tuple[CallRow]]:
    return query.options(
        selectinload(CallRow.attempts),
        selectinload(CallRow.faq_outcomes),
        selectinload(CallRow.survey_answers),
        selectinload(CallRow.transfers),
        selectinload(CallRow.holds),
    )


def _request_link(where: str, value: object) -> int | None:
    if value is None:
        return None
    try:
        return checked_callback_id(value)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


# --------------------------------------------------------------------------- record -> row


def _call_values(record: CallRecord) -> dict[str, Any]:
    """Column values for ``calls``, after checking every field the database will hold."""
    where = f"call record {record.call_id!r}"
    if not isinstance(record.call_id, str) or not record.call_id.strip():
        raise ValueError(f"{where}: call_id must be a non-empty string")
    values: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        values[name] = text_value(f"{where}: {name}", getattr(record, name))
    for name in _TIME_FIELDS:
        values[name] = time_value(f"{where}: {name}", getattr(record, name))
    if values["started_at"] is None:
        raise ValueError(f"{where}: started_at is required")
    for name in _DURATION_FIELDS:
        values[name] = number_value(f"{where}: {name}", getattr(record, name))
    values["hangup_by"] = enum_value(f"{where}: hangup_by", HangupBy, record.hangup_by)
    values["disposition"] = enum_value(f"{where}: disposition", Disposition, record.disposition)
    values["source"] = enum_value(f"{where}: source", RecordSource, record.source)
    values["ivr_path"] = [
        _ivr_step_json(f"{where}: ivr_path[{i}]", step) for i, step in enumerate(record.ivr_path)
    ]
    values["outside_legs"] = [
        _outside_leg_json(f"{where}: outside_legs[{i}]", leg)
        for i, leg in enumerate(record.outside_legs)
    ]
    values["callback_request_id"] = _request_link(f"{where}: callback_request_id",
                                                  record.callback_request_id)
    values["callback_of"] = text_value(f"{where}: callback_of", record.callback_of)
    values["direction"] = enum_value(f"{where}: direction", Direction, record.direction)
    values["campaign"] = text_value(f"{where}: campaign", record.campaign)
    values["campaign_attempt_id"] = _request_link(f"{where}: campaign_attempt_id",
                                                  record.campaign_attempt_id)
    return values


def _child_values(
    record: CallRecord,
) -> builtins.list[tuple[type[ChildRow], builtins.list[dict[str, Any]]]]:
    """Each per-call table with the column values of the record's rows for it."""
    where = f"call record {record.call_id!r}"
    return [
        (AttemptRow, [_attempt_values(record.call_id, a) for a in record.attempts]),
        (
            FaqOutcomeRow,
            [
                _faq_values(f"{where}: faq_outcomes[{i}]", outcome)
                for i, outcome in enumerate(record.faq_outcomes)
            ],
        ),
        (
            SurveyAnswerRow,
            [
                _survey_values(f"{where}: survey_answers[{i}]", answer)
                for i, answer in enumerate(record.survey_answers)
            ],
        ),
        (
            TransferRow,
            [
                _transfer_values(f"{where}: transfers[{i}]", transfer)
                for i, transfer in enumerate(record.transfers)
            ],
        ),
        (
            HoldRow,
            [_hold_values(f"{where}: holds[{i}]", hold) for i, hold in enumerate(record.holds)],
        ),
    ]


def _attempt_values(call_id: str, attempt: AgentAttempt) -> dict[str, Any]:
    where = f"call record {call_id!r}: attempt by {attempt.agent_id!r}"
    agent_id = text_value(f"{where}: agent_id", attempt.agent_id)
    started_at = time_value(f"{where}: started_at", attempt.started_at)
    if agent_id is None or started_at is None:
        raise ValueError(f"{where}: agent_id and started_at are required")
    return {
        "agent_id": agent_id,
        "started_at": started_at,
        "ended_at": time_value(f"{where}: ended_at", attempt.ended_at),
        "outcome": enum_value(f"{where}: outcome", AttemptOutcome, attempt.outcome),
        "answered_at": time_value(f"{where}: answered_at", attempt.answered_at),
        "talk_seconds": number_value(f"{where}: talk_seconds", attempt.talk_seconds),
    }


def _transfer_values(where: str, transfer: Transfer) -> dict[str, Any]:
    return {
        "mode": enum_value(f"{where}: mode", TransferMode, transfer.mode),
        "from_agent": required_text(f"{where}: from_agent", transfer.from_agent),
        "to_agent": text_value(f"{where}: to_agent", transfer.to_agent),
        "to_queue": text_value(f"{where}: to_queue", transfer.to_queue),
        "requested_at": required_time(f"{where}: requested_at", transfer.requested_at),
        "ended_at": time_value(f"{where}: ended_at", transfer.ended_at),
        "outcome": enum_value(f"{where}: outcome", TransferOutcome, transfer.outcome),
        "reason": text_value(f"{where}: reason", transfer.reason),
    }


def _hold_values(where: str, hold: Hold) -> dict[str, Any]:
    held_by = enum_value(f"{where}: held_by", HoldBy, hold.held_by)
    if held_by is None:
        raise ValueError(f"{where}: held_by is required")
    agent_id = text_value(f"{where}: agent_id", hold.agent_id)
    if (held_by == HoldBy.AGENT) != (agent_id is not None):
        raise ValueError(f"{where}: an agent's hold names the agent, the caller's names none "
                         f"(held_by {held_by!r}, agent_id {agent_id!r})")
    started_at = required_time(f"{where}: started_at", hold.started_at)
    ended_at = time_value(f"{where}: ended_at", hold.ended_at)
    if ended_at is not None and ended_at < started_at:
        raise ValueError(f"{where}: ended_at is before started_at")
    return {"held_by": held_by, "agent_id": agent_id, "started_at": started_at,
            "ended_at": ended_at}


def _faq_values(where: str, outcome: FaqOutcome) -> dict[str, Any]:
    return {
        "flow": required_text(f"{where}.flow", outcome.flow),
        "topic": required_text(f"{where}.topic", outcome.topic),
        "heard_at": required_time(f"{where}.heard_at", outcome.heard_at),
        "result": enum_value(f"{where}.result", FaqResult, outcome.result),
        "answered_at": time_value(f"{where}.answered_at", outcome.answered_at),
    }


def _survey_values(where: str, answer: SurveyAnswer) -> dict[str, Any]:
    text = text_value(f"{where}.answer", answer.answer)
    if text is None:
        raise ValueError(f"{where}.answer is required")
    return {
        "survey": required_text(f"{where}.survey", answer.survey),
        "question": required_text(f"{where}.question", answer.question),
        "answer": text,
        "answered_at": required_time(f"{where}.answered_at", answer.answered_at),
    }


def _ivr_step_json(where: str, step: IvrStep) -> dict[str, Any]:
    node = text_value(f"{where}.node", step.node)
    at = time_value(f"{where}.at", step.at)
    if node is None or at is None:
        raise ValueError(f"{where}: node and at are required")
    return {
        "node": node,
        "at": at.isoformat(timespec="microseconds"),
        "input": text_value(f"{where}.input", step.input),
    }


def _outside_leg_json(where: str, leg: OutsideLeg) -> dict[str, Any]:
    number = text_value(f"{where}.number", leg.number)
    status = text_value(f"{where}.dial_status", leg.dial_status)
    ended = time_value(f"{where}.ended_at", leg.ended_at)
    if number is None or status is None or ended is None:
        raise ValueError(f"{where}: number, dial_status and ended_at are required")
    answered = time_value(f"{where}.answered_at", leg.answered_at)
    return {"number": number, "dial_status": status,
            "ended_at": ended.isoformat(timespec="microseconds"),
            "answered_at": None if answered is None else answered.isoformat(
                timespec="microseconds")}


# --------------------------------------------------------------------------- row -> record


def _to_record(row: CallRow) -> CallRecord:
    where = f"stored call {row.call_id!r}"
    return CallRecord(
        call_id=row.call_id,
        started_at=row.started_at.timestamp(),
        linked_id=row.linked_id,
        channel=row.channel,
        caller_number=row.caller_number,
        caller_name=row.caller_name,
        caller_id_raw=row.caller_id_raw,
        protocol=row.protocol,
        dialed_number=row.dialed_number,
        answered_at=from_datetime(row.answered_at),
        ended_at=from_datetime(row.ended_at),
        ivr_path=[_ivr_step(f"{where}: ivr_path[{i}]", s) for i, s in enumerate(row.ivr_path)],
        outside_legs=[_outside_leg(f"{where}: outside_legs[{i}]", leg)
                      for i, leg in enumerate(row.outside_legs or [])],
        queue=row.queue,
        queued_at=from_datetime(row.queued_at),
        overflowed_from=row.overflowed_from,
        wait_seconds=row.wait_seconds,
        agent_id=row.agent_id,
        agent_answered_at=from_datetime(row.agent_answered_at),
        talk_seconds=row.talk_seconds,
        hangup_by=None if row.hangup_by is None else HangupBy(row.hangup_by),
        hangup_cause=row.hangup_cause,
        disposition=None if row.disposition is None else Disposition(row.disposition),
        attempts=[
            AgentAttempt(
                agent_id=a.agent_id,
                started_at=a.started_at.timestamp(),
                ended_at=from_datetime(a.ended_at),
                outcome=AttemptOutcome(a.outcome),
                answered_at=from_datetime(a.answered_at),
                talk_seconds=a.talk_seconds,
            )
            for a in row.attempts
        ],
        faq_outcomes=[
            FaqOutcome(
                flow=f.flow,
                topic=f.topic,
                heard_at=f.heard_at.timestamp(),
                result=FaqResult(f.result),
                answered_at=from_datetime(f.answered_at),
            )
            for f in row.faq_outcomes
        ],
        survey_answers=[
            SurveyAnswer(
                survey=s.survey,
                question=s.question,
                answer=s.answer,
                answered_at=s.answered_at.timestamp(),
            )
            for s in row.survey_answers
        ],
        transfers=[
            Transfer(
                mode=TransferMode(t.mode),
                from_agent=t.from_agent,
                requested_at=t.requested_at.timestamp(),
                to_agent=t.to_agent,
                to_queue=t.to_queue,
                outcome=TransferOutcome(t.outcome),
                ended_at=from_datetime(t.ended_at),
                reason=t.reason,
            )
            for t in row.transfers
        ],
        holds=[
            Hold(held_by=HoldBy(h.held_by), started_at=h.started_at.timestamp(),
                 ended_at=from_datetime(h.ended_at), agent_id=h.agent_id)
            for h in row.holds
        ],
        note=row.note,
        source=RecordSource(row.source),
        callback_request_id=row.callback_request_id,
        callback_of=row.callback_of,
        direction=Direction(row.direction),
        campaign=row.campaign,
        campaign_attempt_id=row.campaign_attempt_id,
    )


def _outside_leg(where: str, data: object) -> OutsideLeg:
    if not isinstance(data, dict) or not isinstance(data.get("number"), str) \
            or not isinstance(data.get("dial_status"), str):
        raise ValueError(f"{where}: expected {{number, dial_status, ended_at, answered_at}}, "
                         f"found {str(data)[:200]}")
    return OutsideLeg(number=data["number"], dial_status=data["dial_status"],
                      ended_at=_stored_time(f"{where}.ended_at", data.get("ended_at")),
                      answered_at=None if data.get("answered_at") is None else _stored_time(
                          f"{where}.answered_at", data["answered_at"]))


def _stored_time(where: str, text: object) -> float:
    try:
        at = datetime.fromisoformat(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {text!r} is not an ISO-8601 time") from None
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()


def _ivr_step(where: str, data: object) -> IvrStep:
    if not isinstance(data, dict) or not isinstance(data.get("node"), str):
        raise ValueError(f"{where}: expected {{node, at, input}}, found {data!r}")
    at = _stored_time(f"{where}.at", data.get("at"))
    step_input = data.get("input")
    if step_input is not None and not isinstance(step_input, str):
        raise ValueError(f"{where}.input: expected text or null, found {step_input!r}")
    return IvrStep(node=data["node"], at=at, input=step_input)
