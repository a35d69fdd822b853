"""GET /api/reports/faq: how each IVR FAQ answer did, per flow and topic.

``self_service_rate`` is solved ÷ heard (DOMAIN.md's self-service resolution), null when
nothing was heard. Answers count by the time they were heard, in [since, until).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from callcenter.core.flows.names import FLOW_NAME_RE
from callcenter.store.repositories import FaqTopicFigures
from callcenter.web.keys import CALLS
from callcenter.web.params import bad_request, check_params, iso, name_param, time_range_params

FAQ_PARAMS = {"since", "until", "flow"}


def topic_json(figures: FaqTopicFigures) -> dict[str, Any]:
    return {
        "flow": figures.flow,
        "topic": figures.topic,
        "heard": figures.heard,
        "solved": figures.solved,
        "not_solved": figures.not_solved,
        "no_answer": figures.no_answer,
        "hung_up": figures.hung_up,
        "self_service_rate": figures.self_service_rate,
    }


async def faq_report(request: web.Request) -> web.Response:
    check_params(request, FAQ_PARAMS)
    since, until = time_range_params(request)
    flow = name_param(request, "flow", FLOW_NAME_RE, "a flow name")
    try:
        topics = await request.app[CALLS].faq_report(since, until, flow)
    except ValueError as exc:  # the store's own checks: still the client's mistake
        raise bad_request(str(exc)) from None
    return web.json_response({
        "since": iso(since),
        "until": iso(until),
        "flow": flow,
        "topics": [topic_json(t) for t in topics],
    })
