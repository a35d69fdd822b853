"""Caller IDs as a caller controls them: cleaned for use, kept raw (escaped) for the record.

A caller chooses the bytes of their SIP From header; Asterisk decodes ``%0d%0a`` in the user
part and copies the number unescaped into AGI and AMI, where a line break starts a new line.
The generated dialplan (``asterisk/confgen.py``, ``clean_caller_id_lines``) cleans the number
and the name before anything reads them; these functions apply the same rules to what AMI
reports from before the dialplan ran, so both sources agree on a call's caller ID.

What the caller sent: PJSIP keeps a quoted display name's quoted-pairs (``"O\\"Brien"`` gives
``O\\"Brien``); ``clean_name`` undoes them, so the record says ``O"Brien``.
"""

from __future__ import annotations

import re
from urllib.parse import quote

NUMBER_MAX = 40
NAME_MAX = 80
# The dialplan's FILTER() keeps the same characters (a unit test keeps them in step).
_NOT_IN_NUMBER = re.compile(r"[^0-9A-Za-z+*#.\-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_UNKNOWN = ("", "<unknown>", "unknown")


def clean_number(number: str | None) -> str | None:
    """Digits, letters and ``+*#.-``, at most NUMBER_MAX; None when nothing is left."""
    if number is None or number in _UNKNOWN:
        return None
    cleaned = _NOT_IN_NUMBER.sub("", number)[:NUMBER_MAX]
    return cleaned or None


def clean_name(name: str | None) -> str | None:
    """The name the caller sent (quoted-pairs undone), without control characters, at most
    NAME_MAX characters; None when nothing is left."""
    if name is None or name in _UNKNOWN:
        return None
    cleaned = _CONTROL.sub("", _QUOTED_PAIR.sub(r"\1", name))[:NAME_MAX]
    return cleaned or None


# Asterisk's URIENCODE() leaves RFC 2396's unreserved characters as they are (ast_uri_http).
_URI_UNRESERVED = "-_.!~*'()"


def raw_caller_id(name: str, number: str) -> str:
    """``<name> <<number>>``, each part URI-encoded as the dialplan's URIENCODE() does: no
    space, quote, angle bracket or control byte is left, so the record shows exactly which
    bytes the caller sent and none of them can do harm where it is shown."""
    return f"{_uri_encode(name)} <{_uri_encode(number)}>"


def _uri_encode(text: str) -> str:
    return quote(text.encode("utf-8", errors="surrogateescape"), safe=_URI_UNRESERVED)
