"""Shared fixtures. Database: ``db_url`` is a migrated, empty database on each backend.

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

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.store import create_engine
from callcenter.store.db import upgrade
from tests.support.postgres import PostgresServer, running_postgres

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


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a database migrated to the latest schema, with no rows: a copy of one the
    migrations made once per test process (run for every test, they cost a good part of the
    unit tests' time). SQLite copies the file; PostgreSQL makes it from the template."""
    if request.param == "sqlite":
        path = tmp_path / "data" / "callcenter.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(request.getfixturevalue("migrated_sqlite"))) as source, \
                closing(sqlite3.connect(path)) as copy:
            source.backup(copy)
        yield f"sqlite+aiosqlite:///{path}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with server.fresh_database(template=request.getfixturevalue("migrated_postgres")) as url:
        yield url
