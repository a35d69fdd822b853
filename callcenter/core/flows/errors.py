"""A flow file's problems: each at its file, line and column, all of them in one error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FlowProblem:
    source: str
    line: int  # 1-based
    column: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}: {self.message}"


class FlowError(ValueError):
    """A flow file is not valid; ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: Sequence[FlowProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line, p.column))
        super().__init__("\n".join(str(p) for p in self.problems))
