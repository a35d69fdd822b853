"""The service as a separate process (``callcenter serve``), for tests that kill it, and its
``/healthz`` seen over real HTTP.

    settings = sandbox_settings(tmp_path, agents=..., queues=...)
    with running_asterisk(settings), ServiceProcess(settings) as service:
        await wait_for_health(settings, lambda h: h["ami"] == "up", timeout=30)
        service.kill()  # SIGKILL, as a crash or the OOM killer would

The process gets the very settings the test holds: the settings file ``sandbox_settings``
wrote and every value of the [service], [database], [asterisk] and [ivr] sections as
CALLCENTER_* variables. ``service_environment`` checks that they load back equal.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

from callcenter.config import Settings, load_settings

SECTIONS = ("service", "database", "asterisk", "ivr")
Health = dict[str, Any]


def _env_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, tuple) and all(isinstance(v, int | str) for v in value):
        return ",".join(str(v) for v in value)  # settings read lists from "a,b" in variables
    raise TypeError(f"cannot pass {value!r} in an environment variable")


def service_environment(settings: Settings, settings_file: Path | None = None) -> dict[str, str]:
    """CALLCENTER_* variables under which ``load_settings()`` gives back ``settings``.

    ``settings_file`` holds the queues and agents (default: ``<data_dir>/settings.toml``, as
    ``sandbox_settings`` writes it); secrets it does not hold come from the data folder's
    ``secrets.toml``, as in the test's own process. ValueError if they would differ.
    """
    file = settings_file or settings.data_path / "settings.toml"
    if not file.is_file():
        raise ValueError(f"{file}: the settings file for the service process is missing")
    env = {"CALLCENTER_CONFIG": str(file), "CALLCENTER_DATA_DIR": settings.data_dir}
    for section in SECTIONS:
        values = getattr(settings, section)
        for item in dataclasses.fields(values):
            name = f"CALLCENTER_{section.upper()}__{item.name.upper()}"
            env[name] = _env_value(getattr(values, item.name))
    reloaded = load_settings(env=env)
    if reloaded != settings:
        raise ValueError(f"the environment for the service process loads other settings than "
                         f"the test's: {reloaded} != {settings}")
    return env


async def health(settings: Settings, timeout: float = 3.0) -> Health | None:
    """The service's ``GET /healthz`` answer (on 200 and 503 alike), or None if nobody
    answers on its HTTP port."""
    url = f"http://{settings.service.http_host}:{settings.service.http_port}/healthz"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http, \
                http.get(url) as response:
            body: Health = await response.json()
            body["http_status"] = response.status
            return body
    except (aiohttp.ClientConnectionError, TimeoutError):
        return None


async def wait_for_health(settings: Settings, wanted: Callable[[Health], bool], *,
                          timeout: float, what: str = "the wanted health") -> Health:
    """Poll ``/healthz`` until ``wanted(answer)``; AssertionError naming the last answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Health | None = None
    while True:
        last = await health(settings)
        if last is not None and wanted(last):
            return last
        if loop.time() >= deadline:
            raise AssertionError(f"/healthz did not show {what} within {timeout} s; "
                                 f"last answer: {last}")
        await asyncio.sleep(0.2)


class ServiceProcess:
    """``callcenter serve`` in its own process group, output kept in ``<data_dir>/service-N.log``.

    Stopped by its pid only: ``kill()`` (SIGKILL) or ``stop()`` (SIGTERM, then SIGKILL).
    """

    def __init__(self, settings: Settings, *, extra_env: Mapping[str, str] | None = None,
                 open_files: int | None = None) -> None:
        """``open_files``: the process's RLIMIT_NOFILE (soft and hard), set before it runs."""
        executable = Path(sys.executable).parent / "callcenter"
        if not executable.is_file():
            raise RuntimeError(f"{executable}: the callcenter command is not installed beside "
                               "the running Python (pip install -e .)")
        self.settings = settings
        self.command = [str(executable), "serve"]
        passed = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
        self.env = {**passed, **service_environment(settings), **(extra_env or {})}
        self.open_files = open_files
        self.log_path = self._free_log_path()
        self._process: subprocess.Popen[bytes] | None = None

    def _free_log_path(self) -> Path:
        number = 1
        while (self.settings.data_path / f"service-{number}.log").exists():
            number += 1
        path = self.settings.data_path / f"service-{number}.log"
        path.touch()
        return path

    def _limit_open_files(self) -> None:
        if self.open_files is not None:  # in the child, before exec
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the service process is not started")
        return self._process.pid

    def start(self) -> ServiceProcess:
        if self._process is not None:
            raise RuntimeError("a ServiceProcess starts once; make a new one to restart")
        with open(self.log_path, "ab") as output:
            self._process = subprocess.Popen(self.command, env=self.env,
                                             stdin=subprocess.DEVNULL, stdout=output,
                                             stderr=subprocess.STDOUT, start_new_session=True,
                                             preexec_fn=self._limit_open_files)
        return self

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_up(self, timeout: float = 30) -> Health:
        """Wait until /healthz says everything is up; fail with the output if it exits."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if not self.running():
                raise AssertionError(f"the service exited (code {self.returncode}) while "
                                     f"starting:\n{self.output()[-4000:]}")
            answer = await health(self.settings)
            if answer is not None and answer["status"] == "ok":
                return answer
            if loop.time() >= deadline:
                raise AssertionError(f"the service was not healthy within {timeout} s "
                                     f"(last /healthz: {answer}):\n{self.output()[-4000:]}")
            await asyncio.sleep(0.2)

    @property
    def returncode(self) -> int | None:
        return self._process.poll() if self._process is not None else None

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as after a crash."""
        self._signal(signal.SIGKILL)
        self._wait(10)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (the service's clean stop), then SIGKILL if it takes longer than timeout."""
        if not self.running():
            return
        self._signal(signal.SIGTERM)
        if not self._wait(timeout):
            self.kill()

    def _signal(self, sig: signal.Signals) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, sig)

    def _wait(self, timeout: float) -> bool:
        if self._process is None:
            return True
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
