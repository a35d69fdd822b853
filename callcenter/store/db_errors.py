"""What a database failure means, decided in one place for the record writer and the web.

Two questions are asked of an exception raised by a repository:

- ``classify``: is it about *this* write (the database refused its data: retrying it can
  never succeed, so it must not hold up the writes behind it), or about the database
  (down, restarting, overloaded: retry later, as every other write would fail too)?
- ``is_unavailable``: is the database unreachable (the web answers 503, not 500)?

Drivers do not agree on exception classes: asyncpg's "cannot contain NUL" arrives as a
bare ``DBAPIError`` (not a ``DataError``), and a refused connection as a raw
``ConnectionRefusedError``. So PostgreSQL errors are told apart by their SQLSTATE class,
and SQLite's (which have none) by SQLAlchemy's exception classes.
"""

from __future__ import annotations

from enum import Enum

from sqlalchemy import exc as sa

# SQLSTATE classes meaning "this statement's data is wrong": 22 data exception (a NUL byte,
# a bad encoding, a value out of range), 23 integrity constraint violation.
REFUSED_DATA_CLASSES = frozenset({"22", "23"})
# SQLSTATE classes and codes meaning "no database to talk to right now": 08 connection
# exception, 53 insufficient resources (too many connections, disk full), 57P01..57P05
# administrator shutdown, crash shutdown, cannot connect now (starting up), idle timeouts.
UNAVAILABLE_CLASSES = frozenset({"08", "53"})
UNAVAILABLE_CODES = frozenset({"57P01", "57P02", "57P03", "57P04", "57P05"})
DRIVER_MODULES = ("sqlalchemy.", "asyncpg.", "aiosqlite.", "sqlite3.")
REASON_LIMIT = 2000  # characters of an error message kept as a dead letter's reason


class Failure(Enum):
    PERMANENT = "permanent"  # this record's data is refused: retrying cannot help
    TRANSIENT = "transient"  # the database is away or busy: retry later


def classify(error: BaseException) -> Failure:
    """Whether a failed write of one record can ever succeed by retrying it.

    Unknown errors count as transient: wrongly retrying costs time, wrongly giving up on a
    record moves it aside (the writer also moves aside a record that keeps failing while
    others are stored, so an unknown record-specific error cannot block them forever).
    """
    if is_unavailable(error):
        return Failure.TRANSIENT
    state = sqlstate(error)
    if state is not None:
        return Failure.PERMANENT if state[:2] in REFUSED_DATA_CLASSES else Failure.TRANSIENT
    if isinstance(error, sa.IntegrityError | sa.DataError):
        return Failure.PERMANENT
    if isinstance(error, sa.DBAPIError):
        return Failure.TRANSIENT
    if isinstance(error, sa.StatementError):
        # Raised before the driver saw the statement: a bind parameter could not be
        # converted (a naive datetime, a string that will not encode).
        return Failure.PERMANENT
    if isinstance(error, ValueError | TypeError):
        # The repository's own checks (a NUL in a text field, a non-finite time) and
        # UnicodeEncodeError: properties of the record, not of the database.
        return Failure.PERMANENT
    return Failure.TRANSIENT


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be reached (or is shutting down)."""
    if isinstance(error, sa.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa.OperationalError | sa.InterfaceError | sa.DisconnectionError
                  | sa.TimeoutError):  # sa.TimeoutError: no pooled connection in time
        state = sqlstate(error)
        return state is None or _unavailable_state(state)
    state = sqlstate(error)
    if state is not None:
        return _unavailable_state(state)
    # asyncpg raises these raw while connecting: refused, unresolvable host, timeout. Only
    # when they come from the driver: a web client hanging up is no database outage.
    return isinstance(error, OSError | TimeoutError) and _raised_by_driver(error)


def sqlstate(error: BaseException) -> str | None:
    """The five-character SQLSTATE of a PostgreSQL error (asyncpg's, raw or wrapped)."""
    for candidate in (getattr(error, "orig", None), error):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str) and len(state) == 5:
            return state
    return None


def describe(error: BaseException) -> str:
    """A short one-line reason: the class and the first line of the message, with control
    characters (a NUL from the refused data, say) shown escaped."""
    message = str(getattr(error, "orig", None) or error).strip().splitlines()
    first = message[0] if message else ""
    text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return shown[:REASON_LIMIT]


def _raised_by_driver(error: BaseException) -> bool:
    traceback = error.__traceback__
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if module.startswith(DRIVER_MODULES):
            return True
        traceback = traceback.tb_next
    return False


def _unavailable_state(state: str) -> bool:
    return state[:2] in UNAVAILABLE_CLASSES or state in UNAVAILABLE_CODES
