"""The FastAGI protocol without I/O: bytes from Asterisk in, typed items out.

``AgiConnection`` is a small state machine in the manner of h11: ``feed(bytes)`` returns the
items it could parse (the environment block, responses, hangup notices) and ``command()``
returns the bytes of a command line to write. It never touches a socket, so tests drive it
with plain bytes. Every command line is built by ``format_command``, the one place that quotes.

What Asterisk sends (res_agi.c):

- the environment: ``agi_xxx: value`` lines ended by an empty line. Values are written
  unescaped: a caller ID holding a line break would start a line of its own. The dialplan
  cleans caller IDs first (confgen ``clean_caller_id_lines``); as a second line of defence a
  repeated key rejects the environment (identity and script keys precede the caller ID, so a
  forged one always repeats), and so does anything left over after a blank line cut it short
  (a response with no command outstanding);
- one response per command: ``200 result=1 (data) endpos=1234``, ``510 Invalid or unknown
  command``, ``511 Command Not Permitted on a dead channel``, or a ``520-`` block of usage
  lines ended by ``520 End of proper usage.``;
- ``HANGUP`` on a line of its own when the channel hangs up, at any moment between lines.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit

MAX_LINE_BYTES = 8 * 1024
MAX_ENVIRONMENT_BYTES = 64 * 1024
MAX_USAGE_BYTES = 64 * 1024
# Asterisk reads a command with fgets() into a 2048-byte buffer: a longer line is cut and its
# tail runs as a second command. So a line (newline included) may not exceed 2047 bytes.
MAX_COMMAND_BYTES = 2047

_COMMAND_NAME_RE = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*\Z")
_ENVIRONMENT_KEY_RE = re.compile(r"agi_[a-z0-9_]+\Z")
_FORBIDDEN_IN_ARGUMENT = ("\r", "\n", "\0")


class AgiError(Exception):
    """Base class of every FastAGI error."""


class AgiProtocolError(AgiError):
    """The peer broke the AGI protocol (garbage, an oversized line, an unexpected response)."""


class AgiArgumentError(AgiError, ValueError):
    """A command or argument we were asked to send is unsafe or malformed; nothing was sent."""


class AgiHangup(AgiError):
    """The channel hung up (HANGUP notice, 511, result -1 on a dead channel, or socket closed)."""


class AgiRecordingHangup(AgiHangup):
    """The channel hung up during RECORD FILE. ``outcome`` (ended_by "hangup") keeps how much
    was recorded before: a caller who speaks a message and hangs up has left a message."""

    def __init__(self, message: str, outcome: RecordOutcome) -> None:
        super().__init__(message)
        self.outcome = outcome


class AgiCommandError(AgiError):
    """Asterisk refused a command (510 unknown, 520 bad syntax) or it failed on a live channel."""

    def __init__(self, command: str, response: AgiResponse | None, reason: str) -> None:
        super().__init__(f"{command}: {reason}")
        self.command = command
        self.response = response
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AgiEnvironment:
    """The ``agi_*`` block Asterisk sends first. Values are verbatim (Asterisk writes
    ``unknown`` for an absent caller ID or DNID); ``raw`` holds every line by its key."""

    request: str  # agi_request, e.g. "agi://127.0.0.1:4573/ivr"
    path: str  # the script part of the URL without slashes or query: "ivr"
    channel: str
    uniqueid: str
    callerid: str
    calleridname: str
    dnid: str
    extension: str
    context: str
    language: str
    args: tuple[str, ...]  # agi_arg_1 .. agi_arg_n, in order
    raw: Mapping[str, str]

    @classmethod
    def from_lines(cls, lines: Mapping[str, str]) -> AgiEnvironment:
        numbered: dict[int, str] = {}
        for key, value in lines.items():
            suffix = key[len("agi_arg_") :]
            if key.startswith("agi_arg_") and suffix.isascii() and suffix.isdigit():
                numbered[int(suffix)] = value
        request = lines.get("agi_request", "")
        return cls(
            request=request,
            path=_script_path(lines.get("agi_network_script"), request),
            channel=lines.get("agi_channel", ""),
            uniqueid=lines.get("agi_uniqueid", ""),
            callerid=lines.get("agi_callerid", ""),
            calleridname=lines.get("agi_calleridname", ""),
            dnid=lines.get("agi_dnid", ""),
            extension=lines.get("agi_extension", ""),
            context=lines.get("agi_context", ""),
            language=lines.get("agi_language", ""),
            args=tuple(numbered[index] for index in sorted(numbered)),
            raw=MappingProxyType(dict(lines)),
        )


def _script_path(network_script: str | None, request: str) -> str:
    """``agi://host:port/ivr?x=1`` → ``ivr``; Asterisk's own agi_network_script wins."""
    if network_script is None:
        try:
            network_script = urlsplit(request).path
        except ValueError:
            network_script = ""
    return network_script.partition("?")[0].strip("/")


@dataclass(frozen=True, slots=True)
class AgiResponse:
    """One response line (or a 520 usage block) from Asterisk.

    ``result`` is the ``result=`` value as a number, None when absent or not a number (GET DATA
    answers digits such as ``"0123"`` or ``"12*"``: read ``result_text`` for those). ``data`` is
    the text in parentheses (``(timeout)``, a variable's value), ``text`` what follows the code
    for other responses (the message of a 510, the usage of a 520).
    """

    code: int
    result: int | None
    result_text: str
    data: str | None
    endpos: int | None
    text: str
    raw: str

    @property
    def ok(self) -> bool:
        return self.code == 200


@dataclass(frozen=True, slots=True)
class AgiHangupNotice:
    """Asterisk wrote ``HANGUP``: the channel is gone (commands may still get an answer)."""


AgiItem = AgiEnvironment | AgiResponse | AgiHangupNotice


class AgiState(enum.Enum):
    AWAITING_ENVIRONMENT = "awaiting environment"
    READY = "ready"
    ERROR = "error"


def _strict_int(text: str) -> int | None:
    digits = text[1:] if text.startswith("-") else text
    if digits and digits.isascii() and digits.isdigit():
        return int(text)
    return None


def parse_response(line: str) -> AgiResponse:
    """Parse one single-line response such as ``200 result=1 (timeout) endpos=1234``."""
    code_text, separator, rest = line[:3], line[3:4], line[4:]
    if not (code_text.isascii() and code_text.isdigit()) or separator not in (" ", ""):
        raise AgiProtocolError(f"not an AGI response line: {line[:80]!r}")
    code = int(code_text)
    if not rest.startswith("result="):
        return AgiResponse(code, None, "", None, None, rest.strip(), line)
    result_text, _, remainder = rest[len("result=") :].partition(" ")
    remainder = remainder.strip()
    data: str | None = None
    trailer = remainder
    if remainder.startswith("("):
        # rfind: a variable's value may itself contain parentheses.
        close = remainder.rfind(")")
        if close > 0:
            data, trailer = remainder[1:close], remainder[close + 1 :]
        else:
            data, trailer = remainder[1:], ""
    endpos: int | None = None
    for token in trailer.split():
        key, _, value = token.partition("=")
        if key == "endpos":
            endpos = _strict_int(value)
    return AgiResponse(code, _strict_int(result_text), result_text, data, endpos, remainder, line)


def quote_argument(value: str) -> str:
    """Quote one argument the way res_agi's parse_args() reads it back."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_command(name: str, *args: str | int) -> bytes:
    """The one place an AGI command line is built: ``NAME "arg1" "arg2"\\n`` in UTF-8.

    Every argument is quoted with ``\\`` and ``"`` escaped. An argument holding CR, LF or NUL,
    a command name that is not plain words, or a line too long for Asterisk's buffer raises
    AgiArgumentError: nothing can smuggle a second command onto the wire.
    """
    if not isinstance(name, str) or not _COMMAND_NAME_RE.match(name):
        raise AgiArgumentError(f"AGI command name {name!r} must be words of letters")
    parts = [name]
    for position, arg in enumerate(args, start=1):
        if isinstance(arg, bool) or not isinstance(arg, (str, int)):
            raise AgiArgumentError(
                f"{name}: argument {position} must be text or a whole number, got {arg!r}"
            )
        text = str(arg)
        if any(bad in text for bad in _FORBIDDEN_IN_ARGUMENT):
            raise AgiArgumentError(
                f"{name}: argument {position} contains a line break or NUL: {text[:40]!r}"
            )
        parts.append(quote_argument(text))
    try:
        line = (" ".join(parts) + "\n").encode("utf-8")
    except UnicodeEncodeError as exc:
        raise AgiArgumentError(f"{name}: an argument is not encodable text ({exc})") from None
    if len(line) > MAX_COMMAND_BYTES:
        raise AgiArgumentError(
            f"{name}: the command is {len(line)} bytes; Asterisk reads at most "
            f"{MAX_COMMAND_BYTES} per line"
        )
    return line


class AgiConnection:
    """The FastAGI conversation of one call, without I/O.

    ``feed()`` raises AgiProtocolError on garbage and the connection stays in the ERROR state
    (further feeds raise too). Responses are counted against commands: Asterisk answers each
    command exactly once, in order, so a response with no command outstanding is an error.
    """

    def __init__(
        self,
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_environment_bytes: int = MAX_ENVIRONMENT_BYTES,
    ) -> None:
        self.state = AgiState.AWAITING_ENVIRONMENT
        self.environment: AgiEnvironment | None = None
        self.hangup_received = False
        self.responses_pending = 0
        self._max_line = max_line_bytes
        self._max_environment = max_environment_bytes
        self._buffer = bytearray()
        self._environment_lines: dict[str, str] = {}
        self._environment_bytes = 0
        self._usage_lines: list[str] | None = None  # inside a "520-" block
        self._usage_bytes = 0

    # ------------------------------------------------------------------ outgoing

    def command(self, name: str, *args: str | int) -> bytes:
        """The bytes of one command; afterwards one response is expected."""
        if self.state is not AgiState.READY:
            raise AgiProtocolError(f"cannot send {name} while the connection is {self.state.value}")
        line = format_command(name, *args)
        self.responses_pending += 1
        return line

    # ------------------------------------------------------------------ incoming

    def feed(self, data: bytes) -> list[AgiItem]:
        if self.state is AgiState.ERROR:
            raise AgiProtocolError("the connection already failed; no more data is accepted")
        self._buffer += data
        items: list[AgiItem] = []
        try:
            while True:
                end = self._buffer.find(b"\n")
                if end < 0:
                    if len(self._buffer) > self._max_line:
                        raise AgiProtocolError(
                            f"a line longer than {self._max_line} bytes without a newline"
                        )
                    break
                raw_line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                if len(raw_line) > self._max_line:
                    raise AgiProtocolError(f"a line longer than {self._max_line} bytes")
                if raw_line.endswith(b"\r"):
                    raw_line = raw_line[:-1]
                item = self._line(raw_line.decode("utf-8", errors="replace"), len(raw_line))
                if item is not None:
                    items.append(item)
        except AgiProtocolError:
            self.state = AgiState.ERROR
            raise
        return items

    def _line(self, line: str, size: int) -> AgiItem | None:
        if self.state is AgiState.AWAITING_ENVIRONMENT:
            return self._environment_line(line, size)
        if self._usage_lines is not None:
            return self._usage_line(line, size)
        if line == "HANGUP":
            self.hangup_received = True
            return AgiHangupNotice()
        if not line:
            return None  # stray blank line: harmless
        if len(line) >= 4 and line[3] == "-" and line[:3].isascii() and line[:3].isdigit():
            self._expect_response(line)
            self._usage_lines = [line]
            self._usage_bytes = size
            return None
        response = parse_response(line)
        if response.code == 100:  # "100 result=0 Trying...": the final answer follows
            return response
        self._expect_response(line)
        self.responses_pending -= 1
        return response

    def _environment_line(self, line: str, size: int) -> AgiItem | None:
        self._environment_bytes += size + 1
        if self._environment_bytes > self._max_environment:
            raise AgiProtocolError(
                f"the AGI environment is longer than {self._max_environment} bytes"
            )
        if not line:
            if not self._environment_lines:
                raise AgiProtocolError("the AGI environment is empty")
            self.environment = AgiEnvironment.from_lines(self._environment_lines)
            self._environment_lines = {}
            self.state = AgiState.READY
            return self.environment
        key, colon, value = line.partition(":")
        if not colon or not _ENVIRONMENT_KEY_RE.match(key):
            raise AgiProtocolError(f"not an AGI environment line: {line[:80]!r}")
        if key in self._environment_lines:
            # Asterisk writes each key once; agi_channel, agi_uniqueid and the script come
            # before the caller ID, so a second one is a caller's line break at work.
            raise AgiProtocolError(
                f"the AGI environment repeats {key}: a value broke its line, it is not trusted"
            )
        self._environment_lines[key] = value[1:] if value.startswith(" ") else value
        return None

    def _usage_line(self, line: str, size: int) -> AgiItem | None:
        assert self._usage_lines is not None
        self._usage_bytes += size + 1
        if self._usage_bytes > MAX_USAGE_BYTES:
            raise AgiProtocolError(f"a usage block longer than {MAX_USAGE_BYTES} bytes")
        self._usage_lines.append(line)
        first = self._usage_lines[0]
        if not line.startswith(first[:3] + " "):
            return None
        lines, self._usage_lines = self._usage_lines, None
        self.responses_pending -= 1
        code = int(first[:3])
        text = "\n".join([first[4:], *lines[1:-1], line[4:]])
        return AgiResponse(code, None, "", None, None, text, "\n".join(lines))

    def _expect_response(self, line: str) -> None:
        if self.responses_pending <= 0:
            raise AgiProtocolError(f"a response with no command outstanding: {line[:80]!r}")


# --------------------------------------------------------------------------- RECORD FILE
#
# Asterisk 22's res_agi answers RECORD FILE with one of (the words in parentheses tell which):
#   200 result=<key code> (dtmf) endpos=N      an escape digit ended it
#   200 result=<ms left> (timeout) endpos=N    the time limit or the silence ended it
#   200 result=-1 (hangup) endpos=N            the channel hung up while recording
#   200 result=-1 (waitfor) endpos=N           waiting for audio failed (usually a hangup)
#   200 result=<res> (randomerror) endpos=N    the beep failed (-1) or a digit cut the beep
#   200 result=-1 (writefile)                  the file could not be created
# "(timeout)" is the same words for both ends: ``result`` is what was left of the time limit
# when it stopped (0 with no limit), so with silence detection on, time left means silence.

RecordEnd = Literal["key", "timeout", "silence", "hangup"]

DTMF_KEYS = frozenset("0123456789*#ABCD")
_RECORD_FORMAT_RE = re.compile(r"[A-Za-z0-9]+\Z")
# A frame of audio is 20 ms: a limit reached leaves at most about that much time unused.
_SILENCE_MIN_TIME_LEFT_MS = 20


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """How a RECORD FILE ended, as far as Asterisk tells.

    ``ended_by``: "key" (``digit`` is the escape digit pressed), "timeout" (the time limit),
    "silence" (``silence_seconds`` of silence) or "hangup" (only on AgiRecordingHangup).
    ``endpos``: where the recording ends, in samples (8,000 a second for 8 kHz formats such
    as wav, gsm or ulaw); 0 when nothing was recorded (a key pressed during the beep).
    """

    ended_by: RecordEnd
    digit: str | None
    endpos: int


def _path_problem(path: str) -> str | None:
    if not path:
        return "is empty"
    for position, char in enumerate(path):
        if char.isspace():
            return f"has a space or line break at position {position}"
        if char in "\"'\\":
            return f"has a quote or backslash at position {position}"
        if ord(char) < 32 or ord(char) == 127:
            return f"has a control character at position {position}"
    return None


def record_file_arguments(
    path: str,
    fmt: str,
    escape_digits: str,
    timeout_ms: int,
    beep: bool,
    silence_seconds: int | None,
) -> tuple[str | int, ...]:
    """The arguments of ``RECORD FILE`` in Asterisk's order, each checked.

    Raises AgiArgumentError (a ValueError) naming the argument and what is wrong with it.
    """
    problem = _path_problem(path) if isinstance(path, str) else "is not text"
    if problem is not None:
        raise AgiArgumentError(
            f"RECORD FILE: the path {path!r} {problem}; it goes on an AGI command line, "
            "so it may hold no spaces, line breaks, quotes or backslashes"
        )
    if not isinstance(fmt, str) or not _RECORD_FORMAT_RE.match(fmt):
        raise AgiArgumentError(
            f"RECORD FILE: the format {fmt!r} must be an Asterisk format name such as "
            "wav, gsm, ulaw or sln16 (letters and digits)"
        )
    bad_keys = sorted({key for key in escape_digits if key not in DTMF_KEYS})
    if bad_keys:
        raise AgiArgumentError(
            f"RECORD FILE: escape_digits {escape_digits!r} holds {''.join(bad_keys)!r}; "
            "only the keys 0-9, *, # and A-D can end a recording"
        )
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or not (
        timeout_ms > 0 or timeout_ms == -1
    ):
        raise AgiArgumentError(
            f"RECORD FILE: timeout_ms {timeout_ms!r} must be a positive number of "
            "milliseconds, or -1 for no limit"
        )
    if silence_seconds is not None and (
        isinstance(silence_seconds, bool)
        or not isinstance(silence_seconds, int)
        or silence_seconds < 1
    ):
        raise AgiArgumentError(
            f"RECORD FILE: silence_seconds {silence_seconds!r} must be a whole number of "
            "seconds, at least 1 (or None for no silence detection)"
        )
    arguments: list[str | int] = [path, fmt, escape_digits, timeout_ms]
    if beep:
        arguments.append("BEEP")
    if silence_seconds is not None:
        arguments.append(f"s={silence_seconds}")
    return tuple(arguments)


def record_outcome(
    response: AgiResponse, *, timeout_ms: int, silence_detection: bool
) -> RecordOutcome:
    """Read Asterisk's answer to RECORD FILE (see the table above).

    A hangup, or a failure that may be one ("waitfor", "randomerror" with -1), comes back
    with ended_by "hangup": the caller decides between hangup and failure. A file that could
    not be written, or an answer of another shape, raises AgiCommandError.
    """
    how, result = response.data, response.result
    endpos = response.endpos if response.endpos is not None else 0
    if how == "dtmf" or (how == "randomerror" and result is not None and result > 0):
        if result is None or not 0 < result < 128 or chr(result) not in DTMF_KEYS:
            raise AgiCommandError("RECORD FILE", response, f"{result} is not a key code")
        return RecordOutcome("key", chr(result), endpos)
    if how == "timeout" and result is not None and result >= 0:
        time_left = timeout_ms < 0 or result > _SILENCE_MIN_TIME_LEFT_MS
        ended_by: RecordEnd = "silence" if silence_detection and time_left else "timeout"
        return RecordOutcome(ended_by, None, endpos)
    if how in ("hangup", "waitfor", "randomerror") and result == -1:
        return RecordOutcome("hangup", None, endpos)
    if how == "writefile":
        raise AgiCommandError(
            "RECORD FILE", response, "Asterisk could not create the file (writefile)"
        )
    raise AgiCommandError("RECORD FILE", response, f"unexpected answer {response.raw!r}")
