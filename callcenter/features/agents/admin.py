"""What the HTTP API does with queues and agents: live views, agent accounts, state requests.

The one facade the web layer calls (http.py beside it stays thin). It reads the live ACD, the agent
directory and the registration book, and changes agents in this order:

1. check what was asked (an ``AgentInputError`` names the field; nothing is touched yet);
2. store it in the directory (one transaction);
3. bring the live ACD in line (add, update, or log out and remove a deactivated agent);
4. ``apply_agents()``: regenerate Asterisk's PJSIP endpoints and fallback queues and reload.

If step 4 fails, the stored agent stays and routing already uses it: the error is logged and
returned as a warning, and the next change (or restart) writes Asterisk's files again.

State requests (log in, ready, pause, log out) go through ``AgentDesk``, which stores each
resulting change in the state log and publishes it: this module never writes states itself.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from callcenter.config import QueueSettings
from callcenter.core.acd import (
    AgentState,
    AgentStateError,
    AgentView,
    ConnectMode,
    QueueView,
    UnknownAgent,
)
from callcenter.core.callback_offers import NotOffered
from callcenter.core.clock import Clock
from callcenter.core.registrations import Registration, RegistrationBook
from callcenter.features.agents.desk import AgentDesk
from callcenter.features.agents.store import (
    AgentAccount,
    AgentDirectory,
    AgentNotFound,
    DuplicateAgent,
    NewAgent,
    StateChange,
)
from callcenter.features.queues.driver import AcdDriver
from callcenter.features.queues.setup import agent_spec

__all__ = [
    "AgentAdmin",
    "AgentChange",
    "AgentConflict",
    "AgentInputError",
    "AgentNotFound",
    "AgentStatus",
    "DuplicateAgent",
    "QueueMember",
    "QueueNotFound",
    "QueueStatus",
    "SecretChange",
    "StateOutcome",
]

log = logging.getLogger(__name__)

# What an API client may ask an agent's state to become, and the desk's request for it.
REQUESTS = {"logged_in": "login", "ready": "ready", "paused": "pause", "logged_out": "logout"}
BUSY = (AgentState.RINGING, AgentState.ON_CALL)
PHONE_RE = re.compile(r"[A-Za-z0-9_.~+-]{1,64}")  # a SIP user name, as in the settings
# The core builds overflow tiers from the queue rules at start (core/acd.py has no way to
# change them live); tier-0 memberships and skills take effect at once.
TIERS_AT_RESTART = ("overflow tier memberships (tier 1 and up) are stored; routing uses them "
                    "from the next restart")
NAILED_FROM_PHONE = ("a nailed-up login must come from the agent's phone: dial *50 there "
                     "(the phone then stays connected and calls are joined to it)")

Publish = Callable[[str, Mapping[str, Any]], None]


class AgentInputError(ValueError):
    """What was sent is wrong; the message says what and where (an HTTP 400)."""


class AgentConflict(Exception):
    """The request does not fit the agent's present state (an HTTP 409)."""


class QueueNotFound(LookupError):
    """No queue has the name asked for."""


@dataclass(frozen=True)
class AgentStatus:
    """One agent as stored, as the live ACD has them, and as Asterisk sees their phone."""

    account: AgentAccount
    live: AgentView | None  # None: inactive, so not in the live ACD
    registration: Registration


@dataclass(frozen=True)
class AgentChange:
    """An agent after a change, and what did not go through (e.g. Asterisk not updated)."""

    status: AgentStatus
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class SecretChange:
    agent_id: str
    sip_secret: str  # one name for it everywhere: settings, the API's requests and answers
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class StateOutcome:
    """What became of a state request: done now, or deferred until the agent's call ends."""

    agent_id: str
    requested: str  # logged_in, ready, paused or logged_out
    deferred: bool
    message: str
    live: AgentView


@dataclass(frozen=True)
class QueueMember:
    agent_id: str
    name: str
    tier: int  # 0 primary; k: helps once the queue's k-th tier delay passed
    state: AgentState | None  # None: not in the live ACD


@dataclass(frozen=True)
class QueueStatus:
    rules: QueueSettings
    stats: QueueView
    calls: tuple[Mapping[str, Any], ...]  # the ACD's snapshot of each unanswered call, in line
    members: tuple[QueueMember, ...]
    callbacks_not_offered: NotOffered | None = None  # callers it could not offer a callback


class AgentAdmin:
    def __init__(
        self,
        *,
        acd: AcdDriver,
        desk: AgentDesk,
        directory: AgentDirectory,
        clock: Clock,
        registrations: RegistrationBook,
        queues: Sequence[QueueSettings],
        apply_agents: Callable[[], Awaitable[None]],
        publish: Publish | None = None,
        callbacks_not_offered: Callable[[str], NotOffered] | None = None,
    ) -> None:
        self._acd = acd
        self._desk = desk
        self._directory = directory
        self._clock = clock
        self._registrations = registrations
        self._queues = {queue.name: queue for queue in queues}
        self._apply_agents = apply_agents
        self._publish = publish
        self._callbacks_not_offered = callbacks_not_offered
        # One change at a time: directory, live ACD and Asterisk then agree on its order.
        self._changing = asyncio.Lock()

    @property
    def pause_reasons(self) -> tuple[str, ...]:
        return self._acd.pause_reasons

    def now(self) -> float:
        return self._clock.now()

    # ------------------------------------------------------------------ queues

    async def queues(self) -> list[QueueStatus]:
        accounts = await self._directory.list()
        snapshot = self._acd.snapshot()
        return [self._queue_status(name, accounts, snapshot) for name in self._queues]

    async def queue(self, name: str) -> QueueStatus:
        if name not in self._queues:
            raise QueueNotFound(f"queue {name[:40]!r}: no such queue; known: "
                                f"{', '.join(self._queues) or 'none'}")
        accounts = await self._directory.list()
        return self._queue_status(name, accounts, self._acd.snapshot())

    def _queue_status(self, name: str, accounts: Sequence[AgentAccount],
                      snapshot: Mapping[str, Any]) -> QueueStatus:
        members = tuple(
            QueueMember(account.id, account.name, account.queues[name], self._state_of(account.id))
            for account in sorted(accounts, key=lambda a: (a.queues.get(name, 0), a.id))
            if name in account.queues
        )
        return QueueStatus(
            rules=self._queues[name],
            stats=self._acd.queue_stats(name),
            calls=tuple(snapshot["queues"][name]["calls"]),
            members=members,
            callbacks_not_offered=(None if self._callbacks_not_offered is None
                                   else self._callbacks_not_offered(name)),
        )

    def _state_of(self, agent_id: str) -> AgentState | None:
        try:
            return self._acd.agent_state(agent_id)
        except UnknownAgent:
            return None

    # ------------------------------------------------------------------ agents

    async def agents(self) -> list[AgentStatus]:
        """Every agent, active or not, by id."""
        return [self._status(account) for account in await self._directory.list(False)]

    async def agent(self, agent_id: str) -> AgentStatus:
        return self._status(await self._account(agent_id))

    async def create(self, agent_id: str, name: str, *, queues: Mapping[str, int] | None = None,
                     skills: Mapping[str, int] | None = None) -> AgentChange:
        """A new active agent with a generated SIP secret (in ``status.account.sip_secret``).
        ``agent_id``'s shape is the HTTP contract's (schemas.py ``NewAgent``)."""
        memberships = self._check_memberships(queues or {})
        levels = dict(skills or {})  # their shape is the HTTP contract's (schemas.py)
        async with self._changing:
            try:
                account = await self._directory.create(NewAgent(
                    id=agent_id, name=name, queues=memberships, skills=levels))
            except DuplicateAgent:
                raise
            except ValueError as exc:  # the directory's own checks (name, reserved ids...)
                raise AgentInputError(str(exc)) from None
            warnings = self._to_core("add", account)
            if any(tier > 0 for tier in memberships.values()):
                warnings.append(TIERS_AT_RESTART)
            warnings += await self._apply()
        self._announce(agent_id, "created", {}, memberships)
        return AgentChange(self._status(account), tuple(warnings))

    async def update(self, agent_id: str, *, name: str | None = None,
                     queues: Mapping[str, int] | None = None,
                     skills: Mapping[str, int] | None = None,
                     active: bool | None = None) -> AgentChange:
        """Change what is given (None: unchanged); ``queues`` and ``skills`` replace the
        agent's whole memberships or skills. Deactivating logs the agent out and takes them
        out of routing; refused (``AgentConflict``) while they ring or talk."""
        memberships = None if queues is None else self._check_memberships(queues)
        levels = None if skills is None else dict(skills)  # shapes: schemas.py
        async with self._changing:
            before = await self._account(agent_id)
            if before.active and active is False:
                self._check_free(agent_id, "deactivated")
            try:
                after = await self._directory.update(agent_id, name=name, queues=memberships,
                                                     skills=levels, active=active)
            except AgentNotFound:
                raise
            except ValueError as exc:
                raise AgentInputError(str(exc)) from None
            warnings: list[str] = []
            if before.active and not after.active:
                warnings += self._deactivate(agent_id)
            elif after.active and not before.active:
                warnings += self._to_core("add", after)
            elif after.active and (after.queues != before.queues or after.skills != before.skills):
                warnings += self._to_core("update", after)
            if _overflow_tiers(after) and after.active and (
                    _overflow_tiers(after) != _overflow_tiers(before) or not before.active):
                warnings.append(TIERS_AT_RESTART)
            if _in_asterisk(after) != _in_asterisk(before):  # skills are not in its files
                warnings += await self._apply()
        if _in_asterisk(after) != _in_asterisk(before) or after.skills != before.skills:
            self._announce(agent_id, "updated", before.queues, after.queues)
        return AgentChange(self._status(after), tuple(warnings))

    async def rotate_secret(self, agent_id: str) -> SecretChange:
        async with self._changing:
            account = await self._directory.rotate_secret(agent_id)
            warnings = await self._apply()
        return SecretChange(agent_id, account.sip_secret, tuple(warnings))

    async def history(self, agent_id: str, since: float | None, until: float | None,
                      limit: int) -> tuple[list[StateChange], bool]:
        """The agent's first ``limit`` state changes in [since, until), oldest first, and
        whether more follow in that range."""
        await self._account(agent_id)
        changes = await self._directory.state_history(agent_id, since=since, until=until)
        return changes[:limit], len(changes) > limit

    # ------------------------------------------------------------------ state requests

    async def change_state(self, agent_id: str, state: str, *, reason: str | None = None,
                           phone: str | None = None, mode: str = ConnectMode.RING,
                           ) -> StateOutcome:
        """Ask for ``state`` (logged_in, ready, paused, logged_out). A pause or logout while
        the agent rings or talks is deferred until the call ends; a change the agent's state
        does not allow raises ``AgentConflict`` with the ACD's reason."""
        request = REQUESTS[state]  # the shapes are the HTTP contract's (schemas.py)
        self._check_request_fields(state, reason, phone, mode)
        account = await self._account(agent_id)
        if mode == ConnectMode.NAILED:
            raise AgentConflict(f"agent {agent_id!r}: {NAILED_FROM_PHONE}")
        if phone is not None and phone != agent_id and await self._is_agent(phone):
            raise AgentInputError(f"phone: {phone!r} is the phone of agent {phone!r}; "
                                  f"agent {agent_id!r} takes calls on {agent_id!r}")
        if not account.active:
            raise AgentConflict(f"agent {agent_id!r} is inactive: an admin must activate "
                                "them first")
        try:
            before = self._acd.agent(agent_id)
            outcome = self._desk.request(agent_id, request, reason=reason, phone=phone)
        except UnknownAgent:  # deactivated meanwhile, or the ACD refused them (see the log)
            raise AgentConflict(f"agent {agent_id!r} is not in routing now: an admin must "
                                "activate them (again)") from None
        except AgentStateError as exc:
            raise AgentConflict(str(exc)) from None
        after = self._acd.agent(agent_id)
        return StateOutcome(agent_id, state, outcome.deferred,
                            self._state_message(before, after, request, outcome.deferred), after)

    def _check_request_fields(self, state: str, reason: str | None, phone: str | None,
                              mode: str) -> None:
        if state == "paused":
            if reason is None:
                raise AgentInputError(f"reason: required to pause; one of "
                                      f"{', '.join(self.pause_reasons)}")
            if reason not in self.pause_reasons:
                raise AgentInputError(f"reason: {str(reason)[:40]!r} is not a pause reason; "
                                      f"use one of {', '.join(self.pause_reasons)}")
        elif reason is not None:
            raise AgentInputError(f"reason: only for state paused, not {state}")
        if state != "logged_in":
            for field, value, default in (("phone", phone, None), ("mode", mode, "ring")):
                if value != default:
                    raise AgentInputError(f"{field}: only for state logged_in, not {state}")

    @staticmethod
    def _state_message(before: AgentView, after: AgentView, request: str,
                       deferred: bool) -> str:
        agent_id = after.agent_id
        if deferred:
            what = "pause" if request == "pause" else "log out"
            return (f"agent {agent_id!r} is {after.state.value}: the {what} applies when the "
                    "call ends")
        if request == "ready" and before.deferred and not after.deferred:
            return (f"agent {agent_id!r} is {after.state.value}: the {before.deferred} "
                    "deferred until the call ends is cancelled")
        if after == before:
            return f"agent {agent_id!r} was already {after.state.value}: nothing changed"
        message = f"agent {agent_id!r} is {after.state.value}"
        if after.state is AgentState.PAUSED and after.reason:
            message += f" ({after.reason})"
        if request == "login" and not after.reachable:
            message += ": their phone is not registered, so no call reaches them until it is"
        return message

    # ------------------------------------------------------------------ internals

    async def _account(self, agent_id: str) -> AgentAccount:
        try:
            account = await self._directory.get(agent_id)
        except ValueError as exc:  # not even an agent id
            raise AgentInputError(str(exc)) from None
        if account is None:
            raise AgentNotFound(f"agent {agent_id[:40]!r}: no such agent")
        return account

    async def _is_agent(self, agent_id: str) -> bool:
        try:
            return await self._directory.get(agent_id) is not None
        except ValueError:
            return False

    def _status(self, account: AgentAccount) -> AgentStatus:
        try:
            live = self._acd.agent(account.id) if account.active else None
        except UnknownAgent:  # stored active, but the ACD did not take them: see the log
            live = None
        return AgentStatus(account, live, self._registrations.registration(account.id))

    def _check_memberships(self, queues: Mapping[str, int]) -> dict[str, int]:
        if not isinstance(queues, Mapping):
            raise AgentInputError("queues: expected an object of queue name -> tier")
        checked: dict[str, int] = {}
        for name, tier in queues.items():
            where = f"queues[{str(name)[:40]!r}]"
            queue = self._queues.get(name) if isinstance(name, str) else None
            if queue is None:
                raise AgentInputError(f"{where}: no such queue; known: "
                                      f"{', '.join(self._queues) or 'none'}")
            highest = len(queue.tier_delays)
            if isinstance(tier, bool) or not isinstance(tier, int) or not 0 <= tier <= highest:
                raise AgentInputError(
                    f"{where}: tier {repr(tier)[:40]} is not a whole number from 0 to {highest} "
                    f"(queue {name!r} has {highest} overflow tier(s): its tier_delays)")
            checked[name] = tier
        return checked

    def _check_free(self, agent_id: str, what: str) -> None:
        state = self._state_of(agent_id)
        if state in BUSY:
            raise AgentConflict(f"agent {agent_id!r} is {state}: they can be {what} after "
                                "the call")

    def _to_core(self, change: str, account: AgentAccount) -> list[str]:
        """Add or update the agent in the live ACD; a refusal is a warning (the store has
        the agent already)."""
        spec = agent_spec(account)
        try:
            if change == "add":
                self._acd.add_agent(spec)
            else:
                self._acd.update_agent(spec)
        except ValueError as exc:
            log.error("agent %s is stored, but the live ACD refused it: %s", account.id, exc)
            return [f"stored, but routing does not use it yet: {exc}"]
        return []

    def _deactivate(self, agent_id: str) -> list[str]:
        """Log the agent out (through the desk, so the state log has it), then out of
        routing."""
        if self._state_of(agent_id) not in (None, AgentState.LOGGED_OUT):
            try:
                outcome = self._desk.request(agent_id, "logout")
            except AgentStateError as exc:
                log.warning("agent %s: logout on deactivation refused: %s", agent_id, exc)
            else:
                if outcome.deferred:  # a call reached them while the change was stored
                    log.warning("agent %s deactivated during a call: logged out after it",
                                agent_id)
                    return [f"agent {agent_id!r} took a call meanwhile: they are logged out "
                            "when it ends and leave routing at the next restart"]
        try:
            self._acd.remove_agent(agent_id)
        except UnknownAgent:
            pass  # not in the live ACD: nothing to take out
        except AgentStateError as exc:
            log.warning("agent %s: not taken out of routing: %s", agent_id, exc)
            return [f"not taken out of routing yet: {exc}"]
        return []

    async def _apply(self) -> list[str]:
        try:
            await self._apply_agents()
        except Exception as exc:
            log.exception("agents changed, but Asterisk's configuration was not applied")
            return [f"Asterisk was not updated ({type(exc).__name__}: {str(exc)[:200]}); "
                    "its SIP accounts and fallback queues follow at the next change or restart"]
        return []

    def _announce(self, agent_id: str, change: str, before: Mapping[str, int],
                  after: Mapping[str, int]) -> None:
        """Live screens: the agent changed; each queue whose members changed."""
        if self._publish is None:
            return
        try:
            self._publish("agent", {"agent_id": agent_id, "change": change})
            for queue in sorted(set(before) | set(after)):
                if before.get(queue) != after.get(queue):
                    self._publish("queue", {"queue": queue, "change": "members",
                                            "agent_id": agent_id, "tier": after.get(queue)})
        except Exception:  # live screens are a nicety: the change itself is done
            log.exception("agent %s: live event not published", agent_id)



def _overflow_tiers(account: AgentAccount) -> dict[str, int]:
    return {queue: tier for queue, tier in account.queues.items() if tier > 0}


def _in_asterisk(account: AgentAccount) -> tuple[str, dict[str, int], bool]:
    """What of an agent Asterisk's generated files hold (the secret aside)."""
    return account.name, dict(account.queues), account.active
