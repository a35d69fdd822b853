"""The IVR session: what a caller hears and where they end up, driven with plain events."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.core.flows import Flow, parse_flow
from callcenter.core.flows.model import (
    DTMF_DIGITS,
    CallbackNode,
    CollectNode,
    ConditionNode,
    FaqNode,
    FetchNode,
    LanguageNode,
    MenuNode,
    QuestionNode,
    SayNode,
    SetNode,
    TimeNode,
)
from callcenter.core.hours import Override
from callcenter.core.ivr import (
    CallbackRegistered,
    CallVariables,
    CollectDigits,
    DataFetched,
    DigitReceived,
    DigitsCollected,
    FetchData,
    Hangup,
    InputTimedOut,
    IvrAction,
    IvrEvent,
    IvrProtocolError,
    IvrSession,
    NameRecorded,
    PlayPrompt,
    PromptFinished,
    RecordName,
    RegisterCallback,
    RouteToAgent,
    RouteToQueue,
    SayDateTime,
    SayDigits,
    SayFinished,
    SayMoney,
    SayNumber,
    SwitchFlow,
    TerminalAction,
    TransferTo,
    WaitForDigit,
)

DEMO = Path(__file__).resolve().parents[2] / "dialplans" / "main.yaml"
T0 = 1_700_000_000.0
# The demo flow's first step: its business hours, open day and night by the file's override.
DEMO_OPEN = ("business_hours", "open: open 24x7 by an admin")


def demo_flow() -> Flow:
    return parse_flow(
        DEMO.read_text(encoding="utf-8"),
        "main.yaml",
        known_queues={"sales", "support", "operator"},
        prompt_exists=lambda name, language: True,
    )


def flow_from(text: str, queues: tuple[str, ...] = ("sales", "operator")) -> Flow:
    return parse_flow(
        textwrap.dedent(text), "test.yaml", known_queues=queues,
        prompt_exists=lambda name, language: True,
    )


class Caller:
    """Drives a session and keeps the transcript of actions, with a clock moving 1 s a step."""

    def __init__(
        self,
        flow: Flow,
        variables: CallVariables | None = None,
        overrides: Callable[[str], Override] | None = None,
        now: float = T0,
    ) -> None:
        self.now = now
        self.session = IvrSession(flow, self.now, variables, overrides)
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
                case CollectDigits():
                    self.send(DigitsCollected(""))
                case SayNumber() | SayDigits() | SayDateTime() | SayMoney():
                    self.send(SayFinished())
                case FetchData():
                    self.send(DataFetched(None, "timed out"))
                case RecordName():
                    self.send(NameRecorded(False))
                case RegisterCallback():
                    self.send(CallbackRegistered())
                case RouteToQueue() | Hangup() | RouteToAgent() | TransferTo() | SwitchFlow():
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
        PlayPrompt("welcome", interruptible=True),
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
        DEMO_OPEN,
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
    assert caller.path() == [DEMO_OPEN, ("welcome", None), ("main_menu", "2")]


def test_a_digit_pressed_after_the_menu_prompt_chooses_too() -> None:
    caller = Caller(demo_flow())
    caller.send(PromptFinished())
    caller.send(PromptFinished())
    assert caller.send(DigitReceived("1")) == RouteToQueue("sales")


def test_a_key_pressed_during_the_welcome_is_the_choice_in_the_menu_that_follows() -> None:
    caller = Caller(demo_flow())
    assert caller.last == PlayPrompt("welcome", interruptible=True)
    assert caller.send(PromptFinished(digit="1")) == RouteToQueue("sales")
    assert caller.path() == [DEMO_OPEN, ("welcome", None), ("main_menu", "1")]


def test_a_wrong_key_during_the_welcome_counts_as_a_wrong_choice() -> None:
    caller = Caller(demo_flow())
    assert caller.send(PromptFinished(digit="7")) == PlayPrompt("invalid", interruptible=False)
    assert caller.path() == [DEMO_OPEN, ("welcome", None), ("main_menu", "invalid:7")]


def test_a_wrong_digit_plays_the_invalid_prompt_and_repeats_the_menu() -> None:
    caller = Caller(demo_flow())
    caller.send(PromptFinished())
    assert caller.send(PromptFinished(digit="7")) == PlayPrompt("invalid", interruptible=False)
    assert caller.send(PromptFinished()) == PlayPrompt("main-menu", interruptible=True)
    caller.send(PromptFinished())
    assert caller.send(DigitReceived("0")) == RouteToQueue("operator")
    assert caller.path() == [DEMO_OPEN, ("welcome", None), ("main_menu", "invalid:7"),
                             ("main_menu", "0")]


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
        DEMO_OPEN,
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
    assert [step.at for step in caller.session.path] == [T0, T0, T0 + 1, T0 + 4]


def test_the_demo_flow_closed_by_the_admin_tells_its_hours_and_says_goodbye() -> None:
    caller = Caller(demo_flow(), overrides=lambda flow: Override.FORCE_CLOSED)
    assert caller.stays_silent() == Hangup("closed_now: next")
    assert caller.actions == [PlayPrompt("faq-opening-hours", interruptible=False),
                              PlayPrompt("goodbye", interruptible=False),
                              Hangup("closed_now: next")]
    assert caller.path() == [("business_hours", "closed: forced closed by an admin"),
                             ("closed_now", None)]


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


# --------------------------------------------------------------------------- variables and logic

VIP_FLOW = """
    name: vip
    start: mark
    nodes:
      mark:
        type: set
        variables:
          vip: "startswith(caller.number, '+5511')"
          greeting: "'hello ' + caller.name"
        next: {node: route}
      route:
        type: condition
        if: "vip"
        then: {agent: alice}
        else: {queue: sales}
    """


def test_call_variables_are_seen_by_expressions_and_set_nodes_add_their_own() -> None:
    caller = Caller(flow_from(VIP_FLOW), {"caller.number": "+5511987654321", "caller.name": "Ana"})
    assert caller.last == RouteToAgent("alice")
    assert caller.session.finished
    assert caller.session.variables["vip"] is True
    assert caller.session.variables["greeting"] == "hello Ana"
    assert caller.session.variables["call.dialed"] is None  # a built-in not given is null
    assert caller.session.variables["call.language"] == "en"  # the flow's fallback language
    assert caller.path() == [("mark", None), ("route", "true")]


def test_a_vip_found_by_the_flow_joins_the_queue_ahead_asking_for_a_skill() -> None:
    vip_first = VIP_FLOW.replace("then: {agent: alice}",
                                 "then: {queue: sales, priority: 10, skills: {vip_desk: 2}}")
    caller = Caller(flow_from(vip_first), {"caller.number": "+5511987654321"})
    assert caller.last == RouteToQueue("sales", priority=10, skills={"vip_desk": 2})
    caller = Caller(flow_from(vip_first), {"caller.number": "+5521987654321"})
    assert caller.last == RouteToQueue("sales")


def test_a_condition_that_fails_to_evaluate_takes_else_and_says_why_in_the_path() -> None:
    caller = Caller(flow_from(VIP_FLOW))  # no caller.number: startswith(null, ...) fails
    assert caller.last == RouteToQueue("sales")
    assert caller.session.variables["vip"] is None  # a failed value is null
    step = caller.session.path[0]
    assert step.input is not None and step.input.startswith("error: vip: ")
    assert caller.session.path[1].input is not None
    assert caller.session.path[1].input.startswith("error: ")


UNSET_ON_ONE_BRANCH = """
    name: c
    start: m
    nodes:
      m:
        type: menu
        prompt: main-menu
        options: {"1": {node: s}, "2": {node: c}}
        on_exhausted: {hangup: true}
      s: {type: set, variables: {x: "1"}, next: {node: c}}
      c: {type: condition, if: "x == 1", then: {queue: sales}, else: {hangup: true}}
    """


def test_a_condition_reading_a_variable_not_set_on_this_path_takes_else_with_the_error() -> None:
    caller = Caller(flow_from(UNSET_ON_ONE_BRANCH))
    assert caller.send(PromptFinished("2")) == Hangup("c: else (error)")
    assert caller.path() == [("m", "2"), ("c", "error: unknown variable 'x'")]
    caller = Caller(flow_from(UNSET_ON_ONE_BRANCH))
    assert caller.send(PromptFinished("1")) == RouteToQueue("sales")
    assert caller.path() == [("m", "1"), ("s", None), ("c", "true")]


# --------------------------------------------------------------------------- collect

CARD_FLOW = """
    name: card
    start: ask
    nodes:
      ask:
        type: collect
        prompt: main-menu
        variable: card
        min_digits: 4
        max_digits: 16
        timeout: 4
        retries: 2
        check: luhn
        invalid_prompt: invalid
        timeout_prompt: no-input
        next: {node: say}
        on_exhausted: {queue: operator}
      say: {type: say, kind: digits, value: card, next: {node: bye}}
      bye: {type: play, prompt: goodbye, next: {hangup: true}}
    """


def test_a_valid_entry_is_stored_and_the_path_keeps_only_its_length() -> None:
    caller = Caller(flow_from(CARD_FLOW))
    assert caller.last == CollectDigits("main-menu", max_digits=16, timeout=4.0, terminator="#")
    assert caller.send(DigitsCollected("79927398713")) == SayDigits("79927398713")
    assert caller.session.variables["card"] == "79927398713"
    assert caller.send(SayFinished("5")) == PlayPrompt("goodbye", interruptible=False)
    assert caller.path() == [("ask", "11 digits"), ("say", None), ("bye", None)]


def test_a_wrong_check_digit_hears_the_invalid_prompt_and_may_try_again() -> None:
    caller = Caller(flow_from(CARD_FLOW))
    assert caller.send(DigitsCollected("79927398710")) == PlayPrompt("invalid", False)
    assert caller.send(PromptFinished()) == CollectDigits("main-menu", 16, 4.0, "#")
    assert caller.send(DigitsCollected("123")) == PlayPrompt("invalid", False)
    assert caller.send(PromptFinished()) == RouteToQueue("operator")
    assert caller.path() == [
        ("ask", "invalid: luhn check failed"),
        ("ask", "invalid: too short (3 of at least 4 digits)"),
    ]
    assert "card" not in caller.session.variables


def test_entering_nothing_is_a_timeout_and_counts_as_a_try() -> None:
    caller = Caller(flow_from(CARD_FLOW))
    assert caller.stays_silent() == RouteToQueue("operator")
    assert caller.path() == [("ask", "timeout"), ("ask", "timeout")]
    assert PlayPrompt("no-input", interruptible=False) in caller.actions


def test_star_needs_a_pattern_that_allows_it_and_the_pattern_must_match_whole() -> None:
    flow = flow_from(
        """
        name: p
        start: ask
        nodes:
          ask:
            type: collect
            prompt: main-menu
            variable: code
            max_digits: 5
            terminator: none
            retries: 1
            pattern: "[0-9]{3}[*]?"
            next: {queue: sales}
            on_exhausted: {hangup: true}
        """
    )
    assert Caller(flow).send(DigitsCollected("123*")) == RouteToQueue("sales")
    caller = Caller(flow)
    assert caller.last == CollectDigits("main-menu", 5, 5.0, None)
    assert caller.send(DigitsCollected("1234")) == Hangup("ask: no valid entry after 1 tries")
    assert caller.path() == [("ask", "invalid: does not match the pattern")]


@pytest.mark.parametrize("digits", ["12345678901234567", "12a", "1 2"])
def test_an_entry_the_adapter_could_not_have_collected_is_refused(digits: str) -> None:
    caller = Caller(flow_from(CARD_FLOW))
    with pytest.raises(IvrProtocolError, match="is not an entry of at most 16 DTMF digits"):
        caller.send(DigitsCollected(digits))


# --------------------------------------------------------------------------- say


def _say_flow(kind: str, value: str, extra: str = "") -> Flow:
    return flow_from(
        f"""
        name: s
        start: v
        nodes:
          v: {{type: set, variables: {{amount: "{value}"}}, next: {{node: say}}}}
          say: {{type: say, kind: {kind}, value: amount, {extra} next: {{queue: sales}}}}
        """
    )


@pytest.mark.parametrize(
    ("kind", "value", "extra", "expected"),
    [
        ("number", "40 + 2", "", SayNumber(42)),
        ("number", "6 / 2", "", SayNumber(3)),
        ("digits", "'0042'", "", SayDigits("0042")),
        ("digits", "7", "", SayDigits("7")),
        ("money", "12.50 * 2", "currency: BRL,", SayMoney(Decimal("25.00"), "BRL")),
        (
            "datetime",
            "1700000000",
            "timezone: America/Sao_Paulo,",
            SayDateTime(1_700_000_000.0, "America/Sao_Paulo"),
        ),
    ],
)
def test_say_turns_the_value_into_the_matching_action(
    kind: str, value: str, extra: str, expected: IvrAction
) -> None:
    caller = Caller(_say_flow(kind, value, extra))
    assert caller.last == expected
    assert caller.send(SayFinished()) == RouteToQueue("sales")


@pytest.mark.parametrize(
    ("kind", "value"),
    [("number", "7 / 2"), ("digits", "'12a'"), ("digits", "-5"), ("money", "'x'")],
)
def test_a_value_that_cannot_be_said_is_skipped_and_noted(kind: str, value: str) -> None:
    caller = Caller(_say_flow(kind, value, "currency: USD," if kind == "money" else ""))
    assert caller.last == RouteToQueue("sales")
    step = caller.session.path[-1]
    assert step.node == "say" and step.input is not None and step.input.startswith("error: ")


# --------------------------------------------------------------------------- time conditions

HOURS_FLOW = """
    name: hours
    start: open
    nodes:
      open:
        type: time
        hours:
          timezone: America/Sao_Paulo
          weekly: {mon-fri: ["08:00-18:00"]}
          holidays: {country: BR}
        open: {queue: sales}
        closed: {hangup: true, prompt: goodbye}
    """
MONDAY_10H = datetime(2026, 3, 2, 13, 0, tzinfo=UTC).timestamp()  # 10:00 in Sao Paulo
MONDAY_20H = datetime(2026, 3, 2, 23, 0, tzinfo=UTC).timestamp()
CHRISTMAS_10H = datetime(2026, 12, 25, 13, 0, tzinfo=UTC).timestamp()  # a Friday


def test_within_the_weekly_hours_the_caller_reaches_the_open_target() -> None:
    caller = Caller(flow_from(HOURS_FLOW), now=MONDAY_10H)
    assert caller.last == RouteToQueue("sales")
    assert caller.path() == [("open", "open: weekly hours mon 08:00-18:00")]


def test_after_hours_and_on_holidays_the_caller_reaches_the_closed_target() -> None:
    caller = Caller(flow_from(HOURS_FLOW), now=MONDAY_20H)
    assert caller.last == PlayPrompt("goodbye", interruptible=False)
    assert caller.send(PromptFinished()) == Hangup("open: closed")
    holiday = Caller(flow_from(HOURS_FLOW), now=CHRISTMAS_10H)
    assert holiday.path()[0][1] == "closed: holiday: Christmas Day"


def test_the_admin_switch_for_the_flow_wins_over_the_hours() -> None:
    asked: list[str] = []

    def switch(flow: str) -> Override:
        asked.append(flow)
        return Override.FORCE_CLOSED

    caller = Caller(flow_from(HOURS_FLOW), overrides=switch, now=MONDAY_10H)
    assert caller.last == PlayPrompt("goodbye", interruptible=False)
    assert caller.path() == [("open", "closed: forced closed by an admin")]
    assert asked == ["hours"]


# --------------------------------------------------------------------------- transfers


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("{agent: alice}", RouteToAgent("alice")),
        ('{extension: "1234"}', TransferTo("extension", "1234")),
        ('{external: "+5511987654321"}', TransferTo("external", "+5511987654321")),
        ("{flow: billing}", SwitchFlow("billing")),
    ],
)
def test_transfer_targets_end_the_session_with_their_action(
    target: str, expected: TerminalAction
) -> None:
    flow = flow_from(
        f"""
        name: t
        start: j
        nodes:
          j: {{type: goto, next: {target}}}
        """
    )
    caller = Caller(flow)
    assert caller.last == expected
    assert caller.session.final_action == expected and caller.session.finished
    assert caller.path() == [("j", None)]


# --------------------------------------------------------------------------- SAC policy

SAC_FLOW = """
    name: sac
    policy: sac
    attendant: {queue: operator}
    start: welcome
    nodes:
      welcome: {type: play, prompt: welcome, next: {node: protocol}}
      protocol: {type: say, kind: digits, value: call.protocol, next: {node: main_menu}}
      main_menu:
        type: menu
        prompt: main-menu
        options:
          "1": {node: account}
          "2": {node: sub_menu}
          "0": {queue: operator}
        on_exhausted: {queue: operator}
      sub_menu:
        type: menu
        prompt: main-menu
        options: {"1": {queue: sales}, "0": {queue: operator}}
        on_exhausted: {queue: operator}
      account:
        type: collect
        prompt: main-menu
        variable: account
        min_digits: 4
        max_digits: 6
        invalid_prompt: invalid
        next: {node: read_back}
        on_exhausted: {hangup: true, prompt: goodbye}
      read_back: {type: say, kind: digits, value: account, next: {node: thanks}}
      thanks: {type: play, prompt: welcome, next: {queue: sales}}
"""
PROTOCOL = {"call.protocol": "20260302000042"}


def sac_caller() -> Caller:
    return Caller(flow_from(SAC_FLOW), PROTOCOL)


def test_a_sac_caller_hears_the_protocol_number_before_the_first_menu() -> None:
    caller = sac_caller()
    assert caller.last == PlayPrompt("welcome", interruptible=True)
    assert caller.send(PromptFinished()) == SayDigits("20260302000042")
    assert caller.send(SayFinished()) == PlayPrompt("main-menu", interruptible=True)


def test_the_attendant_key_during_the_welcome_reaches_the_attendant_at_once() -> None:
    caller = sac_caller()
    assert caller.send(PromptFinished("0")) == RouteToQueue("operator")
    assert caller.path() == [("welcome", "attendant")]


def test_the_attendant_key_while_the_protocol_number_is_said_reaches_the_attendant() -> None:
    caller = sac_caller()
    caller.send(PromptFinished())
    assert caller.send(SayFinished("0")) == RouteToQueue("operator")
    assert caller.path() == [("welcome", None), ("protocol", "attendant")]


def test_the_attendant_key_in_a_sub_menu_is_recorded_as_asking_for_the_attendant() -> None:
    caller = sac_caller()
    caller.send(PromptFinished())
    caller.send(SayFinished())
    caller.send(PromptFinished("2"))
    assert caller.send(PromptFinished()) == WaitForDigit(5.0)
    assert caller.send(DigitReceived("0")) == RouteToQueue("operator")
    assert caller.path()[-2:] == [("main_menu", "2"), ("sub_menu", "attendant")]


def _deep_in_the_account_entry() -> Caller:
    caller = sac_caller()
    caller.send(PromptFinished())
    caller.send(SayFinished())
    assert caller.send(PromptFinished("1")) == CollectDigits("main-menu", 6, 5.0, "#")
    return caller


def test_a_caller_deep_in_a_collect_who_keys_the_attendant_key_reaches_the_attendant() -> None:
    caller = _deep_in_the_account_entry()
    assert caller.send(DigitsCollected("0")) == RouteToQueue("operator")
    assert caller.path()[-1] == ("account", "attendant")


def test_the_attendant_key_during_a_retry_prompt_reaches_the_attendant() -> None:
    caller = _deep_in_the_account_entry()
    assert caller.send(DigitsCollected("12")) == PlayPrompt("invalid", interruptible=True)
    assert caller.send(PromptFinished("0")) == RouteToQueue("operator")
    assert caller.path()[-1] == ("account", "attendant")


def test_the_attendant_key_while_an_entry_is_read_back_reaches_the_attendant() -> None:
    caller = _deep_in_the_account_entry()
    assert caller.send(DigitsCollected("1234")) == SayDigits("1234")
    assert caller.send(SayFinished("0")) == RouteToQueue("operator")
    assert caller.path()[-2:] == [("account", "4 digits"), ("read_back", "attendant")]


def test_in_a_sac_flow_other_keys_during_a_prompt_keep_their_usual_meaning() -> None:
    caller = _deep_in_the_account_entry()
    caller.send(DigitsCollected("1234"))
    assert caller.send(SayFinished("5")) == PlayPrompt("welcome", interruptible=True)
    assert caller.send(PromptFinished("5")) == RouteToQueue("sales")  # the key is ignored
    assert caller.path()[-2:] == [("read_back", None), ("thanks", None)]


def test_without_the_sac_policy_the_same_key_is_an_ordinary_entry() -> None:
    plain = SAC_FLOW.replace("    policy: sac\n    attendant: {queue: operator}\n", "")
    caller = Caller(flow_from(plain), PROTOCOL)
    assert caller.last == PlayPrompt("welcome", interruptible=False)
    caller.send(PromptFinished("0"))  # ignored: the welcome leads to a say, not a menu
    assert caller.send(SayFinished("0")) == PlayPrompt("main-menu", interruptible=True)
    caller.send(PromptFinished("1"))
    assert caller.send(DigitsCollected("0")) == PlayPrompt("invalid", interruptible=False)
    assert caller.path()[-1] == ("account", "invalid: too short (1 of at least 4 digits)")


# --------------------------------------------------------------------------- the example

EXAMPLE = DEMO.parent / "examples" / "order_status.yaml"
PROMPTS = DEMO.parents[1] / "ivr_prompts" / "en"


def test_the_order_status_example_reads_back_a_valid_order_number_then_queues() -> None:
    flow = parse_flow(
        EXAMPLE.read_text(encoding="utf-8"),
        str(EXAMPLE),
        known_queues={"sales", "support", "operator"},
        prompt_exists=lambda name, language: (PROMPTS / f"{name}.wav").is_file(),
    )
    caller = Caller(flow, {"caller.number": "+5511987654321"}, now=MONDAY_10H)
    assert caller.last == PlayPrompt("welcome", interruptible=False)
    assert caller.send(PromptFinished()) == CollectDigits("main-menu", 10, 5.0, "#")
    assert caller.send(DigitsCollected("12345")) == PlayPrompt("invalid", interruptible=False)
    caller.send(PromptFinished())
    luhn_fails = DigitsCollected("7992739871")
    assert caller.send(luhn_fails) == PlayPrompt("invalid", interruptible=False)
    caller.send(PromptFinished())
    lookup = caller.send(DigitsCollected("4992739872"))
    assert lookup == FetchData("http://127.0.0.1:8080/demo/orders", {"order": "4992739872"},
                               3.0, 1)
    reply = {"status": "shipped", "delivery": {"days": 2}}
    assert caller.send(DataFetched(reply)) == SayNumber(2)
    assert caller.send(SayFinished()) == RouteToQueue("sales")
    assert [node for node, _ in caller.path()] == [
        "office_hours",
        "welcome",
        "greet",
        "ask_order",
        "ask_order",
        "ask_order",
        "lookup",
        "read_back",
        "who_answers",
    ]


# --------------------------------------------------------------------------- properties

QUEUES = ("q1", "q2")
CONDITIONS = ("true", "caller.number == '123'", "len(caller.number) > 2", "n == 2")
SAYS = (
    {"kind": "number", "value": "n * 21"},
    {"kind": "digits", "value": "caller.number"},
    {"kind": "money", "value": "1.50", "currency": "EUR"},
    {"kind": "datetime", "value": "1700000000"},
)
HOURS = {"timezone": "UTC", "weekly": {"mon-fri": ["08:00-18:00"]}}
TERMINALS = (RouteToQueue, Hangup, RouteToAgent, TransferTo, SwitchFlow)


@st.composite
def flow_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A small valid flow of every node type; silent links only go forward, so silence ends.

    Its first node always sets ``n``, so that conditions and say values may read it.
    """
    count = draw(st.integers(1, 7))
    names = [f"n{i}" for i in range(count)]

    def target(index: int, silent: bool) -> dict[str, Any]:
        onward = names[index + 1 :] if silent else names
        kinds = ["queue", "hangup", "hangup_prompt", "agent", "external", "flow"]
        kind = draw(st.sampled_from(kinds + (["node"] * 3 if onward else [])))
        if kind == "queue":
            return {"queue": draw(st.sampled_from(QUEUES))}
        if kind == "hangup":
            return {"hangup": True}
        if kind == "hangup_prompt":
            return {"hangup": True, "prompt": "goodbye"}
        if kind == "agent":
            return {"agent": "alice"}
        if kind == "external":
            return {"external": "+5511987654321"}
        if kind == "flow":
            return {"flow": "other"}
        return {"node": draw(st.sampled_from(onward))}

    nodes: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(names):
        kind = "set" if index == 0 else draw(st.sampled_from(_NODE_KINDS))
        body: dict[str, Any] = {"type": kind}
        match kind:
            case "set":
                body["variables"] = {"n": draw(st.sampled_from(["2", "len(caller.name)"]))}
                body["next"] = target(index, True)
            case "play":
                body |= {"prompt": f"p-{name}", "next": target(index, True)}
            case "say":
                body |= draw(st.sampled_from(SAYS)) | {"next": target(index, True)}
            case "goto":
                body["next"] = target(index, True)
            case "condition":
                body["if"] = draw(st.sampled_from(CONDITIONS))
                body |= {"then": target(index, True), "else": target(index, True)}
            case "time":
                body |= {"hours": HOURS, "open": target(index, True)}
                body["closed"] = target(index, True)
            case "fetch":
                body |= {
                    "url": "http://127.0.0.1:8080/demo/orders",
                    "params": {"n": "n"},
                    "retries": draw(st.integers(0, 3)),
                    "result": {"status": "status", "days": "delivery.days"},
                    "next": target(index, True),
                    "on_failure": target(index, True),
                }
            case "collect":
                maximum = draw(st.integers(1, 6))
                body |= {
                    "prompt": f"c-{name}",
                    "variable": "code",
                    "min_digits": draw(st.integers(1, maximum)),
                    "max_digits": maximum,
                    "terminator": draw(st.sampled_from(["#", None])),
                    "retries": draw(st.integers(1, 4)),
                    "next": target(index, False),
                    "on_exhausted": target(index, True),
                }
                if draw(st.booleans()):
                    body["check"] = draw(st.sampled_from(["luhn", "mod11", "verhoeff"]))
                if draw(st.booleans()):
                    body["pattern"] = "[0-9]*[*]?"
            case "language":
                body |= {
                    "prompt": f"l-{name}",
                    "options": {"1": "en", "2": "pt_BR"},
                    "retries": draw(st.integers(1, 4)),
                    "next": target(index, True),
                }
            case "faq":
                explicit = draw(st.booleans())  # else no reply leads to not_solved: forward
                body |= {
                    "answer": f"a-{name}",
                    "retries": draw(st.integers(1, 4)),
                    "solved": target(index, False),
                    "not_solved": target(index, not explicit),
                }
                if explicit:
                    body["on_exhausted"] = target(index, True)
            case "question":
                body |= {
                    "prompt": f"q-{name}",
                    "answers": draw(st.sampled_from(["1-5", {"1": "yes", "2": "no"}])),
                    "retries": draw(st.integers(1, 4)),
                    "next": target(index, True),
                }
            case "callback":
                body |= {
                    "queue": draw(st.sampled_from(QUEUES)),
                    "min_digits": 3,
                    "max_digits": draw(st.integers(3, 6)),
                    "retries": draw(st.integers(1, 4)),
                    "next": target(index, False),
                    "on_failure": target(index, True),
                }
            case _:
                digits = draw(st.sets(st.sampled_from(DTMF_DIGITS), min_size=1, max_size=4))
                body |= {
                    "prompt": f"m-{name}",
                    "timeout": draw(st.integers(1, 60)),
                    "retries": draw(st.integers(1, 4)),
                    "options": {digit: target(index, False) for digit in sorted(digits)},
                    "on_exhausted": target(index, True),
                }
        if kind in ("menu", "collect"):
            for key in ("invalid_prompt", "timeout_prompt"):
                if draw(st.booleans()):
                    body[key] = key.replace("_", "-")
        nodes[name] = body
    reachable = _reachable(nodes, names[0])
    document: dict[str, Any] = {
        "name": "random",
        "languages": ["en", "pt_BR"],
        "start": names[0],
        "nodes": {n: body for n, body in nodes.items() if n in reachable},
    }
    if draw(st.booleans()):  # a SAC flow: tells the protocol first, 0 reaches a person
        attendant = draw(st.sampled_from([{"queue": "q1"}, {"agent": "alice"}]))
        for body in document["nodes"].values():
            if body["type"] == "menu":
                body["options"]["0"] = attendant
        # Key 0 may have been a menu's only way to some node: drop what is now unreachable.
        still_reachable = _reachable(document["nodes"], names[0])
        document["nodes"] = {
            n: body for n, body in document["nodes"].items() if n in still_reachable
        }
        protocol = {"type": "say", "kind": "digits", "value": "call.protocol"}
        document |= {
            "policy": "sac",
            "attendant": attendant,
            "max_menu_depth": 10,  # at most 7 nodes: never too deep
            "start": "protocol",
            "nodes": {"protocol": protocol | {"next": {"node": names[0]}}, **document["nodes"]},
        }
    return document


_NODE_KINDS = (
    "play", "menu", "collect", "say", "set", "condition", "time", "goto", "fetch",
    "language", "faq", "question", "callback",
)
_TARGET_KEYS = (
    "next", "then", "else", "open", "closed", "on_exhausted", "on_failure", "solved",
    "not_solved",
)
# What a data dip may come back with: values of every kind, missing paths, failures.
REPLIES = st.builds(
    DataFetched,
    st.none()
    | st.fixed_dictionaries(
        {},
        optional={
            "status": st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            "delivery": st.integers()
            | st.fixed_dictionaries(
                {}, optional={"days": st.floats() | st.lists(st.integers(), max_size=2)}
            ),
        },
    ),
    st.none() | st.text(max_size=300),
)


def _reachable(nodes: dict[str, dict[str, Any]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        body = nodes[todo.pop()]
        targets = [body[key] for key in _TARGET_KEYS if key in body]
        targets += list(body.get("options", {}).values())
        for target in targets:
            if "node" in target and target["node"] not in seen:
                seen.add(target["node"])
                todo.append(target["node"])
    return seen


_WaitingNode = LanguageNode | FaqNode | QuestionNode | CallbackNode


def _silence_bound(flow: Flow) -> int:
    """Events a silent caller needs at most from anywhere: each node once on the way out."""
    return (
        sum(
            3 * node.retries if isinstance(node, MenuNode | CollectNode)
            else 4 * node.retries + 2 if isinstance(node, _WaitingNode)
            else 1
            for node in flow.nodes.values()
        )
        + 2
    )


@settings(max_examples=300, deadline=None)
@given(document=flow_documents(), data=st.data())
def test_any_valid_flow_and_any_caller_reach_a_terminal_action(
    document: dict[str, Any], data: st.DataObject
) -> None:
    flow = parse_flow(
        yaml.safe_dump(document, sort_keys=False),
        "random.yaml",
        known_queues=QUEUES,
        prompt_exists=lambda name, language: True,
        known_agents={"alice"},
    )
    variables = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "caller.number": st.text("0123", max_size=4),
                "call.protocol": st.text("0123456789", min_size=1, max_size=20),
            },
        ),
        label="call variables",
    )
    override = data.draw(st.sampled_from(Override), label="admin switch")
    at = data.draw(st.floats(T0, T0 + 7 * 86400), label="time of the call")
    caller = Caller(flow, variables, overrides=lambda name: override, now=at)
    digit = st.sampled_from(DTMF_DIGITS)
    pressing = data.draw(st.integers(0, 40), label="events with possible key presses")
    for _ in range(pressing):  # a caller who may press anything at any time...
        match caller.last:
            case PlayPrompt():
                caller.send(PromptFinished(data.draw(st.none() | digit)))
            case WaitForDigit(timeout=timeout):
                assert 1 <= timeout <= 60
                caller.send(data.draw(st.builds(DigitReceived, digit) | st.just(InputTimedOut())))
            case CollectDigits(max_digits=maximum):
                entry = data.draw(st.text(DTMF_DIGITS, max_size=maximum))
                caller.send(DigitsCollected(entry))
            case SayNumber() | SayDigits() | SayDateTime() | SayMoney():
                caller.send(SayFinished(data.draw(st.none() | digit)))
            case FetchData(params=params):
                assert params == {"n": "2"}  # len(caller.name) fails: no dip at all
                caller.send(data.draw(REPLIES))
            case RecordName():
                caller.send(NameRecorded(data.draw(st.booleans())))
            case RegisterCallback(number=number):
                assert number.isdigit()
                caller.send(data.draw(st.builds(CallbackRegistered, st.none() | st.text())))
            case RouteToQueue(queue=queue):
                assert queue in QUEUES
                break
            case _:
                assert isinstance(caller.last, TERMINALS)
                break
    # ...then goes quiet: the flow must end within a bound.
    final = caller.stays_silent(max_steps=_silence_bound(flow))
    assert caller.session.finished and caller.session.final_action == final
    assert all(step.node in flow.nodes for step in caller.session.path)
    for step in caller.session.path:
        node = flow.nodes[step.node]
        if step.input == "attendant":  # only SAC flows, and it is where the call ended
            assert flow.is_sac and step is caller.session.path[-1]
            assert final in (RouteToQueue("q1"), RouteToAgent("alice"))
        elif isinstance(node, MenuNode):
            if step.input is not None and step.input.startswith("invalid:"):
                assert step.input.removeprefix("invalid:") not in node.options
            else:
                assert step.input in ("timeout", None) or step.input in node.options
        elif isinstance(node, FetchNode):
            assert step.input is not None
            assert step.input.startswith(("ok", "failed: ", "missing: ", "error: n: "))
            assert len(step.input) <= len("failed: ") + 200
        elif isinstance(node, LanguageNode):
            assert step.input in (None, "timeout", *node.options.values()) or (
                step.input.startswith("invalid:"))
            assert caller.session.language in ("en", "pt_BR")
        elif isinstance(node, FaqNode):
            assert step.input in (None, "timeout", *FAQ_RESULTS) or step.input.startswith(
                "invalid:")
        elif isinstance(node, QuestionNode):
            assert step.input is None or step.input in ("timeout", *(
                f"answer {a}" for a in node.answers.values())) or step.input.startswith(
                    "invalid:")
        elif isinstance(node, CallbackNode):
            assert step.input is None or step.input.startswith(
                ("timeout", "invalid", "registered (", "failed: "))
        elif not isinstance(node, CollectNode | SayNode | SetNode | ConditionNode | TimeNode):
            assert step.input is None  # digits during a play node are ignored
    with pytest.raises(IvrProtocolError):
        caller.send(PromptFinished())
    faqs = [n for n in caller.session.path if isinstance(flow.nodes[n.node], FaqNode)]
    # One outcome per FAQ answer heard; the retries of its question are steps of their own.
    assert bool(faqs) == bool(caller.session.faq_outcomes)
    assert len(caller.session.faq_outcomes) <= len(faqs)
    assert all(o.result != "hung_up" for o in caller.session.faq_outcomes)  # all replied
    questions = {n.question for n in flow.nodes.values() if isinstance(n, QuestionNode)}
    assert {a.question for a in caller.session.survey_answers} <= questions


FAQ_RESULTS = ("solved", "not_solved", "no_answer")


def test_the_sac_example_reaches_the_operator_from_inside_the_order_entry() -> None:
    example = EXAMPLE.parent / "sac.yaml"
    flow = parse_flow(
        example.read_text(encoding="utf-8"),
        str(example),
        known_queues={"sales", "support", "operator"},
        prompt_exists=lambda name, language: (PROMPTS / f"{name}.wav").is_file(),
    )
    caller = Caller(flow, PROTOCOL)
    caller.send(PromptFinished())  # the welcome
    assert caller.last == PlayPrompt("protocol-intro", interruptible=True)
    caller.send(PromptFinished())
    assert caller.last == SayDigits("20260302000042")
    caller.send(SayFinished())
    assert caller.send(PromptFinished("1")) == CollectDigits("main-menu", 10, 5.0, "#")
    assert caller.send(DigitsCollected("0")) == RouteToQueue("operator")


# --------------------------------------------------------------------------- data dips

FETCH_FLOW = """
    name: dip
    start: ask
    nodes:
      ask:
        type: collect
        prompt: enter-order
        variable: order
        max_digits: 8
        pattern: "[0-9*]+"
        next: {node: lookup}
        on_exhausted: {queue: operator}
      lookup:
        type: fetch
        url: "http://127.0.0.1:8080/demo/orders"
        params: {order: "order", twice: "int(order) * 2"}
        timeout: 2
        retries: 2
        result: {order_status: "status", eta: "delivery.days", paid: "paid"}
        next: {node: tell}
        on_failure: {queue: operator}
      tell:
        type: say
        kind: number
        value: eta
        next: {queue: sales}
"""


def _at_the_dip() -> Caller:
    caller = Caller(flow_from(FETCH_FLOW))
    request = caller.send(DigitsCollected("42"))
    assert request == FetchData(
        "http://127.0.0.1:8080/demo/orders", {"order": "42", "twice": "84"}, 2.0, 2
    )
    return caller


def test_a_data_dip_maps_the_reply_into_variables_and_goes_on() -> None:
    caller = _at_the_dip()
    reply = {"status": "shipped", "delivery": {"days": 3, "by": "truck"}, "paid": True}
    assert caller.send(DataFetched(reply)) == SayNumber(3)
    assert caller.session.variables["order_status"] == "shipped"
    assert caller.session.variables["paid"] is True
    assert caller.path()[-2:] == [("lookup", "ok"), ("tell", None)]


def test_a_decimal_in_the_reply_becomes_an_exact_decimal() -> None:
    caller = _at_the_dip()
    caller.send(DataFetched({"status": None, "delivery": {"days": 1.1}, "paid": False}))
    assert caller.session.variables["eta"] == Decimal("1.1")
    assert caller.session.variables["order_status"] is None


def test_a_reply_missing_a_path_takes_on_failure_and_sets_nothing() -> None:
    caller = _at_the_dip()
    reply = {"status": "shipped", "delivery": {"weeks": 1}, "paid": True}
    assert caller.send(DataFetched(reply)) == RouteToQueue("operator")
    assert caller.path()[-1] == ("lookup", "missing: delivery.days")
    assert caller.session.variables["order_status"] is None


@pytest.mark.parametrize(
    ("delivery", "why"),
    [({"days": [1, 2]}, "got a list"), ({"days": {"min": 1}}, "got an object"), (5, "missing")],
)
def test_a_path_to_a_list_an_object_or_through_a_number_is_a_failure(
    delivery: object, why: str
) -> None:
    caller = _at_the_dip()
    caller.send(DataFetched({"status": "x", "delivery": delivery, "paid": True}))
    assert caller.last == RouteToQueue("operator")
    step_input = caller.path()[-1][1]
    assert step_input is not None and why in step_input and "delivery.days" in step_input


def test_a_failed_dip_takes_on_failure_and_keeps_its_error_short() -> None:
    caller = _at_the_dip()
    assert caller.send(DataFetched(None, "timed out\nafter " + "x" * 500)) == RouteToQueue(
        "operator"
    )
    step_input = caller.path()[-1][1]
    assert step_input == "failed: timed out after " + "x" * (200 - len("timed out after "))


def test_a_dip_with_no_reply_and_no_error_is_a_failure_too() -> None:
    caller = _at_the_dip()
    caller.send(DataFetched(None))
    assert caller.path()[-1] == ("lookup", "failed: no reply")


def test_an_earlier_dips_values_do_not_survive_a_failed_one() -> None:
    caller = _at_the_dip()
    caller.session.variables["eta"] = 9  # as if an earlier dip had set it
    caller.send(DataFetched(None, "HTTP 500"))
    assert caller.session.variables["eta"] is None


def test_a_parameter_that_cannot_be_evaluated_skips_the_dip_and_takes_on_failure() -> None:
    caller = Caller(flow_from(FETCH_FLOW))
    assert caller.send(DigitsCollected("*1")) == RouteToQueue("operator")  # int("*1") fails
    assert caller.path()[-1][0] == "lookup"
    assert (caller.path()[-1][1] or "").startswith("error: twice: ")


def test_other_events_do_not_answer_a_data_dip() -> None:
    caller = _at_the_dip()
    with pytest.raises(IvrProtocolError, match="data dip of node 'lookup'"):
        caller.send(PromptFinished())
