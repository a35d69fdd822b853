"""RFC 4733 DTMF for SIPp callers: pcap files of telephone-event RTP that ``play_pcap_audio``
sends, one file per key press, numbered so that a call's key presses never look alike.

Why not sip-tester's own ``dtmf_2833_<d>.pcap``: they are cuts of one old capture, so each
digit always carries the same RTP timestamp and sequence numbers (``1`` is older than ``0``,
which is older than ``2``...). Asterisk drops a telephone event whose timestamp is not newer
than the last one it finished, so a repeated key, a key "older" than the one before (``4``
then ``3``, or ``0`` after ``3``) or a second entry later in the call was lost.

Here key press number ``index`` of a call, pressed ``at_ms`` after the answer, gets
RTP timestamp ``FIRST_TIMESTAMP + at_ms * 8`` and sequence numbers from
``FIRST_SEQUENCE + index * packets_per_press()``: both always grow within a call.

    path = key_press_pcap("7", index=3, at_ms=2200)   # written once, then reused
    # <exec play_pcap_audio="{path}"/>

Each press: a first packet with the marker bit, one every 20 ms with a growing duration,
then three end packets (E bit, same timestamp and duration; sequence numbers still growing,
as Asterisk's own sender does). The framing (pcap, Ethernet, IPv4, UDP) is what SIPp's
prepare_pcap.c reads: link type Ethernet, IPv4 UDP, whole packets captured. SIPp rewrites
the UDP ports (keeping their offset from the lowest destination port in the file, 0 here)
and the UDP checksum; it sends the RTP as it is, paced by the capture times.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TELEPHONE_EVENT_PAYLOAD_TYPE = 101  # as the caller's SDP offers: a=rtpmap:101 telephone-event
CLOCK_RATE = 8000  # telephone-event/8000
PACKET_MS = 20
TONE_MS = 100  # how long each key is held; Asterisk wants at least 80 ms
END_COPIES = 3  # RFC 4733 2.5.1.4: the final packet goes three times
VOLUME = 10  # -10 dBm0
SSRC = 0x0CA11CE0
FIRST_SEQUENCE = 1000
FIRST_TIMESTAMP = 16_000
EVENT_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11,
               "A": 12, "B": 13, "C": 14, "D": 15}
FILE_NAMES = {"*": "star", "#": "pound"}

# The addresses written into the capture; SIPp sends from its own media address and port
# to the far end's, whatever they are here.
SOURCE = ("127.0.0.1", 6000)
DESTINATION = ("127.0.0.1", 6002)
SOURCE_MAC = bytes.fromhex("020000000001")
DESTINATION_MAC = bytes.fromhex("020000000002")

PCAP_MAGIC = 0xA1B2C3D4  # microsecond timestamps
LINKTYPE_ETHERNET = 1
ETHERTYPE_IPV4 = 0x0800
IPPROTO_UDP = 17
CAPTURE_START_S = 1_700_000_000  # the capture's clock; SIPp only uses differences
DEFAULT_FOLDER = Path(tempfile.gettempdir()) / "callcenter-rtp-dtmf"


@dataclass(frozen=True)
class RtpEventPacket:
    """One RTP packet of an RFC 4733 telephone event, and when it leaves (from the press)."""

    send_at_us: int
    sequence: int
    timestamp: int
    event: int
    duration: int  # samples since the event began
    marker: bool = False
    end: bool = False
    volume: int = VOLUME
    ssrc: int = SSRC
    payload_type: int = TELEPHONE_EVENT_PAYLOAD_TYPE

    def rtp(self) -> bytes:
        """The RTP header (version 2, no padding, extension or CSRC) and the event payload."""
        first = 2 << 6
        second = (0x80 if self.marker else 0) | self.payload_type
        flags = (0x80 if self.end else 0) | self.volume
        return struct.pack("!BBHII", first, second, self.sequence, self.timestamp, self.ssrc) \
            + struct.pack("!BBH", self.event, flags, self.duration)


@dataclass(frozen=True)
class RtpAudioPacket:
    """One RTP packet of G.711 mu-law audio (PCMU, payload type 0), 20 ms of it."""

    send_at_us: int
    sequence: int
    timestamp: int
    samples: bytes
    marker: bool = False
    ssrc: int = SSRC

    def rtp(self) -> bytes:
        second = (0x80 if self.marker else 0) | PCMU_PAYLOAD_TYPE
        return struct.pack("!BBHII", 2 << 6, second, self.sequence, self.timestamp,
                           self.ssrc) + self.samples


PCMU_PAYLOAD_TYPE = 0  # as the caller's SDP offers: a=rtpmap:0 PCMU/8000


def _mu_law(sample: int) -> int:
    """G.711 mu-law of one 16-bit linear sample."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), clip) + bias
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def speech_packets(*, first_sequence: int, at_ms: int, duration_ms: int,
                   ) -> list[RtpAudioPacket]:
    """``duration_ms`` of a voice-like sound (a 200 Hz tone whose loudness rises and falls
    four times a second, never silent long enough for silence detection), every 20 ms."""
    if duration_ms < PACKET_MS or duration_ms % PACKET_MS:
        raise ValueError(f"duration_ms {duration_ms}: a positive multiple of {PACKET_MS}")
    per_packet = CLOCK_RATE * PACKET_MS // 1000
    packets = []
    for number in range(duration_ms // PACKET_MS):
        samples = bytearray()
        for i in range(per_packet):
            t = (number * per_packet + i) / CLOCK_RATE
            loudness = 0.55 + 0.45 * math.sin(2 * math.pi * 4 * t)
            samples.append(_mu_law(int(12000 * loudness * math.sin(2 * math.pi * 200 * t))))
        packets.append(RtpAudioPacket(
            send_at_us=number * PACKET_MS * 1000, sequence=(first_sequence + number) & 0xFFFF,
            timestamp=(FIRST_TIMESTAMP + at_ms * (CLOCK_RATE // 1000)
                       + number * per_packet) & 0xFFFFFFFF,
            samples=bytes(samples), marker=number == 0))
    return packets


def speech_slots(duration_ms: int, tone_ms: int = TONE_MS) -> int:
    """How many key-press sequence ranges a speech of ``duration_ms`` takes up."""
    return -(-(duration_ms // PACKET_MS) // packets_per_press(tone_ms))


def speech_pcap(*, index: int, at_ms: int, duration_ms: int, tone_ms: int = TONE_MS,
                folder: Path | None = None) -> Path:
    """The pcap of a caller speaking for ``duration_ms`` from ``at_ms`` after the answer,
    taking the sequence numbers of key presses ``index`` to ``index + speech_slots() - 1``."""
    packets = speech_packets(first_sequence=FIRST_SEQUENCE + index * packets_per_press(tone_ms),
                             at_ms=at_ms, duration_ms=duration_ms)
    return write_pcap(packets, folder or DEFAULT_FOLDER, f"speech-{index:03d}-{at_ms}ms")


def packets_per_press(tone_ms: int = TONE_MS) -> int:
    return tone_ms // PACKET_MS + END_COPIES


def event_packets(digit: str, *, sequence: int, timestamp: int,
                  tone_ms: int = TONE_MS) -> list[RtpEventPacket]:
    """The packets of one key press: a packet every 20 ms while the key is held, the first
    marked, each with the duration so far; then END_COPIES end packets at ``tone_ms``."""
    if digit not in EVENT_CODES:
        raise ValueError(f"{digit!r} is not a DTMF key (one of {''.join(EVENT_CODES)})")
    if tone_ms < PACKET_MS or tone_ms % PACKET_MS:
        raise ValueError(f"tone_ms {tone_ms}: a positive multiple of {PACKET_MS}")
    samples_per_ms = CLOCK_RATE // 1000
    if tone_ms * samples_per_ms > 0xFFFF:
        raise ValueError(f"tone_ms {tone_ms}: longer than a 16-bit duration can tell")
    event = EVENT_CODES[digit]
    packets = []
    for number in range(tone_ms // PACKET_MS):
        elapsed_ms = number * PACKET_MS
        packets.append(RtpEventPacket(
            send_at_us=elapsed_ms * 1000, sequence=(sequence + number) & 0xFFFF,
            timestamp=timestamp & 0xFFFFFFFF, event=event,
            duration=elapsed_ms * samples_per_ms, marker=number == 0))
    for _ in range(END_COPIES):
        packets.append(RtpEventPacket(
            send_at_us=tone_ms * 1000, sequence=(sequence + len(packets)) & 0xFFFF,
            timestamp=timestamp & 0xFFFFFFFF, event=event,
            duration=tone_ms * samples_per_ms, end=True))
    return packets


def key_press_packets(digit: str, *, index: int, at_ms: int,
                      tone_ms: int = TONE_MS) -> list[RtpEventPacket]:
    """Key press number ``index`` (from 0) of a call, pressed ``at_ms`` after the answer:
    its timestamp follows the call's clock, its sequence numbers follow the earlier presses'.
    Presses must be at least ``tone_ms`` apart for timestamps to keep growing."""
    if index < 0 or at_ms < 0:
        raise ValueError(f"index {index}, at_ms {at_ms}: neither may be negative")
    return event_packets(digit, sequence=FIRST_SEQUENCE + index * packets_per_press(tone_ms),
                         timestamp=FIRST_TIMESTAMP + at_ms * (CLOCK_RATE // 1000),
                         tone_ms=tone_ms)


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(address: str) -> bytes:
    parts = address.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError(f"{address!r} is not an IPv4 address")
    return bytes(int(p) for p in parts)


def ethernet_frame(payload: bytes, *, identification: int,
                   source: tuple[str, int] = SOURCE,
                   destination: tuple[str, int] = DESTINATION) -> bytes:
    """``payload`` in UDP in IPv4 in Ethernet, lengths and checksums filled in."""
    source_ip, destination_ip = _ipv4(source[0]), _ipv4(destination[0])
    udp_length = 8 + len(payload)
    pseudo_header = source_ip + destination_ip + struct.pack("!BBH", 0, IPPROTO_UDP, udp_length)
    udp_header = struct.pack("!HHHH", source[1], destination[1], udp_length, 0)
    udp_checksum = _checksum(pseudo_header + udp_header + payload) or 0xFFFF
    udp = struct.pack("!HHHH", source[1], destination[1], udp_length, udp_checksum) + payload
    ip_header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_length, identification & 0xFFFF,
                            0x4000, 64, IPPROTO_UDP, 0, source_ip, destination_ip)  # DF set
    ip_header = ip_header[:10] + struct.pack("!H", _checksum(ip_header)) + ip_header[12:]
    return DESTINATION_MAC + SOURCE_MAC + struct.pack("!H", ETHERTYPE_IPV4) + ip_header + udp


def pcap_bytes(packets: Sequence[RtpEventPacket | RtpAudioPacket]) -> bytes:
    """A classic pcap file (little endian, microseconds, Ethernet) holding ``packets``."""
    if not packets:
        raise ValueError("a pcap for SIPp needs at least one packet")
    parts = [struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET)]
    for number, packet in enumerate(packets):
        frame = ethernet_frame(packet.rtp(), identification=packet.sequence + number)
        seconds, micros = divmod(packet.send_at_us, 1_000_000)
        parts.append(struct.pack("<IIII", CAPTURE_START_S + seconds, micros,
                                 len(frame), len(frame)))  # whole packets: SIPp insists
        parts.append(frame)
    return b"".join(parts)


def write_pcap(packets: Sequence[RtpEventPacket | RtpAudioPacket], folder: Path,
               stem: str) -> Path:
    """Write ``packets`` to ``folder/<stem>-<content hash>.pcap`` unless it is there already
    (written whole, then renamed: test processes running at once may share the folder)."""
    data = pcap_bytes(packets)
    path = folder / f"{stem}-{hashlib.sha256(data).hexdigest()[:16]}.pcap"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    descriptor, partial = tempfile.mkstemp(dir=folder, prefix=".partial-", suffix=".pcap")
    try:
        with os.fdopen(descriptor, "wb") as output:
            output.write(data)
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return path


def key_press_pcap(digit: str, *, index: int, at_ms: int, tone_ms: int = TONE_MS,
                   folder: Path | None = None) -> Path:
    """The pcap file of key press number ``index`` of a call, pressed ``at_ms`` after the
    answer (see ``key_press_packets``), in ``folder`` (a shared temporary one by default)."""
    packets = key_press_packets(digit, index=index, at_ms=at_ms, tone_ms=tone_ms)
    name = FILE_NAMES.get(digit, digit)
    return write_pcap(packets, folder or DEFAULT_FOLDER, f"dtmf-{index:03d}-{name}-{at_ms}ms")
