"""The sandboxed Asterisk 22 for real: instances side by side, the fallback dialplan, AMI."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest
from panoramisk import Manager

from callcenter.asterisk import confgen
from callcenter.asterisk.sandbox import (
    Sandbox,
    SandboxError,
    processes_in_root,
    run_asterisk_command,
)
from callcenter.config import load_settings
from tests.support.asterisk import (
    ensure_installed,
    phone_agent,
    running_asterisk,
    sandbox_settings,
    sweep_lock,
    sweep_stale_test_instances,
)
from tests.support.sipp import (
    AgentPlan,
    CallerPlan,
    SippProcess,
    agent_scenario,
    caller_scenario,
    free_port,
    wait_all,
)

needs_asterisk = pytest.mark.asterisk
SIPP_DIR = Path(__file__).parent.parent / "sipp"


@needs_asterisk
def test_two_instances_run_side_by_side_and_stop_cleanly(tmp_path: Path) -> None:
    first = sandbox_settings(tmp_path / "a")
    second = sandbox_settings(tmp_path / "b")
    with running_asterisk(first) as one, running_asterisk(second) as two:
        status_one, status_two = one.status(), two.status()
        assert status_one.running and status_two.running
        assert status_one.pid != status_two.pid
        assert status_one.ami == f"127.0.0.1:{first.asterisk.ami_port}"
        assert "Asterisk 22" in one.cli("core show version")
        assert f"127.0.0.1:{first.asterisk.sip_port}" in one.cli("pjsip show transports")
        assert f"127.0.0.1:{second.asterisk.sip_port}" in two.cli("pjsip show transports")
        one.start()  # already running: nothing happens
        assert one.status().pid == status_one.pid
        one.stop()
        assert not one.status().running
        assert two.status().running, "stopping one instance must not touch the other"
        assert two.proc_mounted(), "proc stays mounted while an instance runs"
        assert "Asterisk 22" in two.cli("core show version")
    assert not Sandbox(second).status().running
    # Test processes beside this one (xdist) start and stop instances too: /proc is unmounted
    # once none runs, which may take them a moment.
    deadline = time.monotonic() + 10
    while two.proc_mounted() != bool(processes_in_root(two.root)):
        assert time.monotonic() < deadline, "proc should be mounted exactly while one runs"
        time.sleep(0.05)


@needs_asterisk
def test_reload_applies_new_settings(tmp_path: Path) -> None:
    settings = sandbox_settings(tmp_path)
    with running_asterisk(settings) as sandbox:
        assert "agent7" not in sandbox.cli("pjsip show endpoints")
        changed = sandbox_settings(tmp_path, agents=[phone_agent("agent7", free_port())],
                                   env={"CALLCENTER_ASTERISK__INSTANCE": sandbox.instance,
                                        "CALLCENTER_ASTERISK__AMI_PORT":
                                            str(settings.asterisk.ami_port),
                                        "CALLCENTER_ASTERISK__SIP_PORT":
                                            str(settings.asterisk.sip_port)})
        Sandbox(changed).reload()
        assert "agent7" in sandbox.cli("pjsip show endpoints")


@needs_asterisk
def test_without_fastagi_a_caller_still_reaches_an_agent_through_the_fallback_queue(
        tmp_path: Path) -> None:
    agent_port = free_port()
    settings = sandbox_settings(
        tmp_path, agents=[phone_agent("agent1", agent_port, queues=("operator",))])
    # Nothing listens on settings.service.agi_port: AGI() fails at once.
    with running_asterisk(settings) as sandbox, \
            SippProcess(agent_scenario(AgentPlan(answer_after_ms=1000)), port=agent_port,
                        name="agent1") as agent, \
            SippProcess(caller_scenario(CallerPlan(hangup_after_ms=11_000)), name="caller",
                        remote=("127.0.0.1", settings.asterisk.sip_port),
                        service=settings.ivr.number) as caller:
        caller_result, agent_result = wait_all([caller, agent], timeout=60)
        log = sandbox.messages_log.read_text()

    assert caller_result.exit_code == 0, caller_result.describe()
    assert agent_result.exit_code == 0, agent_result.describe()
    assert (caller_result.successful, caller_result.failed) == (1, 0)
    assert (agent_result.successful, agent_result.failed) == (1, 0)
    assert caller_result.names() == ["answered", "local-bye"]
    assert caller_result.ended_by == "us"
    assert agent_result.names() == ["invite", "answered", "remote-bye"]
    assert agent_result.ended_by == "them"
    answered, hung_up = (e.at_ms for e in agent_result.events[1:])
    assert hung_up - answered >= 2000, "the caller talked to the agent for about 3 s"
    assert "Playing 'callcenter/sorry-fallback." in log  # the prompt exists and played
    assert "Queue(\"PJSIP/anonymous" in log and "operator" in log


@needs_asterisk
async def test_the_generated_ami_user_logs_in_with_least_rights(tmp_path: Path) -> None:
    settings = sandbox_settings(tmp_path)
    asterisk = settings.asterisk
    with running_asterisk(settings) as sandbox:
        manager = Manager(host=asterisk.host, port=asterisk.ami_port,
                          username=asterisk.ami_username, secret=asterisk.ami_secret,
                          ping_delay=3600, reconnect_timeout=3600)
        await manager.connect()
        try:
            login = await manager.authenticated_future
            assert login.success, login
            pong = await manager.send_action({"Action": "Ping"})
            assert pong.success and pong.ping == "Pong"
            channels = await manager.send_action({"Action": "CoreShowChannels"})
            assert channels[0].success
            assert channels[-1].event == "CoreShowChannelsComplete"
            assert channels[-1].listitems == "0"
            # The "command" class is not granted: no shell-like CLI access over AMI.
            denied = await manager.send_action({"Action": "Command", "Command": "core show help"})
            assert not denied.success and "permission denied" in denied.message.lower()
            # Nor the "config" class: Asterisk's files cannot be rewritten over AMI.
            rewrite = await manager.send_action({
                "Action": "UpdateConfig", "SrcFilename": "extensions.conf",
                "DstFilename": "extensions.conf", "Reload": "no", "Action-000000": "NewCat",
                "Cat-000000": "intruder"})
            assert not rewrite.success and "permission denied" in rewrite.message.lower()
            states = await manager.send_action({"Action": "DeviceStateList"}, as_list=True)
            assert states[0].success  # the service reads phone states at each connect
            # Nor "system": no module reloads over AMI (the sandbox's console does them) ...
            reload = await manager.send_action({"Action": "Reload", "Module": "app_queue.so"})
            assert not reload.success and "permission denied" in reload.message.lower()
            # ... and no Originate of an application that runs a program on the server.
            marker = sandbox.root / "tmp" / f"pwned-{sandbox.instance}"
            for application, data in (("System", f"touch /tmp/{marker.name}"),
                                      ("Exec", f"System(touch /tmp/{marker.name})"),
                                      ("AGI", f"/bin/touch,/tmp/{marker.name}"),
                                      ("NoOp", f"${{SHELL(touch /tmp/{marker.name})}}")):
                originate = await manager.send_action({
                    "Action": "Originate", "Channel": f"Local/{settings.ivr.number}@callers",
                    "Application": application, "Data": data})
                assert not originate.success, (application, originate)
                assert "forbidden" in originate.message.lower(), originate
        finally:
            manager.close()
        # The modules are not even there: a dialplan could not run System() or SHELL().
        assert "not registered" in sandbox.cli("core show application System")
        assert "No function by that name" in sandbox.cli("core show function SHELL")
        assert not marker.exists()

        intruder = Manager(host=asterisk.host, port=asterisk.ami_port,
                           username=asterisk.ami_username, secret="not-the-secret",
                           ping_delay=3600, reconnect_timeout=3600)
        await intruder.connect()
        try:
            refused = await intruder.authenticated_future
            assert not refused.success
        finally:
            intruder.close()


@needs_asterisk
async def test_a_sipp_callers_dtmf_reaches_asterisk_and_ami(tmp_path: Path) -> None:
    settings = sandbox_settings(tmp_path)
    asterisk = settings.asterisk
    with running_asterisk(settings):
        manager = Manager(host=asterisk.host, port=asterisk.ami_port,
                          username=asterisk.ami_username, secret=asterisk.ami_secret,
                          ping_delay=3600, reconnect_timeout=3600)
        digits: list[tuple[str, str]] = []
        manager.register_event(
            "DTMFEnd", lambda _manager, event: digits.append((event.channel, event.digit)))
        await manager.connect()
        try:
            assert (await manager.authenticated_future).success
            # The fallback prompt plays for about 5 s: the digits arrive while it plays.
            plan = CallerPlan(dtmf=((1000, "2"), (400, "#")), hangup_after_ms=3000)
            with SippProcess(caller_scenario(plan), name="caller", service=settings.ivr.number,
                             remote=("127.0.0.1", asterisk.sip_port)) as caller:
                result = await asyncio.to_thread(caller.wait, 30)
        finally:
            manager.close()
    assert result.exit_code == 0, result.describe()
    assert result.names() == ["answered", "dtmf 2", "dtmf #", "local-bye"]
    assert [digit for _, digit in digits] == ["2", "#"]
    assert all(channel.startswith("PJSIP/anonymous-") for channel, _ in digits)


def test_the_static_scenarios_are_the_builders_defaults() -> None:
    assert (SIPP_DIR / "caller.xml").read_text() == caller_scenario()
    assert (SIPP_DIR / "agent.xml").read_text() == agent_scenario()


def test_an_external_asterisk_is_never_installed_started_or_stopped_by_us(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(env={"CALLCENTER_DATA_DIR": str(tmp_path),
                                  "CALLCENTER_ASTERISK__MODE": "external",
                                  "CALLCENTER_ASTERISK__AMI_SECRET": "their-secret"})
    sandbox = Sandbox(settings)
    for action in (sandbox.install, sandbox.write_config, sandbox.start, sandbox.stop):
        with pytest.raises(SandboxError, match=r"asterisk\.mode is 'external'"):
            action()
    assert run_asterisk_command(settings, "start", None) == 1
    assert "callcenter asterisk config DIR" in capsys.readouterr().err
    out = tmp_path / "for-the-admin"
    out.mkdir()
    assert run_asterisk_command(settings, "config", str(out)) == 0
    assert "callcenter-extensions.conf" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(confgen.include_files(settings))


@needs_asterisk
def test_the_asterisk_command_reports_and_drives_an_instance(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = sandbox_settings(tmp_path)
    with running_asterisk(settings):
        assert run_asterisk_command(settings, "status", None) == 0
        status = capsys.readouterr().out
        assert "running (pid" in status and f":{settings.asterisk.sip_port} (UDP)" in status
        assert run_asterisk_command(settings, "cli", "dialplan show callers") == 0
        assert f"'{settings.ivr.number}' =>" in capsys.readouterr().out
        assert run_asterisk_command(settings, "cli", None) == 2
        assert run_asterisk_command(settings, "stop", None) == 0
        assert "stopped" in capsys.readouterr().out
        assert not Sandbox(settings).status().running


@needs_asterisk
def test_instances_left_by_a_killed_test_run_are_swept(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid now names a test run that no longer exists
    settings = sandbox_settings(
        tmp_path, env={"CALLCENTER_ASTERISK__INSTANCE": f"test-{gone.pid}-1"})
    orphan = ensure_installed(settings)
    with sweep_lock(orphan.root):  # test processes beside this one sweep it only once whole
        orphan.write_config()
        orphan.start()
    try:
        swept = sweep_stale_test_instances(orphan.root)
        # A test process beside this one (xdist) may have swept it first, with the same code.
        assert orphan.instance in swept or not orphan.instance_dir.exists()
        assert Sandbox(settings).pid() is None
        assert not orphan.instance_dir.exists()
    finally:
        orphan.stop()  # reaps the stopped process (this test started it)
