"""Repeated log lines are counted, not written: a flood cannot fill the disk.

A line that repeats (same logger, level and call site, whatever its arguments) is written
``limit`` times per ``window`` seconds; what comes after that in the window is held back and
counted, and the first line after the window says how many were held back. Lines from other
call sites are never held back by it.

    install_repeat_limit(handler, limit=20, window=60.0)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

Key = tuple[str, int, str, int]


@dataclass
class _Window:
    started: float
    seen: int = 0
    held_back: int = 0


class RepeatLimit(logging.Filter):
    """A ``logging.Filter`` for a handler; ``clock`` gives seconds (monotonic)."""

    def __init__(self, limit: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        if limit < 1 or window <= 0:
            raise ValueError(f"limit {limit} must be at least 1 and window {window} positive")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._windows: dict[Key, _Window] = {}
        self._next_sweep = clock() + window

    def filter(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        key = (record.name, record.levelno, record.pathname, record.lineno)
        window = self._windows.get(key)
        if window is None or now - window.started >= self.window:
            held_back = window.held_back if window is not None else 0
            window = self._windows[key] = _Window(started=now)
            if held_back:
                _note_held_back(record, held_back, self.window)
        window.seen += 1
        if window.seen <= self.limit:
            if window.seen == self.limit:
                record.msg = f"{record.msg} [{self.limit} times in {self.window:g} s: " \
                             "further lines like this are counted, not written]"
            return True
        window.held_back += 1
        return False

    def _sweep(self, now: float) -> None:
        """Forget finished windows (their count is lost only if the line never comes back)."""
        self._next_sweep = now + self.window
        for key in [k for k, w in self._windows.items()
                    if now - w.started >= self.window and not w.held_back]:
            del self._windows[key]


def _note_held_back(record: logging.LogRecord, count: int, window: float) -> None:
    record.msg = f"{record.msg} [and {count} more like this in the previous {window:g} s " \
                 "were not written]"


def install_repeat_limit(handler: logging.Handler, *, limit: int,
                         window: float) -> RepeatLimit:
    """Add a ``RepeatLimit`` to ``handler`` (once: a second call replaces the first)."""
    for old in [f for f in handler.filters if isinstance(f, RepeatLimit)]:
        handler.removeFilter(old)
    limiter = RepeatLimit(limit, window)
    handler.addFilter(limiter)
    return limiter


class ThrottledWarning:
    """One warning now, then at most one every ``interval`` seconds, which says how many
    were held back (``more``: a format with one ``%d``). For one known flood (untrusted AMI
    messages, refused FastAGI sessions); RepeatLimit guards every line besides."""

    def __init__(self, logger: logging.Logger, interval: float,
                 clock: Callable[[], float] = time.monotonic,
                 more: str = " (and %d more since the last warning)") -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._more = more
        self._next_at: float | None = None
        self._suppressed = 0

    def warn(self, message: str, *args: object, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        if self._next_at is not None and now < self._next_at:
            self._suppressed += 1
            return
        if self._suppressed:
            message += self._more
            args = (*args, self._suppressed)
        self._logger.warning(message, *args)
        self._suppressed = 0
        self._next_at = now + self._interval
