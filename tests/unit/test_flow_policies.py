"""The SAC customer-service policy: the attendant in every menu, menus not nested too
deeply, and the protocol number told before the first menu."""

from __future__ import annotations

from callcenter.core.flows import parse_flow
from callcenter.core.flows.model import AgentTarget, QueueTarget
from tests.support.flow_text import DEMO, QUEUES, parse, problems

SAC_FLOW = """
name: sac
policy: sac
attendant: {queue: operator}
start: welcome
nodes:
  welcome:
    type: play
    prompt: welcome
    next: {node: protocol}
  protocol:
    type: say
    kind: digits
    value: call.protocol
    next: {node: main_menu}
  main_menu:
    type: menu
    prompt: main-menu
    options:
      "1": {node: sub_menu}
      "0": {queue: operator}
    on_exhausted: {queue: operator}
  sub_menu:
    type: menu
    prompt: main-menu
    options:
      "1": {queue: sales}
      "0": {queue: operator}
    on_exhausted: {queue: operator}
"""


def test_a_sac_flow_names_its_attendant_and_takes_the_default_key_and_depth() -> None:
    flow = parse(SAC_FLOW)
    assert flow.is_sac
    assert (flow.policy, flow.attendant) == ("sac", QueueTarget("operator"))
    assert (flow.attendant_key, flow.max_menu_depth) == ("0", 3)


def test_a_flow_without_a_policy_has_no_attendant() -> None:
    flow = parse_flow(
        DEMO.read_text(encoding="utf-8"), "main.yaml", known_queues=QUEUES,
        prompt_exists=lambda name, language: True,
    )
    assert not flow.is_sac
    assert (flow.policy, flow.attendant, flow.attendant_key, flow.max_menu_depth) == (
        None, None, "0", 3,
    )


def test_the_attendant_key_and_menu_depth_can_be_chosen() -> None:
    text = SAC_FLOW.replace('"0": {queue: operator}', '"*": {agent: alice}').replace(
        "attendant: {queue: operator}",
        "attendant: {agent: alice}\nattendant_key: '*'\nmax_menu_depth: 2",
    )
    flow = parse(text, agents={"alice"})
    assert (flow.attendant, flow.attendant_key, flow.max_menu_depth) == (
        AgentTarget("alice"), "*", 2,
    )


def test_every_sac_menu_must_offer_the_attendant_key_leading_to_the_attendant() -> None:
    text = SAC_FLOW.replace('      "1": {queue: sales}\n      "0": {queue: operator}\n',
                            '      "1": {queue: sales}\n      "2": {queue: support}\n')
    text = text.replace('"0": {queue: operator}', '"0": {queue: sales}')
    assert problems(text) == [
        "test.yaml:20:7: nodes.main_menu.options: in a SAC flow key '0' is the attendant's "
        "and must lead to {queue: operator}, not {queue: sales}",
        "test.yaml:22:3: nodes.sub_menu: a SAC flow offers the attendant in every menu: add "
        "option '0' leading to {queue: operator}",
    ]


def test_the_sac_attendant_must_be_a_person_and_is_required() -> None:
    assert problems(SAC_FLOW.replace("attendant: {queue: operator}",
                                     "attendant: {hangup: true}")) == [
        "test.yaml:3:12: attendant: must be a queue or an agent, where a person answers, not "
        "{hangup: true}",
    ]
    assert problems(SAC_FLOW.replace("attendant: {queue: operator}\n", "")) == [
        "test.yaml:1:1: flow: policy sac needs an 'attendant' target ({queue: NAME} or "
        "{agent: ID}): where the attendant key leads",
    ]


def test_policy_settings_are_checked() -> None:
    text = SAC_FLOW.replace(
        "policy: sac\nattendant: {queue: operator}",
        "policy: sac\nattendant: {queue: operator}\nattendant_key: '00'\nmax_menu_depth: 11",
    )
    assert problems(text) == [
        "test.yaml:4:16: attendant_key: expected one DTMF key (0-9, *, #; quote * and #), "
        "got text '00'",
        "test.yaml:5:17: max_menu_depth: 11 is out of range (1-10 menus)",
    ]
    assert problems(SAC_FLOW.replace("policy: sac", "policy: strict")) == [
        "test.yaml:2:9: policy: unknown policy 'strict' (known: sac)",
    ]
    no_policy = SAC_FLOW.replace("policy: sac\n", "max_menu_depth: 2\n")
    assert problems(no_policy) == [
        "test.yaml:2:1: max_menu_depth: only used with policy: sac",
        "test.yaml:3:1: attendant: only used with policy: sac",
    ]


def test_a_sac_menu_deeper_than_the_limit_is_reported_with_its_depth() -> None:
    text = SAC_FLOW.replace("attendant: {queue: operator}",
                            "attendant: {queue: operator}\nmax_menu_depth: 1")
    assert problems(text) == [
        "test.yaml:23:3: nodes.sub_menu: this menu is 2 menus deep from start (the shortest "
        "way); a SAC flow allows at most 1 (max_menu_depth)",
    ]


def test_menu_depth_counts_the_shortest_way_not_the_longest() -> None:
    # sub_menu is 2 deep through main_menu but only 1 deep through the condition.
    text = SAC_FLOW.replace(
        "attendant: {queue: operator}",
        "attendant: {queue: operator}\nmax_menu_depth: 1",
    ).replace("    next: {node: main_menu}\n", "    next: {node: which}\n") + (
        "  which:\n"
        "    type: condition\n"
        "    if: \"caller.number == '1'\"\n"
        "    then: {node: sub_menu}\n"
        "    else: {node: main_menu}\n"
    )
    assert parse(text).max_menu_depth == 1


def test_a_sac_flow_must_tell_the_protocol_number_before_the_first_menu() -> None:
    text = SAC_FLOW.replace("value: call.protocol", "value: caller.number")
    assert problems(text) == [
        "test.yaml:2:9: policy: a SAC flow must tell the caller the protocol number before "
        "the first menu (add a say node with kind digits and value call.protocol)",
    ]


def test_no_way_may_bypass_the_protocol_number_on_the_way_to_a_menu() -> None:
    text = SAC_FLOW.replace("    next: {node: protocol}\n", "    next: {node: which}\n") + (
        "  which:\n"
        "    type: condition\n"
        "    if: \"caller.number == '1'\"\n"
        "    then: {node: protocol}\n"
        "    else: {node: sub_menu}\n"
    )
    assert problems(text) == [
        "test.yaml:22:3: nodes.sub_menu: a caller can reach this menu without hearing the "
        "protocol number (every way from start must pass a say node with value call.protocol)",
    ]


def test_every_sac_problem_is_reported_at_once() -> None:
    text = (
        SAC_FLOW.replace("value: call.protocol", "value: caller.number")
        .replace("attendant: {queue: operator}", "attendant: {queue: operator}\nmax_menu_depth: 1")
        .replace('"0": {queue: operator}', '"0": {queue: sales}')
    )
    assert [p.split(": ")[0] for p in problems(text)] == [
        "test.yaml:2:9",  # protocol number never told
        "test.yaml:21:7",  # main_menu's 0 leads elsewhere
        "test.yaml:23:3",  # sub_menu too deep
        "test.yaml:28:7",  # sub_menu's 0 leads elsewhere
    ]
