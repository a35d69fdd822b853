"""An agent's phone still authenticates with its password when the database and Asterisk's
files hold only the password's digest (PJSIP ``password_digest = MD5:...``, realm
``callcenter``), on the real Asterisk 22 with a real SIPp softphone that REGISTERs.

The database's agents, written as the service writes them (``Sandbox.write_config`` with the
directory's accounts), then ``module reload res_pjsip.so``: the same path as a new secret
made through the API.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from callcenter.asterisk.confgen import SIP_REALM
from callcenter.asterisk.sandbox import Sandbox
from callcenter.config import Settings
from callcenter.features.agents.store import AgentDirectory
from callcenter.store import create_engine, session_factory, upgrade
from tests.support.asterisk import running_asterisk, sandbox_settings
from tests.support.sipp import RegisteringAgentPlan, SippResult, registering_agent_phone

pytestmark = pytest.mark.asterisk

PASSWORD = "known.Password-7"


def register(settings: Settings, user: str, password: str, *, refused: bool) -> SippResult:
    """One REGISTER (answering the digest challenge) and, when accepted, an unregister."""
    plan = RegisteringAgentPlan(user, password, ("127.0.0.1", settings.asterisk.sip_port),
                                calls=0, expect_refused=refused, wait_for_calls_ms=0)
    with registering_agent_phone(plan, timeout_s=30) as phone:
        return phone.wait(45)


async def apply(sandbox: Sandbox, directory: AgentDirectory) -> None:
    """What the service does after the directory changed: write the files, reload PJSIP."""
    sandbox.write_config(await directory.list(), prompts=False)
    sandbox.cli("module reload res_pjsip.so")


async def test_a_phone_registers_with_its_password_while_only_the_digest_is_stored(
    tmp_path: Path,
) -> None:
    settings = sandbox_settings(tmp_path / "data", agents=[
        {"id": "agent7", "name": "Ana", "queues": ["operator"], "password": PASSWORD}])
    url = f"sqlite+aiosqlite:///{tmp_path / 'agents.db'}"
    await upgrade(url)
    engine = create_engine(url)
    try:
        directory = AgentDirectory(session_factory(engine))
        seeded = await directory.seed(settings.agents)
        assert [a.sip_secret for a in seeded] == [PASSWORD]  # shown once, at the seed
        assert PASSWORD.encode() not in (tmp_path / "agents.db").read_bytes()
        with running_asterisk(settings) as sandbox:
            await apply(sandbox, directory)
            written = (sandbox.etc_dir / "callcenter-pjsip-agents.conf").read_text()
            assert PASSWORD not in written and "password_digest = MD5:" in written
            shown = sandbox.cli("pjsip show auth agent7-auth")
            assert re.search(rf"^\s*realm\s*:\s*{SIP_REALM}\s*$", shown, re.M), shown
            assert re.search(r"^\s*password\s*:\s*$", shown, re.M), shown  # none in clear
            assert PASSWORD not in shown

            accepted = await asyncio.to_thread(register, settings, "agent7", PASSWORD,
                                               refused=False)
            assert accepted.names() == ["registered", "unregistered"], accepted.describe()
            wrong = await asyncio.to_thread(register, settings, "agent7", "wrong.Password-7",
                                            refused=True)
            assert wrong.names()[0].startswith("register-refused"), wrong.describe()

            # A new secret (what POST /api/agents/{id}/secret does): the old one stops working.
            rotated = await directory.rotate_secret("agent7")
            assert rotated.sip_secret is not None
            await apply(sandbox, directory)
            old = await asyncio.to_thread(register, settings, "agent7", PASSWORD, refused=True)
            assert old.names()[0].startswith("register-refused"), old.describe()
            new = await asyncio.to_thread(register, settings, "agent7", rotated.sip_secret,
                                          refused=False)
            assert new.names() == ["registered", "unregistered"], new.describe()
    finally:
        await engine.dispose()
