"""The [service] limits load from the environment and refuse nonsense, naming the key."""

from __future__ import annotations

import pytest

from callcenter.config import ConfigError, load_settings


def test_limits_come_from_the_environment(tmp_path) -> None:
    settings = load_settings(env={"CALLCENTER_DATA_DIR": str(tmp_path),
                                  "CALLCENTER_SERVICE__SSE_MAX_STREAMS_PER_USER": "3",
                                  "CALLCENTER_SERVICE__HTTP_HEADER_SECONDS": "5"})
    assert settings.service.sse_max_streams_per_user == 3
    assert settings.service.http_header_seconds == 5
    assert settings.service.agi_max_sessions == 2000


@pytest.mark.parametrize(("key", "value", "low"), [
    ("HTTP_MAX_CONNECTIONS", "3", 16), ("AGI_COMMAND_SECONDS", "0", 1),
    ("RESERVED_FILES", "10", 64), ("SSE_MAX_STREAMS", "-1", 1)])
def test_a_limit_out_of_range_stops_the_start_with_its_name(tmp_path, key, value, low) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(env={"CALLCENTER_DATA_DIR": str(tmp_path),
                           f"CALLCENTER_SERVICE__{key}": value})
    assert str(error.value) == (f"service.{key.lower()}: {value} is not between {low} "
                                "and 1000000")
