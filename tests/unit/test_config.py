"""Settings: defaults, the TOML file, environment overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.cli import main
from callcenter.config import ConfigError, load_settings


def settings_from(tmp_path: Path, toml: str = "", **env: str):
    env.setdefault("CALLCENTER_DATA_DIR", str(tmp_path / "data"))
    path = None
    if toml:
        path = tmp_path / "settings.toml"
        path.write_text(toml)
    return load_settings(path, env=env)


def test_embedded_defaults_need_no_file(tmp_path):
    s = settings_from(tmp_path)
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'callcenter.db'}"
    assert [q.name for q in s.queues] == ["sales", "support", "operator"]
    assert {a.id for a in s.agents} == {"agent1", "agent2", "agent3"}
    assert s.ivr.number == "100"
    assert s.asterisk.ami_port == 5038


def test_generated_secrets_are_kept_across_restarts_and_private(tmp_path):
    first = settings_from(tmp_path)
    second = settings_from(tmp_path)
    assert first.asterisk.ami_secret and first.asterisk.ami_secret == second.asterisk.ami_secret
    assert first.agents[0].password == second.agents[0].password
    assert first.agents[0].password != first.agents[1].password
    secrets_file = tmp_path / "data" / "secrets.toml"
    assert secrets_file.stat().st_mode & 0o777 == 0o600


def test_the_file_then_the_environment_override_defaults(tmp_path):
    s = settings_from(
        tmp_path,
        '[asterisk]\nami_port = 6000\n[service]\nhttp_port = 9000\n'
        '[[queues]]\nname = "help"\nring_timeout = 7\n'
        '[[agents]]\nid = "maria"\nname = "Maria"\nqueues = ["help"]\n',
        CALLCENTER_ASTERISK__AMI_PORT="6001",
    )
    assert s.asterisk.ami_port == 6001
    assert s.service.http_port == 9000
    assert [(q.name, q.ring_timeout) for q in s.queues] == [("help", 7)]
    assert [(a.id, a.queues) for a in s.agents] == [("maria", ("help",))]


@pytest.mark.parametrize(("toml", "env", "says"), [
    ("", {"CALLCENTER_ASTERISK__AMI_PORT": "abc"},
     "asterisk.ami_port: expected a whole number, got 'abc'"),
    ("", {"CALLCENTER_ASTERISK__AMI_PORT": "70000"}, "asterisk.ami_port: 70000 is not"),
    ("", {"CALLCENTER_SERVICE__AGI_HOST": "8.8.8.8"}, "service.agi_host: 8.8.8.8 is a public"),
    ("", {"CALLCENTER_NOPE__X": "1"}, "CALLCENTER_NOPE__X: unknown section 'nope'"),
    ("[service]\nport = 1\n", {}, "service.port: unknown setting"),
    ("[service\n", {}, "not valid TOML"),
    ('[[queues]]\nname = "Sales!"\n', {}, "queues[0].name: 'Sales!'"),
    ('[[queues]]\nname = "a"\n[[queues]]\nname = "a"\n', {}, "queues[1].name: queue 'a' is "
     "defined twice"),
    ('[[agents]]\nid = "x1"\nname = "X"\nqueues = ["nowhere"]\n', {},
     "agents[0].queues: unknown queue 'nowhere'"),
    ('[[agents]]\nid = "x1"\nname = "X\\nY"\n', {}, "agents[0].name: must not contain"),
    ('[[agents]]\nid = "x1"\nname = "X"\npassword = "short"\n', {}, "agents[0].password"),
    ('[[agents]]\nname = "X"\n', {}, "agents[0]: missing id"),
    ("", {"CALLCENTER_DATABASE__URL": "mysql://x"}, "database.url: must start with"),
    ("", {"CALLCENTER_ASTERISK__MODE": "cloud"}, "asterisk.mode: 'cloud'"),
    ("", {"CALLCENTER_ASTERISK__MODE": "external"}, "asterisk.ami_secret: required"),
    ("", {"CALLCENTER_IVR__NUMBER": "1;Dial(x)"}, "ivr.number: '1;Dial(x)'"),
    ("", {"CALLCENTER_ASTERISK__RTP_START": "20000", "CALLCENTER_ASTERISK__RTP_END": "10000"},
     "asterisk.rtp_start: must be below"),
])
def test_a_wrong_value_is_refused_with_the_key_and_the_problem(tmp_path, toml, env, says):
    with pytest.raises(ConfigError) as error:
        settings_from(tmp_path, toml, **env)
    assert says in str(error.value)


def test_a_missing_settings_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="settings file not found"):
        load_settings(tmp_path / "nope.toml", env={"CALLCENTER_DATA_DIR": str(tmp_path)})


def test_the_command_stops_with_exit_2_and_the_key_on_a_bad_setting(tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CALLCENTER_SERVICE__HTTP_PORT", "eighty")
    assert main(["config", "check"]) == 2
    assert "service.http_port: expected a whole number" in capsys.readouterr().err


def test_the_command_names_file_line_and_column_of_a_broken_flow(tmp_path, monkeypatch, capsys):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text(
        "name: main\nstart: welcome\nnodes:\n  welcome:\n    type: play\n"
        "    prompt: welcome\n    next: {queue: nowhere}\n")
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CALLCENTER_IVR__DIALPLANS_DIR", str(flows))
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err
    assert f"{flows / 'main.yaml'}:7:" in err
    assert "nowhere" in err


def test_the_demo_settings_and_flow_check_out(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(tmp_path))
    assert main(["config", "check"]) == 0
    assert "valid" in capsys.readouterr().out
