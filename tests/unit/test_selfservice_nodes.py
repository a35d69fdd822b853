"""Language choice, FAQ answers, survey questions and callback requests in the IVR core."""

from __future__ import annotations

import textwrap

import pytest

from callcenter.core.flows import Flow, FlowError, parse_flow
from callcenter.core.ivr import (
    CallbackRegistered,
    CollectDigits,
    DigitReceived,
    DigitsCollected,
    Hangup,
    InputTimedOut,
    IvrSession,
    NameRecorded,
    PlayPrompt,
    PromptFinished,
    RecordName,
    RegisterCallback,
    RouteToAgent,
    RouteToQueue,
    SayDigits,
    SayFinished,
    WaitForDigit,
)
from callcenter.core.records import FaqResult, SurveyAnswer

T0 = 1_800_000_000.0
QUEUES = ("support", "operator")


def parse(text: str, prompts: dict[str, set[str]] | None = None,
          known_flows: tuple[str, ...] | None = None) -> Flow:
    """``prompts``: language -> prompt names there; None: every prompt exists everywhere."""

    def exists(name: str, language: str) -> bool:
        return prompts is None or name in prompts.get(language, set())

    return parse_flow(textwrap.dedent(text), "t.yaml", known_queues=QUEUES,
                      prompt_exists=exists, known_flows=known_flows)


def problems(text: str, prompts: dict[str, set[str]] | None = None,
             known_flows: tuple[str, ...] | None = None) -> list[str]:
    with pytest.raises(FlowError) as caught:
        parse(text, prompts, known_flows)
    return [str(p) for p in caught.value.problems]


class Call:
    def __init__(self, flow: Flow, **variables: object) -> None:
        self.now = T0
        self.session = IvrSession(flow, self.now, variables)  # type: ignore[arg-type]
        self.last = self.session.start()

    def send(self, event: object) -> object:
        self.now += 1
        self.last = self.session.handle(event, self.now)  # type: ignore[arg-type]
        return self.last

    def inputs(self) -> list[tuple[str, str | None]]:
        return [(s.node, s.input) for s in self.session.path]


# --------------------------------------------------------------------------- languages

LANGUAGES = """\
    name: lang
    languages: [pt_BR, en]
    start: choose
    nodes:
      choose:
        type: language
        prompt: choose-language
        options: {"1": pt_BR, "2": en}
        retries: 2
        next: {node: menu}
      menu:
        type: menu
        prompt: main-menu
        options: {"1": {queue: support}}
        on_exhausted: {hangup: true}
"""


def test_the_caller_chooses_a_language_and_the_session_speaks_it_from_then_on() -> None:
    call = Call(parse(LANGUAGES), **{"call.language": "pt_BR"})
    assert call.session.language == "pt_BR"
    assert call.last == PlayPrompt("choose-language", interruptible=True)
    assert call.send(PromptFinished()) == WaitForDigit(5.0)
    assert call.send(DigitReceived("2")) == PlayPrompt("main-menu", interruptible=True)
    assert call.session.language == "en"
    assert call.session.variables["call.language"] == "en"
    assert call.inputs() == [("choose", "en"), ("menu", None)]


def test_a_key_pressed_during_the_language_prompt_is_the_choice() -> None:
    call = Call(parse(LANGUAGES))
    assert call.send(PromptFinished("2")) == PlayPrompt("main-menu", interruptible=True)
    assert call.session.language == "en"


def test_without_a_valid_choice_the_language_stays_and_the_call_goes_on() -> None:
    call = Call(parse(LANGUAGES), **{"call.language": "en"})
    call.send(PromptFinished("7"))  # not an option: a failed try
    assert call.last == PlayPrompt("choose-language", interruptible=True)
    call.send(PromptFinished())
    assert call.send(InputTimedOut()) == PlayPrompt("main-menu", interruptible=True)
    assert call.session.language == "en"
    assert call.inputs() == [("choose", "invalid:7"), ("choose", "timeout"), ("menu", None)]


def test_a_caller_whose_language_the_flow_does_not_speak_hears_the_fallback() -> None:
    call = Call(parse(LANGUAGES), **{"call.language": "es"})
    assert call.session.language == "pt_BR"  # the first of languages
    assert call.session.variables["call.language"] == "pt_BR"


def test_every_prompt_is_checked_in_every_language_of_the_flow() -> None:
    prompts = {"pt_BR": {"choose-language", "main-menu"}, "en": {"choose-language"}}
    assert problems(LANGUAGES, prompts) == [
        "t.yaml:13:13: nodes.menu.prompt: prompt 'main-menu' not found for language en",
    ]


def test_a_flow_without_languages_speaks_the_default_one_and_offers_no_other() -> None:
    text = LANGUAGES.replace("    languages: [pt_BR, en]\n", "")
    assert problems(text) == [
        "t.yaml:7:20: nodes.choose.options.1: 'pt_BR' is not one of the flow's languages (en); "
        "add it to languages at the top",
    ]


@pytest.mark.parametrize(
    ("languages", "expected"),
    [
        ("[]", "t.yaml:2:12: languages: expected a list of language codes like [en, pt_BR] "
               "(the first is the fallback), got a list"),
        ("[en, en]", "t.yaml:2:17: languages[1]: 'en' is listed twice"),
        ("[english]", "t.yaml:2:13: languages[0]: 'english' is not a valid language code (like "
                      "en or pt_BR, as the prompt folders)"),
        ("pt_BR", "t.yaml:2:12: languages: expected a list of language codes like [en, pt_BR] "
                  "(the first is the fallback), got text 'pt_BR'"),
    ],
)
def test_bad_language_lists_are_refused(languages: str, expected: str) -> None:
    text = LANGUAGES.replace("[pt_BR, en]", languages)
    assert problems(text) == [expected]


# --------------------------------------------------------------------------- FAQ

FAQ = """\
    name: faq
    start: hours
    nodes:
      hours:
        type: faq
        topic: opening-hours
        answer: faq-hours
        retries: 2
        solved: {hangup: true, prompt: goodbye}
        not_solved: {queue: support}
"""


def test_a_faq_answer_then_yes_it_solved_it() -> None:
    call = Call(parse(FAQ))
    assert call.last == PlayPrompt("faq-hours", interruptible=True)
    assert call.send(PromptFinished()) == PlayPrompt("faq-did-this-solve-it", interruptible=True)
    assert call.send(PromptFinished()) == WaitForDigit(5.0)
    assert call.send(DigitReceived("1")) == PlayPrompt("goodbye", interruptible=False)
    assert call.send(PromptFinished()) == Hangup("hours: solved")
    [outcome] = call.session.faq_outcomes
    assert (outcome.flow, outcome.topic, outcome.result) == ("faq", "opening-hours", "solved")
    assert (outcome.heard_at, outcome.answered_at) == (T0, T0 + 3)
    assert call.inputs() == [("hours", "solved")]


def test_two_during_the_answer_reaches_a_person_at_once() -> None:
    call = Call(parse(FAQ))
    assert call.send(PromptFinished("2")) == RouteToQueue("support")
    assert call.session.faq_outcomes[0].result is FaqResult.NOT_SOLVED


def test_no_reply_replays_only_the_question_then_sends_the_caller_to_a_person() -> None:
    call = Call(parse(FAQ))
    call.send(PromptFinished())
    call.send(PromptFinished())
    assert call.send(InputTimedOut()) == PlayPrompt("faq-did-this-solve-it", interruptible=True)
    call.send(PromptFinished("5"))  # not 1 or 2
    assert call.last == RouteToQueue("support")
    assert call.session.faq_outcomes[0].result is FaqResult.NO_ANSWER
    assert call.inputs() == [("hours", "timeout"), ("hours", "no_answer")]


def test_a_caller_who_hangs_up_during_the_answer_leaves_an_open_outcome() -> None:
    call = Call(parse(FAQ))
    [outcome] = call.session.faq_outcomes
    assert outcome.result is FaqResult.HUNG_UP and outcome.answered_at is None


def test_the_attendant_key_in_a_sac_flow_counts_as_not_solved() -> None:
    text = """\
        name: faq
        policy: sac
        attendant: {queue: operator}
        start: protocol
        nodes:
          protocol: {type: say, kind: digits, value: call.protocol, next: {node: hours}}
          hours:
            type: faq
            answer: faq-hours
            solved: {hangup: true}
            not_solved: {queue: support}
    """
    call = Call(parse(text), **{"call.protocol": "1"})
    call.send(SayFinished())
    assert call.send(PromptFinished("0")) == RouteToQueue("operator")
    assert call.session.faq_outcomes[0].result is FaqResult.NOT_SOLVED
    assert call.session.faq_outcomes[0].topic == "hours"  # the node name by default


def test_a_faq_needs_its_question_prompt_recorded() -> None:
    prompts = {"en": {"faq-hours", "goodbye"}}
    assert problems(FAQ, prompts) == [
        "t.yaml:4:3: nodes.hours: the default question 'faq-did-this-solve-it' is not found; "
        "record it or name another with question",
    ]


def test_a_faq_that_loops_back_when_nobody_answers_is_refused() -> None:
    text = FAQ.replace("not_solved: {queue: support}", "not_solved: {node: hours}")
    assert problems(text) == [
        "t.yaml:4:3: nodes.hours: a caller who presses nothing loops forever (hours -> hours); "
        "next/on_exhausted must end at a queue or a hangup",
    ]


# --------------------------------------------------------------------------- surveys

SURVEY = """\
    name: csat
    start: rating
    nodes:
      rating:
        type: question
        id: agent-rating
        prompt: survey-rate-1-5
        answers: "1-5"
        variable: rating
        next: {node: solved}
      solved:
        type: question
        prompt: survey-solved
        answers: {1: "yes", 2: "no"}
        next: {hangup: true, prompt: goodbye}
"""


def test_survey_answers_are_kept_with_their_question_and_time() -> None:
    call = Call(parse(SURVEY))
    assert call.last == PlayPrompt("survey-rate-1-5", interruptible=True)
    call.send(PromptFinished("4"))
    assert call.last == PlayPrompt("survey-solved", interruptible=True)
    call.send(PromptFinished())
    call.send(DigitReceived("2"))
    assert call.session.survey_answers == [
        SurveyAnswer("csat", "agent-rating", "4", T0 + 1),
        SurveyAnswer("csat", "solved", "no", T0 + 3),
    ]
    assert call.session.variables["rating"] == "4"
    assert call.inputs() == [("rating", "answer 4"), ("solved", "answer no")]


def test_an_unanswered_question_stores_nothing_and_the_survey_goes_on() -> None:
    call = Call(parse(SURVEY))
    for _ in range(3):
        call.send(PromptFinished("9"))  # out of the range, three times
    assert call.last == PlayPrompt("survey-solved", interruptible=True)
    assert call.session.survey_answers == []


@pytest.mark.parametrize("answers", ['"5-1"', '"1-10"', '"a-z"'])
def test_bad_answer_ranges_are_refused(answers: str) -> None:
    found = problems(SURVEY.replace('"1-5"', answers))
    assert found == [f"t.yaml:8:14: nodes.rating.answers: expected a range of keys like '1-5', "
                     f"got {answers.strip(chr(34))!r}"]


def test_a_queue_target_names_the_survey_the_caller_gets_after_the_agent_hangs_up() -> None:
    text = """\
        name: main
        start: menu
        nodes:
          menu:
            type: menu
            prompt: main-menu
            options:
              "1": {queue: support, survey: csat}
              "2": {agent: alice, survey: csat}
            on_exhausted: {hangup: true, survey: csat}
    """
    assert problems(text, known_flows=("csat",)) == [
        "t.yaml:10:34: nodes.menu.on_exhausted: survey is only allowed with a queue or an agent "
        "(it starts when the agent hangs up)",
    ]
    assert problems(text.replace("hangup: true, survey: csat", "hangup: true"),
                    known_flows=("other",))[0] == (
        "t.yaml:8:37: nodes.menu.options.1.survey: unknown flow name 'csat' (known: other)")
    flow = parse(text.replace("hangup: true, survey: csat", "hangup: true"))
    assert Call(flow).send(PromptFinished("1")) == RouteToQueue("support", "csat")
    assert Call(flow).send(PromptFinished("2")) == RouteToAgent("alice", "csat")


# --------------------------------------------------------------------------- callbacks

CALLBACK = """\
    name: cb
    start: callback
    nodes:
      callback:
        type: callback
        queue: support
        record_seconds: 4
        retries: 2
        next: {hangup: true, prompt: goodbye}
        on_failure: {queue: operator}
"""


def test_a_callback_with_the_caller_id_confirmed() -> None:
    call = Call(parse(CALLBACK), **{"caller.number": "+5511987654321"})
    assert call.last == PlayPrompt("callback-record-name", interruptible=False)
    assert call.send(PromptFinished()) == RecordName(4)
    assert call.send(NameRecorded(True)) == PlayPrompt("callback-number-is", interruptible=False)
    assert call.send(PromptFinished()) == SayDigits("5511987654321")
    assert call.send(SayFinished()) == PlayPrompt("callback-confirm", interruptible=True)
    assert call.send(PromptFinished()) == WaitForDigit(5.0)
    assert call.send(DigitReceived("1")) == RegisterCallback("support", "5511987654321", True)
    assert call.send(CallbackRegistered()) == PlayPrompt("goodbye", interruptible=False)
    assert call.inputs() == [("callback", "registered (13 digits)")]  # never the number


def test_the_caller_keys_in_another_number_and_confirms_it() -> None:
    call = Call(parse(CALLBACK), **{"caller.number": "+5511987654321"})
    call.send(PromptFinished())
    call.send(NameRecorded(False))
    call.send(PromptFinished())
    call.send(SayFinished())
    assert call.send(PromptFinished("2")) == CollectDigits("callback-enter-number", 15, 5.0, "#")
    assert call.send(DigitsCollected("1133334444")) == PlayPrompt(
        "callback-number-is", interruptible=False)
    assert call.send(PromptFinished()) == SayDigits("1133334444")
    call.send(SayFinished())
    assert call.send(PromptFinished("1")) == RegisterCallback("support", "1133334444", False)


def test_without_a_caller_id_the_number_is_keyed_in_and_short_ones_are_retried() -> None:
    call = Call(parse(CALLBACK), **{"caller.number": "anonymous"})
    call.send(PromptFinished())
    assert call.send(NameRecorded(True)) == CollectDigits("callback-enter-number", 15, 5.0, "#")
    assert call.send(DigitsCollected("123")) == CollectDigits(
        "callback-enter-number", 15, 5.0, "#")
    assert call.send(DigitsCollected("")) == RouteToQueue("operator")
    assert call.inputs() == [("callback", "timeout")]


def test_a_request_the_store_refused_goes_to_on_failure() -> None:
    call = Call(parse(CALLBACK), **{"caller.number": "5511987654321"})
    call.send(PromptFinished())
    call.send(NameRecorded(True))
    call.send(PromptFinished())
    call.send(SayFinished())
    call.send(PromptFinished("1"))
    assert call.send(CallbackRegistered("database is down")) == RouteToQueue("operator")
    assert call.inputs() == [("callback", "failed: database is down")]


def test_a_callback_to_an_unknown_queue_or_with_missing_prompts_is_refused() -> None:
    text = CALLBACK.replace("queue: support", "queue: billing")
    prompts = {"en": {"goodbye", "callback-number-is", "callback-confirm",
                      "callback-enter-number"}}
    assert problems(text, prompts) == [
        "t.yaml:4:3: nodes.callback: the default name_prompt 'callback-record-name' is not "
        "found; record it or name another with name_prompt",
        "t.yaml:6:12: nodes.callback.queue: unknown queue 'billing' (known: operator, support)",
    ]
