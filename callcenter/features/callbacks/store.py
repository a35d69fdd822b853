"""Callback requests in and out of the database (``callback_requests``), as the core's
``CallbackRequest``.

Every statement is built with SQLAlchemy expressions and bound parameters.
"""

from __future__ import annotations

import builtins
import dataclasses
import re
from typing import Any

from sqlalchemy import ColumnElement, case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.clock import Clock, SystemClock, from_datetime, to_datetime
from callcenter.core.records import (
    CallbackRequest,
    CallbackStatus,
)
from callcenter.features.callbacks.models import CallbackRow
from callcenter.store.values import (
    MAX_ROW_ID,
    check_page,
    enum_value,
    required_text,
    required_time,
    text_value,
    time_value,
)

CALLBACK_NUMBER = re.compile(r"\+?[0-9]{1,32}")

# The only status changes a callback request may make: from pending to a final status.
CALLBACK_CHANGES: dict[CallbackStatus, frozenset[CallbackStatus]] = {
    CallbackStatus.PENDING: frozenset(
        {CallbackStatus.DONE, CallbackStatus.CANCELLED, CallbackStatus.FAILED}
    ),
}



class CallbackNotFound(LookupError):
    """No callback request has the id asked for."""


class CallbackRepository:
    """Callback requests: added by the IVR, listed for agents, closed with a final status."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock | None = None
    ) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()  # stamps updated_at

    async def add(self, request: CallbackRequest) -> CallbackRequest:
        """Store a new request; returns it with the id the store gave it."""
        values = _callback_values(request)
        values["updated_at"] = to_datetime(self._clock.now())
        async with self._sessions.begin() as session:
            inserted = insert(CallbackRow).values(values).returning(CallbackRow.id)
            new_id = (await session.execute(inserted)).scalar_one()
        return dataclasses.replace(request, id=new_id, status=CallbackStatus(values["status"]))

    async def get(self, callback_id: int) -> CallbackRequest | None:
        query = select(CallbackRow).where(CallbackRow.id == checked_callback_id(callback_id))
        async with self._sessions() as session:
            row = await session.scalar(query)
            return None if row is None else _to_callback(row)

    async def list(
        self,
        *,
        status: CallbackStatus | str | None = None,
        queue: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[builtins.list[CallbackRequest], int]:
        """A page of requests and how many match in all: pending ones first, oldest first."""
        check_page(limit, offset)
        conditions: builtins.list[ColumnElement[bool]] = []
        if status is not None:
            conditions.append(CallbackRow.status == enum_value("status", CallbackStatus, status))
        if queue is not None:
            conditions.append(CallbackRow.queue == required_text("queue", queue))
        pending_first = case((CallbackRow.status == CallbackStatus.PENDING.value, 0), else_=1)
        page = (
            select(CallbackRow)
            .where(*conditions)
            .order_by(pending_first, CallbackRow.requested_at, CallbackRow.id)
            .limit(limit)
            .offset(offset)
        )
        count = select(func.count()).select_from(CallbackRow).where(*conditions)
        async with self._sessions() as session:
            total = (await session.execute(count)).scalar_one()
            requests = [_to_callback(row) for row in await session.scalars(page)]
        return requests, total

    async def set_status(
        self, callback_id: int, status: CallbackStatus | str
    ) -> CallbackRequest:
        """Move a pending request to done, cancelled or failed; returns it as stored.

        Raises ``CallbackNotFound`` for an unknown id and ``ValueError`` for any other change.
        The change is one conditional UPDATE, so two clients racing cannot both make one.
        """
        row_id = checked_callback_id(callback_id)
        if status is None:
            raise ValueError("status: is required")
        new = CallbackStatus(enum_value("status", CallbackStatus, status))
        sources = [old.value for old, targets in CALLBACK_CHANGES.items() if new in targets]
        change = (
            update(CallbackRow)
            .where(CallbackRow.id == row_id, CallbackRow.status.in_(sources))
            .values(status=new.value, updated_at=to_datetime(self._clock.now()))
            .returning(CallbackRow)
            .execution_options(synchronize_session=False)
        )
        async with self._sessions.begin() as session:
            changed = (await session.scalars(change)).one_or_none()
            if changed is not None:
                return _to_callback(changed)
            current = await session.scalar(
                select(CallbackRow.status).where(CallbackRow.id == row_id)
            )
        if current is None:
            raise CallbackNotFound(f"callback request {row_id}: no such request")
        raise ValueError(
            f"callback request {row_id}: status cannot change from {current} to {new.value} "
            "(only pending may become done, cancelled or failed)"
        )


def checked_callback_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ROW_ID:
        raise ValueError(f"id: {value!r} is not a callback request id (a whole number from 1)")
    return value


def _callback_values(request: CallbackRequest) -> dict[str, Any]:
    """Column values for ``callback_requests``, after checking every field."""
    where = f"callback request for call {request.call_id!r}"
    if request.id is not None:
        raise ValueError(f"{where}: id: a new request has no id yet, got {request.id!r}")
    number = required_text(f"{where}: number", request.number)
    if not CALLBACK_NUMBER.fullmatch(number):
        raise ValueError(
            f"{where}: number: {number[:40]!r} is not a phone number (digits, maybe after +)"
        )
    return {
        "call_id": required_text(f"{where}: call_id", request.call_id),
        "queue": required_text(f"{where}: queue", request.queue),
        "number": number,
        "caller_name": text_value(f"{where}: caller_name", request.caller_name),
        "name_recording": text_value(f"{where}: name_recording", request.name_recording),
        "flow": required_text(f"{where}: flow", request.flow),
        "protocol": text_value(f"{where}: protocol", request.protocol),
        "requested_at": required_time(f"{where}: requested_at", request.requested_at),
        "status": enum_value(f"{where}: status", CallbackStatus, request.status),
        "queued_at": time_value(f"{where}: queued_at", request.queued_at),
    }


def _to_callback(row: CallbackRow) -> CallbackRequest:
    return CallbackRequest(
        id=row.id,
        call_id=row.call_id,
        queue=row.queue,
        number=row.number,
        caller_name=row.caller_name,
        name_recording=row.name_recording,
        flow=row.flow,
        protocol=row.protocol,
        requested_at=row.requested_at.timestamp(),
        status=CallbackStatus(row.status),
        queued_at=from_datetime(row.queued_at),
    )
