"""`callcenter ivr switch`: it sets a switch only where the switch acts (a flow with business
hours, served from the folder the running service reads), and refuses the rest, saying why."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from callcenter.cli import main
from callcenter.config import REPO_ROOT
from callcenter.core.hours import Override
from callcenter.features.ivr.flows import FlowLibrary
from callcenter.features.ivr.switches import (
    SERVICE_NOTE_FILE,
    SWITCHES_FILE,
    FlowSwitches,
    SwitchRefused,
    check_switch,
    forget_running_service,
    note_running_service,
    parse_switch,
    running_service,
)

QUEUES = ("sales", "support", "operator")
NO_HOURS = """name: plain
start: bye
nodes:
  bye: {type: play, prompt: goodbye, next: {hangup: true}}
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    folder = tmp_path / "dialplans"
    shutil.copytree(REPO_ROOT / "dialplans", folder)
    shutil.rmtree(folder / "examples")
    (folder / "plain.yaml").write_text(NO_HOURS)
    return folder


@pytest.fixture
def data(tmp_path: Path, flows: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The service's settings, as an admin's shell holds them."""
    folder = tmp_path / "data"
    monkeypatch.delenv("CALLCENTER_CONFIG", raising=False)
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(folder))
    monkeypatch.setenv("CALLCENTER_IVR__DIALPLANS_DIR", str(flows))
    return folder


def switches_in(data: Path) -> dict[str, str]:
    path = data / SWITCHES_FILE
    return tomllib.loads(path.read_text()) if path.exists() else {}


def switch(*words: str) -> int:
    return main(["ivr", "switch", *words])


def test_the_demo_flow_has_business_hours_open_day_and_night_by_default(data, capsys):
    assert switch("main", "closed") == 0
    out = capsys.readouterr().out
    assert "flow 'main'" in out and "closed whatever its hours say" in out
    assert "business_hours" in out
    assert switches_in(data) == {"main": "force_closed"}
    assert switch("main", "auto") == 0
    assert "always_open" in capsys.readouterr().out  # what its file says: open 24x7
    assert switches_in(data) == {}


def test_a_flow_without_business_hours_is_refused_and_told_what_to_add(data, flows, capsys):
    assert switch("plain", "closed") == 1
    err = capsys.readouterr().err
    assert "refused" in err and "flow 'plain'" in err and str(flows / "plain.yaml") in err
    assert "no business hours" in err and "type: time" in err and "docs/ivr.md" in err
    assert switches_in(data) == {}
    assert switch("selfservice", "open") == 1  # a demo flow without hours, too


def test_an_unknown_flow_is_refused_naming_the_folder_and_its_flows(data, flows, capsys):
    assert switch("mian", "closed") == 1
    err = capsys.readouterr().err
    assert f"no flow 'mian' in {flows}" in err and "main, plain, selfservice" in err
    assert "ivr.dialplans_dir" in err
    assert switch("../main", "closed") == 1
    assert "not a flow name" in capsys.readouterr().err
    assert switches_in(data) == {}


def test_a_flow_file_that_does_not_validate_is_refused_with_its_errors(data, flows, capsys):
    (flows / "main.yaml").write_text((REPO_ROOT / "dialplans" / "main.yaml").read_text()
                                     .replace("open: {node: welcome}", "open: {node: nowhere}"))
    assert switch("main", "closed") == 1
    err = capsys.readouterr().err
    assert "does not validate" in err and f"{flows / 'main.yaml'}:" in err and "nowhere" in err
    assert switches_in(data) == {}


def test_a_flow_file_named_otherwise_inside_is_refused(data, flows, capsys):
    text = (REPO_ROOT / "dialplans" / "main.yaml").read_text()
    (flows / "copy.yaml").write_text(text)  # says `name: main`: calls look up 'main'
    assert switch("copy", "closed") == 1
    assert "names itself 'main'" in capsys.readouterr().err
    assert switches_in(data) == {}


def test_a_word_that_is_not_a_switch_is_refused(data, capsys):
    assert switch("main", "shut") == 2
    assert "'shut' is not a switch: choose one of open, closed, 24x7, auto" in (
        capsys.readouterr().err)
    with pytest.raises(SystemExit):
        switch("main")  # no word at all: argparse's usage
    assert switches_in(data) == {}


def test_auto_clears_a_switch_left_on_a_flow_that_lost_its_hours(data, flows, capsys):
    assert switch("main", "closed") == 0
    (flows / "main.yaml").write_text(NO_HOURS.replace("name: plain", "name: main"))
    assert switch("main", "open") == 1
    assert switch("main", "auto") == 0
    assert switches_in(data) == {}
    assert switch("main", "auto") == 1  # nothing left to clear, and no hours
    capsys.readouterr()


def test_without_a_running_service_the_command_says_where_the_switch_waits(data, capsys):
    assert switch("main", "24x7") == 0
    err = capsys.readouterr().err
    assert f"no service is running on the data folder {data}" in err
    assert "CALLCENTER_DATA_DIR" in err


def test_the_flows_folder_of_the_running_service_is_the_one_checked(data, flows, tmp_path,
                                                                   monkeypatch, capsys):
    # The service runs on this data folder with its own flows folder; the admin's shell
    # names another (here an empty one): the flow is checked where the service serves it.
    note_running_service(data, dialplans_dir=flows, prompts_dir=REPO_ROOT / "ivr_prompts",
                         language="en", queues=QUEUES, agents=())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("CALLCENTER_IVR__DIALPLANS_DIR", str(elsewhere))
    assert switch("main", "closed") == 0
    out = capsys.readouterr().out
    assert f"serves the flows in {flows}" in out and f"pid {os.getpid()}" in out
    assert switches_in(data) == {"main": "force_closed"}
    assert switch("plain", "closed") == 1  # the same rule on the service's flows
    forget_running_service(data)
    assert not (data / SERVICE_NOTE_FILE).exists()
    assert switch("main", "open") == 1  # no service: these settings' folder, empty
    assert "no flow 'main' in" in capsys.readouterr().err


def test_a_note_left_by_a_service_that_is_gone_does_not_count(data, flows):
    note_running_service(data, dialplans_dir=flows, prompts_dir=REPO_ROOT / "ivr_prompts",
                         language="en", queues=QUEUES, agents=())
    assert running_service(data) is not None
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    note = data / SERVICE_NOTE_FILE
    note.write_text(note.read_text().replace(f'"pid": {os.getpid()}',
                                             f'"pid": {gone.stdout.strip()}'))
    assert running_service(data) is None
    note.write_text("{not json")
    assert running_service(data) is None


def test_the_help_says_which_settings_the_switch_needs(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["ivr", "switch", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for needed in ("--config", "CALLCENTER_CONFIG", "CALLCENTER_DATA_DIR", "ivr-switches.toml",
                   "type: time", "ivr-service.json"):
        assert needed in out, needed


def test_the_rule_alone(flows, tmp_path):
    """What any other way of setting the switch (an HTTP route) goes through."""
    library = FlowLibrary(flows, REPO_ROOT / "ivr_prompts", language="en", known_queues=QUEUES)
    target = check_switch(library, "main", Override.FORCE_CLOSED)
    assert target is not None and target.time_nodes == ("business_hours",)
    assert target.file_overrides == (Override.ALWAYS_OPEN,)
    with pytest.raises(SwitchRefused, match="no business hours"):
        check_switch(library, "plain", Override.FORCE_OPEN)
    assert parse_switch("24x7") is Override.ALWAYS_OPEN
    with pytest.raises(SwitchRefused, match="nothing is not a switch"):
        parse_switch("")
    with pytest.raises(ValueError, match="not a flow name"):
        FlowSwitches(tmp_path).set('x = "force_open"\ny', Override.FORCE_OPEN)
