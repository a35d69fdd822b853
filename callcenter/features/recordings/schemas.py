"""What the recording routes take and answer (see web/contract.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from callcenter.core.identifiers import AGENT_ID_RE, QUEUE_NAME_RE
from callcenter.core.recording_policy import RecordingReason
from callcenter.features.accounts.schemas import PathId
from callcenter.features.agent_transfers.schemas import CALL_ID
from callcenter.features.recordings.store import Recording, RecordingStatus
from callcenter.web.contract import (
    Answer,
    Body,
    PathArgs,
    Time,
    TimeRange,
    fail,
    name_param,
    pattern_text,
    whole_param,
)
from callcenter.web.params import iso


class RecordingPath(PathArgs):
    id: Annotated[PathId, Field(description="the recording's id (never a file name)")]


def _zero_or_one(raw: object) -> object:
    if isinstance(raw, str) and raw not in ("0", "1"):
        fail(f"{raw[:40]!r} is not 0 or 1")
    return raw == "1" if isinstance(raw, str) else raw


class RecordingQuery(TimeRange):
    agent: Annotated[name_param(AGENT_ID_RE, "an agent id"),
                     Field(description="only calls this agent took")] = None
    queue: Annotated[name_param(QUEUE_NAME_RE, "a queue name"),
                     Field(description="only calls of this queue")] = None
    with_audio: Annotated[bool, BeforeValidator(_zero_or_one),
                          Field(description="1: only recordings whose audio is stored")] = False
    limit: Annotated[whole_param(1, 1000), Field(description="at most this many")] = 100
    offset: Annotated[whole_param(0, 10_000_000), Field(description="skip this many")] = 0


class RecordingRequest(Body):
    call_id: Annotated[pattern_text(CALL_ID, "a call id (an Asterisk uniqueid such as "
                                             "1764745200.42)"),
                       Field(description="the call on now whose recording starts")]


class RecordingAnswer(Answer):
    id: int
    call_id: str
    queue: str | None
    campaign: str | None
    agent_id: str | None
    reason: str = Field(description=", ".join(r.value for r in RecordingReason))
    status: str = Field(description=", ".join(s.value for s in RecordingStatus))
    announced: bool = Field(description="the caller heard that the call may be recorded")
    announced_at: Time | None
    started_at: Time = Field(description="when the policy decided for the call")
    requested_at: Time | None = Field(description="on demand: when recording was asked for")
    requested_by: str | None
    ended_at: Time | None
    format: str
    seconds: float | None = Field(description="audio length, read from the file")
    size_bytes: int | None
    retention_days: int
    expires_at: Time
    deleted_at: Time | None
    deleted_by: str | None = Field(description="who deleted it: a user, or 'retention'")
    audio_url: str | None = Field(description="where supervisors fetch the audio (ranges "
                                              "allowed); null without stored audio")

    @classmethod
    def of(cls, r: Recording) -> RecordingAnswer:
        return cls(id=r.id, call_id=r.call_id, queue=r.queue, campaign=r.campaign,
                   agent_id=r.agent_id, reason=r.reason.value, status=r.status.value,
                   announced=r.announced, announced_at=iso(r.announced_at),
                   started_at=iso(r.started_at) or "", requested_at=iso(r.requested_at),
                   requested_by=r.requested_by, ended_at=iso(r.ended_at), format=r.format,
                   seconds=r.seconds, size_bytes=r.size_bytes,
                   retention_days=r.retention_days, expires_at=iso(r.expires_at) or "",
                   deleted_at=iso(r.deleted_at), deleted_by=r.deleted_by,
                   audio_url=f"/api/recordings/{r.id}/audio" if r.has_audio else None)


class RecordingList(Answer):
    recordings: list[RecordingAnswer]
