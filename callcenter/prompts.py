"""IVR prompts: text in ``ivr_prompts/prompts.toml`` turned into Asterisk-ready wav files.

Each prompt becomes ``<prompts_dir>/<language>/<name>.wav``: 8 kHz, mono, 16-bit PCM (what
Asterisk's format_wav plays without transcoding to telephone audio), spoken by espeak-ng and
resampled by sox. A sidecar ``<name>.wav.sha256`` holds a hash of the text and of the way it
was made, so a wav is rebuilt only when its text (or the recipe) changes. A wav without a
sidecar is taken as a human recording put there by hand and is never overwritten.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

PROMPTS_FILE = "prompts.toml"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
LANGUAGE_RE = re.compile(r"^[a-z]{2}(_[A-Z]{2})?$")
SAMPLE_RATE = 8000
# Part of the hash: changing the recipe rebuilds every prompt.
RECIPE = f"espeak-ng -s 150 | sox -r {SAMPLE_RATE} -c 1 -b 16 norm -3"
ESPEAK_VOICES = {"en": "en-us"}


class PromptError(ValueError):
    """The prompts file or a tool is wrong; the message says what and where."""


def load_prompt_texts(prompts_dir: Path, language: str = "en") -> dict[str, str]:
    """name → text for one language, from prompts.toml (top-level keys are English)."""
    path = prompts_dir / PROMPTS_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PromptError(f"{path}: prompts file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise PromptError(f"{path}: not valid TOML: {exc}") from None
    if not LANGUAGE_RE.match(language):
        raise PromptError(f"{path}: {language!r} is not a language code like 'en' or 'pt_BR'")
    if language == "en":
        table = {k: v for k, v in data.items() if not isinstance(v, dict)}
        where = ""
    else:
        table = data.get(language)
        if not isinstance(table, dict):
            raise PromptError(f"{path}: no [{language}] table of prompts")
        where = f"{language}."
    texts = {}
    for name, text in table.items():
        if not NAME_RE.match(name):
            raise PromptError(f"{path}: {where}{name}: a prompt name is lowercase letters, "
                              "digits, '-' or '_'")
        if not isinstance(text, str) or not text.strip():
            raise PromptError(f"{path}: {where}{name}: expected the text to speak")
        texts[name] = text.strip()
    return texts


def _fingerprint(text: str, voice: str) -> str:
    return hashlib.sha256(f"{RECIPE}\n{voice}\n{text}".encode()).hexdigest()


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise PromptError(f"{name} is not installed; it is needed to build prompts "
                          "(apt-get install espeak-ng sox)")
    return found


def _synthesize(text: str, voice: str, target: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        spoken = Path(scratch) / "spoken.wav"
        converted = Path(scratch) / "converted.wav"
        # The text goes in on stdin so that nothing in it can be read as an option.
        subprocess.run([_tool("espeak-ng"), "-v", voice, "-s", "150", "--stdin", "-w",
                        str(spoken)], input=text.encode(), capture_output=True, check=True)
        subprocess.run([_tool("sox"), str(spoken), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16",
                        "-e", "signed-integer", str(converted), "norm", "-3"],
                       capture_output=True, check=True)
        shutil.move(converted, target)


def build_prompts(prompts_dir: Path, language: str = "en") -> list[Path]:
    """Build missing or outdated prompt wavs; return the paths built now (empty: all cached)."""
    prompts_dir = Path(prompts_dir)
    texts = load_prompt_texts(prompts_dir, language)
    voice = ESPEAK_VOICES.get(language, language.replace("_", "-").lower())
    out_dir = prompts_dir / language
    out_dir.mkdir(parents=True, exist_ok=True)
    built = []
    for name, text in texts.items():
        wav = out_dir / f"{name}.wav"
        sidecar = out_dir / f"{name}.wav.sha256"
        fingerprint = _fingerprint(text, voice)
        if wav.exists() and not sidecar.exists():
            continue  # a recorded prompt put there by hand
        if wav.exists() and sidecar.read_text().strip() == fingerprint:
            continue
        try:
            _synthesize(text, voice, wav)
        except subprocess.CalledProcessError as exc:
            raise PromptError(f"prompt {name!r}: {exc.cmd[0]} failed: "
                              f"{exc.stderr.decode(errors='replace').strip()}") from None
        sidecar.write_text(fingerprint + "\n")
        built.append(wav)
    return built
