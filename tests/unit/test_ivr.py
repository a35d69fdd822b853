"""The IVR session: what a caller hears and where they end up, driven with plain events."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.core.flowfile import DTMF_DIGITS, Flow, MenuNode, parse_flow
from callcenter.core.ivr import (
    DigitReceived,
    Hangup,
    InputTimedOut,
    IvrAction,
    IvrEvent,
    IvrProtocolError,
    IvrSession,
    PlayPrompt,
    PromptFinished,
    RouteToQueue,
    WaitForDigit,
)

DEMO = Path(__file__).resolve().parents[2] / "dialplans" / "main.yaml"
T0 = 1_700_000_000.0


def demo_flow() -> Flow:
    return parse_flow(
        DEMO.read_text(encoding="utf-8"),
        "main.yaml",
        known_queues={"sales", "support", "operator"},
        prompt_exists=lambda name: True,
    )


def flow_from(text: str, queues: tuple[str, ...] = ("sales", "operator")) -> Flow:
    return parse_flow(
        textwrap.dedent(text), "test.yaml", known_queues=queues, prompt_exists=lambda name: True
    )


class Caller:
    """Drives a session and keeps the transcript of actions, with a clock moving 1 s a step."""

    def __init__(self, flow: Flow) -> None:
        self.now = T0
        self.session = IvrSession(flow, self.now)
        self.actions: list[IvrAction] = [self.session.start()]

    @property
    def last(self) -> IvrAction:
        return self.actions[-1]

    def send(self, event: IvrEvent) -> IvrAction:
        self.now += 1.0
        self.actions.append(self.session.handle(event, self.now))
        return self.last

    def stays_silent(self, max_steps: int = 100) -> IvrAction:
        """Let every prompt play to its end and every wait time out."""
        for _ in range(max_steps):
            match self.last:
                case PlayPrompt():
                    self.send(PromptFinished())
                case WaitForDigit():
                    self.send(InputTimedOut())
                case RouteToQueue() | Hangup():
                    return self.last
        raise AssertionError(f"no end after {max_steps} steps: {self.actions}")

    def path(self) -> list[tuple[str, str | None]]:
        return [(step.node, step.input) for step in self.session.path]


def test_a_caller_who_presses_nothing_hears_the_menu_three_times_then_reaches_the_operator() -> (
    None
):
    caller = Caller(demo_flow())
    assert caller.stays_silent() == RouteToQueue("operator")
    assert caller.actions == [
        PlayPrompt("welcome", interruptible=False),
        PlayPrompt("main-menu", interruptible=True),
        WaitForDigit(5.0),
        PlayPrompt("no-input", interruptible=False),
        PlayPrompt("main-menu", interruptible=True),
        WaitForDigit(5.0),
        PlayPrompt("no-input", interruptible=False),
        PlayPrompt("main-menu", interruptible=True),
        WaitForDigit(5.0),
        PlayPrompt("no-input", interruptible=False),
        RouteToQueue("operator"),
    ]
    assert caller.path() == [
        ("welcome", None),
        ("main_menu", "timeout"),
        ("main_menu", "timeout"),
        ("main_menu", "timeout"),
    ]
    assert caller.session.finished
    assert caller.session.final_action == RouteToQueue("operator")


def test_a_digit_pressed_during_the_menu_prompt_chooses_at_once() -> None:
    caller = Caller(demo_flow())
    caller.send(PromptFinished())
    assert caller.send(PromptFinished(digit="2")) == RouteToQueue("support")
    assert caller.path() == [("welcome", None), ("main_menu", "2")]


def test_a_digit_pressed_after_the_menu_prompt_chooses_too() -> None:
    caller = Caller(demo_flow())
    caller.send(PromptFinished())
    caller.send(PromptFinished())
    assert caller.send(DigitReceived("1")) == RouteToQueue("sales")


def test_digits_pressed_during_the_welcome_are_ignored() -> None:
    caller = Caller(demo_flow())
    assert caller.send(PromptFinished(digit="1")) == PlayPrompt("main-menu", interruptible=True)
    assert caller.path() == [("welcome", None), ("main_menu", None)]


def test_a_wrong_digit_plays_the_invalid_prompt_and_repeats_the_menu() -> None:
    caller = Caller(demo_flow())
    caller.send(PromptFinished())
    assert caller.send(PromptFinished(digit="7")) == PlayPrompt("invalid", interruptible=False)
    assert caller.send(PromptFinished()) == PlayPrompt("main-menu", interruptible=True)
    caller.send(PromptFinished())
    assert caller.send(DigitReceived("0")) == RouteToQueue("operator")
    assert caller.path() == [("welcome", None), ("main_menu", "invalid:7"), ("main_menu", "0")]


def test_wrong_digits_and_silence_all_count_as_tries() -> None:
    caller = Caller(demo_flow())
    caller.send(PromptFinished())
    caller.send(PromptFinished(digit="5"))  # invalid
    caller.send(PromptFinished())  # invalid prompt done: menu again
    caller.send(PromptFinished())
    caller.send(InputTimedOut())  # no input
    caller.send(PromptFinished())  # no-input prompt done: menu again
    caller.send(PromptFinished())
    assert caller.send(DigitReceived("*")) == PlayPrompt("invalid", interruptible=False)
    assert caller.send(PromptFinished()) == RouteToQueue("operator")
    assert caller.path() == [
        ("welcome", None),
        ("main_menu", "invalid:5"),
        ("main_menu", "timeout"),
        ("main_menu", "invalid:*"),
    ]


def test_pressing_nine_says_goodbye_then_hangs_up() -> None:
    caller = Caller(demo_flow())
    caller.send(PromptFinished())
    assert caller.send(PromptFinished(digit="9")) == PlayPrompt("goodbye", interruptible=False)
    assert not caller.session.finished
    assert caller.send(PromptFinished(digit="1")) == Hangup("main_menu: option 9")
    assert caller.session.finished


def test_each_step_of_the_path_is_stamped_with_the_time_the_node_was_entered() -> None:
    caller = Caller(demo_flow())
    caller.send(PromptFinished())  # T0+1: the menu
    caller.send(PromptFinished())  # T0+2: wait
    caller.send(InputTimedOut())  # T0+3: no-input prompt
    caller.send(PromptFinished())  # T0+4: the menu again
    assert [step.at for step in caller.session.path] == [T0, T0 + 1, T0 + 4]


def test_a_menu_without_feedback_prompts_repeats_straight_away() -> None:
    caller = Caller(
        flow_from(
            """
            name: bare
            start: m
            nodes:
              m:
                type: menu
                prompt: main-menu
                timeout: 2.5
                retries: 2
                options: {"1": {queue: sales}}
                on_exhausted: {hangup: true}
            """
        )
    )
    caller.send(PromptFinished())
    assert caller.send(InputTimedOut()) == PlayPrompt("main-menu", interruptible=True)
    caller.send(PromptFinished(digit="4"))
    assert caller.last == Hangup("m: no valid choice after 2 tries")
    assert caller.path() == [("m", "timeout"), ("m", "invalid:4")]


def test_a_menu_heard_once_goes_to_on_exhausted_after_one_silence() -> None:
    caller = Caller(
        flow_from(
            """
            name: once
            start: m
            nodes:
              m:
                type: menu
                prompt: main-menu
                retries: 1
                options: {"1": {queue: sales}}
                on_exhausted: {node: bye}
              bye: {type: play, prompt: goodbye, next: {hangup: true, prompt: goodbye}}
            """
        )
    )
    assert caller.stays_silent() == Hangup("bye: next")
    assert caller.path() == [("m", "timeout"), ("bye", None)]


def test_an_option_leading_back_to_the_same_menu_starts_its_tries_afresh() -> None:
    caller = Caller(
        flow_from(
            """
            name: repeat
            start: m
            nodes:
              m:
                type: menu
                prompt: main-menu
                retries: 2
                options: {"1": {queue: sales}, "*": {node: m}}
                on_exhausted: {queue: operator}
            """
        )
    )
    caller.send(PromptFinished())
    caller.send(InputTimedOut())  # first try failed
    caller.send(PromptFinished(digit="*"))  # "repeat": a new visit
    caller.send(PromptFinished())
    assert caller.send(InputTimedOut()) == PlayPrompt("main-menu", interruptible=True)
    assert caller.path() == [("m", "timeout"), ("m", "*"), ("m", "timeout"), ("m", None)]


def test_after_the_final_action_any_event_is_a_clear_error() -> None:
    caller = Caller(demo_flow())
    caller.stays_silent()
    with pytest.raises(IvrProtocolError, match="already ended with RouteToQueue"):
        caller.send(PromptFinished())


def test_events_that_do_not_answer_the_last_action_are_refused() -> None:
    caller = Caller(demo_flow())
    with pytest.raises(IvrProtocolError, match="does not answer the prompt of node 'welcome'"):
        caller.send(DigitReceived("1"))
    caller.send(PromptFinished())
    caller.send(PromptFinished())  # now waiting for a digit
    with pytest.raises(IvrProtocolError, match="does not answer WaitForDigit"):
        caller.send(PromptFinished())


def test_the_session_must_be_started_once_before_events() -> None:
    session = IvrSession(demo_flow(), T0)
    with pytest.raises(IvrProtocolError, match="call start"):
        session.handle(PromptFinished(), T0)
    session.start()
    with pytest.raises(IvrProtocolError, match="already called"):
        session.start()


@pytest.mark.parametrize("digit", ["", "12", "a", " "])
def test_a_digit_that_is_not_dtmf_is_refused(digit: str) -> None:
    caller = Caller(demo_flow())
    caller.send(PromptFinished())
    caller.send(PromptFinished())
    with pytest.raises(IvrProtocolError, match="is not a DTMF digit"):
        caller.send(DigitReceived(digit))


# --------------------------------------------------------------------------- properties

QUEUES = ("q1", "q2")


@st.composite
def flow_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A small valid flow: play and menu nodes; silent links only go forward, so silence ends."""
    count = draw(st.integers(1, 6))
    names = [f"n{i}" for i in range(count)]

    def target(index: int, silent: bool) -> dict[str, Any]:
        onward = names[index + 1 :] if silent else names
        kinds = ["queue", "hangup", "hangup_prompt"] + (["node"] if onward else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "queue":
            return {"queue": draw(st.sampled_from(QUEUES))}
        if kind == "hangup":
            return {"hangup": True}
        if kind == "hangup_prompt":
            return {"hangup": True, "prompt": "goodbye"}
        return {"node": draw(st.sampled_from(onward))}

    nodes: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(names):
        if draw(st.booleans()):
            nodes[name] = {"type": "play", "prompt": f"p-{name}", "next": target(index, True)}
            continue
        digits = draw(st.sets(st.sampled_from(DTMF_DIGITS), min_size=1, max_size=4))
        menu: dict[str, Any] = {
            "type": "menu",
            "prompt": f"m-{name}",
            "timeout": draw(st.integers(1, 60)),
            "retries": draw(st.integers(1, 4)),
            "options": {digit: target(index, False) for digit in sorted(digits)},
            "on_exhausted": target(index, True),
        }
        for key in ("invalid_prompt", "timeout_prompt"):
            if draw(st.booleans()):
                menu[key] = key.replace("_", "-")
        nodes[name] = menu
    reachable = _reachable(nodes, names[0])
    return {
        "name": "random",
        "start": names[0],
        "nodes": {n: body for n, body in nodes.items() if n in reachable},
    }


def _reachable(nodes: dict[str, dict[str, Any]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        body = nodes[todo.pop()]
        targets = (
            [body["next"]]
            if body["type"] == "play"
            else [
                *body["options"].values(),
                body["on_exhausted"],
            ]
        )
        for target in targets:
            if "node" in target and target["node"] not in seen:
                seen.add(target["node"])
                todo.append(target["node"])
    return seen


def _silence_bound(flow: Flow) -> int:
    """Events a silent caller needs at most from anywhere: each node once on the way out."""
    return (
        sum(3 * node.retries if isinstance(node, MenuNode) else 1 for node in flow.nodes.values())
        + 2
    )


@settings(max_examples=300, deadline=None)
@given(document=flow_documents(), data=st.data())
def test_any_valid_flow_and_any_caller_end_in_a_queue_or_a_hangup(
    document: dict[str, Any], data: st.DataObject
) -> None:
    flow = parse_flow(
        yaml.safe_dump(document, sort_keys=False),
        "random.yaml",
        known_queues=QUEUES,
        prompt_exists=lambda name: True,
    )
    caller = Caller(flow)
    digit = st.sampled_from(DTMF_DIGITS)
    pressing = data.draw(st.integers(0, 40), label="events with possible key presses")
    for _ in range(pressing):  # a caller who may press anything at any time...
        match caller.last:
            case PlayPrompt():
                caller.send(PromptFinished(data.draw(st.none() | digit)))
            case WaitForDigit(timeout=timeout):
                assert 1 <= timeout <= 60
                caller.send(data.draw(st.builds(DigitReceived, digit) | st.just(InputTimedOut())))
            case RouteToQueue(queue=queue):
                assert queue in QUEUES
                break
            case Hangup():
                break
    # ...then goes quiet: the flow must end within a bound.
    final = caller.stays_silent(max_steps=_silence_bound(flow))
    assert caller.session.finished and caller.session.final_action == final
    assert all(step.node in flow.nodes for step in caller.session.path)
    for step in caller.session.path:
        node = flow.nodes[step.node]
        if not isinstance(node, MenuNode):
            assert step.input is None  # digits during a play node are ignored
        elif step.input is not None and step.input.startswith("invalid:"):
            assert step.input.removeprefix("invalid:") not in node.options
        else:
            assert step.input == "timeout" or step.input in node.options
    with pytest.raises(IvrProtocolError):
        caller.send(PromptFinished())
