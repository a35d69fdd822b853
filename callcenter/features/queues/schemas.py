"""What the queues API takes and answers (see web/contract.py): a queue's rules, its
callers in line and its members now."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field
from pydantic.json_schema import WithJsonSchema

from callcenter.config import STRATEGIES
from callcenter.core.acd_actions import AgentState as LiveState
from callcenter.core.acd_actions import CallState
from callcenter.core.callback_offers import NoOfferReason, NotOffered
from callcenter.features.agents.admin import (
    QueueStatus,
)
from callcenter.features.agents.schemas import NAME_SCHEMA, AgentRef
from callcenter.features.agents.store import MAX_TIER as STORED_MAX_TIER
from callcenter.features.calls.schemas import MeasuredSeconds
from callcenter.web.contract import (
    Answer,
    PathArgs,
    Seconds,
    Time,
    pattern_text,
    whole_match,
)
from callcenter.web.params import QUEUE_NAME, iso


class QueuePath(PathArgs):
    name: Annotated[pattern_text(QUEUE_NAME, "a queue name"),
                    Field(description="the queue's name")]



class QueueRules(Answer):
    """The queue's settings (seconds; null: not used)."""

    ring_timeout: int = Field(ge=1)
    max_wait: int = Field(ge=1)
    max_length: int | None = Field(ge=1)
    overflow_to: Annotated[str | None, WithJsonSchema(
        {"anyOf": [whole_match(QUEUE_NAME), {"type": "null"}]})]
    tier_delays: list[Annotated[int, Field(ge=0)]]
    relax_every: int | None = Field(ge=1)
    wrap_up: int | None = Field(ge=0, description="seconds; null: until the agent is ready")
    announce_every: int | None = Field(ge=1)
    offer_callback: bool
    rona_pause: bool
    service_level_seconds: int = Field(ge=1)
    moh_class: str


class QueueMember(Answer):
    """An active agent serving the queue (tiers as stored; see POST /api/agents)."""

    agent_id: AgentRef
    name: Annotated[str, WithJsonSchema(NAME_SCHEMA)]
    tier: int = Field(ge=0, le=STORED_MAX_TIER)
    state: Annotated[str | None, WithJsonSchema(
        {"anyOf": [{"type": "string", "enum": [s.value for s in LiveState]},
                   {"type": "null"}]})]


_Levels = Annotated[dict[str, int], WithJsonSchema(
    {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1, "maximum": 10},
     "description": "skill -> level"})]


class QueuedCall(Answer):
    """A call in line, not answered yet."""

    call_id: str
    state: Annotated[str, WithJsonSchema({"type": "string",
                                          "enum": [s.value for s in CallState]})]
    position: int = Field(ge=1, description="1: next in line")
    expected_wait: MeasuredSeconds = Field(description="seconds, from measured handling times")
    priority: int = Field(description="higher goes first")
    virtual: bool = Field(description="waiting for a callback (virtual hold)")
    waiting_since: Time
    joined_at: Time
    skills: _Levels = Field(description="skills the call asked for")
    needed: _Levels = Field(description="skills still required after relaxation")
    agent_id: AgentRef | None = Field(description="the agent being rung")
    for_agent: AgentRef | None = Field(description="only this agent may take it")
    tried: list[AgentRef]
    last_failure: str | None = Field(description="the last agent's offer that failed, and why")

    @classmethod
    def of(cls, call: Mapping[str, Any]) -> QueuedCall:
        """From the ACD's snapshot of the call (core/acd.py ``snapshot``)."""
        return cls(
            call_id=call["call_id"], state=call["state"], position=call["position"],
            expected_wait=round(call["expected_wait"], 3), priority=call["priority"],
            virtual=call["virtual"], waiting_since=iso(call["waiting_since"]),
            joined_at=iso(call["joined_at"]), skills=call["skills"], needed=call["needed"],
            agent_id=call["agent_id"], for_agent=call["for_agent"], tried=call["tried"],
            last_failure=call["last_failure"])


class NotOfferedReason(Answer):
    reason: Annotated[str, WithJsonSchema({"type": "string",
                                           "enum": [r.value for r in NoOfferReason]})]
    text: str
    waiting: int = Field(ge=0)
    last_day: int = Field(ge=0)


class CallbacksNotOffered(Answer):
    """Callers a queue with offer_callback could not offer a callback, by reason: no number,
    a number the [outbound] rules refuse, no trunk."""

    waiting: int = Field(ge=0, description="callers waiting now who were not offered one")
    last_day: int = Field(ge=0, description="callers not offered one in the last 24 hours")
    reasons: list[NotOfferedReason]

    @classmethod
    def of(cls, figures: NotOffered) -> CallbacksNotOffered:
        return cls(waiting=figures.waiting, last_day=figures.recent, reasons=[
            NotOfferedReason(reason=count.reason.value, text=count.reason.text,
                             waiting=count.waiting, last_day=count.recent)
            for count in figures.reasons])


class Queue(Answer):
    """A queue's rules and what is happening in it now. ready, busy (ringing or on a call),
    wrap_up, paused and logged_in count its tier-0 members."""

    name: Annotated[str, WithJsonSchema(whole_match(QUEUE_NAME))]
    strategy: Annotated[str, WithJsonSchema({"type": "string", "enum": list(STRATEGIES)})]
    waiting: int = Field(ge=0, description="calls in line (waiting, ringing, virtual)")
    longest_wait: Seconds
    ready: int = Field(ge=0)
    busy: int = Field(ge=0)
    wrap_up: int = Field(ge=0)
    paused: int = Field(ge=0)
    logged_in: int = Field(ge=0)
    aht: Seconds = Field(description="average handling time (talk + wrap-up)")
    rules: QueueRules
    calls: list[QueuedCall]
    # Callers this queue would offer a callback but cannot (no number, a number the
    # [outbound] rules refuse, no trunk): waiting now and over the last day, by reason.
    callbacks_not_offered: CallbacksNotOffered | None
    members: list[QueueMember]

    @classmethod
    def of(cls, queue: QueueStatus) -> Queue:
        rules, stats = queue.rules, queue.stats
        return cls(
            name=rules.name, strategy=rules.strategy, waiting=stats.waiting,
            longest_wait=round(stats.longest_wait, 3), ready=stats.ready, busy=stats.busy,
            wrap_up=stats.wrap_up, paused=stats.paused, logged_in=stats.logged_in,
            aht=round(stats.aht, 3),
            rules=QueueRules(
                ring_timeout=rules.ring_timeout, max_wait=rules.max_wait,
                max_length=rules.max_length or None, overflow_to=rules.overflow_to or None,
                tier_delays=list(rules.tier_delays), relax_every=rules.relax_every or None,
                wrap_up=None if rules.manual_wrap_up else rules.wrap_up,
                announce_every=rules.announce_every or None,
                offer_callback=rules.offer_callback, rona_pause=rules.rona_pause,
                service_level_seconds=rules.service_level_seconds, moh_class=rules.moh_class),
            calls=[QueuedCall.of(call) for call in queue.calls],
            callbacks_not_offered=(None if queue.callbacks_not_offered is None
                                   else CallbacksNotOffered.of(queue.callbacks_not_offered)),
            members=[QueueMember(agent_id=m.agent_id, name=m.name, tier=m.tier,
                                 state=None if m.state is None else m.state.value)
                     for m in queue.members])


class QueueList(Answer):
    queues: list[Queue]


