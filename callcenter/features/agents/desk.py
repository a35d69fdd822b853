"""Agents' requests, from their phones' feature codes and from the API, and what follows
from each state change: stored in the state log, pushed to live screens, mirrored into
Asterisk's own queues for the fallback.

Feature codes arrive as the FastAGI script ``agent`` (see features/agents/dialplan.py). The
agent is the PJSIP endpoint of the channel that dialled: a phone cannot claim to be another
agent by setting its caller ID. The outcome is said on the phone.

After every AMI (re)connect, ``recover`` takes what the channel snapshot says about agents
(core/agent_recovery.py): a logged-in agent still in their nailed-up bridge is nailed up again
(by that channel), an agent on a call the ACD did not route is held ON_CALL until that channel
hangs up, and channels followed here whose hangup was missed meanwhile are taken as gone.
An agent the state log has logged out stays so even if their phone sits in their bridge (they
logged out from the API, say); a call elsewhere of a logged-out agent is not held.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from callcenter.asterisk.agi import AgiHangup
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.prompting import play
from callcenter.core.acd import (
    AcdAction,
    AgentRequestDeferred,
    AgentState,
    AgentStateChanged,
    AgentStateError,
    ConnectMode,
)
from callcenter.core.agent_recovery import AgentsOnChannels
from callcenter.core.calls import agent_from_channel
from callcenter.features.agents.dialplan import AGENT_VARIABLE, FEATURES, NAILED_LOGIN
from callcenter.features.agents.store import AgentAccount, AgentDirectory, StateChange
from callcenter.features.queues.driver import AcdDriver

log = logging.getLogger(__name__)

FLUSH_EVERY_SECONDS = 0.5  # state changes are written in small batches
SAID = {"login": "agent-logged-in", "login-nailed": "agent-logged-in",
        "logout": "agent-logged-out", "pause": "agent-paused", "ready": "agent-ready"}


@dataclass(frozen=True)
class RequestOutcome:
    """What became of an agent's request: done now, or deferred until the call ends."""

    agent_id: str
    request: str
    deferred: bool


class AgentDesk:
    def __init__(self, acd: AcdDriver, directory: AgentDirectory, *,
                 pause_reasons: Sequence[str],
                 publish: Callable[[str, Mapping[str, object]], None] | None = None) -> None:
        self._acd = acd
        self._directory = directory
        self._pause_reasons = tuple(pause_reasons)
        self._publish = publish
        self._pending: list[StateChange] = []
        self._nailed: dict[str, str] = {}  # uniqueid of a nailed-up channel -> agent id
        # Nailed-up channels between *50's login and their bridge: uniqueid -> (agent id,
        # whether the phone counted as reachable before).
        self._joining: dict[str, tuple[str, bool]] = {}
        self._elsewhere: dict[str, str] = {}  # uniqueid of a call the ACD did not route -> agent
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        # One write at a time: a flush waits for the batch the background flusher is writing.
        self._writing = asyncio.Lock()
        acd.on_agent_change(self._changed)

    # ------------------------------------------------------------------ requests

    def request(self, agent_id: str, request: str, *, reason: str | None = None,
                phone: str | None = None, mode: ConnectMode = ConnectMode.RING,
                ) -> RequestOutcome:
        """login / logout / pause / ready; AgentStateError (a ValueError) says why not."""
        match request:
            case "login":
                actions = self._acd.login(agent_id, phone=phone or agent_id, mode=mode)
            case "logout":
                actions = self._acd.logout(agent_id)
            case "pause":
                if not reason:
                    raise AgentStateError(f"agent {agent_id!r}: a pause needs a reason, one of "
                                          f"{', '.join(self._pause_reasons)}")
                actions = self._acd.pause(agent_id, reason)
            case "ready":
                actions = self._acd.ready(agent_id)
            case _:
                raise AgentStateError(f"unknown request {request!r}: expected login, logout, "
                                      "pause or ready")
        return RequestOutcome(agent_id, request, _deferred(actions))

    async def restore(self, agents: Sequence[AgentAccount], *, auto_login: set[str],
                      since: float) -> None:
        """At start: each agent as the state log last saw them (logged in, paused with their
        reason), else logged in when the settings say so; ringing, until ``recover`` finds
        their nailed-up line or a call they are on in the first AMI snapshot."""
        for agent in agents:
            history = await self._directory.state_history(agent.id, since=since)
            last = history[-1] if history else None
            state = last.state if last else ("ready" if agent.id in auto_login else "")
            if not state or state == AgentState.LOGGED_OUT:
                continue
            try:
                self.request(agent.id, "login")
                if state == AgentState.PAUSED and last is not None and last.reason:
                    self.request(agent.id, "pause", reason=last.reason)
            except AgentStateError as exc:
                log.warning("agent %s: state %s not restored: %s", agent.id, state, exc)

    # ------------------------------------------------------------------ feature codes

    async def handle_feature(self, session: AgiSession) -> None:
        """The ``agent`` FastAGI script: one feature code dialled from an agent's phone."""
        env = session.env
        agent_id = agent_from_channel(env.channel)
        feature = env.args[0] if env.args else ""
        try:
            if agent_id is None:
                raise AgentStateError(f"channel {env.channel!r} is not an agent's phone")
            outcome = self._feature(agent_id, feature, env.args[1:], env.uniqueid)
        except AgentStateError as exc:
            log.info("feature code %s from %s refused: %s", feature, env.channel, exc)
            await play(session, "agent-refused")
            return
        try:
            if feature == FEATURES[NAILED_LOGIN]:
                await session.set_variable(AGENT_VARIABLE, outcome.agent_id)
            await play(session, "agent-after-call" if outcome.deferred else SAID[feature])
        except AgiHangup:
            if feature == FEATURES[NAILED_LOGIN]:  # gone before reaching the bridge
                self.channel_gone(env.uniqueid)

    def _feature(self, agent_id: str, feature: str, arguments: Sequence[str], uniqueid: str,
                 ) -> RequestOutcome:
        match feature:
            case "login":
                return self.request(agent_id, "login", phone=agent_id)
            case "login-nailed":
                outcome = self.request(agent_id, "login", phone=agent_id,
                                       mode=ConnectMode.NAILED)
                self._nailed[uniqueid] = agent_id
                # Logged in now, but their phone hears "you are logged in" and only then
                # enters its bridge: no call is joined to an empty bridge meanwhile.
                self._joining[uniqueid] = (agent_id, self._acd.reachable(agent_id))
                self._acd.set_reachable(agent_id, False)
                return outcome
            case "pause":
                number = arguments[0] if arguments else "1"
                if not number.isdigit() or not 1 <= int(number) <= len(self._pause_reasons):
                    raise AgentStateError(f"pause code {number!r}: use 1-"
                                          f"{len(self._pause_reasons)}")
                return self.request(agent_id, "pause",
                                    reason=self._pause_reasons[int(number) - 1])
            case "ready" | "logout":
                return self.request(agent_id, feature)
            case _:
                raise AgentStateError(f"unknown feature {feature!r}")

    def channel_gone(self, uniqueid: str) -> None:
        """A channel hung up (AMI): if it carried a call the ACD did not route, its agent is
        free again (wrap-up by the rules); if it was a nailed-up agent's, that agent is logged
        out (after the call in progress, if any)."""
        busy_agent = self._elsewhere.pop(uniqueid, None)
        if busy_agent is not None:
            log.info("agent %s: call %s outside the ACD ended", busy_agent, uniqueid)
            try:
                self._acd.elsewhere_ended(busy_agent)
            except ValueError as exc:
                log.info("agent %s: %s", busy_agent, exc)
        joining = self._joining.pop(uniqueid, None)
        if joining is not None:  # gone before reaching the bridge: the phone is as it was
            self._acd.set_reachable(*joining)
        agent_id = self._nailed.pop(uniqueid, None)
        if agent_id is None:
            return
        log.info("agent %s: nailed-up channel %s hung up: logging out", agent_id, uniqueid)
        try:
            self.request(agent_id, "logout")
        except AgentStateError as exc:
            log.info("agent %s: %s", agent_id, exc)

    def bridge_entered(self, uniqueid: str) -> None:
        """A channel entered a bridge (AMI): a nailed-up agent's reaching their own is ready
        for calls from now."""
        joining = self._joining.pop(uniqueid, None)
        if joining is not None:
            self._acd.set_reachable(joining[0], True)

    def nailed_channel(self, agent_id: str) -> str | None:
        return next((u for u, a in self._nailed.items() if a == agent_id), None)

    # ------------------------------------------------------------------ after a (re)connect

    def recover(self, found: AgentsOnChannels) -> None:
        """Bring agents in line with a channel snapshot (module docstring). Idempotent: the
        same snapshot twice changes nothing the second time."""
        for uniqueid in [u for u in (*self._elsewhere, *self._nailed) if u not in found.live]:
            log.warning("channel %s hung up while AMI was away", uniqueid)
            self.channel_gone(uniqueid)
        for agent_id, uniqueid in found.nailed.items():
            self.adopt_nailed(agent_id, uniqueid)
        for agent_id, call in found.busy.items():
            self.hold_for_call(agent_id, call.channel, queue=call.queue)

    def adopt_nailed(self, agent_id: str, uniqueid: str) -> bool:
        """The logged-in agent's channel ``uniqueid`` sits in their bridge: they are nailed up
        by it (calls join it, its hangup logs them out). False if they are logged out."""
        if self._nailed.get(uniqueid) == agent_id:
            return True
        try:
            view = self._acd.agent(agent_id)
            if view.state is AgentState.LOGGED_OUT:
                log.info("agent %s: logged out, though channel %s sits in their bridge",
                         agent_id, uniqueid)
                return False
            if view.mode is not ConnectMode.NAILED:
                self._acd.switch_mode(agent_id, ConnectMode.NAILED)
        except AgentStateError as exc:
            log.warning("agent %s: nailed-up channel %s not adopted: %s", agent_id, uniqueid, exc)
            return False
        for older in [u for u, a in self._nailed.items() if a == agent_id]:
            del self._nailed[older]
        self._nailed[uniqueid] = agent_id
        log.info("agent %s: nailed up again by channel %s", agent_id, uniqueid)
        return True

    def hold_for_call(self, agent_id: str, uniqueid: str, *, queue: str | None = None) -> bool:
        """The agent is on a call (channel ``uniqueid``) the ACD did not route: no offers
        until that channel hangs up. A call the ACD itself rings or connects them to is left
        to it; so is a logged-out agent. True if the agent is held for this call."""
        if self._elsewhere.get(uniqueid) == agent_id:
            return True
        try:
            view = self._acd.agent(agent_id)
            if view.state is AgentState.LOGGED_OUT:
                return False
            if view.state in (AgentState.RINGING, AgentState.ON_CALL) and (
                    view.call_id not in self._elsewhere):
                return False  # the ACD's own call: its handler follows it
            self._acd.busy_elsewhere(agent_id, uniqueid, queue=queue)
        except AgentStateError as exc:
            log.info("agent %s: call %s not held: %s", agent_id, uniqueid, exc)
            return False
        self._elsewhere[uniqueid] = agent_id
        log.info("agent %s: on call %s outside the ACD%s", agent_id, uniqueid,
                 f" (queue {queue})" if queue else "")
        return True

    # ------------------------------------------------------------------ state changes

    def _changed(self, change: AgentStateChanged) -> None:
        self._pending.append(StateChange(change.agent_id, change.state.value, change.reason,
                                         change.at, change.previous.value))
        self._wake.set()
        if change.state is AgentState.LOGGED_OUT:  # a nailed channel may outlive the login
            for uniqueid in [u for u, a in self._nailed.items() if a == change.agent_id]:
                self._nailed.pop(uniqueid)
        if self._publish is not None:
            self._publish("agent", {"agent_id": change.agent_id, "state": change.state.value,
                                    "reason": change.reason, "previous": change.previous.value,
                                    "at": change.at})

    def start(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_forever(), name="agent-state-log")

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        await self.flush()

    async def flush(self) -> None:
        """Write the state changes seen so far, those the background flusher is writing
        included (kept for the next try if the database fails or the write is cancelled)."""
        async with self._writing:
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            try:
                await self._directory.record_state_changes(batch)
            except asyncio.CancelledError:  # stopping: stop() writes them after
                self._pending[:0] = batch
                raise
            except Exception:
                log.exception("%d agent state changes could not be stored; retrying",
                              len(batch))
                self._pending[:0] = batch

    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()
            if self._pending:  # the database failed: try again after the pause
                self._wake.set()
            await asyncio.sleep(FLUSH_EVERY_SECONDS)


def _deferred(actions: Sequence[AcdAction]) -> bool:
    return any(isinstance(a, AgentRequestDeferred) for a in actions)
