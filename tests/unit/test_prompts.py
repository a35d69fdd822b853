"""IVR prompts built from text with espeak-ng and sox, and kept until their text changes."""

from __future__ import annotations

import os
import shutil
import wave
from pathlib import Path

import pytest

from callcenter.config import REPO_ROOT
from callcenter.prompts import PromptError, build_prompts, load_prompt_texts

if not (shutil.which("espeak-ng") and shutil.which("sox")):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise RuntimeError("CI=true: espeak-ng and sox are needed to build prompts")
    pytest.skip("espeak-ng and sox are not installed", allow_module_level=True)


def write_texts(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prompts.toml").write_text(body)
    return folder


def test_prompts_are_built_as_8khz_mono_16bit_wavs(tmp_path: Path) -> None:
    prompts = write_texts(tmp_path, 'hello = "Hello there."\nbye = "Goodbye."\n')
    built = build_prompts(prompts)
    assert sorted(p.name for p in built) == ["bye.wav", "hello.wav"]
    with wave.open(str(prompts / "en" / "hello.wav")) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
        assert audio.getnframes() > 4000  # more than half a second of speech


def test_only_missing_or_changed_prompts_are_rebuilt(tmp_path: Path) -> None:
    prompts = write_texts(tmp_path, 'hello = "Hello there."\nbye = "Goodbye."\n')
    build_prompts(prompts)
    assert build_prompts(prompts) == []
    write_texts(tmp_path, 'hello = "Hello again."\nbye = "Goodbye."\n')
    assert build_prompts(prompts) == [prompts / "en" / "hello.wav"]
    (prompts / "en" / "bye.wav").unlink()
    assert build_prompts(prompts) == [prompts / "en" / "bye.wav"]


def test_a_recorded_prompt_without_a_sidecar_is_never_overwritten(tmp_path: Path) -> None:
    prompts = write_texts(tmp_path, 'hello = "Hello there."\n')
    (prompts / "en").mkdir()
    (prompts / "en" / "hello.wav").write_bytes(b"a human recording")
    assert build_prompts(prompts) == []
    assert (prompts / "en" / "hello.wav").read_bytes() == b"a human recording"


def test_another_language_comes_from_its_own_table(tmp_path: Path) -> None:
    prompts = write_texts(tmp_path, 'hello = "Hello."\n[fr]\nhello = "Bonjour."\n')
    assert load_prompt_texts(prompts, "fr") == {"hello": "Bonjour."}
    assert load_prompt_texts(prompts, "en") == {"hello": "Hello."}
    assert build_prompts(prompts, "fr") == [prompts / "fr" / "hello.wav"]
    with pytest.raises(PromptError, match=r"no \[de\] table"):
        load_prompt_texts(prompts, "de")


@pytest.mark.parametrize(("body", "error"), [
    ('Hello = "Hi."\n', "Hello: a prompt name is lowercase"),
    ('hello = ""\n', "hello: expected the text to speak"),
    ("hello = \n", "not valid TOML"),
])
def test_a_bad_prompts_file_says_what_and_where(tmp_path: Path, body: str, error: str) -> None:
    prompts = write_texts(tmp_path, body)
    with pytest.raises(PromptError, match=error) as caught:
        build_prompts(prompts)
    assert str(prompts / "prompts.toml") in str(caught.value)


def test_the_repositorys_prompts_match_their_texts(tmp_path: Path) -> None:
    copy = shutil.copytree(REPO_ROOT / "ivr_prompts", tmp_path / "ivr_prompts")
    assert build_prompts(copy) == [], "run build_prompts(Path('ivr_prompts')) and commit"
    names = set(load_prompt_texts(copy))
    assert {"welcome", "main-menu", "invalid", "no-input", "please-hold", "sorry-no-agent",
            "sorry-fallback", "goodbye"} <= names
