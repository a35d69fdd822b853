"""Runs the wallboard live: feeds the pure board (core/wallboard.py) and publishes it.

Fed by
- the ACD's agent state changes (``agent_changed``, an ``AcdDriver`` listener),
- every version of a call record handed to the record writer (``record_changed``, a
  ``RecordWriter`` listener): a call counts when it joins a queue, again when it is answered
  or abandoned;
- once a second, what each queue holds now (the ACD's ``queue_stats``: O(queues + callers
  in line + members), not per event).

Each of those is O(1) for the board and never touches the database; only ``rebuild`` (at
start) reads today's stored records. Published on the event hub: ``wallboard_alert`` at once
for each alert, and ``wallboard`` (the whole snapshot) at most once a second, only when
something the board shows changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from callcenter.config import Settings
from callcenter.core.acd_actions import AgentState, AgentStateChanged, AgentView, QueueView
from callcenter.core.clock import Clock
from callcenter.core.records import CallRecord
from callcenter.core.wallboard import (
    AgentOnBoard,
    Alert,
    QueueNow,
    QueueTargets,
    Wallboard,
    progress_of,
    rebuild,
)
from callcenter.features.wallboard.schemas import WallboardAlert, WallboardSnapshot

log = logging.getLogger(__name__)

SNAPSHOT_KIND = "wallboard"
ALERT_KIND = "wallboard_alert"
EVENT_KINDS = (SNAPSHOT_KIND, ALERT_KIND)
Publish = Callable[[str, Mapping[str, Any]], None]


class LiveAcd(Protocol):
    """What the board reads from the ACD (features/queues/driver.py ``AcdDriver``)."""

    def agent(self, agent_id: str) -> AgentView: ...

    def agents(self) -> list[AgentView]: ...

    def queue_stats(self, queue: str) -> QueueView: ...


def queue_targets(settings: Settings) -> dict[str, QueueTargets]:
    """Each queue's targets from the settings (percentages there, fractions here; 0: no
    alert)."""
    center = settings.center
    return {q.name: QueueTargets(
        service_level_seconds=q.service_level_seconds,
        short_abandon_seconds=q.short_abandon_seconds,
        service_level_below=q.alert_service_level_below / 100 or None,
        abandon_rate_above=q.alert_abandon_rate_above / 100 or None,
        hysteresis=center.alert_hysteresis_percent / 100, min_calls=center.alert_min_calls)
        for q in settings.queues}


def on_board(view: AgentView) -> AgentOnBoard:
    return AgentOnBoard(view.agent_id, view.state,
                        view.reason if view.state is AgentState.PAUSED else None,
                        view.since, view.queues)


class WallboardService:
    def __init__(self, board: Wallboard, *, acd: LiveAcd, clock: Clock,
                 publish: Publish | None = None, interval: float = 1.0) -> None:
        self.board = board
        self._acd = acd
        self._clock = clock
        self._publish = publish
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.published = 0  # snapshots published (tests, metrics)

    # ------------------------------------------------------------------ feeding

    def rebuild(self, records: Iterable[CallRecord]) -> None:
        """Today's calls from stored records, and the agents as the ACD has them now. The
        alerts this raises are the board's state, not news: they are not published."""
        rebuild(self.board, records, self._clock.now())
        for view in self._acd.agents():
            self.board.agent(on_board(view))

    def agent_changed(self, change: AgentStateChanged) -> None:
        try:
            view = self._acd.agent(change.agent_id)
        except ValueError:  # removed from routing: off the board
            self.board.agent_gone(change.agent_id)
            return
        # The view's state is the latest; a listener may hear an older change after it.
        self.board.agent(on_board(view))

    def record_changed(self, record: CallRecord) -> None:
        progress = progress_of(record)
        if progress is not None:
            self._send_alerts(self.board.call(progress, self._clock.now()))

    # ------------------------------------------------------------------ publishing

    def refresh(self) -> bool:
        """What the queues hold now and the day's turn; publish the snapshot if anything
        changed. True when one was published."""
        now = self._clock.now()
        self._send_alerts(self.board.advance(now))
        for name in self.board.queue_names:
            stats = self._acd.queue_stats(name)
            # Rounded: "since" is now - wait, and the subtraction wobbles in the last bits.
            since = round(now - stats.longest_wait, 3) if stats.waiting else None
            self.board.queue_now(name, QueueNow(stats.waiting, since))
        if not self.board.take_changed():
            return False
        if self._publish is not None:
            try:
                self._publish(SNAPSHOT_KIND, self.snapshot().model_dump(mode="json"))
                self.published += 1
            except Exception:  # live screens are a nicety: calls go on all the same
                log.exception("the wallboard snapshot was not published")
        return True

    def snapshot(self) -> WallboardSnapshot:
        return WallboardSnapshot.of(self.board, self._clock.now())

    def _send_alerts(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            log.warning("wallboard: queue %s %s %s (%s, threshold %s)", alert.queue,
                        alert.figure.value, type(alert).__name__, alert.value, alert.threshold)
            if self._publish is None:
                continue
            try:
                self._publish(ALERT_KIND, WallboardAlert.of(alert).model_dump(mode="json"))
            except Exception:
                log.exception("a wallboard alert was not published")

    # ------------------------------------------------------------------ lifetime

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="wallboard")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                self.refresh()
            except Exception:
                log.exception("the wallboard could not be refreshed")
            await asyncio.sleep(self._interval)
