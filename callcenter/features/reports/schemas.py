"""What the FAQ report takes and answers (see web/contract.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from callcenter.core.identifiers import FLOW_NAME_RE
from callcenter.features.calls.store import FaqTopicFigures
from callcenter.features.reports.framework import PeriodQuery
from callcenter.web.contract import Answer, Time, TimeRange, name_param


class FaqQuery(TimeRange):
    flow: Annotated[name_param(FLOW_NAME_RE, "a flow name"),
                    Field(description="only this flow")] = None


class FaqTopic(Answer):
    flow: str
    topic: str
    heard: int = Field(ge=0)
    solved: int = Field(ge=0)
    not_solved: int = Field(ge=0)
    no_answer: int = Field(ge=0)
    hung_up: int = Field(ge=0)
    self_service_rate: float | None = Field(ge=0, le=1, description="solved / heard")

    @classmethod
    def of(cls, figures: FaqTopicFigures) -> FaqTopic:
        return cls(flow=figures.flow, topic=figures.topic, heard=figures.heard,
                   solved=figures.solved, not_solved=figures.not_solved,
                   no_answer=figures.no_answer, hung_up=figures.hung_up,
                   self_service_rate=figures.self_service_rate)


class FaqReport(Answer):
    since: Time | None
    until: Time | None
    flow: str | None
    topics: list[FaqTopic]


# --------------------------------------------------------------------------- queue report


class QueuesQuery(PeriodQuery):
    queue: Annotated[str | None, Field(description="only these queues, comma-separated "
                                                   "(e.g. sales,support); default: all")] = None


class QueueFiguresRow(Answer):
    """One queue (or ``*``: the queues asked for, together) over one interval (or the whole
    period: ``label`` "total"). Rates are fractions 0..1, times seconds; null: undefined."""

    start: Time
    end: Time
    label: str = Field(description="the interval in the report's zone, or 'total'")
    queue: str
    service_level_seconds: float | None = Field(description="T (null: queues differ)")
    offered: int = Field(ge=0)
    answered: int = Field(ge=0)
    abandoned: int = Field(ge=0)
    short_abandons: int = Field(ge=0)
    answered_within: int = Field(ge=0)
    abandoned_after: int = Field(ge=0)
    not_served: int = Field(ge=0)
    callbacks_requested: int = Field(ge=0)
    transfers_to_queue: int = Field(ge=0)
    handled: int = Field(ge=0)
    service_level: float | None = Field(ge=0, le=1)
    asa: float | None = Field(ge=0)
    aht: float | None = Field(ge=0, description="(talk + hold + wrap-up) ÷ handled")
    acw: float | None = Field(ge=0, description="after-call work: wrap-up ÷ handled")
    abandon_rate: float | None = Field(ge=0, le=1)
    longest_wait: float | None = Field(ge=0)
    talk_seconds: float = Field(ge=0)
    hold_seconds: float = Field(ge=0)
    wrap_up_seconds: float = Field(ge=0, description="the agents' ended wrap-ups after the "
                                                     "handled calls (docs/reports.md)")
    wrapped_calls: int = Field(ge=0, description="handled calls with a wrap-up counted")


class QueuesReport(Answer):
    since: Time
    until: Time
    interval: str
    time_zone: str
    queues: list[str]
    rows: list[QueueFiguresRow] = Field(description="each interval, each queue")
    overall: list[QueueFiguresRow] = Field(description="each interval, the queues together")
    totals: list[QueueFiguresRow] = Field(description="the whole period: each queue, then "
                                                      "the queues together")


# --------------------------------------------------------------------------- IVR report


class IvrRow(Answer):
    """The IVR over one interval (or the period: ``label`` "total")."""

    start: Time
    end: Time
    label: str
    ivr_calls: int = Field(ge=0)
    contained: int = Field(ge=0)
    containment_rate: float | None = Field(ge=0, le=1, description="contained / ivr_calls")
    abandoned_in_ivr: int = Field(ge=0)
    reached_queue: int = Field(ge=0)
    callbacks_requested: int = Field(ge=0)
    attendant_requests: int = Field(ge=0)
    faq_heard: int = Field(ge=0)
    faq_solved: int = Field(ge=0)
    self_service_rate: float | None = Field(ge=0, le=1, description="faq_solved / faq_heard")


class DropOff(Answer):
    node: str
    abandoned: int = Field(ge=0, description="calls abandoned in the IVR at this node")
    share: float | None = Field(ge=0, le=1, description="of all calls abandoned in the IVR")


class IvrReport(Answer):
    since: Time
    until: Time
    interval: str
    time_zone: str
    rows: list[IvrRow]
    total: IvrRow
    drop_offs: list[DropOff] = Field(description="most abandoned first")
    faq_topics: list[FaqTopic] = Field(description="the FAQ report over the period")


# --------------------------------------------------------------------------- surveys


class SurveysQuery(PeriodQuery):
    queue: Annotated[str | None, Field(description="only these queues, comma-separated; "
                                                   "default: all (and answers of calls "
                                                   "without a queue)")] = None


class SurveyRow(Answer):
    """Survey answers of one queue and agent over the period, or of every queue and agent
    asked for (``*``) over one interval."""

    start: Time
    end: Time
    label: str
    queue: str = Field(description="'' : calls without a queue; '*': all asked for")
    agent_id: str = Field(description="the rated agent; '': none; '*': all")
    csat_answers: int = Field(ge=0)
    csat_satisfied: int = Field(ge=0)
    csat_score_sum: int = Field(ge=0, description="the answers added up")
    csat: float | None = Field(ge=0, le=1, description="satisfied / answers")
    csat_average: float | None = Field(ge=1, le=5, description="mean answer, 1-5")
    nps_answers: int = Field(ge=0)
    nps_promoters: int = Field(ge=0)
    nps_passives: int = Field(ge=0)
    nps_detractors: int = Field(ge=0)
    nps: float | None = Field(ge=-100, le=100,
                              description="(promoters - detractors) / answers x 100")


class SurveysReport(Answer):
    since: Time
    until: Time
    interval: str
    time_zone: str
    by_agent: list[SurveyRow] = Field(description="the period, per queue and rated agent")
    overall: list[SurveyRow] = Field(description="each interval, everything asked for")
    total: SurveyRow
