"""Users, their roles, API tokens and web sessions in and out of the database.

Passwords are hashed with argon2 (rehashed at sign-in when the parameters change); session
ids and API tokens are random secrets stored only as their SHA-256. Every method returns
frozen dataclasses, never rows. Hashing is slow on purpose, so it runs in a worker thread,
and a ``HashGate`` caps how many hashes run at once: sign-ins sent by the dozen must not take
every core from call handling.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import hashlib
import os
import re
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from callcenter.core.clock import Clock, SystemClock, from_datetime, to_datetime
from callcenter.core.identifiers import AGENT_ID_RE
from callcenter.features.accounts.models import ApiTokenRow, UserRoleRow, UserRow, WebSessionRow
from callcenter.private_files import private_folder

USERNAME_RE = re.compile(r"[A-Za-z0-9._@-]{1,64}")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # hashing megabytes would be a cheap denial of service
MAX_DISPLAY_NAME_LENGTH = 100
MAX_TOKEN_NAME_LENGTH = 100
MAX_ROW_ID = 2**63 - 1
SESSION_LIFETIME = 12 * 3600.0
TOKEN_USE_RESOLUTION = 60.0  # last_used_at moves at most once a minute: not a write per request
TOKEN_PREFIX = "cc_"  # recognisable in a script or a leaked log
SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
API_TOKEN_RE = re.compile(TOKEN_PREFIX + r"[A-Za-z0-9_-]{43}")
FIRST_ADMIN = "admin"
ADMIN_PASSWORD_FILE = "admin-password"
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
HASH_WAIT = 2.0  # seconds a hash may wait for a free slot before the caller hears "busy"
HASH_MAX_WAITING = 16  # hashes waiting beyond these are refused at once
_T = TypeVar("_T")


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
    CAMPAIGN_MANAGER = "campaign_manager"


ROLE_NAMES = ", ".join(role.value for role in Role)


class _Keep(Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP  # "leave this field as it is" in ``update_user``


class UsernameTaken(Exception):
    """Another user already has this username."""


class UserNotFound(LookupError):
    """No user has the id asked for."""


class TokenNotFound(LookupError):
    """No API token has the id asked for."""


class LastAdmin(Exception):
    """The change would leave no active admin, and nobody could manage users any more."""


class HashingBusy(Exception):
    """Every hashing slot is taken and the wait was too long; try again shortly."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"password hashing is busy; try again in {retry_after:.0f} s")
        self.retry_after = retry_after


def default_hash_slots() -> int:
    """Hashes at once: half the cores (at least one), so calls always keep a core."""
    return max(1, (os.cpu_count() or 2) // 2)


class HashGate:
    """At most ``slots`` argon2 computations at once; up to ``max_waiting`` more wait up to
    ``wait`` seconds for a slot, the rest are refused at once with ``HashingBusy``."""

    def __init__(
        self,
        slots: int | None = None,
        *,
        max_waiting: int = HASH_MAX_WAITING,
        wait: float = HASH_WAIT,
    ) -> None:
        self.slots = default_hash_slots() if slots is None else slots
        if self.slots < 1 or max_waiting < 0 or wait < 0:
            raise ValueError("HashGate: slots >= 1, max_waiting >= 0, wait >= 0")
        self._semaphore = asyncio.Semaphore(self.slots)
        self._max_waiting = max_waiting
        self._wait = wait
        self._waiting = 0

    async def run(self, work: Callable[..., _T], *args: Any) -> _T:
        """``work(*args)`` in a worker thread once a slot is free."""
        async with self._slot():
            return await asyncio.to_thread(work, *args)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if self._semaphore.locked():
            if self._waiting >= self._max_waiting:
                raise HashingBusy(max(1.0, self._wait))
            self._waiting += 1
            try:
                async with asyncio.timeout(self._wait):
                    await self._semaphore.acquire()
            except TimeoutError:
                raise HashingBusy(max(1.0, self._wait)) from None
            finally:
                self._waiting -= 1
        else:
            await self._semaphore.acquire()
        try:
            yield
        finally:
            self._semaphore.release()


@dataclasses.dataclass(frozen=True)
class User:
    id: int
    username: str
    roles: frozenset[Role]
    display_name: str | None
    agent_id: str | None
    active: bool
    created_at: float

    def has_any(self, roles: Iterable[Role]) -> bool:
        return not self.roles.isdisjoint(roles)


@dataclasses.dataclass(frozen=True)
class ApiToken:
    """What is known about a token; its secret is shown only once, at creation."""

    id: int
    user_id: int
    username: str
    name: str
    created_at: float
    last_used_at: float | None
    expires_at: float | None


@dataclasses.dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # the ``Authorization: Bearer`` value; stored nowhere


@dataclasses.dataclass(frozen=True)
class IssuedSession:
    secret: str  # the cookie value; stored nowhere
    user: User
    expires_at: float


class AccountRepository:
    """Users, API tokens and web sessions; every change is one transaction."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock | None = None,
        hasher: PasswordHasher | None = None,
        hash_gate: HashGate | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()
        self._hasher = hasher or PasswordHasher()
        self._gate = hash_gate or HashGate()
        self._unknown_user_hash: str | None = None

    # ----------------------------------------------------------------------- users

    async def count_users(self) -> int:
        async with self._sessions() as session:
            return int((await session.execute(select(func.count()).select_from(UserRow))).one()[0])

    async def create_user(
        self,
        username: str,
        password: str,
        roles: Iterable[Role | str],
        *,
        display_name: str | None = None,
        agent_id: str | None = None,
    ) -> User:
        """A new active user. Raises ``ValueError`` naming a bad field, ``UsernameTaken``."""
        username = check_username(username)
        password = check_new_password(password)
        role_set = check_roles(roles)
        display_name = check_display_name(display_name)
        agent_id = check_agent_id(agent_id)
        password_hash = await self._gate.run(self._hasher.hash, password)
        now = to_datetime(self._clock.now())
        values = {
            "username": username,
            "display_name": display_name,
            "agent_id": agent_id,
            "password_hash": password_hash,
            "active": True,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self._sessions.begin() as session:
                user_pk = (
                    await session.execute(insert(UserRow).values(values).returning(UserRow.id))
                ).scalar_one()
                await session.execute(
                    insert(UserRoleRow), [{"user_pk": user_pk, "role": r.value} for r in role_set]
                )
        except IntegrityError:
            raise UsernameTaken(f"username: {username!r} is taken") from None
        found = await self.get_user(user_pk)
        assert found is not None  # just written in a committed transaction
        return found

    async def get_user(self, user_id: int) -> User | None:
        async with self._sessions() as session:
            row = await session.scalar(_with_roles(select(UserRow)).where(UserRow.id == user_id))
            return None if row is None else _to_user(row)

    async def get_user_by_username(self, username: str) -> User | None:
        async with self._sessions() as session:
            row = await session.scalar(
                _with_roles(select(UserRow)).where(UserRow.username == username)
            )
            return None if row is None else _to_user(row)

    async def list_users(self) -> builtins.list[User]:
        """Every user, by username."""
        async with self._sessions() as session:
            rows = await session.scalars(_with_roles(select(UserRow)).order_by(UserRow.username))
            return [_to_user(row) for row in rows]

    async def update_user(
        self,
        user_id: int,
        *,
        roles: Iterable[Role | str] | None = None,
        display_name: str | _Keep | None = KEEP,
        agent_id: str | _Keep | None = KEEP,
        password: str | None = None,
        active: bool | None = None,
    ) -> User:
        """Change what is given; ``None`` clears ``display_name``/``agent_id``.

        A new password ends every web session of the user; deactivating ends their sessions
        and revokes their API tokens, all in the same transaction. Raises ``ValueError``
        naming a bad field, ``UserNotFound``, ``LastAdmin`` when no active admin would
        remain, and ``HashingBusy``.
        """
        user_pk = check_row_id("id", user_id)
        values: dict[str, Any] = {}
        if display_name is not KEEP:
            values["display_name"] = check_display_name(display_name)
        if agent_id is not KEEP:
            values["agent_id"] = check_agent_id(agent_id)
        if active is not None:
            if not isinstance(active, bool):
                raise ValueError(f"active: expected true or false, got {active!r}")
            values["active"] = active
        role_set = None if roles is None else check_roles(roles)
        if password is not None:
            values["password_hash"] = await self._gate.run(
                self._hasher.hash, check_new_password(password)
            )
        values["updated_at"] = to_datetime(self._clock.now())
        async with self._sessions.begin() as session:
            # Lock the admins first, so two admins demoting each other cannot both succeed.
            await session.execute(_active_admins().with_for_update())
            changed = await session.execute(
                update(UserRow)
                .where(UserRow.id == user_pk)
                .values(values)
                .execution_options(synchronize_session=False)
            )
            if changed.rowcount == 0:
                raise UserNotFound(f"user {user_pk}: no such user")
            if role_set is not None:
                await session.execute(delete(UserRoleRow).where(UserRoleRow.user_pk == user_pk))
                await session.execute(
                    insert(UserRoleRow), [{"user_pk": user_pk, "role": r.value} for r in role_set]
                )
            if not (await session.execute(_active_admins())).first():
                raise LastAdmin(
                    f"user {user_pk}: this change would leave no active admin; "
                    "make another user admin first"
                )  # raising rolls the transaction back
            if values.get("active") is False or password is not None:
                await session.execute(
                    delete(WebSessionRow).where(WebSessionRow.user_pk == user_pk)
                )
            if values.get("active") is False:
                await session.execute(delete(ApiTokenRow).where(ApiTokenRow.user_pk == user_pk))
        found = await self.get_user(user_pk)
        assert found is not None
        return found

    async def authenticate(self, username: str, password: str) -> User | None:
        """The active user with this username and password, else None.

        An unknown username costs the same hashing work as a wrong password, so the answer
        time tells nothing. A hash made with old parameters is replaced by a new one.
        Raises ``HashingBusy`` when no hashing slot came free in time.
        """
        if not isinstance(username, str) or not isinstance(password, str):
            return None
        async with self._sessions() as session:
            row = await session.scalar(
                _with_roles(select(UserRow)).where(UserRow.username == username)
            )
        if row is None:
            await self._gate.run(self._verify, await self._unknown_hash(), password)
            return None
        if not await self._gate.run(self._verify, row.password_hash, password):
            return None
        if not row.active:
            return None
        if self._hasher.check_needs_rehash(row.password_hash):
            new_hash = await self._gate.run(self._hasher.hash, password)
            async with self._sessions.begin() as session:
                await session.execute(
                    update(UserRow)
                    .where(UserRow.id == row.id, UserRow.password_hash == row.password_hash)
                    .values(password_hash=new_hash)
                    .execution_options(synchronize_session=False)
                )
        return _to_user(row)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _unknown_hash(self) -> str:
        if self._unknown_user_hash is None:
            self._unknown_user_hash = await self._gate.run(
                self._hasher.hash, secrets.token_urlsafe(16)
            )
        return self._unknown_user_hash

    # ----------------------------------------------------------------------- web sessions

    async def create_session(
        self, user_id: int, lifetime: float = SESSION_LIFETIME
    ) -> IssuedSession:
        """A new session for an active user; the secret goes into the cookie."""
        if not 0 < lifetime <= 366 * 86400:
            raise ValueError(f"lifetime: {lifetime!r} is not a number of seconds up to a year")
        user = await self.get_user(user_id)
        if user is None or not user.active:
            raise UserNotFound(f"user {user_id}: no such active user")
        secret = secrets.token_urlsafe(32)
        now = self._clock.now()
        async with self._sessions.begin() as session:
            await session.execute(
                insert(WebSessionRow).values(
                    user_pk=user.id,
                    session_hash=secret_hash(secret),
                    created_at=to_datetime(now),
                    expires_at=to_datetime(now + lifetime),
                )
            )
        return IssuedSession(secret=secret, user=user, expires_at=now + lifetime)

    async def user_for_session(self, secret: str) -> User | None:
        """The active user of an unexpired session, else None."""
        if not isinstance(secret, str) or not SESSION_ID_RE.fullmatch(secret):
            return None
        now = to_datetime(self._clock.now())
        query = (
            _with_roles(select(UserRow))
            .join(WebSessionRow, WebSessionRow.user_pk == UserRow.id)
            .where(
                WebSessionRow.session_hash == secret_hash(secret),
                WebSessionRow.expires_at > now,
                UserRow.active.is_(True),
            )
        )
        async with self._sessions() as session:
            row = await session.scalar(query)
            return None if row is None else _to_user(row)

    async def delete_session(self, secret: str) -> None:
        if not isinstance(secret, str) or not SESSION_ID_RE.fullmatch(secret):
            return
        async with self._sessions.begin() as session:
            await session.execute(
                delete(WebSessionRow).where(WebSessionRow.session_hash == secret_hash(secret))
            )

    async def end_sessions(self, user_id: int) -> int:
        """End every web session of a user (signing out everywhere); returns how many."""
        user_pk = check_row_id("user_id", user_id)
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(WebSessionRow).where(WebSessionRow.user_pk == user_pk)
            )
        return int(result.rowcount)

    async def token_valid(self, token_id: int) -> bool:
        """Whether the token still exists, has not expired and belongs to an active user."""
        query = (
            select(ApiTokenRow.expires_at)
            .join(UserRow, UserRow.id == ApiTokenRow.user_pk)
            .where(ApiTokenRow.id == check_row_id("id", token_id), UserRow.active.is_(True))
        )
        async with self._sessions() as session:
            found = (await session.execute(query)).first()
        if found is None:
            return False
        expires_at = from_datetime(found[0])
        return expires_at is None or expires_at > self._clock.now()

    async def delete_expired_sessions(self) -> int:
        """Forget sessions past their end; returns how many."""
        now = to_datetime(self._clock.now())
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(WebSessionRow).where(WebSessionRow.expires_at <= now)
            )
        return int(result.rowcount)

    # ----------------------------------------------------------------------- API tokens

    async def create_token(
        self, user_id: int, name: str, expires_at: float | None = None
    ) -> IssuedToken:
        """A new token for a user; its secret is in the answer and nowhere else."""
        user_pk = check_row_id("user_id", user_id)
        name = check_token_name(name)
        now = self._clock.now()
        if expires_at is not None and not expires_at > now:
            raise ValueError("expires_at: must be in the future")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self._sessions.begin() as session:
            username = await session.scalar(select(UserRow.username).where(UserRow.id == user_pk))
            if username is None:
                raise UserNotFound(f"user {user_pk}: no such user")
            token_pk = (
                await session.execute(
                    insert(ApiTokenRow)
                    .values(
                        user_pk=user_pk,
                        name=name,
                        token_hash=secret_hash(secret),
                        created_at=to_datetime(now),
                        last_used_at=None,
                        expires_at=to_datetime(expires_at),
                    )
                    .returning(ApiTokenRow.id)
                )
            ).scalar_one()
        token = ApiToken(
            id=token_pk,
            user_id=user_pk,
            username=username,
            name=name,
            created_at=_stored_time(now),
            last_used_at=None,
            expires_at=None if expires_at is None else _stored_time(expires_at),
        )
        return IssuedToken(token=token, secret=secret)

    async def user_for_token(self, secret: str) -> tuple[User, ApiToken] | None:
        """The active user of an unexpired token and the token, else None.

        Notes the use in ``last_used_at``, at most once a minute per token.
        """
        if not isinstance(secret, str) or not API_TOKEN_RE.fullmatch(secret):
            return None
        now = self._clock.now()
        query = (
            select(ApiTokenRow, UserRow)
            .join(UserRow, UserRow.id == ApiTokenRow.user_pk)
            .options(selectinload(UserRow.roles))
            .where(ApiTokenRow.token_hash == secret_hash(secret), UserRow.active.is_(True))
        )
        async with self._sessions() as session:
            found = (await session.execute(query)).first()
            if found is None:
                return None
            token_row, user_row = found
            user = _to_user(user_row)
            token = _to_token(token_row, user_row.username)
        if token.expires_at is not None and token.expires_at <= now:
            return None
        if token.last_used_at is None or now - token.last_used_at >= TOKEN_USE_RESOLUTION:
            async with self._sessions.begin() as session:
                await session.execute(
                    update(ApiTokenRow)
                    .where(ApiTokenRow.id == token.id)
                    .values(last_used_at=to_datetime(now))
                    .execution_options(synchronize_session=False)
                )
            token = dataclasses.replace(token, last_used_at=_stored_time(now))
        return user, token

    async def get_token(self, token_id: int) -> ApiToken | None:
        query = (
            select(ApiTokenRow, UserRow.username)
            .join(UserRow, UserRow.id == ApiTokenRow.user_pk)
            .where(ApiTokenRow.id == check_row_id("id", token_id))
        )
        async with self._sessions() as session:
            found = (await session.execute(query)).first()
        return None if found is None else _to_token(found[0], found[1])

    async def list_tokens(self, user_id: int | None = None) -> builtins.list[ApiToken]:
        """One user's tokens, or everyone's when ``user_id`` is None; oldest first."""
        query = select(ApiTokenRow, UserRow.username).join(
            UserRow, UserRow.id == ApiTokenRow.user_pk
        )
        if user_id is not None:
            query = query.where(ApiTokenRow.user_pk == check_row_id("user_id", user_id))
        query = query.order_by(ApiTokenRow.created_at, ApiTokenRow.id)
        async with self._sessions() as session:
            return [_to_token(row, username) for row, username in await session.execute(query)]

    async def delete_token(self, token_id: int) -> None:
        """Revoke a token: it stops working at once. Raises ``TokenNotFound``."""
        token_pk = check_row_id("id", token_id)
        async with self._sessions.begin() as session:
            result = await session.execute(delete(ApiTokenRow).where(ApiTokenRow.id == token_pk))
        if result.rowcount == 0:
            raise TokenNotFound(f"token {token_pk}: no such token")


# --------------------------------------------------------------------------- bootstrap


async def ensure_first_admin(repo: AccountRepository, data_dir: Path | str) -> str | None:
    """When there is no user yet, create ``admin`` with a generated password.

    The password is written to ``<data_dir>/admin-password`` (mode 600) and returned, so the
    command line can show it once. When users exist, nothing happens and None is returned.
    """
    if await repo.count_users() > 0:
        return None
    folder = private_folder(data_dir)
    password = secrets.token_urlsafe(12)
    # Written aside first and renamed into place only once the user exists: the file never
    # holds a password that does not work.
    descriptor, temporary = tempfile.mkstemp(prefix=".admin-password-", dir=folder)
    try:
        with os.fdopen(descriptor, "w") as file:  # mkstemp creates it with mode 600
            file.write(password + "\n")
        try:
            await repo.create_user(FIRST_ADMIN, password, [Role.ADMIN], display_name="Admin")
        except UsernameTaken:  # another process made the first admin meanwhile
            return None
        target = folder / ADMIN_PASSWORD_FILE
        os.replace(temporary, target)
        target.chmod(0o600)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return password


# --------------------------------------------------------------------------- checks


def check_username(value: object) -> str:
    if not isinstance(value, str) or not USERNAME_RE.fullmatch(value):
        raise ValueError(
            f"username: {_shown(value)} is not 1-64 characters of A-Z a-z 0-9 . _ @ -"
        )
    return value


def check_new_password(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("password: expected text")
    if len(value) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password: must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(value) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"password: must be at most {MAX_PASSWORD_LENGTH} characters")
    return value


def check_roles(values: object) -> frozenset[Role]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValueError(f"roles: expected a list of roles from {ROLE_NAMES}")
    roles: set[Role] = set()
    for value in values:
        if not isinstance(value, str):
            raise ValueError(f"roles: {_shown(value)} is not a role; use {ROLE_NAMES}")
        try:
            roles.add(Role(value))
        except ValueError:
            raise ValueError(f"roles: {_shown(value)} is not a role; use {ROLE_NAMES}") from None
    if not roles:
        raise ValueError(f"roles: give at least one of {ROLE_NAMES}")
    return frozenset(roles)


def check_display_name(value: object) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > MAX_DISPLAY_NAME_LENGTH
        or _CONTROL_CHARS.search(value)
    ):
        raise ValueError(
            f"display_name: expected 1-{MAX_DISPLAY_NAME_LENGTH} characters of text "
            "without control characters, or null"
        )
    return value


def check_agent_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not AGENT_ID_RE.fullmatch(value):
        raise ValueError(
            f"agent_id: {_shown(value)} is not an agent id (a-z first, then a-z 0-9 _ -, "
            "up to 32 characters), or null"
        )
    return value


def check_token_name(value: object) -> str:
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > MAX_TOKEN_NAME_LENGTH
        or _CONTROL_CHARS.search(value)
    ):
        raise ValueError(
            f"name: expected 1-{MAX_TOKEN_NAME_LENGTH} characters of text "
            "without control characters"
        )
    return value


def check_row_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ROW_ID:
        raise ValueError(f"{name}: {_shown(value)} is not an id (a whole number from 1)")
    return value


def secret_hash(secret: str) -> str:
    """How a session id or token is stored: it has 256 random bits, so a fast hash is enough."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _shown(value: object) -> str:
    return repr(value)[:40]


# --------------------------------------------------------------------------- rows


def _with_roles(query: Any) -> Any:
    return query.options(selectinload(UserRow.roles))


def _active_admins() -> Any:
    return (
        select(UserRow.id)
        .join(UserRoleRow, UserRoleRow.user_pk == UserRow.id)
        .where(UserRoleRow.role == Role.ADMIN.value, UserRow.active.is_(True))
    )


def _stored_time(ts: float) -> float:
    """A time as it reads back from the database (whole microseconds)."""
    value = from_datetime(to_datetime(ts))
    assert value is not None
    return value


def _to_user(row: UserRow) -> User:
    return User(
        id=row.id,
        username=row.username,
        roles=frozenset(Role(r.role) for r in row.roles),
        display_name=row.display_name,
        agent_id=row.agent_id,
        active=row.active,
        created_at=_required_time(row.created_at),
    )


def _to_token(row: ApiTokenRow, username: str) -> ApiToken:
    return ApiToken(
        id=row.id,
        user_id=row.user_pk,
        username=username,
        name=row.name,
        created_at=_required_time(row.created_at),
        last_used_at=from_datetime(row.last_used_at),
        expires_at=from_datetime(row.expires_at),
    )


def _required_time(value: datetime) -> float:
    ts = from_datetime(value)
    assert ts is not None
    return ts
