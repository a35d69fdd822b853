"""What the wallboard answers and publishes (see web/contract.py): the board's snapshot,
the same on ``GET /api/wallboard`` and in ``wallboard`` live events, and the alerts of
``wallboard_alert`` live events. docs/wallboard.md says what each figure means."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic.json_schema import WithJsonSchema

from callcenter.core.acd_actions import AgentState
from callcenter.core.wallboard import (
    AgentOnBoard,
    Alert,
    AlertRaised,
    Figure,
    QueueTargets,
    Tally,
    Wallboard,
)
from callcenter.features.agents.schemas import AgentRef
from callcenter.web.contract import Answer, Seconds, Time, whole_match
from callcenter.web.params import QUEUE_NAME, iso

FIGURE_SCHEMA = {"type": "string", "enum": [f.value for f in Figure]}
STATE_SCHEMA = {"type": "string", "enum": [s.value for s in AgentState]}
Fraction = Annotated[float | None, Field(ge=0, le=1)]
QueueName = Annotated[str, WithJsonSchema(whole_match(QUEUE_NAME))]


class BoardAgent(Answer):
    """A logged-in agent, with the state they are in and since when."""

    agent_id: AgentRef
    state: Annotated[str, WithJsonSchema(STATE_SCHEMA)]
    reason: str | None = Field(description="the pause reason (paused only)")
    since: Time
    seconds_in_state: Seconds = Field(description="at the snapshot's time")
    queues: list[QueueName] = Field(description="the queues the agent serves first (tier 0)")

    @classmethod
    def of(cls, agent: AgentOnBoard, now: float) -> BoardAgent:
        return cls(agent_id=agent.agent_id, state=agent.state.value, reason=agent.reason,
                   since=iso(agent.since), seconds_in_state=round(max(0.0, now - agent.since), 3),
                   queues=list(agent.queues))


class TodayFigures(Answer):
    """The queue's calls of the center's day so far (docs/wallboard.md)."""

    offered: int = Field(ge=0, description="calls that joined the queue today")
    answered: int = Field(ge=0)
    answered_in_time: int = Field(ge=0, description="answered within service_level_seconds")
    abandoned: int = Field(ge=0, description="hung up waiting (short abandons too)")
    abandoned_after_t: int = Field(ge=0, description="abandoned after service_level_seconds")
    short_abandoned: int = Field(ge=0, description="of abandoned, those who hung up within "
                                                    "short_abandon_seconds, shown apart")
    service_level: Fraction = Field(description="answered_in_time / (answered + "
                                                "abandoned_after_t); null: no such call yet")
    abandon_rate: Fraction = Field(description="abandoned / offered; null: no call yet")

    @classmethod
    def of(cls, tally: Tally) -> TodayFigures:
        return cls(offered=tally.offered, answered=tally.answered,
                   answered_in_time=tally.answered_in_time, abandoned=tally.abandoned,
                   abandoned_after_t=tally.abandoned_after_t,
                   short_abandoned=tally.short_abandoned,
                   service_level=_ratio(tally.service_level),
                   abandon_rate=_ratio(tally.abandon_rate))


class BoardTargets(Answer):
    service_level_seconds: Seconds
    short_abandon_seconds: Seconds
    service_level_below: Fraction = Field(description="alert below this; null: no alert")
    abandon_rate_above: Fraction = Field(description="alert above this; null: no alert")
    hysteresis: Fraction
    min_calls: int = Field(ge=1)

    @classmethod
    def of(cls, targets: QueueTargets) -> BoardTargets:
        return cls(service_level_seconds=targets.service_level_seconds,
                   short_abandon_seconds=targets.short_abandon_seconds,
                   service_level_below=targets.service_level_below,
                   abandon_rate_above=targets.abandon_rate_above,
                   hysteresis=targets.hysteresis, min_calls=targets.min_calls)


class BoardQueue(Answer):
    name: QueueName
    waiting: int = Field(ge=0, description="callers in line now (waiting or ringing)")
    longest_waiting_since: Time | None = Field(description="when the longest-waiting caller "
                                                           "began waiting; null: nobody")
    longest_wait: Seconds = Field(description="that caller's wait at the snapshot's time")
    agents: dict[str, int] = Field(description="its tier-0 agents logged in, by state")
    today: TodayFigures
    alerts: list[Annotated[str, WithJsonSchema(FIGURE_SCHEMA)]] = Field(
        description="the figures whose alert is raised now")
    targets: BoardTargets


class WallboardSnapshot(Answer):
    """Everything a wallboard shows, at one instant."""

    at: Time
    day: str = Field(description="the center's day the figures are of (YYYY-MM-DD)")
    time_zone: str
    queues: list[BoardQueue]
    agents: list[BoardAgent] = Field(description="agents logged in, in the ACD's order")

    @classmethod
    def of(cls, board: Wallboard, now: float) -> WallboardSnapshot:
        agents = [agent for agent in board.agents() if agent.state is not AgentState.LOGGED_OUT]
        queues = []
        for name in board.queue_names:
            in_line = board.waiting(name)
            by_state = {state.value: 0 for state in AgentState
                        if state is not AgentState.LOGGED_OUT}
            for agent in agents:
                if name in agent.queues:
                    by_state[agent.state.value] += 1
            since = in_line.longest_waiting_since
            queues.append(BoardQueue(
                name=name, waiting=in_line.waiting,
                longest_waiting_since=None if since is None else iso(since),
                longest_wait=0.0 if since is None else round(max(0.0, now - since), 3),
                agents=by_state, today=TodayFigures.of(board.tally(name)),
                alerts=[figure.value for figure in board.alerts_raised(name)],
                targets=BoardTargets.of(board.targets(name))))
        return cls(at=iso(now), day=board.day.day.isoformat(), time_zone=board.zone.key,
                   queues=queues, agents=[BoardAgent.of(agent, now) for agent in agents])


class WallboardAlert(Answer):
    """A figure crossed its threshold (``raised``), or came back far enough (``cleared``)."""

    queue: QueueName
    figure: Annotated[str, WithJsonSchema(FIGURE_SCHEMA)]
    change: Annotated[str, WithJsonSchema({"type": "string", "enum": ["raised", "cleared"]})]
    value: Fraction = Field(description="the figure now; null: a new day began")
    threshold: Annotated[float, Field(ge=0, le=1)]
    at: Time

    @classmethod
    def of(cls, alert: Alert) -> WallboardAlert:
        return cls(queue=alert.queue, figure=alert.figure.value,
                   change="raised" if isinstance(alert, AlertRaised) else "cleared",
                   value=_ratio(alert.value), threshold=alert.threshold, at=iso(alert.at))


def _ratio(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
