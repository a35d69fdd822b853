"""A real sandboxed Asterisk for tests: settings on free ports and a started instance.

    settings = sandbox_settings(tmp_path, agents=[phone_agent("agent1", agent_port)])
    with running_asterisk(settings) as sandbox:
        ...  # SIP on settings.asterisk.sip_port, AMI on settings.asterisk.ami_port

Every test instance has a unique name (``test-<pid>-<n>``, the pid of the test process: each
xdist worker has its own), its own ports and RTP block (reserved across the test processes
running at once, see tests/support/ports.py) and data folder, and shares the one installed
sandbox root (``$CALLCENTER_ASTERISK__SANDBOX_ROOT``, by default the
default data folder's ``asterisk-root``), which is installed on first use. Without root or
without a way to install it, tests skip, except under CI=true where they fail.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from callcenter.asterisk.sandbox import Sandbox, SandboxError
from callcenter.config import Settings, default_data_dir, load_settings
from tests.support.ports import RTP_BLOCK, free_port, rtp_block
from tests.support.real_parts import unavailable

_instance_numbers = itertools.count(1)

DEFAULT_QUEUES: tuple[Mapping[str, Any], ...] = (
    {"name": "sales"}, {"name": "support"}, {"name": "operator"},
)



def shared_sandbox_root() -> Path:
    configured = os.environ.get("CALLCENTER_ASTERISK__SANDBOX_ROOT")
    return Path(configured) if configured else default_data_dir() / "asterisk-root"


def phone_agent(agent_id: str, port: int, *, queues: Sequence[str] = ("operator",),
                name: str | None = None, **settings: Any) -> dict[str, Any]:
    """An [[agents]] table whose phone is a SIPp process listening on 127.0.0.1:port."""
    return {"id": agent_id, "name": name or agent_id.capitalize(), "queues": list(queues),
            "contact": f"sip:{agent_id}@127.0.0.1:{port}", **settings}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def _toml_tables(key: str, tables: Sequence[Mapping[str, Any]]) -> str:
    """An array of tables; empty arrays are written inline (they must precede any table)."""
    if not tables:
        return f"{key} = []\n"
    return "".join(f"[[{key}]]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in t.items())
                   + "\n" for t in tables)


def sandbox_settings(data_dir: Path, *, agents: Sequence[Mapping[str, Any]] = (),
                     queues: Sequence[Mapping[str, Any]] = DEFAULT_QUEUES,
                     env: Mapping[str, str] | None = None) -> Settings:
    """Settings for one test instance: free ports, a unique instance, the shared root.

    ``agents`` and ``queues`` are [[agents]] / [[queues]] tables (see ``phone_agent``);
    ``env`` adds or overrides CALLCENTER_* variables (e.g. the FastAGI port).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    settings_file = data_dir / "settings.toml"
    parts = sorted([_toml_tables("queues", queues), _toml_tables("agents", agents)],
                   key=lambda text: text.startswith("[["))
    settings_file.write_text("".join(parts))
    number = next(_instance_numbers)
    rtp_start = rtp_block(number)  # held by this process alone (see tests/support/ports.py)
    variables = {
        "CALLCENTER_DATA_DIR": str(data_dir),
        "CALLCENTER_ASTERISK__INSTANCE": f"test-{os.getpid()}-{number}",
        "CALLCENTER_ASTERISK__SANDBOX_ROOT": str(shared_sandbox_root()),
        "CALLCENTER_ASTERISK__AMI_PORT": str(free_port()),
        "CALLCENTER_ASTERISK__SIP_PORT": str(free_port()),
        "CALLCENTER_ASTERISK__RTP_START": str(rtp_start),
        "CALLCENTER_ASTERISK__RTP_END": str(rtp_start + RTP_BLOCK - 1),
        "CALLCENTER_SERVICE__AGI_PORT": str(free_port()),
        "CALLCENTER_SERVICE__HTTP_PORT": str(free_port()),
        **(env or {}),
    }
    return load_settings(settings_file, env=variables)


def ensure_installed(settings: Settings) -> Sandbox:
    """The instance's Sandbox, with the shared root installed (or the test skipped)."""
    sandbox = Sandbox(settings)
    if sandbox.installed:
        return sandbox
    if os.geteuid() != 0:
        unavailable("the sandboxed Asterisk needs root (debootstrap, chroot, mount)")
    # Test processes running at once (xdist workers) install one at a time: the first
    # installs, the others find it installed.
    sandbox.root.parent.mkdir(parents=True, exist_ok=True)
    with open(sandbox.root.with_name(sandbox.root.name + ".install-lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            sandbox.install()  # nothing to do if another process installed it meanwhile
        except (SandboxError, OSError) as exc:
            unavailable(f"cannot install the sandboxed Asterisk: {exc}")
    return sandbox


@contextmanager
def sweep_lock(root: Path) -> Iterator[None]:
    """Held while stale instances are swept: test processes running side by side (xdist
    workers) sweep one at a time. A test making an instance look stale holds it until the
    instance is whole, so nobody sweeps it half made."""
    folder = root / "srv" / "callcenter"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".sweep.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def sweep_stale_test_instances(root: Path) -> list[str]:
    """Stop and delete the instances of test runs that died without cleaning up (killed
    pytest processes); return their names. A live process's instances are left alone (each
    xdist worker is a process of its own, named in its instances)."""
    with sweep_lock(root):
        return _sweep(root)


def _sweep(root: Path) -> list[str]:
    swept = []
    folder = root / "srv" / "callcenter"
    for instance in sorted(folder.glob("test-*-*")) if folder.is_dir() else []:
        owner = instance.name.split("-")[1]
        if not owner.isdigit() or Path(f"/proc/{owner}").exists():
            continue
        env = {"CALLCENTER_DATA_DIR": str(instance / "stale-data"),
               "CALLCENTER_ASTERISK__SANDBOX_ROOT": str(root),
               "CALLCENTER_ASTERISK__INSTANCE": instance.name,
               "CALLCENTER_ASTERISK__AMI_SECRET": "unused-here"}
        sandbox = Sandbox(load_settings(env=env))
        sandbox.stop()  # by the pid in the instance's pid file, if it still runs
        sandbox.remove_instance()
        swept.append(instance.name)
    return swept


@contextmanager
def running_asterisk(settings: Settings, *, keep_instance: bool = False) -> Iterator[Sandbox]:
    """Install if needed, write the configuration, start; stop (by pid) when done.

    The instance's folder is removed afterwards unless the block failed (its logs help) or
    ``keep_instance`` is set.
    """
    sandbox = ensure_installed(settings)
    if os.geteuid() != 0:
        unavailable("running the sandboxed Asterisk needs root (chroot, mount)")
    sweep_stale_test_instances(sandbox.root)
    sandbox.write_config()
    try:
        sandbox.start()
    except SandboxError:
        sandbox.stop()
        raise
    failed = False
    try:
        yield sandbox
    except BaseException:
        failed = True
        print(f"Asterisk instance {sandbox.instance} log:\n{sandbox.log_tail(60)}")
        raise
    finally:
        sandbox.stop()
        if not failed and not keep_instance:
            sandbox.remove_instance()
