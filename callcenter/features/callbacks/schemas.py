"""What the callbacks API takes and answers (see web/contract.py)."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Annotated

from pydantic import BeforeValidator, ConfigDict, Field
from pydantic.json_schema import WithJsonSchema

from callcenter.core.records import CallbackRequest, CallbackStatus
from callcenter.features.calls.schemas import MAX_OFFSET, PAGE_SIZE
from callcenter.store.values import MAX_ROW_ID
from callcenter.web.contract import (
    TIME_SCHEMA,
    Answer,
    Body,
    PathArgs,
    Query,
    Time,
    fail,
    name_param,
    shown,
    whole_param,
)
from callcenter.web.params import MAX_LIMIT, QUEUE_NAME, iso, json_kind

STATUSES = ", ".join(status.value for status in CallbackStatus)


STATUS_PARAM = re.compile("|".join(status.value for status in CallbackStatus))


CALLBACK_ID = re.compile(r"[0-9]{1,19}")


CLOSING = (CallbackStatus.DONE, CallbackStatus.CANCELLED, CallbackStatus.FAILED)


class CallbackList(Query):
    status: Annotated[name_param(STATUS_PARAM, f"one of {STATUSES}",
                                 json_schema={"type": "string",
                                              "enum": [s.value for s in CallbackStatus]}),
                      Field(description="only this status")] = None
    queue: Annotated[name_param(QUEUE_NAME, "a queue name"),
                     Field(description="only this queue")] = None
    limit: Annotated[whole_param(1, MAX_LIMIT), Field(description="page size")] = PAGE_SIZE
    offset: Annotated[whole_param(0, MAX_OFFSET), Field(description="rows to skip")] = 0


def _callback_id(raw: object) -> object:
    if not isinstance(raw, str) or not CALLBACK_ID.fullmatch(raw) or \
            not 1 <= int(raw) <= MAX_ROW_ID:
        fail(f"{str(raw)[:40]!r} is not a callback request id (a whole number from 1)")
    return int(raw)


class CallbackPath(PathArgs):
    id: Annotated[int, BeforeValidator(_callback_id),
                  WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID}),
                  Field(description="the callback request's id")]


def _status(value: object) -> CallbackStatus:
    if not isinstance(value, str):  # missing and null alike: "got nothing"
        fail(f"expected one of {STATUSES}, got {json_kind(value, none='nothing')}")
    try:
        return CallbackStatus(value)
    except ValueError:
        fail(f"{shown(value)} is not one of {STATUSES}")


class CallbackClosing(Body):
    # Not required as such: a body without it is refused by its own check ("got nothing").
    model_config = ConfigDict(json_schema_extra={"required": ["status"]})

    status: Annotated[CallbackStatus, BeforeValidator(_status),
                      WithJsonSchema({"type": "string", "enum": [s.value for s in CLOSING]}),
                      Field(validate_default=True)] = None  # type: ignore[assignment]


class Callback(Answer):
    id: int = Field(ge=1, le=MAX_ROW_ID)
    call_id: str = Field(description="the call that asked")
    queue: str
    number: str = Field(description="the number to call back, as the caller confirmed it")
    requested_at: Time
    flow: str
    protocol: str | None
    caller_name: str | None
    name_recording: str | None = Field(description="Asterisk's path of the recorded name")
    status: Annotated[str, WithJsonSchema({"type": "string",
                                           "enum": [s.value for s in CallbackStatus]})]
    queued_at: Annotated[Time | None, WithJsonSchema({"anyOf": [
        {**TIME_SCHEMA, "description": "when the customer joined the line the callback "
                                       "keeps; null: requested_at"}, {"type": "null"}]})]

    @classmethod
    def of(cls, request: CallbackRequest) -> Callback:
        return cls(**{**asdict(request), "status": request.status.value,
                      "requested_at": iso(request.requested_at),
                      "queued_at": iso(request.queued_at)})


class CallbackPage(Answer):
    """Pending first, then oldest first."""

    total: int = Field(ge=0)
    limit: int = Field(ge=1, le=MAX_LIMIT)
    offset: int = Field(ge=0)
    callbacks: list[Callback]
