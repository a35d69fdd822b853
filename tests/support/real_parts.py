"""One rule for tests that need a real part (Asterisk, SIPp, PostgreSQL, espeak-ng...):
outside CI a missing part skips the test with the reason; with CI=true it fails it."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"CI=true and a real part the test needs is unavailable: {reason}",
                    pytrace=False)
    pytest.skip(reason)
