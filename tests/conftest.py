"""Shared fixtures. Database: ``db_url`` is a migrated, empty database on each backend.

The suite runs in parallel (``./test.sh``: pytest-xdist workers, each its own process): every
worker starts its own PostgreSQL on first use, its Asterisk instances take ports and RTP blocks
reserved across processes (tests/support/ports.py), and its instances are named by its pid.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

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
async def db_url(empty_db_url: str) -> AsyncIterator[str]:
    """A URL to a database migrated to the latest schema, with no rows."""
    await upgrade(empty_db_url)
    yield empty_db_url
