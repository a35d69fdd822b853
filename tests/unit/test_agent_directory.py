"""Agents live in the database: accounts, memberships by tier, skills, state history; on SQLite
and on a real PostgreSQL."""

from __future__ import annotations

import hashlib
import string
from enum import StrEnum

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.config import AgentSettings
from callcenter.core.clock import VirtualClock
from callcenter.features.agents import models as agent_models
from callcenter.features.agents.store import (
    AgentAccount,
    AgentDirectory,
    AgentNotFound,
    DuplicateAgent,
    NewAgent,
    StateChange,
)
from callcenter.store import create_engine, session_factory, upgrade
from callcenter.store.models import Base
from tests.support.store import count_rows, migrate, table_names

T0 = 1_795_000_000.25
AGENT_TABLES = {"agents", "agent_queue_memberships", "agent_skills", "agent_state_changes"}


class State(StrEnum):  # what the ACD's AgentState looks like: a StrEnum is stored as its value
    LOGGED_OUT = "logged_out"
    READY = "ready"
    PAUSED = "paused"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=T0)


@pytest.fixture
def directory(engine: AsyncEngine, clock: VirtualClock) -> AgentDirectory:
    return AgentDirectory(session_factory(engine), clock=clock)


async def all_counts(engine: AsyncEngine) -> list[int]:
    return [await count_rows(engine, row) for row in (
        agent_models.AgentRow, agent_models.AgentQueueRow, agent_models.AgentSkillRow,
        agent_models.AgentStateChangeRow)]


def alice(**changes: object) -> NewAgent:
    values: dict[str, object] = {
        "id": "alice", "name": "Alice Moreau", "queues": {"sales": 0, "support": 1},
        "skills": {"french": 9, "billing": 4},
    }
    values.update(changes)
    return NewAgent(**values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- schema


async def test_the_migration_builds_exactly_the_agent_tables_the_models_describe(
    engine: AsyncEngine,
) -> None:
    def differences(connection: Connection) -> list[object]:
        def ours(name: str | None, kind: str, parent: dict[str, str | None]) -> bool:
            if kind == "schema":
                return True
            table = name if kind == "table" else parent.get("table_name")
            return table in AGENT_TABLES

        # Other features' tables are theirs to check: compare ours, both ways.
        ours_only = MetaData(naming_convention=Base.metadata.naming_convention)
        for name in AGENT_TABLES:
            Base.metadata.tables[name].to_metadata(ours_only)
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": ours})
        return list(compare_metadata(context, ours_only))

    assert set(Base.metadata.tables) >= AGENT_TABLES  # importing agent_models registers them
    async with engine.connect() as connection:
        assert await connection.run_sync(table_names) >= AGENT_TABLES
        assert await connection.run_sync(differences) == []


async def test_the_agents_migration_downgrades_and_upgrades_again(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            everything = await connection.run_sync(table_names)
        async with engine.begin() as connection:
            await connection.run_sync(migrate, db_url, "downgrade", "0004")
        async with engine.connect() as connection:
            # Later migrations' tables go too (dead letters; how far Asterisk's log was read;
            # transfers of calls; outbound campaigns, do-not-call, consents; holds of calls).
            later = {"call_dead_letters", "asterisk_log_positions", "call_transfers",
                     "campaigns", "do_not_call", "consent_ledger", "call_lists",
                     "call_list_entries", "call_list_problems", "campaign_attempts",
                     # the report aggregates (0020)
                     "report_queue_buckets", "report_ivr_buckets", "report_ivr_dropoffs",
                     "report_survey_buckets", "report_call_contributions",
                     "report_call_maxima",
                     "call_holds",
                     # the agent and campaign aggregates (0023)
                     "agent_state_time", "agent_call_time", "agent_credits",
                     "campaign_counts",
                     "report_call_wrap_ups",  # the queues' wrap-up (0025)
                     "report_queue_days", "report_day_zone",  # day rows (0026)
                     "call_recordings", "evaluation_forms", "evaluations",
                     "tariffs", "tariff_rates", "call_costs"}
            assert await connection.run_sync(table_names) == everything - AGENT_TABLES - later
        await upgrade(db_url)
        async with engine.connect() as connection:
            assert await connection.run_sync(table_names) == everything
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- accounts


async def test_a_new_agent_gets_a_random_sip_secret_and_reads_back_exactly(
    directory: AgentDirectory,
) -> None:
    created = await directory.create(alice())
    assert created.sip_secret is not None
    assert created == AgentAccount(
        id="alice", name="Alice Moreau", sip_digest=digest("alice", created.sip_secret),
        active=True, queues={"sales": 0, "support": 1}, skills={"billing": 4, "french": 9},
        contact=None, created_at=T0, updated_at=T0,
    )
    assert len(created.sip_secret) == 24  # secrets.token_urlsafe(18)
    assert set(created.sip_secret) <= set(string.ascii_letters + string.digits + "-_")
    assert created.primary_queues == ("sales",)
    read_back = await directory.get("alice")
    assert read_back == created and read_back is not None
    assert read_back.sip_secret is None  # the password is shown once, never read back
    assert read_back.has_sip_secret(created.sip_secret)
    other = await directory.create(alice(id="bruno"))
    assert other.sip_secret != created.sip_secret


def digest(agent_id: str, password: str) -> str:
    """PJSIP's digest credential, computed here independently of the code under test."""
    return hashlib.md5(f"{agent_id}:callcenter:{password}".encode()).hexdigest()


async def test_only_the_digest_of_a_sip_password_is_in_the_database(
    directory: AgentDirectory, engine: AsyncEngine,
) -> None:
    created = await directory.create(alice(sip_secret="s3cret.Pass_word"))
    rotated = await directory.rotate_secret("alice")
    assert rotated.sip_secret is not None
    async with engine.connect() as connection:
        rows = (await connection.execute(select(agent_models.AgentRow.__table__))).all()
    stored = " ".join(str(value) for row in rows for value in row)
    assert "s3cret.Pass_word" not in stored and rotated.sip_secret not in stored
    assert digest("alice", rotated.sip_secret) in stored
    assert not rotated.has_sip_secret("s3cret.Pass_word") and created.id == "alice"


async def test_a_given_secret_and_contact_are_kept_and_the_secret_is_never_shown(
    directory: AgentDirectory,
) -> None:
    created = await directory.create(alice(sip_secret="s3cret.Pass_word",
                                           contact="sip:alice@127.0.0.1:5081"))
    assert created.sip_secret == "s3cret.Pass_word"
    assert created.contact == "sip:alice@127.0.0.1:5081"
    assert "s3cret" not in repr(created)
    assert "s3cret" not in repr(alice(sip_secret="s3cret.Pass_word"))


async def test_an_agent_id_is_taken_once(directory: AgentDirectory, engine: AsyncEngine) -> None:
    first = await directory.create(alice())
    with pytest.raises(DuplicateAgent, match="agent 'alice': already exists"):
        await directory.create(alice(name="Another Alice", queues={}, skills={}))
    assert await directory.get("alice") == first
    assert await all_counts(engine) == [1, 2, 2, 0]


async def test_an_unknown_agent_is_none_and_ids_are_case_sensitive(
    directory: AgentDirectory,
) -> None:
    await directory.create(alice())
    assert await directory.get("nobody") is None
    assert await directory.get("Alice") is None


@pytest.mark.parametrize(("changes", "message"), [
    ({"id": "al ice"}, r"^id: 'al ice' is not an agent id"),
    ({"id": "a" * 41}, r"^id: 'a{41}' is not an agent id"),
    ({"id": ""}, r"^id: must be non-empty text"),
    ({"id": "anonymous"}, r"^id: 'anonymous' is reserved"),
    ({"id": "callcenter-trunk"}, r"^id: 'callcenter-trunk' is reserved"),
    ({"name": 'Al "the boss"'}, r"^agent 'alice': name: .* contains '\"'"),
    ({"name": "Alice\n[evil]"}, r"^agent 'alice': name: .* contains '\\n', '\[', '\]'"),
    ({"name": "Moreau, Alice"}, r"^agent 'alice': name: .* contains ','"),
    ({"name": " Alice"}, r"^agent 'alice': name: ' Alice' has leading or trailing spaces"),
    ({"name": "A\x00"}, r"^agent 'alice': name: contains a NUL character"),
    ({"queues": {"sales": -1}}, r"^agent 'alice': queues\['sales'\]: tier -1 is not a whole"),
    ({"queues": {"sales": 1.5}}, r"^agent 'alice': queues\['sales'\]: tier 1.5 is not"),
    ({"queues": {"sales": True}}, r"^agent 'alice': queues\['sales'\]: tier True is not"),
    ({"queues": {"Sales!": 0}}, r"^agent 'alice': queues\['Sales!'\]: 'Sales!' is not a queue"),
    ({"queues": ["sales"]}, r"^agent 'alice': queues: expected a mapping"),
    ({"skills": {"french": 11}}, r"^agent 'alice': skills\['french'\]: level 11 is not a whole "
                                 r"number from 1 to 10"),
    ({"skills": {"french": 0}}, r"^agent 'alice': skills\['french'\]: level 0"),
    ({"skills": {"French": 3}}, r"^agent 'alice': skills\['French'\]: 'French' is not a skill"),
    ({"skills": {"x" * 41: 3}}, r"^agent 'alice': skills\['x{41}'\]: .* is not a skill"),
    ({"sip_secret": "short"}, r"^agent 'alice': sip_secret: use 8-64 letters"),
    ({"sip_secret": "spaces are bad"}, r"^agent 'alice': sip_secret: use 8-64 letters"),
    ({"contact": "sip:alice@host;evil"}, r"^agent 'alice': contact: .* is not sip:user@host"),
    ({"active": "yes"}, r"^agent 'alice': active: expected true or false"),
])
async def test_a_bad_agent_is_refused_naming_the_field_and_nothing_is_written(
    directory: AgentDirectory, engine: AsyncEngine, changes: dict[str, object], message: str,
) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        await directory.create(alice(**changes))
    assert "spaces are bad" not in str(refused.value)  # a secret is never echoed
    assert await all_counts(engine) == [0, 0, 0, 0]


async def test_with_known_queues_a_membership_of_another_queue_is_refused(
    engine: AsyncEngine, clock: VirtualClock,
) -> None:
    directory = AgentDirectory(session_factory(engine), clock=clock, queues=["sales", "support"])
    await directory.create(alice())
    with pytest.raises(ValueError, match=r"^agent 'bruno': queues\['vip'\]: no such queue "
                                         r"\(known: sales, support\)"):
        await directory.create(alice(id="bruno", queues={"vip": 0}))
    with pytest.raises(ValueError, match=r"queues\['vip'\]: no such queue"):
        await directory.update("alice", queues={"vip": 2})
    assert (await directory.get("alice")).queues == {"sales": 0, "support": 1}  # type: ignore


async def test_an_update_changes_only_what_is_given_and_stamps_updated_at(
    directory: AgentDirectory, clock: VirtualClock,
) -> None:
    created = await directory.create(alice())
    clock.advance(60)
    renamed = await directory.update("alice", name="Alice M.")
    assert renamed.name == "Alice M."
    assert (renamed.queues, renamed.skills, renamed.active) == (
        created.queues, created.skills, True)
    assert (renamed.created_at, renamed.updated_at) == (T0, T0 + 60)

    clock.advance(60)
    moved = await directory.update("alice", queues={"operator": 0, "sales": 2},
                                   skills={"english": 7})
    assert moved.queues == {"operator": 0, "sales": 2}  # replaced, not merged
    assert moved.skills == {"english": 7}
    assert moved.name == "Alice M." and moved.updated_at == T0 + 120
    assert moved.primary_queues == ("operator",)

    cleared = await directory.update("alice", queues={}, skills={}, active=False)
    assert (cleared.queues, cleared.skills, cleared.active) == ({}, {}, False)
    assert await directory.get("alice") == cleared

    clock.advance(60)
    unchanged = await directory.update("alice")
    assert unchanged == cleared  # nothing given: nothing written, not even updated_at


async def test_an_update_with_one_bad_value_changes_nothing(
    directory: AgentDirectory,
) -> None:
    created = await directory.create(alice())
    with pytest.raises(ValueError, match=r"skills\['french'\]: level 12"):
        await directory.update("alice", name="New Name", queues={"operator": 0},
                               skills={"french": 12})
    assert await directory.get("alice") == created


async def test_updating_or_rotating_an_unknown_agent_says_so(directory: AgentDirectory) -> None:
    with pytest.raises(AgentNotFound, match="agent 'ghost': no such agent"):
        await directory.update("ghost", name="Ghost")
    with pytest.raises(AgentNotFound, match="agent 'ghost': no such agent"):
        await directory.rotate_secret("ghost")
    with pytest.raises(ValueError, match=r"^id: 'no way' is not an agent id"):
        await directory.update("no way", name="x")


async def test_rotating_the_secret_gives_a_new_random_one(
    directory: AgentDirectory, clock: VirtualClock,
) -> None:
    created = await directory.create(alice(sip_secret="old-secret-1"))
    clock.advance(5)
    rotated = await directory.rotate_secret("alice")
    assert rotated.sip_secret is not None
    assert rotated.sip_secret not in ("old-secret-1", "")
    assert len(rotated.sip_secret) == 24
    assert rotated.updated_at == T0 + 5
    assert rotated == AgentAccount(**{**created.__dict__,
                                      "sip_digest": digest("alice", rotated.sip_secret),
                                      "updated_at": T0 + 5})
    stored = await directory.get("alice")
    assert stored is not None and stored.has_sip_secret(rotated.sip_secret)
    assert not stored.has_sip_secret("old-secret-1")


async def test_the_list_holds_active_agents_by_id_unless_asked_for_all(
    directory: AgentDirectory,
) -> None:
    for agent_id in ("chen", "alice", "bruno"):
        await directory.create(alice(id=agent_id))
    await directory.update("bruno", active=False)
    assert [a.id for a in await directory.list()] == ["alice", "chen"]
    everyone = await directory.list(active_only=False)
    assert [a.id for a in everyone] == ["alice", "bruno", "chen"]
    assert everyone[0].skills == {"billing": 4, "french": 9}


async def test_deleting_an_agent_removes_memberships_and_skills_but_not_a_history(
    directory: AgentDirectory, engine: AsyncEngine,
) -> None:
    await directory.create(alice())
    await directory.create(alice(id="bruno"))
    await directory.record_state_changes([StateChange("bruno", "ready", "login", T0, "logged_out")])
    async with engine.begin() as connection:
        await connection.execute(delete(agent_models.AgentRow)
                                 .where(agent_models.AgentRow.id == "alice"))
    assert await all_counts(engine) == [1, 2, 2, 1]
    with pytest.raises(IntegrityError):  # an agent with a history is deactivated instead
        async with engine.begin() as connection:
            await connection.execute(delete(agent_models.AgentRow)
                                     .where(agent_models.AgentRow.id == "bruno"))
    assert await all_counts(engine) == [1, 2, 2, 1]


# --------------------------------------------------------------------------- seeding


SETTINGS_AGENTS = (
    AgentSettings(id="agent1", name="Alice", password="password1",
                  queues=("sales", "support", "operator"), contact="sip:agent1@127.0.0.1:5081"),
    AgentSettings(id="agent2", name="Bruno", password="password2",
                  queues=("operator", "sales:1"), skills=("billing:7", "spanish:2"),
                  logged_in=False),
)


async def test_seeding_stores_the_settings_agents_with_their_settings_passwords(
    directory: AgentDirectory,
) -> None:
    added = await directory.seed(SETTINGS_AGENTS)
    assert [a.id for a in added] == ["agent1", "agent2"]
    agent1, agent2 = added
    assert agent1.sip_secret == "password1" and agent2.sip_secret == "password2"
    assert agent1.queues == {"operator": 0, "sales": 0, "support": 0}
    assert agent1.contact == "sip:agent1@127.0.0.1:5081" and agent2.contact is None
    assert agent2.queues == {"operator": 0, "sales": 1}  # "sales:1": an overflow tier
    assert agent1.skills == {} and agent2.skills == {"billing": 7, "spanish": 2}
    assert agent1.active and agent2.active
    assert await directory.list() == added


async def test_seeding_never_overwrites_a_stored_agent(
    directory: AgentDirectory, clock: VirtualClock,
) -> None:
    await directory.seed(SETTINGS_AGENTS[:1])
    changed = await directory.update("agent1", name="Alice Renamed", queues={"sales": 1})
    clock.advance(10)
    added = await directory.seed(SETTINGS_AGENTS)
    assert [a.id for a in added] == ["agent2"]
    assert added[0].created_at == T0 + 10
    assert await directory.get("agent1") == changed
    assert await directory.seed(SETTINGS_AGENTS) == []


async def test_seeding_takes_secrets_from_the_callers_choice_or_makes_new_ones(
    directory: AgentDirectory,
) -> None:
    chosen = {"agent1": "chosen-secret-1"}
    added = await directory.seed(SETTINGS_AGENTS, secrets_for=lambda a: chosen.get(a.id))
    assert added[0].sip_secret == "chosen-secret-1"
    assert added[1].sip_secret not in ("password2", "") and len(added[1].sip_secret) == 24


async def test_a_bad_settings_agent_seeds_nothing(
    directory: AgentDirectory, engine: AsyncEngine,
) -> None:
    bad = AgentSettings(id="agent3", name="Chen", password="short")
    with pytest.raises(ValueError, match=r"^agent 'agent3': sip_secret: use 8-64"):
        await directory.seed([*SETTINGS_AGENTS, bad])
    with pytest.raises(ValueError, match=r"agent 'agent1' is listed twice"):
        await directory.seed([*SETTINGS_AGENTS, SETTINGS_AGENTS[0]])
    assert await all_counts(engine) == [0, 0, 0, 0]


# --------------------------------------------------------------------------- state history


async def test_state_changes_are_stored_in_a_batch_and_read_back_by_time_range(
    directory: AgentDirectory,
) -> None:
    await directory.seed(SETTINGS_AGENTS)
    changes = [
        StateChange("agent1", State.READY, "login", T0, State.LOGGED_OUT),
        StateChange("agent2", "ready", "login", T0 + 1, "logged_out"),
        StateChange("agent1", State.PAUSED, "lunch", T0 + 60.000_001, State.READY),
        StateChange("agent1", "ready", None, T0 + 3600, "paused"),
        # Two changes at the same instant keep the order they were recorded in.
        StateChange("agent1", "ringing", None, T0 + 3600, "ready"),
    ]
    await directory.record_state_changes(changes)
    history = await directory.state_history("agent1")
    assert history == [changes[0], changes[2], changes[3], changes[4]]
    assert all(type(c.state) is str and type(c.previous) is str for c in history)
    assert await directory.state_history("agent1", since=T0 + 60.000_001, until=T0 + 3600) == [
        changes[2]]
    assert await directory.state_history("agent1", since=T0 + 3600) == changes[3:]
    assert await directory.state_history("agent2", until=T0 + 1) == []
    assert await directory.state_history("agent3") == []


async def test_a_batch_with_an_unknown_agent_stores_none_of_it(
    directory: AgentDirectory, engine: AsyncEngine,
) -> None:
    await directory.seed(SETTINGS_AGENTS)
    with pytest.raises(AgentNotFound, match="no such agent 'ghost', 'zed'"):
        await directory.record_state_changes([
            StateChange("agent1", "ready", "login", T0, "logged_out"),
            StateChange("zed", "ready", "login", T0, "logged_out"),
            StateChange("ghost", "ready", "login", T0, "logged_out"),
        ])
    assert await count_rows(engine, agent_models.AgentStateChangeRow) == 0
    await directory.record_state_changes([])  # an empty batch is nothing to do


@pytest.mark.parametrize(("change", "message"), [
    (StateChange("agent1", "Ready!", None, T0, "ready"), r"state_changes\[1\]\.state: 'Ready!'"),
    (StateChange("agent1", "ready", None, T0, ""), r"state_changes\[1\]\.previous: must be"),
    (StateChange("agent1", "ready", None, float("nan"), "paused"),
     r"state_changes\[1\]\.at: expected a finite number"),
    (StateChange("agent1", "ready", "x" * 201, T0, "paused"),
     r"state_changes\[1\]\.reason: longer than 200"),
    (StateChange("agent 1", "ready", None, T0, "paused"),
     r"state_changes\[1\]\.agent_id: 'agent 1' is not an agent id"),
])
async def test_a_bad_state_change_is_refused_naming_it_and_nothing_is_stored(
    directory: AgentDirectory, engine: AsyncEngine, change: StateChange, message: str,
) -> None:
    await directory.seed(SETTINGS_AGENTS)
    good = StateChange("agent1", "ready", "login", T0, "logged_out")
    with pytest.raises(ValueError, match=message):
        await directory.record_state_changes([good, change])
    assert await count_rows(engine, agent_models.AgentStateChangeRow) == 0


async def test_a_history_range_must_make_sense(directory: AgentDirectory) -> None:
    with pytest.raises(ValueError, match=r"since \(.*\) is after until"):
        await directory.state_history("agent1", since=T0 + 1, until=T0)
    with pytest.raises(ValueError, match=r"^agent_id: 'x;y' is not an agent id"):
        await directory.state_history("x;y")
