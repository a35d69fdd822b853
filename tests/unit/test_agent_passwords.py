"""Agents' SIP passwords are printed when they are made (the first start) and on request
only: the start banner, and `callcenter agents password AGENT [--new]`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callcenter.cli import main, softphone_help
from callcenter.config import Settings, load_settings
from callcenter.features.agents.passwords import Answer, agent_password
from callcenter.features.agents.store import AgentDirectory
from callcenter.store import create_engine, session_factory, upgrade


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(env={"CALLCENTER_DATA_DIR": str(tmp_path / "data"),
                              "CALLCENTER_ASTERISK__MODE": "external",
                              "CALLCENTER_ASTERISK__AMI_SECRET": "ami-secret-1"})


async def seeded(settings: Settings) -> None:
    await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        await AgentDirectory(session_factory(engine)).seed(settings.agents)
    finally:
        await engine.dispose()


def test_the_banner_shows_only_the_passwords_just_made(settings: Settings) -> None:
    first = softphone_help(settings, new_passwords={a.id: a.password for a in settings.agents})
    for agent in settings.agents:
        assert agent.password in first
    later = softphone_help(settings, new_passwords={})
    for agent in settings.agents:
        assert agent.password not in later
        assert f"{agent.id:<8} password on request (below)" in later
    assert "callcenter agents password AGENT" in later


async def test_a_password_still_in_use_is_shown_on_request(settings: Settings) -> None:
    await seeded(settings)
    answer = await agent_password(settings, "agent1", renew=False)
    assert (answer.exit_code, answer.text) == (0, f"agent1: SIP password "
                                                  f"{settings.agents[0].password}")


async def test_a_new_password_is_shown_once_and_the_old_one_no_longer(
    settings: Settings,
) -> None:
    await seeded(settings)
    renewed = await agent_password(settings, "agent1", renew=True)
    assert renewed.exit_code == 0
    new = renewed.text.split("new SIP password ")[1].split()[0]
    assert new != settings.agents[0].password and len(new) == 24
    assert "Asterisk is external" in renewed.text
    again = await agent_password(settings, "agent1", renew=False)
    assert again.exit_code == 1
    assert "not kept anywhere" in again.text and new not in again.text
    assert settings.agents[0].password not in again.text


async def test_an_unknown_or_malformed_agent_is_said_so(settings: Settings) -> None:
    await seeded(settings)
    assert await agent_password(settings, "ghost", renew=False) == Answer(1, "no agent 'ghost'")
    assert (await agent_password(settings, "no way", renew=False)).exit_code == 2


def test_the_command_line_prints_it(settings: Settings, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(seeded(settings))
    monkeypatch.setenv("CALLCENTER_DATA_DIR", settings.data_dir)
    monkeypatch.setenv("CALLCENTER_ASTERISK__MODE", "external")
    monkeypatch.setenv("CALLCENTER_ASTERISK__AMI_SECRET", "ami-secret-1")
    assert main(["agents", "password", "agent2"]) == 0
    assert capsys.readouterr().out == f"agent2: SIP password {settings.agents[1].password}\n"
