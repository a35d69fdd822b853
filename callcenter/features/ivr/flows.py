"""The IVR call flows that admins write in dialplans/: checked, served, and hot-reloaded.

A flow is served only once it validates. When a file changes, the new version replaces the
old one only if it is valid; otherwise the problems are logged with file:line:column and the
last good version keeps answering new calls. Calls already inside a flow hold their own
``Flow`` object, so they finish on the version they started with.

The last good version also outlives the process: every version that validates is copied,
atomically, into ``last_good_dir`` (``<data_dir>/flows-last-good/<name>.yaml``). A flow
whose file is broken when the service starts (or when a call first needs it) is served from
that copy, loudly: an ERROR with every problem of the file, and ``status()`` says so for the
start-up banner. Without a copy the broken file stops the start as before: there is nothing
to serve.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from callcenter.core.flows import Flow, FlowError, FlowProblem, parse_flow
from callcenter.private_files import write_private

log = logging.getLogger(__name__)

FLOW_SUFFIX = ".yaml"
LAST_GOOD_FOLDER = "flows-last-good"  # in the data folder: the last version of each that validated


@dataclass(frozen=True)
class ReloadReport:
    """What a reload did: flows now serving a new version, and flows refused."""

    reloaded: tuple[str, ...] = ()
    refused: tuple[FlowError, ...] = ()


@dataclass(frozen=True)
class FlowStatus:
    """Which version of a flow new calls get: its file, or the last good copy of it."""

    name: str
    path: Path  # the flow's own file in the dialplans folder
    last_good_saved_at: float | None = None  # set when the copy serves: the file is broken
    problems: FlowError | None = None  # what is wrong with the file, when the copy serves

    @property
    def from_last_good(self) -> bool:
        return self.last_good_saved_at is not None

    def describe(self) -> str:
        """One line for the banner and the log, e.g.
        ``main.yaml (LAST GOOD VERSION from 2026-12-07 10:15:02 UTC: the file has errors)``."""
        if self.last_good_saved_at is None:
            return self.path.name
        return f"{self.path.name} (LAST GOOD VERSION from {self.saved()}: the file has errors)"

    def saved(self) -> str:
        """When the last good copy was saved, in UTC."""
        if self.last_good_saved_at is None:
            return ""
        return f"{datetime.fromtimestamp(self.last_good_saved_at, UTC):%Y-%m-%d %H:%M:%S} UTC"


class FlowLibrary:
    def __init__(self, dialplans_dir: Path, prompts_dir: Path, *, language: str,
                 known_queues: Collection[str], known_agents: Collection[str] | None = None,
                 last_good_dir: Path | None = None) -> None:
        """``last_good_dir``: where each version that validates is kept, to serve when the
        file is broken at start; None (the checking commands) keeps nothing."""
        self._dialplans_dir = dialplans_dir
        self._last_good_dir = last_good_dir
        self._prompts_dir = prompts_dir
        self._language = language
        self._known_queues = frozenset(known_queues)
        self._known_agents = None if known_agents is None else frozenset(known_agents)
        self._flows: dict[str, Flow] = {}
        self._seen: dict[str, tuple[int, int]] = {}  # name → (mtime_ns, size) last read
        self._from_last_good: dict[str, FlowStatus] = {}  # flows whose file is broken
        self._watcher: asyncio.Task[None] | None = None

    @property
    def language(self) -> str:
        """The language of flows that name none, and of the service's own prompts."""
        return self._language

    def prompt_exists(self, name: str, language: str | None = None) -> bool:
        folder = self._prompts_dir / (language or self._language)
        return (folder / f"{name}.wav").is_file()

    def check_file(self, path: Path) -> Flow:
        """Read and validate one flow file; raises FlowError naming file:line:column."""
        return self._read_and_check(path)[0]

    def _read_and_check(self, path: Path) -> tuple[Flow, str]:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else f"not UTF-8 text ({exc.reason})"
            problem = f"cannot read the flow: {reason}"
            raise FlowError([FlowProblem(str(path), 1, 1, problem)]) from None
        return self._check_text(text, path), text

    def _check_text(self, text: str, path: Path) -> Flow:
        # {flow: X} and survey: X name flows served from the same folder.
        known_flows = {p.stem for p in self._dialplans_dir.glob(f"*{FLOW_SUFFIX}")}
        return parse_flow(text, str(path), known_queues=self._known_queues,
                          prompt_exists=self.prompt_exists, known_agents=self._known_agents,
                          known_flows=known_flows, default_language=self._language)

    def load(self, name: str) -> Flow:
        """Load dialplans/<name>.yaml and serve it. When the file is not valid, serve the
        last good copy of it (logged as an ERROR with the file's problems); FlowError when
        there is none, or it no longer validates either."""
        path = self._dialplans_dir / f"{name}{FLOW_SUFFIX}"
        stamp = _stamp(path)
        try:
            flow, text = self._read_and_check(path)
        except FlowError as error:
            flow = self._last_good(name, path, error)
        else:
            self._from_last_good.pop(name, None)
            self._keep_as_last_good(name, text)
        self._flows[name] = flow
        if stamp is not None:
            self._seen[name] = stamp  # a broken file is reported once, not at every poll
        return flow

    def status(self, name: str) -> FlowStatus:
        """Whether new calls get the flow's file or, the file being broken, its last good
        copy (for the start-up banner)."""
        path = self._dialplans_dir / f"{name}{FLOW_SUFFIX}"
        return self._from_last_good.get(name) or FlowStatus(name, path)

    def _last_good_path(self, name: str) -> Path | None:
        return None if self._last_good_dir is None else self._last_good_dir / f"{name}.yaml"

    def _keep_as_last_good(self, name: str, text: str) -> None:
        """Copy a version that validated beside the others, atomically (a crash leaves the
        old copy or the new one, never half of one). A failure costs only the fallback."""
        copy = self._last_good_path(name)
        if copy is None:
            return
        try:
            if copy.is_file() and copy.read_text(encoding="utf-8") == text:
                return  # the same version: its copy keeps the time it was first saved
            write_private(copy, text)  # atomic and fsync'd, in the private data folder
        except OSError as exc:
            log.warning("could not keep a copy of the last good version of IVR flow %r in "
                        "%s: %s", name, copy, exc)

    def _last_good(self, name: str, path: Path, error: FlowError) -> Flow:
        """The last good copy of a flow whose file is broken, or the file's error."""
        copy = self._last_good_path(name)
        if copy is None or not copy.is_file():
            raise error
        try:
            saved_at = copy.stat().st_mtime
            flow = self._check_text(copy.read_text(encoding="utf-8"), copy)
        except (OSError, UnicodeDecodeError, FlowError) as copy_error:
            log.error("the last good copy %s of IVR flow %r cannot serve either: %s",
                      copy, name, copy_error)
            raise error from None
        status = FlowStatus(name, path, saved_at, error)
        self._from_last_good[name] = status
        log.error("IVR FLOW %r IS BROKEN: SERVING ITS LAST GOOD VERSION, saved %s in %s, "
                  "until %s is fixed:\n%s", name, status.saved(), copy, path, error)
        return flow

    def get(self, name: str) -> Flow:
        """The version of the flow that new calls get."""
        flow = self._flows.get(name)
        return flow if flow is not None else self.load(name)

    def reload(self) -> ReloadReport:
        """Re-read the flows being served whose files changed; keep the old one on errors."""
        reloaded: list[str] = []
        refused: list[FlowError] = []
        for name in list(self._flows):
            path = self._dialplans_dir / f"{name}{FLOW_SUFFIX}"
            stamp = _stamp(path)
            if stamp is not None and stamp == self._seen.get(name):
                continue
            try:
                flow, text = self._read_and_check(path)
            except FlowError as error:
                refused.append(error)
                log.error("IVR flow %r not reloaded; the last good version keeps serving:\n%s",
                          name, error)
            else:
                self._flows[name] = flow
                self._from_last_good.pop(name, None)
                self._keep_as_last_good(name, text)
                reloaded.append(name)
                log.info("IVR flow %r reloaded from %s", name, path)
            if stamp is not None:
                self._seen[name] = stamp  # report a broken version once, not every poll
        return ReloadReport(tuple(reloaded), tuple(refused))

    def forget_seen(self) -> None:
        """Make the next reload re-read every file (an explicit `callcenter ivr reload`)."""
        self._seen.clear()

    def watch(self, every_seconds: float = 1.0) -> None:
        """Poll the served flows' files and reload on change (cheap: a stat per flow)."""
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._poll(every_seconds), name="flow-watch")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None

    async def _poll(self, every_seconds: float) -> None:
        while True:
            await asyncio.sleep(every_seconds)
            try:
                self.reload()
            except Exception:
                log.exception("checking the IVR flows for changes failed")


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size
