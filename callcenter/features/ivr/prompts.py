"""IVR prompts: text in ``ivr_prompts/prompts.toml`` turned into Asterisk-ready wav files.

Each prompt becomes ``<prompts_dir>/<language>/<name>.wav``: 8 kHz, mono, 16-bit PCM (what
Asterisk's format_wav plays without transcoding to telephone audio), spoken by espeak-ng and
resampled by sox. A sidecar ``<name>.wav.sha256`` holds a hash of the text and of the way it
was made, so a wav is rebuilt only when its text (or the recipe) changes. A wav without a
sidecar is taken as a human recording put there by hand and is never overwritten.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

from callcenter.core.flows.names import LANGUAGE_RE
from callcenter.core.identifiers import BUILT_PROMPT_NAME

PROMPTS_FILE = "prompts.toml"
# The names of the prompts built here follow BUILT_PROMPT_NAME (core/identifiers.py), which
# is stricter than what a flow may play (PROMPT_NAME): the comment there says why.
NAME_WORDING = f"a prompt name is {BUILT_PROMPT_NAME.wording}"
SAMPLE_RATE = 8000
# Part of the hash: changing the recipe rebuilds every prompt.
RECIPE = f"espeak-ng -s 150 | sox -r {SAMPLE_RATE} -c 1 -b 16 norm -3"
ESPEAK_VOICES = {"en": "en-us", "pt_BR": "pt-br"}


class PromptError(ValueError):
    """The prompts file or a tool is wrong; the message says what and where."""


def load_prompt_texts(prompts_dir: Path, language: str = "en") -> dict[str, str]:
    """name → text for one language, from prompts.toml (top-level keys are English)."""
    path = prompts_dir / PROMPTS_FILE
    data = _read_prompts_file(path)
    if not LANGUAGE_RE.fullmatch(language):
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
        if not BUILT_PROMPT_NAME.fullmatch(name):
            raise PromptError(f"{path}: {where}{name}: {NAME_WORDING}")
        if not isinstance(text, str) or not text.strip():
            raise PromptError(f"{path}: {where}{name}: expected the text to speak")
        texts[name] = text.strip()
    return texts


def prompt_languages(prompts_dir: Path) -> list[str]:
    """The languages prompts.toml has texts for: English (its top level) and each table."""
    data = _read_prompts_file(prompts_dir / PROMPTS_FILE)
    return ["en", *sorted(k for k, v in data.items() if isinstance(v, dict))]


def _read_prompts_file(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PromptError(f"{path}: prompts file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise PromptError(f"{path}: not valid TOML: {exc}") from None


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


# --------------------------------------------------------------------------- recordings

SOURCES_FOLDER = "sources"  # <prompts_dir>/<language>/sources/<name>.<any audio format>
SILENCE_DBFS = -45.0  # a prompt whose loudest moment is quieter than this says nothing


def convert_recordings(prompts_dir: Path, language: str = "en") -> list[Path]:
    """Convert recordings in any format ffmpeg reads (wav, mp3, ogg, …) from
    ``<language>/sources/`` into ``<language>/<name>.wav`` at 8 kHz mono 16-bit.

    A converted prompt has no sidecar, so it is never overwritten by a spoken one; it is
    converted again only when its source is newer. Returns the prompts converted now.
    """
    from pydub import AudioSegment
    from pydub.exceptions import CouldntDecodeError

    out_dir = Path(prompts_dir) / language
    sources = out_dir / SOURCES_FOLDER
    if not sources.is_dir():
        return []
    converted = []
    for source in sorted(p for p in sources.iterdir() if p.is_file()):
        name = source.stem
        if not BUILT_PROMPT_NAME.fullmatch(name):
            raise PromptError(f"{source}: {NAME_WORDING}")
        target = out_dir / f"{name}.wav"
        if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
            continue
        try:
            audio = AudioSegment.from_file(source)
        except (CouldntDecodeError, IndexError, OSError) as exc:
            raise PromptError(f"{source}: not an audio file ffmpeg can read ({exc})") from None
        audio = audio.set_frame_rate(SAMPLE_RATE).set_channels(1).set_sample_width(2)
        scratch = target.with_suffix(".tmp.wav")
        audio.export(scratch, format="wav")
        scratch.replace(target)
        (out_dir / f"{name}.wav.sha256").unlink(missing_ok=True)  # a recording now
        converted.append(target)
    return converted


def silent_prompts(prompts_dir: Path, language: str = "en") -> list[str]:
    """Prompts whose audio is silence (or close to it): callers would hear nothing."""
    from pydub import AudioSegment

    silent = []
    for wav in sorted((Path(prompts_dir) / language).glob("*.wav")):
        audio = AudioSegment.from_file(wav)
        if len(audio) == 0 or audio.max_dBFS < SILENCE_DBFS:
            silent.append(wav.stem)
    return silent


def missing_prompts(prompts_dir: Path, language: str, needed: set[str]) -> list[str]:
    """Prompts the flows use that exist neither as a wav nor as text to speak."""
    out_dir = Path(prompts_dir) / language
    try:
        texts = load_prompt_texts(Path(prompts_dir), language)
    except PromptError:
        texts = {}
    return sorted(n for n in needed if n not in texts and not (out_dir / f"{n}.wav").exists())
