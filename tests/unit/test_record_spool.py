"""The record spool's format, bookkeeping and file: torn writes, replay order, compaction,
idempotent replay. The pure parts run on bytes; the file part on a real temporary file."""

from __future__ import annotations

import dataclasses
import json
import math
import stat
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.core.records import CallRecord, Disposition, HangupBy, IvrStep
from callcenter.features.calls.spool import (
    SpoolAck,
    SpoolBook,
    SpoolEntry,
    SpoolFile,
    SpoolPut,
    decode,
    encode,
    record_from_json,
    record_to_json,
)
from tests.unit.test_store import call_records

call_ids = st.sampled_from(["1.1", "1.2", "1.3", "2.1"])
documents = st.dictionaries(st.sampled_from(["caller_name", "note", "x"]),
                            st.text(max_size=8) | st.floats(allow_nan=False) | st.none(),
                            max_size=3)
entries: st.SearchStrategy[SpoolEntry] = st.one_of(
    st.builds(SpoolPut, seq=st.integers(1, 10**12), call_id=st.text(max_size=10),
              record=documents),
    st.builds(SpoolAck, call_id=st.text(max_size=10), seq=st.integers(1, 10**12)),
)


def spool_bytes(items: list[SpoolEntry]) -> bytes:
    return b"".join(encode(entry) for entry in items)


# --------------------------------------------------------------------------- the format


@given(st.lists(entries, max_size=10))
def test_entries_come_back_exactly_one_per_line(items: list[SpoolEntry]) -> None:
    data = spool_bytes(items)
    assert data.count(b"\n") == len(items)  # escaped JSON: no newline inside an entry
    assert b"\x00" not in data
    decoded = decode(data)
    assert decoded.entries == items
    assert (decoded.torn_tail, decoded.damaged) == (0, [])


@given(st.lists(entries, min_size=1, max_size=6), st.data())
def test_a_write_cut_short_loses_only_the_entry_being_written(items: list[SpoolEntry],
                                                              data: st.DataObject) -> None:
    whole = spool_bytes(items)
    last = encode(items[-1])
    # kill -9 in the middle of the last write: any strict prefix of its line is on disk.
    cut = data.draw(st.integers(0, len(last) - 1), label="bytes of the last line written")
    torn = whole[:len(whole) - len(last) + cut]
    decoded = decode(torn)
    assert decoded.entries == items[:-1]
    assert decoded.torn_tail == cut
    assert decoded.damaged == []


def test_a_damaged_line_in_the_middle_is_skipped_and_reported_and_the_rest_kept() -> None:
    items: list[SpoolEntry] = [SpoolPut(1, "a", {"note": "first"}),
                               SpoolPut(2, "b", {"note": "second"}), SpoolAck("a", 1)]
    lines = [encode(entry) for entry in items]
    lines[1] = lines[1].replace(b"second", b"secomd")  # same length, checksum no longer fits
    decoded = decode(b"".join(lines))
    assert decoded.entries == [items[0], items[2]]
    assert decoded.damaged == [2] and decoded.torn_tail == 0


def checked_line(payload: bytes) -> bytes:
    """A line whose length and checksum fit ``payload`` (whatever the payload says)."""
    return b"%d %08x %s" % (len(payload), zlib.crc32(payload), payload)


@pytest.mark.parametrize("line", [
    b"", b"garbage", b"5 0000000z {}", b"2 00000000 {}", b"\x00\x00\x00\x00",
    checked_line(b'{"seq":0,"call":"a","put":{}}'), checked_line(b'{"call":"a","ack":true}'),
    checked_line(b'{"seq":1,"call":"a","put":[]}'), checked_line(b'{"call":5,"ack":1}'),
    checked_line(b"[1]"), checked_line(b"\xff"),
])
def test_lines_that_are_not_entries_never_raise(line: bytes) -> None:
    good = encode(SpoolAck("a", 3))
    decoded = decode(good + line + b"\n" + good)
    assert decoded.entries == [SpoolAck("a", 3), SpoolAck("a", 3)]
    assert decoded.damaged == [2]


@given(st.binary(max_size=200))
def test_any_bytes_decode_without_raising(data: bytes) -> None:
    decode(data)


# --------------------------------------------------------------------------- replay


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, str]]:
    """What the writer does: put a new version of a call, or ack one (the newest or an
    older one, as a write that finished after a newer version was handed over)."""
    return draw(st.lists(st.tuples(st.sampled_from(["put", "ack-newest", "ack-older"]),
                                   call_ids), max_size=40))


def run(history: list[tuple[str, str]]) -> tuple[SpoolBook, list[SpoolEntry],
                                                 dict[str, tuple[int, int]]]:
    """Play ``history`` on a book; also return the entries appended and, per call, the model
    of what must be replayed: (newest put seq, newest acked seq)."""
    book, appended = SpoolBook(), []
    newest: dict[str, list[int]] = {}
    acked: dict[str, int] = {}
    for action, call_id in history:
        if action == "put":
            entry: SpoolEntry = book.put(call_id, {"version": len(newest.get(call_id, []))})
            newest.setdefault(call_id, []).append(entry.seq)
        elif newest.get(call_id):
            seqs = newest[call_id]
            seq = seqs[-1] if action == "ack-newest" else seqs[0]
            entry = book.ack(call_id, seq)
            acked[call_id] = max(acked.get(call_id, 0), seq)
        else:
            continue
        appended.append(entry)
    model = {call_id: (seqs[-1], acked.get(call_id, 0)) for call_id, seqs in newest.items()}
    return book, appended, model


@settings(max_examples=300)
@given(histories())
def test_replay_is_each_calls_newest_unacknowledged_version_oldest_first(
        history: list[tuple[str, str]]) -> None:
    book, appended, model = run(history)
    expected = sorted((seq, call_id) for call_id, (seq, acked) in model.items() if seq > acked)
    assert [(entry.seq, entry.call_id) for entry in book.live()] == expected
    # A new process reading the file replays the same, and so does one reading it again.
    for _ in range(2):
        replayed = SpoolBook()
        replayed.load(decode(spool_bytes(appended)).entries)
        assert replayed.live() == book.live()


@settings(max_examples=200)
@given(histories(), st.data())
def test_a_crash_anywhere_never_replays_an_older_version_than_the_file_holds(
        history: list[tuple[str, str]], data: st.DataObject) -> None:
    _, appended, _ = run(history)
    survived = data.draw(st.integers(0, len(appended)), label="entries on disk")
    on_disk = appended[:survived]
    book = SpoolBook()
    book.load(decode(spool_bytes(on_disk)).entries)
    puts = [entry for entry in on_disk if isinstance(entry, SpoolPut)]
    for entry in book.live():
        assert entry.seq == max(put.seq for put in puts if put.call_id == entry.call_id)


def test_an_older_version_read_after_a_newer_one_does_not_replace_it() -> None:
    # Compaction writes live puts in seq order, but replay must not rely on file order.
    newer, older = SpoolPut(5, "a", {"note": "newer"}), SpoolPut(3, "a", {"note": "older"})
    book = SpoolBook()
    book.load([newer, older])
    assert book.live() == [newer]
    assert book.put("a", {}).seq == 6  # numbering goes on after the highest seen


def test_an_ack_of_an_older_version_keeps_the_newer_one() -> None:
    book = SpoolBook()
    first = book.put("a", {"v": 1})
    second = book.put("a", {"v": 2})
    book.ack("a", first.seq)
    assert book.live() == [second]
    assert book.is_live("a", second.seq) and not book.is_live("a", first.seq)
    book.ack("a", second.seq)
    assert book.live() == []


def test_compaction_is_due_with_many_entries_mostly_done() -> None:
    book = SpoolBook(compact_after=10)
    puts = [book.put(f"c{i}", {}) for i in range(6)]
    book.appended(6)
    assert not book.should_compact  # few entries
    for put in puts[:4]:
        book.ack(put.call_id, put.seq)
    book.appended(4)
    assert book.should_compact  # 10 entries, 2 live
    book.rewritten(len(book.live()))
    assert book.entries_in_file == 2 and not book.should_compact


# --------------------------------------------------------------------------- record JSON


records_with_any_text = call_records.map(
    lambda record: dataclasses.replace(record, caller_name="a\x00b\u2028\ud800",
                                       wait_seconds=math.inf))


@settings(max_examples=50)
@given(st.one_of(call_records, records_with_any_text))
def test_a_record_survives_its_json_form_exactly(record: CallRecord) -> None:
    document = record_to_json(record)
    line = encode(SpoolPut(1, record.call_id, document))
    [entry] = decode(line).entries
    assert isinstance(entry, SpoolPut)
    assert record_from_json(entry.record) == record


def test_a_record_from_another_version_takes_defaults_and_ignores_unknown_fields() -> None:
    record = record_from_json({"call_id": "1.1", "started_at": 5, "new_field": "x",
                               "disposition": "answered", "hangup_by": None,
                               "ivr_path": [{"node": "welcome", "at": 6, "input": None}]})
    assert record == CallRecord(call_id="1.1", started_at=5.0,
                                disposition=Disposition.ANSWERED, hangup_by=None,
                                ivr_path=[IvrStep("welcome", 6.0)])
    assert record.attempts == [] and isinstance(record.started_at, float)


@pytest.mark.parametrize(("document", "named"), [
    ({"call_id": "1.1"}, "started_at"),
    ({"call_id": "1.1", "started_at": "noon"}, "record.started_at"),
    ({"call_id": "1.1", "started_at": 1, "hangup_by": "nobody"}, "nobody"),
    ({"call_id": "1.1", "started_at": 1, "attempts": {}}, "record.attempts"),
    ({"call_id": 11, "started_at": 1}, "record.call_id"),
    ({"call_id": "1.1", "started_at": True}, "record.started_at"),
])
def test_an_unreadable_record_is_a_value_error_naming_the_field(document: dict,
                                                                named: str) -> None:
    with pytest.raises(ValueError, match=named):
        record_from_json(document)


# --------------------------------------------------------------------------- the file


def test_the_spool_file_is_created_0600_in_a_new_folder_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "data" / "record-spool.jsonl"
    spool = SpoolFile(path)
    assert spool.open().entries == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    items: list[SpoolEntry] = [SpoolPut(1, "a", {"note": "é"}), SpoolAck("a", 1)]
    spool.append(spool_bytes(items))
    spool.close()
    assert SpoolFile(path).open().entries == items


def test_a_looser_mode_is_tightened_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "record-spool.jsonl"
    path.write_bytes(b"")
    path.chmod(0o644)
    SpoolFile(path).open()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_torn_tail_is_cut_off_at_open_so_the_next_entry_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "record-spool.jsonl"
    first = SpoolPut(1, "a", {"note": "kept"})
    path.write_bytes(encode(first) + encode(SpoolPut(2, "b", {}))[:17])  # killed mid-write
    spool = SpoolFile(path)
    decoded = spool.open()
    assert decoded.entries == [first] and decoded.torn_tail == 17
    after = SpoolPut(3, "c", {"note": "after the restart"})
    spool.append(encode(after))
    spool.close()
    again = SpoolFile(path).open()
    assert again.entries == [first, after]
    assert (again.torn_tail, again.damaged) == (0, [])


def test_rewrite_replaces_the_file_and_appends_go_to_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "record-spool.jsonl"
    spool = SpoolFile(path)
    spool.open()
    spool.append(spool_bytes([SpoolPut(1, "a", {}), SpoolAck("a", 1), SpoolPut(2, "b", {})]))
    spool.rewrite(encode(SpoolPut(2, "b", {})))
    spool.append(encode(SpoolAck("b", 2)))
    spool.close()
    assert decode(path.read_bytes()).entries == [SpoolPut(2, "b", {}), SpoolAck("b", 2)]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_the_json_of_a_put_is_the_records_document(tmp_path: Path) -> None:
    record = CallRecord("1.1", 10.0, caller_name="x\x00y", hangup_by=HangupBy.CALLER)
    line = encode(SpoolPut(4, "1.1", record_to_json(record)))
    length, _, payload = line.rstrip(b"\n").split(b" ", 2)
    assert int(length) == len(payload)
    document = json.loads(payload)
    assert document["seq"] == 4 and document["put"]["caller_name"] == "x\x00y"
    assert document["put"]["hangup_by"] == "caller"
