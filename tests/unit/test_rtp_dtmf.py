"""The DTMF pcaps SIPp callers play, read back with a parser of our own (pcap, Ethernet,
IPv4, UDP, RTP, RFC 4733), as SIPp and then Asterisk would read them."""

from __future__ import annotations

import itertools
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.real_parts import unavailable
from tests.support.rtp_dtmf import (
    CLOCK_RATE,
    FIRST_SEQUENCE,
    FIRST_TIMESTAMP,
    TELEPHONE_EVENT_PAYLOAD_TYPE,
    event_packets,
    key_press_packets,
    key_press_pcap,
    packets_per_press,
    pcap_bytes,
    write_pcap,
)
from tests.support.sipp import CallerPlan, caller_scenario

KEYS = "0123456789*#ABCD"
STOCK_PCAPS = Path("/usr/share/sip-tester")


@dataclass(frozen=True)
class Event:
    at_us: int  # capture time, from the first packet
    source_port: int
    destination_port: int
    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    key: str
    end: bool
    volume: int
    duration: int


def internet_checksum_ok(data: bytes) -> bool:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def read_pcap(data: bytes) -> list[Event]:
    """Every packet of a classic little-endian Ethernet pcap of RFC 4733 RTP over IPv4/UDP,
    checking each layer's lengths and checksums on the way."""
    magic, major, minor, _, _, snaplen, linktype = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    events: list[Event] = []
    offset, first_us = 24, None
    while offset < len(data):
        seconds, micros, captured, original = struct.unpack("<IIII", data[offset:offset + 16])
        offset += 16
        frame = data[offset:offset + captured]
        offset += captured
        assert captured == original == len(frame) <= snaplen  # SIPp refuses cut packets
        at_us = seconds * 1_000_000 + micros
        first_us = at_us if first_us is None else first_us
        assert struct.unpack("!H", frame[12:14])[0] == 0x0800
        ip = frame[14:34]
        assert ip[0] == 0x45 and ip[9] == 17  # IPv4 without options, UDP
        assert struct.unpack("!H", ip[2:4])[0] == len(frame) - 14
        assert internet_checksum_ok(ip)
        udp = frame[34:]
        source_port, destination_port, udp_length, udp_checksum = struct.unpack("!HHHH",
                                                                                 udp[:8])
        assert udp_length == len(udp)
        if udp_checksum:
            pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, udp_length)
            assert internet_checksum_ok(pseudo + udp)
        rtp = udp[8:]
        first, second, sequence, timestamp, ssrc = struct.unpack("!BBHII", rtp[:12])
        assert first == 0x80  # version 2, no padding, no extension, no CSRC
        event, flags, duration = struct.unpack("!BBH", rtp[12:16])
        assert len(rtp) == 16
        events.append(Event(at_us - first_us, source_port, destination_port, bool(second & 0x80),
                            second & 0x7F, sequence, timestamp, ssrc, KEYS[event],
                            bool(flags & 0x80), flags & 0x3F, duration))
    return events


def test_one_key_press_is_a_marked_start_growing_durations_and_three_end_packets():
    events = read_pcap(pcap_bytes(event_packets("7", sequence=500, timestamp=48_000)))

    assert [e.key for e in events] == ["7"] * 8
    assert {e.payload_type for e in events} == {TELEPHONE_EVENT_PAYLOAD_TYPE}
    assert [e.marker for e in events] == [True] + [False] * 7
    assert [e.end for e in events] == [False] * 5 + [True] * 3
    assert [e.sequence for e in events] == list(range(500, 508))
    assert {e.timestamp for e in events} == {48_000}
    assert [e.duration for e in events] == [0, 160, 320, 480, 640, 800, 800, 800]
    assert [e.at_us for e in events] == [0, 20_000, 40_000, 60_000, 80_000] + [100_000] * 3
    assert len({e.ssrc for e in events}) == 1
    assert {e.volume for e in events} == {10}
    # SIPp moves every packet to its media ports keeping the offset from the lowest
    # destination port of the file: one flow, so all of them go to the far end's RTP port.
    assert len({(e.source_port, e.destination_port) for e in events}) == 1


@pytest.mark.parametrize("key", list(KEYS))
def test_every_key_is_its_rfc_4733_event(key):
    [start, *_] = read_pcap(pcap_bytes(event_packets(key, sequence=1, timestamp=1)))
    assert start.key == key


def test_a_longer_tone_has_more_packets_and_a_longer_duration():
    events = read_pcap(pcap_bytes(event_packets("1", sequence=1, timestamp=1, tone_ms=200)))
    assert len(events) == packets_per_press(200) == 13
    assert events[-1].duration == 200 * CLOCK_RATE // 1000


def test_presses_of_a_call_keep_growing_timestamps_and_sequence_numbers():
    """Two entries with repeated keys and keys 'older' than the one before (the stock pcaps'
    trouble): every press must be newer than the last, in timestamp and in sequence."""
    plan = CallerPlan(dtmf=((1000, "4"), (300, "4"), (300, "3"), (300, "0"),
                            (5000, "1"), (250, "1"), (200, "#")))
    presses = []
    at_ms = 0
    for index, (wait_ms, digit) in enumerate(plan.dtmf):
        at_ms += wait_ms
        presses.append(read_pcap(pcap_bytes(key_press_packets(digit, index=index,
                                                              at_ms=at_ms))))

    assert [p[0].key for p in presses] == [d for _, d in plan.dtmf]
    starts = [p[0].timestamp for p in presses]
    assert starts == [FIRST_TIMESTAMP + ms * 8 for ms in (1000, 1300, 1600, 1900, 6900,
                                                          7150, 7350)]
    for earlier, later in itertools.pairwise(presses):
        # Asterisk drops an event whose timestamp is not newer than the last one ended...
        assert later[0].timestamp > earlier[-1].timestamp
        # ...and the begin of an event arriving in sequence before the last packet.
        assert later[0].sequence > earlier[-1].sequence
    sequences = [e.sequence for p in presses for e in p]
    assert sequences == list(range(FIRST_SEQUENCE, FIRST_SEQUENCE + len(sequences)))


def test_the_caller_scenario_plays_one_file_per_press_in_the_order_of_the_plan():
    plan = CallerPlan(dtmf=((1000, "1"), (300, "1"), (300, "2"), (4000, "1")),
                      hangup_after_ms=9000)
    scenario = caller_scenario(plan)
    files = re.findall(r'play_pcap_audio="([^"]+)"', scenario)
    assert len(files) == 4
    presses = [read_pcap(Path(f).read_bytes()) for f in files]
    assert [p[0].key for p in presses] == ["1", "1", "2", "1"]
    assert [p[0].timestamp - FIRST_TIMESTAMP for p in presses] == [8000, 10_400, 12_800,
                                                                    44_800]
    assert re.findall(r"dtmf (\S)", scenario) == ["1", "1", "2", "1"]  # the logged events


def test_a_written_file_is_reused_and_different_presses_get_different_files(tmp_path):
    first = key_press_pcap("5", index=0, at_ms=1000, folder=tmp_path)
    again = key_press_pcap("5", index=0, at_ms=1000, folder=tmp_path)
    later = key_press_pcap("5", index=1, at_ms=1300, folder=tmp_path)
    assert first == again != later
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, later.name])
    packets = key_press_packets("5", index=0, at_ms=1000)
    assert write_pcap(packets, tmp_path, "other").read_bytes() == first.read_bytes()


def test_bad_presses_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="'x' is not a DTMF key"):
        event_packets("x", sequence=1, timestamp=1)
    with pytest.raises(ValueError, match="tone_ms 30: a positive multiple of 20"):
        event_packets("1", sequence=1, timestamp=1, tone_ms=30)
    with pytest.raises(ValueError, match="neither may be negative"):
        key_press_packets("1", index=-1, at_ms=0)
    with pytest.raises(ValueError, match="at least one packet"):
        pcap_bytes([])
    with pytest.raises(ValueError, match=r"dtmf\[1\]: wait 100 ms"):
        CallerPlan(dtmf=((1000, "1"), (100, "2")))


def test_the_stock_recordings_carry_fixed_timestamps_that_go_backwards():
    """Why we make our own: sip-tester's files are cuts of one capture, so '0' is older than
    '3' and a repeated key is the very same event (Asterisk drops both)."""
    if not (STOCK_PCAPS / "dtmf_2833_0.pcap").is_file():
        unavailable("sip-tester's DTMF recordings are not installed (apt-get install sip-tester)")
    stock = {d: read_pcap((STOCK_PCAPS / f"dtmf_2833_{d}.pcap").read_bytes()) for d in "0123"}
    assert stock["0"][0].timestamp < stock["3"][-1].timestamp
    assert stock["2"][0].timestamp < stock["3"][-1].timestamp
    # The same framing as ours: our reader reads them.
    assert all(e.payload_type == TELEPHONE_EVENT_PAYLOAD_TYPE for e in stock["1"])
