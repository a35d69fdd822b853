"""Check digits: each validator against known numbers and a separately written reference."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from callcenter.core.checkdigits import (
    CHECKS,
    cnpj_valid,
    cpf_valid,
    is_ascii_digits,
    luhn_check_digit,
    luhn_valid,
    mod11_check_digit,
    mod11_valid,
    verhoeff_check_digit,
    verhoeff_valid,
)

# --------------------------------------------------------------------------- references
# Written differently from the module on purpose: left to right, with the weights spelled
# out as the specifications list them, and Verhoeff's group worked out by formula.


def reference_luhn_digit(payload: str) -> str:
    total = 0
    for index, char in enumerate(payload):
        value = int(char)
        if (len(payload) - index) % 2 == 1:  # every other digit, starting next to the check
            value = sum(divmod(value * 2, 10))
        total += value
    return str(-total % 10)


def reference_mod11_digit(payload: str, weights_left_to_right: list[int]) -> str:
    total = sum(int(c) * w for c, w in zip(payload, weights_left_to_right, strict=True))
    check = 11 - total % 11
    return "0" if check >= 10 else str(check)


def reference_cpf(nine: str) -> str:
    first = reference_mod11_digit(nine, [10, 9, 8, 7, 6, 5, 4, 3, 2])
    second = reference_mod11_digit(nine + first, [11, 10, 9, 8, 7, 6, 5, 4, 3, 2])
    return nine + first + second


def reference_cnpj(twelve: str) -> str:
    first = reference_mod11_digit(twelve, [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    second = reference_mod11_digit(twelve + first, [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    return twelve + first + second


def d5_multiply(a: int, b: int) -> int:
    """The dihedral group of order 10: 0-4 are rotations, 5-9 reflections."""
    if a < 5 and b < 5:
        return (a + b) % 5
    if a < 5:
        return 5 + (a + b - 5) % 5
    if b < 5:
        return 5 + (a - 5 - b) % 5
    return (a - b) % 5


def verhoeff_permutation(position: int, digit: int) -> int:
    step = [1, 5, 7, 6, 2, 8, 3, 0, 9, 4]
    for _ in range(position % 8):
        digit = step[digit]
    return digit


def reference_verhoeff_digit(payload: str) -> str:
    check = 0
    for position, char in enumerate(reversed(payload), start=1):
        check = d5_multiply(check, verhoeff_permutation(position, int(char)))
    inverse = next(x for x in range(10) if d5_multiply(check, x) == 0)
    return str(inverse)


payloads = st.text(alphabet="0123456789", min_size=1, max_size=30)
FULLWIDTH = {ord(d): ord(d) - ord("0") + 0xFF10 for d in "0123456789"}  # '7' -> U+FF17


def test_the_reference_d5_is_a_group_with_the_right_inverses() -> None:
    elements = range(10)
    for a in elements:
        assert d5_multiply(a, 0) == d5_multiply(0, a) == a
        for b in elements:
            for c in elements:
                assert d5_multiply(d5_multiply(a, b), c) == d5_multiply(a, d5_multiply(b, c))


# --------------------------------------------------------------------------- known numbers


@pytest.mark.parametrize(
    ("check", "number", "valid"),
    [
        ("luhn", "79927398713", True),  # the textbook example
        ("luhn", "79927398710", False),
        ("luhn", "4111111111111111", True),  # a well-known test card
        ("luhn", "4111111111111112", False),
        ("luhn", "0000000000", True),
        ("verhoeff", "2363", True),  # Verhoeff's own worked example: 236 -> 3
        ("verhoeff", "2364", False),
        ("verhoeff", "3263", False),  # adjacent digits swapped
        ("cpf", "52998224725", True),
        ("cpf", "52998224724", False),
        ("cpf", "52998224752", False),
        ("cpf", "11111111111", False),  # passes the arithmetic, never issued
        ("cpf", "00000000000", False),
        ("cpf", "5299822472", False),  # too short
        ("cpf", "529982247250", False),  # too long
        ("cnpj", "11222333000181", True),
        ("cnpj", "11222333000182", False),
        ("cnpj", "11222333000118", False),
        ("cnpj", "00000000000000", False),
        ("cnpj", "1122233300018", False),
        ("mod11", "2615339", True),  # 3*2 + 3*3 + 5*4 + 1*5 + 6*6 + 2*7 = 90 = 8*11 + 2 -> 9
        ("mod11", "2615338", False),
        ("mod11", "1", False),  # no payload
    ],
)
def test_known_numbers(check: str, number: str, valid: bool) -> None:
    assert CHECKS[check](number) is valid


def test_the_registry_names_every_check_for_flow_files() -> None:
    assert set(CHECKS) == {"luhn", "mod11", "cpf", "cnpj", "verhoeff"}
    with pytest.raises(TypeError):
        CHECKS["new"] = luhn_valid  # type: ignore[index]


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize(
    "garbage",
    [
        "",
        " 79927398713",
        "79927398713\n",
        "7992-7398-713",
        "529.982.247-25",
        "١٢٣٤٥٦٧٨٩٠١",  # Arabic-Indic digits are digits to str.isdigit, not to a caller
        "79927398713".translate(FULLWIDTH),
        "²³",
        None,
        79927398713,
        b"79927398713",
        ["7", "9"],
    ],
)
def test_anything_but_ascii_digits_is_false_never_an_exception(check: str, garbage: object) -> None:
    assert CHECKS[check](garbage) is False  # type: ignore[arg-type]


def test_is_ascii_digits() -> None:
    assert is_ascii_digits("0123456789")
    assert not is_ascii_digits("")
    assert not is_ascii_digits("12a")
    assert not is_ascii_digits(12)


def test_mod11_with_other_weights() -> None:
    # Weights 2..7 repeating from the right: 12345678 has weights 3,2,7,6,5,4,3,2 left to right.
    weights = (2, 3, 4, 5, 6, 7)
    digit = reference_mod11_digit("12345678", [3, 2, 7, 6, 5, 4, 3, 2])
    assert mod11_check_digit("12345678", weights) == digit
    assert mod11_valid("12345678" + digit, weights)
    assert not mod11_valid("12345678" + str((int(digit) + 1) % 10), weights)


def test_mod11_refuses_weights_that_make_no_sense() -> None:
    for weights in [(), (0, 2), (-1,), (2.5,)]:
        with pytest.raises(ValueError, match="mod-11 weights must be positive whole numbers"):
            mod11_check_digit("123", weights)  # type: ignore[arg-type]


@pytest.mark.parametrize("compute", [luhn_check_digit, mod11_check_digit, verhoeff_check_digit])
def test_computing_a_check_digit_needs_digits(compute: object) -> None:
    for payload in ["", "12a", "12".translate(FULLWIDTH)]:
        with pytest.raises(ValueError, match="expected ASCII digits"):
            compute(payload)  # type: ignore[operator]


# --------------------------------------------------------------------------- properties


@given(payloads)
def test_appending_the_luhn_digit_always_validates(payload: str) -> None:
    digit = reference_luhn_digit(payload)
    assert luhn_check_digit(payload) == digit
    assert luhn_valid(payload + digit)


@given(payloads, st.data())
def test_changing_any_one_digit_always_breaks_luhn(payload: str, data: st.DataObject) -> None:
    number = payload + reference_luhn_digit(payload)
    position = data.draw(st.integers(min_value=0, max_value=len(number) - 1))
    replacement = data.draw(st.sampled_from("0123456789").filter(lambda d: d != number[position]))
    changed = number[:position] + replacement + number[position + 1 :]
    assert not luhn_valid(changed)


@given(payloads)
def test_mod11_agrees_with_the_reference(payload: str) -> None:
    # The default weights 2..9 repeat from the right; spell them out left to right.
    weights = [2 + (len(payload) - 1 - i) % 8 for i in range(len(payload))]
    digit = reference_mod11_digit(payload, weights)
    assert mod11_check_digit(payload) == digit
    assert mod11_valid(payload + digit)
    assert not mod11_valid(payload + str((int(digit) + 1) % 10))


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_cpf_agrees_with_the_reference(nine: str) -> None:
    assume(len(set(nine)) > 1)
    number = reference_cpf(nine)
    assert cpf_valid(number)
    assert not cpf_valid(number[:-1] + str((int(number[-1]) + 1) % 10))
    assert not cpf_valid(number[:-2] + str((int(number[-2]) + 1) % 10) + number[-1])


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_cnpj_agrees_with_the_reference(twelve: str) -> None:
    assume(len(set(twelve)) > 1)
    number = reference_cnpj(twelve)
    assert cnpj_valid(number)
    assert not cnpj_valid(number[:-1] + str((int(number[-1]) + 1) % 10))
    assert not cnpj_valid(number[:-2] + str((int(number[-2]) + 1) % 10) + number[-1])


@given(payloads, st.data())
def test_verhoeff_catches_every_single_digit_error_and_adjacent_swap(
    payload: str, data: st.DataObject
) -> None:
    digit = reference_verhoeff_digit(payload)
    assert verhoeff_check_digit(payload) == digit
    number = payload + digit
    assert verhoeff_valid(number)
    position = data.draw(st.integers(min_value=0, max_value=len(number) - 1))
    replacement = data.draw(st.sampled_from("0123456789").filter(lambda d: d != number[position]))
    assert not verhoeff_valid(number[:position] + replacement + number[position + 1 :])
    if position + 1 < len(number) and number[position] != number[position + 1]:
        swapped = (
            number[:position] + number[position + 1] + number[position] + number[position + 2 :]
        )
        assert not verhoeff_valid(swapped)
