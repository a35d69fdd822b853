"""Reads Asterisk's own channel event log: the SQLite file ``cel_sqlite3_custom`` writes.

Asterisk writes one row per channel event (asterisk-conf/cel.conf, cel_sqlite3_custom.conf)
into ``callcenter-cel.db`` in its log folder, whether or not the service is running. This
module reads the rows after a position, read-only, and parses each once into a typed
``ChannelEvent``: values a caller controls (caller ID) stay plain text, the event's extra
JSON is decoded here, and a row that does not parse is skipped with a warning.

Why SQLite and not a CSV file: a row is written whole or not at all (no torn last line to
guess about while Asterisk appends), Asterisk binds the values instead of quoting them, and
the table's ``AcctId`` is an ascending row number to remember as the position.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from callcenter.core.missed_calls import (
    ANSWER,
    APP_START,
    BRIDGE_ENTER,
    CHAN_END,
    CHAN_START,
    HANGUP,
    LINKEDID_END,
    ChannelEvent,
)

log = logging.getLogger(__name__)

CEL_FILE = "callcenter-cel.db"  # cel_sqlite3_custom.conf's category: a file in astlogdir
DEFAULT_EXTERNAL_LOG_DIR = PurePosixPath("/var/log/asterisk")
TABLE = "cel"
# (column, CEL field) of the table Asterisk fills: the generated cel_sqlite3_custom mapping
# and this reader's SELECT both come from here, so they cannot drift apart.
MAPPING = (("eventtype", "eventtype"), ("eventtime", "eventtime(float)"),
           ("uniqueid", "uniqueid"), ("linkedid", "linkedid"), ("channame", "channame"),
           ("context", "context"), ("exten", "exten"), ("cidnum", "num"), ("cidname", "name"),
           ("appname", "appname"), ("appdata", "appdata"), ("extra", "eventextra"))
COLUMNS = tuple(column for column, _ in MAPPING)
# Only these events are read: cel.conf may log more for other uses.
READ_EVENTS = (CHAN_START, ANSWER, APP_START, HANGUP, CHAN_END)
# What cel.conf's [general] must log: the events read, and LINKEDID_END for people reading
# the log by hand (a call's last channel is gone); Queue() is the one application tracked.
LOGGED_EVENTS = (*READ_EVENTS, BRIDGE_ENTER, LINKEDID_END)
TRACKED_APPS = ("queue",)
BUSY_TIMEOUT_MS = 5000  # how long Asterisk waits for a reader before it drops an event


def cel_general_options() -> str:
    """The lines of cel.conf's ``[general]`` (an ``#include`` inside it, no header)."""
    return "\n".join([
        "; Asterisk's own account of every call, kept while the callcenter service is down;",
        "; #include this file inside cel.conf's [general] section (docs/records.md).",
        "enable = yes",
        f"apps = {','.join(TRACKED_APPS)}",
        f"events = {','.join(LOGGED_EVENTS)}",
        "; No dateformat: the mapping writes eventtime as POSIX seconds with microseconds.",
        "",
    ])


def cel_sqlite_mapping() -> str:
    """cel_sqlite3_custom.conf's category: the SQLite file Asterisk writes in its log folder.
    An "advanced" mapping: values are bound by Asterisk, never pasted into SQL."""
    return "\n".join([
        "; Where Asterisk writes its channel events for the callcenter service: the file",
        f"; {CEL_FILE} in its log folder (astlogdir). Asterisk creates the table with an",
        "; ascending AcctId first; the service remembers the last one it imported and reads",
        "; these columns by name (callcenter/asterisk/cel_reader.py). Generated: do not edit.",
        f"[{CEL_FILE}]",
        f"table = {TABLE}",
        f"columns = {', '.join(COLUMNS)}",
        f"fields = {', '.join(field for _, field in MAPPING)}",
        f"busy_timeout = {BUSY_TIMEOUT_MS}",
        "",
    ])
READ_CHUNK = 2000
MAX_TEXT = 1024  # longer values are cut: no caller ID or queue argument is legitimately longer


class CelLogError(RuntimeError):
    """The log exists but cannot be read as ours (locked for long, wrong table or columns)."""


@dataclass(frozen=True)
class CelBatch:
    events: list[ChannelEvent]
    last_row: int  # the log's highest row number now (0 when empty)
    skipped: int  # rows that did not parse


def log_identity(path: Path) -> str:
    """Which log this is: its path and first row. A log rotated away, recreated or pruned
    from its start is another log, read from its start (nothing is stored twice)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Asterisk's channel event log does not exist")
    try:
        connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True,
                                     timeout=5.0)
        try:
            first = connection.execute(f"SELECT AcctId, eventtime, uniqueid FROM {TABLE} "
                                       "ORDER BY AcctId LIMIT 1").fetchone()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise CelLogError(f"{path}: cannot read table {TABLE!r}: {exc}") from None
    return f"{path}#{':'.join(_text(v) for v in first)}" if first else f"{path}#"


def read_events(path: Path, after_row: int) -> CelBatch:
    """Every event of the log after ``after_row`` up to its last row now, oldest first.
    Blocking: run it in a thread.

    Read in short statements of READ_CHUNK rows: while one runs, Asterisk waits to write
    (up to cel_sqlite3_custom.conf's busy_timeout, then it drops the event).
    FileNotFoundError if the log does not exist (yet: Asterisk creates it at its first event).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Asterisk's channel event log does not exist")
    marks = ",".join("?" for _ in READ_EVENTS)
    query = (f"SELECT AcctId, {', '.join(COLUMNS)} FROM {TABLE} WHERE AcctId > ? "
             f"AND AcctId <= ? AND eventtype IN ({marks}) ORDER BY AcctId LIMIT {READ_CHUNK}")
    try:
        connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True,
                                     timeout=5.0)
    except sqlite3.Error as exc:
        raise CelLogError(f"{path}: cannot open Asterisk's channel event log: {exc}") from None
    rows: list[tuple[object, ...]] = []
    try:
        top = int(connection.execute(f"SELECT coalesce(max(AcctId), 0) FROM {TABLE}")
                  .fetchone()[0])
        cursor = after_row
        while True:
            chunk = connection.execute(query, (cursor, top, *READ_EVENTS)).fetchall()
            rows += chunk
            if len(chunk) < READ_CHUNK:
                break
            cursor = int(chunk[-1][0])
    except sqlite3.Error as exc:
        raise CelLogError(f"{path}: cannot read table {TABLE!r}: {exc}") from None
    finally:
        connection.close()
    events, skipped = [], 0
    for row in rows:
        event = parse_row(row)
        if event is None:
            skipped += 1
        else:
            events.append(event)
    if skipped:
        log.warning("%s: %d row(s) of Asterisk's channel event log could not be read", path,
                    skipped)
    return CelBatch(events=events, last_row=top, skipped=skipped)


def parse_row(row: tuple[object, ...]) -> ChannelEvent | None:
    """One selected row (AcctId, then COLUMNS) as a typed event; None if it does not parse."""
    if len(row) != len(COLUMNS) + 1:
        return None
    row_id, kind, at, uniqueid, linkedid, channel, context, exten, number, name, app, \
        app_data, extra = row
    try:
        row_number = int(row_id)  # type: ignore[call-overload]
        when = float(at)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not (_text(uniqueid) and _text(linkedid) and _text(kind)) or when != when:  # NaN
        return None
    cause, source = _hangup_extra(extra) if kind == HANGUP else (None, "")
    return ChannelEvent(
        row=row_number, kind=_text(kind), at=when, uniqueid=_text(uniqueid),
        linkedid=_text(linkedid), channel=_text(channel), context=_text(context),
        exten=_text(exten), caller_number=_text(number), caller_name=_text(name),
        app=_text(app), app_data=_text(app_data), hangup_cause=cause, hangup_source=source)


def _text(value: object) -> str:
    """Text as Asterisk wrote it, minus NUL (no database stores it) and cut to MAX_TEXT."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return str(value).replace("\0", "")[:MAX_TEXT]


def _hangup_extra(extra: object) -> tuple[int | None, str]:
    """HANGUP's extra: ``{"hangupcause":16,"hangupsource":"PJSIP/…","dialstatus":"…"}``."""
    try:
        data = json.loads(_text(extra)) if extra else {}
    except ValueError:
        return None, ""
    if not isinstance(data, dict):
        return None, ""
    cause = data.get("hangupcause")
    source = data.get("hangupsource")
    return (cause if isinstance(cause, int) and not isinstance(cause, bool) else None,
            _text(source) if isinstance(source, str) else "")
