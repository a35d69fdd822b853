"""Flow file text to a YAML node tree that keeps every key's and value's position.

The YAML is read as a node tree (``yaml.compose``), not as Python objects, so that every
key and value keeps its position and duplicate keys, which YAML would silently collapse, can
be caught. YAML's own errors become a ``FlowError`` placed at the text to fix.
"""

from __future__ import annotations

from collections.abc import Sequence

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from callcenter.core.flows.errors import FlowError, FlowProblem


def compose(text: str, source: str) -> Node | None:
    """The YAML node tree (None for an empty file); YAML's own errors become a FlowError."""

    def fail(line: int, column: int, message: str) -> FlowError:
        return FlowError([FlowProblem(source, line, column, f"not valid YAML: {message}")])

    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        before = text[: exc.position]
        line, column = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
        raise fail(line, column, f"character U+{exc.character:04X} is not allowed") from None
    try:
        return loader.get_single_node()
    except RecursionError:
        mark = loader.get_mark()
        raise fail(mark.line + 1, mark.column + 1, "nested too deeply") from None
    except yaml.MarkedYAMLError as exc:
        line, column, message = _yaml_error_place(exc, text)
        raise fail(line, column, message) from None
    finally:
        loader.dispose()


def _yaml_error_place(exc: yaml.MarkedYAMLError, text: str) -> tuple[int, int, str]:
    """Where the broken text is (1-based line, column) and what YAML says about it.

    YAML's problem mark is where it noticed, which is often past the mistake: an unclosed
    quote or bracket is noticed at the end of the file, a key without ':' on the next line.
    Its context mark is where the construct being read began; that is the text to fix when
    the problem lies on a later line or at the end of the file."""
    problem, context = exc.problem_mark, exc.context_mark
    words = ", ".join(str(p) for p in (exc.context, exc.problem) if p)
    noticed_too_late = problem is None or (context is not None and (
        (isinstance(exc, yaml.scanner.ScannerError) and context.line < problem.line)
        or problem.index >= len(text.rstrip())  # reached the end without closing it
    ))
    if noticed_too_late:
        mark = context
    else:
        mark = problem
        missing_colon = _key_without_colon(text, exc) if exc.context is None else None
        if missing_colon is not None:
            mark, words = missing_colon, f"{words}; is a ':' missing at the end of this line?"
    if mark is None:
        return 1, 1, words
    if mark is not problem and problem is not None:
        words += f" (noticed at line {problem.line + 1}, column {problem.column + 1})"
    return mark.line + 1, mark.column + 1, words


def _key_without_colon(text: str, exc: yaml.MarkedYAMLError) -> yaml.Mark | None:
    """For 'mapping values are not allowed here' after a line with no ':' (``menu`` then
    ``  say: hi``), YAML read both lines as one text: the end of its first line."""
    if exc.problem != "mapping values are not allowed here" or exc.problem_mark is None:
        return None
    last = None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            last = token
    except yaml.YAMLError:
        pass
    if (not isinstance(last, yaml.ScalarToken) or last.plain is not True
            or last.start_mark.line >= exc.problem_mark.line):
        return None
    start = last.start_mark
    line_start = start.index - start.column
    if text[line_start:start.index].strip() not in ("", "-"):
        return None  # the text is a value (``name: x``), not a key missing its ':'
    line_end = text.find("\n", start.index)
    end_column = (line_end if line_end >= 0 else len(text)) - line_start
    return yaml.Mark(start.name, start.index, start.line, end_column, None, None)


STR_TAG = "tag:yaml.org,2002:str"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
BOOL_TAG = "tag:yaml.org,2002:bool"
NULL_TAG = "tag:yaml.org,2002:null"
SCALARS = SafeConstructor()  # only its stateless scalar converters are used
def describe(node: Node) -> str:
    """What a YAML value is, in words an admin understands."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return {
        STR_TAG: f"text {node.value!r}",
        INT_TAG: f"the number {node.value}",
        FLOAT_TAG: f"the number {node.value}",
        BOOL_TAG: f"{node.value}",
        NULL_TAG: "nothing",
    }.get(node.tag, f"a value tagged {node.tag}")


def quote_hint(node: Node) -> str:
    """YAML reads 123, 1.5, yes, no, on or off as non-text: tell the admin to quote it."""
    if isinstance(node, ScalarNode) and node.tag in (INT_TAG, FLOAT_TAG, BOOL_TAG):
        return "; quote it if you mean text"
    return ""

def node_at(root: Node, steps: Sequence[str | int]) -> Node:
    """The YAML node that a path of mapping keys and list positions leads to (as far as it
    goes: a missing key stops at its owner)."""
    node = root
    for step in steps:
        if isinstance(node, SequenceNode) and isinstance(step, int):
            if not 0 <= step < len(node.value):
                break
            node = node.value[step]
        elif isinstance(node, MappingNode):
            found = next(
                (
                    value
                    for key, value in node.value
                    if isinstance(key, ScalarNode) and key.value == str(step)
                ),
                None,
            )
            if found is None:
                break
            node = found
        else:
            break
    return node

