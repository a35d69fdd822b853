"""The local spool of call records: on disk (fsync'd) before the database write is tried.

A record handed to the writer is appended here first, so a crash (``kill -9``, the OOM
killer, a power cut) while the database is away loses nothing: the next start replays what
the database never acknowledged. The spool is append-only JSON lines, one entry a line::

    <payload length in bytes> <CRC-32 of the payload, 8 hex digits> <payload JSON>\\n

Two kinds of entry:

- ``{"seq": 7, "call": "1700.1", "put": {...record...}}``: a version of a call's record.
  ``seq`` grows with every put, so a later put is a newer version.
- ``{"call": "1700.1", "ack": 7}``: the database holds version 7 of that call (or it was
  moved to the dead letters): every put of the call up to seq 7 is done.

Replay keeps, per call, only the newest put that no ack covers, in ``seq`` order: an older
version is never replayed after a newer one, and replaying twice writes the same upsert
again (the database upserts by ``call_id``), so replay is idempotent. A torn last line (the
process died mid-write) fails its length or checksum and is ignored; so is, with an error
in the log, a damaged line in the middle. Compaction rewrites the file with the live puts
only, so it does not grow forever.

The first half of this module is pure (bytes and dataclasses in and out, no I/O): the
format, ``SpoolBook`` (which puts are still live) and the record's JSON form. The second
half, ``SpoolFile``, is the file: appends with fsync, atomic rewrite, mode 0600.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import types
import typing
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callcenter.core.records import CallRecord

SPOOL_FILE = "record-spool.jsonl"  # in the data folder
DEAD_LETTER_FILE = "dead-letter-records.jsonl"  # when even the dead-letter table fails
FILE_MODE = 0o600  # records hold callers' numbers and names
# Rewrite the file once it holds this many entries and at least half of them are done.
COMPACT_AFTER_ENTRIES = 1024

# --------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class SpoolPut:
    """A version of a call's record, as its JSON document."""

    seq: int
    call_id: str
    record: dict[str, Any]


@dataclass(frozen=True)
class SpoolAck:
    """Every put of ``call_id`` up to ``seq`` is done (stored or dead-lettered)."""

    call_id: str
    seq: int


SpoolEntry = SpoolPut | SpoolAck


def encode(entry: SpoolEntry) -> bytes:
    """One line of the spool. The JSON is ASCII (escapes for the rest), so it never holds a
    raw newline or NUL, and its length in characters is its length in bytes."""
    if isinstance(entry, SpoolPut):
        document: dict[str, Any] = {"seq": entry.seq, "call": entry.call_id, "put": entry.record}
    else:
        document = {"call": entry.call_id, "ack": entry.seq}
    payload = json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return b"%d %08x %s\n" % (len(payload), zlib.crc32(payload), payload)


@dataclass
class Decoded:
    """What a spool file held: its good entries in order, and what was wrong with it."""

    entries: list[SpoolEntry] = field(default_factory=list)
    torn_tail: int = 0  # bytes of an incomplete last line (a write cut short), ignored
    damaged: list[int] = field(default_factory=list)  # line numbers (from 1) skipped


def decode(data: bytes) -> Decoded:
    """Parse a whole spool file. Never raises: bad lines are skipped and reported."""
    result = Decoded()
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: empty, or a line whose write was cut short
    for number, line in enumerate(lines, start=1):
        entry = _decode_line(line)
        if entry is None:
            if number == len(lines) and not tail:
                result.torn_tail = len(line) + 1  # the last line: a cut-short write
            else:
                result.damaged.append(number)
            continue
        result.entries.append(entry)
    result.torn_tail += len(tail)
    return result


def _decode_line(line: bytes) -> SpoolEntry | None:
    parts = line.split(b" ", 2)
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[1]) != 8:
        return None
    length, checksum, payload = parts
    try:
        if int(length) != len(payload) or int(checksum, 16) != zlib.crc32(payload):
            return None
        document = json.loads(payload)
    except ValueError:  # a bad hex checksum, bad JSON or bad UTF-8
        return None
    return _entry(document)


def _entry(document: object) -> SpoolEntry | None:
    if not isinstance(document, dict) or not isinstance(document.get("call"), str):
        return None
    call_id = document["call"]
    if "put" in document:
        seq, record = document.get("seq"), document["put"]
        if _is_seq(seq) and isinstance(record, dict):
            return SpoolPut(seq=seq, call_id=call_id, record=record)
        return None
    seq = document.get("ack")
    return SpoolAck(call_id=call_id, seq=seq) if _is_seq(seq) else None


def _is_seq(value: object) -> typing.TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# --------------------------------------------------------------------------- bookkeeping


class SpoolBook:
    """Which puts are live (not yet acknowledged), and when the file is worth compacting.

    Pure: the writer feeds it what it appends and the book says what to append next.
    """

    def __init__(self, compact_after: int = COMPACT_AFTER_ENTRIES) -> None:
        self._live: dict[str, SpoolPut] = {}  # per call: its newest put no ack covers
        self._acked: dict[str, int] = {}  # per call, while loading: the highest acked seq
        self._next_seq = 1
        self.entries_in_file = 0
        self._compact_after = compact_after

    def load(self, entries: Iterable[SpoolEntry]) -> None:
        """Take in the entries read from the file, in file order."""
        for entry in entries:
            self._apply(entry)
            self.entries_in_file += 1
        # Acks only matter for older puts in the file; every put from now on is newer.
        self._acked.clear()

    def put(self, call_id: str, record: dict[str, Any]) -> SpoolPut:
        """A new version of ``call_id``'s record: the entry to append."""
        entry = SpoolPut(seq=self._next_seq, call_id=call_id, record=record)
        self._apply(entry)
        return entry

    def ack(self, call_id: str, seq: int) -> SpoolAck:
        """``call_id`` is done up to version ``seq``: the entry to append."""
        entry = SpoolAck(call_id=call_id, seq=seq)
        self._apply(entry)
        return entry

    def appended(self, count: int) -> None:
        """``count`` entries made by ``put``/``ack`` reached the file."""
        self.entries_in_file += count

    def rewritten(self, live: int) -> None:
        """The file was compacted to ``live`` entries (the puts ``live()`` gave)."""
        self.entries_in_file = live

    def live(self) -> list[SpoolPut]:
        """The puts to replay: each call's newest unacknowledged version, oldest first."""
        return sorted(self._live.values(), key=lambda entry: entry.seq)

    def is_live(self, call_id: str, seq: int) -> bool:
        entry = self._live.get(call_id)
        return entry is not None and entry.seq == seq

    @property
    def should_compact(self) -> bool:
        """Worth rewriting: many entries, at least half of them done with."""
        return (self.entries_in_file >= self._compact_after
                and self.entries_in_file >= 2 * len(self._live))

    def _apply(self, entry: SpoolEntry) -> None:
        if isinstance(entry, SpoolPut):
            self._next_seq = max(self._next_seq, entry.seq + 1)
            current = self._live.get(entry.call_id)
            if entry.seq > self._acked.get(entry.call_id, 0) and (
                    current is None or entry.seq > current.seq):
                self._live[entry.call_id] = entry
            return
        self._acked[entry.call_id] = max(self._acked.get(entry.call_id, 0), entry.seq)
        current = self._live.get(entry.call_id)
        if current is not None and current.seq <= entry.seq:
            del self._live[entry.call_id]


# --------------------------------------------------------------------------- record JSON


def record_to_json(record: CallRecord) -> dict[str, Any]:
    """The record as a JSON-ready document (enums as their values)."""
    return dataclasses.asdict(record, dict_factory=_json_dict)


def record_from_json(document: object) -> CallRecord:
    """The record back from ``record_to_json``'s document. Missing fields take their
    defaults and unknown ones are ignored (a spool written by another version); ValueError
    says which field is wrong."""
    try:
        record = _from_json(CallRecord, document, "record")
    except TypeError as exc:  # a required field is missing
        raise ValueError(f"record: {exc}") from None
    assert isinstance(record, CallRecord)
    return record


def _json_dict(items: list[tuple[str, Any]]) -> dict[str, Any]:
    return {name: value.value if isinstance(value, enum.Enum) else value
            for name, value in items}


def _from_json(hint: Any, value: object, where: str) -> object:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if value is None and len(options) < len(typing.get_args(hint)):
            return None
        if len(options) != 1:
            raise ValueError(f"{where}: cannot read a value of type {hint}")
        return _from_json(options[0], value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        [item_hint] = typing.get_args(hint)
        return [_from_json(item_hint, item, f"{where}[{i}]") for i, item in enumerate(value)]
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object, got {value!r}")
        hints = typing.get_type_hints(hint)
        return hint(**{item.name: _from_json(hints[item.name], value[item.name],
                                             f"{where}.{item.name}")
                       for item in dataclasses.fields(hint) if item.name in value})
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)  # ValueError names the value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, bool) and type(value) is hint:
        return value
    raise ValueError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


# --------------------------------------------------------------------------- the file


class SpoolFile:
    """The spool on disk. Blocking calls: the writer runs them in a worker thread, one at a
    time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def open(self) -> Decoded:
        """Open (creating it 0600, and its folder) and read what an earlier run left.

        A torn or damaged line is cut off by rewriting the file with the good entries
        before anything is appended, so a new line never continues a torn one.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)  # a file made by hand or an old umask: tighten it
            with os.fdopen(os.dup(fd), "rb") as reader:
                decoded = decode(reader.read())
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        if decoded.torn_tail or decoded.damaged:
            self.rewrite(b"".join(encode(entry) for entry in decoded.entries))
        return decoded

    def append(self, data: bytes) -> None:
        """Append ``data`` and return once it is on disk (fsync)."""
        fd = self._open_fd()
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)

    def rewrite(self, data: bytes) -> None:
        """Replace the whole file with ``data`` atomically: a crash leaves the old file or
        the new one, never a mix."""
        self._open_fd()
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
        try:
            _write_synced(fd, data)
        finally:
            os.close(fd)
        os.replace(temporary, self.path)
        _fsync_folder(self.path.parent)
        self.close()
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open_fd(self) -> int:
        if self._fd is None:
            raise RuntimeError(f"{self.path}: the spool is not open")
        return self._fd


def append_dead_letter_file(path: Path, letter: dict[str, Any]) -> None:
    """Append one dead letter (a JSON line) to ``path``, 0600, fsync'd."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(letter, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
    try:
        _write_synced(fd, line)
    finally:
        os.close(fd)


def _write_synced(fd: int, data: bytes) -> None:
    """All of ``data`` to ``fd`` (0600 whatever the umask made it), then fsync."""
    os.fchmod(fd, FILE_MODE)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
