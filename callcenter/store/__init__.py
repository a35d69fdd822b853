"""The database: engine, sessions, migrations (SQLAlchemy 2, async; Alembic).

Each feature keeps its own tables and repository in its folder (``callcenter/features``).
"""

from callcenter.store.db import create_engine, ping, session_factory, upgrade

__all__ = ["create_engine", "ping", "session_factory", "upgrade"]
