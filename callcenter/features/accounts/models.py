"""Database tables of accounts: ``users`` with their ``user_roles``, ``api_tokens`` and
``web_sessions``.

Secrets are never stored: tokens and session ids only as their SHA-256, passwords only as
argon2 hashes. ``store.py`` beside this module converts rows to dataclasses, so nothing
outside this folder sees these classes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.store.models import Base, RowId, UtcDateTime


class UserRow(Base):
    """Someone who may sign in to the web pages or the API."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    username: Mapped[str] = mapped_column(String, unique=True)
    display_name: Mapped[str | None] = mapped_column(String)
    agent_id: Mapped[str | None] = mapped_column(String)  # the agent this user is, if any
    password_hash: Mapped[str] = mapped_column(String)  # argon2, with its parameters
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    roles: Mapped[list[UserRoleRow]] = relationship(
        back_populates="user",
        order_by=lambda: UserRoleRow.role,
        cascade="all, delete-orphan",
        passive_deletes=True,  # the database's ON DELETE CASCADE does the work
        lazy="raise",  # async sessions cannot lazy-load: ask for roles explicitly
    )


class UserRoleRow(Base):
    """One role of one user (an ``accounts.Role`` value)."""

    __tablename__ = "user_roles"

    user_pk: Mapped[int] = mapped_column(
        RowId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String, primary_key=True)

    user: Mapped[UserRow] = relationship(back_populates="roles", lazy="raise")


class ApiTokenRow(Base):
    """A bearer token for scripts; revoking it deletes the row."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    user_pk: Mapped[int] = mapped_column(
        RowId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String)
    token_hash: Mapped[str] = mapped_column(String, unique=True)  # SHA-256 hex of the token
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WebSessionRow(Base):
    """A signed-in browser; logging out deletes the row."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    user_pk: Mapped[int] = mapped_column(
        RowId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    session_hash: Mapped[str] = mapped_column(String, unique=True)  # SHA-256 hex of the id
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)  # for the purge
