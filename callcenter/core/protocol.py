"""Protocol numbers: the number every contact gets at its start and is told (SAC rules).

``YYYYMMDDhhmmss`` (UTC, when the call started) followed by the six last digits of the
sequence part of Asterisk's unique id: sortable by time as text and as a number, unique as
long as Asterisk does not hand out the same sequence twice within one second (it counts up
from its start). Twenty digits, so a caller can key it into a later self-service lookup.
"""

from __future__ import annotations

from datetime import UTC, datetime

SEQUENCE_DIGITS = 6


def protocol_number(started_at: float, call_id: str) -> str:
    """``20261128225901000017`` for a call started 2026-11-28 22:59:01 UTC, id ``….17``."""
    stamp = datetime.fromtimestamp(started_at, tz=UTC).strftime("%Y%m%d%H%M%S")
    _, _, sequence = call_id.rpartition(".")
    digits = "".join(c for c in sequence if c.isdigit()) or "0"
    return stamp + digits[-SEQUENCE_DIGITS:].rjust(SEQUENCE_DIGITS, "0")
