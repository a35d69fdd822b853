"""What an agent transfer request takes and answers (see web/contract.py)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field
from pydantic.json_schema import WithJsonSchema

from callcenter.features.agent_transfers.service import TransferMode, TransferTarget
from callcenter.features.supervision.dialplan import NAME_RE
from callcenter.features.supervision.schemas import AGENT_ID_SCHEMA, checked_name, mode_of
from callcenter.web.contract import (
    Answer,
    Body,
    PathArgs,
    fail,
    pattern_text,
    shown,
    whole_match,
)

TRANSFER_MODES = ", ".join(mode.value for mode in TransferMode)


# Asterisk uniqueids: "1764745200.42", or "<systemname>-1764745200.42"
CALL_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


TRANSFER_TARGET = {"oneOf": [
    {"type": "object", "properties": {"queue": whole_match(NAME_RE)}, "required": ["queue"],
     "additionalProperties": False,
     "description": "a queue: the caller waits there as a new entry"},
    {"type": "object", "properties": {"agent": AGENT_ID_SCHEMA}, "required": ["agent"],
     "additionalProperties": False,
     "description": "an agent: the caller waits for them only"},
]}


def _target(value: object) -> TransferTarget:
    if not isinstance(value, dict) or len(value) != 1 or set(value) - {"queue", "agent"}:
        fail('expected {"queue": "<name>"} or {"agent": "<agent id>"}, '
             f"got {shown(value)}")
    if "queue" in value:
        return TransferTarget(queue=checked_name(value["queue"], "to.queue", "a queue name"))
    return TransferTarget(agent=checked_name(value["agent"], "to.agent", "an agent id"))


class CallPath(PathArgs):
    call_id: Annotated[pattern_text(CALL_ID, "a call id (an Asterisk uniqueid such as "
                                    "1764745200.42)"),
                       Field(description="the call's id (its caller channel's Asterisk "
                                         "Uniqueid)")]


class TransferRequest(Body):
    to: Annotated[TransferTarget, BeforeValidator(_target), WithJsonSchema(TRANSFER_TARGET)]
    mode: Annotated[str, mode_of(TransferMode, TRANSFER_MODES),
                    WithJsonSchema({"type": "string", "enum": [m.value for m in TransferMode],
                                    "default": "blind"})] = TransferMode.BLIND.value


class TransferStarted(Answer):
    """Blind: the caller left the agent and waits for the target. Attended: the caller is on
    hold while the agents talk."""

    call_id: str = Field(description="the transferred call")
    from_agent: Annotated[str, WithJsonSchema(AGENT_ID_SCHEMA)]
    to: Annotated[dict[str, str], WithJsonSchema(TRANSFER_TARGET)]
    mode: Annotated[str, WithJsonSchema({"type": "string",
                                         "enum": [m.value for m in TransferMode]})]
    consulting: Annotated[str | None, WithJsonSchema({"anyOf": [
        {**AGENT_ID_SCHEMA, "description": "attended: the agent being consulted (for a "
                                           "queue, the one its routing picked)"},
        {"type": "null"}]})]
