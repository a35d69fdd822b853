"""The FastAGI protocol without sockets: bytes in, typed items out; commands quoted safely."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.asterisk.agi import (
    MAX_COMMAND_BYTES,
    AgiArgumentError,
    AgiConnection,
    AgiEnvironment,
    AgiHangupNotice,
    AgiItem,
    AgiProtocolError,
    AgiResponse,
    AgiState,
    format_command,
    parse_response,
)

ENVIRONMENT = (
    b"agi_network: yes\n"
    b"agi_network_script: ivr\n"
    b"agi_request: agi://127.0.0.1:4573/ivr\n"
    b"agi_channel: PJSIP/caller-00000007\n"
    b"agi_language: en\n"
    b"agi_type: PJSIP\n"
    b"agi_uniqueid: 1732822000.14\n"
    b"agi_version: 22.1.0\n"
    b"agi_callerid: 0612345678\n"
    b"agi_calleridname: J\xc3\xa9r\xc3\xb4me\n"
    b"agi_callingpres: 0\n"
    b"agi_callingani2: 0\n"
    b"agi_callington: 0\n"
    b"agi_callingtns: 0\n"
    b"agi_dnid: 100\n"
    b"agi_rdnis: unknown\n"
    b"agi_context: from-callers\n"
    b"agi_extension: 100\n"
    b"agi_priority: 2\n"
    b"agi_enhanced: 0.0\n"
    b"agi_accountcode: \n"
    b"agi_threadid: 140234\n"
    b"agi_arg_1: main\n"
    b"agi_arg_2: fr\n"
    b"\n"
)


def asterisk_parse_args(line: str) -> list[str]:
    """res_agi.c parse_args(), transcribed: how Asterisk 22 splits a command line."""
    args: list[list[str]] = []
    quoted = escaped = False
    whitespace = True
    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                args.append([])
                whitespace = False
            continue
        if char in " \t" and not quoted and not escaped:
            whitespace = True
            continue
        if char == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            args.append([])
            whitespace = False
        args[-1].append(char)
        escaped = False
    return ["".join(arg) for arg in args]


def ready_connection() -> AgiConnection:
    connection = AgiConnection()
    connection.feed(ENVIRONMENT)
    return connection


# --------------------------------------------------------------------------- environment


def test_the_environment_block_becomes_a_typed_environment() -> None:
    connection = AgiConnection()
    [environment] = connection.feed(ENVIRONMENT)
    assert isinstance(environment, AgiEnvironment)
    assert environment.path == "ivr"
    assert environment.request == "agi://127.0.0.1:4573/ivr"
    assert environment.channel == "PJSIP/caller-00000007"
    assert environment.uniqueid == "1732822000.14"
    assert environment.callerid == "0612345678"
    assert environment.calleridname == "Jérôme"
    assert environment.dnid == "100"
    assert environment.extension == "100"
    assert environment.context == "from-callers"
    assert environment.language == "en"
    assert environment.args == ("main", "fr")
    assert environment.raw["agi_accountcode"] == ""
    assert environment.raw["agi_rdnis"] == "unknown"
    assert connection.state is AgiState.READY


def test_the_environment_parses_the_same_whatever_the_split() -> None:
    whole = AgiConnection().feed(ENVIRONMENT)
    for split in range(len(ENVIRONMENT) + 1):
        connection = AgiConnection()
        items = connection.feed(ENVIRONMENT[:split]) + connection.feed(ENVIRONMENT[split:])
        assert items == whole, f"split at byte {split}"
    connection = AgiConnection()
    assert [item for byte in ENVIRONMENT for item in connection.feed(bytes([byte]))] == whole


def test_the_path_comes_from_the_request_when_asterisk_sends_no_network_script() -> None:
    block = b"agi_request: agi://10.0.0.5:4573/queue/sales?x=1\nagi_channel: PJSIP/a-1\n\n"
    [environment] = AgiConnection().feed(block)
    assert isinstance(environment, AgiEnvironment)
    assert environment.path == "queue/sales"
    assert environment.args == ()


def test_arguments_keep_their_numeric_order_past_nine() -> None:
    lines = b"".join(f"agi_arg_{i}: a{i}\n".encode() for i in range(12, 0, -1))
    [environment] = AgiConnection().feed(b"agi_network_script: x\n" + lines + b"\n")
    assert isinstance(environment, AgiEnvironment)
    assert environment.args == tuple(f"a{i}" for i in range(1, 13))


@pytest.mark.parametrize(
    "garbage",
    [b"GET / HTTP/1.1\r\n\r\n", b"\n", b"agi_channel PJSIP/x\n\n", b"hello: world\n\n"],
)
def test_something_that_is_not_an_environment_is_a_protocol_error(garbage: bytes) -> None:
    connection = AgiConnection()
    with pytest.raises(AgiProtocolError):
        connection.feed(garbage)
    assert connection.state is AgiState.ERROR
    with pytest.raises(AgiProtocolError, match="already failed"):
        connection.feed(b"agi_channel: x\n\n")


def test_an_environment_over_64_kib_is_refused() -> None:
    connection = AgiConnection()
    with pytest.raises(AgiProtocolError, match="environment is longer"):
        for index in range(17):  # distinct keys: a repeated one is refused at once
            connection.feed(b"agi_x_padding_%d: " % index + b"y" * 4000 + b"\n")


def test_a_line_over_8_kib_is_refused_even_before_its_newline() -> None:
    connection = ready_connection()
    connection.command("ANSWER")
    with pytest.raises(AgiProtocolError, match="longer than 8192"):
        connection.feed(b"200 result=1 (" + b"x" * 9000)


def test_no_command_can_be_sent_before_the_environment() -> None:
    with pytest.raises(AgiProtocolError, match="awaiting environment"):
        AgiConnection().command("ANSWER")


# --------------------------------------------------------------------------- responses


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=0", AgiResponse(200, 0, "0", None, None, "", "200 result=0")),
        (
            "200 result=1 (timeout) endpos=1234",
            AgiResponse(200, 1, "1", "timeout", 1234, "(timeout) endpos=1234",
                        "200 result=1 (timeout) endpos=1234"),
        ),
        (
            "200 result=49 endpos=8000",
            AgiResponse(200, 49, "49", None, 8000, "endpos=8000", "200 result=49 endpos=8000"),
        ),
        ("200 result=-1", AgiResponse(200, -1, "-1", None, None, "", "200 result=-1")),
        (
            "200 result= (timeout)",
            AgiResponse(200, None, "", "timeout", None, "(timeout)", "200 result= (timeout)"),
        ),
        (
            "200 result=0123 (timeout)",
            AgiResponse(200, 123, "0123", "timeout", None, "(timeout)",
                        "200 result=0123 (timeout)"),
        ),
        (
            "200 result=1 (he said (hi) endpos=5)",
            AgiResponse(200, 1, "1", "he said (hi) endpos=5", None,
                        "(he said (hi) endpos=5)", "200 result=1 (he said (hi) endpos=5)"),
        ),
        (
            "510 Invalid or unknown command",
            AgiResponse(510, None, "", None, None, "Invalid or unknown command",
                        "510 Invalid or unknown command"),
        ),
    ],
)
def test_response_lines_are_parsed(line: str, expected: AgiResponse) -> None:
    assert parse_response(line) == expected


def test_get_data_digits_with_a_star_keep_their_text() -> None:
    response = parse_response("200 result=12*")
    assert response.result is None
    assert response.result_text == "12*"


TRANSCRIPT = (
    b"200 result=0\n"
    b"HANGUP\n"
    b"520-Invalid command syntax.  Proper usage follows:\n"
    b" Usage: GET DATA <file to be streamed> [timeout] [maxdigits]\n"
    b"\n"
    b"520 End of proper usage.\n"
    b"511 Command Not Permitted on a dead channel or intercept routine\n"
)


def transcript_items(chunks: list[bytes]) -> list[AgiItem]:
    connection = ready_connection()
    for _ in range(3):
        connection.command("ANSWER")
    items: list[AgiItem] = []
    for chunk in chunks:
        items += connection.feed(chunk)
    assert connection.responses_pending == 0
    assert connection.hangup_received
    return items


def test_a_session_transcript_yields_responses_hangup_and_usage_in_order() -> None:
    items = transcript_items([TRANSCRIPT])
    assert [type(item).__name__ for item in items] == [
        "AgiResponse", "AgiHangupNotice", "AgiResponse", "AgiResponse",
    ]
    usage = items[2]
    assert isinstance(usage, AgiResponse)
    assert usage.code == 520
    assert "Usage: GET DATA" in usage.text
    assert usage.text.endswith("End of proper usage.")
    assert usage.raw.count("\n") == 3
    dead = items[3]
    assert isinstance(dead, AgiResponse)
    assert dead.code == 511
    assert dead.text.startswith("Command Not Permitted on a dead channel")


def test_the_transcript_parses_the_same_fed_byte_by_byte_or_split_anywhere() -> None:
    whole = transcript_items([TRANSCRIPT])
    assert transcript_items([bytes([b]) for b in TRANSCRIPT]) == whole
    for split in range(len(TRANSCRIPT) + 1):
        assert transcript_items([TRANSCRIPT[:split], TRANSCRIPT[split:]]) == whole


def test_hangup_may_arrive_before_the_response_it_interrupts() -> None:
    connection = ready_connection()
    connection.command("STREAM FILE", "welcome", "")
    items = connection.feed(b"HANGUP\n200 result=-1 endpos=1600\n")
    assert items[0] == AgiHangupNotice()
    assert isinstance(items[1], AgiResponse)
    assert items[1].result == -1


def test_hangup_right_behind_the_environment_is_not_lost() -> None:
    items = AgiConnection().feed(ENVIRONMENT + b"HANGUP\n")
    assert isinstance(items[0], AgiEnvironment)
    assert items[1] == AgiHangupNotice()


def test_a_trying_line_is_not_the_final_answer() -> None:
    connection = ready_connection()
    connection.command("EXEC", "Wait", "1")
    items = connection.feed(b"100 result=0 Trying...\n")
    assert connection.responses_pending == 1
    items += connection.feed(b"200 result=0\n")
    assert [item.code for item in items if isinstance(item, AgiResponse)] == [100, 200]
    assert connection.responses_pending == 0


def test_a_response_nobody_asked_for_is_a_protocol_error() -> None:
    connection = ready_connection()
    with pytest.raises(AgiProtocolError, match="no command outstanding"):
        connection.feed(b"200 result=0\n")


def test_garbage_after_the_environment_is_a_protocol_error() -> None:
    connection = ready_connection()
    connection.command("ANSWER")
    with pytest.raises(AgiProtocolError, match="not an AGI response"):
        connection.feed(b"hello there\n")


def test_a_usage_block_that_never_ends_is_bounded() -> None:
    connection = ready_connection()
    connection.command("GET DATA")
    connection.feed(b"520-Invalid command syntax.  Proper usage follows:\n")
    with pytest.raises(AgiProtocolError, match="usage block longer"):
        for _ in range(100):
            connection.feed(b"x" * 1000 + b"\n")


# --------------------------------------------------------------------------- commands


def test_every_argument_is_quoted_and_escaped() -> None:
    line = format_command("SET VARIABLE", "GREETING", 'say "hi" \\ bye')
    assert line == b'SET VARIABLE "GREETING" "say \\"hi\\" \\\\ bye"\n'
    assert asterisk_parse_args(line.decode().rstrip("\n")) == [
        "SET", "VARIABLE", "GREETING", 'say "hi" \\ bye',
    ]


def test_numbers_and_empty_arguments_survive_quoting() -> None:
    line = format_command("STREAM FILE", "welcome", "")
    assert line == b'STREAM FILE "welcome" ""\n'
    assert asterisk_parse_args(line.decode()[:-1]) == ["STREAM", "FILE", "welcome", ""]
    line = format_command("GET DATA", "beep", 3000, 1)
    assert asterisk_parse_args(line.decode()[:-1]) == ["GET", "DATA", "beep", "3000", "1"]


@pytest.mark.parametrize("bad", ["a\nEXEC System x", "a\rb", "nul\0", "\n"])
def test_line_breaks_and_nul_in_an_argument_are_refused(bad: str) -> None:
    with pytest.raises(AgiArgumentError, match="argument 2 contains a line break or NUL"):
        format_command("SET VARIABLE", "X", bad)


@pytest.mark.parametrize("name", ["", "ANSWER\n", "EXEC;", 'SET "X"', " ANSWER", "ANSWER  NOW"])
def test_a_command_name_must_be_plain_words(name: str) -> None:
    with pytest.raises(AgiArgumentError, match="must be words of letters"):
        format_command(name)


@pytest.mark.parametrize("bad", [None, 1.5, True, b"bytes"])
def test_arguments_must_be_text_or_whole_numbers(bad: object) -> None:
    with pytest.raises(AgiArgumentError, match="argument 1 must be text"):
        format_command("VERBOSE", bad)  # type: ignore[arg-type]


def test_a_line_longer_than_asterisk_reads_is_refused() -> None:
    """Asterisk would cut it and run the tail as a second command."""
    fits = "x" * (MAX_COMMAND_BYTES - len(b'SET VARIABLE "X" ""\n'))
    assert len(format_command("SET VARIABLE", "X", fits)) == MAX_COMMAND_BYTES
    with pytest.raises(AgiArgumentError, match="at most 2047"):
        format_command("SET VARIABLE", "X", fits + "x")


def test_a_refused_command_is_not_counted_as_sent() -> None:
    connection = ready_connection()
    with pytest.raises(AgiArgumentError):
        connection.command("SET VARIABLE", "X", "a\nb")
    assert connection.responses_pending == 0


SAFE_TEXT = st.text(
    alphabet=st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)),
    max_size=200,
)


@given(value=SAFE_TEXT, name=SAFE_TEXT)
def test_any_text_without_line_breaks_round_trips_through_asterisks_parser(
    value: str, name: str
) -> None:
    line = format_command("SET VARIABLE", name, value).decode("utf-8")
    assert line.endswith("\n") and line.count("\n") == 1
    assert asterisk_parse_args(line[:-1]) == ["SET", "VARIABLE", name, value]


@given(
    before=SAFE_TEXT,
    bad=st.sampled_from(["\r", "\n", "\0", "\r\n"]),
    after=SAFE_TEXT,
)
def test_any_text_with_a_line_break_or_nul_is_refused(before: str, bad: str, after: str) -> None:
    with pytest.raises(AgiArgumentError):
        format_command("SET VARIABLE", "X", before + bad + after)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_parser(data: bytes) -> None:
    connection = AgiConnection()
    try:
        connection.feed(data)
        connection.feed(b"\n\n")
    except AgiProtocolError:
        assert connection.state is AgiState.ERROR
