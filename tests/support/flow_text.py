"""Flow file texts for the flow tests: parse one written inline, or list its problems."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from callcenter.core.flows import Flow, FlowError, parse_flow

DEMO = Path(__file__).resolve().parents[2] / "dialplans" / "main.yaml"
QUEUES = {"sales", "support", "operator"}
PROMPTS = {"welcome", "main-menu", "invalid", "no-input", "goodbye"}


def parse(
    text: str,
    *,
    queues: set[str] = QUEUES,
    prompts: set[str] = PROMPTS,
    agents: set[str] | None = None,
) -> Flow:
    return parse_flow(
        textwrap.dedent(text).lstrip("\n"),  # line 1 is the first line of the text
        "test.yaml",
        known_queues=queues,
        prompt_exists=lambda name, language: name in prompts,
        known_agents=agents,
    )


def problems(text: str, **kwargs: set[str] | None) -> list[str]:
    with pytest.raises(FlowError) as caught:
        parse(text, **kwargs)
    return [str(p) for p in caught.value.problems]


FETCH = """\
name: dip
start: lookup
nodes:
  lookup:
    type: fetch
    url: "http://127.0.0.1:8080/demo/orders"
    params: {order: "caller.number"}
    result: {order_status: "status", eta: "delivery.days"}
    next: {node: route}
    on_failure: {queue: operator}
  route:
    type: condition
    if: "eta < 3 and order_status == 'shipped'"
    then: {queue: sales}
    else: {queue: support}
"""
