"""Call detail records in and out of the database, as ``CallRecord`` dataclasses.

Every statement is built with SQLAlchemy expressions and bound parameters.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from callcenter.core.clock import Clock, SystemClock, from_datetime, to_datetime
from callcenter.core.records import (
    AgentAttempt,
    AttemptOutcome,
    CallRecord,
    Disposition,
    HangupBy,
    IvrStep,
)
from callcenter.store.models import AttemptRow, CallRow

MAX_PAGE = 500

_TEXT_FIELDS = (
    "call_id",
    "protocol",
    "linked_id",
    "channel",
    "caller_number",
    "caller_name",
    "dialed_number",
    "queue",
    "agent_id",
    "hangup_cause",
    "note",
)
_TIME_FIELDS = ("started_at", "answered_at", "ended_at", "queued_at", "agent_answered_at")
_DURATION_FIELDS = ("wait_seconds", "talk_seconds")


class CallRepository:
    """Saves and reads call detail records; one transaction per call."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock | None = None
    ) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()  # stamps updated_at

    async def save(self, record: CallRecord) -> None:
        """Insert or update the call by ``call_id``; its attempts become the record's list."""
        values = _call_values(record)
        values["updated_at"] = to_datetime(self._clock.now())
        attempts = [_attempt_values(record.call_id, a) for a in record.attempts]
        async with self._sessions.begin() as session:
            upsert = _dialect_insert(session)(CallRow).values(values)
            upsert = upsert.on_conflict_do_update(
                index_elements=[CallRow.call_id],
                set_={name: upsert.excluded[name] for name in values if name != "call_id"},
            ).returning(CallRow.id)
            call_pk = (await session.execute(upsert)).scalar_one()
            await session.execute(
                delete(AttemptRow)
                .where(AttemptRow.call_pk == call_pk)
                .execution_options(synchronize_session=False)
            )
            if attempts:
                for attempt in attempts:
                    attempt["call_pk"] = call_pk
                await session.execute(insert(AttemptRow), attempts)  # one executemany

    async def get(self, call_id: str) -> CallRecord | None:
        async with self._sessions() as session:
            row = await session.scalar(
                _with_attempts(select(CallRow)).where(CallRow.call_id == call_id)
            )
            return None if row is None else _to_record(row)

    async def open_calls(self) -> builtins.list[CallRecord]:
        """Calls not yet ended (oldest first), to reconcile with Asterisk at startup."""
        query = (
            _with_attempts(select(CallRow))
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
    ) -> tuple[builtins.list[CallRecord], int]:
        """A page of calls, newest first, and how many match in all.

        ``since``/``until`` bound ``started_at`` as the half-open range [since, until).
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit: {limit!r} is not a whole number from 1 to {MAX_PAGE}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset: {offset!r} is not a whole number of 0 or more")
        conditions: builtins.list[ColumnElement[bool]] = []
        start = _time_filter("since", since)
        end = _time_filter("until", until)
        if start is not None and end is not None and start > end:
            raise ValueError(f"since ({since}) is after until ({until})")
        if start is not None:
            conditions.append(CallRow.started_at >= start)
        if end is not None:
            conditions.append(CallRow.started_at < end)
        if queue is not None:
            conditions.append(CallRow.queue == queue)
        if protocol is not None:
            conditions.append(CallRow.protocol == protocol)
        page = (
            _with_attempts(select(CallRow))
            .where(*conditions)
            .order_by(CallRow.started_at.desc(), CallRow.id.desc())
            .limit(limit)
            .offset(offset)
        )
        count = select(func.count()).select_from(CallRow).where(*conditions)
        async with self._sessions() as session:
            total = (await session.execute(count)).scalar_one()
            records = [_to_record(row) for row in await session.scalars(page)]
        return records, total


# --------------------------------------------------------------------------- statements


def _dialect_insert(session: AsyncSession) -> Callable[..., Any]:
    """The dialect's INSERT, which knows ON CONFLICT DO UPDATE (an atomic upsert)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"call records: database dialect {dialect!r} is not supported")


def _with_attempts(query: Select[tuple[CallRow]]) -> Select[tuple[CallRow]]:
    return query.options(selectinload(CallRow.attempts))


def _time_filter(name: str, value: float | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: {value!r} is not a time in POSIX seconds")
    return to_datetime(value)


# --------------------------------------------------------------------------- record -> row


def _call_values(record: CallRecord) -> dict[str, Any]:
    """Column values for ``calls``, after checking every field the database will hold."""
    where = f"call record {record.call_id!r}"
    if not isinstance(record.call_id, str) or not record.call_id.strip():
        raise ValueError(f"{where}: call_id must be a non-empty string")
    values: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        values[name] = _text(f"{where}: {name}", getattr(record, name))
    for name in _TIME_FIELDS:
        values[name] = _time(f"{where}: {name}", getattr(record, name))
    if values["started_at"] is None:
        raise ValueError(f"{where}: started_at is required")
    for name in _DURATION_FIELDS:
        values[name] = _number(f"{where}: {name}", getattr(record, name))
    values["hangup_by"] = _enum(f"{where}: hangup_by", HangupBy, record.hangup_by)
    values["disposition"] = _enum(f"{where}: disposition", Disposition, record.disposition)
    values["ivr_path"] = [
        _ivr_step_json(f"{where}: ivr_path[{i}]", step) for i, step in enumerate(record.ivr_path)
    ]
    return values


def _attempt_values(call_id: str, attempt: AgentAttempt) -> dict[str, Any]:
    where = f"call record {call_id!r}: attempt by {attempt.agent_id!r}"
    agent_id = _text(f"{where}: agent_id", attempt.agent_id)
    started_at = _time(f"{where}: started_at", attempt.started_at)
    if agent_id is None or started_at is None:
        raise ValueError(f"{where}: agent_id and started_at are required")
    return {
        "agent_id": agent_id,
        "started_at": started_at,
        "ended_at": _time(f"{where}: ended_at", attempt.ended_at),
        "outcome": _enum(f"{where}: outcome", AttemptOutcome, attempt.outcome),
    }


def _ivr_step_json(where: str, step: IvrStep) -> dict[str, Any]:
    node = _text(f"{where}.node", step.node)
    at = _time(f"{where}.at", step.at)
    if node is None or at is None:
        raise ValueError(f"{where}: node and at are required")
    return {
        "node": node,
        "at": at.isoformat(timespec="microseconds"),
        "input": _text(f"{where}.input", step.input),
    }


def _text(where: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected text, got {value!r}")
    if "\x00" in value:
        raise ValueError(f"{where}: contains a NUL character, which cannot be stored")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{where}: {value!r} is not valid Unicode text") from None
    return value


def _number(where: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _time(where: str, value: object) -> datetime | None:
    seconds = _number(where, value)
    try:
        return to_datetime(seconds)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{where}: {value!r} is not a representable POSIX time") from None


def _enum(where: str, kind: type[HangupBy | Disposition | AttemptOutcome], value: object) -> Any:
    if value is None:
        return None
    try:
        return kind(value).value
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ValueError(f"{where}: {value!r} is not one of {allowed}") from None


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
        protocol=row.protocol,
        dialed_number=row.dialed_number,
        answered_at=from_datetime(row.answered_at),
        ended_at=from_datetime(row.ended_at),
        ivr_path=[_ivr_step(f"{where}: ivr_path[{i}]", s) for i, s in enumerate(row.ivr_path)],
        queue=row.queue,
        queued_at=from_datetime(row.queued_at),
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
            )
            for a in row.attempts
        ],
        note=row.note,
    )


def _ivr_step(where: str, data: object) -> IvrStep:
    if not isinstance(data, dict) or not isinstance(data.get("node"), str):
        raise ValueError(f"{where}: expected {{node, at, input}}, found {data!r}")
    try:
        at = datetime.fromisoformat(data["at"])
    except (TypeError, ValueError):
        raise ValueError(f"{where}.at: {data.get('at')!r} is not an ISO-8601 time") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    step_input = data.get("input")
    if step_input is not None and not isinstance(step_input, str):
        raise ValueError(f"{where}.input: expected text or null, found {step_input!r}")
    return IvrStep(node=data["node"], at=at.timestamp(), input=step_input)
