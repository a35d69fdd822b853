"""IVR flow files: the YAML admins write, turned into a validated, frozen ``Flow``.

Every problem is reported with its file, line and column, and all of them at once, so an
admin can fix a file in one pass. The YAML is read as a node tree (``yaml.compose``), not
as Python objects, so that every key and value keeps its position and duplicate keys,
which YAML would silently collapse, can be caught.

The format is described in ``dialplans/README.md``; ``dialplans/main.yaml`` is the demo.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

DTMF_DIGITS = "0123456789*#"
TIMEOUT_RANGE = (1.0, 60.0)  # seconds to wait for a digit after a menu prompt
RETRIES_RANGE = (1, 10)  # how many times a menu is heard in total
DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 3

FLOW_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
NODE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
# A prompt name becomes part of a file path: no dots, no slashes, ever.
PROMPT_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class QueueTarget:
    """Hand the caller to an ACD queue; the IVR is done."""

    queue: str


@dataclass(frozen=True)
class NodeTarget:
    """Go on to another node of the same flow."""

    node: str


@dataclass(frozen=True)
class HangupTarget:
    """End the call, after playing ``prompt`` if there is one."""

    prompt: str | None = None


Target = QueueTarget | NodeTarget | HangupTarget


@dataclass(frozen=True)
class PlayNode:
    """Play a prompt (digits pressed meanwhile are ignored), then go to ``next``."""

    name: str
    prompt: str
    next: Target


@dataclass(frozen=True)
class MenuNode:
    """Play a prompt and wait for one digit; after ``retries`` failed tries, ``on_exhausted``."""

    name: str
    prompt: str
    options: Mapping[str, Target]  # DTMF digit -> where it leads
    on_exhausted: Target
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    invalid_prompt: str | None = None
    timeout_prompt: str | None = None


FlowNode = PlayNode | MenuNode


@dataclass(frozen=True)
class Flow:
    name: str
    start: str
    nodes: Mapping[str, FlowNode]  # read-only, in file order
    source: str = "<flow>"

    def node(self, name: str) -> FlowNode:
        try:
            return self.nodes[name]
        except KeyError:
            raise ValueError(f"flow {self.name!r} has no node {name!r}") from None

    def prompts(self) -> frozenset[str]:
        """Every prompt name the flow may play (for checks and pre-loading)."""
        names: set[str] = set()
        for node in self.nodes.values():
            names.add(node.prompt)
            targets: list[Target]
            if isinstance(node, MenuNode):
                names.update(p for p in (node.invalid_prompt, node.timeout_prompt) if p)
                targets = [*node.options.values(), node.on_exhausted]
            else:
                targets = [node.next]
            names.update(t.prompt for t in targets if isinstance(t, HangupTarget) and t.prompt)
        return frozenset(names)


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class FlowProblem:
    source: str
    line: int  # 1-based
    column: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}: {self.message}"


class FlowError(ValueError):
    """A flow file is not valid; ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: Sequence[FlowProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line, p.column))
        super().__init__("\n".join(str(p) for p in self.problems))


# --------------------------------------------------------------------------- parsing


def parse_flow(
    text: str,
    source: str,
    *,
    known_queues: Collection[str],
    prompt_exists: Callable[[str], bool],
) -> Flow:
    """Parse and validate a flow file. Raises ``FlowError`` listing every problem."""
    root = _compose(text, source)
    checker = _FlowChecker(source, known_queues, prompt_exists)
    flow = checker.check(root)
    if checker.problems or flow is None:
        raise FlowError(checker.problems)
    return flow


def _compose(text: str, source: str) -> Node | None:
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
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise fail(
            line, column, ", ".join(str(p) for p in (exc.context, exc.problem) if p)
        ) from None
    finally:
        loader.dispose()


_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_SCALARS = SafeConstructor()  # only its stateless scalar converters are used

_PLAY_KEYS = {"type": True, "prompt": True, "next": True}  # key -> required
_MENU_KEYS = {
    "type": True,
    "prompt": True,
    "timeout": False,
    "retries": False,
    "invalid_prompt": False,
    "timeout_prompt": False,
    "options": True,
    "on_exhausted": True,
}
_TARGET_HINT = "a target is {queue: NAME}, {node: NAME} or {hangup: true} (with optional prompt)"


def _describe(node: Node) -> str:
    """What a YAML value is, in words an admin understands."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return {
        _STR: f"text {node.value!r}",
        _INT: f"the number {node.value}",
        _FLOAT: f"the number {node.value}",
        _BOOL: f"{node.value}",
        _NULL: "nothing",
    }.get(node.tag, f"a value tagged {node.tag}")


def _quote_hint(node: Node) -> str:
    """YAML reads 123, 1.5, yes, no, on or off as non-text: tell the admin to quote it."""
    if isinstance(node, ScalarNode) and node.tag in (_INT, _FLOAT, _BOOL):
        return "; quote it if you mean text"
    return ""


@dataclass(frozen=True)
class _Entry:
    key: ScalarNode
    value: Node


@dataclass
class _Edges:
    """Where a node leads: ``silent`` edges are taken when the caller presses nothing."""

    key: ScalarNode
    is_play: bool
    silent: list[str]
    on_input: list[str]


class _FlowChecker:
    def __init__(
        self,
        source: str,
        known_queues: Collection[str],
        prompt_exists: Callable[[str], bool],
    ) -> None:
        self.source = source
        self.known_queues = frozenset(known_queues)
        self.prompt_exists = prompt_exists
        self.problems: list[FlowProblem] = []
        self._prompt_checked: dict[str, bool] = {}
        self._node_names: set[str] = set()
        self._edges: dict[str, _Edges] = {}

    # -- reporting and small readers

    def problem(self, at: Node, message: str) -> None:
        mark = at.start_mark
        self.problems.append(FlowProblem(self.source, mark.line + 1, mark.column + 1, message))

    def mapping(self, node: Node, where: str) -> dict[str, _Entry] | None:
        """A mapping's entries by key text; reports non-text and duplicate keys."""
        if not isinstance(node, MappingNode):
            self.problem(node, f"{where}: expected a mapping, got {_describe(node)}")
            return None
        entries: dict[str, _Entry] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or key.tag not in (_STR, _INT):
                self.problem(
                    key, f"{where}: a key must be a name, got {_describe(key)}{_quote_hint(key)}"
                )
                continue
            if key.value in entries:
                first = entries[key.value].key.start_mark
                self.problem(
                    key,
                    f"{where}: duplicate key {key.value!r} "
                    f"(first at line {first.line + 1}, column {first.column + 1})",
                )
                continue
            entries[key.value] = _Entry(key, value)
        return entries

    def keys(
        self, entries: dict[str, _Entry], allowed: Mapping[str, bool], where: str, owner: Node
    ) -> None:
        """Report unknown keys (at the key) and missing required keys (at ``owner``)."""
        for name, entry in entries.items():
            if name not in allowed:
                known = ", ".join(allowed)
                self.problem(entry.key, f"{where}: unknown key {name!r} (known: {known})")
        for name, required in allowed.items():
            if required and name not in entries:
                self.problem(owner, f"{where}: missing required key {name!r}")

    def text(self, node: Node, where: str) -> str | None:
        if isinstance(node, ScalarNode) and node.tag == _STR:
            if node.value:
                return str(node.value)
            self.problem(node, f"{where}: must not be empty")
            return None
        self.problem(node, f"{where}: expected text, got {_describe(node)}{_quote_hint(node)}")
        return None

    def name(self, node: Node, where: str, pattern: re.Pattern[str], what: str) -> str | None:
        value = self.text(node, where)
        if value is not None and not pattern.match(value):
            self.problem(node, f"{where}: {value!r} is not a valid {what}")
            return None
        return value

    def number(
        self, node: Node, where: str, bounds: tuple[float, float], whole: bool, unit: str
    ) -> float | None:
        allowed = (_INT,) if whole else (_INT, _FLOAT)
        if not isinstance(node, ScalarNode) or node.tag not in allowed:
            kind = "a whole number" if whole else "a number"
            self.problem(node, f"{where}: expected {kind}, got {_describe(node)}")
            return None
        if node.tag == _INT:
            value: float = _SCALARS.construct_yaml_int(node)
        else:
            value = _SCALARS.construct_yaml_float(node)
        low, high = bounds
        if not low <= value <= high:
            self.problem(node, f"{where}: {node.value} is out of range ({low:g}-{high:g} {unit})")
            return None
        return value

    def prompt(self, node: Node, where: str) -> str | None:
        name = self.name(node, where, PROMPT_NAME_RE, "prompt name (letters, digits, - and _)")
        if name is None:
            return None
        if name not in self._prompt_checked:
            self._prompt_checked[name] = bool(self.prompt_exists(name))
        if not self._prompt_checked[name]:
            self.problem(node, f"{where}: prompt {name!r} not found")
            return None
        return name

    # -- the file

    def check(self, root: Node | None) -> Flow | None:
        if root is None:
            self.problems.append(FlowProblem(self.source, 1, 1, "the flow file is empty"))
            return None
        top = self.mapping(root, "flow")
        if top is None:
            return None
        self.keys(top, {"name": True, "start": True, "nodes": True}, "flow", root)
        name = start = None
        if "name" in top:
            name = self.name(top["name"].value, "name", FLOW_NAME_RE, "flow name")
        if "start" in top:
            start = self.text(top["start"].value, "start")
        node_entries = self.mapping(top["nodes"].value, "nodes") if "nodes" in top else None
        if node_entries is None:
            return None
        if not node_entries:
            self.problem(top["nodes"].value, "nodes: a flow needs at least one node")
        named: dict[str, _Entry] = {}
        for entry in node_entries.values():
            node_name = self.name(entry.key, "nodes", NODE_NAME_RE, "node name")
            if node_name is not None:
                named[node_name] = entry
        self._node_names = set(named)
        nodes: dict[str, FlowNode] = {}
        for node_name, entry in named.items():
            parsed = self.node(node_name, entry)
            if parsed is not None:
                nodes[node_name] = parsed
        if start is not None and start not in self._node_names:
            self.problem(top["start"].value, f"start: unknown node {start!r}")
        elif start is not None and set(self._edges) == self._node_names:
            self.check_graph(start)  # only when every node's links are known
        if self.problems or name is None or start is None:
            return None
        return Flow(name=name, start=start, nodes=MappingProxyType(nodes), source=self.source)

    # -- nodes and targets

    def node(self, name: str, entry: _Entry) -> FlowNode | None:
        where = f"nodes.{name}"
        fields = self.mapping(entry.value, where)
        if fields is None:
            return None
        if "type" not in fields:
            self.problem(entry.key, f"{where}: missing required key 'type' (play or menu)")
            return None
        kind = self.text(fields["type"].value, f"{where}.type")
        if kind not in ("play", "menu"):
            if kind is not None:
                self.problem(
                    fields["type"].value, f"{where}.type: unknown node type {kind!r} (play, menu)"
                )
            return None
        edges = _Edges(entry.key, kind == "play", [], [])
        self._edges[name] = edges
        if kind == "play":
            return self.play_node(name, fields, where, entry.key, edges)
        return self.menu_node(name, fields, where, entry.key, edges)

    def play_node(
        self, name: str, fields: dict[str, _Entry], where: str, owner: Node, edges: _Edges
    ) -> PlayNode | None:
        self.keys(fields, _PLAY_KEYS, where, owner)
        prompt = following = None
        if "prompt" in fields:
            prompt = self.prompt(fields["prompt"].value, f"{where}.prompt")
        if "next" in fields:
            following = self.target(fields["next"].value, f"{where}.next", edges.silent)
        if prompt is None or following is None:
            return None
        return PlayNode(name=name, prompt=prompt, next=following)

    def menu_node(
        self, name: str, fields: dict[str, _Entry], where: str, owner: Node, edges: _Edges
    ) -> MenuNode | None:
        self.keys(fields, _MENU_KEYS, where, owner)

        def value(key: str) -> Node | None:
            return fields[key].value if key in fields else None

        def optional_prompt(key: str) -> str | None:
            node = value(key)
            return None if node is None else self.prompt(node, f"{where}.{key}")

        node = value("prompt")
        prompt = None if node is None else self.prompt(node, f"{where}.prompt")
        node = value("timeout")
        timeout = (
            DEFAULT_TIMEOUT
            if node is None
            else self.number(node, f"{where}.timeout", TIMEOUT_RANGE, whole=False, unit="seconds")
        )
        node = value("retries")
        retries = (
            DEFAULT_RETRIES
            if node is None
            else self.number(node, f"{where}.retries", RETRIES_RANGE, whole=True, unit="tries")
        )
        invalid_prompt = optional_prompt("invalid_prompt")
        timeout_prompt = optional_prompt("timeout_prompt")
        node = value("options")
        options = None if node is None else self.options(node, where, edges)
        node = value("on_exhausted")
        on_exhausted = (
            None if node is None else self.target(node, f"{where}.on_exhausted", edges.silent)
        )
        if (
            prompt is None
            or timeout is None
            or retries is None
            or (invalid_prompt is None and "invalid_prompt" in fields)
            or (timeout_prompt is None and "timeout_prompt" in fields)
            or options is None
            or on_exhausted is None
        ):
            return None
        return MenuNode(
            name=name,
            prompt=prompt,
            options=MappingProxyType(options),
            on_exhausted=on_exhausted,
            timeout=float(timeout),
            retries=int(retries),
            invalid_prompt=invalid_prompt,
            timeout_prompt=timeout_prompt,
        )

    def options(self, node: Node, where: str, edges: _Edges) -> dict[str, Target] | None:
        entries = self.mapping(node, f"{where}.options")
        if entries is None:
            return None
        if not entries:
            self.problem(node, f"{where}.options: a menu needs at least one option")
            return None
        options: dict[str, Target] = {}
        complete = True
        for digit, entry in entries.items():
            if len(digit) != 1 or digit not in DTMF_DIGITS:
                self.problem(
                    entry.key,
                    f"{where}.options: {digit!r} is not a single DTMF digit (0-9, *, #; "
                    "quote * and #)",
                )
                complete = False
                continue
            target = self.target(entry.value, f"{where}.options.{digit}", edges.on_input)
            if target is None:
                complete = False
            else:
                options[digit] = target
        return options if complete else None

    def target(self, node: Node, where: str, leads_to: list[str]) -> Target | None:
        if not isinstance(node, MappingNode):
            self.problem(node, f"{where}: expected a target, got {_describe(node)}; {_TARGET_HINT}")
            return None
        fields = self.mapping(node, where)
        if fields is None:
            return None
        allowed = {"queue": False, "node": False, "hangup": False, "prompt": False}
        self.keys(fields, allowed, where, node)
        kinds = [k for k in ("queue", "node", "hangup") if k in fields]
        if len(kinds) != 1:
            found = "none" if not kinds else " and ".join(kinds)
            self.problem(node, f"{where}: needs exactly one of queue, node, hangup (found {found})")
            return None
        kind = kinds[0]
        if "prompt" in fields and kind != "hangup":
            self.problem(fields["prompt"].key, f"{where}: prompt is only allowed with hangup")
        value = fields[kind].value
        if kind == "queue":
            queue = self.text(value, f"{where}.queue")
            if queue is not None and queue not in self.known_queues:
                known = ", ".join(sorted(self.known_queues)) or "none configured"
                self.problem(value, f"{where}.queue: unknown queue {queue!r} (known: {known})")
                return None
            return QueueTarget(queue) if queue is not None else None
        if kind == "node":
            target = self.text(value, f"{where}.node")
            if target is None:
                return None
            leads_to.append(target)
            if target not in self._node_names:
                self.problem(value, f"{where}.node: unknown node {target!r}")
                return None
            return NodeTarget(target)
        if not (
            isinstance(value, ScalarNode)
            and value.tag == _BOOL
            and _SCALARS.construct_yaml_bool(value)
        ):
            self.problem(value, f"{where}.hangup: must be true, got {_describe(value)}")
            return None
        prompt = None
        if "prompt" in fields:
            prompt = self.prompt(fields["prompt"].value, f"{where}.prompt")
            if prompt is None:
                return None
        return HangupTarget(prompt)

    # -- the graph: reachability and loops a silent caller can never leave

    def check_graph(self, start: str) -> None:
        reached = set(_walk(start, self._all_edges))
        for name, edges in self._edges.items():
            if name not in reached:
                self.problem(edges.key, f"nodes.{name}: never reached from start {start!r}")
        for loop in _silent_loops(self._edges):
            first = self._edges[loop[0]]
            route = " -> ".join([*loop, loop[0]])
            if all(self._edges[n].is_play for n in loop):
                message = f"play nodes loop with no menu ({route}): the caller can never leave"
            else:
                message = (
                    f"a caller who presses nothing loops forever ({route}); "
                    "next/on_exhausted must end at a queue or a hangup"
                )
            self.problem(first.key, f"nodes.{loop[0]}: {message}")

    def _all_edges(self, name: str) -> list[str]:
        edges = self._edges.get(name)
        return [*edges.silent, *edges.on_input] if edges else []


def _walk(start: str, neighbours: Callable[[str], list[str]]) -> Iterator[str]:
    seen = {start}
    stack = [start]
    while stack:
        name = stack.pop()
        yield name
        for following in neighbours(name):
            if following not in seen:
                seen.add(following)
                stack.append(following)


def _silent_loops(edges: Mapping[str, _Edges]) -> list[list[str]]:
    """Each cycle of silent edges once, as a node list starting at its first node in file order."""
    order = {name: i for i, name in enumerate(edges)}
    loops: list[list[str]] = []
    done: set[str] = set()  # nodes whose silent chain was already followed
    for origin in edges:
        # Each node has at most one silent link (play next, menu on_exhausted): a chain.
        path: list[str] = []
        on_path: dict[str, int] = {}
        name: str | None = origin
        while name is not None and name in edges and name not in done:
            if name in on_path:
                cycle = path[on_path[name] :]
                first = min(range(len(cycle)), key=lambda i: order[cycle[i]])
                loops.append(cycle[first:] + cycle[:first])
                break
            on_path[name] = len(path)
            path.append(name)
            silent = edges[name].silent
            name = silent[0] if silent else None
        done.update(path)
    return loops
