"""What the FAQ report takes and answers (see web/contract.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from callcenter.core.identifiers import FLOW_NAME_RE
from callcenter.features.calls.store import FaqTopicFigures
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
