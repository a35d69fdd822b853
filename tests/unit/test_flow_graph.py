"""The graph of a flow: nodes never reached from start, and loops a caller who presses
nothing can never leave."""

from __future__ import annotations

from itertools import pairwise

from yaml.nodes import ScalarNode

from callcenter.core.flows.graph import (
    Edges,
    check_graph,
    menu_depths,
    silent_loops,
    strongly_connected,
)
from callcenter.core.flows.model import NodeTarget
from tests.support.flow_text import FETCH, parse, problems


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


def test_conditions_looping_without_input_are_rejected() -> None:
    found = problems(
        """
        name: main
        start: a
        nodes:
          a: {type: set, variables: {n: "0"}, next: {node: b}}
          b: {type: set, variables: {n: "n + 1"}, next: {node: c}}
          c: {type: condition, if: "n < 3", then: {node: b}, else: {node: d}}
          d: {type: goto, next: {node: d}}
        """
    )
    assert found == [
        "test.yaml:5:3: nodes.b: nodes loop without ever waiting for the caller (b -> c -> b)",
        "test.yaml:7:3: nodes.d: nodes loop without ever waiting for the caller (d -> d)",
    ]


def test_a_loop_through_a_collect_entry_is_fine_but_not_through_its_exhaustion() -> None:
    parse(
        """
        name: main
        start: ask
        nodes:
          ask:
            type: collect
            prompt: main-menu
            variable: n
            max_digits: 4
            next: {node: check}
            on_exhausted: {queue: operator}
          check: {type: condition, if: "n == '1234'", then: {queue: sales}, else: {node: ask}}
        """
    )


def test_a_fetch_whose_failure_leads_back_to_itself_is_a_silent_loop() -> None:
    text = FETCH.replace("on_failure: {queue: operator}", "on_failure: {node: lookup}")
    (found,) = problems(text)
    assert "nodes loop without ever waiting for the caller (lookup -> lookup)" in found


# --------------------------------------------------------------------------- the graph alone


def graph(kinds: dict[str, str], silent: dict[str, list[str]],
          on_input: dict[str, list[str]] | None = None) -> dict[str, Edges]:
    """Edges by node name, in the given order (file order)."""
    on_input = on_input or {}
    return {
        name: Edges(ScalarNode("tag:yaml.org,2002:str", name), kind, silent.get(name, []),
                    on_input.get(name, []))
        for name, kind in kinds.items()
    }


def test_a_silent_loop_is_shown_as_a_shortest_circle_from_its_first_node_in_file_order() -> None:
    edges = graph(
        {"a": "goto", "b": "condition", "c": "goto", "d": "goto"},
        {"a": ["b"], "b": ["c", "d"], "c": ["a"], "d": ["b"]},
    )
    assert silent_loops(edges) == [["a", "b", "c"]]


def test_edges_a_caller_must_press_a_key_for_make_no_silent_loop() -> None:
    edges = graph({"menu": "menu", "play": "play"}, {"play": ["menu"]}, {"menu": ["play"]})
    assert silent_loops(edges) == []
    reported: list[str] = []
    check_graph("menu", edges, lambda at, message: reported.append(message))
    assert reported == []


def test_a_long_chain_of_nodes_does_not_exhaust_the_stack() -> None:
    names = [f"n{i}" for i in range(5000)]
    silent = {a: [b] for a, b in pairwise(names)} | {names[-1]: [names[0]]}
    edges = graph(dict.fromkeys(names, "goto"), silent)
    (loop,) = silent_loops(edges)
    assert loop == names
    assert len(strongly_connected(names, lambda name: edges[name].silent)) == 1


def test_menu_depth_is_the_fewest_menus_on_a_way_there_itself_included() -> None:
    edges = graph(
        {"start": "play", "m1": "menu", "m2": "menu", "m3": "menu", "end": "play"},
        {"start": ["m1"]},
        {"m1": ["m2", "end"], "m2": ["m3"], "m3": ["end"]},
    )
    assert menu_depths("start", edges) == {"start": 0, "m1": 1, "m2": 2, "m3": 3, "end": 1}
