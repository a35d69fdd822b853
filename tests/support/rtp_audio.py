"""Voice-like G.711 audio for SIPp's ``play_pcap_audio``: what a called person or an answering
machine says, as a pcap of PCMU RTP (the framing of tests/support/rtp_dtmf.py).

An audio is a list of segments, each 20 ms packets long:

    pcap = audio_pcap((Silence(400), Voice(700, syllables=(1,)), Silence(10_000)), "human")
    # <exec play_pcap_audio="{pcap}"/>

Asterisk's AMD() (app_amd) and its silence detector judge audio 20 ms frame by frame: a frame
whose mean absolute linear amplitude is below ``silence_threshold`` (256 by default) is
silence, and a word is at least ``min_word_length`` (100 ms) of non-silent frames, words being
apart by at least ``between_words_silence`` (50 ms) of silence. So:

- ``Voice``: a voiced sound (a fundamental near 110-220 Hz with its harmonics, as a person's
  voice has) whose loudness follows syllables. Within one ``Voice`` the loudness never falls
  below ``FLOOR`` of its peak, so every frame is far above the threshold (mean amplitude
  above 1000): one ``Voice`` is one word to AMD, however many syllables it has;
- ``Silence``: PCMU 0xFF (linear 0), the digital silence a phone sends while nobody talks;
- ``Tone``: a pure tone (a voicemail beep).

Words are separated by ``Silence`` segments of 100 ms or more (two AMD silence frames beyond
``between_words_silence``). The whole audio is one file: SIPp cuts a playing pcap short when
the next one starts, and one file keeps the RTP sequence numbers and timestamps growing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.rtp_dtmf import (
    CLOCK_RATE,
    DEFAULT_FOLDER,
    FIRST_SEQUENCE,
    FIRST_TIMESTAMP,
    PACKET_MS,
    RtpAudioPacket,
    _mu_law,
    write_pcap,
)

SAMPLES_PER_PACKET = CLOCK_RATE * PACKET_MS // 1000
PCMU_SILENCE = 0xFF  # mu-law of linear 0
PEAK = 11_000  # of 32767: a loud but unclipped voice (-9 dBFS)
FLOOR = 0.35  # the quietest point of a word, as a share of its peak loudness


@dataclass(frozen=True)
class Silence:
    ms: int


@dataclass(frozen=True)
class Voice:
    """One word: ``len(syllables)`` syllables, each with its relative loudness (0.5-1), and
    a pitch gliding from ``pitch_hz`` down by a fifth over the word (as a statement does)."""

    ms: int
    syllables: tuple[float, ...] = (1.0,)
    pitch_hz: float = 180.0


@dataclass(frozen=True)
class Tone:
    ms: int
    hz: float = 1000.0
    loudness: float = 0.6


Segment = Silence | Voice | Tone


def _check(segment: Segment) -> None:
    if segment.ms <= 0 or segment.ms % PACKET_MS:
        raise ValueError(f"{segment}: a length in ms, a positive multiple of {PACKET_MS}")
    if isinstance(segment, Voice):
        if not segment.syllables or not all(0.5 <= s <= 1.0 for s in segment.syllables):
            raise ValueError(f"{segment}: each syllable's loudness within 0.5-1")
        if not 60 <= segment.pitch_hz <= 400:
            raise ValueError(f"{segment}: a voice's pitch is within 60-400 Hz")


def _voice_samples(voice: Voice) -> list[int]:
    count = voice.ms * CLOCK_RATE // 1000
    syllable_samples = count / len(voice.syllables)
    samples, phase = [], 0.0
    for n in range(count):
        progress = n / count
        pitch = voice.pitch_hz * (1 - progress / 3)  # a falling intonation
        phase += 2 * math.pi * pitch / CLOCK_RATE
        # Harmonics falling off like a voice's (1, 1/2, 1/3, 1/4): a buzz, not a pure tone.
        wave = sum(math.sin(k * phase) / k for k in range(1, 5)) / 1.6
        syllable = min(int(n / syllable_samples), len(voice.syllables) - 1)
        within = (n - syllable * syllable_samples) / syllable_samples
        # Each syllable swells and fades, but the word never goes quiet (FLOOR).
        envelope = FLOOR + (1 - FLOOR) * math.sin(math.pi * within)
        samples.append(int(PEAK * voice.syllables[syllable] * envelope * wave))
    return samples


def _tone_samples(tone: Tone) -> list[int]:
    count = tone.ms * CLOCK_RATE // 1000
    return [int(32767 * tone.loudness * math.sin(2 * math.pi * tone.hz * n / CLOCK_RATE))
            for n in range(count)]


def pcmu(segments: Sequence[Segment]) -> bytes:
    """The audio as G.711 mu-law bytes, 8000 a second."""
    out = bytearray()
    for segment in segments:
        _check(segment)
        if isinstance(segment, Silence):
            out += bytes([PCMU_SILENCE]) * (segment.ms * CLOCK_RATE // 1000)
        elif isinstance(segment, Voice):
            out += bytes(_mu_law(s) for s in _voice_samples(segment))
        else:
            out += bytes(_mu_law(s) for s in _tone_samples(segment))
    return bytes(out)


def audio_packets(segments: Sequence[Segment]) -> list[RtpAudioPacket]:
    """The audio as RTP packets of 20 ms, sent every 20 ms from the start of the file."""
    audio = pcmu(segments)
    if not audio:
        raise ValueError("no audio: give at least one segment")
    return [RtpAudioPacket(
        send_at_us=number * PACKET_MS * 1000,
        sequence=(FIRST_SEQUENCE + number) & 0xFFFF,
        timestamp=(FIRST_TIMESTAMP + number * SAMPLES_PER_PACKET) & 0xFFFFFFFF,
        samples=audio[start:start + SAMPLES_PER_PACKET], marker=number == 0)
        for number, start in enumerate(range(0, len(audio), SAMPLES_PER_PACKET))]


def audio_pcap(segments: Sequence[Segment], stem: str, folder: Path | None = None) -> Path:
    """The pcap file of the audio (written once, named by its content)."""
    return write_pcap(audio_packets(segments), folder or DEFAULT_FOLDER, f"audio-{stem}")


def frame_levels(segments: Sequence[Segment]) -> list[float]:
    """The mean absolute linear amplitude of each 20 ms frame, as Asterisk's silence
    detector measures it (what a test of the audio itself compares with 256)."""
    levels = []
    audio = pcmu(segments)
    for start in range(0, len(audio), SAMPLES_PER_PACKET):
        frame = audio[start:start + SAMPLES_PER_PACKET]
        levels.append(sum(abs(mu_law_decode(b)) for b in frame) / len(frame))
    return levels


def mu_law_decode(byte: int) -> int:
    """The linear sample of one G.711 mu-law byte (ITU-T G.711)."""
    byte = ~byte & 0xFF
    exponent, mantissa = (byte >> 4) & 0x07, byte & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -magnitude if byte & 0x80 else magnitude
