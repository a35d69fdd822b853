"""The PostgreSQL database each test process reuses (tests/support/postgres.py): after a
test it holds no rows and its sequences start again; a test that changed the schema leaves
the next one a new copy of the template."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest

from tests.support.postgres import PostgresServer, ReusedDatabase

pytestmark = pytest.mark.postgres


async def _fetch(url: str, *statements: str) -> list[object]:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        return [await connection.fetchval(statement) for statement in statements]
    finally:
        await connection.close()


def run(url: str, *statements: str) -> list[object]:
    return asyncio.run(_fetch(url, *statements))


@pytest.fixture
def database(postgres_server: PostgresServer, migrated_postgres: str) -> Iterator[ReusedDatabase]:
    reused = ReusedDatabase(postgres_server, migrated_postgres)
    yield reused
    reused.drop()


def test_rows_go_and_ids_start_again(database: ReusedDatabase) -> None:
    insert = ("INSERT INTO calls (call_id, started_at, direction, updated_at, ivr_path) "
              "VALUES ('c1', now(), 'inbound', now(), '[]') RETURNING id")
    [first_id] = run(database.url, insert)
    # A connection left open mid-transaction, holding a lock, must not stop the reset.
    dsn = database.url.replace("postgresql+asyncpg://", "postgresql://")

    async def leave_open() -> None:
        leaked = await asyncpg.connect(dsn)
        await leaked.execute("BEGIN; LOCK TABLE calls IN ACCESS EXCLUSIVE MODE")
        # Not closed: the event loop ends with it open, as a crashed test would leave it.

    asyncio.run(leave_open())
    url = database.url
    database.reset()
    assert database.url == url, "the same database, emptied"
    assert run(url, "SELECT count(*) FROM calls") == [0]
    assert run(url, insert) == [first_id]


def test_a_changed_schema_gets_a_new_copy(database: ReusedDatabase) -> None:
    url = database.url
    run(url, "ALTER TABLE calls ADD COLUMN left_by_a_test integer", "SELECT 1")
    database.reset()
    assert database.url != url
    assert run(database.url, "SELECT count(*) FROM information_schema.columns "
                             "WHERE column_name = 'left_by_a_test'") == [0]
