"""The call-list parser (core/call_lists.py): every rejection by hand, the accounting as a
property, the CSV text layer's line numbers and caps."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.core.call_lists import (
    MAX_FIELD_CHARS,
    MAX_LINE_CHARS,
    AcceptedRow,
    CallListError,
    CallListParser,
    ColumnMapping,
    DuplicateRow,
    ListProgress,
    RejectedRow,
    RowOutcome,
    TimeZoneSource,
    csv_rows,
)
from callcenter.core.identifiers import E164_RE

MAPPING = ColumnMapping(phone="Phone", name="Name", time_zone="TZ")


def parse(rows: Sequence[Sequence[str | None]], mapping: ColumnMapping = MAPPING,
          region: str = "BR") -> tuple[list[RowOutcome], CallListParser]:
    parser = CallListParser(mapping, region)
    outcomes = list(parser.parse(enumerate(rows, start=1)))
    return outcomes, parser


def parse_csv(text: str, mapping: ColumnMapping = MAPPING,
              region: str = "BR") -> list[RowOutcome]:
    parser = CallListParser(mapping, region)
    return list(parser.parse(csv_rows(text.splitlines(keepends=True))))


def one(rows: Sequence[Sequence[str | None]], region: str = "BR") -> RowOutcome:
    outcomes, _ = parse([["Phone", "Name", "TZ"], *rows], region=region)
    assert len(outcomes) == 1
    return outcomes[0]


def reason(row: Sequence[str], region: str = "BR") -> str:
    outcome = one([row], region)
    assert isinstance(outcome, RejectedRow), outcome
    assert outcome.line == 2
    return outcome.reason


# ------------------------------------------------------------------------ accepted rows

def test_a_national_number_becomes_e164_with_its_zone_and_extra_fields_in_order() -> None:
    outcomes, parser = parse([
        ["Phone", "City", "Name", "Plan", "TZ"],
        ["(11) 98765-4321", "São Paulo", " Ana ", "gold", ""],
    ])
    assert outcomes == [AcceptedRow(
        line=2, number="+5511987654321", name="Ana", name_formula_like=False,
        time_zones=("America/Sao_Paulo",), time_zone_source=TimeZoneSource.NUMBER,
        extra=outcomes[0].extra,  # checked below
    )]
    accepted = outcomes[0]
    assert isinstance(accepted, AcceptedRow)
    assert [(f.column, f.value) for f in accepted.extra] == [("City", "São Paulo"),
                                                             ("Plan", "gold")]
    assert parser.summary().accepted == 1


def test_an_international_number_ignores_the_default_region() -> None:
    outcome = one([["+1 (202) 555-0100", "Bob", ""]])
    assert isinstance(outcome, AcceptedRow)
    assert outcome.number == "+12025550100"
    assert outcome.time_zones == ("America/New_York",)


def test_a_time_zone_override_wins_over_the_number() -> None:
    outcome = one([["+12025550100", "Bob", "America/Chicago"]])
    assert isinstance(outcome, AcceptedRow)
    assert outcome.time_zones == ("America/Chicago",)
    assert outcome.time_zone_source is TimeZoneSource.OVERRIDE


def test_a_time_zone_override_is_matched_whatever_its_case() -> None:
    outcome = one([["+12025550100", "Bob", " america/sao_paulo "]])
    assert isinstance(outcome, AcceptedRow)
    assert outcome.time_zones == ("America/Sao_Paulo",)


def test_a_number_spanning_zones_keeps_them_all_and_is_counted_ambiguous() -> None:
    outcomes, parser = parse([["Phone"], ["+1 800 555 0199"]], ColumnMapping("Phone"))
    accepted = outcomes[0]
    assert isinstance(accepted, AcceptedRow)
    assert accepted.time_zone_ambiguous
    assert {"America/New_York", "America/Los_Angeles"} <= set(accepted.time_zones)
    assert parser.finish().ambiguous_time_zones == 1


def test_header_names_match_case_and_spaces_insensitively() -> None:
    outcomes, _ = parse([[" PHONE ", "name"], ["11987654321", "Ana"]],
                        ColumnMapping("phone", "Name"))
    assert isinstance(outcomes[0], AcceptedRow)
    assert outcomes[0].name == "Ana"


def test_formula_like_cells_are_kept_as_text_and_flagged() -> None:
    outcomes, _ = parse([
        ["Phone", "Name", "Notes", "Other"],
        ["11987654321", "=HYPERLINK(\"x\")", "+cmd|' /C calc'!A0", "@SUM(1)"],
        ["11987654322", "Ana", "-2+3", "plain"],
    ], ColumnMapping("Phone", "Name"))
    first, second = outcomes
    assert isinstance(first, AcceptedRow) and isinstance(second, AcceptedRow)
    assert first.name == "=HYPERLINK(\"x\")" and first.name_formula_like
    assert [(f.value, f.formula_like) for f in first.extra] == [
        ("+cmd|' /C calc'!A0", True), ("@SUM(1)", True)]
    assert [f.formula_like for f in second.extra] == [True, False]
    assert not second.name_formula_like


# ------------------------------------------------------------------------ rejected rows

@pytest.mark.parametrize(("phone", "expected"), [
    ("", "column 'Phone' is empty"),
    ("hello", "'hello' is not a phone number"),
    ("12", "'12' is not a possible number (too short)"),
    ("+999 1234 5678", "its country code does not exist"),
    ("+55 11 1234 567890123", "not a possible number"),
    ("+55 00 3000 0000", "is not a valid number in BR"),
    ("+1 900 555 1234", "a premium-rate number, which campaigns do not call"),
    ("+1 202 555 0100 ext. 12", "has an extension"),
    ("1" * 65, "too long for a phone number"),
])
def test_a_bad_number_is_rejected_with_its_line_and_reason(phone: str, expected: str) -> None:
    assert expected in reason([phone, "Ana", ""])


def test_an_unknown_time_zone_is_rejected() -> None:
    text = reason(["11987654321", "Ana", "Mars/Olympus"])
    assert text == ("column 'TZ': 'Mars/Olympus' is not a known IANA time zone "
                    "(e.g. America/Sao_Paulo)")


def test_a_nul_character_rejects_the_row() -> None:
    assert reason(["11987654321", "A\x00na", ""]) == "column 'Name' contains a NUL character"


def test_an_over_long_cell_rejects_the_row() -> None:
    text = reason(["11987654321", "x" * (MAX_FIELD_CHARS + 1), ""])
    assert text == f"column 'Name' has {MAX_FIELD_CHARS + 1} characters, over the limit " \
                   f"of {MAX_FIELD_CHARS}"


def test_a_value_beyond_the_named_columns_rejects_the_row_but_empty_ones_do_not() -> None:
    assert "4 cells but the header names 3 columns" in reason(
        ["11987654321", "Ana", "", "surplus"])
    assert isinstance(one([["11987654321", "Ana", "", ""]]), AcceptedRow)
    assert isinstance(one([["11987654321"]]), AcceptedRow)  # short rows: missing cells empty


def test_duplicates_are_merged_first_row_wins_and_each_names_the_first_line() -> None:
    outcomes, parser = parse([
        ["Phone", "Name", "TZ"],
        ["11987654321", "Ana", ""],
        ["+55 11 98765-4321", "Ana again", ""],
        ["", "", ""],  # blank: counted, no outcome
        ["011987654321", "Ana thrice", ""],
    ])
    assert outcomes[1:] == [DuplicateRow(3, "+5511987654321", 2),
                            DuplicateRow(5, "+5511987654321", 2)]
    summary = parser.finish()
    assert (summary.rows_read, summary.accepted, summary.duplicates, summary.blank_rows) == (
        3, 1, 2, 1)


def test_a_rejected_number_does_not_count_as_seen() -> None:
    outcomes, _ = parse([["Phone", "Name", "TZ"], ["11987654321", "A", "Nowhere/X"],
                         ["11987654321", "B", ""]])
    assert isinstance(outcomes[0], RejectedRow)
    assert isinstance(outcomes[1], AcceptedRow) and outcomes[1].line == 3


# ----------------------------------------------------------------------- whole-file faults

@pytest.mark.parametrize(("rows", "expected"), [
    ([], "the file is empty: no header row"),
    ([["", ""], [None]], "the file is empty: no header row"),
    ([["Phone", "Name", "TZ"]], "the file has a header (line 1) but no rows"),
    ([["Phone", "Name", "TZ"], ["", "", ""]], "the file has a header (line 1) but no rows"),
    ([["Name", "TZ"], ["x", "y"]],
     "line 1: the header has no column 'Phone' (the phone column of the mapping); "
     "it has: 'Name', 'TZ'"),
    ([["Phone", "Name"], ["x", "y"]],
     "line 1: the header has no column 'TZ' (the time zone column of the mapping)"),
    ([["Phone", "Name", "TZ", "phone "]],
     "line 1, column 4: column 'phone' appears twice in the header (also column 1)"),
    ([["Phone", "", "Name", "TZ"]], "line 1, column 2: the header cell is empty"),
])
def test_a_whole_file_fault_is_a_clear_error_naming_what_and_where(
        rows: list[list[str | None]], expected: str) -> None:
    with pytest.raises(CallListError) as raised:
        parse(rows)
    assert expected in str(raised.value)


def test_a_mapping_naming_one_column_twice_or_an_unknown_region_is_refused() -> None:
    with pytest.raises(ValueError, match="mapped twice"):
        ColumnMapping(phone="Phone", name="phone")
    with pytest.raises(ValueError, match="default region 'XX'"):
        CallListParser(ColumnMapping("Phone"), "XX")


def test_progress_reports_rows_done_and_the_total_given() -> None:
    seen: list[ListProgress] = []
    parser = CallListParser(ColumnMapping("Phone"), "BR", rows_total=5,
                            progress=seen.append, progress_every=2)
    rows = [["Phone"]] + [[f"1198765432{i}"] for i in range(5)]
    list(parser.parse(enumerate(rows, start=1)))
    assert seen == [ListProgress(2, 5), ListProgress(4, 5), ListProgress(5, 5)]


# ------------------------------------------------------------------------------ CSV text

def test_csv_lines_are_physical_lines_across_bom_crlf_and_quoted_newlines() -> None:
    text = ("\ufeffPhone,Name,Notes\r\n"
            "11987654321,Ana,\"two\r\nlines\"\r\n"
            "\r\n"
            "12,Bad,\"x\"\"y\"\r\n"
            "11987654322,\"Bo, Jr\",\"a\nb\nc\"\r\n"
            "xx,Last,\r\n")
    outcomes = parse_csv(text, ColumnMapping("Phone", "Name"))
    assert [(type(o).__name__, o.line) for o in outcomes] == [
        ("AcceptedRow", 2), ("RejectedRow", 5), ("AcceptedRow", 6), ("RejectedRow", 9)]
    first, _, third, _ = outcomes
    assert isinstance(first, AcceptedRow) and isinstance(third, AcceptedRow)
    assert first.extra[0].value == "two\r\nlines"
    assert third.name == "Bo, Jr"


def test_a_csv_line_over_the_cap_or_an_unclosed_quote_refuses_the_file() -> None:
    with pytest.raises(CallListError, match=r"^line 3: longer than"):
        parse_csv("Phone\n11987654321\n" + "1" * (MAX_LINE_CHARS + 1) + "\n",
                  ColumnMapping("Phone"))
    unclosed = "Phone,Notes\n11987654321,\"open\n" + ("filler\n" * (MAX_LINE_CHARS // 7 + 1))
    with pytest.raises(CallListError, match="an unclosed quote"):
        parse_csv(unclosed, ColumnMapping("Phone"))
    with pytest.raises(CallListError, match=r"^line 2: not valid CSV"):
        parse_csv("Phone,Notes\n11987654321,\"open\n", ColumnMapping("Phone"))


def test_a_nul_byte_in_a_csv_line_rejects_only_its_row() -> None:
    outcomes = parse_csv("Phone,Notes\n11987654321,a\x00b\n11987654322,ok\n",
                         ColumnMapping("Phone"))
    assert isinstance(outcomes[0], RejectedRow) and "NUL" in outcomes[0].reason
    assert isinstance(outcomes[1], AcceptedRow)


# ------------------------------------------------------------------------------ property

# Cells drawn from numbers that parse (some duplicated), garbage, zones and hostile text.
_phone = st.one_of(
    st.sampled_from(["11987654321", "+5511987654321", "(21) 3000-0000", "+12025550100",
                     "+1 800 555 0199", "+1 900 555 1234", "+44 20 7946 0000", "12", "",
                     "abc", "+999 123", "=1+1", "\x00"]),
    st.from_regex(r"\+?[0-9 ()-]{0,20}", fullmatch=True),
    st.text(max_size=30),
)
_zone = st.sampled_from(["", "", "America/Sao_Paulo", "Europe/London", "Mars/Base", "utc"])
_row = st.tuples(_phone, st.text(max_size=10), _zone,
                 st.lists(st.text(max_size=8), max_size=3))


def _rows(drawn: Iterable[tuple[str, str, str, list[str]]]) -> list[list[str]]:
    return [["Phone", "Name", "TZ"]] + [[p, n, z, *extra] for p, n, z, extra in drawn]


@given(st.lists(_row, min_size=1, max_size=40))
def test_every_row_is_accounted_for_and_accepted_numbers_are_e164_and_unique(
        drawn: list[tuple[str, str, str, list[str]]]) -> None:
    rows = _rows(drawn)
    parser = CallListParser(MAPPING, "BR")
    outcomes: list[RowOutcome] = []
    try:
        outcomes = list(parser.parse(enumerate(rows, start=1)))
    except CallListError as error:
        assert "no rows" in str(error)  # only possible fault: every row blank
    summary = parser.summary()
    assert summary.accounted
    assert summary.rows_read + summary.blank_rows == len(rows) - 1
    assert len(outcomes) == summary.rows_read
    accepted = [o for o in outcomes if isinstance(o, AcceptedRow)]
    assert all(E164_RE.fullmatch(o.number) for o in accepted)
    assert len({o.number for o in accepted}) == len(accepted)
    first_lines = {o.number: o.line for o in accepted}
    for outcome in outcomes:
        if isinstance(outcome, DuplicateRow):
            assert first_lines[outcome.number] == outcome.first_line < outcome.line
    assert [o.line for o in outcomes] == sorted(o.line for o in outcomes)
