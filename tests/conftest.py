"""Shared fixtures. Database: ``db_url`` is a migrated, empty database on each backend,
``engine`` and ``sessions`` are on it; ``sqlite_db_url`` and ``sqlite_sessions`` are the same
on SQLite only, for a test whose subject is not the database; ``floor`` is the agent floor
(tests/support/agent_floor.py) on ``sessions``. Shared helpers: tests/support/store.py (rows,
tables, one migration step), tests/support/web.py (repositories, signed-in clients, a health
probe).

The suite runs in parallel (``./test.sh``: pytest-xdist workers, each its own process): every
worker starts its own PostgreSQL on first use, its Asterisk instances take ports and RTP blocks
reserved across processes (tests/support/ports.py), and its instances are named by its pid.
A test takes every port it needs from ``free_port()``. Tests sharing something made once per
module (an Asterisk instance, say) carry one ``pytest.mark.xdist_group("<name>")`` so that
one worker runs them all (``--dist loadgroup``); any other test may run on any worker.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.core.clock import VirtualClock
from callcenter.store import create_engine, session_factory
from callcenter.store.db import upgrade
from tests.support.postgres import PostgresServer, ReusedDatabase, running_postgres

# Property tests check what the code does, not how fast it does it on a machine shared with
# several test workers and Asterisk instances: no deadline, no health check on slowness.
settings.register_profile("callcenter", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("callcenter")

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole run (skipped, or failed when CI=true)."""
    with running_postgres() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a database that exists but has no tables yet."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'callcenter.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with server.fresh_database() as url:
        yield url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on ``db_url`` (each backend), disposed after the test."""
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine`` (each backend): what every repository takes."""
    return session_factory(engine)


@pytest.fixture
def sqlite_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """``db_url`` on SQLite only: for a test whose subject is not the database (a web route,
    a service) and that need not run twice."""
    return _copy_of_migrated_sqlite(request, tmp_path)


@pytest.fixture
async def sqlite_sessions(sqlite_db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on ``sqlite_db_url``; the engine is disposed after the test."""
    engine = create_engine(sqlite_db_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def floor(sessions: async_sessionmaker[AsyncSession]) -> Any:
    """The agent floor (tests/support/agent_floor.py ``Floor``) on each backend, its clock at
    ``FLOOR_T0``."""
    # Imported here: the floor brings the services, which most tests do not need.
    from tests.support.agent_floor import FLOOR_T0, build_floor

    return await build_floor(sessions, VirtualClock(FLOOR_T0))


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database file migrated to the latest schema once per test process."""
    path = tmp_path_factory.mktemp("migrated") / "callcenter.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def migrated_postgres(postgres_server: PostgresServer) -> str:
    """The name of a PostgreSQL database migrated to the latest schema once per test process,
    the template of each test's database."""
    name = f"migrated_{uuid.uuid4().hex}"
    asyncio.run(upgrade(postgres_server.create_database(name)))
    return name


@pytest.fixture(scope="session")
def reused_postgres(postgres_server: PostgresServer,
                    migrated_postgres: str) -> Iterator[ReusedDatabase]:
    """The migrated PostgreSQL database of this test process, emptied after each test."""
    database = ReusedDatabase(postgres_server, migrated_postgres)
    yield database
    database.drop()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a database migrated to the latest schema, with no rows: a copy of one the
    migrations made once per test process (run for every test, they cost a good part of the
    unit tests' time). SQLite copies the file; PostgreSQL empties one copy of the template
    after each test (``ReusedDatabase``)."""
    if request.param == "sqlite":
        yield _copy_of_migrated_sqlite(request, tmp_path)
        return
    database: ReusedDatabase = request.getfixturevalue("reused_postgres")
    yield database.url
    database.reset()


def _copy_of_migrated_sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    path = tmp_path / "data" / "callcenter.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(request.getfixturevalue("migrated_sqlite"))) as source, \
            closing(sqlite3.connect(path)) as copy:
        source.backup(copy)
    return f"sqlite+aiosqlite:///{path}"
