"""Check-digit validators for digits a caller keys in (card, account, CPF, CNPJ numbers).

Every validator takes the digits as text and answers True or False: anything that is not
a non-empty string of ASCII digits 0-9 (spaces, dots, dashes, other scripts' digits, a
non-string) is simply False, never an exception, so a flow can hand over whatever the
caller typed. The check digit is always the last digit (the last two for CPF and CNPJ).

Flow files name a check through ``CHECKS``: "luhn", "mod11", "cpf", "cnpj", "verhoeff".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TypeGuard

_ASCII_DIGITS = frozenset("0123456789")


def is_ascii_digits(digits: object) -> TypeGuard[str]:
    """A non-empty ``str`` of 0-9 only (``str.isdigit`` would also accept '²' or '٣')."""
    return isinstance(digits, str) and bool(digits) and _ASCII_DIGITS.issuperset(digits)


# --------------------------------------------------------------------------- Luhn


def luhn_check_digit(payload: str) -> str:
    """The Luhn digit to append to ``payload`` (ASCII digits; ValueError otherwise)."""
    _require_digits(payload)
    # The check digit will sit at the right, so the payload's last digit is doubled.
    total = _luhn_sum(payload, double_last=True)
    return str((10 - total % 10) % 10)


def luhn_valid(digits: object) -> bool:
    """Payment cards, IMEI and many account numbers: at least two digits, the last checks."""
    if is_ascii_digits(digits) and len(digits) >= 2:
        return _luhn_sum(digits, double_last=False) % 10 == 0
    return False


def _luhn_sum(digits: str, *, double_last: bool) -> int:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if (position % 2 == 0) == double_last:
            value *= 2
            if value > 9:
                value -= 9  # the sum of the two digits of 10..18
        total += value
    return total


# --------------------------------------------------------------------------- mod 11

MOD11_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9)


def mod11_check_digit(payload: str, weights: Sequence[int] = MOD11_WEIGHTS) -> str:
    """The mod-11 digit for ``payload``: weights apply from the rightmost payload digit
    leftwards, repeating; a remainder r gives 11 - r, except that r of 0 or 1 gives 0 (the
    Brazilian convention used by CPF, CNPJ and many bank account numbers)."""
    _require_digits(payload)
    if not weights or not all(isinstance(w, int) and w > 0 for w in weights):
        raise ValueError(f"mod-11 weights must be positive whole numbers, got {weights!r}")
    total = sum(int(char) * weights[i % len(weights)] for i, char in enumerate(reversed(payload)))
    remainder = total % 11
    return "0" if remainder < 2 else str(11 - remainder)


def mod11_valid(digits: object, weights: Sequence[int] = MOD11_WEIGHTS) -> bool:
    """At least two digits, the last being ``mod11_check_digit`` of the others."""
    if is_ascii_digits(digits) and len(digits) >= 2:
        return mod11_check_digit(digits[:-1], weights) == digits[-1]
    return False


# --------------------------------------------------------------------------- Brazil

_CPF_WEIGHTS = tuple(range(2, 12))  # 2..10 for the first check digit, 2..11 for the second


def cpf_valid(digits: object) -> bool:
    """A Brazilian CPF: 11 digits, two mod-11 check digits; all-equal digits are refused."""
    return _two_mod11_digits(digits, 11, _CPF_WEIGHTS)


def cnpj_valid(digits: object) -> bool:
    """A Brazilian CNPJ: 14 digits, two mod-11 check digits (weights 2..9 repeating);
    all-equal digits are refused. (The letters allowed in CNPJs from July 2026 are not
    digits a caller can key in.)"""
    return _two_mod11_digits(digits, 14, MOD11_WEIGHTS)


def _two_mod11_digits(digits: object, length: int, weights: Sequence[int]) -> bool:
    # All-equal digits (000.000.000-00 and friends) pass the arithmetic but are not issued.
    if not is_ascii_digits(digits) or len(digits) != length or len(set(digits)) == 1:
        return False
    first = mod11_check_digit(digits[:-2], weights)
    second = mod11_check_digit(digits[:-2] + first, weights)
    return digits[-2:] == first + second


# --------------------------------------------------------------------------- Verhoeff

# Multiplication in the dihedral group D5, the permutation applied at each position, and
# the inverse of each element (Verhoeff, 1969). Catches every single-digit error and every
# swap of adjacent digits.
_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_VERHOEFF_INVERSE = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def verhoeff_check_digit(payload: str) -> str:
    """The Verhoeff digit to append to ``payload`` (ASCII digits; ValueError otherwise)."""
    _require_digits(payload)
    return str(_VERHOEFF_INVERSE[_verhoeff_checksum(payload, first_position=1)])


def verhoeff_valid(digits: object) -> bool:
    """At least two digits, the last being the Verhoeff check digit of the others."""
    if is_ascii_digits(digits) and len(digits) >= 2:
        return _verhoeff_checksum(digits, first_position=0) == 0
    return False


def _verhoeff_checksum(digits: str, *, first_position: int) -> int:
    check = 0
    for position, char in enumerate(reversed(digits), start=first_position):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][int(char)]]
    return check


# --------------------------------------------------------------------------- registry


def _require_digits(payload: str) -> None:
    if not is_ascii_digits(payload):
        raise ValueError(f"expected ASCII digits, got {payload!r}")


CHECKS: Mapping[str, Callable[[str], bool]] = MappingProxyType(
    {
        "luhn": luhn_valid,
        "mod11": mod11_valid,
        "cpf": cpf_valid,
        "cnpj": cnpj_valid,
        "verhoeff": verhoeff_valid,
    }
)
