"""Users, roles, sessions and API tokens survive the database: on SQLite and a real PostgreSQL."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from argon2 import PasswordHasher
from sqlalchemy import Connection, MetaData, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.core.clock import VirtualClock
from callcenter.features.accounts.models import ApiTokenRow, UserRoleRow, UserRow, WebSessionRow
from callcenter.features.accounts.store import (
    KEEP,
    SESSION_LIFETIME,
    AccountRepository,
    LastAdmin,
    Role,
    TokenNotFound,
    UsernameTaken,
    UserNotFound,
    ensure_first_admin,
)
from callcenter.store import create_engine, session_factory, upgrade
from callcenter.store.models import Base
from tests.support.store import count_rows, migrate

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z
PASSWORD = "correct horse battery"
ACCOUNT_TABLES = {"users", "user_roles", "api_tokens", "web_sessions"}
# Cheap parameters: the tests check behaviour, not the cost of guessing.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=T0)


@pytest.fixture
def accounts(engine: AsyncEngine, clock: VirtualClock) -> AccountRepository:
    return AccountRepository(session_factory(engine), clock=clock, hasher=FAST)


async def stored_password_hash(engine: AsyncEngine, username: str) -> str:
    async with engine.connect() as connection:
        query = select(UserRow.password_hash).where(UserRow.username == username)
        return (await connection.execute(query)).scalar_one()


# --------------------------------------------------------------------------- schema


async def test_the_accounts_migration_builds_exactly_the_account_models(
    engine: AsyncEngine,
) -> None:
    def only_accounts(name: str | None, type_: str, parent: object) -> bool:
        return type_ != "table" or name in ACCOUNT_TABLES

    # Only our tables, on both sides: other features' tables are their own tests' business.
    ours = MetaData(naming_convention=Base.metadata.naming_convention)
    for name in sorted(ACCOUNT_TABLES, key=lambda n: n != "users"):  # users first: FK target
        Base.metadata.tables[name].to_metadata(ours)

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": only_accounts}
        )
        return list(compare_metadata(context, ours))

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_the_accounts_migration_downgrades_and_upgrades_again(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(migrate, db_url, "downgrade", "0003")
        async with engine.connect() as connection:
            names = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
        assert names.isdisjoint(ACCOUNT_TABLES)
        assert "calls" in names  # what came before stays
        await upgrade(db_url)
        async with engine.connect() as connection:
            names = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
        assert names >= ACCOUNT_TABLES
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- users


async def test_a_new_user_reads_back_with_roles_and_creation_time(
    accounts: AccountRepository,
) -> None:
    user = await accounts.create_user(
        "ada.l@example", PASSWORD, ["agent", Role.SUPERVISOR], display_name="Ada", agent_id="ada"
    )
    assert user.username == "ada.l@example"
    assert user.roles == {Role.AGENT, Role.SUPERVISOR}
    assert user.display_name == "Ada"
    assert user.agent_id == "ada"
    assert user.active is True
    assert user.created_at == T0
    assert await accounts.get_user(user.id) == user
    assert await accounts.get_user_by_username("ada.l@example") == user
    assert await accounts.get_user_by_username("ADA.L@example") is None
    assert await accounts.count_users() == 1


async def test_the_password_is_stored_only_as_an_argon2_hash(
    accounts: AccountRepository, engine: AsyncEngine
) -> None:
    await accounts.create_user("ada", PASSWORD, ["agent"])
    stored = await stored_password_hash(engine, "ada")
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_users_are_listed_by_username(accounts: AccountRepository) -> None:
    for name in ("carol", "alice", "bob"):
        await accounts.create_user(name, PASSWORD, ["agent"])
    assert [u.username for u in await accounts.list_users()] == ["alice", "bob", "carol"]


async def test_a_taken_username_is_refused(accounts: AccountRepository, engine: AsyncEngine):
    await accounts.create_user("ada", PASSWORD, ["agent"])
    with pytest.raises(UsernameTaken, match="username: 'ada' is taken"):
        await accounts.create_user("ada", PASSWORD + "x", ["admin"])
    assert await count_rows(engine, UserRow) == 1
    assert await count_rows(engine, UserRoleRow) == 1


@pytest.mark.parametrize(("fields", "says"), [
    ({"username": ""}, "username: '' is not 1-64 characters"),
    ({"username": "x" * 65}, "username: "),
    ({"username": "ada lovelace"}, "username: 'ada lovelace' is not"),
    ({"username": "adä"}, "username: 'adä' is not"),
    ({"username": "ada\n"}, "username: 'ada\\n' is not"),
    ({"username": 42}, "username: 42 is not"),
    ({"password": "short9chr"}, "password: must be at least 10 characters"),
    ({"password": "p" * 1025}, "password: must be at most 1024 characters"),
    ({"password": None}, "password: expected text"),
    ({"roles": []}, "roles: give at least one of"),
    ({"roles": ["root"]}, "roles: 'root' is not a role; use admin, supervisor, agent"),
    ({"roles": "admin"}, "roles: expected a list"),
    ({"roles": [1]}, "roles: 1 is not a role"),
    ({"display_name": "line\nbreak"}, "display_name: expected 1-100 characters"),
    ({"display_name": "  "}, "display_name: expected"),
    ({"agent_id": "Agent One"}, "agent_id: 'Agent One' is not an agent id"),
])
async def test_bad_user_fields_are_refused_naming_the_field(
    accounts: AccountRepository, engine: AsyncEngine, fields: dict[str, object], says: str
) -> None:
    values: dict[str, object] = {"username": "ada", "password": PASSWORD, "roles": ["agent"]}
    values.update(fields)
    with pytest.raises(ValueError) as refused:
        await accounts.create_user(
            values.pop("username"), values.pop("password"), values.pop("roles"), **values
        )
    assert says in str(refused.value)
    assert await count_rows(engine, UserRow) == 0


async def test_a_user_changes_roles_names_agent_and_password(
    accounts: AccountRepository, engine: AsyncEngine
) -> None:
    await accounts.create_user("root", PASSWORD, ["admin"])
    ada = await accounts.create_user("ada", PASSWORD, ["agent"], display_name="Ada", agent_id="a1")
    changed = await accounts.update_user(
        ada.id, roles=["supervisor", "campaign_manager"], display_name=None, agent_id="a2"
    )
    assert changed.roles == {Role.SUPERVISOR, Role.CAMPAIGN_MANAGER}
    assert changed.display_name is None
    assert changed.agent_id == "a2"
    assert changed.created_at == ada.created_at
    assert await count_rows(engine, UserRoleRow) == 3

    kept = await accounts.update_user(ada.id, display_name=KEEP, password="a new secret phrase")
    assert kept.display_name is None and kept.agent_id == "a2"
    assert await accounts.authenticate("ada", PASSWORD) is None
    assert await accounts.authenticate("ada", "a new secret phrase") == kept


async def test_changing_an_unknown_user_says_so(accounts: AccountRepository) -> None:
    await accounts.create_user("root", PASSWORD, ["admin"])
    with pytest.raises(UserNotFound, match="user 999: no such user"):
        await accounts.update_user(999, display_name="x")
    with pytest.raises(ValueError, match="id: 0 is not an id"):
        await accounts.update_user(0, display_name="x")


async def test_the_last_active_admin_can_neither_lose_the_role_nor_be_deactivated(
    accounts: AccountRepository,
) -> None:
    root = await accounts.create_user("root", PASSWORD, ["admin", "supervisor"])
    with pytest.raises(LastAdmin, match="would leave no active admin"):
        await accounts.update_user(root.id, roles=["supervisor"])
    with pytest.raises(LastAdmin):
        await accounts.update_user(root.id, active=False)
    assert await accounts.get_user(root.id) == root  # both changes rolled back

    second = await accounts.create_user("second", PASSWORD, ["admin"])
    demoted = await accounts.update_user(root.id, roles=["supervisor"])
    assert demoted.roles == {Role.SUPERVISOR}
    with pytest.raises(LastAdmin):
        await accounts.update_user(second.id, active=False)


# --------------------------------------------------------------------------- passwords


async def test_sign_in_needs_the_right_password_of_an_active_user(
    accounts: AccountRepository,
) -> None:
    await accounts.create_user("root", PASSWORD, ["admin"])
    ada = await accounts.create_user("ada", PASSWORD, ["agent"])
    assert await accounts.authenticate("ada", PASSWORD) == ada
    assert await accounts.authenticate("ada", PASSWORD.upper()) is None
    assert await accounts.authenticate("nobody", PASSWORD) is None
    assert await accounts.authenticate("ada", "") is None
    await accounts.update_user(ada.id, active=False)
    assert await accounts.authenticate("ada", PASSWORD) is None


async def test_a_hash_made_with_old_parameters_is_replaced_at_sign_in(
    engine: AsyncEngine, clock: VirtualClock
) -> None:
    old = AccountRepository(session_factory(engine), clock=clock, hasher=FAST)
    await old.create_user("ada", PASSWORD, ["agent"])
    before = await stored_password_hash(engine, "ada")
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    assert stronger.check_needs_rehash(before)

    new = AccountRepository(session_factory(engine), clock=clock, hasher=stronger)
    assert await new.authenticate("ada", PASSWORD) is not None
    after = await stored_password_hash(engine, "ada")
    assert after != before
    assert not stronger.check_needs_rehash(after)
    assert await new.authenticate("ada", PASSWORD) is not None
    assert await stored_password_hash(engine, "ada") == after  # no rehash when up to date

    assert await new.authenticate("ada", "wrong password!") is None


# --------------------------------------------------------------------------- web sessions


async def test_a_session_lasts_twelve_hours_and_is_stored_hashed(
    accounts: AccountRepository, engine: AsyncEngine, clock: VirtualClock
) -> None:
    ada = await accounts.create_user("ada", PASSWORD, ["agent"])
    issued = await accounts.create_session(ada.id)
    assert issued.expires_at == T0 + SESSION_LIFETIME == T0 + 12 * 3600
    assert await accounts.user_for_session(issued.secret) == ada
    async with engine.connect() as connection:
        stored = (await connection.execute(select(WebSessionRow.session_hash))).scalar_one()
    assert stored == hashlib.sha256(issued.secret.encode()).hexdigest()

    clock.advance(12 * 3600 - 1)
    assert await accounts.user_for_session(issued.secret) == ada
    clock.advance(1)
    assert await accounts.user_for_session(issued.secret) is None
    assert await accounts.delete_expired_sessions() == 1
    assert await count_rows(engine, WebSessionRow) == 0


async def test_a_deleted_session_stops_working(accounts: AccountRepository) -> None:
    ada = await accounts.create_user("ada", PASSWORD, ["agent"])
    kept = await accounts.create_session(ada.id)
    ended = await accounts.create_session(ada.id)
    await accounts.delete_session(ended.secret)
    assert await accounts.user_for_session(ended.secret) is None
    assert await accounts.user_for_session(kept.secret) == ada


@pytest.mark.parametrize("secret", ["", "x", "a" * 42, "a" * 44, "a" * 42 + "!", None, 7])
async def test_malformed_session_ids_find_nobody(
    accounts: AccountRepository, secret: object
) -> None:
    ada = await accounts.create_user("ada", PASSWORD, ["agent"])
    await accounts.create_session(ada.id)
    assert await accounts.user_for_session(secret) is None  # type: ignore[arg-type]
    await accounts.delete_session(secret)  # type: ignore[arg-type]


async def test_deactivating_a_user_ends_their_sessions_and_revokes_their_tokens(
    accounts: AccountRepository, engine: AsyncEngine
) -> None:
    await accounts.create_user("root", PASSWORD, ["admin"])
    ada = await accounts.create_user("ada", PASSWORD, ["agent"])
    session = await accounts.create_session(ada.id)
    token = await accounts.create_token(ada.id, "script")
    await accounts.update_user(ada.id, active=False)
    assert await accounts.user_for_session(session.secret) is None
    assert await accounts.user_for_token(token.secret) is None
    assert await count_rows(engine, WebSessionRow) == 0
    with pytest.raises(UserNotFound, match="no such active user"):
        await accounts.create_session(ada.id)

    # Back in service: the old session and the old token stay ended (someone who left must
    # not find their scripts' tokens working again should they come back).
    await accounts.update_user(ada.id, active=True)
    assert await accounts.user_for_session(session.secret) is None
    assert await accounts.user_for_token(token.secret) is None
    assert await accounts.list_tokens(ada.id) == []


async def test_a_new_password_ends_every_session_but_keeps_tokens(
    accounts: AccountRepository,
) -> None:
    await accounts.create_user("root", PASSWORD, ["admin"])
    ada = await accounts.create_user("ada", PASSWORD, ["agent"])
    sessions = [await accounts.create_session(ada.id) for _ in range(2)]
    token = await accounts.create_token(ada.id, "script")
    await accounts.update_user(ada.id, display_name="Ada")  # no new password: nothing ends
    assert await accounts.user_for_session(sessions[0].secret) is not None
    await accounts.update_user(ada.id, password="another long password")
    for session in sessions:
        assert await accounts.user_for_session(session.secret) is None
    assert await accounts.user_for_token(token.secret) is not None
    assert await accounts.token_valid(token.token.id)


async def test_signing_out_everywhere_ends_only_that_users_sessions(
    accounts: AccountRepository,
) -> None:
    ada = await accounts.create_user("ada", PASSWORD, ["agent"])
    bob = await accounts.create_user("bob", PASSWORD, ["agent"])
    ada_sessions = [await accounts.create_session(ada.id) for _ in range(3)]
    bob_session = await accounts.create_session(bob.id)
    assert await accounts.end_sessions(ada.id) == 3
    assert all([await accounts.user_for_session(s.secret) is None for s in ada_sessions])
    assert await accounts.user_for_session(bob_session.secret) is not None


# --------------------------------------------------------------------------- API tokens


async def test_a_token_finds_its_user_and_only_its_hash_is_stored(
    accounts: AccountRepository, engine: AsyncEngine
) -> None:
    ada = await accounts.create_user("ada", PASSWORD, ["agent"])
    issued = await accounts.create_token(ada.id, "nightly report", expires_at=T0 + 86400)
    assert issued.secret.startswith("cc_")
    assert issued.token.name == "nightly report"
    assert issued.token.username == "ada"
    assert issued.token.created_at == T0
    assert issued.token.expires_at == T0 + 86400
    assert issued.token.last_used_at is None
    async with engine.connect() as connection:
        stored = (await connection.execute(select(ApiTokenRow.token_hash))).scalar_one()
    assert stored == hashlib.sha256(issued.secret.encode()).hexdigest()

    found = await accounts.user_for_token(issued.secret)
    assert found is not None
    assert found[0] == ada
    assert found[1].id == issued.token.id
    assert await accounts.get_token(issued.token.id) == found[1]


async def test_last_use_is_written_at_most_once_a_minute(
    accounts: AccountRepository, clock: VirtualClock
) -> None:
    ada = await accounts.create_user("ada", PASSWORD, ["agent"])
    issued = await accounts.create_token(ada.id, "script")
    token_id = issued.token.id

    async def last_used() -> float | None:
        token = await accounts.get_token(token_id)
        assert token is not None
        return token.last_used_at

    await accounts.user_for_token(issued.secret)
    assert await last_used() == T0
    clock.advance(59)
    await accounts.user_for_token(issued.secret)
    assert await last_used() == T0
    clock.advance(1)
    await accounts.user_for_token(issued.secret)
    assert await last_used() == T0 + 60


async def test_a_token_stops_working_when_it_expires_or_is_revoked(
    accounts: AccountRepository, clock: VirtualClock
) -> None:
    ada = await accounts.create_user("ada", PASSWORD, ["agent"])
    expiring = await accounts.create_token(ada.id, "short", expires_at=T0 + 100)
    revoked = await accounts.create_token(ada.id, "revoked")
    await accounts.delete_token(revoked.token.id)
    assert await accounts.user_for_token(revoked.secret) is None
    with pytest.raises(TokenNotFound, match=f"token {revoked.token.id}: no such token"):
        await accounts.delete_token(revoked.token.id)
    assert await accounts.user_for_token(expiring.secret) is not None
    clock.advance(100)
    assert await accounts.user_for_token(expiring.secret) is None


async def test_tokens_are_listed_per_user_or_all(accounts: AccountRepository) -> None:
    ada = await accounts.create_user("ada", PASSWORD, ["agent"])
    bob = await accounts.create_user("bob", PASSWORD, ["agent"])
    first = await accounts.create_token(ada.id, "one")
    second = await accounts.create_token(bob.id, "two")
    third = await accounts.create_token(ada.id, "three")
    assert [t.id for t in await accounts.list_tokens(ada.id)] == [first.token.id, third.token.id]
    assert [t.id for t in await accounts.list_tokens()] == [
        first.token.id, second.token.id, third.token.id
    ]
    assert await accounts.list_tokens(bob.id) == [second.token]


async def test_bad_tokens_are_refused_or_find_nobody(accounts: AccountRepository) -> None:
    ada = await accounts.create_user("ada", PASSWORD, ["agent"])
    with pytest.raises(UserNotFound):
        await accounts.create_token(999, "orphan")
    with pytest.raises(ValueError, match="name: expected 1-100 characters"):
        await accounts.create_token(ada.id, "")
    with pytest.raises(ValueError, match="expires_at: must be in the future"):
        await accounts.create_token(ada.id, "late", expires_at=T0)
    issued = await accounts.create_token(ada.id, "real")
    for secret in ("", issued.secret[3:], issued.secret + "x", "cc_" + "A" * 43, "Bearer x"):
        assert await accounts.user_for_token(secret) is None


# --------------------------------------------------------------------------- first admin


async def test_the_first_admin_is_made_once_with_a_password_file_only_its_owner_reads(
    accounts: AccountRepository, tmp_path: Path
) -> None:
    data_dir = tmp_path / "state"  # the SQLite file of the fixture lives in tmp_path / "data"
    password = await ensure_first_admin(accounts, data_dir)
    assert password is not None and len(password) >= 16
    password_file = data_dir / "admin-password"
    assert password_file.read_text() == password + "\n"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert [p.name for p in data_dir.iterdir()] == ["admin-password"]  # no temporary left
    admin = await accounts.authenticate("admin", password)
    assert admin is not None and admin.roles == {Role.ADMIN}

    assert await ensure_first_admin(accounts, data_dir) is None
    assert password_file.read_text() == password + "\n"
    assert await accounts.count_users() == 1


async def test_no_first_admin_when_someone_exists_already(
    accounts: AccountRepository, tmp_path: Path
) -> None:
    await accounts.create_user("ada", PASSWORD, ["admin"])
    assert await ensure_first_admin(accounts, tmp_path) is None
    assert not (tmp_path / "admin-password").exists()
    assert await accounts.get_user_by_username("admin") is None
