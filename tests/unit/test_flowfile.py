"""Flow files: the demo validates, and every mistake is reported where it is."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.core.flowfile import (
    Flow,
    FlowError,
    FlowProblem,
    HangupTarget,
    MenuNode,
    NodeTarget,
    PlayNode,
    QueueTarget,
    parse_flow,
)

DEMO = Path(__file__).resolve().parents[2] / "dialplans" / "main.yaml"
QUEUES = {"sales", "support", "operator"}
PROMPTS = {"welcome", "main-menu", "invalid", "no-input", "goodbye"}


def parse(text: str, *, queues: set[str] = QUEUES, prompts: set[str] = PROMPTS) -> Flow:
    return parse_flow(
        textwrap.dedent(text).lstrip("\n"),  # line 1 is the first line of the text
        "test.yaml",
        known_queues=queues,
        prompt_exists=prompts.__contains__,
    )


def problems(text: str, **kwargs: set[str]) -> list[str]:
    with pytest.raises(FlowError) as caught:
        parse(text, **kwargs)
    return [str(p) for p in caught.value.problems]


def test_the_demo_flow_validates_with_the_demo_queues_and_prompts() -> None:
    flow = parse_flow(
        DEMO.read_text(encoding="utf-8"),
        str(DEMO),
        known_queues=QUEUES,
        prompt_exists=PROMPTS.__contains__,
    )
    assert flow.name == "main"
    assert flow.start == "welcome"
    assert flow.nodes["welcome"] == PlayNode("welcome", "welcome", NodeTarget("main_menu"))
    menu = flow.nodes["main_menu"]
    assert isinstance(menu, MenuNode)
    assert (menu.prompt, menu.timeout, menu.retries) == ("main-menu", 5.0, 3)
    assert (menu.invalid_prompt, menu.timeout_prompt) == ("invalid", "no-input")
    assert dict(menu.options) == {
        "1": QueueTarget("sales"),
        "2": QueueTarget("support"),
        "0": QueueTarget("operator"),
        "9": HangupTarget("goodbye"),
    }
    assert menu.on_exhausted == QueueTarget("operator")
    assert flow.prompts() == PROMPTS


def test_the_demo_flow_names_the_prompt_and_queue_it_misses() -> None:
    with pytest.raises(FlowError) as caught:
        parse_flow(
            DEMO.read_text(encoding="utf-8"),
            "main.yaml",
            known_queues={"sales", "support"},
            prompt_exists=lambda name: name != "goodbye",
        )
    messages = [p.message for p in caught.value.problems]
    assert "nodes.main_menu.options.0.queue: unknown queue 'operator' (known: sales, support)" in (
        messages
    )
    assert "nodes.main_menu.prompt: prompt 'goodbye' not found" not in messages
    assert "nodes.main_menu.options.9.prompt: prompt 'goodbye' not found" in messages


def test_the_flow_is_frozen() -> None:
    flow = parse(
        """
        name: tiny
        start: bye
        nodes:
          bye: {type: play, prompt: goodbye, next: {hangup: true}}
        """
    )
    with pytest.raises(AttributeError):
        flow.start = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        flow.nodes["x"] = flow.nodes["bye"]  # type: ignore[index]


def test_menu_timeout_and_retries_have_defaults_and_digits_may_be_unquoted() -> None:
    flow = parse(
        """
        name: tiny
        start: m
        nodes:
          m:
            type: menu
            prompt: main-menu
            options:
              1: {queue: sales}
              "*": {node: m}
              "#": {hangup: true}
            on_exhausted: {hangup: true, prompt: goodbye}
        """
    )
    menu = flow.nodes["m"]
    assert isinstance(menu, MenuNode)
    assert (menu.timeout, menu.retries, menu.invalid_prompt) == (5.0, 3, None)
    assert set(menu.options) == {"1", "*", "#"}


def test_every_problem_is_reported_at_once_with_its_line_and_column() -> None:
    found = problems(
        """
        name: main
        start: welcome
        colour: blue
        nodes:
          welcome:
            type: play
            prompt: hello
            next: {node: main_menu}
          main_menu:
            type: menu
            prompt: main-menu
            timeout: 0
            retries: 11
            options:
              "1": {queue: sales}
              "12": {queue: support}
              "2": {queue: billing}
              "3": {node: nowhere}
            on_exhausted: {queue: operator}
        """
    )
    assert found == [
        "test.yaml:3:1: flow: unknown key 'colour' (known: name, start, nodes)",
        "test.yaml:7:13: nodes.welcome.prompt: prompt 'hello' not found",
        "test.yaml:12:14: nodes.main_menu.timeout: 0 is out of range (1-60 seconds)",
        "test.yaml:13:14: nodes.main_menu.retries: 11 is out of range (1-10 tries)",
        "test.yaml:16:7: nodes.main_menu.options: '12' is not a single DTMF digit "
        "(0-9, *, #; quote * and #)",
        "test.yaml:17:20: nodes.main_menu.options.2.queue: unknown queue 'billing' "
        "(known: operator, sales, support)",
        "test.yaml:18:19: nodes.main_menu.options.3.node: unknown node 'nowhere'",
    ]


def test_the_error_text_lists_every_problem_as_source_line_column_message() -> None:
    with pytest.raises(FlowError) as caught:
        parse("name: x\nstart: a\nnodes: {}\n")
    error = caught.value
    assert error.problems == [  # in file order
        FlowProblem("test.yaml", 2, 8, "start: unknown node 'a'"),
        FlowProblem("test.yaml", 3, 8, "nodes: a flow needs at least one node"),
    ]
    assert str(error) == (
        "test.yaml:2:8: start: unknown node 'a'\n"
        "test.yaml:3:8: nodes: a flow needs at least one node"
    )


def test_missing_required_keys_are_reported_at_the_owner() -> None:
    found = problems(
        """
        name: main
        nodes:
          welcome:
            type: play
            prompt: welcome
          m:
            type: menu
            options: {"1": {queue: sales}}
        """
    )
    assert found == [
        "test.yaml:1:1: flow: missing required key 'start'",
        "test.yaml:3:3: nodes.welcome: missing required key 'next'",
        "test.yaml:6:3: nodes.m: missing required key 'prompt'",
        "test.yaml:6:3: nodes.m: missing required key 'on_exhausted'",
    ]


def test_wrong_types_say_what_was_expected_and_what_was_found() -> None:
    found = problems(
        """
        name: main
        start: a
        nodes:
          a:
            type: menu
            prompt: [main-menu]
            timeout: soon
            retries: 2.5
            options: {"1": sales}
            on_exhausted: {hangup: yes please}
          b: nonsense
          c: {type: dial}
        """
    )
    assert found == [
        "test.yaml:6:13: nodes.a.prompt: expected text, got a list",
        "test.yaml:7:14: nodes.a.timeout: expected a number, got text 'soon'",
        "test.yaml:8:14: nodes.a.retries: expected a whole number, got the number 2.5",
        "test.yaml:9:20: nodes.a.options.1: expected a target, got text 'sales'; "
        "a target is {queue: NAME}, {node: NAME} or {hangup: true} (with optional prompt)",
        "test.yaml:10:28: nodes.a.on_exhausted.hangup: must be true, got text 'yes please'",
        "test.yaml:11:6: nodes.b: expected a mapping, got text 'nonsense'",
        "test.yaml:12:13: nodes.c.type: unknown node type 'dial' (play, menu)",
    ]


def test_words_yaml_reads_as_numbers_or_booleans_must_be_quoted() -> None:
    found = problems(
        """
        name: main
        start: a
        nodes:
          a: {type: play, prompt: no, next: {hangup: true}}
          100: {type: play, prompt: "", next: {hangup: true}}
        """
    )
    assert found == [
        "test.yaml:4:27: nodes.a.prompt: expected text, got no; quote it if you mean text",
        "test.yaml:5:3: nodes: expected text, got the number 100; quote it if you mean text",
    ]


def test_a_target_needs_exactly_one_destination_and_prompt_only_with_hangup() -> None:
    found = problems(
        """
        name: main
        start: a
        nodes:
          a:
            type: menu
            prompt: main-menu
            options:
              "1": {queue: sales, node: a}
              "2": {}
              "3": {queue: sales, prompt: goodbye}
              "4": {hangup: false}
              "5": {hangup: true, prompt: missing}
            on_exhausted: {queue: operator, when: later}
        """
    )
    assert found == [
        "test.yaml:8:12: nodes.a.options.1: needs exactly one of queue, node, hangup "
        "(found queue and node)",
        "test.yaml:9:12: nodes.a.options.2: needs exactly one of queue, node, hangup (found none)",
        "test.yaml:10:27: nodes.a.options.3: prompt is only allowed with hangup",
        "test.yaml:11:21: nodes.a.options.4.hangup: must be true, got false",
        "test.yaml:12:35: nodes.a.options.5.prompt: prompt 'missing' not found",
        "test.yaml:13:37: nodes.a.on_exhausted: unknown key 'when' "
        "(known: queue, node, hangup, prompt)",
    ]


def test_duplicate_keys_are_caught_where_yaml_would_keep_only_the_last() -> None:
    found = problems(
        """
        name: main
        start: m
        nodes:
          m:
            type: menu
            prompt: main-menu
            options:
              "1": {queue: sales}
              1: {queue: support}
            on_exhausted: {queue: operator}
            on_exhausted: {hangup: true}
          m: {type: play, prompt: welcome, next: {hangup: true}}
        """
    )
    assert found == [
        "test.yaml:9:7: nodes.m.options: duplicate key '1' (first at line 8, column 7)",
        "test.yaml:11:5: nodes.m: duplicate key 'on_exhausted' (first at line 10, column 5)",
        "test.yaml:12:3: nodes: duplicate key 'm' (first at line 4, column 3)",
    ]


def test_nodes_never_reached_from_start_are_reported() -> None:
    found = problems(
        """
        name: main
        start: a
        nodes:
          a: {type: play, prompt: welcome, next: {queue: sales}}
          orphan: {type: play, prompt: welcome, next: {node: a}}
        """
    )
    assert found == ["test.yaml:5:3: nodes.orphan: never reached from start 'a'"]


def test_a_loop_of_play_nodes_is_a_loop_with_no_input() -> None:
    found = problems(
        """
        name: main
        start: a
        nodes:
          a: {type: play, prompt: welcome, next: {node: b}}
          b: {type: play, prompt: welcome, next: {node: c}}
          c: {type: play, prompt: welcome, next: {node: b}}
        """
    )
    assert found == [
        "test.yaml:5:3: nodes.b: play nodes loop with no menu (b -> c -> b): "
        "the caller can never leave"
    ]


def test_menus_whose_exhaustion_leads_round_in_a_circle_are_rejected() -> None:
    found = problems(
        """
        name: main
        start: a
        nodes:
          a:
            type: menu
            prompt: main-menu
            options: {"1": {queue: sales}}
            on_exhausted: {node: b}
          b: {type: play, prompt: invalid, next: {node: a}}
        """
    )
    assert found == [
        "test.yaml:4:3: nodes.a: a caller who presses nothing loops forever (a -> b -> a); "
        "next/on_exhausted must end at a queue or a hangup"
    ]


def test_an_option_leading_back_to_its_own_menu_is_fine() -> None:
    flow = parse(
        """
        name: main
        start: a
        nodes:
          a:
            type: menu
            prompt: main-menu
            options: {"1": {queue: sales}, "9": {node: a}}
            on_exhausted: {queue: operator}
        """
    )
    assert flow.nodes["a"].options["9"] == NodeTarget("a")  # type: ignore[union-attr]


def test_prompt_names_that_could_escape_the_prompt_folder_are_refused_unchecked() -> None:
    asked: list[str] = []

    def prompt_exists(name: str) -> bool:
        asked.append(name)
        return True

    with pytest.raises(FlowError) as caught:
        parse_flow(
            "name: x\nstart: a\nnodes:\n  a: {type: play, prompt: ../../etc/passwd, "
            "next: {hangup: true}}\n",
            "x.yaml",
            known_queues=(),
            prompt_exists=prompt_exists,
        )
    assert str(caught.value) == (
        "x.yaml:4:27: nodes.a.prompt: '../../etc/passwd' is not a valid prompt name "
        "(letters, digits, - and _)"
    )
    assert asked == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: x\nstart: [a\n",
            "x.yaml:3:1: not valid YAML: while parsing a flow sequence, "
            "expected ',' or ']', but got '<stream end>'",
        ),
        (
            "name: x\n  start: a: b\n",
            "x.yaml:2:8: not valid YAML: mapping values are not allowed here",
        ),
        (
            "name: x\nstart: *nowhere\n",
            "x.yaml:2:8: not valid YAML: found undefined alias 'nowhere'",
        ),
        (
            "name: x\n---\nname: y\n",
            "x.yaml:2:1: not valid YAML: expected a single document "
            "in the stream, but found another document",
        ),
        ("name: x\nstart: \x07\n", "x.yaml:2:8: not valid YAML: character U+0007 is not allowed"),
        ("", "x.yaml:1:1: the flow file is empty"),
        ("- a\n- b\n", "x.yaml:1:1: flow: expected a mapping, got a list"),
    ],
)
def test_broken_yaml_is_a_flow_error_with_the_position_yaml_gives(text: str, expected: str) -> None:
    with pytest.raises(FlowError) as caught:
        parse_flow(text, "x.yaml", known_queues=(), prompt_exists=lambda _: True)
    assert str(caught.value) == expected


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_damaged_demo_file_gives_a_flow_or_a_flow_error_never_a_crash(
    data: st.DataObject,
) -> None:
    text = DEMO.read_text(encoding="utf-8")
    for _ in range(data.draw(st.integers(1, 4), label="damages")):
        start = data.draw(st.integers(0, len(text)), label="where")
        end = data.draw(st.integers(start, min(len(text), start + 8)), label="until")
        text = text[:start] + data.draw(st.text(max_size=6), label="with") + text[end:]
    try:
        flow = parse_flow(text, "x.yaml", known_queues=QUEUES, prompt_exists=PROMPTS.__contains__)
    except FlowError as error:
        assert error.problems
        assert all(p.line >= 1 and p.column >= 1 for p in error.problems)
    else:
        assert flow.start in flow.nodes


def test_deeply_nested_yaml_is_a_flow_error() -> None:
    with pytest.raises(FlowError, match="nested too deeply"):
        parse_flow("a: " + "[" * 5000, "x.yaml", known_queues=(), prompt_exists=bool)
