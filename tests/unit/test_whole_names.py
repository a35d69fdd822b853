"""Names are checked against the WHOLE text: "sales\\n" is not the queue "sales".

``re.match`` with a ``$`` pattern accepts a trailing newline (``$`` matches before one), so a
name checked that way could carry a line break into a file path, a dialplan or an AMI line.
Every check uses ``fullmatch``; the first test keeps it that way for the whole code base.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from callcenter.core.flows import FlowError, parse_flow
from callcenter.core.hours import OpeningHours
from callcenter.features.ivr.prompts import PromptError, load_prompt_texts

SOURCE = Path(__file__).resolve().parents[2] / "callcenter"


def test_no_name_is_checked_with_match_only_against_its_start() -> None:
    """``.match(text)`` is only for scanners that pass a position (``.match(text, at)``), or
    for a pattern that ends in ``\\Z`` (the true end, not "before a final newline")."""
    offenders = []
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        to_the_end = _patterns_anchored_at_the_very_end(tree)
        offenders += [f"{path.relative_to(SOURCE.parent)}:{node.lineno}"
                      for node in ast.walk(tree) if _matches_only_the_start(node, to_the_end)]
    assert offenders == [], "use fullmatch(): match() lets a trailing newline through"


def _patterns_anchored_at_the_very_end(tree: ast.Module) -> set[str]:
    """Module constants like ``NAME = re.compile(r"...\\Z")``."""
    return {
        target.id
        for statement in tree.body if isinstance(statement, ast.Assign)
        for target in statement.targets if isinstance(target, ast.Name)
        if isinstance(statement.value, ast.Call) and statement.value.args
        and isinstance(pattern := statement.value.args[0], ast.Constant)
        and isinstance(pattern.value, str) and pattern.value.endswith("\\Z")
    }


def _matches_only_the_start(node: ast.AST, to_the_end: set[str]) -> bool:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "match"):
        return False
    owner = node.func.value
    if isinstance(owner, ast.Name) and owner.id in ("re", "re2"):
        return True  # re.match(pattern, text)
    if isinstance(owner, ast.Name) and owner.id in to_the_end:
        return False
    return len(node.args) + len(node.keywords) < 2  # pattern.match(text): no position


QUEUES = {"sales", "support"}
FLOW = """\
name: {name}
languages: [{language}]
start: {node}
nodes:
  {node}:
    type: play
    prompt: {prompt}
    next: {target}
  ask:
    type: faq
    topic: {topic}
    answer: hello
    solved: {{hangup: true}}
    not_solved: {{queue: sales}}
"""
GOOD = {"name": "main", "language": "en", "node": "hello", "prompt": "hello",
        "target": "{node: ask}", "topic": "billing"}


def flow_problems(**changes: str) -> list[str]:
    text = FLOW.format(**{**GOOD, **changes})
    try:
        parse_flow(text, "test.yaml", known_queues=QUEUES, known_agents={"ana"},
                   known_flows={"main", "other"}, prompt_exists=lambda name, language: True)
    except FlowError as error:
        return [str(problem) for problem in error.problems]
    return []


def test_the_flow_used_below_is_valid() -> None:
    assert flow_problems() == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", r'"main\n"', "name: 'main\\n' is not a valid flow name"),
        ("language", r'"en\n"', "'en\\n' is not a valid language code"),
        ("prompt", r'"hello\n"', "'hello\\n' is not a valid prompt name"),
        ("topic", r'"billing\n"', "'billing\\n' is not a valid topic"),
        ("target", r'{agent: "ana\n"}', "'ana\\n' is not a valid agent id"),
        ("target", r'{flow: "other\n"}', "'other\\n' is not a valid flow name"),
        ("target", r'{extension: "100\n"}', "'100\\n' is not a valid extension"),
        ("target", r'{external: "+5511987654321\n"}', "is not a valid E.164 number"),
    ],
)
def test_a_flow_name_with_a_trailing_newline_is_refused(
    field: str, value: str, message: str
) -> None:
    found = flow_problems(**{field: value})
    assert any(message in problem for problem in found), found


def test_a_node_name_with_a_trailing_newline_is_refused() -> None:
    text = FLOW.format(**GOOD).replace("start: hello", 'start: "hello\\n"').replace(
        "  hello:", '  "hello\\n":')
    with pytest.raises(FlowError) as caught:
        parse_flow(text, "test.yaml", known_queues=QUEUES,
                   prompt_exists=lambda name, language: True)
    assert "'hello\\n' is not a valid node name" in str(caught.value)


def test_a_prompt_language_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    (tmp_path / "prompts.toml").write_text('hello = "Hello"\n', encoding="utf-8")
    assert load_prompt_texts(tmp_path, "en") == {"hello": "Hello"}
    with pytest.raises(PromptError, match="is not a language code"):
        load_prompt_texts(tmp_path, "en\n")


def test_a_prompt_name_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    (tmp_path / "prompts.toml").write_text('"hello\\n" = "Hello"\n', encoding="utf-8")
    with pytest.raises(PromptError, match="a prompt name is lowercase"):
        load_prompt_texts(tmp_path, "en")


def test_opening_hours_are_read_whole() -> None:
    assert str(OpeningHours.parse("08:00-18:00")) == "08:00-18:00"
    with pytest.raises(ValueError, match="expected opening hours"):
        OpeningHours.parse("08:00-18:00\nx")


def test_settings_names_with_a_trailing_newline_are_refused(tmp_path: Path) -> None:
    from callcenter.config import ConfigError, load_settings

    settings = tmp_path / "settings.toml"
    settings.write_text(textwrap.dedent("""\
        [ivr]
        flow = "main\\n"
        """), encoding="utf-8")
    with pytest.raises(ConfigError, match="flow"):
        load_settings(settings)


@pytest.mark.parametrize(
    ("check", "good"),
    [
        ("username", "ana.souza"),
        ("agent_id", "ana"),
    ],
)
def test_account_names_with_a_trailing_newline_are_refused(check: str, good: str) -> None:
    from callcenter.features.accounts import store as accounts

    validate = getattr(accounts, f"check_{check}")
    assert validate(good) == good
    with pytest.raises(ValueError, match=check):
        validate(good + "\n")


def test_web_names_with_a_trailing_newline_are_refused() -> None:
    from callcenter.web.params import PROTOCOL, QUEUE_NAME

    assert QUEUE_NAME.fullmatch("sales") and not QUEUE_NAME.fullmatch("sales\n")
    assert PROTOCOL.fullmatch("2026") and not PROTOCOL.fullmatch("2026\n")
