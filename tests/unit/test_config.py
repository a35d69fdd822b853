"""Settings: defaults, the TOML file, environment overrides, and errors that name the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from callcenter.cli import main
from callcenter.config import ConfigError, extension_pattern_regex, load_settings, split_host_port


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
    ('[[agents]]\nid = "x1\\n"\nname = "X"\n', {}, "agents[0].id: 'x1\\n'"),
    ("", {"CALLCENTER_DATABASE__URL": "mysql://x"}, "database.url: must start with"),
    ("", {"CALLCENTER_ASTERISK__MODE": "cloud"}, "asterisk.mode: 'cloud'"),
    ("", {"CALLCENTER_ASTERISK__MODE": "external"}, "asterisk.ami_secret: required"),
    ("", {"CALLCENTER_IVR__NUMBER": "1;Dial(x)"}, "ivr.number: '1;Dial(x)'"),
    ("", {"CALLCENTER_ASTERISK__RTP_START": "20000", "CALLCENTER_ASTERISK__RTP_END": "10000"},
     "asterisk.rtp_start: must be below"),
    ("service = 5\n", {"CALLCENTER_SERVICE__HTTP_PORT": "81"}, "service: expected a table, "
     "got 5"),
    ("queues = 5\n", {}, "queues: expected a list of [[queues]] tables"),
    ("[[queues]]\nring_timeout = 5\n", {}, "queues[0]: missing name"),
    ("[[agents]]\n", {}, "agents[0]: missing id, name"),
    ("nope = 1\n", {}, "nope: unknown section"),
    ("[service]\nhttp_port = 80.0\n", {}, "service.http_port: expected a whole number, got 80.0"),
    ("[service]\nhttp_port = true\n", {}, "service.http_port: expected a whole number, got True"),
    ("[service]\nagi_host = 5\n", {}, "service.agi_host: expected text, got 5"),
    ("", {"CALLCENTER_SERVICE__SECURE_COOKIES": "on"},
     "service.secure_cookies: expected true or false, got 'on'"),
    ("[acd]\npause_reasons = [1]\n", {}, "acd.pause_reasons: expected a list of names, got [1]"),
    ('[[queues]]\nname = "a"\ntier_delays = 5\n', {},
     "queues[0].tier_delays: expected a list of whole numbers, got 5"),
])
def test_a_wrong_value_is_refused_with_the_key_and_the_problem(tmp_path, toml, env, says):
    with pytest.raises(ConfigError) as error:
        settings_from(tmp_path, toml, **env)
    assert says in str(error.value)


def test_settings_are_frozen_and_changed_by_replace_like_any_dataclass(tmp_path):
    s = settings_from(tmp_path, CALLCENTER_SERVICE__SECURE_COOKIES="yes",
                      CALLCENTER_ACD__PAUSE_REASONS="nap, tea")
    assert s.service.secure_cookies is True
    assert s.acd.pause_reasons == ("nap", "tea")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.asterisk.ami_port = 1  # type: ignore[misc]
    moved = dataclasses.replace(s, asterisk=dataclasses.replace(s.asterisk, ami_port=6000))
    assert (moved.asterisk.ami_port, s.asterisk.ami_port) == (6000, 5038)


def test_the_files_data_dir_comes_before_the_variable(tmp_path):
    s = settings_from(tmp_path, f'data_dir = "{tmp_path / "from-file"}"\n')
    assert s.data_path == tmp_path / "from-file"
    assert settings_from(tmp_path).data_path == tmp_path / "data"


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


# --------------------------------------------------------------------------- [outbound]


def test_without_an_outbound_section_nothing_can_be_dialled_out(tmp_path):
    outbound = settings_from(tmp_path).outbound
    assert not outbound.has_trunk
    assert (outbound.extension_patterns, outbound.allowed_prefixes) == ((), ())
    assert outbound.dial_timeout == 30


def test_the_outbound_trunk_and_its_rules_come_from_the_file_and_the_environment(tmp_path):
    s = settings_from(
        tmp_path,
        '[outbound]\ntrunk_host = "sip.carrier.example:5080"\ntrunk_username = "acct42"\n'
        'trunk_password = "p4ss!word"\ncaller_id = "+551130000000"\n'
        'extension_patterns = ["2XXX", "_3[0-4]X"]\nallowed_prefixes = ["+55"]\n',
        CALLCENTER_OUTBOUND__ALLOWED_PREFIXES="+5511, +5521",
        CALLCENTER_OUTBOUND__DIAL_TIMEOUT="20",
        CALLCENTER_OUTBOUND__TRUNK_MATCH="203.0.113.0/24,198.51.100.7:5060",
    )
    outbound = s.outbound
    assert outbound.has_trunk and outbound.trunk_host == "sip.carrier.example:5080"
    assert (outbound.trunk_username, outbound.trunk_password) == ("acct42", "p4ss!word")
    assert outbound.caller_id == "+551130000000"
    assert outbound.extension_patterns == ("2XXX", "_3[0-4]X")
    assert outbound.allowed_prefixes == ("+5511", "+5521")
    assert outbound.trunk_match == ("203.0.113.0/24", "198.51.100.7:5060")
    assert outbound.dial_timeout == 20


@pytest.mark.parametrize(("env", "says"), [
    ({"TRUNK_HOST": "carrier example"}, "outbound.trunk_host: 'carrier example' is not an IP"),
    ({"TRUNK_HOST": "10.0.0.1:99999"}, "outbound.trunk_host: '99999' is not a port"),
    ({"TRUNK_HOST": "2001:db8::1:65536"}, "outbound.trunk_host: '2001:db8::1:65536' is not an "
     "IPv6 address (with a port, write [2001:db8::1]:5060)"),
    ({"TRUNK_HOST": "[2001:db8::1]5060"}, "outbound.trunk_host: '[2001:db8::1]5060' is not "),
    ({"TRUNK_HOST": "10.0.0.1\n[evil]"}, "outbound.trunk_host: "),
    ({"TRUNK_HOST": "carrier.example\n"}, "outbound.trunk_host: "),
    ({"TRUNK_USERNAME": "acct"}, "outbound.trunk_password: set trunk_username and "
     "trunk_password together"),
    ({"TRUNK_PASSWORD": "secret"}, "outbound.trunk_username: set trunk_username"),
    ({"TRUNK_USERNAME": "a b", "TRUNK_PASSWORD": "secret"}, "outbound.trunk_username: 'a b'"),
    ({"TRUNK_USERNAME": "acct", "TRUNK_PASSWORD": "x;y"}, "outbound.trunk_password: use 1-128"),
    ({"TRUNK_USERNAME": "acct", "TRUNK_PASSWORD": "x\n[y]"}, "outbound.trunk_password: use"),
    ({"TRUNK_MATCH": "10.0.0.1/40"}, "outbound.trunk_match[0]: '10.0.0.1/40' is not an "
     "address/prefix network"),
    ({"TRUNK_MATCH": "10.0.0.1,bad_host"}, "outbound.trunk_match[1]: 'bad_host' is not"),
    ({"CALLER_ID": "551130000000"}, "outbound.caller_id: '551130000000' is not an E.164"),
    ({"CALLER_ID": "+55113000;0"}, "outbound.caller_id: "),
    ({"CALLER_ID": "+551130000000\n"}, "outbound.caller_id: "),
    ({"DIAL_TIMEOUT": "2"}, "outbound.dial_timeout: 2 is not 5-300 seconds"),
    ({"DIAL_TIMEOUT": "soon"}, "outbound.dial_timeout: expected a whole number"),
    ({"EXTENSION_PATTERNS": "2XXX,9!"}, "outbound.extension_patterns[1]: '9!': '!' is not a "
     "digit"),
    ({"EXTENSION_PATTERNS": "2X),Dial(x"}, "outbound.extension_patterns[0]: '2X)': ')' is not"),
    ({"EXTENSION_PATTERNS": "."}, "outbound.extension_patterns[0]: '.': needs at least one"),
    ({"EXTENSION_PATTERNS": "3[5-1]"}, "outbound.extension_patterns[0]: '3[5-1]': the range"),
    ({"EXTENSION_PATTERNS": "2" * 21}, "outbound.extension_patterns[0]: '2222"),
    ({"ALLOWED_PREFIXES": "55"}, "outbound.allowed_prefixes[0]: '55' is not '+' and a country"),
    ({"ALLOWED_PREFIXES": "+55,+"}, "outbound.allowed_prefixes[1]: '+' is not"),
    ({"ALLOWED_PREFIXES": "+0"}, "outbound.allowed_prefixes[0]: '+0' is not"),
    ({"ALLOWED_PREFIXES": "+55\n1"}, "outbound.allowed_prefixes[0]: "),
    ({"ALLOWED_PREFIXES": "+55&PJSIP/x"}, "outbound.allowed_prefixes[0]: "),
    ({"RING": "1"}, "outbound.ring: unknown setting"),
])
def test_a_wrong_outbound_value_is_refused_with_the_key(tmp_path, env, says):
    variables = {f"CALLCENTER_OUTBOUND__{key}": value for key, value in env.items()}
    with pytest.raises(ConfigError) as error:
        settings_from(tmp_path, **variables)
    assert says in str(error.value)


@pytest.mark.parametrize(("pattern", "matching", "not_matching"), [
    ("2001", ["2001"], ["200", "20011", "2002"]),
    ("2XXX", ["2000", "2999"], ["3000", "200", "20000"]),
    ("_2xxx", ["2123"], ["212"]),
    ("NXX", ["200", "999"], ["100", "099"]),
    ("Z0", ["10", "90"], ["00"]),
    ("3[0-4]X", ["300", "349"], ["350", "30"]),
    ("3[05-7]", ["30", "36"], ["34", "38"]),
    ("9.", ["91", "9123456"], ["9", "8123"]),
])
def test_extension_patterns_read_like_asterisks_and_match_only_digits(pattern, matching,
                                                                      not_matching):
    regex = extension_pattern_regex(pattern)
    assert [n for n in matching if regex.fullmatch(n)] == matching
    assert [n for n in not_matching if regex.fullmatch(n)] == []
    assert not extension_pattern_regex("9.").fullmatch("9+1")


@pytest.mark.parametrize(("value", "parsed"), [
    ("203.0.113.5", ("203.0.113.5", None)),
    ("203.0.113.5:5080", ("203.0.113.5", 5080)),
    ("sip.carrier.example", ("sip.carrier.example", None)),
    ("[2001:db8::1]:5060", ("2001:db8::1", 5060)),
    ("[2001:db8::1]", ("2001:db8::1", None)),
    ("2001:db8::1", ("2001:db8::1", None)),
])
def test_a_trunk_host_is_an_address_or_name_with_an_optional_port(value, parsed):
    assert split_host_port(value) == parsed


ACD_TOML = """
[acd]
pause_reasons = ["break", "lunch"]

[[queues]]
name = "support"
strategy = "skills"
tier_delays = [30, 90]
relax_every = 20
manual_wrap_up = true
announce_every = 30
overflow_to = "operator"

[[queues]]
name = "operator"
max_length = 5

[[agents]]
id = "ana"
name = "Ana"
queues = ["support", "operator:0"]
skills = ["billing:7", "spanish:10"]

[[agents]]
id = "rui"
name = "Rui"
queues = ["support:2"]
"""


def test_queues_rules_agents_tiers_and_skills_come_from_the_file(tmp_path):
    s = settings_from(tmp_path, ACD_TOML)
    assert s.acd.pause_reasons == ("break", "lunch")
    support = s.queue("support")
    assert support is not None
    assert (support.strategy, support.tier_delays, support.relax_every) == ("skills", (30, 90), 20)
    assert (support.manual_wrap_up, support.announce_every, support.overflow_to) == (
        True, 30, "operator")
    assert s.queue("operator").max_length == 5  # type: ignore[union-attr]
    ana, rui = s.agents
    assert ana.memberships == {"support": 0, "operator": 0}
    assert ana.skill_levels == {"billing": 7, "spanish": 10}
    assert rui.memberships == {"support": 2}
    assert rui.skill_levels == {}


@pytest.mark.parametrize(("change", "says"), [
    (('strategy = "skills"', 'strategy = "fastest"'), "queues[0].strategy: 'fastest' is not"),
    (("tier_delays = [30, 90]", "tier_delays = [90, 30]"), "queues[0].tier_delays"),
    (("tier_delays = [30, 90]", "tier_delays = [30, 'x']"), "queues[0].tier_delays[1]"),
    (('overflow_to = "operator"', 'overflow_to = "billing"'), "unknown queue 'billing'"),
    (("max_length = 5", 'overflow_to = "support"'),
     "overflow loops: support -> operator -> support"),
    (("announce_every = 30", "announce_every = 5"), "announce_every: 5 s is too often"),
    (('"support:2"', '"support:3"'), "agents[1].queues: 'support:3': queue 'support' has 2"),
    (('"support:2"', '"support:x"'), "agents[1].queues: 'support:x' is not a queue name"),
    (('"spanish:10"', '"spanish:11"'), "agents[0].skills: 'spanish:11' is not skill:level"),
    (('"spanish:10"', '"billing:3"'), "agents[0].skills: a skill is listed twice"),
    (('"operator:0"', '"support:1"'), "agents[0].queues: a queue is listed twice"),
    (('["break", "lunch"]', '["break", "Lunch!"]'), "acd.pause_reasons[1]: 'Lunch!'"),
    (('["break", "lunch"]', '[]'), "acd.pause_reasons: give 1 to 9 reasons"),
])
def test_a_wrong_acd_setting_is_refused_with_the_key(tmp_path, change, says):
    old, new = change
    assert old in ACD_TOML
    with pytest.raises(ConfigError, match=says.replace("[", r"\[").replace("]", r"\]")):
        settings_from(tmp_path, ACD_TOML.replace(old, new, 1))
