"""A small, safe expression language for IVR ``condition`` and ``set`` nodes.

Admins write expressions over call variables; they are parsed once, when a flow is loaded
(``parse_expression`` raises ``ExpressionError`` with a 1-based column), and evaluated on
each call (``Expression.evaluate`` raises ``EvaluationError``). User text is never given to
Python's ``eval``/``exec``/``compile``: a tokenizer and a recursive-descent parser build a
small tree of frozen dataclasses, and a single ``match`` evaluates it.

Values: text (``str``), whole numbers (``int``), decimal numbers (``Decimal``, exact, so
money adds up: ``0.10 + 0.20 == 0.30``), ``true``/``false`` (``bool``) and ``null``
(``None``). Variables may also hold a Python ``float``; it is read as the ``Decimal`` of its
shortest representation (``0.1`` reads as ``Decimal("0.1")``). Results are never floats.

Grammar, loosest binding first (a column means "same level, left to right"):

    or                      a or b           both sides true/false; short-circuit
    and                     a and b          both sides true/false; short-circuit
    not                     not a            a must be true/false
    == != < <= > >= in      a < b            one per level: "a < b < c" is an error
                            a in [1, 2]      (write "a < b and b < c"); "in" and
                            a not in [1, 2]  "not in" take a list literal only
    + -                     a + b - c        text + text joins; no other mixing
    * / %                   a * b / c
    - (unary)               -a
    primary                 12  1.50  'text'  "text"  true  false  null
                            caller.number  (a)  len(x)

Numbers: ``int op int`` stays whole, except ``/`` gives a ``Decimal`` when the division is
not exact (``7 / 2 == 3.5``, ``6 / 2 == 3``); anything with a ``Decimal`` is a ``Decimal``
(34 significant digits). ``%`` takes the sign of the divisor (``-7 % 3 == 2``). Numbers must
stay below 10**34 in size. ``int(x)`` truncates towards zero.

Equality: ``==``/``!=`` compare values of the same kind (a number with a number, text with
text, true/false with true/false); ``null`` may be compared with anything and equals only
``null``. Comparing text with a number is an error rather than a silent ``false``
(``"1" == 1`` usually means a forgotten ``int()``). ``< <= > >=`` need two numbers or two
texts (texts compare by code point). ``in`` evaluates the whole list, then compares like
``==`` from left to right and stops at the first match.

Text: single or double quotes; escapes ``\\\\ \\' \\" \\n \\t``. Any text an expression
builds, and its result, is at most 4096 characters.

Names: ASCII letters, digits and ``_``, starting with a letter or ``_``; dotted parts for
namespaces (``caller.number``, ``dip.items.0``). ``and or not in true false null`` are
reserved. A variable missing from the call's variables is an ``EvaluationError`` naming
it (there is no silent default).

Functions: ``len(text)``, ``lower(text)``, ``upper(text)``, ``int(x)`` (number or text of
digits with an optional sign), ``str(x)`` (``true``, ``false``, ``null``; decimals without
exponent), ``startswith(text, prefix)``, ``endswith(text, suffix)``, ``contains(text, part)``,
``digits(x)`` (keeps only 0-9), ``matches(text, pattern)``: the WHOLE text must match the
regular expression. Patterns run on RE2 (google-re2), whose matching time grows linearly with
the text whatever the pattern, so no pattern can hold the event loop (Python's ``re``
backtracks: ``(a?){23}a{23}`` takes it about 0.3 s). RE2 has no backreferences (``\\1``) or
look-arounds (``(?=``); such patterns are refused, and ``\\d``, ``\\w`` and ``\\s`` are
ASCII-only. Patterns are at most 100 characters, texts matched at most 1000. A literal
pattern is checked when the flow is loaded; a pattern from a variable, when it is used.

Limits: the text of an expression is at most 500 characters, nested at most 32 levels
(parentheses, lists, calls and unary operators each count one).

Columns in errors are 1-based offsets into the expression text (a newline counts as one
character), so a flow validator can place them in its file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from enum import Enum, auto
from functools import lru_cache
from operator import ge, gt, le, lt
from types import MappingProxyType
from typing import TypeGuard

import re2

MAX_TEXT_LENGTH = 500
MAX_NESTING = 32
MAX_STRING_LENGTH = 4096
MAX_NUMBER_DIGITS = 34
MAX_PATTERN_LENGTH = 100
MAX_SUBJECT_LENGTH = 1000

Value = str | int | Decimal | bool | None
InputValue = str | int | float | Decimal | bool | None  # what call variables may hold

_NUMBER_LIMIT = 10**MAX_NUMBER_DIGITS
_DECIMAL_CONTEXT = Context(
    prec=MAX_NUMBER_DIGITS,
    rounding=ROUND_HALF_EVEN,
    Emax=MAX_NUMBER_DIGITS - 1,  # anything >= 10**34 overflows
    traps=[InvalidOperation, DivisionByZero, Overflow],
)


# --------------------------------------------------------------------------- errors


class ExpressionError(ValueError):
    """The text is not a valid expression; ``column`` (1-based) says where."""

    def __init__(self, message: str, column: int) -> None:
        self.message = message
        self.column = column
        super().__init__(f"column {column}: {message}")


class EvaluationError(ValueError):
    """A valid expression could not be evaluated with these variables."""

    def __init__(self, message: str, column: int | None = None) -> None:
        self.message = message
        self.column = column
        super().__init__(message if column is None else f"column {column}: {message}")


# --------------------------------------------------------------------------- the tree


@dataclass(frozen=True)
class _Literal:
    value: Value
    column: int


@dataclass(frozen=True)
class _Variable:
    name: str
    column: int


@dataclass(frozen=True)
class _Negate:
    operand: _Node
    column: int


@dataclass(frozen=True)
class _Not:
    operand: _Node
    column: int


@dataclass(frozen=True)
class _Step:
    """One ``op operand`` of a left-to-right chain: ``a + b - c`` is a, (+ b), (- c)."""

    operator: str
    operand: _Node
    column: int  # of the operator


@dataclass(frozen=True)
class _Arithmetic:
    first: _Node
    steps: tuple[_Step, ...]


@dataclass(frozen=True)
class _Logical:
    operator: str  # "and" | "or"
    operands: tuple[_Node, ...]
    columns: tuple[int, ...]  # of each operand


@dataclass(frozen=True)
class _Compare:
    operator: str
    left: _Node
    right: _Node
    column: int  # of the operator


@dataclass(frozen=True)
class _Membership:
    negated: bool
    item: _Node
    choices: tuple[_Node, ...]
    column: int  # of "in" / "not"


@dataclass(frozen=True)
class _Call:
    function: str
    arguments: tuple[_Node, ...]
    column: int
    pattern: Pattern | None = None  # matches() with a literal pattern, compiled once


_Node = (
    _Literal | _Variable | _Negate | _Not | _Arithmetic | _Logical | _Compare | _Membership | _Call
)


@dataclass(frozen=True)
class Expression:
    """A parsed expression. ``variables`` are the names it may read (for validators)."""

    text: str
    variables: frozenset[str]
    _root: _Node = field(repr=False, compare=False)

    def evaluate(self, variables: Mapping[str, InputValue]) -> Value:
        """The value of the expression; raises ``EvaluationError`` (never anything else)."""
        with localcontext(_DECIMAL_CONTEXT):
            result = _Evaluator(variables).value(self._root)
        if isinstance(result, str) and len(result) > MAX_STRING_LENGTH:
            raise EvaluationError(f"the result is longer than {MAX_STRING_LENGTH} characters")
        return result

    def evaluate_condition(self, variables: Mapping[str, InputValue]) -> bool:
        """Like ``evaluate``, for a condition: anything but true/false is an EvaluationError."""
        result = self.evaluate(variables)
        if not isinstance(result, bool):
            raise EvaluationError(f"a condition must be true or false, got {_describe(result)}")
        return result


# --------------------------------------------------------------------------- tokens


class _Kind(Enum):
    NUMBER = auto()
    TEXT = auto()
    NAME = auto()
    KEYWORD = auto()
    SYMBOL = auto()
    END = auto()


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str  # as written (symbols, keywords, names) or the source of a literal
    column: int
    value: Value = None  # for NUMBER and TEXT

    def describe(self) -> str:
        match self.kind:
            case _Kind.END:
                return "the end of the expression"
            case _Kind.NUMBER:
                return f"the number {self.text}"
            case _Kind.TEXT:
                return f"text {_shorten(str(self.value))}"
            case _Kind.NAME:
                return f"name {self.text!r}"
        return repr(self.text)


KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_SYMBOLS = ("==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", "(", ")", "[", "]", ",")
_MISTAKES = {  # symbols from other languages, with what to write instead
    "&&": "'&&' is not an operator: use 'and'",
    "||": "'||' is not an operator: use 'or'",
    "=": "'=' is not an operator: use '==' to compare",
    "!": "'!' is not an operator: use 'not'",
    "**": "there is no power operator",
    "//": "there is no '//' operator: int(a / b) gives the whole part",
}
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_NAME_CHAR = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}
_SPACE = frozenset(" \t\r\n")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        char = text[position]
        column = position + 1
        if char in _SPACE:
            position += 1
        elif char in "'\"":
            token, position = _read_text(text, position)
            tokens.append(token)
        elif char.isascii() and char.isdigit():
            token, position = _read_number(text, position)
            tokens.append(token)
        elif (found := _NAME_RE.match(text, position)) is not None:
            name = found.group()
            position = found.end()
            if position < len(text) and text[position] == ".":
                raise ExpressionError(f"expected a name part after '.' in {name!r}", position + 1)
            kind = _Kind.KEYWORD if name in KEYWORDS else _Kind.NAME
            tokens.append(_Token(kind, name, column))
        else:
            for mistake, message in _MISTAKES.items():
                if text.startswith(mistake, position) and not text.startswith(
                    ("==", "!="), position
                ):
                    raise ExpressionError(message, column)
            symbol = next((s for s in _SYMBOLS if text.startswith(s, position)), None)
            if symbol is None:
                raise ExpressionError(f"unexpected character {char!r}", column)
            tokens.append(_Token(_Kind.SYMBOL, symbol, column))
            position += len(symbol)
    tokens.append(_Token(_Kind.END, "", len(text) + 1))
    return tokens


def _read_text(text: str, start: int) -> tuple[_Token, int]:
    quote = text[start]
    chars: list[str] = []
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == quote:
            value = "".join(chars)
            return _Token(_Kind.TEXT, text[start : position + 1], start + 1, value), position + 1
        if char == "\\":
            escaped = text[position + 1 : position + 2]
            if escaped not in _ESCAPES:
                shown = f"\\{escaped}" if escaped else "\\ at the very end"
                raise ExpressionError(
                    f"unknown escape {shown} in text (known: \\\\ \\' \\\" \\n \\t)",
                    position + 1,
                )
            chars.append(_ESCAPES[escaped])
            position += 2
        else:
            chars.append(char)
            position += 1
    raise ExpressionError(
        f"text starting here is never closed (add the closing {quote})", start + 1
    )


def _read_number(text: str, start: int) -> tuple[_Token, int]:
    found = _NUMBER_RE.match(text, start)
    assert found is not None, "called on a digit"
    written = found.group()
    end = found.end()
    if end < len(text) and (text[end] == "." or text[end] in _NAME_CHAR):
        raise ExpressionError(f"unexpected {text[end]!r} right after the number {written}", end + 1)
    value: int | Decimal
    if "." in written:
        value = Decimal(written)  # exact, whatever the context
        digit_count = len(value.as_tuple().digits)
    else:
        value = int(written)
        digit_count = len(written.lstrip("0"))
    if digit_count > MAX_NUMBER_DIGITS or abs(value) >= _NUMBER_LIMIT:
        raise ExpressionError(f"a number may have at most {MAX_NUMBER_DIGITS} digits", start + 1)
    return _Token(_Kind.NUMBER, written, start + 1, value), end


# --------------------------------------------------------------------------- parsing

_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_ADDITIVE = frozenset({"+", "-"})
_MULTIPLICATIVE = frozenset({"*", "/", "%"})


def parse_expression(text: str) -> Expression:
    """Parse an expression once (when a flow is loaded). Raises ``ExpressionError``."""
    if len(text) > MAX_TEXT_LENGTH:
        raise ExpressionError(
            f"an expression may be at most {MAX_TEXT_LENGTH} characters long", MAX_TEXT_LENGTH + 1
        )
    if not text.strip():
        raise ExpressionError("the expression is empty", 1)
    parser = _Parser(_tokenize(text))
    root = parser.expression()
    return Expression(text=text, variables=frozenset(parser.names), _root=root)


class _Parser:
    """Recursive descent, one method per precedence level (loosest first)."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.position = 0
        self.depth = 0
        self.names: set[str] = set()

    # -- token helpers

    @property
    def current(self) -> _Token:
        return self.tokens[self.position]

    def peek(self, offset: int = 1) -> _Token:
        return self.tokens[min(self.position + offset, len(self.tokens) - 1)]

    def at(self, kind: _Kind, *texts: str) -> bool:
        token = self.current
        return token.kind is kind and (not texts or token.text in texts)

    def advance(self) -> _Token:
        token = self.current
        if token.kind is not _Kind.END:
            self.position += 1
        return token

    def expect_symbol(self, symbol: str, context: str) -> _Token:
        if not self.at(_Kind.SYMBOL, symbol):
            raise ExpressionError(
                f"expected {symbol!r} {context}, got {self.current.describe()}",
                self.current.column,
            )
        return self.advance()

    def nested(self, token: _Token) -> None:
        """Count one more level of nesting (called for each group, list, call, unary)."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ExpressionError(f"nested more than {MAX_NESTING} levels deep", token.column)

    # -- the levels

    def expression(self) -> _Node:
        node = self.or_expression()
        if not self.at(_Kind.END):
            raise ExpressionError(
                f"expected an operator or the end, got {self.current.describe()}",
                self.current.column,
            )
        return node

    def or_expression(self) -> _Node:
        return self.logical("or", self.and_expression)

    def and_expression(self) -> _Node:
        return self.logical("and", self.not_expression)

    def logical(self, keyword: str, operand: Callable[[], _Node]) -> _Node:
        columns = [self.current.column]
        operands = [operand()]
        while self.at(_Kind.KEYWORD, keyword):
            self.advance()
            columns.append(self.current.column)
            operands.append(operand())
        if len(operands) == 1:
            return operands[0]
        return _Logical(keyword, tuple(operands), tuple(columns))

    def not_expression(self) -> _Node:
        if not self.at(_Kind.KEYWORD, "not"):
            return self.comparison()
        token = self.advance()
        self.nested(token)
        operand = self.not_expression()
        self.depth -= 1
        return _Not(operand, token.column)

    def comparison(self) -> _Node:
        left = self.additive()
        node = self.comparison_rest(left)
        if node is not left and self.comparison_follows():
            raise ExpressionError(
                "comparisons cannot be chained: write 'a < b and b < c'", self.current.column
            )
        return node

    def comparison_follows(self) -> bool:
        return (
            self.at(_Kind.SYMBOL, *_COMPARISONS)
            or self.at(_Kind.KEYWORD, "in")
            or (self.at(_Kind.KEYWORD, "not") and self.peek().text == "in")
        )

    def comparison_rest(self, left: _Node) -> _Node:
        if self.at(_Kind.SYMBOL, *_COMPARISONS):
            operator = self.advance()
            return _Compare(operator.text, left, self.additive(), operator.column)
        if self.at(_Kind.KEYWORD, "in"):
            operator = self.advance()
            return _Membership(False, left, self.list_literal("in"), operator.column)
        if self.at(_Kind.KEYWORD, "not"):
            operator = self.advance()
            if not self.at(_Kind.KEYWORD, "in"):
                raise ExpressionError(
                    f"expected 'in' after 'not', got {self.current.describe()}",
                    self.current.column,
                )
            self.advance()
            return _Membership(True, left, self.list_literal("not in"), operator.column)
        return left

    def list_literal(self, after: str) -> tuple[_Node, ...]:
        opening = self.expect_symbol("[", f"after '{after}' (a list like [1, 2])")
        self.nested(opening)
        items: list[_Node] = []
        while not self.at(_Kind.SYMBOL, "]"):
            items.append(self.or_expression())
            if not self.at(_Kind.SYMBOL, ","):
                break
            self.advance()
        self.expect_symbol("]", f"or ',' in the list opened at column {opening.column}")
        self.depth -= 1
        return tuple(items)

    def additive(self) -> _Node:
        return self.chain(_ADDITIVE, self.multiplicative)

    def multiplicative(self) -> _Node:
        return self.chain(_MULTIPLICATIVE, self.unary)

    def chain(self, operators: frozenset[str], operand: Callable[[], _Node]) -> _Node:
        first = operand()
        steps: list[_Step] = []
        while self.at(_Kind.SYMBOL, *operators):
            operator = self.advance()
            steps.append(_Step(operator.text, operand(), operator.column))
        return _Arithmetic(first, tuple(steps)) if steps else first

    def unary(self) -> _Node:
        if not self.at(_Kind.SYMBOL, "-"):
            return self.primary()
        token = self.advance()
        self.nested(token)
        operand = self.unary()
        self.depth -= 1
        return _Negate(operand, token.column)

    def primary(self) -> _Node:
        token = self.current
        if token.kind in (_Kind.NUMBER, _Kind.TEXT):
            self.advance()
            return _Literal(token.value, token.column)
        if token.kind is _Kind.KEYWORD and token.text in ("true", "false", "null"):
            self.advance()
            return _Literal({"true": True, "false": False, "null": None}[token.text], token.column)
        if token.kind is _Kind.NAME:
            self.advance()
            if self.at(_Kind.SYMBOL, "("):
                return self.call(token)
            self.names.add(token.text)
            return _Variable(token.text, token.column)
        if self.at(_Kind.SYMBOL, "("):
            self.advance()
            self.nested(token)
            inner = self.or_expression()
            self.expect_symbol(")", f"to close '(' at column {token.column}")
            self.depth -= 1
            return inner
        if token.kind is _Kind.KEYWORD and token.text == "not":
            raise ExpressionError(
                "expected a value, got 'not' (here it needs parentheses: (not x))", token.column
            )
        raise ExpressionError(f"expected a value, got {token.describe()}", token.column)

    def call(self, name: _Token) -> _Node:
        function = _FUNCTIONS.get(name.text)
        if function is None:
            known = ", ".join(sorted(_FUNCTIONS))
            raise ExpressionError(f"unknown function {name.text!r} (known: {known})", name.column)
        opening = self.advance()
        self.nested(opening)
        arguments: list[_Node] = []
        while not self.at(_Kind.SYMBOL, ")"):
            arguments.append(self.or_expression())
            if not self.at(_Kind.SYMBOL, ","):
                break
            self.advance()
        self.expect_symbol(")", f"or ',' in the call to {name.text}() at column {name.column}")
        self.depth -= 1
        if len(arguments) != function.arity:
            plural = "" if function.arity == 1 else "s"
            raise ExpressionError(
                f"{name.text}() takes {function.arity} argument{plural}, got {len(arguments)}",
                name.column,
            )
        pattern = None
        if name.text == "matches":
            pattern_node = arguments[1]
            if isinstance(pattern_node, _Literal) and isinstance(pattern_node.value, str):
                try:
                    pattern = _compile_pattern(pattern_node.value)
                except _PatternProblem as problem:
                    raise ExpressionError(str(problem), pattern_node.column) from None
        return _Call(name.text, tuple(arguments), name.column, pattern)


# --------------------------------------------------------------------------- evaluation


class _Evaluator:
    def __init__(self, variables: Mapping[str, InputValue]) -> None:
        self.variables = variables

    def value(self, node: _Node) -> Value:
        """All the language's semantics, in one place."""
        match node:
            case _Literal(value=value):
                return value
            case _Variable(name=name, column=column):
                if name not in self.variables:
                    raise EvaluationError(f"unknown variable {name!r}", column)
                return _checked_input(name, self.variables[name], column)
            case _Negate(operand=operand, column=column):
                value = self.value(operand)
                if _is_number(value):
                    with _number_errors(column):
                        return _bounded(-value, column)
                raise EvaluationError(f"cannot negate {_describe(value)}", column)
            case _Not(operand=operand, column=column):
                return not _truth(self.value(operand), "not", column)
            case _Arithmetic(first=first, steps=steps):
                result = self.value(first)
                for step in steps:
                    result = _arithmetic(step.operator, result, self.value(step.operand), step)
                return result
            case _Logical(operator=operator, operands=operands, columns=columns):
                stop_at = operator == "or"  # "or" stops at the first true, "and" at a false
                for operand, column in zip(operands, columns, strict=True):
                    if _truth(self.value(operand), operator, column) is stop_at:
                        return stop_at
                return not stop_at
            case _Compare(operator=operator, left=left, right=right, column=column):
                return _compare(operator, self.value(left), self.value(right), column)
            case _Membership(negated=negated, item=item, choices=choices, column=column):
                wanted = self.value(item)
                values = [self.value(choice) for choice in choices]
                found = any(_equal(wanted, value, column) for value in values)
                return found is not negated
            case _Call(function=function, arguments=arguments, column=column, pattern=pattern):
                values = [self.value(argument) for argument in arguments]
                if pattern is not None:
                    return _matches(values[0], pattern, column)
                return _FUNCTIONS[function].run(values, column)
        raise AssertionError(f"unknown expression node {node!r}")


def _checked_input(name: str, raw: object, column: int) -> Value:
    """A call variable as an expression value: floats become Decimals; odd things are errors."""
    if raw is None or isinstance(raw, bool | str):
        return raw
    number: int | Decimal
    if isinstance(raw, int):
        number = raw
    elif isinstance(raw, float):
        if not math.isfinite(raw):
            raise EvaluationError(f"variable {name!r} is not a finite number", column)
        number = Decimal(repr(raw))
    elif isinstance(raw, Decimal):
        if not raw.is_finite():
            raise EvaluationError(f"variable {name!r} is not a finite number", column)
        number = raw
    else:
        raise EvaluationError(
            f"variable {name!r} holds a {type(raw).__name__}; expressions use text, "
            "numbers, true/false and null",
            column,
        )
    if _out_of_range(number):
        raise EvaluationError(
            f"variable {name!r} is too large (more than {MAX_NUMBER_DIGITS} digits)", column
        )
    return number


def _is_number(value: Value) -> TypeGuard[int | Decimal]:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def _kind(value: Value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "text"
    return "number"


def _shorten(text: str) -> str:
    return repr(text) if len(text) <= 24 else repr(text[:24]) + "..."


def _describe(value: Value) -> str:
    """A value in an error message (numbers here are always small enough to print)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"text {_shorten(value)}"
    return f"the number {_format_number(value)}"


def _format_number(number: int | Decimal) -> str:
    return str(number) if isinstance(number, int) else format(number, "f")


def _truth(value: Value, operator: str, column: int) -> bool:
    if not isinstance(value, bool):
        raise EvaluationError(f"'{operator}' needs true or false, got {_describe(value)}", column)
    return value


def _too_large(column: int) -> EvaluationError:
    return EvaluationError(
        f"the number is out of range (below 10**{MAX_NUMBER_DIGITS}, "
        f"{MAX_NUMBER_DIGITS} significant digits)",
        column,
    )


@contextmanager
def _number_errors(column: int) -> Iterator[None]:
    """Decimal's trapped conditions (overflow, an impossible remainder) as our error."""
    try:
        yield
    except DecimalException:
        raise _too_large(column) from None


def _out_of_range(number: int | Decimal) -> bool:
    size = number.copy_abs() if isinstance(number, Decimal) else abs(number)  # no rounding
    return size >= _NUMBER_LIMIT


def _bounded(number: int | Decimal, column: int) -> int | Decimal:
    if _out_of_range(number):
        raise _too_large(column)
    return number


def _too_long(column: int) -> EvaluationError:
    return EvaluationError(f"text would be longer than {MAX_STRING_LENGTH} characters", column)


def _checked_text(text: str, column: int) -> str:
    if len(text) > MAX_STRING_LENGTH:
        raise _too_long(column)
    return text


_VERBS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "%": "take the remainder of"}


def _arithmetic(operator: str, left: Value, right: Value, step: _Step) -> Value:
    if _is_number(left) and _is_number(right):
        with _number_errors(step.column):
            return _bounded(_number_operation(operator, left, right, step.column), step.column)
    if operator == "+" and isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > MAX_STRING_LENGTH:
            raise _too_long(step.column)  # before building it
        return left + right
    hint = "; use str() to join text and numbers" if operator == "+" else ""
    raise EvaluationError(
        f"cannot {_VERBS[operator]} {_describe(left)} and {_describe(right)}{hint}", step.column
    )


def _number_operation(
    operator: str, a: int | Decimal, b: int | Decimal, column: int
) -> int | Decimal:
    if operator in ("/", "%") and b == 0:
        raise EvaluationError("division by zero", column)
    match operator:
        case "+":
            return a + b
        case "-":
            return a - b
        case "*":
            return a * b
        case "/":
            if isinstance(a, int) and isinstance(b, int) and a % b == 0:
                return a // b
            return Decimal(a) / Decimal(b)
    if isinstance(a, int) and isinstance(b, int):
        return a % b  # Python's ints already take the divisor's sign
    remainder = Decimal(a) % Decimal(b)  # Decimal's % keeps the dividend's sign
    if remainder and (remainder < 0) != (b < 0):
        remainder += b
    return remainder


def _equal(left: Value, right: Value, column: int) -> bool:
    if left is None or right is None:
        return left is None and right is None
    if _kind(left) != _kind(right):
        raise EvaluationError(
            f"cannot compare {_describe(left)} with {_describe(right)}: "
            "convert one side with int() or str()",
            column,
        )
    return left == right


_ORDERINGS: Mapping[str, Callable[[object, object], bool]] = {
    "<": lt,
    "<=": le,
    ">": gt,
    ">=": ge,
}


def _compare(operator: str, left: Value, right: Value, column: int) -> bool:
    if operator == "==":
        return _equal(left, right, column)
    if operator == "!=":
        return not _equal(left, right, column)
    if (_is_number(left) and _is_number(right)) or (
        isinstance(left, str) and isinstance(right, str)
    ):
        return _ORDERINGS[operator](left, right)
    raise EvaluationError(
        f"cannot order {_describe(left)} and {_describe(right)} with '{operator}' "
        "(both must be numbers or both text)",
        column,
    )


# --------------------------------------------------------------------------- functions


@dataclass(frozen=True)
class _Function:
    arity: int
    run: Callable[[Sequence[Value], int], Value]  # (arguments, column) -> result


def _text_argument(function: str, value: Value, column: int, which: str = "") -> str:
    if not isinstance(value, str):
        raise EvaluationError(f"{function}() needs text{which}, got {_describe(value)}", column)
    return value


def _text_function(name: str, compute: Callable[[str], Value]) -> _Function:
    def run(arguments: Sequence[Value], column: int) -> Value:
        result = compute(_text_argument(name, arguments[0], column))
        return _checked_text(result, column) if isinstance(result, str) else result

    return _Function(1, run)


def _text_test(name: str, test: Callable[[str, str], bool]) -> _Function:
    def run(arguments: Sequence[Value], column: int) -> Value:
        text = _text_argument(name, arguments[0], column)
        other = _text_argument(name, arguments[1], column, " as its second argument")
        return test(text, other)

    return _Function(2, run)


_WHOLE_NUMBER_RE = re.compile(r"\s*([+-]?)([0-9]+)\s*")


def _to_int(arguments: Sequence[Value], column: int) -> Value:
    value = arguments[0]
    if isinstance(value, str):
        found = _WHOLE_NUMBER_RE.fullmatch(value)
        if found is None:
            raise EvaluationError(f"int() needs digits, got {_describe(value)}", column)
        sign, digits = found.groups()
        if len(digits.lstrip("0")) > MAX_NUMBER_DIGITS:
            raise EvaluationError(f"int() of a number over {MAX_NUMBER_DIGITS} digits", column)
        return -int(digits) if sign == "-" else int(digits)
    if _is_number(value):
        return int(value)  # a Decimal is truncated towards zero
    raise EvaluationError(f"int() needs a number or digits, got {_describe(value)}", column)


def _to_str(arguments: Sequence[Value], column: int) -> Value:
    value = arguments[0]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return _format_number(value)


def _digits(arguments: Sequence[Value], column: int) -> Value:
    value = arguments[0]
    text = (
        _format_number(value)
        if _is_number(value)
        else _text_argument("digits", value, column, " or a number")
    )
    return "".join(char for char in text if "0" <= char <= "9")


def _matches_dynamic(arguments: Sequence[Value], column: int) -> Value:
    pattern_text = _text_argument("matches", arguments[1], column, " as its pattern")
    try:
        pattern = _compile_pattern(pattern_text)
    except _PatternProblem as problem:
        raise EvaluationError(str(problem), column) from None
    return _matches(arguments[0], pattern, column)


def _matches(subject: Value, pattern: Pattern, column: int) -> bool:
    text = _text_argument("matches", subject, column)
    if len(text) > MAX_SUBJECT_LENGTH:
        raise EvaluationError(
            f"matches() checks text of at most {MAX_SUBJECT_LENGTH} characters, got {len(text)}",
            column,
        )
    return pattern.fullmatch(text)


_FUNCTIONS: Mapping[str, _Function] = MappingProxyType(
    {
        "len": _text_function("len", len),
        "lower": _text_function("lower", str.lower),
        "upper": _text_function("upper", str.upper),
        "int": _Function(1, _to_int),
        "str": _Function(1, _to_str),
        "digits": _Function(1, _digits),
        "startswith": _text_test("startswith", str.startswith),
        "endswith": _text_test("endswith", str.endswith),
        "contains": _text_test("contains", lambda text, part: part in text),
        "matches": _Function(2, _matches_dynamic),
    }
)
FUNCTIONS = frozenset(_FUNCTIONS)


# --------------------------------------------------------------------------- safe patterns


class _PatternProblem(ValueError):
    pass


# RE2 (google-re2) runs flow authors' patterns: it matches in time linear in the text for any
# pattern, where Python's backtracking ``re`` can be made to take seconds by a short one, and
# a guard that tries to spot such patterns in advance always misses some. Its compile refuses
# what it cannot run in linear time (backreferences, look-arounds) and over-large programs.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # refusals are reported to the flow's author, not to stderr
_RE2_OPTIONS.max_mem = 1 << 20  # a 100-character pattern needs far less; refuse blow-ups


class Pattern:
    """A compiled ``matches()`` pattern; only whole-text matching is offered."""

    __slots__ = ("_compiled", "text")

    def __init__(self, text: str, compiled: object) -> None:
        self.text = text
        self._compiled = compiled

    def fullmatch(self, subject: str) -> bool:
        return self._compiled.fullmatch(subject) is not None  # type: ignore[attr-defined]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Pattern({self.text!r})"


@lru_cache(maxsize=256)
def _compile_pattern(pattern: str) -> Pattern:
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise _PatternProblem(f"a pattern may be at most {MAX_PATTERN_LENGTH} characters long")
    try:
        return Pattern(pattern, re2.compile(pattern, _RE2_OPTIONS))
    except re2.error as error:
        raise _PatternProblem(f"not a valid pattern: {_re2_reason(error)}") from None


def _re2_reason(error: Exception) -> str:
    """RE2's own words, with a hint for what it refuses on purpose."""
    reason = error.args[0] if error.args else str(error)
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    reason = str(reason)
    if "invalid escape sequence: \\" in reason and reason[-1:].isdigit():
        reason += " (backreferences are not supported)"
    elif "invalid perl operator: (?" in reason and reason[-1:] in "=!<":
        reason += " (look-arounds are not supported)"
    return reason
