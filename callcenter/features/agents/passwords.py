"""`callcenter agents password AGENT [--new]`: an agent's SIP password on request.

The database keeps only each password's digest, so a password can be shown only where it is
still known: the settings (``[[agents]] password``, or the one generated into
``<data_dir>/secrets.toml``), and only while it is still the agent's (its digest matches).
Otherwise ``--new`` makes a new one, shows it once, and gives the sandboxed Asterisk the new
digest (the API's ``POST /api/agents/{id}/secret`` does the same from the web).
"""

from __future__ import annotations

from dataclasses import dataclass

from callcenter.asterisk.sandbox import Sandbox, SandboxError
from callcenter.config import Settings
from callcenter.features.agents.store import AgentAccount, AgentDirectory
from callcenter.store.db import create_engine, session_factory, upgrade


@dataclass(frozen=True)
class Answer:
    exit_code: int
    text: str


async def agent_password(settings: Settings, agent_id: str, *, renew: bool) -> Answer:
    await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        directory = AgentDirectory(session_factory(engine))
        try:
            account = await directory.get(agent_id)
        except ValueError as exc:
            return Answer(2, str(exc))
        if account is None:
            return Answer(1, f"no agent {agent_id!r}")
        if renew:
            rotated = await directory.rotate_secret(agent_id)
            applied = _apply_to_sandbox(settings, await directory.list())
            return Answer(0, f"{agent_id}: new SIP password {rotated.sip_secret}\n"
                             "  (shown only now: give it to the phone)\n  " + applied)
        configured = next((a.password for a in settings.agents if a.id == agent_id), "")
        if configured and account.has_sip_secret(configured):
            return Answer(0, f"{agent_id}: SIP password {configured}")
        return Answer(1, f"{agent_id}: the password is not kept anywhere (only its digest is "
                         f"stored); make a new one with: callcenter agents password {agent_id} "
                         "--new")
    finally:
        await engine.dispose()


def _apply_to_sandbox(settings: Settings, agents: list[AgentAccount]) -> str:
    if settings.asterisk.mode != "sandbox":
        return ("Asterisk is external: its admin puts the agent's new digest into "
                "callcenter-pjsip-agents.conf and reloads res_pjsip")
    sandbox = Sandbox(settings)
    try:
        sandbox.write_config(agents, prompts=False)
        if sandbox.pid() is None:
            return "the sandboxed Asterisk reads it when it starts"
        sandbox.cli("module reload res_pjsip.so")
    except SandboxError as exc:
        return f"the sandboxed Asterisk was not updated: {exc}"
    return "the sandboxed Asterisk has the new digest already"
