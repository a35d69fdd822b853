"""Supervisors listen to, whisper to, or barge into an agent's call.

The supervisor's phone (a PJSIP endpoint: supervisors take calls on an agent endpoint of
their own) is rung by an AMI ``Originate`` of a Local channel whose answered side runs
``ChanSpy`` on the agent's phone channel (see ``features/supervision/dialplan.py``). When
the supervisor answers they hear the call (listen), talk to the agent alone (whisper) or to
both (barge); their call ends with the agent's channel, or when they hang up. Either way the
dialplan tears the whole session down (both Local halves), even on a call without audio,
where ChanSpy alone would stay until the agent's call ended: the service keeps no state per
session and has nothing to clean up (an AMI Hangup could not free a stuck ChanSpy anyway).

Who is on a call comes from the ACD: an agent ``on_call`` now (a ring-mode agent's call
leg, or a nailed-up agent with a caller in their bridge). The Originate is asynchronous: the
request is accepted once Asterisk queued it, before the supervisor's phone answers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from callcenter.asterisk.ami import AmiActionError, AmiError
from callcenter.asterisk.originate_fate import answer_lost
from callcenter.core.acd import AgentState, AgentView, UnknownAgent
from callcenter.features.queues.driver import AcdDriver
from callcenter.features.supervision.dialplan import (
    NAME_RE,
    SUPERVISION_CONTEXT,
    SpyMode,
    spy_extension,
    supervisor_ring_channel,
)

log = logging.getLogger(__name__)

AmiSend = Callable[[Mapping[str, Any]], Awaitable[object]]
RING_SECONDS = 30  # how long the supervisor's phone rings before the Originate gives up


class SupervisionError(Exception):
    """A request that cannot be carried out; the message says why, for the requester."""


class NoSuchAgent(SupervisionError):
    """The agent (or the phone named) is not known."""


class NotOnCall(SupervisionError):
    """The agent has no call to listen to right now."""


class SupervisionRefused(SupervisionError):
    """The request contradicts itself (e.g. spying from the agent's own phone)."""


class AsteriskUnavailable(SupervisionError):
    """AMI is down or Asterisk refused the action."""


@dataclass(frozen=True)
class SpyStarted:
    agent_id: str
    mode: SpyMode
    phone: str  # the supervisor's endpoint being called
    call_id: str | None  # the ACD's call the agent is on


class Supervision:
    def __init__(self, *, acd: AcdDriver, send: AmiSend,
                 ring_seconds: int = RING_SECONDS) -> None:
        self._acd = acd
        self._send = send
        self._ring_seconds = ring_seconds

    async def start(self, agent_id: str, mode: SpyMode | str, phone: str) -> SpyStarted:
        """Call ``phone`` and connect it to ``agent_id``'s call in ``mode``.

        Raises ValueError for an unknown mode, NoSuchAgent, NotOnCall, SupervisionRefused,
        or AsteriskUnavailable.
        """
        mode = SpyMode(mode)
        agent = self._agent(agent_id, "agent")
        self._agent(phone, "phone")  # supervisors' phones are agent endpoints too
        if phone == agent_id:
            raise SupervisionRefused(f"phone {phone!r} is agent {agent_id!r}'s own phone: "
                                     "call in from another phone")
        if agent.state is not AgentState.ON_CALL:
            raise NotOnCall(f"agent {agent_id!r} is not on a call (they are "
                            f"{agent.state.value}): there is nothing to {mode.value} to")
        action = {
            "Action": "Originate",
            "Channel": supervisor_ring_channel(phone),
            "Context": SUPERVISION_CONTEXT,
            "Exten": spy_extension(mode, agent_id),
            "Priority": 1,
            "Timeout": self._ring_seconds * 1000,
            "CallerID": f'"{mode.value} {agent_id}" <{agent_id}>',
            "Async": True,  # the answer comes when queued, not when the phone answers
        }
        try:
            await self._send(action)
        except AmiActionError as exc:
            raise AsteriskUnavailable(f"Asterisk refused to call phone {phone!r}: "
                                      f"{exc.message}") from None
        except AmiError as exc:
            # A lost answer may hide a call placed: the supervisor must not be rung twice
            # by a blind retry (docs/security-privilege.md).
            maybe = (f"; phone {phone!r} may ring all the same: answer it before trying again"
                     if answer_lost(exc) else "")
            raise AsteriskUnavailable(f"Asterisk cannot be reached: {exc}{maybe}") from None
        log.info("supervision: phone %s called to %s agent %s (call %s)", phone, mode.value,
                 agent_id, agent.call_id)
        return SpyStarted(agent_id, mode, phone, agent.call_id)

    def _agent(self, agent_id: str, what: str) -> AgentView:
        if not isinstance(agent_id, str) or not NAME_RE.fullmatch(agent_id):
            raise NoSuchAgent(f"{what} {str(agent_id)[:40]!r}: no such agent")
        try:
            return self._acd.agent(agent_id)
        except UnknownAgent:
            if what == "phone":
                raise NoSuchAgent(f"phone {agent_id!r}: no such phone (a supervisor's phone "
                                  "is an agent endpoint)") from None
            raise NoSuchAgent(f"{what} {agent_id!r}: no such agent") from None
