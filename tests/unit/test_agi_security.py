"""Only Asterisk may open a FastAGI session: an allowed peer address and the URL's secret.

FastAGI has no login of its own, and a session chooses its channel, caller and script: a
forged ``agent`` session would log an agent out. These tests play a stranger's side.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from test_agi_server import FakeAsterisk, StartServer, start_server  # noqa: F401 (fixture)

from callcenter.asterisk import confgen
from callcenter.asterisk.agi_server import AgiGate, AgiSession
from callcenter.config import ConfigError, load_settings

SECRET = "Sesame0123456789xyz"


async def refused(port: int, path: str) -> bool:
    """Play Asterisk asking for ``path``; True when the server closes without a word."""
    try:
        caller = await FakeAsterisk.call(port, path)
        return await caller.closed_by_server()
    except ConnectionError:  # closed before our environment was even written
        return True


async def test_a_session_without_the_secret_is_refused_before_any_script_runs(
        start_server: StartServer, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    ran: list[str] = []

    async def agent(session: AgiSession) -> None:
        ran.append(session.env.path)

    server = await start_server({"agent": agent}, secret=SECRET)
    with caplog.at_level(logging.WARNING, "callcenter.asterisk.agi_server"):
        assert await refused(server.port, "agent")
        assert await refused(server.port, "Sesame0123456789xyZ/agent")  # one letter off
        assert await refused(server.port, f"{SECRET}x/agent")
    assert ran == []
    # A flood of forgeries is one warning, and the secret never reaches the log.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "wrong or missing secret" in warnings[0]
    assert SECRET not in caplog.text


async def test_the_secret_is_taken_off_the_path_before_routing(
        start_server: StartServer, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    seen: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()

    async def agent(session: AgiSession) -> None:
        seen.set_result((session.env.path, session.env.request))

    server = await start_server({"agent": agent}, secret=SECRET)
    with caplog.at_level(logging.DEBUG, "callcenter.asterisk.agi_server"):
        await FakeAsterisk.call(server.port, f"{SECRET}/agent")
        path, request = await asyncio.wait_for(seen, 5)
    assert path == "agent"
    assert request == f"agi://127.0.0.1:{server.port}/<secret>/agent"
    assert SECRET not in caplog.text


async def test_a_connection_from_a_peer_not_allowed_is_closed_at_once(
        start_server: StartServer, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    ran: list[str] = []

    async def agent(session: AgiSession) -> None:
        ran.append(session.env.path)

    # Asterisk is on 10.0.0.5: this test's loopback connection is a stranger's.
    server = await start_server({"agent": agent}, allowed_peers=("10.0.0.5",), secret=SECRET)
    with caplog.at_level(logging.WARNING, "callcenter.asterisk.agi_server"):
        assert await refused(server.port, f"{SECRET}/agent")  # even with the secret
    assert ran == []
    assert "not an allowed peer" in caplog.text


def test_peers_are_matched_by_address_or_network_and_ipv4_through_an_ipv6_socket() -> None:
    gate = AgiGate(["10.0.0.5", "192.168.7.0/24"])
    assert gate.peer_allowed(("10.0.0.5", 40000))
    assert gate.peer_allowed(("192.168.7.200", 40000))
    assert gate.peer_allowed(("::ffff:10.0.0.5", 40000, 0, 0))  # a socket bound to "::"
    assert not gate.peer_allowed(("10.0.0.6", 40000))
    assert not gate.peer_allowed(("127.0.0.1", 40000))
    assert not gate.peer_allowed(None)  # not an IP socket
    loopback_only = AgiGate()
    assert loopback_only.peer_allowed(("127.0.0.1", 1)) and loopback_only.peer_allowed(("::1", 1))
    assert not loopback_only.peer_allowed(("10.0.0.5", 1))


def test_refusals_are_logged_once_a_minute_with_the_count_in_between(
        caplog: pytest.LogCaptureFixture) -> None:
    gate = AgiGate()
    with caplog.at_level(logging.WARNING, "callcenter.asterisk.agi_server"):
        gate.refused("a", now=0.0)
        gate.refused("b", now=10.0)
        gate.refused("c", now=59.0)
        gate.refused("d", now=61.0)
    assert [r.getMessage() for r in caplog.records] == [
        "FastAGI: refused a", "FastAGI: refused d (2 more refused since the last warning)"]


# --------------------------------------------------------------------------- settings


def settings_with(tmp_path: Path, **service: str):  # type: ignore[no-untyped-def]
    env = {"CALLCENTER_DATA_DIR": str(tmp_path)}
    env.update({f"CALLCENTER_SERVICE__{key.upper()}": value for key, value in service.items()})
    return load_settings(env=env)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.2"])
def test_fastagi_off_loopback_needs_the_list_of_asterisks_addresses(
        tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError, match=r"service\.agi_host: .*service\.agi_allowed_peers"):
        settings_with(tmp_path, agi_host=host)
    allowed = settings_with(tmp_path, agi_host=host, agi_allowed_peers="10.0.0.5,10.0.1.0/24")
    assert allowed.service.agi_allowed_peers == ("10.0.0.5", "10.0.1.0/24")


def test_a_peer_that_is_no_address_and_a_weak_secret_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agi_allowed_peers\[1\]: 'asterisk' is not an IP"):
        settings_with(tmp_path, agi_host="0.0.0.0", agi_allowed_peers="10.0.0.5,asterisk")
    with pytest.raises(ConfigError, match=r"service\.agi_secret: use 16-128 letters"):
        settings_with(tmp_path, agi_secret="short")
    with pytest.raises(ConfigError, match=r"service\.agi_secret"):
        settings_with(tmp_path, agi_secret="has,a,comma,0123456789")


def test_the_agi_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = settings_with(tmp_path).service.agi_secret
    assert len(first) >= 16 and first.isalnum()
    assert settings_with(tmp_path).service.agi_secret == first
    assert f'agi_secret = "{first}"' in (tmp_path / "secrets.toml").read_text()


def test_every_agi_url_of_the_dialplan_carries_the_secret(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, agi_secret=SECRET,
                             agi_port="14573")
    dialplan = confgen.extensions(settings)
    urls = [part.split(")")[0].split(",")[0] for part in dialplan.split("AGI(")[1:]]
    assert len(urls) >= 5  # ivr, the agents' feature codes, callbacks, transfers
    assert all(url.startswith(f"agi://127.0.0.1:14573/{SECRET}/") for url in urls), urls
    assert confgen.agi_url(settings) == f"agi://127.0.0.1:14573/{SECRET}"


# --------------------------------------------------------------------------- Asterisk's rights


def test_the_ami_user_gets_no_right_that_runs_commands_on_the_server(tmp_path: Path) -> None:
    user = dict(line.split(" = ", 1) for line in confgen.manager_user(settings_with(tmp_path))
                .splitlines() if " = " in line)
    write = set(user["write"].split(","))
    # system: Originate of System()/Exec()/AGI(/bin/sh) and module reloads; config:
    # UpdateConfig then a reload writes any dialplan; command: the Asterisk CLI.
    assert not write & {"system", "config", "command", "all"}
    assert write == {"call", "agent", "originate", "reporting"}


def test_modules_that_run_programs_are_never_loaded(tmp_path: Path) -> None:
    noload = confgen.modules_noload(settings_with(tmp_path))
    for module in ("app_system.so", "func_shell.so", "app_externalivr.so", "app_mp3.so"):
        assert f"\nnoload => {module}\n" in f"\n{noload}"
    assert "[" not in noload  # included inside modules.conf's [modules]
    static = Path(confgen.__file__).resolve().parents[2] / "asterisk-conf" / "modules.conf"
    modules = static.read_text().split("[modules]\n", 1)[1]
    assert '#include "callcenter-modules.conf"' in modules
    assert "callcenter-modules.conf" in confgen.include_files(settings_with(tmp_path))
