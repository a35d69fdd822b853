"""The IVR call flows that admins write in dialplans/: checked, served, and hot-reloaded.

A flow is served only once it validates. When a file changes, the new version replaces the
old one only if it is valid; otherwise the problems are logged with file:line:column and the
last good version keeps answering new calls. Calls already inside a flow hold their own
``Flow`` object, so they finish on the version they started with.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from callcenter.core.flowfile import Flow, FlowError, FlowProblem, parse_flow

log = logging.getLogger(__name__)

FLOW_SUFFIX = ".yaml"


@dataclass(frozen=True)
class ReloadReport:
    """What a reload did: flows now serving a new version, and flows refused."""

    reloaded: tuple[str, ...] = ()
    refused: tuple[FlowError, ...] = ()


class FlowLibrary:
    def __init__(self, dialplans_dir: Path, prompts_dir: Path, *, language: str,
                 known_queues: Collection[str], known_agents: Collection[str] | None = None,
                 ) -> None:
        self._dialplans_dir = dialplans_dir
        self._prompts_dir = prompts_dir
        self._language = language
        self._known_queues = frozenset(known_queues)
        self._known_agents = None if known_agents is None else frozenset(known_agents)
        self._flows: dict[str, Flow] = {}
        self._seen: dict[str, tuple[int, int]] = {}  # name → (mtime_ns, size) last read
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
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else f"not UTF-8 text ({exc.reason})"
            problem = f"cannot read the flow: {reason}"
            raise FlowError([FlowProblem(str(path), 1, 1, problem)]) from None
        # {flow: X} and survey: X name flows served from the same folder.
        known_flows = {p.stem for p in self._dialplans_dir.glob(f"*{FLOW_SUFFIX}")}
        return parse_flow(text, str(path), known_queues=self._known_queues,
                          prompt_exists=self.prompt_exists, known_agents=self._known_agents,
                          known_flows=known_flows, default_language=self._language)

    def load(self, name: str) -> Flow:
        """Load dialplans/<name>.yaml and serve it; FlowError if it is not valid."""
        path = self._dialplans_dir / f"{name}{FLOW_SUFFIX}"
        stamp = _stamp(path)
        flow = self.check_file(path)
        self._flows[name] = flow
        if stamp is not None:
            self._seen[name] = stamp
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
                self._flows[name] = self.check_file(path)
            except FlowError as error:
                refused.append(error)
                log.error("IVR flow %r not reloaded; the last good version keeps serving:\n%s",
                          name, error)
            else:
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
