"""Flows served from files: hot reload keeps the last good version; `callcenter ivr` checks."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from callcenter.cli import main
from callcenter.config import REPO_ROOT
from callcenter.core.flows import FlowError
from callcenter.features.ivr.flows import FlowLibrary

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


# --------------------------------------------------------------------------- the last good copy


def keeping(flows: Path, data: Path, queues: tuple[str, ...] = ("sales", "support", "operator"),
            ) -> FlowLibrary:
    return FlowLibrary(flows, REPO_ROOT / "ivr_prompts", language="en", known_queues=queues,
                       last_good_dir=data / "flows-last-good")


BROKEN = DEMO.replace("{queue: support}", "{queue: nowhere}")


def test_every_version_that_validates_is_kept_on_disk(flows, tmp_path):
    served = keeping(flows, tmp_path)
    served.load("main")
    copy = tmp_path / "flows-last-good" / "main.yaml"
    assert copy.read_text() == DEMO
    edit(flows / "main.yaml", DEMO.replace("timeout: 5 ", "timeout: 7 "))
    assert served.reload().reloaded == ("main",)
    assert "timeout: 7 " in copy.read_text()
    edit(flows / "main.yaml", BROKEN)
    assert served.reload().refused
    assert "timeout: 7 " in copy.read_text()  # a broken version is never kept
    assert [p.name for p in copy.parent.iterdir()] == ["main.yaml"]  # no temporary left


def test_a_flow_broken_at_start_serves_its_last_good_version_loudly(flows, tmp_path, caplog):
    keeping(flows, tmp_path).load("main")  # an earlier run
    edit(flows / "main.yaml", BROKEN)
    served = keeping(flows, tmp_path)  # the next start
    flow = served.load("main")
    assert flow.nodes["main_menu"].options["2"].queue == "support"  # the good version
    status = served.status("main")
    assert status.from_last_good
    assert "unknown queue 'nowhere'" in str(status.problems)
    assert status.describe().startswith("main.yaml (LAST GOOD VERSION from 20")
    assert status.describe().endswith(" UTC: the file has errors)")
    [record] = [r for r in caplog.records if "LAST GOOD VERSION" in r.getMessage()]
    assert record.levelname == "ERROR"
    assert f"{flows / 'main.yaml'}:" in record.getMessage()  # file:line:column of each problem
    assert "unknown queue 'nowhere'" in record.getMessage()
    assert served.reload() == served.reload()  # the broken file is not re-read at each poll


def test_fixing_the_file_serves_it_again(flows, tmp_path):
    keeping(flows, tmp_path).load("main")
    edit(flows / "main.yaml", BROKEN)
    served = keeping(flows, tmp_path)
    served.load("main")
    edit(flows / "main.yaml", DEMO.replace("timeout: 5 ", "timeout: 7 "))
    assert served.reload().reloaded == ("main",)
    assert served.get("main").nodes["main_menu"].timeout == 7
    assert not served.status("main").from_last_good
    assert served.status("main").describe() == "main.yaml"


def test_without_a_last_good_copy_a_broken_flow_still_stops_the_start(flows, tmp_path):
    edit(flows / "main.yaml", BROKEN)
    with pytest.raises(FlowError, match="unknown queue 'nowhere'"):
        keeping(flows, tmp_path).load("main")
    with pytest.raises(FlowError):
        library(flows).load("main")  # `callcenter config check`: never a copy


def test_a_last_good_copy_that_no_longer_validates_does_not_serve(flows, tmp_path, caplog):
    keeping(flows, tmp_path).load("main")
    edit(flows / "main.yaml", BROKEN)
    # The settings lost the queue the old version sends 2 to: the copy is no good either.
    with pytest.raises(FlowError, match="unknown queue 'nowhere'"):
        keeping(flows, tmp_path, queues=("sales", "operator")).load("main")
    assert "cannot serve either" in caplog.text


def test_a_deleted_flow_file_serves_its_last_good_version(flows, tmp_path):
    keeping(flows, tmp_path).load("main")
    (flows / "main.yaml").unlink()
    served = keeping(flows, tmp_path)
    assert served.load("main").name == "main"
    assert "cannot read the flow" in str(served.status("main").problems)


def test_the_banner_says_which_flow_is_active(flows, tmp_path):
    from callcenter.cli import softphone_help
    from callcenter.config import load_settings

    settings = load_settings(None)
    keeping(flows, tmp_path).load("main")
    assert "  IVR flow:         main.yaml\n" in softphone_help(
        settings, keeping(flows, tmp_path).status("main"))
    edit(flows / "main.yaml", BROKEN)
    served = keeping(flows, tmp_path)
    served.load("main")
    banner = softphone_help(settings, served.status("main"))
    assert "  IVR flow:         main.yaml (LAST GOOD VERSION from " in banner
    assert f"fix {flows / 'main.yaml'}: the log lists its errors" in banner
