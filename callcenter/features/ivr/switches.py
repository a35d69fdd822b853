"""The admin's open/closed switch per IVR flow, kept in a small TOML file.

`callcenter ivr switch FLOW open|closed|24x7|auto` writes ``<data_dir>/ivr-switches.toml``;
the service reads it at every time decision (re-reading only when the file changed), so a
switch takes effect for the very next caller without a restart or a signal.

A switch acts only through a flow's business-hours (``type: time``) nodes: ``check_switch``
is the one rule every way of setting it goes through, and it refuses what would change
nothing (an unknown flow, a file that does not validate, a flow with no time node, a word
that is not a switch), saying what to do instead.

The switch must be written where the running service reads it, and checked against the
flows it serves. The service notes both in ``<data_dir>/ivr-service.json`` while it runs
(``note_running_service``); ``running_service`` reads that note back for the command line,
which finds the data folder through the same settings the service loads (``--config`` or
``CALLCENTER_CONFIG``, then ``CALLCENTER_*`` variables).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tomllib
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path

from callcenter.core.flows import FlowError
from callcenter.core.flows.model import Flow, TimeNode
from callcenter.core.hours import Override
from callcenter.core.identifiers import FLOW_NAME_RE
from callcenter.features.ivr.flows import FLOW_SUFFIX, FlowLibrary
from callcenter.private_files import write_private

log = logging.getLogger(__name__)

SWITCHES_FILE = "ivr-switches.toml"
SERVICE_NOTE_FILE = "ivr-service.json"  # in the data folder while the service runs
WORDS = {"open": Override.FORCE_OPEN, "closed": Override.FORCE_CLOSED,
         "24x7": Override.ALWAYS_OPEN, "auto": Override.NONE}
MEANINGS = {Override.FORCE_OPEN: "open whatever its hours say",
            Override.FORCE_CLOSED: "closed whatever its hours say",
            Override.ALWAYS_OPEN: "open day and night",
            Override.NONE: "following its file again"}
HOURS_HELP = ('add a business-hours node (type: time, with hours, open and closed; see '
              'docs/ivr.md, "Business hours") and make it the flow\'s start, or the node '
              'its callers reach first')


class SwitchRefused(ValueError):
    """The switch would not act; the message says why and what to do."""


@dataclass(frozen=True)
class SwitchTarget:
    """A flow the switch can act on: its file and the time nodes that obey the switch."""

    flow: str
    path: Path
    time_nodes: tuple[str, ...]
    # The override the file itself writes in its hours (what ``auto`` goes back to).
    file_overrides: tuple[Override, ...] = ()


def parse_switch(word: str | None) -> Override:
    """``open``, ``closed``, ``24x7`` or ``auto`` as the switch it means."""
    if word in WORDS:
        return WORDS[word]
    shown = "nothing" if not word else repr(word)
    raise SwitchRefused(f"{shown} is not a switch: choose one of {', '.join(WORDS)}")


def check_switch(flows: FlowLibrary, name: str, override: Override,
                 switches: FlowSwitches | None = None) -> SwitchTarget | None:
    """The rule for setting ``name``'s switch to ``override``: the flow's file must exist in
    the flows folder, validate, be named as its file is, and hold a time node. ``auto`` only
    removes a switch, so it is also allowed for a flow that has one set whatever its file
    now says (None when the file cannot tell what the flow follows). Raises SwitchRefused."""
    if not FLOW_NAME_RE.fullmatch(name):
        raise SwitchRefused(f"{name!r} is not a flow name (lowercase letters, digits, - and _, "
                            "starting with a letter)")
    if override is Override.NONE and switches is not None and switches(name) is not Override.NONE:
        try:  # removing a switch is always right; say what the flow follows when it can
            return _check_flow(flows, name)
        except SwitchRefused:
            return None
    return _check_flow(flows, name)


def _check_flow(flows: FlowLibrary, name: str) -> SwitchTarget:
    path = flows.status(name).path
    if not path.is_file():
        folder = path.parent
        there = sorted(p.stem for p in folder.glob(f"*{FLOW_SUFFIX}"))
        listing = f"the flows there: {', '.join(there)}" if there else "it holds no flows"
        raise SwitchRefused(f"no flow {name!r} in {folder} (no file {path.name}; {listing}). "
                            "Is the service using another flows folder (ivr.dialplans_dir)? "
                            "Give this command the service's settings: see "
                            "`callcenter ivr switch --help`")
    try:
        flow = flows.check_file(path)
    except FlowError as error:
        raise SwitchRefused(f"flow {name!r} ({path}) does not validate, so no switch is set "
                            f"(fix it first; `callcenter ivr check {path}`):\n{error}") from None
    return _target(flow, name, path)


def _target(flow: Flow, name: str, path: Path) -> SwitchTarget:
    if flow.name != name:
        # Calls look their switch up by the name the file gives itself.
        raise SwitchRefused(f"flow file {path} names itself {flow.name!r}, not {name!r}: a "
                            f"switch for {name!r} would not reach its callers. Write "
                            f"`name: {name}` in it")
    nodes = [node for node in flow.nodes.values() if isinstance(node, TimeNode)]
    if not nodes:
        raise SwitchRefused(f"flow {name!r} ({path}) has no business hours (no node of "
                            "type: time), so an open/closed switch would change nothing for "
                            f"its callers: {HOURS_HELP}")
    return SwitchTarget(name, path, tuple(node.name for node in nodes),
                        tuple(node.schedule.override for node in nodes))


def describe(target: SwitchTarget | None, name: str, override: Override) -> str:
    """What a switch just set means for the flow's next callers."""
    meaning = MEANINGS[override]
    if target is None:
        return f"flow {name!r} has no switch any more, from the next call on"
    nodes = ", ".join(target.time_nodes)
    if override is Override.NONE:
        written = {o for o in target.file_overrides if o is not Override.NONE}
        if written:
            meaning += (": its hours, under the override the file writes "
                        f"({', '.join(sorted(o.value for o in written))})")
        else:
            meaning += ": its hours"
    return (f"flow {name!r} ({target.path}) is now {meaning}, from the next call on "
            f"(time node{'s' if len(target.time_nodes) > 1 else ''}: {nodes})")


# --------------------------------------------------------------------------- the switches file


class FlowSwitches:
    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / SWITCHES_FILE
        self._stamp: tuple[int, int] | None = None
        self._switches: dict[str, Override] = {}

    @property
    def path(self) -> Path:
        return self._path

    def __call__(self, flow: str) -> Override:
        self._refresh()
        return self._switches.get(flow, Override.NONE)

    def set(self, flow: str, override: Override) -> None:
        if not FLOW_NAME_RE.fullmatch(flow):  # it becomes a bare TOML key
            raise ValueError(f"{flow!r} is not a flow name")
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


# --------------------------------------------------------------------------- the running service


@dataclass(frozen=True)
class ServiceNote:
    """How the running service checks its flows: what the command line must check against."""

    pid: int
    dialplans_dir: str
    prompts_dir: str
    language: str
    queues: tuple[str, ...]
    agents: tuple[str, ...]

    def flow_library(self) -> FlowLibrary:
        return FlowLibrary(Path(self.dialplans_dir), Path(self.prompts_dir),
                           language=self.language, known_queues=self.queues,
                           known_agents=self.agents)


def note_running_service(data_dir: Path, *, dialplans_dir: Path, prompts_dir: Path,
                         language: str, queues: Collection[str],
                         agents: Collection[str]) -> Path:
    """Written by the service once it serves (and removed by ``forget_running_service``)."""
    note = ServiceNote(os.getpid(), str(dialplans_dir.resolve()), str(prompts_dir.resolve()),
                       language, tuple(queues), tuple(agents))
    path = data_dir / SERVICE_NOTE_FILE
    write_private(path, json.dumps(asdict(note), indent=1) + "\n")
    return path


def forget_running_service(data_dir: Path) -> None:
    """Remove the note if it is this process's (another service may have taken over)."""
    note = _read_note(data_dir / SERVICE_NOTE_FILE)
    if note is not None and note.pid == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            (data_dir / SERVICE_NOTE_FILE).unlink()


def running_service(data_dir: Path) -> ServiceNote | None:
    """The note of the service running on this data folder; None when none is (a note left
    by a process that is gone does not count)."""
    note = _read_note(data_dir / SERVICE_NOTE_FILE)
    if note is None:
        return None
    try:
        os.kill(note.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, run by another user
    return note


def _read_note(path: Path) -> ServiceNote | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ServiceNote(int(data["pid"]), str(data["dialplans_dir"]),
                           str(data["prompts_dir"]), str(data["language"]),
                           tuple(str(q) for q in data["queues"]),
                           tuple(str(a) for a in data["agents"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s is not a service note (%s); ignoring it", path, exc)
        return None
