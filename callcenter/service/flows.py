"""Loads the IVR call flows that admins write in dialplans/, checked against what exists."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from callcenter.core.flowfile import Flow, FlowError, FlowProblem, parse_flow


class FlowLibrary:
    def __init__(self, dialplans_dir: Path, prompts_dir: Path, *, language: str,
                 known_queues: Collection[str]) -> None:
        self._dialplans_dir = dialplans_dir
        self._prompts_dir = prompts_dir
        self._language = language
        self._known_queues = frozenset(known_queues)
        self._flows: dict[str, Flow] = {}

    def prompt_exists(self, name: str) -> bool:
        return (self._prompts_dir / self._language / f"{name}.wav").is_file()

    def load(self, name: str) -> Flow:
        """Read and validate dialplans/<name>.yaml; raises FlowError naming file:line:column."""
        path = self._dialplans_dir / f"{name}.yaml"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            problem = f"cannot read the flow: {exc.strerror}"
            raise FlowError([FlowProblem(str(path), 1, 1, problem)]) from None
        flow = parse_flow(text, str(path), known_queues=self._known_queues,
                          prompt_exists=self.prompt_exists)
        self._flows[name] = flow
        return flow

    def get(self, name: str) -> Flow:
        flow = self._flows.get(name)
        return flow if flow is not None else self.load(name)
