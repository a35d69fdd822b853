"""Agents in the database: their accounts (the source of their PJSIP endpoints), queue
memberships by tier, skills by level, and the history of their state changes.

``AgentDirectory`` hands out frozen dataclasses (``AgentAccount``, ``StateChange``), never
rows. Everything it writes is checked first; a bad value raises ``ValueError`` naming the
field, and each call is one transaction, so nothing is half-written.

The settings' ``[[agents]]`` remain the demo seed: ``seed`` inserts those not yet stored
and never overwrites a stored agent.

An agent's SIP password is never stored: only its digest credential
``MD5(id:callcenter:password)`` (``confgen.sip_digest``), which is what PJSIP checks a
phone's answer against. The password itself is in the ``AgentAccount`` that ``create``,
``rotate_secret`` and ``seed`` return, once, for whoever set up the phone; read back, it is
None. See docs/security-auth.md for why, and what the digest still allows.
"""

from __future__ import annotations

import builtins
import dataclasses
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from sqlalchemy import Select, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from callcenter.asterisk.confgen import RESERVED_NAMES, sip_digest
from callcenter.config import AgentSettings
from callcenter.core.clock import Clock, SystemClock, to_datetime
from callcenter.core.identifiers import AGENT_ID, QUEUE_NAME_RE, STORED_AGENT_ID, STORED_AGENT_ID_RE
from callcenter.features.agents.models import (
    AgentQueueRow,
    AgentRow,
    AgentSkillRow,
    AgentStateChangeRow,
)
from callcenter.store.values import (
    dialect_insert,
    required_text,
    required_time,
    text_value,
    time_range,
)

# The agent id is the SIP user and the PJSIP endpoint, aor and auth name. New agents follow
# the settings' rule (identifiers.AGENT_ID); looking one up also takes the wider rule this
# store used to accept, so that an agent stored by an older version stays readable.
AGENT_ID_RE = STORED_AGENT_ID_RE
SKILL_RE = re.compile(r"[a-z0-9_-]{1,40}")
STATE_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
# As config.py asks of agents[].password: safe in pjsip.conf and easy to type into a phone.
SIP_SECRET_RE = re.compile(r"[A-Za-z0-9_.-]{8,64}")
CONTACT_RE = re.compile(r"sip:[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+(:[0-9]+)?")
# Names end up in a PJSIP callerid ("Name" <id>) and a queue member line (..., Name).
NAME_FORBIDDEN = frozenset('"<>;,[]\\')
MAX_NAME_CHARS = 80
MAX_REASON_CHARS = 200
MIN_LEVEL, MAX_LEVEL = 1, 10
MAX_TIER = 99


class AgentNotFound(LookupError):
    """No agent has the id asked for."""


class DuplicateAgent(ValueError):
    """An agent with that id exists already."""


@dataclass(frozen=True)
class AgentAccount:
    """An agent as stored. ``queues`` maps queue -> tier (0 primary, 1.. overflow tiers);
    ``skills`` maps skill -> level (1-10). Both are read-only mappings. ``sip_digest`` is
    what PJSIP checks the phone with; ``sip_secret``, the password itself, only on the
    account that just made it (create, rotate_secret, seed), else None."""

    id: str
    name: str
    sip_digest: str = field(repr=False)
    active: bool
    queues: Mapping[str, int] = field(hash=False)
    skills: Mapping[str, int] = field(hash=False)
    contact: str | None  # a static SIP contact; None: the phone registers
    created_at: float
    updated_at: float
    sip_secret: str | None = field(default=None, repr=False, compare=False)

    def has_sip_secret(self, secret: str) -> bool:
        """Whether ``secret`` is this agent's SIP password."""
        return secrets.compare_digest(sip_digest(self.id, secret), self.sip_digest)

    @property
    def primary_queues(self) -> tuple[str, ...]:
        """The queues this agent serves at tier 0, by name."""
        return tuple(queue for queue, tier in self.queues.items() if tier == 0)


@dataclass(frozen=True)
class NewAgent:
    """What ``AgentDirectory.create`` needs; a missing ``sip_secret`` is generated."""

    id: str
    name: str
    queues: Mapping[str, int] = field(default_factory=dict, hash=False)
    skills: Mapping[str, int] = field(default_factory=dict, hash=False)
    active: bool = True
    sip_secret: str | None = field(default=None, repr=False)
    contact: str | None = None


@dataclass(frozen=True)
class StateChange:
    """One agent state change; the same fields as the ACD's ``AgentStateChanged``."""

    agent_id: str
    state: str
    reason: str | None
    at: float
    previous: str


class StateChangeFollower(Protocol):
    """Keeps something derived from the state log (the agent report aggregates) in step
    with it: called in the transaction that stores a batch of changes, with each agent's
    earliest change time in the batch."""

    async def changes_stored(self, session: AsyncSession,
                             earliest: Mapping[str, float]) -> None:
        ...


def new_sip_secret() -> str:
    return secrets.token_urlsafe(18)


class AgentDirectory:
    """Agent accounts, memberships, skills and state history; one transaction per call.

    ``queues``: the queue names that exist (the settings' queues); when given, a membership
    of any other queue is refused. None: any well-formed queue name is accepted.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock | None = None,
        *,
        queues: Iterable[str] | None = None,
        followers: Sequence[StateChangeFollower] = (),
    ) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()  # stamps created_at and updated_at
        self._queues = None if queues is None else frozenset(queues)
        self._followers = tuple(followers)  # derived from the state log, same transaction

    # ------------------------------------------------------------------ accounts

    async def create(self, agent: NewAgent) -> AgentAccount:
        """Store a new agent; ``DuplicateAgent`` if the id is taken. The answer carries the
        SIP password (``sip_secret``), the only time it is known."""
        values, memberships, skills, secret = self._new_agent_values(agent)
        async with self._sessions.begin() as session:
            if await session.scalar(select(AgentRow.id).where(AgentRow.id == values["id"])):
                raise DuplicateAgent(f"agent {values['id']!r}: already exists")
            try:
                await session.execute(insert(AgentRow).values(values))
            except IntegrityError:  # created by someone else since the check above
                raise DuplicateAgent(f"agent {values['id']!r}: already exists") from None
            await _insert_children(session, values["id"], memberships, skills)
            return _with_secret(await _load(session, values["id"]), secret)

    async def get(self, agent_id: str) -> AgentAccount | None:
        checked_id = _agent_id("id", agent_id)
        async with self._sessions() as session:
            row = await session.scalar(_with_children().where(AgentRow.id == checked_id))
            return None if row is None else _to_account(row)

    async def list(self, active_only: bool = True) -> builtins.list[AgentAccount]:
        """Every agent (only active ones unless told otherwise), by id."""
        query = _with_children().order_by(AgentRow.id)
        if active_only:
            query = query.where(AgentRow.active.is_(True))
        async with self._sessions() as session:
            return [_to_account(row) for row in await session.scalars(query)]

    async def update(
        self,
        agent_id: str,
        *,
        name: str | None = None,
        queues: Mapping[str, int] | None = None,
        skills: Mapping[str, int] | None = None,
        active: bool | None = None,
    ) -> AgentAccount:
        """Change what is given (None: unchanged). ``queues`` and ``skills`` replace the
        agent's whole memberships or skills. Returns the agent as stored."""
        where = f"agent {_agent_id('id', agent_id)!r}"
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = _agent_name(f"{where}: name", name)
        if active is not None:
            changes["active"] = _flag(f"{where}: active", active)
        memberships = None if queues is None else self._memberships(where, queues)
        skill_levels = None if skills is None else _skills(where, skills)
        async with self._sessions.begin() as session:
            await _require(session, agent_id)
            if not changes and memberships is None and skill_levels is None:
                return await _load(session, agent_id)
            changes["updated_at"] = to_datetime(self._clock.now())
            await session.execute(
                update(AgentRow).where(AgentRow.id == agent_id).values(changes)
                .execution_options(synchronize_session=False)
            )
            if memberships is not None:
                await session.execute(
                    delete(AgentQueueRow).where(AgentQueueRow.agent_id == agent_id)
                    .execution_options(synchronize_session=False)
                )
            if skill_levels is not None:
                await session.execute(
                    delete(AgentSkillRow).where(AgentSkillRow.agent_id == agent_id)
                    .execution_options(synchronize_session=False)
                )
            await _insert_children(session, agent_id, memberships or {}, skill_levels or {})
            return await _load(session, agent_id)

    async def rotate_secret(self, agent_id: str) -> AgentAccount:
        """A new random SIP secret (in the answer's ``sip_secret``, and nowhere else); the
        phone must be given it (and Asterisk reloaded)."""
        _agent_id("id", agent_id)
        secret = new_sip_secret()
        async with self._sessions.begin() as session:
            await _require(session, agent_id)
            await session.execute(
                update(AgentRow).where(AgentRow.id == agent_id)
                .values(sip_digest=sip_digest(agent_id, secret),
                        updated_at=to_datetime(self._clock.now()))
                .execution_options(synchronize_session=False)
            )
            return _with_secret(await _load(session, agent_id), secret)

    async def seed(
        self,
        settings_agents: Sequence[AgentSettings],
        secrets_for: Callable[[AgentSettings], str | None] | None = None,
    ) -> builtins.list[AgentAccount]:
        """Store the settings' agents that are not stored yet; returns those added, each
        with its SIP password in ``sip_secret`` (the first start shows them).

        Each gets its settings' name, queues (with their tiers), skills and contact, and is
        active.
        ``secrets_for(agent)`` gives its SIP secret (None: a new random one); by default the
        settings' password, so phones set up from the settings keep working. Stored agents
        are left as they are, whatever the settings now say.
        """
        choose = secrets_for or (lambda agent: agent.password or None)
        new_agents = []
        for index, agent in enumerate(settings_agents):
            where = f"settings agents[{index}]"
            if not isinstance(agent, AgentSettings):
                raise ValueError(f"{where}: expected AgentSettings, got {agent!r}")
            new_agents.append(NewAgent(
                id=agent.id, name=agent.name, queues=agent.memberships,
                skills=agent.skill_levels, sip_secret=choose(agent),
                contact=agent.contact or None,
            ))
        prepared = [self._new_agent_values(agent) for agent in new_agents]
        ids = [values["id"] for values, _, _, _ in prepared]
        if len(set(ids)) != len(ids):
            twice = next(agent_id for agent_id in ids if ids.count(agent_id) > 1)
            raise ValueError(f"settings agents: agent {twice!r} is listed twice")
        async with self._sessions.begin() as session:
            stored = set(await session.scalars(select(AgentRow.id).where(AgentRow.id.in_(ids))))
            added = []
            for values, memberships, skills, secret in prepared:
                if values["id"] in stored:
                    continue
                # Another process seeding at the same moment: its row wins, quietly.
                statement = (dialect_insert(session)(AgentRow).values(values)
                             .on_conflict_do_nothing(index_elements=[AgentRow.id])
                             .returning(AgentRow.id))
                if (await session.execute(statement)).scalar_one_or_none() is None:
                    continue
                await _insert_children(session, values["id"], memberships, skills)
                added.append((values["id"], secret))
            return [_with_secret(await _load(session, agent_id), secret)
                    for agent_id, secret in added]

    # ------------------------------------------------------------------ state history

    async def record_state_changes(self, changes: Sequence[StateChange]) -> None:
        """Store a batch of state changes (one statement); unknown agents refuse them all."""
        rows = [_state_change_values(f"state_changes[{i}]", c) for i, c in enumerate(changes)]
        if not rows:
            return
        agent_ids = {row["agent_id"] for row in rows}
        async with self._sessions.begin() as session:
            known = set(
                await session.scalars(select(AgentRow.id).where(AgentRow.id.in_(agent_ids)))
            )
            unknown = sorted(agent_ids - known)
            if unknown:
                raise AgentNotFound(
                    f"state changes: no such agent {', '.join(repr(a) for a in unknown)}"
                )
            await session.execute(insert(AgentStateChangeRow), rows)
            if self._followers:
                earliest: dict[str, float] = {}
                for row in rows:
                    at = row["at"].timestamp()
                    earliest[row["agent_id"]] = min(at, earliest.get(row["agent_id"], at))
                for follower in self._followers:
                    await follower.changes_stored(session, earliest)

    async def state_history(
        self, agent_id: str, since: float | None = None, until: float | None = None
    ) -> builtins.list[StateChange]:
        """An agent's state changes in [since, until), oldest first (in recorded order)."""
        checked_id = _agent_id("agent_id", agent_id)
        conditions = time_range(AgentStateChangeRow.at, since, until)
        query = (
            select(AgentStateChangeRow)
            .where(AgentStateChangeRow.agent_id == checked_id, *conditions)
            .order_by(AgentStateChangeRow.at, AgentStateChangeRow.id)
        )
        async with self._sessions() as session:
            return [
                StateChange(agent_id=row.agent_id, state=row.state, reason=row.reason,
                            at=row.at.timestamp(), previous=row.previous)
                for row in await session.scalars(query)
            ]

    # ------------------------------------------------------------------ checking

    def _new_agent_values(
        self, agent: NewAgent
    ) -> tuple[dict[str, Any], dict[str, int], dict[str, int], str]:
        """The row's values, memberships, skills, and the SIP password (not in the row)."""
        agent_id = _agent_id("id", agent.id, new=True)
        where = f"agent {agent_id!r}"
        secret = _sip_secret(f"{where}: sip_secret",
                             new_sip_secret() if agent.sip_secret is None else agent.sip_secret)
        now = to_datetime(self._clock.now())
        values = {
            "id": agent_id,
            "name": _agent_name(f"{where}: name", agent.name),
            "sip_digest": sip_digest(agent_id, secret),
            "contact": _contact(f"{where}: contact", agent.contact),
            "active": _flag(f"{where}: active", agent.active),
            "created_at": now,
            "updated_at": now,
        }
        return (values, self._memberships(where, agent.queues), _skills(where, agent.skills),
                secret)

    def _memberships(self, where: str, queues: Mapping[str, int]) -> dict[str, int]:
        memberships = _levels(f"{where}: queues", queues, "tier", 0, MAX_TIER, _queue_name)
        if self._queues is not None:
            for queue in memberships:
                if queue not in self._queues:
                    known = ", ".join(sorted(self._queues)) or "none"
                    raise ValueError(
                        f"{where}: queues[{queue!r}]: no such queue (known: {known})"
                    )
        return memberships


# --------------------------------------------------------------------------- values


def _agent_id(where: str, value: object, *, new: bool = False) -> str:
    """An agent id to look up (``new``: one to create, which must follow AGENT_ID)."""
    text = required_text(where, value)
    (AGENT_ID if new else STORED_AGENT_ID).check(where, text)
    if text in RESERVED_NAMES:  # the generated PJSIP configuration's own objects
        raise ValueError(f"{where}: {text!r} is reserved for callcenter's own SIP configuration")
    return text


def _agent_name(where: str, value: object) -> str:
    text = required_text(where, value)
    if len(text) > MAX_NAME_CHARS:
        raise ValueError(f"{where}: longer than {MAX_NAME_CHARS} characters")
    if text != text.strip():
        raise ValueError(f"{where}: {text!r} has leading or trailing spaces")
    bad = sorted({c for c in text if c in NAME_FORBIDDEN or not c.isprintable()})
    if bad:
        raise ValueError(
            f"{where}: {text!r} contains {', '.join(repr(c) for c in bad)} "
            "(no quotes, angle brackets, ';', ',', '[', ']', '\\' or control characters)"
        )
    return text


def _sip_secret(where: str, value: object) -> str:
    if not isinstance(value, str) or not SIP_SECRET_RE.fullmatch(value):
        # Never echo a secret, not even a wrong one.
        raise ValueError(f"{where}: use 8-64 letters, digits, '.', '-' or '_'")
    return value


def _contact(where: str, value: object) -> str | None:
    text = text_value(where, value)
    if text is None or text == "":
        return None
    if not CONTACT_RE.fullmatch(text):
        raise ValueError(f"{where}: {text[:80]!r} is not sip:user@host[:port]")
    return text


def _flag(where: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    return value


def _queue_name(where: str, value: object) -> str:
    text = required_text(where, value)
    if not QUEUE_NAME_RE.fullmatch(text):
        raise ValueError(f"{where}: {text[:60]!r} is not a queue name")
    return text


def _skill_name(where: str, value: object) -> str:
    text = required_text(where, value)
    if not SKILL_RE.fullmatch(text):
        raise ValueError(
            f"{where}: {text[:60]!r} is not a skill (1-40 lowercase letters, digits, '-', '_')"
        )
    return text


def _skills(where: str, skills: Mapping[str, int]) -> dict[str, int]:
    return _levels(f"{where}: skills", skills, "level", MIN_LEVEL, MAX_LEVEL, _skill_name)


def _levels(
    where: str,
    mapping: object,
    what: str,
    lowest: int,
    highest: int,
    check_name: Callable[[str, object], str],
) -> dict[str, int]:
    """A name -> whole number mapping, checked; sorted by name."""
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{where}: expected a mapping of name to {what}, got {mapping!r}")
    checked: dict[str, int] = {}
    for key, number in mapping.items():
        name = check_name(f"{where}[{key!r}]", key)
        if isinstance(number, bool) or not isinstance(number, int) or not (
            lowest <= number <= highest
        ):
            raise ValueError(
                f"{where}[{name!r}]: {what} {number!r} is not a whole number from "
                f"{lowest} to {highest}"
            )
        checked[name] = number
    return dict(sorted(checked.items()))


def _state_change_values(where: str, change: object) -> dict[str, Any]:
    if not isinstance(change, StateChange):
        raise ValueError(f"{where}: expected a StateChange, got {change!r}")
    reason = text_value(f"{where}.reason", change.reason)
    if reason is not None and len(reason) > MAX_REASON_CHARS:
        raise ValueError(f"{where}.reason: longer than {MAX_REASON_CHARS} characters")
    return {
        "agent_id": _agent_id(f"{where}.agent_id", change.agent_id),
        "state": _state(f"{where}.state", change.state),
        "reason": reason,
        "at": required_time(f"{where}.at", change.at),
        "previous": _state(f"{where}.previous", change.previous),
    }


def _state(where: str, value: object) -> str:
    text = required_text(where, value)
    if not STATE_RE.fullmatch(text):
        raise ValueError(f"{where}: {text[:40]!r} is not a state name (lowercase, '_')")
    return str(text)  # a StrEnum member is stored as its plain value


# --------------------------------------------------------------------------- statements


def _with_children() -> Select[tuple[AgentRow]]:
    return select(AgentRow).options(
        selectinload(AgentRow.memberships), selectinload(AgentRow.skills)
    )


async def _require(session: AsyncSession, agent_id: str) -> None:
    if await session.scalar(select(AgentRow.id).where(AgentRow.id == agent_id)) is None:
        raise AgentNotFound(f"agent {agent_id!r}: no such agent")


async def _insert_children(
    session: AsyncSession, agent_id: str, memberships: Mapping[str, int],
    skills: Mapping[str, int],
) -> None:
    if memberships:
        await session.execute(insert(AgentQueueRow), [
            {"agent_id": agent_id, "queue": queue, "tier": tier}
            for queue, tier in memberships.items()
        ])
    if skills:
        await session.execute(insert(AgentSkillRow), [
            {"agent_id": agent_id, "skill": skill, "level": level}
            for skill, level in skills.items()
        ])


async def _load(session: AsyncSession, agent_id: str) -> AgentAccount:
    row = await session.scalar(
        _with_children().where(AgentRow.id == agent_id).execution_options(populate_existing=True)
    )
    if row is None:
        raise AgentNotFound(f"agent {agent_id!r}: no such agent")
    return _to_account(row)


def _with_secret(account: AgentAccount, secret: str) -> AgentAccount:
    return dataclasses.replace(account, sip_secret=secret)


def _to_account(row: AgentRow) -> AgentAccount:
    return AgentAccount(
        id=row.id,
        name=row.name,
        sip_digest=row.sip_digest,
        active=row.active,
        queues=MappingProxyType({m.queue: m.tier for m in row.memberships}),
        skills=MappingProxyType({s.skill: s.level for s in row.skills}),
        contact=row.contact,
        created_at=row.created_at.timestamp(),
        updated_at=row.updated_at.timestamp(),
    )
