"""Flows served from files: hot reload keeps the last good version; `callcenter ivr` checks."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from callcenter.cli import main
from callcenter.config import REPO_ROOT
from callcenter.core.flowfile import FlowError
from callcenter.service.flows import FlowLibrary

DEMO = (REPO_ROOT / "dialplans" / "main.yaml").read_text()


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    folder = tmp_path / "dialplans"
    shutil.copytree(REPO_ROOT / "dialplans", folder)  # main and the flows it hands over to
    shutil.rmtree(folder / "examples")
    return folder


def library(flows: Path) -> FlowLibrary:
    return FlowLibrary(flows, REPO_ROOT / "ivr_prompts", language="en",
                       known_queues=["sales", "support", "operator"])


def edit(path: Path, text: str) -> None:
    """Write and move the mtime on, as an editor saving a second later would."""
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_a_changed_valid_flow_replaces_the_old_one_for_new_calls_only(flows):
    served = library(flows)
    before = served.get("main")
    edit(flows / "main.yaml", DEMO.replace("timeout: 5 ", "timeout: 7 "))
    report = served.reload()
    assert report.reloaded == ("main",) and report.refused == ()
    after = served.get("main")
    assert after.nodes["main_menu"].timeout == 7
    assert before.nodes["main_menu"].timeout == 5  # a call holding it is unaffected


def test_a_broken_edit_is_refused_once_and_the_last_good_version_keeps_serving(flows, caplog):
    served = library(flows)
    good = served.get("main")
    edit(flows / "main.yaml", DEMO.replace("{queue: support}", "{queue: nowhere}"))
    report = served.reload()
    assert report.reloaded == ()
    [error] = report.refused
    assert "main.yaml:" in str(error) and "unknown queue 'nowhere'" in str(error)
    assert served.get("main") is good
    assert "last good version keeps serving" in caplog.text
    assert served.reload() == served.reload()  # unchanged file: not re-read, not re-logged
    assert served.reload().refused == ()


def test_an_unchanged_file_is_not_read_again_unless_asked(flows):
    served = library(flows)
    served.get("main")
    assert served.reload().reloaded == ()
    served.forget_seen()
    assert served.reload().reloaded == ("main",)


def test_a_file_that_is_not_utf8_is_a_clear_error(flows):
    (flows / "main.yaml").write_bytes(b"name: m\xe9n\xff\n")
    with pytest.raises(FlowError, match=r"main\.yaml:1:1: cannot read the flow: not UTF-8"):
        library(flows).get("main")


def test_ivr_check_lists_every_problem_and_fails(flows, tmp_path, monkeypatch, capsys):
    shutil.copy(flows / "main.yaml", flows / "copy.yaml")
    (flows / "broken.yaml").write_text("name: broken\nstart: nowhere\nnodes: {}\n")
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(tmp_path / "data"))
    assert main(["ivr", "check", str(flows)]) == 1
    out, err = capsys.readouterr()
    assert "copy.yaml: ok" in out and "main.yaml: ok" in out
    assert f"{flows / 'broken.yaml'}:" in err
    assert "1 of 5 flow file(s) have errors" in err
    assert main(["ivr", "check", str(flows / "main.yaml")]) == 0


def test_ivr_reload_without_a_running_service_says_so(flows, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CALLCENTER_IVR__DIALPLANS_DIR", str(flows))
    assert main(["ivr", "reload"]) == 1
    assert "the service is not running" in capsys.readouterr().err
