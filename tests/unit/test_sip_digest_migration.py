"""The migration that replaces stored SIP passwords by their digests: phones keep working
(same password, its digest stored), nothing else about the agent changes; on SQLite and on a
real PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import text

from callcenter.store import create_engine, upgrade
from tests.support.store import migrate

BEFORE = "0007"  # the revision before the digests


async def test_stored_passwords_become_their_digests_and_memberships_stay(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(migrate, db_url, "downgrade", BEFORE)
        async with engine.begin() as connection:
            for agent_id, password in (("agent1", "password-one"), ("Bob_2", "pw.two-2_x")):
                await connection.execute(text(
                    "INSERT INTO agents (id, name, sip_secret, contact, active, created_at, "
                    "updated_at) VALUES (:id, :id, :pw, NULL, true, :at, :at)"),
                    {"id": agent_id, "pw": password, "at": datetime(2026, 12, 1, tzinfo=UTC)})
            await connection.execute(text(
                "INSERT INTO agent_queue_memberships (agent_id, queue, tier) "
                "VALUES ('agent1', 'sales', 0)"))
        await upgrade(db_url)
        async with engine.connect() as connection:
            rows = dict((await connection.execute(
                text("SELECT id, sip_digest FROM agents"))).all())
            memberships = (await connection.execute(
                text("SELECT agent_id, queue FROM agent_queue_memberships"))).all()
        assert rows == {
            "agent1": hashlib.md5(b"agent1:callcenter:password-one").hexdigest(),
            "Bob_2": hashlib.md5(b"Bob_2:callcenter:pw.two-2_x").hexdigest(),
        }
        assert memberships == [("agent1", "sales")]

        # Down again: no digest can become a password, so each agent gets a new random one.
        async with engine.begin() as connection:
            await connection.run_sync(migrate, db_url, "downgrade", BEFORE)
        async with engine.connect() as connection:
            secrets = dict((await connection.execute(
                text("SELECT id, sip_secret FROM agents"))).all())
        assert set(secrets) == {"agent1", "Bob_2"}
        assert all(len(value) == 24 and value not in rows.values() for value in secrets.values())
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM agent_queue_memberships"))
            await connection.execute(text("DELETE FROM agents"))
        await upgrade(db_url)
    finally:
        await engine.dispose()
