"""The admin's open/closed switch per IVR flow, kept in a small TOML file.

`callcenter ivr switch FLOW open|closed|24x7|auto` writes ``<data_dir>/ivr-switches.toml``;
the service reads it at every time decision (re-reading only when the file changed), so a
switch takes effect for the very next caller without a restart or a signal.
"""

from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path

from callcenter.core.hours import Override

log = logging.getLogger(__name__)

SWITCHES_FILE = "ivr-switches.toml"
WORDS = {"open": Override.FORCE_OPEN, "closed": Override.FORCE_CLOSED,
         "24x7": Override.ALWAYS_OPEN, "auto": Override.NONE}


class FlowSwitches:
    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / SWITCHES_FILE
        self._stamp: tuple[int, int] | None = None
        self._switches: dict[str, Override] = {}

    def __call__(self, flow: str) -> Override:
        self._refresh()
        return self._switches.get(flow, Override.NONE)

    def set(self, flow: str, override: Override) -> None:
        self._refresh()
        switches = {**self._switches, flow: override}
        lines = [f'{name} = "{value.value}"\n' for name, value in sorted(switches.items())
                 if value is not Override.NONE]
        scratch = self._path.with_suffix(".tmp")
        self._path.parent.mkdir(parents=True, exist_ok=True)
        scratch.write_text("# IVR open/closed switches, written by `callcenter ivr switch`.\n"
                           + "".join(lines))
        os.replace(scratch, self._path)
        self._refresh()

    def _refresh(self) -> None:
        try:
            status = self._path.stat()
        except FileNotFoundError:
            self._switches, self._stamp = {}, None
            return
        stamp = (status.st_mtime_ns, status.st_size)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            data = tomllib.loads(self._path.read_text(encoding="utf-8"))
            switches = {str(flow): Override(str(value)) for flow, value in data.items()}
        except (OSError, ValueError) as exc:  # keep the last good switches, say why
            log.error("%s is not valid (%s); keeping the switches read before", self._path, exc)
            return
        self._switches = switches
