"""GET /api/reports/faq: how each IVR FAQ answer did, per flow and topic.

``self_service_rate`` is solved ÷ heard (DOMAIN.md's self-service resolution), null when
nothing was heard. Answers count by the time they were heard, in [since, until).
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field

from callcenter.core.identifiers import FLOW_NAME_RE
from callcenter.features.calls.store import FaqTopicFigures
from callcenter.web.auth import STAFF
from callcenter.web.contract import Answer, Endpoint, Time, TimeRange, name_param, ok
from callcenter.web.keys import CALLS
from callcenter.web.params import bad_request, iso


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


async def faq_report(request: web.Request, query: FaqQuery) -> web.Response:
    try:
        topics = await request.app[CALLS].faq_report(query.since, query.until, query.flow)
    except ValueError as exc:  # the store's own checks: still the client's mistake
        raise bad_request(str(exc)) from None
    return FaqReport(since=iso(query.since), until=iso(query.until), flow=query.flow,
                     topics=[FaqTopic.of(t) for t in topics]).response()


FAQ_ENDPOINT = Endpoint(
    "GET", "/api/reports/faq", faq_report, STAFF,
    "How each IVR FAQ answer did, per flow and topic", "reports", {200: ok(FaqReport)},
    query=FaqQuery,
    description="Answers count by the time they were heard, in [since, until). "
                "`self_service_rate` is solved / heard, null when nothing was heard.")
