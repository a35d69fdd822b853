"""Engines, the session factory, migrations and the health check.

Supported URLs: ``sqlite+aiosqlite:///path/to/file.db`` and
``postgresql+asyncpg://user:password@host:port/database``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from callcenter.private_files import private_file, tighten

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = REPO_ROOT / "migrations"
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite files get WAL, enforced foreign keys and a busy timeout."""
    drivername = _check_url(url)
    if drivername == "sqlite+aiosqlite":
        ensure_sqlite_folder(url)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The one session factory; objects stay readable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def upgrade(url: str) -> None:
    """Run the Alembic migrations up to head on the database at ``url``."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_on, url)
    finally:
        await engine.dispose()


async def ping(engine: AsyncEngine, timeout: float = 2.0) -> bool:
    """True when the database answers ``SELECT 1`` within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure means "not healthy"; the caller only needs a yes or no
        return False
    return True


def ensure_sqlite_folder(url: str) -> None:
    """Create the folder (mode 700) and the file (mode 600) of a SQLite database before
    SQLite does, which would make the file 644: it holds password hashes and the agents'
    SIP credentials. SQLite gives its -wal and -shm files the database file's mode."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database).expanduser()
    private_file(path)
    for companion in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        tighten(companion)


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for our migrations, without alembic.ini's logging setup."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.attributes["url"] = url
    return config


def _upgrade_on(connection: Connection, url: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection  # migrations/env.py uses it when present
    command.upgrade(config, "head")


def _check_url(url: str) -> str:
    try:
        drivername = make_url(url).drivername
    except Exception as exc:  # sqlalchemy raises ArgumentError and others for garbage
        # The URL may hold a password: name the problem, never echo the value.
        raise ValueError(f"database url is not a valid SQLAlchemy URL: {exc}") from None
    if drivername not in SUPPORTED_DRIVERS:
        raise ValueError(
            f"database url: driver {drivername!r} is not supported "
            f"(use {' or '.join(d + '://' for d in SUPPORTED_DRIVERS)})"
        )
    return drivername


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # readers don't block the CDR writer
        cursor.execute("PRAGMA foreign_keys=ON")  # SQLite ignores ON DELETE CASCADE otherwise
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()
