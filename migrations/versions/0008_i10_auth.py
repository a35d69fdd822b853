"""Agents' SIP passwords are no longer stored, only their PJSIP digest credentials.

``agents.sip_secret`` (the password in clear) becomes ``agents.sip_digest``:
MD5("<agent id>:callcenter:<password>") in hex, which is what PJSIP's auth section needs
(``password_digest = MD5:<digest>``, realm ``callcenter``). Phones keep their passwords.

Downgrading cannot turn a digest back into a password: every agent gets a new random one,
which nobody knows; set each phone's anew through the API (POST /api/agents/{id}/secret).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIP_REALM = "callcenter"  # as callcenter.asterisk.confgen.SIP_REALM, frozen at this revision

agents = sa.table("agents", sa.column("id", sa.String()), sa.column("sip_digest", sa.String()))


def _digest(agent_id: str, password: str) -> str:
    return hashlib.md5(f"{agent_id}:{SIP_REALM}:{password}".encode(),
                       usedforsecurity=False).hexdigest()


def upgrade() -> None:
    # A rename keeps the table: on SQLite, batch mode would copy and drop it, and dropping
    # `agents` with foreign keys on deletes every membership and skill through their cascade.
    op.execute("ALTER TABLE agents RENAME COLUMN sip_secret TO sip_digest")
    connection = op.get_bind()
    for agent_id, password in connection.execute(sa.select(agents.c.id, agents.c.sip_digest)).all():
        connection.execute(agents.update().where(agents.c.id == agent_id)
                           .values(sip_digest=_digest(agent_id, password)))


def downgrade() -> None:
    connection = op.get_bind()
    for (agent_id,) in connection.execute(sa.select(agents.c.id)).all():
        connection.execute(agents.update().where(agents.c.id == agent_id)
                           .values(sip_digest=secrets.token_urlsafe(18)))
    op.execute("ALTER TABLE agents RENAME COLUMN sip_digest TO sip_secret")
