"""Call detail records in SQLite or PostgreSQL (SQLAlchemy 2, async; Alembic migrations)."""

from callcenter.store.db import create_engine, ping, session_factory, upgrade
from callcenter.store.repositories import CallRepository

__all__ = ["CallRepository", "create_engine", "ping", "session_factory", "upgrade"]
