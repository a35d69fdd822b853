"""What the store tests share: counting rows, listing tables, running one migration step."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.store.db import alembic_config
from callcenter.store.models import Base


async def count_rows(engine: AsyncEngine, row_type: type[Base]) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(row_type))).scalar_one()


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def migrate(connection: Connection, url: str, direction: str, revision: str) -> None:
    """``alembic <direction> <revision>`` on this connection (for ``run_sync``)."""
    config = alembic_config(url)
    config.attributes["connection"] = connection
    getattr(command, direction)(config, revision)
