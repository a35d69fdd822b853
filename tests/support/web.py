"""The web application as tests use it: real repositories, a signed-in client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.clock import Clock, VirtualClock
from callcenter.features.accounts.store import AccountRepository, Role
from callcenter.web.app import WebServices, make_app
from callcenter.web.health import HealthProbe

# Cheap argon2 parameters: the tests check who may do what, not the hash's cost.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def accounts_for(sessions: async_sessionmaker[AsyncSession],
                 clock: Clock | None = None) -> AccountRepository:
    return AccountRepository(sessions, clock=clock or VirtualClock(), hasher=FAST_HASHER)


async def bearer_headers(accounts: AccountRepository, roles: Iterable[Role],
                         *, username: str = "staff", agent_id: str | None = None,
                         ) -> dict[str, str]:
    """A user with these roles and an API token: the headers that sign its requests."""
    user = await accounts.create_user(username, "a long enough password", list(roles),
                                      agent_id=agent_id)
    issued = await accounts.create_token(user.id, "tests")
    return {"Authorization": f"Bearer {issued.secret}"}


async def client_signed_as(server: TestServer, accounts: AccountRepository,
                           roles: Iterable[Role], *, agent_id: str | None = None,
                           username: str | None = None) -> TestClient:
    """A started client of ``server`` whose every request is signed by a new user with
    ``roles`` (named after the roles and the agent unless ``username`` is given)."""
    roles = tuple(roles)
    headers = await bearer_headers(accounts, roles, agent_id=agent_id,
                                   username=username or "-".join(roles) + (agent_id or ""))
    client = TestClient(server, headers=headers)
    await client.start_server()
    return client


@asynccontextmanager
async def signed_in_client(services: WebServices, roles: Iterable[Role] = (Role.ADMIN,),
                           ) -> AsyncIterator[TestClient]:
    """A started test client whose every request is signed by a user with ``roles``."""
    headers = await bearer_headers(services.accounts, roles)
    async with TestClient(TestServer(make_app(services)), headers=headers) as client:
        yield client


async def _database_up() -> bool:
    return True


def health_probe(*, ami: bool = True, agi: bool = True) -> HealthProbe:
    """A health probe that finds the database up and AMI and AGI as told."""
    return HealthProbe(ami=lambda: ami, agi=lambda: agi, database=_database_up)
