"""A line repeated from one place is written so often per window, then counted."""

from __future__ import annotations

import logging

import pytest

from callcenter.logfilter import RepeatLimit, install_repeat_limit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def logged() -> tuple[logging.Logger, Collect, Clock]:
    clock = Clock()
    handler = Collect()
    handler.addFilter(RepeatLimit(3, 60.0, clock))
    logger = logging.getLogger("test.logfilter")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, handler, clock


def refused(logger: logging.Logger, n: int) -> None:
    logger.warning("HTTP: connection %d refused", n)  # one call site, many arguments


def test_a_flood_from_one_place_is_written_limit_times_per_window(logged) -> None:
    logger, handler, _clock = logged
    for n in range(1000):
        refused(logger, n)
    assert handler.lines[:2] == ["HTTP: connection 0 refused", "HTTP: connection 1 refused"]
    assert handler.lines[2].startswith("HTTP: connection 2 refused [3 times in 60 s")
    assert len(handler.lines) == 3


def test_the_first_line_after_the_window_says_how_many_were_held_back(logged) -> None:
    logger, handler, clock = logged
    for n in range(10):
        refused(logger, n)
    clock.now += 60.0
    refused(logger, 10)
    assert handler.lines[-1] == ("HTTP: connection 10 refused [and 7 more like this in the "
                                 "previous 60 s were not written]")
    refused(logger, 11)
    assert handler.lines[-1] == "HTTP: connection 11 refused", "a new window starts clean"


def test_other_lines_are_never_held_back_by_a_flood(logged) -> None:
    logger, handler, _clock = logged
    for n in range(50):
        refused(logger, n)
    logger.error("AGI: a call failed")
    logger.warning("HTTP: connection %d refused", 99)  # another call site: its own count
    assert handler.lines[-2:] == ["AGI: a call failed", "HTTP: connection 99 refused"]


def test_finished_quiet_windows_are_forgotten(logged) -> None:
    logger, handler, clock = logged
    limiter = handler.filters[0]
    assert isinstance(limiter, RepeatLimit)
    for n in range(100):
        clock.now += 61.0
        logger.info("line %d", n, extra={"n": n})
    assert len(limiter._windows) <= 2
    assert len(handler.lines) == 100


def test_installing_twice_keeps_one_limiter() -> None:
    handler = Collect()
    install_repeat_limit(handler, limit=5, window=10.0)
    install_repeat_limit(handler, limit=7, window=10.0)
    limiters = [f for f in handler.filters if isinstance(f, RepeatLimit)]
    assert [f.limit for f in limiters] == [7]
