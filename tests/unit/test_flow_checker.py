"""Flow files: the demo validates, and every mistake is reported where it is."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.core.flows import FlowError, FlowProblem, parse_flow
from callcenter.core.flows.model import (
    AgentTarget,
    CollectNode,
    ConditionNode,
    FetchNode,
    FlowTarget,
    GotoNode,
    HangupTarget,
    MenuNode,
    NodeTarget,
    PlayNode,
    QueueTarget,
    SetNode,
    TimeNode,
    TransferTarget,
)
from callcenter.core.hours import Override
from tests.support.flow_text import DEMO, FETCH, PROMPTS, QUEUES, parse, problems

TARGET_KINDS = "queue, node, hangup, agent, extension, external, flow"


def test_the_demo_flow_validates_with_the_demo_queues_and_prompts() -> None:
    flow = parse_flow(
        DEMO.read_text(encoding="utf-8"),
        str(DEMO),
        known_queues=QUEUES,
        prompt_exists=lambda name, language: name in PROMPTS | {"faq-opening-hours"},
    )
    assert flow.name == "main"
    # Business hours first, open day and night by the file's own override (the admin switch
    # acts there); closed, the caller hears the hours and goodbye.
    assert flow.start == "business_hours"
    hours = flow.nodes["business_hours"]
    assert isinstance(hours, TimeNode) and hours.schedule.override is Override.ALWAYS_OPEN
    assert (hours.open, hours.closed) == (NodeTarget("welcome"), NodeTarget("closed_now"))
    assert flow.nodes["closed_now"] == PlayNode("closed_now", "faq-opening-hours",
                                                HangupTarget("goodbye"))
    assert flow.nodes["welcome"] == PlayNode("welcome", "welcome", NodeTarget("main_menu"))
    menu = flow.nodes["main_menu"]
    assert isinstance(menu, MenuNode)
    assert (menu.prompt, menu.timeout, menu.retries) == ("main-menu", 5.0, 3)
    assert (menu.invalid_prompt, menu.timeout_prompt) == ("invalid", "no-input")
    assert dict(menu.options) == {
        "1": QueueTarget("sales"),
        "2": QueueTarget("support"),
        "3": FlowTarget("selfservice"),
        "0": QueueTarget("operator"),
        "9": HangupTarget("goodbye"),
    }
    assert menu.on_exhausted == QueueTarget("operator")
    assert flow.prompts() == PROMPTS | {"faq-opening-hours"}


def test_the_demo_flow_names_the_prompt_and_queue_it_misses() -> None:
    with pytest.raises(FlowError) as caught:
        parse_flow(
            DEMO.read_text(encoding="utf-8"),
            "main.yaml",
            known_queues={"sales", "support"},
            prompt_exists=lambda name, language: name != "goodbye",
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
        "test.yaml:3:1: flow: unknown key 'colour' (known: name, start, policy, attendant, "
        "attendant_key, max_menu_depth, languages, nodes)",
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
        "a target is {queue: NAME}, {node: NAME}, {hangup: true} (with optional prompt), "
        "{agent: ID}, {extension: 'DIGITS'}, {external: '+E164'} or {flow: NAME}",
        "test.yaml:10:28: nodes.a.on_exhausted.hangup: must be true, got text 'yes please'",
        "test.yaml:11:6: nodes.b: expected a mapping, got text 'nonsense'",
        "test.yaml:12:13: nodes.c.type: unknown node type 'dial' "
        "(play, menu, collect, say, set, condition, time, goto, fetch, language, faq, question, "
        "callback)",
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
        f"test.yaml:8:12: nodes.a.options.1: needs exactly one of {TARGET_KINDS} "
        "(found queue and node)",
        f"test.yaml:9:12: nodes.a.options.2: needs exactly one of {TARGET_KINDS} (found none)",
        "test.yaml:10:27: nodes.a.options.3: prompt is only allowed with hangup",
        "test.yaml:11:21: nodes.a.options.4.hangup: must be true, got false",
        "test.yaml:12:35: nodes.a.options.5.prompt: prompt 'missing' not found",
        "test.yaml:13:37: nodes.a.on_exhausted: unknown key 'when' "
        f"(known: {TARGET_KINDS}, prompt, survey, priority, skills)",
    ]


def test_a_queue_target_carries_the_callers_priority_and_the_skills_an_agent_needs() -> None:
    flow = parse(
        """
        name: main
        start: m
        nodes:
          m:
            type: menu
            prompt: main-menu
            options:
              "1": {queue: support, priority: 10, skills: {billing: 7, spanish: 3}}
              "2": {queue: support}
            on_exhausted: {hangup: true}
        """
    )
    menu = flow.nodes["m"]
    assert isinstance(menu, MenuNode)
    vip = menu.options["1"]
    assert vip == QueueTarget("support", priority=10, skills={"billing": 7, "spanish": 3})
    assert menu.options["2"] == QueueTarget("support")


def test_bad_priorities_and_skills_are_reported_where_they_are() -> None:
    found = problems(
        """
        name: main
        start: m
        nodes:
          m:
            type: menu
            prompt: main-menu
            options:
              "1": {queue: support, priority: high}
              "2": {queue: support, priority: 500}
              "3": {queue: support, skills: {Billing: 3, spanish: 11}}
              "4": {queue: support, skills: [billing]}
              "5": {hangup: true, priority: 3}
            on_exhausted: {hangup: true}
        """
    )
    assert found == [
        "test.yaml:8:39: nodes.m.options.1.priority: expected a whole number, got text 'high'",
        "test.yaml:9:39: nodes.m.options.2.priority: 500 is out of range (-100-100)",
        "test.yaml:10:38: nodes.m.options.3.skills: 'Billing' is not a skill name (a-z, 0-9, _ "
        "and -, up to 40)",
        "test.yaml:10:59: nodes.m.options.3.skills.spanish: 11 is out of range (1-10 level)",
        "test.yaml:11:37: nodes.m.options.4.skills: expected a mapping, got a list",
        "test.yaml:12:27: nodes.m.options.5: priority is only allowed with a queue",
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


def test_prompt_names_that_could_escape_the_prompt_folder_are_refused_unchecked() -> None:
    asked: list[str] = []

    def prompt_exists(name: str, language: str) -> bool:
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
        (  # an unclosed bracket: at the bracket, not at the end of the file
            "name: x\nstart: [a\n",
            "x.yaml:2:8: not valid YAML: while parsing a flow sequence, "
            "expected ',' or ']', but got '<stream end>' (noticed at line 3, column 1)",
        ),
        (
            "name: x\nstart: {a: 1\n",
            "x.yaml:2:8: not valid YAML: while parsing a flow mapping, "
            "expected ',' or '}', but got '<stream end>' (noticed at line 3, column 1)",
        ),
        (  # an unclosed quote: at the quote
            'name: x\nnodes:\n  a:\n    prompt: "hello\n    next: end\n',
            "x.yaml:4:13: not valid YAML: while scanning a quoted scalar, "
            "found unexpected end of stream (noticed at line 6, column 1)",
        ),
        (  # a key without ':' followed by a key: at the key, not on the next line
            "name: x\nnodes:\n  a:\n    type: play\n    prompt hello\n    next: end\n",
            "x.yaml:5:5: not valid YAML: while scanning a simple key, "
            "could not find expected ':' (noticed at line 6, column 5)",
        ),
        (  # a key without ':' followed by a deeper mapping
            "name: x\nnodes:\n  a\n    type: play\n",
            "x.yaml:3:4: not valid YAML: mapping values are not allowed here; "
            "is a ':' missing at the end of this line? (noticed at line 4, column 9)",
        ),
        (  # a key indented one space too little: that very line
            "name: x\nnodes:\n  a:\n    type: play\n   next: end\n",
            "x.yaml:5:4: not valid YAML: while parsing a block mapping, "
            "expected <block end>, but found '<block mapping start>'",
        ),
        (  # text after a quoted value: that very place
            'name: x\nstart: "a" b\n',
            "x.yaml:2:12: not valid YAML: while parsing a block mapping, "
            "expected <block end>, but found '<scalar>'",
        ),
        (
            "name: x\nnodes:\n\ta: 1\n",
            "x.yaml:3:1: not valid YAML: while scanning for the next token, "
            "found character '\\t' that cannot start any token",
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
def test_broken_yaml_is_a_flow_error_at_the_broken_text(text: str, expected: str) -> None:
    with pytest.raises(FlowError) as caught:
        parse_flow(text, "x.yaml", known_queues=(), prompt_exists=lambda name, language: True)
    assert str(caught.value) == expected


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_damaged_demo_file_gives_a_flow_or_a_flow_error_never_a_crash(
    data: st.DataObject,
) -> None:
    example = DEMO.parent / "examples" / "order_status.yaml"  # every newer node type
    text = data.draw(st.sampled_from([DEMO, example]), label="file").read_text(encoding="utf-8")
    for _ in range(data.draw(st.integers(1, 4), label="damages")):
        start = data.draw(st.integers(0, len(text)), label="where")
        end = data.draw(st.integers(start, min(len(text), start + 8)), label="until")
        text = text[:start] + data.draw(st.text(max_size=6), label="with") + text[end:]
    try:
        flow = parse_flow(text, "x.yaml", known_queues=QUEUES,
                          prompt_exists=lambda name, language: name in PROMPTS)
    except FlowError as error:
        assert error.problems
        assert all(p.line >= 1 and p.column >= 1 for p in error.problems)
    else:
        assert flow.start in flow.nodes


def test_deeply_nested_yaml_is_a_flow_error() -> None:
    with pytest.raises(FlowError, match="nested too deeply"):
        parse_flow("a: " + "[" * 5000, "x.yaml", known_queues=(),
                   prompt_exists=lambda name, language: True)


HOURS = "{timezone: America/Sao_Paulo, weekly: {mon-fri: ['08:00-18:00']}}"


def test_a_flow_with_every_new_node_type_validates() -> None:
    flow = parse(
        f"""
        name: selfservice
        start: hours
        nodes:
          hours:
            type: time
            hours: {HOURS}
            open: {{node: remember}}
            closed: {{hangup: true, prompt: goodbye}}
          remember:
            type: set
            variables: {{vip: "startswith(caller.number, '+5511')", tries: 0}}
            next: {{node: ask}}
          ask:
            type: collect
            prompt: main-menu
            variable: account
            max_digits: 8
            check: luhn
            next: {{node: say}}
            on_exhausted: {{agent: alice}}
          say: {{type: say, kind: digits, value: account, next: {{node: branch}}}}
          branch:
            type: condition
            if: "vip and len(account) == 8"
            then: {{external: "+5511987654321"}}
            else: {{node: out}}
          out: {{type: goto, next: {{flow: billing}}}}
        """,
    )
    ask = flow.nodes["ask"]
    assert isinstance(ask, CollectNode)
    assert (ask.min_digits, ask.max_digits, ask.terminator, ask.check) == (1, 8, "#", "luhn")
    assert ask.on_exhausted == AgentTarget("alice")
    branch = flow.nodes["branch"]
    assert isinstance(branch, ConditionNode)
    assert branch.condition.variables == {"vip", "account"}
    assert branch.then == TransferTarget("external", "+5511987654321")
    assert flow.nodes["out"] == GotoNode("out", FlowTarget("billing"))
    remember = flow.nodes["remember"]
    assert isinstance(remember, SetNode) and list(remember.assignments) == ["vip", "tries"]
    assert isinstance(flow.nodes["hours"], TimeNode)
    assert flow.prompts() == {"goodbye", "main-menu"}


def test_a_broken_expression_is_reported_at_its_column_in_the_file() -> None:
    found = problems(
        """
        name: main
        start: a
        nodes:
          a:
            type: condition
            if: caller.number === '1'
            then: {queue: sales}
            else: {node: b}
          b:
            type: set
            variables:
              x: "1 + * 2"
              y: >-
                1 +
                * 2
            next: {queue: sales}
        """
    )
    assert found[0] == (  # at the third '=' of '==='
        "test.yaml:6:25: nodes.a.if: '=' is not an operator: use '==' to compare"
    )
    assert found[1] == "test.yaml:12:15: nodes.b.variables.x: expected a value, got '*'"
    # A folded scalar does not show its text as it is: the problem is at its start.
    assert found[2] == "test.yaml:13:10: nodes.b.variables.y: expected a value, got '*'"
    assert len(found) == 3


def test_reading_a_variable_that_nothing_sets_is_reported_where_it_is_read() -> None:
    found = problems(
        """
        name: main
        start: a
        nodes:
          a:
            type: condition
            if: "caller.name == 'x' or 'ordr' == ordr"
            then: {node: b}
            else: {queue: sales}
          b: {type: say, kind: number, value: total, next: {queue: sales}}
        """
    )
    assert found == [
        "test.yaml:6:42: nodes.a.if: variable 'ordr' is never set in this flow "
        "(set it in a set or collect node)",
        "test.yaml:9:39: nodes.b.value: variable 'total' is never set in this flow "
        "(set it in a set or collect node)",
    ]


def test_set_variable_names_must_be_new_names() -> None:
    found = problems(
        """
        name: main
        start: a
        nodes:
          a:
            type: set
            variables: {caller.number: "'1'", "true": "1", "9x": "2"}
            next: {queue: sales}
        """
    )
    assert found == [
        "test.yaml:6:17: nodes.a.variables: 'caller.number' is set by the call itself; "
        "use another name",
        "test.yaml:6:39: nodes.a.variables: 'true' is a reserved word, not a variable name",
        "test.yaml:6:52: nodes.a.variables: '9x' is not a valid variable name "
        "(letters, digits, _ and .)",
    ]


def test_collect_settings_are_checked() -> None:
    found = problems(
        """
        name: main
        start: a
        nodes:
          a:
            type: collect
            prompt: main-menu
            variable: card
            min_digits: 9
            max_digits: 8
            terminator: "*"
            check: crc32
            pattern: "(a)\\\\1"
            next: {queue: sales}
            on_exhausted: {queue: operator}
          b:
            type: collect
            prompt: main-menu
            variable: other
            max_digits: 33
            next: {queue: sales}
            on_exhausted: {queue: operator}
        """
    )
    assert found[:3] == [
        "test.yaml:8:17: nodes.a.min_digits: 9 is more than max_digits (8)",
        "test.yaml:10:17: nodes.a.terminator: expected '#' or none, got text '*'",
        "test.yaml:11:12: nodes.a.check: unknown check 'crc32' "
        "(known: luhn, mod11, cpf, cnpj, verhoeff)",
    ]
    assert found[3].startswith("test.yaml:12:14: nodes.a.pattern: ")
    assert "backreferences are not supported" in found[3]  # RE2 cannot run them
    assert found[4:] == [
        "test.yaml:15:3: nodes.b: never reached from start 'a'",
        "test.yaml:19:17: nodes.b.max_digits: 33 is out of range (1-32 digits)",
    ]


def test_collect_without_terminator_and_with_a_pattern() -> None:
    flow = parse(
        """
        name: main
        start: a
        nodes:
          a:
            type: collect
            prompt: main-menu
            variable: code
            min_digits: 4
            max_digits: 6
            terminator: none
            timeout: 3
            retries: 2
            pattern: '[0-9]{4}[*]?'
            next: {queue: sales}
            on_exhausted: {queue: operator}
        """
    )
    node = flow.nodes["a"]
    assert isinstance(node, CollectNode)
    assert (node.terminator, node.timeout, node.retries) == (None, 3.0, 2)
    assert node.pattern is not None


def test_say_nodes_need_a_known_kind_and_money_needs_a_currency() -> None:
    found = problems(
        """
        name: main
        start: a
        nodes:
          a: {type: say, kind: money, value: "1.50", next: {node: b}}
          b: {type: say, kind: number, value: "2", currency: BRL, next: {node: c}}
          c: {type: say, kind: colour, value: "2", next: {node: d}}
          d: {type: say, kind: money, value: "2", currency: JPY, next: {node: e}}
          e: {type: say, kind: datetime, value: "0", timezone: Mars/Base, next: {queue: sales}}
        """
    )
    assert found == [
        "test.yaml:4:3: nodes.a: kind money needs a currency (BRL, USD, EUR)",
        "test.yaml:5:44: nodes.b: currency is only for kind money",
        "test.yaml:6:24: nodes.c.kind: unknown kind 'colour' (known: number, digits, datetime, "
        "money)",
        "test.yaml:7:53: nodes.d.currency: unknown currency 'JPY' (known: BRL, USD, EUR)",
        "test.yaml:8:56: nodes.e.timezone: unknown time zone 'Mars/Base' (an IANA key like 'UTC')",
    ]


def test_schedule_problems_point_at_the_yaml_node_they_are_about() -> None:
    found = problems(
        """
        name: main
        start: a
        nodes:
          a:
            type: time
            hours:
              timezone: America/Sao_Paulo
              weekly:
                mon-fri: ["08:00-18:00", "25:00-26:00"]
                funday: ["08:00-12:00"]
            open: {queue: sales}
            closed: {hangup: true}
        """
    )
    assert [f.split(": ")[0] for f in found] == ["test.yaml:9:34", "test.yaml:10:17"]
    assert found[0].startswith("test.yaml:9:34: nodes.a.hours.weekly.mon-fri[1]: ")
    assert found[1].startswith("test.yaml:10:17: nodes.a.hours.weekly.funday: unknown weekday")


def test_duplicate_keys_inside_hours_are_caught() -> None:
    found = problems(
        f"""
        name: main
        start: a
        nodes:
          a:
            type: time
            hours: {HOURS[:-1]}, timezone: UTC}}
            open: {{queue: sales}}
            closed: {{hangup: true}}
        """
    )
    assert found == [
        "test.yaml:6:78: nodes.a.hours: duplicate key 'timezone' (first at line 6, column 13)"
    ]


def test_transfer_targets_are_checked_strictly() -> None:
    text = """
        name: main
        start: a
        nodes:
          a:
            type: menu
            prompt: main-menu
            options:
              "1": {agent: bob}
              "2": {extension: "12a"}
              "3": {external: "+55 11 98765-4321"}
              "4": {external: "5511987654321"}
              "5": {flow: Other}
              "6": {extension: 1234}
              "7": {agent: alice}
            on_exhausted: {external: "+5511987654321&SIP/x"}
        """
    found = problems(text, agents={"alice"})
    assert found == [
        "test.yaml:8:20: nodes.a.options.1.agent: unknown agent id 'bob' (known: alice)",
        "test.yaml:9:24: nodes.a.options.2.extension: '12a' is not a valid extension "
        "(1-20 digits 0-9)",
        "test.yaml:10:23: nodes.a.options.3.external: '+55 11 98765-4321' is not a valid "
        "E.164 number (+, then 8-15 digits, e.g. +5511987654321)",
        "test.yaml:11:23: nodes.a.options.4.external: '5511987654321' is not a valid "
        "E.164 number (+, then 8-15 digits, e.g. +5511987654321)",
        "test.yaml:12:19: nodes.a.options.5.flow: 'Other' is not a valid flow name",
        "test.yaml:13:24: nodes.a.options.6.extension: expected text, got the number 1234; "
        "quote it if you mean text",
        "test.yaml:15:30: nodes.a.on_exhausted.external: '+5511987654321&SIP/x' is not a "
        "valid E.164 number (+, then 8-15 digits, e.g. +5511987654321)",
    ]
    assert "unknown agent" not in " ".join(problems(text))  # agents unchecked by default


def test_a_fetch_node_takes_default_timeout_and_retries_and_its_results_count_as_set() -> None:
    node = parse(FETCH).nodes["lookup"]
    assert isinstance(node, FetchNode)
    assert (node.url, node.timeout, node.retries) == ("http://127.0.0.1:8080/demo/orders", 3.0, 1)
    assert {k: v.text for k, v in node.params.items()} == {"order": "caller.number"}
    assert dict(node.result) == {"order_status": "status", "eta": "delivery.days"}
    assert (node.next, node.on_failure) == (NodeTarget("route"), QueueTarget("operator"))


def test_fetch_settings_are_checked_where_they_are() -> None:
    assert problems(
        """
        name: dip
        start: lookup
        nodes:
          lookup:
            type: fetch
            url: "ftp://user:pw@example.com/x"
            params: {"a b": "caller.number", ok: "1 +"}
            timeout: 0.1
            retries: 4
            result: {call.id: "status", eta: "delivery..days", x: 3}
            method: POST
            next: {queue: sales}
            on_failure: {queue: nowhere}
        """
    ) == [
        "test.yaml:6:10: nodes.lookup.url: the URL must start with http:// or https://, "
        "got 'ftp://user:pw@example.com/x'",
        "test.yaml:7:14: nodes.lookup.params: 'a b' is not a valid query parameter name "
        "(letters, digits, _ . ~ -)",
        "test.yaml:7:46: nodes.lookup.params.ok: expected a value, got the end of the expression",
        "test.yaml:8:14: nodes.lookup.timeout: 0.1 is out of range (0.5-30 seconds)",
        "test.yaml:9:14: nodes.lookup.retries: 4 is out of range (0-3 extra tries)",
        "test.yaml:10:14: nodes.lookup.result: 'call.id' is set by the call itself; "
        "use another name",
        "test.yaml:10:38: nodes.lookup.result.eta: 'delivery..days' is not a valid path in the "
        "reply (names joined by dots, e.g. delivery.days)",
        "test.yaml:10:59: nodes.lookup.result.x: expected text, got the number 3; "
        "quote it if you mean text",
        "test.yaml:11:5: nodes.lookup: unknown key 'method' (known: type, url, params, timeout, "
        "retries, result, next, on_failure)",
        "test.yaml:13:25: nodes.lookup.on_failure.queue: unknown queue 'nowhere' "
        "(known: operator, sales, support)",
    ]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://me@example.com/x", "must not contain a user name or password"),
        ("http:///x", "has no host"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://example.com/x#top", "must not contain a fragment"),
        ("http://example.com/a b", "must not contain spaces"),
        ("/demo/orders", "must start with http:// or https://"),
    ],
)
def test_a_fetch_url_must_be_plain_http_or_https(url: str, why: str) -> None:
    text = FETCH.replace("http://127.0.0.1:8080/demo/orders", url)
    (found,) = problems(text)
    assert found.startswith("test.yaml:6:10: nodes.lookup.url: ") and why in found


def test_a_fetch_result_read_before_any_dip_is_still_unknown_elsewhere() -> None:
    text = FETCH.replace('"eta < 3 and', '"days < 3 and')
    (found,) = problems(text)
    assert found.startswith("test.yaml:13:10: nodes.route.if: variable 'days' is never set")
