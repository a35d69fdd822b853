"""The wallboard's settings: the center's time zone and the queues' alert thresholds, from
the file and the environment, with bad values refused by key."""

from __future__ import annotations

import pytest

from callcenter.config import ConfigError
from callcenter.core.wallboard import QueueTargets
from callcenter.features.wallboard.service import queue_targets
from tests.unit.test_config import settings_from


def test_by_default_the_center_counts_its_days_in_utc_with_80_20_and_10_percent_alerts(tmp_path):
    settings = settings_from(tmp_path)
    assert settings.center.time_zone == "UTC"
    assert queue_targets(settings)["sales"] == QueueTargets(
        service_level_seconds=20, short_abandon_seconds=5, service_level_below=0.8,
        abandon_rate_above=0.1, hysteresis=0.05, min_calls=10)


def test_time_zone_and_thresholds_come_from_the_file_and_the_environment(tmp_path):
    settings = settings_from(
        tmp_path, '[center]\ntime_zone = "America/Sao_Paulo"\nalert_min_calls = 3\n'
                  '[[queues]]\nname = "help"\nservice_level_seconds = 30\n'
                  'alert_service_level_below = 90\nalert_abandon_rate_above = 0\n'
                  'short_abandon_seconds = 8\n'
                  '[[agents]]\nid = "ana"\nname = "Ana"\nqueues = ["help"]\n',
        CALLCENTER_CENTER__ALERT_HYSTERESIS_PERCENT="2")
    assert settings.center.zone.key == "America/Sao_Paulo"
    assert queue_targets(settings) == {"help": QueueTargets(
        service_level_seconds=30, short_abandon_seconds=8, service_level_below=0.9,
        abandon_rate_above=None, hysteresis=0.02, min_calls=3)}


@pytest.mark.parametrize("toml, says", [
    ('[center]\ntime_zone = "Mars/Olympus"\n', "center.time_zone: 'Mars/Olympus' is not a "
                                                "known time zone"),
    ('[center]\ntime_zone = "../etc/passwd"\n', "center.time_zone: '../etc/passwd'"),
    ('[center]\ntime_zone = ""\n', "center.time_zone: '' is not a known time zone"),
    ("[center]\nalert_hysteresis_percent = 60\n", "center.alert_hysteresis_percent: 60"),
    ("[center]\nalert_min_calls = 0\n", "center.alert_min_calls: 0 is not 1-100000"),
    ('[[queues]]\nname = "a"\nalert_service_level_below = 101\n',
     "queues[0].alert_service_level_below: 101 is not 0-100"),
    ('[[queues]]\nname = "a"\nshort_abandon_seconds = -1\n',
     "queues[0].short_abandon_seconds"),
])
def test_a_wrong_wallboard_setting_is_refused_with_the_key(tmp_path, toml, says):
    agent = '[[agents]]\nid = "ana"\nname = "Ana"\nqueues = ["a"]\n'
    with pytest.raises(ConfigError) as error:
        settings_from(tmp_path, toml + (agent if "[[queues]]" in toml else ""))
    assert says in str(error.value)
