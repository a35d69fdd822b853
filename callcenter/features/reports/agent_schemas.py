"""What the agent and campaign reports take and answer (see web/contract.py)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic.json_schema import WithJsonSchema

from callcenter.core.identifiers import CAMPAIGN_NAME_RE, QUEUE_NAME_RE, STORED_AGENT_ID_RE
from callcenter.features.reports.framework import PeriodQuery
from callcenter.web.contract import Answer, Time, fail

MAX_NAMES = 500  # names in one filter


def name_list(regex: re.Pattern[str], what: str) -> Any:
    """``a,b,c``: names of one kind, each well formed (whether each exists is the handler's
    to say); "" is none."""
    def validate(raw: object) -> object:
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str):
            fail(f"expected {what}s separated by commas, got {raw!r}")
        names = [name.strip() for name in raw.split(",")]
        if len(names) > MAX_NAMES:
            fail(f"at most {MAX_NAMES} names")
        for name in names:
            if not regex.fullmatch(name):
                fail(f"{name[:40]!r} is not {what}")
        return ",".join(dict.fromkeys(names))
    return Annotated[str | None, BeforeValidator(validate),
                     WithJsonSchema({"type": "string", "example": "a,b"})]


# --------------------------------------------------------------------------- agents


class AgentReportQuery(PeriodQuery):
    agent: Annotated[name_list(STORED_AGENT_ID_RE, "an agent id"),
                     Field(description="only these agents (comma-separated)")] = None
    queue: Annotated[name_list(QUEUE_NAME_RE, "a queue name"),
                     Field(description="only the agents serving these queues (any tier, "
                                       "as configured now)")] = None


class AgentFigures(Answer):
    start: Time = Field(description="the interval's start (UTC); the period's for totals")
    end: Time
    label: str = Field(description="the interval in the report's zone, or 'total'")
    agent_id: str
    agent_name: str
    logged_in_seconds: float = Field(ge=0, description="every state but logged out")
    ready_seconds: float = Field(ge=0, description="ready, waiting for a call")
    ringing_seconds: float = Field(ge=0, description="a call offered, ringing")
    talk_seconds: float = Field(ge=0, description="on a call, not holding")
    hold_seconds: float = Field(ge=0, description="holding a caller")
    wrap_up_seconds: float = Field(ge=0)
    handle_seconds: float = Field(ge=0, description="talk + hold + wrap-up")
    paused_seconds: float = Field(ge=0, description="paused, all reasons")
    paused_by_reason: dict[str, float] = Field(description="paused seconds per reason")
    occupancy: float | None = Field(ge=0, le=1, description=(
        "handle / (handle + ready + ringing); paused time in neither; null with no such "
        "time"))
    utilisation: float | None = Field(ge=0, le=1, description=(
        "handle / logged in; null when not logged in"))
    calls_handled: int = Field(ge=0, description="calls answered")
    transfers: int = Field(ge=0, description="transfers made that the target took")
    points: int = Field(description="productivity points ([reports] points_*)")


class AgentReport(Answer):
    since: Time
    until: Time
    interval: str
    time_zone: str
    rows: list[AgentFigures] = Field(description=(
        "per interval and agent, only where the agent has any figure"))
    totals: list[AgentFigures] = Field(description=(
        "per agent over the whole period: every agent asked for, zeros included"))


# --------------------------------------------------------------------------- campaigns


class CampaignReportQuery(PeriodQuery):
    campaign: Annotated[name_list(CAMPAIGN_NAME_RE, "a campaign name"),
                        Field(description="only these campaigns (comma-separated); "
                                          "none: every campaign")] = None


class Amount(Answer):
    currency: str
    amount: str = Field(description="a decimal number, exact")


class CampaignFiguresRow(Answer):
    start: Time
    end: Time
    label: str = Field(description="the interval in the report's zone, or 'total'")
    campaign: str
    attempts: int = Field(ge=0, description="calls placed")
    outcomes: dict[str, int] = Field(description="attempts placed by how they ended")
    live_answers: int = Field(ge=0, description="a person answered (human or dropped)")
    contacts: int = Field(ge=0, description="a person talked to an agent")
    abandoned: int = Field(ge=0, description="live answers no agent took within 2 s")
    abandon_rate: float = Field(ge=0, le=1, description=(
        "abandoned / live answers in the interval, machines excluded; 0 with none"))
    abandon_rate_30_days: float = Field(ge=0, le=1, description=(
        "the same over the 30 days that end with the interval"))
    agent_hours: float = Field(ge=0, description=(
        "logged-in hours of the agents serving the campaign's queue"))
    contacts_per_agent_hour: float | None = Field(ge=0, description=(
        "contacts / agent hours; null with no agent hours"))
    dispositions: dict[str, int] = Field(description="contacts by the agent's disposition")
    conversion: dict[str, float] = Field(description="per disposition: its share of "
                                                     "contacts")
    cost: list[Amount] | None = Field(description=(
        "what the campaign's calls cost, per currency; null when rating is not set up"))


class CampaignReport(Answer):
    since: Time
    until: Time
    interval: str
    time_zone: str
    rows: list[CampaignFiguresRow] = Field(description="per interval and campaign")
    totals: list[CampaignFiguresRow] = Field(description="per campaign over the period")
