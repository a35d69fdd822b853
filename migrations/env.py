"""Alembic environment, async-aware.

Two ways in:
- ``callcenter.store.db.upgrade(url)`` passes an open connection in
  ``config.attributes["connection"]``; migrations run on it.
- ``alembic upgrade head`` on the command line: the URL comes from ``-x url=...``,
  else ``CALLCENTER_DATABASE__URL``, else the settings; we open our own async engine.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from callcenter.store.db import create_engine
from callcenter.store.schema import metadata

config = context.config
target_metadata = metadata

if config.config_file_name is not None:  # command line only: the server owns its logging
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    if url:
        return str(url)
    if os.environ.get("CALLCENTER_DATABASE__URL"):
        return os.environ["CALLCENTER_DATABASE__URL"]
    from callcenter.config import load_settings  # only when nothing more direct was given

    return load_settings().database_url


def run_migrations_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs by copying
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_with_own_engine(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_migrations_on)
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    """``alembic upgrade head --sql``: print the SQL for the URL's dialect."""
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
elif (shared := config.attributes.get("connection")) is not None:
    run_migrations_on(shared)
else:
    asyncio.run(run_migrations_with_own_engine(database_url()))
