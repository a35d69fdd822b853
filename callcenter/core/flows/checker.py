"""Flow file text to a validated, frozen ``Flow``, or a ``FlowError`` listing every problem.

Every problem is reported with its file, line and column, and all of them at once, so an
admin can fix a file in one pass. The text becomes a YAML node tree first (``yamltree``),
so that every key and value keeps its position; each node type has its reader here (the
``_NODE_TYPES`` table); the graph checks are in ``graph`` and the policy rules in
``policies``.

The format is described in ``docs/ivr.md``; ``dialplans/main.yaml`` is the demo.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from callcenter.core.checkdigits import CHECKS
from callcenter.core.expr import KEYWORDS, Expression, ExpressionError, parse_expression
from callcenter.core.flows.errors import FlowError, FlowProblem
from callcenter.core.flows.graph import Edges, check_graph
from callcenter.core.flows.model import (
    BUILTIN_VARIABLES,
    CALLBACK_PROMPTS,
    CURRENCIES,
    DEFAULT_ATTENDANT_KEY,
    DEFAULT_CALLBACK_MAX_DIGITS,
    DEFAULT_CALLBACK_MIN_DIGITS,
    DEFAULT_LANGUAGE,
    DEFAULT_MAX_MENU_DEPTH,
    DEFAULT_RECORD_SECONDS,
    DEFAULT_RETRIES,
    DEFAULT_TERMINATOR,
    DEFAULT_TIMEOUT,
    DTMF_DIGITS,
    SAY_KINDS,
    AgentTarget,
    CallbackNode,
    CollectNode,
    ConditionNode,
    FaqNode,
    FetchNode,
    Flow,
    FlowNode,
    FlowTarget,
    GotoNode,
    HangupTarget,
    LanguageNode,
    MenuNode,
    NodeTarget,
    PlayNode,
    QuestionNode,
    QueueTarget,
    SayNode,
    SetNode,
    Target,
    TimeNode,
    TransferTarget,
    show_target,
)
from callcenter.core.flows.names import (
    AGENT_ID_RE,
    E164_RE,
    EXTENSION_RE,
    FLOW_NAME_RE,
    LANGUAGE_RE,
    NODE_NAME_RE,
    PROMPT_NAME_RE,
    QUERY_NAME_RE,
    RESULT_PATH_RE,
    SKILL_RE,
    TOPIC_RE,
    VARIABLE_NAME_RE,
)
from callcenter.core.flows.policies import (
    MENU_DEPTH_RANGE,
    POLICIES,
    PolicySettings,
    SacRules,
)
from callcenter.core.flows.yamltree import (
    BOOL_TAG,
    FLOAT_TAG,
    INT_TAG,
    NULL_TAG,
    SCALARS,
    STR_TAG,
    compose,
    describe,
    node_at,
    quote_hint,
)
from callcenter.core.hours import Schedule, ScheduleError, parse_schedule

_T = TypeVar("_T")

TIMEOUT_RANGE = (1.0, 60.0)  # seconds to wait for a digit after a menu prompt
RETRIES_RANGE = (1, 10)  # how many times a menu is heard in total
MAX_COLLECT_DIGITS = 32
FETCH_SCHEMES = ("http", "https")
FETCH_TIMEOUT_RANGE = (0.5, 30.0)  # seconds per try of a data dip
FETCH_RETRIES_RANGE = (0, 3)  # extra tries after a failed one
DEFAULT_FETCH_TIMEOUT = 3.0
DEFAULT_FETCH_RETRIES = 1
MAX_URL_LENGTH = 2000
MAX_LANGUAGES = 9  # one key each in a language menu
MAX_ANSWER_LENGTH = 64
RECORD_SECONDS_RANGE = (2, 30)  # of a caller's recorded name
PHONE_DIGITS_RANGE = (3, 15)  # of a callback number (an extension to E.164 without +)
DEFAULT_FAQ_QUESTION = "faq-did-this-solve-it"
MIN_PRIORITY, MAX_PRIORITY = -100, 100


def parse_flow(
    text: str,
    source: str,
    *,
    known_queues: Collection[str],
    prompt_exists: Callable[[str, str], bool],
    known_agents: Collection[str] | None = None,
    known_flows: Collection[str] | None = None,
    default_language: str = DEFAULT_LANGUAGE,
) -> Flow:
    """Parse and validate a flow file. Raises ``FlowError`` listing every problem.

    ``prompt_exists(name, language)``: is there a recording of that prompt in that language;
    every prompt must exist in each of the flow's ``languages`` (``default_language`` when the
    file names none). ``known_agents`` / ``known_flows``: when given, ``{agent: ID}`` /
    ``{flow: NAME}`` targets must name one of them; when None, only their form is checked.
    """
    root = compose(text, source)
    checker = _FlowChecker(source, known_queues, prompt_exists, known_agents, known_flows,
                           default_language)
    flow = checker.check(root)
    if checker.problems or flow is None:
        raise FlowError(checker.problems)
    return flow


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
_TOP_KEYS = {
    "name": True,
    "start": True,
    "policy": False,
    "attendant": False,
    "attendant_key": False,
    "max_menu_depth": False,
    "languages": False,
    "nodes": True,
}
_TARGET_KINDS = ("queue", "node", "hangup", "agent", "extension", "external", "flow")
_TARGET_HINT = (
    "a target is {queue: NAME}, {node: NAME}, {hangup: true} (with optional prompt), "
    "{agent: ID}, {extension: 'DIGITS'}, {external: '+E164'} or {flow: NAME}"
)
_SET_KEYS = {"type": True, "variables": True, "next": True}
_CONDITION_KEYS = {"type": True, "if": True, "then": True, "else": True}
_GOTO_KEYS = {"type": True, "next": True}
_TIME_KEYS = {"type": True, "hours": True, "open": True, "closed": True}
_SAY_KEYS = {
    "type": True,
    "kind": True,
    "value": True,
    "currency": False,
    "timezone": False,
    "next": True,
}
_COLLECT_KEYS = {
    "type": True,
    "prompt": True,
    "variable": True,
    "min_digits": False,
    "max_digits": True,
    "terminator": False,
    "timeout": False,
    "retries": False,
    "check": False,
    "pattern": False,
    "invalid_prompt": False,
    "timeout_prompt": False,
    "next": True,
    "on_exhausted": True,
}
_FETCH_KEYS = {
    "type": True,
    "url": True,
    "params": False,
    "timeout": False,
    "retries": False,
    "result": False,
    "next": True,
    "on_failure": True,
}
_RETRY_KEYS = {"timeout": False, "retries": False, "invalid_prompt": False,
               "timeout_prompt": False}
_LANGUAGE_KEYS = {"type": True, "prompt": True, "options": True, "next": True, **_RETRY_KEYS}
_FAQ_KEYS = {
    "type": True,
    "topic": False,
    "answer": True,
    "question": False,
    "solved": True,
    "not_solved": True,
    "on_exhausted": False,
    **_RETRY_KEYS,
}
_QUESTION_KEYS = {
    "type": True,
    "id": False,
    "prompt": True,
    "answers": True,
    "variable": False,
    "next": True,
    "on_exhausted": False,
    **_RETRY_KEYS,
}
_CALLBACK_KEYS = {
    "type": True,
    "queue": True,
    **dict.fromkeys(CALLBACK_PROMPTS, False),
    "record_seconds": False,
    "min_digits": False,
    "max_digits": False,
    "timeout": False,
    "retries": False,
    "next": True,
    "on_failure": True,
}


@dataclass(frozen=True)
class _Entry:
    key: ScalarNode
    value: Node


class _FieldReader:
    """Reads a node's optional fields; ``failed`` says whether any present one was wrong."""

    def __init__(self, fields: dict[str, _Entry], where: str) -> None:
        self._fields = fields
        self._where = where
        self.failed = False

    def read(
        self, key: str, reader: Callable[[Node, str], _T | None], default: _T | None
    ) -> _T | None:
        if key not in self._fields:
            return default
        value = reader(self._fields[key].value, f"{self._where}.{key}")
        self.failed = self.failed or value is None
        return value



@dataclass(frozen=True)
class _Reading:
    """An expression of the file, kept to check the variables it reads once all are known."""

    expression: Expression
    node: ScalarNode
    where: str


class _FlowChecker:
    def __init__(
        self,
        source: str,
        known_queues: Collection[str],
        prompt_exists: Callable[[str, str], bool],
        known_agents: Collection[str] | None = None,
        known_flows: Collection[str] | None = None,
        default_language: str = DEFAULT_LANGUAGE,
    ) -> None:
        self.source = source
        self.known_queues = frozenset(known_queues)
        self.prompt_exists = prompt_exists
        self.languages: tuple[str, ...] = (default_language,)
        self.known_agents = None if known_agents is None else frozenset(known_agents)
        self.known_flows = None if known_flows is None else frozenset(known_flows)
        self.problems: list[FlowProblem] = []
        self._readings: list[_Reading] = []
        self._assigned: set[str] = set()  # variables some set or collect node sets
        self._missing_languages: dict[str, list[str]] = {}  # prompt -> languages without it
        self._node_names: set[str] = set()
        self._edges: dict[str, Edges] = {}
        self._option_keys: dict[str, dict[str, ScalarNode]] = {}  # "nodes.NAME" -> digit -> key

    # -- reporting and small readers

    def problem(self, at: Node, message: str) -> None:
        mark = at.start_mark
        self.problems.append(FlowProblem(self.source, mark.line + 1, mark.column + 1, message))

    def mapping(self, node: Node, where: str) -> dict[str, _Entry] | None:
        """A mapping's entries by key text; reports non-text and duplicate keys."""
        if not isinstance(node, MappingNode):
            self.problem(node, f"{where}: expected a mapping, got {describe(node)}")
            return None
        entries: dict[str, _Entry] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or key.tag not in (STR_TAG, INT_TAG):
                self.problem(
                    key, f"{where}: a key must be a name, got {describe(key)}{quote_hint(key)}"
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
        if isinstance(node, ScalarNode) and node.tag == STR_TAG:
            if node.value:
                return str(node.value)
            self.problem(node, f"{where}: must not be empty")
            return None
        self.problem(node, f"{where}: expected text, got {describe(node)}{quote_hint(node)}")
        return None

    def name(self, node: Node, where: str, pattern: re.Pattern[str], what: str) -> str | None:
        value = self.text(node, where)
        if value is not None and not pattern.fullmatch(value):  # match() lets "x\n" through
            self.problem(node, f"{where}: {value!r} is not a valid {what}")
            return None
        return value

    def number(
        self, node: Node, where: str, bounds: tuple[float, float], whole: bool, unit: str
    ) -> float | None:
        allowed = (INT_TAG,) if whole else (INT_TAG, FLOAT_TAG)
        if not isinstance(node, ScalarNode) or node.tag not in allowed:
            kind = "a whole number" if whole else "a number"
            self.problem(node, f"{where}: expected {kind}, got {describe(node)}")
            return None
        if node.tag == INT_TAG:
            value: float = SCALARS.construct_yaml_int(node)
        else:
            value = SCALARS.construct_yaml_float(node)
        low, high = bounds
        if not low <= value <= high:
            unit = f" {unit}" if unit else ""
            self.problem(node, f"{where}: {node.value} is out of range ({low:g}-{high:g}{unit})")
            return None
        return value

    def prompt(self, node: Node, where: str) -> str | None:
        name = self.name(node, where, PROMPT_NAME_RE, "prompt name (letters, digits, - and _)")
        if name is None:
            return None
        missing = self.missing_in(name)
        if missing:
            self.problem(node, f"{where}: prompt {name!r} not found{self.which(missing)}")
            return None
        return name

    def missing_in(self, prompt: str) -> list[str]:
        """The flow's languages the prompt does not exist in (asked once per prompt)."""
        if prompt not in self._missing_languages:
            self._missing_languages[prompt] = [
                language for language in self.languages if not self.prompt_exists(prompt, language)
            ]
        return self._missing_languages[prompt]

    def which(self, languages: list[str]) -> str:
        """" for language pt_BR" when the flow speaks several; nothing to add otherwise."""
        return f" for language {', '.join(languages)}" if len(self.languages) > 1 else ""

    def prompt_or_default(self, fields: dict[str, _Entry], key: str, default: str,
                          where: str, owner: Node) -> str | None:
        """A prompt the node names, or its default one (which must exist as well)."""
        if key in fields:
            return self.prompt(fields[key].value, f"{where}.{key}")
        missing = self.missing_in(default)
        if missing:
            self.problem(owner, f"{where}: the default {key} {default!r} is not found"
                         f"{self.which(missing)}; record it or name another with {key}")
            return None
        return default

    def flow_languages(self, node: Node) -> tuple[str, ...] | None:
        """``languages: [pt_BR, en]``: codes as prompt folders are named, first = fallback."""
        if not isinstance(node, SequenceNode) or not node.value:
            self.problem(node, "languages: expected a list of language codes like [en, pt_BR] "
                         f"(the first is the fallback), got {describe(node)}")
            return None
        languages: list[str] = []
        for index, item in enumerate(node.value):
            code = self.name(item, f"languages[{index}]", LANGUAGE_RE,
                             "language code (like en or pt_BR, as the prompt folders)")
            if code is None:
                return None
            if code in languages:
                self.problem(item, f"languages[{index}]: {code!r} is listed twice")
                return None
            languages.append(code)
        if len(languages) > MAX_LANGUAGES:
            self.problem(node, f"languages: at most {MAX_LANGUAGES} languages (one key each)")
            return None
        return tuple(languages)

    # -- the file

    def check(self, root: Node | None) -> Flow | None:
        if root is None:
            self.problems.append(FlowProblem(self.source, 1, 1, "the flow file is empty"))
            return None
        top = self.mapping(root, "flow")
        if top is None:
            return None
        self.keys(top, _TOP_KEYS, "flow", root)
        name = start = None
        if "name" in top:
            name = self.name(top["name"].value, "name", FLOW_NAME_RE, "flow name")
        if "start" in top:
            start = self.text(top["start"].value, "start")
        if "languages" in top:
            languages = self.flow_languages(top["languages"].value)
            if languages is None:
                return None  # every prompt check depends on them
            self.languages = languages
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
        self.check_variables_read()
        policy = self.policy(top, root)
        graph_known = set(self._edges) == self._node_names  # every node's links are known
        if start is not None and start not in self._node_names:
            self.problem(top["start"].value, f"start: unknown node {start!r}")
        elif start is not None and graph_known:
            check_graph(start, self._edges, self.problem)
            if policy is not None:
                SacRules(self.problem, policy, nodes, self._edges, self._option_keys).check(start)
        if self.problems or name is None or start is None:
            return None
        flow = Flow(name=name, start=start, nodes=MappingProxyType(nodes), source=self.source,
                    languages=self.languages)
        if policy is None:
            return flow
        # No problems: every policy setting was read.
        assert policy.attendant_key is not None and policy.max_menu_depth is not None
        return replace(
            flow,
            policy=policy.name,
            attendant=policy.attendant,
            attendant_key=policy.attendant_key,
            max_menu_depth=policy.max_menu_depth,
        )

    def policy(self, top: dict[str, _Entry], root: Node) -> PolicySettings | None:
        """The flow's policy settings, None without one. A setting that is wrong is None in
        the result (its problem is reported), so that the other rules are still checked."""
        settings = [key for key in ("attendant", "attendant_key", "max_menu_depth") if key in top]
        if "policy" not in top:
            for key in settings:
                self.problem(top[key].key, f"{key}: only used with policy: sac")
            return None
        at = top["policy"].value
        name = self.text(at, "policy")
        if name is None:
            return None
        if name not in POLICIES:
            self.problem(at, f"policy: unknown policy {name!r} (known: {', '.join(POLICIES)})")
            return None
        attendant = None
        if "attendant" not in top:
            self.problem(root, "flow: policy sac needs an 'attendant' target ({queue: NAME} or "
                         "{agent: ID}): where the attendant key leads")
        else:
            value = top["attendant"].value
            attendant = self.target(value, "attendant", [])
            if attendant is not None and not isinstance(attendant, QueueTarget | AgentTarget):
                self.problem(value, "attendant: must be a queue or an agent, where a person "
                             f"answers, not {show_target(attendant)}")
                attendant = None
        key: str | None = DEFAULT_ATTENDANT_KEY
        if "attendant_key" in top:
            key = self.dtmf_key(top["attendant_key"].value, "attendant_key")
        depth: float | None = DEFAULT_MAX_MENU_DEPTH
        if "max_menu_depth" in top:
            depth = self.number(top["max_menu_depth"].value, "max_menu_depth",
                                MENU_DEPTH_RANGE, whole=True, unit="menus")
        return PolicySettings(name, at, attendant, key, None if depth is None else int(depth))

    def dtmf_key(self, node: Node, where: str) -> str | None:
        """One DTMF key, as text or a bare digit."""
        if (
            isinstance(node, ScalarNode)
            and node.tag in (STR_TAG, INT_TAG)
            and len(node.value) == 1
            and node.value in DTMF_DIGITS
        ):
            return str(node.value)
        self.problem(node, f"{where}: expected one DTMF key (0-9, *, #; quote * and #), "
                     f"got {describe(node)}")
        return None

    # -- nodes and targets

    def node(self, name: str, entry: _Entry) -> FlowNode | None:
        where = f"nodes.{name}"
        fields = self.mapping(entry.value, where)
        if fields is None:
            return None
        kinds = ", ".join(NODE_TYPES)
        if "type" not in fields:
            self.problem(entry.key, f"{where}: missing required key 'type' ({kinds})")
            return None
        kind = self.text(fields["type"].value, f"{where}.type")
        if kind not in NODE_TYPES:
            if kind is not None:
                self.problem(
                    fields["type"].value, f"{where}.type: unknown node type {kind!r} ({kinds})"
                )
            return None
        node_type = _NODE_TYPES[kind]
        edges = Edges(entry.key, kind, [], [], node_type.waits_for_caller)
        self._edges[name] = edges
        self.keys(fields, node_type.keys, where, entry.key)
        return node_type.read(self, name, fields, where, entry.key, edges)

    def play_node(
        self, name: str, fields: dict[str, _Entry], where: str, owner: Node, edges: Edges
    ) -> PlayNode | None:
        prompt = following = None
        if "prompt" in fields:
            prompt = self.prompt(fields["prompt"].value, f"{where}.prompt")
        following = self.silent_target(fields, "next", where, edges)
        if prompt is None or following is None:
            return None
        return PlayNode(name=name, prompt=prompt, next=following)

    def menu_node(
        self, name: str, fields: dict[str, _Entry], where: str, owner: Node, edges: Edges
    ) -> MenuNode | None:
        fields_read = _FieldReader(fields, where)
        read = fields_read.read
        prompt = read("prompt", self.prompt, None)
        retry = self.retry_settings(fields_read)
        options = read("options", lambda n, _: self.options(n, where, edges), None)
        on_exhausted = read("on_exhausted", lambda n, at: self.target(n, at, edges.silent), None)
        if fields_read.failed or prompt is None or options is None or on_exhausted is None:
            return None
        return MenuNode(name=name, prompt=prompt, options=MappingProxyType(options),
                        on_exhausted=on_exhausted, **retry.fields())

    def collect_node(
        self, name: str, fields: dict[str, _Entry], where: str, owner: Node, edges: Edges
    ) -> CollectNode | None:
        fields_read = _FieldReader(fields, where)
        read = fields_read.read

        def digits_count(node: Node, at: str) -> float | None:
            return self.number(node, at, (1, MAX_COLLECT_DIGITS), whole=True, unit="digits")

        prompt = read("prompt", self.prompt, None)
        variable = read("variable", self.variable_name, None)
        min_digits = read("min_digits", digits_count, 1.0)
        max_digits = read("max_digits", digits_count, None)
        if min_digits is not None and max_digits is not None and min_digits > max_digits:
            self.problem(
                fields["min_digits"].value,
                f"{where}.min_digits: {int(min_digits)} is more than max_digits "
                f"({int(max_digits)})",
            )
            fields_read.failed = True
        terminator = read("terminator", self.terminator, DEFAULT_TERMINATOR)
        retry = self.retry_settings(fields_read)
        check = read("check", self.check_name, None)
        pattern = read("pattern", self.digits_pattern, None)
        following = read("next", lambda n, at: self.target(n, at, edges.on_input), None)
        on_exhausted = read("on_exhausted", lambda n, at: self.target(n, at, edges.silent), None)
        if (
            fields_read.failed
            or prompt is None
            or variable is None
            or min_digits is None
            or max_digits is None
            or terminator is None
            or following is None
            or on_exhausted is None
        ):
            return None
        return CollectNode(
            name=name,
            prompt=prompt,
            variable=variable,
            max_digits=int(max_digits),
            min_digits=int(min_digits),
            terminator=terminator or None,
            check=check,
            pattern=pattern,
            next=following,
            on_exhausted=on_exhausted,
            **retry.fields(),
        )

    def retry_settings(self, fields_read: _FieldReader) -> _RetrySettings:
        """The timeout, tries and feedback prompts every node waiting for a key may set
        (defaults in place of wrong values: ``fields_read.failed`` tells)."""
        timeout, retries = self.tries(fields_read)
        return _RetrySettings(
            timeout=timeout,
            retries=retries,
            invalid_prompt=fields_read.read("invalid_prompt", self.prompt, None),
            timeout_prompt=fields_read.read("timeout_prompt", self.prompt, None),
        )

    def tries(self, fields_read: _FieldReader) -> tuple[float, int]:
        """How long to wait for a key and how many tries (defaults in place of wrong
        values: ``fields_read.failed`` tells)."""
        timeout = fields_read.read(
            "timeout",
            lambda n, at: self.number(n, at, TIMEOUT_RANGE, whole=False, unit="seconds"),
            DEFAULT_TIMEOUT,
        )
        retries = fields_read.read(
            "retries",
            lambda n, at: self.number(n, at, RETRIES_RANGE, whole=True, unit="tries"),
            DEFAULT_RETRIES,
        )
        return (DEFAULT_TIMEOUT if timeout is None else float(timeout),
                DEFAULT_RETRIES if retries is None else int(retries))

    def key_map(self, node: Node, where: str, value: Callable[[Node, str], str | None],
                keys: dict[str, ScalarNode]) -> dict[str, str] | None:
        """digit -> text, for language and question nodes; ``keys`` gets where each key is."""
        entries = self.mapping(node, where)
        if entries is None:
            return None
        if not entries:
            self.problem(node, f"{where}: needs at least one key")
            return None
        result: dict[str, str] = {}
        for digit, entry in entries.items():
            if len(digit) != 1 or digit not in DTMF_DIGITS:
                self.problem(entry.key, f"{where}: {digit!r} is not a single DTMF digit "
                             "(0-9, *, #; quote * and #)")
                return None
            checked = value(entry.value, f"{where}.{digit}")
            if checked is None:
                return None
            result[digit] = checked
            keys[digit] = entry.key
        return result

    def language_code(self, node: Node, where: str) -> str | None:
        code = self.name(node, where, LANGUAGE_RE, "language code (like en or pt_BR)")
        if code is not None and code not in self.languages:
            self.problem(node, f"{where}: {code!r} is not one of the flow's languages "
                         f"({', '.join(self.languages)}); add it to languages at the top")
            return None
        return code

    def language_node(
        self, name: str, fields: dict[str, _Entry], where: str, owner: Node, edges: Edges
    ) -> LanguageNode | None:
        fields_read = _FieldReader(fields, where)
        read = fields_read.read
        prompt = read("prompt", self.prompt, None)
        keys: dict[str, ScalarNode] = {}
        options = read("options", lambda n, at: self.key_map(n, at, self.language_code, keys),
                       None)
        self._option_keys[where] = keys
        retry = self.retry_settings(fields_read)
        # Chosen or not, the caller goes on: the edge is taken even in silence.
        following = read("next", lambda n, at: self.target(n, at, edges.silent), None)
        if fields_read.failed or prompt is None or options is None or following is None:
            return None
        return LanguageNode(name, prompt, MappingProxyType(options), following,
                            **retry.fields())

    def faq_node(
        self, name: str, fields: dict[str, _Entry], where: str, owner: Node, edges: Edges
    ) -> FaqNode | None:
        fields_read = _FieldReader(fields, where)
        read = fields_read.read
        topic = read("topic", lambda n, at: self.name(n, at, TOPIC_RE, "topic (a-z, 0-9, - _)"),
                     name.lower() if TOPIC_RE.fullmatch(name.lower()) else None)
        if topic is None and "topic" not in fields:
            self.problem(owner, f"{where}: give the FAQ a topic (a-z, 0-9, - _): the node "
                         "name cannot be used as one")
        answer = read("answer", self.prompt, None)
        question = self.prompt_or_default(fields, "question", DEFAULT_FAQ_QUESTION, where, owner)
        retry = self.retry_settings(fields_read)
        solved = read("solved", lambda n, at: self.target(n, at, edges.on_input), None)
        to_person: list[str] = []
        not_solved = read("not_solved", lambda n, at: self.target(n, at, to_person), None)
        edges.on_input.extend(to_person)
        on_exhausted = read("on_exhausted", lambda n, at: self.target(n, at, edges.silent),
                            None)
        if on_exhausted is None and "on_exhausted" not in fields and not_solved is not None:
            # No reply: the caller did not say it was solved, so a person should help.
            on_exhausted = not_solved
            edges.silent.extend(to_person)
        if (fields_read.failed or topic is None or answer is None or question is None
                or solved is None or not_solved is None or on_exhausted is None):
            return None
        return FaqNode(name, topic, answer, question, solved, not_solved, on_exhausted,
                       **retry.fields())

    def question_node(
        self, name: str, fields: dict[str, _Entry], where: str, owner: Node, edges: Edges
    ) -> QuestionNode | None:
        fields_read = _FieldReader(fields, where)
        read = fields_read.read
        question = read("id", lambda n, at: self.name(n, at, TOPIC_RE, "id (a-z, 0-9, - _)"),
                        name.lower() if TOPIC_RE.fullmatch(name.lower()) else None)
        if question is None and "id" not in fields:
            self.problem(owner, f"{where}: give the question an id (a-z, 0-9, - _): the node "
                         "name cannot be used as one")
        prompt = read("prompt", self.prompt, None)
        answers = read("answers", self.answers, None)
        variable = read("variable", self.variable_name, None)
        retry = self.retry_settings(fields_read)
        following = read("next", lambda n, at: self.target(n, at, edges.on_input), None)
        on_exhausted = read("on_exhausted", lambda n, at: self.target(n, at, edges.silent),
                            None)
        if on_exhausted is None and "on_exhausted" not in fields and following is not None:
            on_exhausted = following  # no answer is an answer too: the survey goes on
            edges.silent.extend(edges.on_input)
        if (fields_read.failed or question is None or prompt is None or answers is None
                or following is None or on_exhausted is None):
            return None
        return QuestionNode(name, question, prompt, MappingProxyType(answers), following,
                            on_exhausted, variable, **retry.fields())

    def answers(self, node: Node, where: str) -> dict[str, str] | None:
        """``"1-5"`` (each key answers itself) or a mapping key -> answer text."""
        if isinstance(node, ScalarNode) and node.tag == STR_TAG and "-" in node.value:
            low, _, high = node.value.partition("-")
            if (len(low) == len(high) == 1 and low.isdigit() and high.isdigit()
                    and low < high):
                return {str(d): str(d) for d in range(int(low), int(high) + 1)}
            self.problem(node, f"{where}: expected a range of keys like '1-5', "
                         f"got {node.value!r}")
            return None
        if not isinstance(node, MappingNode):
            self.problem(node, f"{where}: expected a range like '1-5' or a mapping of keys to "
                         f"answers like {{1: 'yes', 2: 'no'}}, got {describe(node)}")
            return None

        def answer_text(value: Node, at: str) -> str | None:
            if isinstance(value, ScalarNode) and value.tag in (STR_TAG, INT_TAG, BOOL_TAG):
                text = str(value.value)
                if 0 < len(text) <= MAX_ANSWER_LENGTH:
                    return text
            self.problem(value, f"{at}: expected the answer as short text "
                         f"(1-{MAX_ANSWER_LENGTH} characters), got {describe(value)}")
            return None

        return self.key_map(node, where, answer_text, {})

    def callback_node(
        self, name: str, fields: dict[str, _Entry], where: str, owner: Node, edges: Edges
    ) -> CallbackNode | None:
        fields_read = _FieldReader(fields, where)
        read = fields_read.read
        queue = read("queue", self.queue_name, None)
        prompts = {key: self.prompt_or_default(fields, key, default, where, owner)
                   for key, default in CALLBACK_PROMPTS.items()}

        def seconds(n: Node, at: str) -> float | None:
            return self.number(n, at, RECORD_SECONDS_RANGE, whole=True, unit="seconds")

        def digits_count(n: Node, at: str) -> float | None:
            return self.number(n, at, PHONE_DIGITS_RANGE, whole=True, unit="digits")

        record_seconds = read("record_seconds", seconds, DEFAULT_RECORD_SECONDS)
        min_digits = read("min_digits", digits_count, DEFAULT_CALLBACK_MIN_DIGITS)
        max_digits = read("max_digits", digits_count, DEFAULT_CALLBACK_MAX_DIGITS)
        if min_digits is not None and max_digits is not None and min_digits > max_digits:
            self.problem(owner, f"{where}: min_digits ({int(min_digits)}) is more than "
                         f"max_digits ({int(max_digits)})")
            fields_read.failed = True
        timeout, retries = self.tries(fields_read)
        following = read("next", lambda n, at: self.target(n, at, edges.on_input), None)
        on_failure = read("on_failure", lambda n, at: self.target(n, at, edges.silent), None)
        if (fields_read.failed or queue is None or None in prompts.values()
                or record_seconds is None or min_digits is None or max_digits is None
                or following is None or on_failure is None):
            return None
        return CallbackNode(
            name, queue, following, on_failure,
            **{key: str(value) for key, value in prompts.items()},
            record_seconds=int(record_seconds), min_digits=int(min_digits),
            max_digits=int(max_digits), timeout=timeout, retries=retries,
        )

    def terminator(self, node: Node, where: str) -> str | None:
        """'#' or no terminator ('' here, for none or null), None when wrong."""
        if isinstance(node, ScalarNode) and node.tag == NULL_TAG:
            return ""
        if isinstance(node, ScalarNode) and node.tag == STR_TAG and node.value in ("#", "none"):
            return "#" if node.value == "#" else ""
        self.problem(node, f"{where}: expected '#' or none, got {describe(node)}")
        return None

    def check_name(self, node: Node, where: str) -> str | None:
        check = self.text(node, where)
        if check is not None and check not in CHECKS:
            self.problem(node, f"{where}: unknown check {check!r} (known: {', '.join(CHECKS)})")
            return None
        return check

    def digits_pattern(self, node: Node, where: str) -> Expression | None:
        """The admin's regex as ``matches(digits, ...)``, so expr's safety rules apply."""
        pattern = self.text(node, where)
        if pattern is None:
            return None
        quoted = "'" + pattern.replace("\\", "\\\\").replace("'", "\\'") + "'"
        try:
            return parse_expression(f"matches(digits, {quoted})")
        except ExpressionError as error:
            self.problem(node, f"{where}: {error.message}")
            return None

    def say_node(
        self, name: str, fields: dict[str, _Entry], where: str, owner: Node, edges: Edges
    ) -> SayNode | None:
        kind = value = following = None
        if "kind" in fields:
            kind = self.text(fields["kind"].value, f"{where}.kind")
            if kind is not None and kind not in SAY_KINDS:
                self.problem(
                    fields["kind"].value,
                    f"{where}.kind: unknown kind {kind!r} (known: {', '.join(SAY_KINDS)})",
                )
                kind = None
        if "value" in fields:
            value = self.expression(fields["value"].value, f"{where}.value")
        currency = None
        if "currency" in fields:
            currency = self.text(fields["currency"].value, f"{where}.currency")
            if currency is not None and currency not in CURRENCIES:
                self.problem(
                    fields["currency"].value,
                    f"{where}.currency: unknown currency {currency!r} "
                    f"(known: {', '.join(CURRENCIES)})",
                )
                currency = None
            elif kind is not None and kind != "money":
                self.problem(fields["currency"].key, f"{where}: currency is only for kind money")
        elif kind == "money":
            self.problem(owner, f"{where}: kind money needs a currency ({', '.join(CURRENCIES)})")
        timezone: str | None = "UTC"
        if "timezone" in fields:
            timezone = self.zone(fields["timezone"].value, f"{where}.timezone")
            if kind is not None and kind != "datetime":
                self.problem(fields["timezone"].key, f"{where}: timezone is only for kind datetime")
        following = self.silent_target(fields, "next", where, edges)
        if kind is None or value is None or following is None or timezone is None:
            return None
        if kind == "money" and currency is None:
            return None
        return SayNode(name, kind, value, following, currency=currency, timezone=timezone)

    def zone(self, node: Node, where: str) -> str | None:
        key = self.text(node, where)
        if key is None:
            return None
        try:
            ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError):
            self.problem(node, f"{where}: unknown time zone {key!r} (an IANA key like 'UTC')")
            return None
        return key

    def set_node(
        self, name: str, fields: dict[str, _Entry], where: str, owner: Node, edges: Edges
    ) -> SetNode | None:
        assignments: dict[str, Expression] = {}
        complete = "variables" in fields
        if "variables" in fields:
            node = fields["variables"].value
            entries = self.mapping(node, f"{where}.variables")
            if entries is not None and not entries:
                self.problem(node, f"{where}.variables: set at least one variable")
            if not entries:
                complete = False
            for variable, entry in (entries or {}).items():
                checked = self.variable_name(entry.key, f"{where}.variables")
                expression = self.expression(entry.value, f"{where}.variables.{variable}")
                if checked is None or expression is None:
                    complete = False
                else:
                    assignments[checked] = expression
        following = self.silent_target(fields, "next", where, edges)
        if not complete or following is None:
            return None
        return SetNode(name, MappingProxyType(assignments), following)

    def condition_node(
        self, name: str, fields: dict[str, _Entry], where: str, owner: Node, edges: Edges
    ) -> ConditionNode | None:
        condition = then = otherwise = None
        if "if" in fields:
            condition = self.expression(fields["if"].value, f"{where}.if")
        then = self.silent_target(fields, "then", where, edges)
        otherwise = self.silent_target(fields, "else", where, edges)
        if condition is None or then is None or otherwise is None:
            return None
        return ConditionNode(name, condition, then, otherwise)

    def goto_node(
        self, name: str, fields: dict[str, _Entry], where: str, owner: Node, edges: Edges
    ) -> GotoNode | None:
        if "next" not in fields:
            return None
        following = self.target(fields["next"].value, f"{where}.next", edges.silent)
        return None if following is None else GotoNode(name, following)

    def fetch_node(
        self, name: str, fields: dict[str, _Entry], where: str, owner: Node, edges: Edges
    ) -> FetchNode | None:
        fields_read = _FieldReader(fields, where)
        read = fields_read.read

        url = read("url", self.fetch_url, None)
        params = read("params", self.query_params, {})
        timeout = read(
            "timeout",
            lambda n, at: self.number(n, at, FETCH_TIMEOUT_RANGE, whole=False, unit="seconds"),
            DEFAULT_FETCH_TIMEOUT,
        )
        retries = read(
            "retries",
            lambda n, at: self.number(n, at, FETCH_RETRIES_RANGE, whole=True, unit="extra tries"),
            DEFAULT_FETCH_RETRIES,
        )
        result = read("result", self.result_paths, {})
        # Both ways on need nothing from the caller: silent edges, checked for loops.
        following = read("next", lambda n, at: self.target(n, at, edges.silent), None)
        on_failure = read("on_failure", lambda n, at: self.target(n, at, edges.silent), None)
        if (
            fields_read.failed
            or url is None
            or params is None
            or timeout is None
            or retries is None
            or result is None
            or following is None
            or on_failure is None
        ):
            return None
        return FetchNode(
            name=name,
            url=url,
            params=MappingProxyType(params),
            timeout=float(timeout),
            retries=int(retries),
            result=MappingProxyType(result),
            next=following,
            on_failure=on_failure,
        )

    def fetch_url(self, node: Node, where: str) -> str | None:
        """An absolute http(s) URL with a host, no user info and no fragment."""
        url = self.text(node, where)
        if url is None:
            return None
        problem = _url_problem(url)
        if problem is not None:
            self.problem(node, f"{where}: {problem}")
            return None
        return url

    def query_params(self, node: Node, where: str) -> dict[str, Expression] | None:
        entries = self.mapping(node, where)
        if entries is None:
            return None
        params: dict[str, Expression] = {}
        complete = True
        for param, entry in entries.items():
            checked = self.name(
                entry.key, where, QUERY_NAME_RE, "query parameter name (letters, digits, _ . ~ -)"
            )
            expression = self.expression(entry.value, f"{where}.{param}")
            if checked is None or expression is None:
                complete = False
            else:
                params[checked] = expression
        return params if complete else None

    def result_paths(self, node: Node, where: str) -> dict[str, str] | None:
        """variable -> dotted path in the JSON reply; the variables count as set."""
        entries = self.mapping(node, where)
        if entries is None:
            return None
        result: dict[str, str] = {}
        complete = True
        for variable, entry in entries.items():
            checked = self.variable_name(entry.key, where)
            path = self.name(
                entry.value,
                f"{where}.{variable}",
                RESULT_PATH_RE,
                "path in the reply (names joined by dots, e.g. delivery.days)",
            )
            if checked is None or path is None:
                complete = False
            else:
                result[checked] = path
        return result if complete else None

    def time_node(
        self, name: str, fields: dict[str, _Entry], where: str, owner: Node, edges: Edges
    ) -> TimeNode | None:
        schedule = opened = closed = None
        if "hours" in fields:
            schedule = self.schedule(fields["hours"].value, f"{where}.hours")
        opened = self.silent_target(fields, "open", where, edges)
        closed = self.silent_target(fields, "closed", where, edges)
        if schedule is None or opened is None or closed is None:
            return None
        return TimeNode(name, schedule, opened, closed)

    def schedule(self, node: Node, where: str) -> Schedule | None:
        """``hours.parse_schedule`` on the plain data; its problems placed at their YAML node."""
        if not self.no_duplicate_keys(node, where):
            return None
        try:
            data = SafeConstructor().construct_object(node, deep=True)
        except ConstructorError as error:
            mark = error.problem_mark or node.start_mark
            self.problems.append(
                FlowProblem(self.source, mark.line + 1, mark.column + 1, f"{where}: {error}")
            )
            return None
        try:
            return parse_schedule(data, where)
        except ScheduleError as error:
            for problem in error.problems:
                self.problem(node_at(node, problem.steps), str(problem))
            return None

    def no_duplicate_keys(self, node: Node, where: str) -> bool:
        """YAML keeps only the last of two equal keys: report them instead, anywhere inside."""
        clean = True
        if isinstance(node, MappingNode):
            seen: dict[str, Node] = {}
            for key, value in node.value:
                text = key.value if isinstance(key, ScalarNode) else None
                if text is not None and text in seen:
                    first = seen[text].start_mark
                    self.problem(
                        key,
                        f"{where}: duplicate key {text!r} "
                        f"(first at line {first.line + 1}, column {first.column + 1})",
                    )
                    clean = False
                elif text is not None:
                    seen[text] = key
                clean = self.no_duplicate_keys(value, f"{where}.{text}") and clean
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                clean = self.no_duplicate_keys(item, f"{where}[{index}]") and clean
        return clean

    # -- variables and expressions

    def variable_name(self, node: Node, where: str) -> str | None:
        name = self.name(node, where, VARIABLE_NAME_RE, "variable name (letters, digits, _ and .)")
        if name is None:
            return None
        if name.split(".")[0] in KEYWORDS:
            self.problem(node, f"{where}: {name!r} is a reserved word, not a variable name")
            return None
        if name in BUILTIN_VARIABLES:
            self.problem(node, f"{where}: {name!r} is set by the call itself; use another name")
            return None
        self._assigned.add(name)
        return name

    def expression(self, node: Node, where: str) -> Expression | None:
        expression_tags = (STR_TAG, INT_TAG, FLOAT_TAG, BOOL_TAG)
        if not isinstance(node, ScalarNode) or node.tag not in expression_tags:
            self.problem(node, f"{where}: expected an expression, got {describe(node)}")
            return None
        try:
            parsed = parse_expression(str(node.value))
        except ExpressionError as error:
            self.problem_in(node, error.column, f"{where}: {error.message}")
            return None
        self._readings.append(_Reading(parsed, node, where))
        return parsed

    def problem_in(self, node: ScalarNode, column: int, message: str) -> None:
        """A problem at ``column`` (1-based) of a scalar's text, exact when the file shows the
        text as it is (plain, or quoted without escapes, on one line); else at its start."""
        start, end = node.start_mark, node.end_mark
        width = end.index - start.index
        offset = None
        if start.line == end.line:
            if node.style is None and width == len(node.value):
                offset = 0
            elif node.style in ("'", '"') and width == len(node.value) + 2:
                offset = 1
        if offset is None:
            self.problem(node, message)
            return
        place = start.column + 1 + offset + column - 1
        self.problems.append(FlowProblem(self.source, start.line + 1, place, message))

    def check_variables_read(self) -> None:
        known = BUILTIN_VARIABLES | self._assigned
        for reading in self._readings:
            for name in sorted(reading.expression.variables - known):
                self.problem_in(
                    reading.node,
                    _name_column(reading.expression.text, name),
                    f"{reading.where}: variable {name!r} is never set in this flow "
                    "(set it in a set or collect node)",
                )

    def options(self, node: Node, where: str, edges: Edges) -> dict[str, Target] | None:
        entries = self.mapping(node, f"{where}.options")
        if entries is None:
            return None
        if not entries:
            self.problem(node, f"{where}.options: a menu needs at least one option")
            return None
        options: dict[str, Target] = {}
        self._option_keys[where] = {digit: entry.key for digit, entry in entries.items()}
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

    def silent_target(self, fields: dict[str, _Entry], key: str, where: str, edges: Edges,
                      ) -> Target | None:
        """The optional target under ``key`` (a silent edge: reached without a key press)."""
        if key not in fields:
            return None
        return self.target(fields[key].value, f"{where}.{key}", edges.silent)

    def target(self, node: Node, where: str, leads_to: list[str]) -> Target | None:
        if not isinstance(node, MappingNode):
            self.problem(node, f"{where}: expected a target, got {describe(node)}; {_TARGET_HINT}")
            return None
        fields = self.mapping(node, where)
        if fields is None:
            return None
        allowed = {kind: False for kind in _TARGET_KINDS} | {
            "prompt": False, "survey": False, "priority": False, "skills": False}
        self.keys(fields, allowed, where, node)
        kinds = [k for k in _TARGET_KINDS if k in fields]
        if len(kinds) != 1:
            found = "none" if not kinds else " and ".join(kinds)
            self.problem(
                node, f"{where}: needs exactly one of {', '.join(_TARGET_KINDS)} (found {found})"
            )
            return None
        kind = kinds[0]
        if "prompt" in fields and kind != "hangup":
            self.problem(fields["prompt"].key, f"{where}: prompt is only allowed with hangup")
        survey = None
        if "survey" in fields:
            if kind not in ("queue", "agent"):
                self.problem(fields["survey"].key, f"{where}: survey is only allowed with a "
                             "queue or an agent (it starts when the agent hangs up)")
            survey = self.known_name(fields["survey"].value, f"{where}.survey", FLOW_NAME_RE,
                                     "flow name", self.known_flows)
            if survey is None:
                return None
        for key in ("priority", "skills"):
            if key in fields and kind != "queue":
                self.problem(fields[key].key, f"{where}: {key} is only allowed with a queue")
        value = fields[kind].value
        at = f"{where}.{kind}"
        match kind:
            case "queue":
                queue = self.queue_name(value, at)
                priority = (self.number(fields["priority"].value, f"{where}.priority",
                                        (MIN_PRIORITY, MAX_PRIORITY), True, "")
                            if "priority" in fields else 0)
                skills = (self.skill_levels(fields["skills"].value, f"{where}.skills")
                          if "skills" in fields else {})
                if queue is None or priority is None or skills is None:
                    return None
                return QueueTarget(queue, survey, int(priority), skills)
            case "node":
                target = self.text(value, at)
                if target is None:
                    return None
                leads_to.append(target)
                if target not in self._node_names:
                    self.problem(value, f"{at}: unknown node {target!r}")
                    return None
                return NodeTarget(target)
            case "hangup":
                return self.hangup_target(value, fields, where)
            case "agent":
                agent = self.known_name(value, at, AGENT_ID_RE, "agent id", self.known_agents)
                return None if agent is None else AgentTarget(agent, survey)
            case "flow":
                flow = self.known_name(value, at, FLOW_NAME_RE, "flow name", self.known_flows)
                return None if flow is None else FlowTarget(flow)
            case "extension":
                extension = self.name(value, at, EXTENSION_RE, "extension (1-20 digits 0-9)")
                return None if extension is None else TransferTarget("extension", extension)
            case _:
                number = self.name(
                    value, at, E164_RE, "E.164 number (+, then 8-15 digits, e.g. +5511987654321)"
                )
                return None if number is None else TransferTarget("external", number)

    def skill_levels(self, node: Node, where: str) -> dict[str, int] | None:
        """``{billing: 7, spanish: 3}``: skill names and the level (1-10) an agent needs."""
        entries = self.mapping(node, where)
        if entries is None:
            return None
        levels: dict[str, int] = {}
        for name, entry in entries.items():
            if not SKILL_RE.fullmatch(name):
                self.problem(entry.key, f"{where}: {name!r} is not a skill name (a-z, 0-9, _ "
                             "and -, up to 40)")
                continue
            level = self.number(entry.value, f"{where}.{name}", (1, 10), True, "level")
            if level is not None:
                levels[name] = int(level)
        return levels if len(levels) == len(entries) else None

    def queue_name(self, node: Node, where: str) -> str | None:
        queue = self.text(node, where)
        if queue is not None and queue not in self.known_queues:
            known = ", ".join(sorted(self.known_queues)) or "none configured"
            self.problem(node, f"{where}: unknown queue {queue!r} (known: {known})")
            return None
        return queue

    def known_name(
        self,
        node: Node,
        where: str,
        pattern: re.Pattern[str],
        what: str,
        known: frozenset[str] | None,
    ) -> str | None:
        value = self.name(node, where, pattern, what)
        if value is not None and known is not None and value not in known:
            listed = ", ".join(sorted(known)) or "none configured"
            self.problem(node, f"{where}: unknown {what} {value!r} (known: {listed})")
            return None
        return value

    def hangup_target(self, value: Node, fields: dict[str, _Entry], where: str) -> Target | None:
        if not (
            isinstance(value, ScalarNode)
            and value.tag == BOOL_TAG
            and SCALARS.construct_yaml_bool(value)
        ):
            self.problem(value, f"{where}.hangup: must be true, got {describe(value)}")
            return None
        prompt = None
        if "prompt" in fields:
            prompt = self.prompt(fields["prompt"].value, f"{where}.prompt")
            if prompt is None:
                return None
        return HangupTarget(prompt)


@dataclass(frozen=True)
class _NodeType:
    """How a node of one type is read: the keys it takes (key -> required), checked first,
    then its reader on the fields."""

    keys: Mapping[str, bool]
    read: Callable[[_FlowChecker, str, dict[str, _Entry], str, Node, Edges], FlowNode | None]
    # It waits for a key press: a loop through it is one a caller can leave by pressing.
    waits_for_caller: bool = False


# Every node type, in the order the error messages list them. A new type is a class in
# model.py, a reader method above and one line here.
_NODE_TYPES: dict[str, _NodeType] = {
    "play": _NodeType(_PLAY_KEYS, _FlowChecker.play_node),
    "menu": _NodeType(_MENU_KEYS, _FlowChecker.menu_node, waits_for_caller=True),
    "collect": _NodeType(_COLLECT_KEYS, _FlowChecker.collect_node, waits_for_caller=True),
    "say": _NodeType(_SAY_KEYS, _FlowChecker.say_node),
    "set": _NodeType(_SET_KEYS, _FlowChecker.set_node),
    "condition": _NodeType(_CONDITION_KEYS, _FlowChecker.condition_node),
    "time": _NodeType(_TIME_KEYS, _FlowChecker.time_node),
    "goto": _NodeType(_GOTO_KEYS, _FlowChecker.goto_node),
    "fetch": _NodeType(_FETCH_KEYS, _FlowChecker.fetch_node),
    "language": _NodeType(_LANGUAGE_KEYS, _FlowChecker.language_node, waits_for_caller=True),
    "faq": _NodeType(_FAQ_KEYS, _FlowChecker.faq_node, waits_for_caller=True),
    "question": _NodeType(_QUESTION_KEYS, _FlowChecker.question_node, waits_for_caller=True),
    "callback": _NodeType(_CALLBACK_KEYS, _FlowChecker.callback_node, waits_for_caller=True),
}
NODE_TYPES = tuple(_NODE_TYPES)


@dataclass(frozen=True)
class _RetrySettings:
    timeout: float
    retries: int
    invalid_prompt: str | None
    timeout_prompt: str | None

    def fields(self) -> dict[str, float | int | str | None]:
        return {"timeout": self.timeout, "retries": self.retries,
                "invalid_prompt": self.invalid_prompt, "timeout_prompt": self.timeout_prompt}


def _url_problem(url: str) -> str | None:
    """Why a data dip may not call ``url``, or None when it may."""
    if len(url) > MAX_URL_LENGTH:
        return f"the URL is longer than {MAX_URL_LENGTH} characters"
    if any(c.isspace() or not c.isprintable() for c in url):
        return "the URL must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it validates the port
    except ValueError as error:
        return f"not a valid URL ({error})"
    if parts.scheme.lower() not in FETCH_SCHEMES:
        return f"the URL must start with http:// or https://, got {url!r}"
    if parts.username is not None or parts.password is not None:
        return "the URL must not contain a user name or password"
    if not parts.hostname:
        return f"the URL has no host: {url!r}"
    if parts.fragment or url.endswith("#"):
        return "the URL must not contain a fragment (#...)"
    return None


def _name_column(text: str, name: str) -> int:
    """1-based column where an expression first reads ``name`` (outside quoted text)."""
    reads = re.compile(
        r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|(?<![\w.])" + re.escape(name) + r"(?![\w.])"
    )
    for found in reads.finditer(text):
        if found.group()[0] not in "'\"":
            return found.start() + 1
    return 1
