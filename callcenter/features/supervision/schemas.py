"""What the supervision API takes and answers (see web/contract.py), and the name checks the
agent transfers' contract shares."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic.json_schema import WithJsonSchema

from callcenter.features.agent_transfers.service import TransferMode
from callcenter.features.supervision.dialplan import NAME_RE, SpyMode
from callcenter.web.contract import (
    Answer,
    Body,
    fail,
    pattern_text,
    shown,
    whole_match,
)

MODES = ", ".join(mode.value for mode in SpyMode)


NAME_RULE = "(lower-case letters, digits, _ and -, starting with a letter)"


AGENT_ID_SCHEMA = {**whole_match(NAME_RE), "description": "the agent's id, also their SIP "
                                                         "user name"}


def checked_name(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str):
        fail(f"expected {what}, got {shown(value)}", where=where)
    if not NAME_RE.fullmatch(value):
        fail(f"{value[:40]!r} is not {what} {NAME_RULE}", where=where)
    return value


def mode_of(modes: type[SpyMode] | type[TransferMode], listed: str) -> BeforeValidator:
    def validate(value: object) -> object:
        if not isinstance(value, str) or value not in {m.value for m in modes}:
            fail(f"expected one of {listed}, got {shown(value)}")
        return value
    return BeforeValidator(validate)


class SpyRequest(Body):
    agent_id: pattern_text(NAME_RE, f"an agent id {NAME_RULE}", expected="an agent id",
                           **AGENT_ID_SCHEMA)
    mode: Annotated[str, mode_of(SpyMode, MODES),
                    WithJsonSchema({"type": "string", "enum": [m.value for m in SpyMode]})]
    phone: pattern_text(NAME_RE, f"a phone endpoint name {NAME_RULE}",
                        expected="a phone endpoint name", nullable=True,
                        description="the supervisor's phone (a PJSIP endpoint); default: the "
                                    "signed-in user's agent id") = None


class SupervisionStarted(Answer):
    """Asterisk is calling the supervisor's phone."""

    agent_id: Annotated[str, WithJsonSchema(AGENT_ID_SCHEMA)]
    mode: Annotated[str, WithJsonSchema({"type": "string",
                                         "enum": [m.value for m in SpyMode]})]
    phone: Annotated[str, WithJsonSchema({
        **AGENT_ID_SCHEMA, "description": "the supervisor's phone endpoint being called"})]
    call_id: str | None = Field(description="the call the agent is on")
