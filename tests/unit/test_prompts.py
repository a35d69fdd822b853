"""IVR prompts built from text with espeak-ng and sox, and kept until their text changes."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import pytest

from callcenter.config import REPO_ROOT
from callcenter.features.ivr.prompts import (
    PromptError,
    build_prompts,
    load_prompt_texts,
    prompt_languages,
)
from tests.support.real_parts import unavailable


@pytest.fixture(autouse=True)
def speech_tools() -> None:
    """espeak-ng and sox make the prompts: missing, these tests skip, or fail under CI."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        unavailable("espeak-ng and sox are not installed (apt-get install espeak-ng sox)")


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
    for language in prompt_languages(copy):
        assert build_prompts(copy, language) == [], (
            f"run `callcenter prompts build --language {language}` and commit")
    names = set(load_prompt_texts(copy))
    assert {"welcome", "main-menu", "invalid", "no-input", "please-hold", "sorry-no-agent",
            "sorry-fallback", "goodbye"} <= names


def test_recordings_in_any_format_become_8khz_mono_prompts_and_stay_recordings(
        tmp_path: Path) -> None:
    from pydub.generators import Sine

    sources = tmp_path / "en" / "sources"
    sources.mkdir(parents=True)
    tone = Sine(440).to_audio_segment(duration=800).set_frame_rate(44100).set_channels(2)
    tone.export(sources / "hold-music.mp3", format="mp3")
    tone.export(sources / "welcome.wav", format="wav")
    write_texts(tmp_path, 'welcome = "Spoken welcome."\n')
    from callcenter.features.ivr.prompts import convert_recordings

    converted = convert_recordings(tmp_path)
    assert sorted(p.name for p in converted) == ["hold-music.wav", "welcome.wav"]
    for name in ("hold-music", "welcome"):
        with wave.open(str(tmp_path / "en" / f"{name}.wav")) as audio:
            assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (
                8000, 1, 2)
            assert 0.7 < audio.getnframes() / 8000 < 0.9
    assert build_prompts(tmp_path) == []  # the recording wins over the text
    assert convert_recordings(tmp_path) == []  # unchanged sources are not converted again


def test_a_file_that_is_not_audio_is_named_in_the_error(tmp_path: Path) -> None:
    from callcenter.features.ivr.prompts import convert_recordings

    sources = tmp_path / "en" / "sources"
    sources.mkdir(parents=True)
    (sources / "broken.mp3").write_text("not audio at all")
    with pytest.raises(PromptError, match=r"broken\.mp3: not an audio file"):
        convert_recordings(tmp_path)


def test_silent_and_missing_prompts_are_reported(tmp_path: Path) -> None:
    from pydub import AudioSegment

    from callcenter.features.ivr.prompts import missing_prompts, silent_prompts

    prompts = write_texts(tmp_path, 'hello = "Hello there."\n')
    build_prompts(prompts)
    AudioSegment.silent(duration=1000, frame_rate=8000).export(
        prompts / "en" / "quiet.wav", format="wav")
    assert silent_prompts(prompts) == ["quiet"]
    assert missing_prompts(prompts, "en", {"hello", "quiet", "nowhere"}) == ["nowhere"]


def test_the_command_builds_every_language_and_names_prompts_missing_in_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from callcenter.cli import main
    from callcenter.features.ivr.sessions import SERVICE_PROMPTS

    service = "".join(f'{name} = "{name}."\n' for name in SERVICE_PROMPTS)
    prompts = write_texts(tmp_path / "prompts", f'hello = "Hello."\nmenu = "Press 1."\n{service}'
                          f'[pt_BR]\nhello = "Olá."\n{service}')
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text(
        "name: main\nlanguages: [pt_BR, en]\nstart: a\nnodes:\n"
        "  a: {type: play, prompt: hello, next: {node: b}}\n"
        "  b: {type: menu, prompt: menu, options: {'1': {hangup: true}}, "
        "on_exhausted: {hangup: true}}\n")
    config = tmp_path / "callcenter.toml"
    config.write_text(f'[ivr]\ndialplans_dir = "{flows}"\nprompts_dir = "{prompts}"\n')
    assert main(["--config", str(config), "prompts", "build"]) == 1
    out, err = capsys.readouterr()
    assert f"spoke {prompts / 'pt_BR' / 'hello.wav'}" in out
    assert f"spoke {prompts / 'en' / 'menu.wav'}" in out
    assert "missing: menu in pt_BR" in err  # no Portuguese text or recording for it
    assert "missing: menu in en" not in err
