"""The IVR interpreter: one ``IvrSession`` per call walks a validated ``Flow``.

Sans-I/O: the adapter asks for the first action with ``start()``, carries it out (plays a
prompt, waits for a digit, collects digits, says a value), reports what happened as an event
to ``handle()`` and gets the next action, until a terminal one: ``RouteToQueue``,
``RouteToAgent``, ``TransferTo``, ``SwitchFlow`` or ``Hangup``.

A menu is heard at most ``retries`` times: each hearing that ends with no digit or a digit
that is not an option is a failed try (its feedback prompt is played, if the menu has one);
after the last failed try the caller goes to ``on_exhausted``. A collect node works the same
way with whole entries: nothing entered, or digits that fail its length, check digit or
pattern, is a failed try.

A ``fetch`` node asks the adapter for an HTTP data dip (``FetchData``, answered with
``DataFetched``): the values its ``result`` names are copied from the JSON reply into
variables and the call goes to ``next``; a failed dip, or a reply missing one of them, sets
those variables to null and goes to ``on_failure``.

``set``, ``condition``, ``time`` and ``goto`` nodes need nothing from the caller: the session
passes through them at once (each still a step of the path). The validator refuses loops of
such links, so a silent caller always reaches an end.

Languages: a flow speaks the languages it lists (the first is the fallback); the session's
``language`` is ``call.language`` when the flow speaks it, else the fallback. A ``language``
node lets the caller choose; the adapter plays prompts and says values in ``language``.

Self-service: a ``faq`` node plays an answer and asks "did this solve it? 1 yes, 2 talk to a
person" (``faq_outcomes`` keeps each answer heard and the reply); a ``question`` node takes one
key as a survey answer (``survey_answers``); a ``callback`` node records the caller's name
(``RecordName``), has them confirm or key in the number to call, and asks the adapter to
store the request (``RegisterCallback``).

In a SAC flow (``policy: sac``) a person is always one key away: the attendant key pressed
during any prompt (play, menu, retry feedback), any say, at any menu, or keyed in as a whole
collect entry goes to the flow's ``attendant`` at once; that step's input is "attendant".
So every play prompt of a SAC flow is interruptible; other keys cutting one short keep their
usual meaning (the choice in a menu that follows, otherwise ignored).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum, auto
from types import MappingProxyType

from callcenter.core.checkdigits import CHECKS
from callcenter.core.expr import EvaluationError, InputValue, Value
from callcenter.core.flows.model import (
    BUILTIN_VARIABLES,
    DTMF_DIGITS,
    FAQ_NOT_SOLVED_KEY,
    FAQ_SOLVED_KEY,
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
)
from callcenter.core.hours import Override, decide
from callcenter.core.records import FaqOutcome, FaqResult, IvrStep, SurveyAnswer

# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class PlayPrompt:
    """Play a prompt. If ``interruptible``, a digit pressed during it ends it."""

    prompt: str
    interruptible: bool


@dataclass(frozen=True)
class WaitForDigit:
    """Wait up to ``timeout`` seconds for one digit."""

    timeout: float


@dataclass(frozen=True)
class RouteToQueue:
    """Terminal: hand the caller to the ACD queue; after the agent hangs up, run the flow
    ``survey`` if there is one."""

    queue: str
    survey: str | None = None
    priority: int = 0  # higher is served first
    skills: Mapping[str, int] = field(default_factory=dict, hash=False)  # skill -> level


@dataclass(frozen=True)
class Hangup:
    """Terminal: end the call (any goodbye prompt was already asked for)."""

    reason: str


@dataclass(frozen=True)
class CollectDigits:
    """Play ``prompt`` (a digit ends it and counts) and collect up to ``max_digits`` digits,
    waiting ``timeout`` seconds for each; ``terminator`` ("#" or None) ends the entry early.
    Answer with ``DigitsCollected`` (without the terminator)."""

    prompt: str
    max_digits: int
    timeout: float
    terminator: str | None


@dataclass(frozen=True)
class SayNumber:
    value: int


@dataclass(frozen=True)
class SayDigits:
    digits: str  # 0-9 only


@dataclass(frozen=True)
class SayDateTime:
    epoch: float  # POSIX seconds
    timezone: str  # IANA key, e.g. "America/Sao_Paulo"


@dataclass(frozen=True)
class SayMoney:
    amount: Decimal
    currency: str  # "BRL", "USD" or "EUR"


@dataclass(frozen=True)
class RouteToAgent:
    """Terminal: ring this agent directly; ``survey`` as for a queue."""

    agent_id: str
    survey: str | None = None


@dataclass(frozen=True)
class RecordName:
    """Beep, then record the caller saying their name: up to ``max_seconds``, '#' ends it.
    Answer with ``NameRecorded``."""

    max_seconds: int


@dataclass(frozen=True)
class RegisterCallback:
    """Store a request to call ``number`` back for ``queue``; answer ``CallbackRegistered``."""

    queue: str
    number: str
    name_recorded: bool


@dataclass(frozen=True)
class TransferTo:
    """Terminal: transfer out; ``kind`` "extension" (digits) or "external" (strict E.164)."""

    kind: str
    destination: str


@dataclass(frozen=True)
class SwitchFlow:
    """Terminal for this session: the adapter starts a new session on flow ``name``."""

    name: str


@dataclass(frozen=True)
class FetchData:
    """GET ``url`` with the query ``params`` (values already evaluated), waiting ``timeout``
    seconds per try and trying ``retries`` more times after a failed try. Answer with
    ``DataFetched``."""

    url: str
    params: Mapping[str, str]
    timeout: float
    retries: int


SayAction = SayNumber | SayDigits | SayDateTime | SayMoney
TerminalAction = RouteToQueue | RouteToAgent | TransferTo | SwitchFlow | Hangup
IvrAction = (
    PlayPrompt
    | WaitForDigit
    | CollectDigits
    | SayAction
    | FetchData
    | RecordName
    | RegisterCallback
    | TerminalAction
)

# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class PromptFinished:
    """The prompt ended; ``digit`` is the digit that interrupted it, if any."""

    digit: str | None = None


@dataclass(frozen=True)
class DigitReceived:
    digit: str


@dataclass(frozen=True)
class InputTimedOut:
    pass


@dataclass(frozen=True)
class DigitsCollected:
    """What the caller keyed in for ``CollectDigits``; "" when nothing was entered."""

    digits: str


@dataclass(frozen=True)
class SayFinished:
    """The value was said; ``digit`` pressed meanwhile is ignored."""

    digit: str | None = None


@dataclass(frozen=True)
class DataFetched:
    """The outcome of ``FetchData``: the parsed JSON object, or None and why it failed."""

    reply: Mapping[str, object] | None
    error: str | None = None


@dataclass(frozen=True)
class NameRecorded:
    """``RecordName`` is done; ``recorded`` is False when nothing usable was recorded."""

    recorded: bool


@dataclass(frozen=True)
class CallbackRegistered:
    """``RegisterCallback`` is done; ``error`` says why the request was not stored."""

    error: str | None = None


IvrEvent = (
    PromptFinished
    | DigitReceived
    | InputTimedOut
    | DigitsCollected
    | SayFinished
    | DataFetched
    | NameRecorded
    | CallbackRegistered
)
MAX_ERROR_LENGTH = 200  # of a failed data dip's error, as kept in the path
MAX_FETCHED_TEXT = 1000  # characters of one text value taken from a reply
CallVariables = Mapping[str, str | int | Decimal | bool | None]


class IvrProtocolError(RuntimeError):
    """The adapter used the session wrongly: an event it was not waiting for, or one too many."""


class _Phase(Enum):
    NOT_STARTED = auto()
    NODE_PROMPT = auto()  # playing the current node's own prompt
    WAITING_FOR_DIGIT = auto()  # after a menu prompt
    COLLECTING = auto()  # a collect node's CollectDigits
    SAYING = auto()  # a say node's Say* action
    FETCHING = auto()  # a fetch node's FetchData
    RETRY_PROMPT = auto()  # playing a menu's or collect's invalid/no-input prompt
    GOODBYE_PROMPT = auto()  # playing a hangup target's prompt
    FAQ_ANSWER = auto()  # playing a FAQ's answer (its question comes next)
    NAME_PROMPT = auto()  # "after the tone, say your name"
    RECORDING_NAME = auto()  # a callback node's RecordName
    NUMBER_IS = auto()  # "we will call you back at"
    SAYING_NUMBER = auto()  # the number to call, digit by digit
    CONFIRM_PROMPT = auto()  # "1 if it is right, 2 to key in another"
    WAITING_TO_CONFIRM = auto()
    ENTERING_NUMBER = auto()  # CollectDigits of another number
    REGISTERING = auto()  # RegisterCallback
    FINISHED = auto()


@dataclass(frozen=True)
class _Onward:
    """A node that needs nothing from the caller leads straight on."""

    target: Target
    why: str


# Nodes that wait for the caller and give them ``retries`` tries.
_Retrying = MenuNode | CollectNode | LanguageNode | FaqNode | QuestionNode
# Nodes that play their prompt and take one key as the caller's choice.
_CHOICE_NODES = (MenuNode, LanguageNode, QuestionNode)


class IvrSession:
    """One caller's walk through a flow. ``path`` records every node entered.

    ``variables``: the call's own values (caller.number, caller.name, call.dialed, call.id,
    call.language); built-ins not given are null. ``overrides(flow name)`` is the admin's
    open/closed switch for time nodes (none when not given).
    """

    def __init__(
        self,
        flow: Flow,
        now: float,
        variables: CallVariables | None = None,
        overrides: Callable[[str], Override] | None = None,
    ) -> None:
        self.flow = flow
        self.path: list[IvrStep] = []
        self.variables: dict[str, InputValue] = dict.fromkeys(sorted(BUILTIN_VARIABLES))
        self.variables.update(variables or {})
        if self.variables["call.language"] not in flow.languages:
            # Callers whose language the flow does not speak hear its fallback language.
            self.variables["call.language"] = flow.fallback_language
        self.faq_outcomes: list[FaqOutcome] = []
        self.survey_answers: list[SurveyAnswer] = []
        self._callback_number: str | None = None  # a callback node's number to confirm
        self._name_recorded = False
        self._overrides = overrides
        self._created_at = now
        self._phase = _Phase.NOT_STARTED
        self._node: FlowNode = flow.node(flow.start)
        self._tries = 0  # hearings of the current menu or collect so far
        self._hangup_reason = ""
        self._final_action: TerminalAction | None = None

    @property
    def finished(self) -> bool:
        return self._phase is _Phase.FINISHED

    @property
    def language(self) -> str:
        """The language prompts and says are in now (one of the flow's languages)."""
        language = self.variables["call.language"]
        return language if isinstance(language, str) else self.flow.fallback_language

    @property
    def current_node(self) -> str:
        return self._node.name

    @property
    def final_action(self) -> TerminalAction | None:
        """The terminal action, once the session is finished."""
        return self._final_action

    def start(self) -> IvrAction:
        if self._phase is not _Phase.NOT_STARTED:
            raise IvrProtocolError("start() was already called for this IVR session")
        return self._go(NodeTarget(self.flow.start), "start", self._created_at)

    def handle(self, event: IvrEvent, now: float) -> IvrAction:
        """The outcome of the last action; returns the next one. All transitions are here."""
        match self._phase, event:
            case _Phase.NOT_STARTED, _:
                raise IvrProtocolError("call start() before handle()")
            case _Phase.FINISHED, _:
                raise IvrProtocolError(
                    f"the IVR session already ended with {self._final_action}; "
                    f"no more events expected, got {event}"
                )
            # SAC: the attendant key wins over whatever the node would do with it.
            case (
                (
                    _Phase.NODE_PROMPT | _Phase.RETRY_PROMPT | _Phase.FAQ_ANSWER
                    | _Phase.NAME_PROMPT | _Phase.NUMBER_IS | _Phase.CONFIRM_PROMPT,
                    PromptFinished(digit=digit),
                )
                | (_Phase.WAITING_FOR_DIGIT | _Phase.WAITING_TO_CONFIRM, DigitReceived(digit=digit))
                | (_Phase.SAYING | _Phase.SAYING_NUMBER, SayFinished(digit=digit))
                | (_Phase.COLLECTING | _Phase.ENTERING_NUMBER, DigitsCollected(digits=digit))
            ) if self._asks_for_attendant(digit):
                return self._to_attendant(now)
            case _Phase.NODE_PROMPT, PromptFinished(digit=digit):
                match self._node:
                    case PlayNode(next=following):
                        action = self._go(following, "next", now)
                        if digit is not None and self._answers_menu():
                            # Barge-in: the key pressed during the prompt is the caller's
                            # choice in the menu that follows; its prompt is skipped.
                            return self._menu_input(self._retrying(), _checked_digit(digit), now)
                        return action
                    case MenuNode() | LanguageNode() | QuestionNode() | FaqNode() if digit is None:
                        self._phase = _Phase.WAITING_FOR_DIGIT
                        return WaitForDigit(self._retrying().timeout)
                    case MenuNode() | LanguageNode() | QuestionNode() | FaqNode():
                        return self._menu_input(self._retrying(), _checked_digit(digit), now)
            case _Phase.FAQ_ANSWER, PromptFinished(digit=digit):
                faq = self._faq()
                if digit in (FAQ_SOLVED_KEY, FAQ_NOT_SOLVED_KEY):  # replied during the answer
                    return self._menu_input(faq, digit, now)
                return self._ask_faq_question(faq)
            case _Phase.WAITING_FOR_DIGIT, DigitReceived(digit=digit):
                return self._menu_input(self._retrying(), _checked_digit(digit), now)
            case _Phase.WAITING_FOR_DIGIT, InputTimedOut():
                return self._failed_try(self._retrying(), "timeout", now)
            case _Phase.COLLECTING, DigitsCollected(digits=digits):
                return self._collected(self._collect(), digits, now)
            case _Phase.SAYING, SayFinished():
                return self._go(self._say().next, "next", now)
            case _Phase.FETCHING, DataFetched(reply=reply, error=error):
                return self._fetched(self._fetch(), reply, error, now)
            case _Phase.RETRY_PROMPT, PromptFinished():
                return self._after_failed_try(self._retrying(), now)
            case _Phase.GOODBYE_PROMPT, PromptFinished():
                return self._finish(Hangup(self._hangup_reason))
            case _Phase.NAME_PROMPT, PromptFinished():
                self._phase = _Phase.RECORDING_NAME
                return RecordName(self._callback().record_seconds)
            case _Phase.RECORDING_NAME, NameRecorded(recorded=recorded):
                self._name_recorded = recorded
                return self._offer_number(self._callback(), now)
            case _Phase.NUMBER_IS, PromptFinished():
                assert self._callback_number is not None, "only a known number is said"
                self._phase = _Phase.SAYING_NUMBER
                return SayDigits(self._callback_number)
            case _Phase.SAYING_NUMBER, SayFinished():
                self._phase = _Phase.CONFIRM_PROMPT
                return PlayPrompt(self._callback().confirm_prompt, interruptible=True)
            case _Phase.CONFIRM_PROMPT, PromptFinished(digit=None):
                self._phase = _Phase.WAITING_TO_CONFIRM
                return WaitForDigit(self._callback().timeout)
            case (
                (_Phase.CONFIRM_PROMPT, PromptFinished(digit=str() as digit))
                | (_Phase.WAITING_TO_CONFIRM, DigitReceived(digit=digit))
            ):
                return self._confirmed(self._callback(), _checked_digit(digit), now)
            case _Phase.WAITING_TO_CONFIRM, InputTimedOut():
                return self._callback_failed_try(self._callback(), "timeout", now)
            case _Phase.ENTERING_NUMBER, DigitsCollected(digits=digits):
                return self._number_entered(self._callback(), digits, now)
            case _Phase.REGISTERING, CallbackRegistered(error=error):
                return self._registered(self._callback(), error, now)
        raise IvrProtocolError(f"{event} does not answer {self._awaiting()}")

    # -- entering nodes

    def _enter(self, node: FlowNode, now: float, *, again: bool) -> IvrAction | _Onward:
        """Each hearing of a node is a step of the path; ``again`` repeats a menu or collect
        after a failed try, anything else (even an option leading back to the same node)
        starts afresh."""
        if not again:
            self._tries = 0
        self._node = node
        step = IvrStep(node=node.name, at=now)
        self.path.append(step)
        match node:
            case PlayNode(prompt=prompt, next=following):
                self._phase = _Phase.NODE_PROMPT
                # A key may cut the prompt short only where it means something: when the
                # next node is a menu, the key is the caller's choice there (barge-in).
                # In a SAC flow the attendant key is honoured during every prompt.
                leads_to_menu = isinstance(following, NodeTarget) and isinstance(
                    self.flow.node(following.node), _CHOICE_NODES)
                return PlayPrompt(prompt, interruptible=leads_to_menu or self.flow.is_sac)
            case MenuNode(prompt=prompt) | LanguageNode(prompt=prompt) | QuestionNode(
                prompt=prompt
            ):
                self._tries += 1
                self._phase = _Phase.NODE_PROMPT
                return PlayPrompt(prompt, interruptible=True)
            case FaqNode() if again:
                return self._ask_faq_question(node)
            case FaqNode(topic=topic, answer=answer):
                self.faq_outcomes.append(FaqOutcome(self.flow.name, topic, heard_at=now))
                self._phase = _Phase.FAQ_ANSWER
                return PlayPrompt(answer, interruptible=True)
            case CallbackNode(name_prompt=prompt):
                self._callback_number = _callback_number(node, self.variables["caller.number"])
                self._name_recorded = False
                self._phase = _Phase.NAME_PROMPT
                return PlayPrompt(prompt, interruptible=self.flow.is_sac)
            case CollectNode():
                self._tries += 1
                self._phase = _Phase.COLLECTING
                return CollectDigits(node.prompt, node.max_digits, node.timeout, node.terminator)
            case SayNode():
                return self._say_action(node, step)
            case SetNode(assignments=assignments, next=following):
                errors = []
                for name, expression in assignments.items():
                    try:
                        self.variables[name] = expression.evaluate(self.variables)
                    except EvaluationError as error:
                        self.variables[name] = None  # a failed value is null, never stale
                        errors.append(f"{name}: {error.message}")
                if errors:
                    step.input = "error: " + "; ".join(errors)
                return _Onward(following, "next")
            case ConditionNode(condition=condition, then=then, otherwise=otherwise):
                try:
                    holds = condition.evaluate_condition(self.variables)
                except EvaluationError as error:
                    step.input = f"error: {error.message}"
                    return _Onward(otherwise, "else (error)")
                step.input = "true" if holds else "false"
                return _Onward(then, "then") if holds else _Onward(otherwise, "else")
            case TimeNode(schedule=schedule, open=opened, closed=closed):
                override = self._overrides(self.flow.name) if self._overrides else Override.NONE
                decision = decide(schedule, now, override)
                state = "open" if decision.open else "closed"
                step.input = f"{state}: {decision.reason}"
                return _Onward(opened if decision.open else closed, state)
            case GotoNode(next=following):
                return _Onward(following, "next")
            case FetchNode():
                return self._fetch_action(node, step)
        raise AssertionError(f"unknown node {node!r}")

    def _say_action(self, node: SayNode, step: IvrStep) -> IvrAction | _Onward:
        """The Say* action for the node's value; a value that cannot be said is skipped."""
        try:
            action = _say(node, node.value.evaluate(self.variables))
        except EvaluationError as error:
            step.input = f"error: {error.message}"
            return _Onward(node.next, "next (nothing said)")
        self._phase = _Phase.SAYING
        return action

    def _fetch_action(self, node: FetchNode, step: IvrStep) -> IvrAction | _Onward:
        """The data dip's request; a parameter that cannot be evaluated skips the dip."""
        params: dict[str, str] = {}
        for name, expression in node.params.items():
            try:
                params[name] = _query_value(expression.evaluate(self.variables))
            except EvaluationError as error:
                self._clear_results(node)
                step.input = f"error: {name}: {error.message}"
                return _Onward(node.on_failure, "on_failure (parameter error)")
        self._phase = _Phase.FETCHING
        return FetchData(node.url, MappingProxyType(params), node.timeout, node.retries)

    def _fetched(
        self, node: FetchNode, reply: Mapping[str, object] | None, error: str | None, now: float
    ) -> IvrAction:
        """Copy the reply's values into variables (all or none), then move on."""
        if error is None and reply is None:
            error = "no reply"
        elif error is None and not isinstance(reply, Mapping):
            error = "the reply is not a JSON object"
        if error is not None or reply is None:
            shown = " ".join((error or "no reply").split())[:MAX_ERROR_LENGTH]
            return self._fetch_failed(node, f"failed: {shown}", now)
        values: dict[str, InputValue] = {}
        for variable, path in node.result.items():
            try:
                values[variable] = _pick(reply, path)
            except _MissingPath:
                return self._fetch_failed(node, f"missing: {path}", now)
            except EvaluationError as problem:
                return self._fetch_failed(node, f"failed: {path}: {problem.message}", now)
        self.variables.update(values)
        self.path[-1].input = "ok"
        return self._go(node.next, "next", now)

    def _fetch_failed(self, node: FetchNode, why: str, now: float) -> IvrAction:
        self._clear_results(node)
        self.path[-1].input = why
        return self._go(node.on_failure, "on_failure", now)

    def _clear_results(self, node: FetchNode) -> None:
        """A failed dip leaves its variables null, never stale from an earlier dip."""
        for variable in node.result:
            self.variables[variable] = None

    # -- input

    def _menu_input(self, node: _Retrying, digit: str, now: float) -> IvrAction:
        """One key at a node that takes one: its choice, or a failed try."""
        choice = self._choice(node, digit, now)
        if choice is None:
            return self._failed_try(node, f"invalid:{digit}", now)
        target, why = choice
        return self._go(target, why, now)

    def _choice(self, node: _Retrying, digit: str, now: float) -> tuple[Target, str] | None:
        """Where a key leads at a node, doing what choosing it means (a language, a FAQ
        reply, a survey answer); None when the key is not one of its choices."""
        match node:
            case MenuNode(options=options) if digit in options:
                self.path[-1].input = digit
                return options[digit], f"option {digit}"
            case LanguageNode(options=options, next=following) if digit in options:
                self.variables["call.language"] = options[digit]
                self.path[-1].input = options[digit]
                return following, f"language {options[digit]}"
            case FaqNode() if digit in (FAQ_SOLVED_KEY, FAQ_NOT_SOLVED_KEY):
                solved = digit == FAQ_SOLVED_KEY
                result = FaqResult.SOLVED if solved else FaqResult.NOT_SOLVED
                self._faq_result(result, now)
                return (node.solved, "solved") if solved else (node.not_solved, "not solved")
            case QuestionNode(answers=answers) if digit in answers:
                answer = answers[digit]
                self.survey_answers.append(
                    SurveyAnswer(self.flow.name, node.question, answer, answered_at=now))
                if node.variable is not None:
                    self.variables[node.variable] = answer
                self.path[-1].input = f"answer {answer}"
                return node.next, f"answer {answer}"
        return None

    def _faq_result(self, result: FaqResult, now: float) -> None:
        outcome = self.faq_outcomes[-1]
        outcome.result = result
        outcome.answered_at = now
        self.path[-1].input = result.value

    def _ask_faq_question(self, faq: FaqNode) -> IvrAction:
        self._tries += 1
        self._phase = _Phase.NODE_PROMPT
        return PlayPrompt(faq.question, interruptible=True)

    def _collected(self, node: CollectNode, digits: str, now: float) -> IvrAction:
        if len(digits) > node.max_digits or any(d not in DTMF_DIGITS for d in digits):
            raise IvrProtocolError(
                f"{digits!r} is not an entry of at most {node.max_digits} DTMF digits"
            )
        if not digits:
            return self._failed_try(node, "timeout", now)
        problem = _entry_problem(node, digits)
        if problem is not None:
            return self._failed_try(node, f"invalid: {problem}", now)
        self.variables[node.variable] = digits
        # The digits themselves may be a card or CPF number: the path keeps only their count.
        self.path[-1].input = f"{len(digits)} digits"
        return self._go(node.next, "next", now)

    def _failed_try(self, node: _Retrying, what: str, now: float) -> IvrAction:
        self.path[-1].input = what
        feedback = node.timeout_prompt if what == "timeout" else node.invalid_prompt
        if feedback is None:
            return self._after_failed_try(node, now)
        self._phase = _Phase.RETRY_PROMPT
        return PlayPrompt(feedback, interruptible=self.flow.is_sac)

    def _after_failed_try(self, node: _Retrying, now: float) -> IvrAction:
        if self._tries < node.retries:
            return self._entered(self._enter(node, now, again=True), now)
        if isinstance(node, FaqNode):
            self._faq_result(FaqResult.NO_ANSWER, now)
        what = "entry" if isinstance(node, CollectNode) else "choice"
        return self._go(node.on_exhausted, f"no valid {what} after {node.retries} tries", now)

    # -- the callback request

    def _offer_number(self, node: CallbackNode, now: float) -> IvrAction:
        """Say the number to call back and ask to confirm it, or ask for one."""
        if self._callback_number is None:
            self._phase = _Phase.ENTERING_NUMBER
            return CollectDigits(node.enter_prompt, node.max_digits, node.timeout, "#")
        self._phase = _Phase.NUMBER_IS
        return PlayPrompt(node.number_prompt, interruptible=self.flow.is_sac)

    def _confirmed(self, node: CallbackNode, digit: str, now: float) -> IvrAction:
        match digit:
            case "1":
                assert self._callback_number is not None, "only a known number is confirmed"
                self._phase = _Phase.REGISTERING
                return RegisterCallback(node.queue, self._callback_number, self._name_recorded)
            case "2":
                self._callback_number = None
                return self._offer_number(node, now)
        return self._callback_failed_try(node, f"invalid:{digit}", now)

    def _number_entered(self, node: CallbackNode, digits: str, now: float) -> IvrAction:
        if len(digits) > node.max_digits or any(d not in DTMF_DIGITS for d in digits):
            raise IvrProtocolError(
                f"{digits!r} is not an entry of at most {node.max_digits} DTMF digits")
        if not digits:
            return self._callback_failed_try(node, "timeout", now)
        if not digits.isdigit() or len(digits) < node.min_digits:
            return self._callback_failed_try(
                node, f"invalid: not a number of {node.min_digits}-{node.max_digits} digits",
                now)
        self._callback_number = digits
        return self._offer_number(node, now)

    def _callback_failed_try(self, node: CallbackNode, what: str, now: float) -> IvrAction:
        self._tries += 1
        self.path[-1].input = what
        if self._tries < node.retries:
            return self._offer_number(node, now)
        return self._go(node.on_failure, f"no number confirmed after {node.retries} tries", now)

    def _registered(self, node: CallbackNode, error: str | None, now: float) -> IvrAction:
        if error is not None:
            shown = " ".join(error.split())[:MAX_ERROR_LENGTH]
            self.path[-1].input = f"failed: {shown}"
            return self._go(node.on_failure, "the request was not stored", now)
        # The number is the caller's own: the path keeps only its length.
        assert self._callback_number is not None
        self.path[-1].input = f"registered ({len(self._callback_number)} digits)"
        return self._go(node.next, "next", now)

    # -- moving on

    def _go(self, target: Target, why: str, now: float) -> IvrAction:
        """Follow a target, passing through nodes that need nothing from the caller."""
        for _ in range(len(self.flow.nodes) + 1):  # the validator refuses silent loops
            match target:
                case QueueTarget(queue=queue, survey=survey, priority=priority,
                                 skills=skills):
                    return self._finish(RouteToQueue(queue, survey, priority, skills))
                case AgentTarget(agent=agent, survey=survey):
                    return self._finish(RouteToAgent(agent, survey))
                case TransferTarget(kind=kind, destination=destination):
                    return self._finish(TransferTo(kind, destination))
                case FlowTarget(flow=name):
                    return self._finish(SwitchFlow(name))
                case HangupTarget(prompt=prompt):
                    self._hangup_reason = f"{self._node.name}: {why}"
                    if prompt is None:
                        return self._finish(Hangup(self._hangup_reason))
                    self._phase = _Phase.GOODBYE_PROMPT
                    return PlayPrompt(prompt, interruptible=False)
                case NodeTarget(node=name):
                    outcome = self._enter(self.flow.node(name), now, again=False)
                    if not isinstance(outcome, _Onward):
                        return outcome
                    target, why = outcome.target, outcome.why
        return self._finish(Hangup(f"{self._node.name}: nodes loop without caller input"))

    def _entered(self, outcome: IvrAction | _Onward, now: float) -> IvrAction:
        return (
            self._go(outcome.target, outcome.why, now) if isinstance(outcome, _Onward) else outcome
        )

    def _finish(self, action: TerminalAction) -> IvrAction:
        self._phase = _Phase.FINISHED
        self._final_action = action
        return action

    def _asks_for_attendant(self, keys: str | None) -> bool:
        """In a SAC flow, is this the attendant key (alone)?"""
        return self.flow.is_sac and keys == self.flow.attendant_key

    def _to_attendant(self, now: float) -> IvrAction:
        assert self.flow.attendant is not None, "the validator requires it in a SAC flow"
        if isinstance(self._node, FaqNode) and self.faq_outcomes[-1].answered_at is None:
            self._faq_result(FaqResult.NOT_SOLVED, now)  # they asked for a person
        self.path[-1].input = "attendant"
        return self._go(self.flow.attendant, "attendant", now)

    def _answers_menu(self) -> bool:
        """Did following a play node just start a menu's prompt (nothing heard of it yet)?"""
        return isinstance(self._node, _CHOICE_NODES) and self._phase is _Phase.NODE_PROMPT

    def _retrying(self) -> _Retrying:
        assert isinstance(self._node, _Retrying), "only nodes waiting for the caller retry"
        return self._node

    def _faq(self) -> FaqNode:
        assert isinstance(self._node, FaqNode), "only FAQ nodes play answers"
        return self._node

    def _callback(self) -> CallbackNode:
        assert isinstance(self._node, CallbackNode), "only callback nodes take callbacks"
        return self._node

    def _collect(self) -> CollectNode:
        assert isinstance(self._node, CollectNode), "only collect nodes collect digits"
        return self._node

    def _fetch(self) -> FetchNode:
        assert isinstance(self._node, FetchNode), "only fetch nodes fetch data"
        return self._node

    def _say(self) -> SayNode:
        assert isinstance(self._node, SayNode), "only say nodes say values"
        return self._node

    def _awaiting(self) -> str:
        return {
            _Phase.NODE_PROMPT: f"the prompt of node {self._node.name!r} (PromptFinished)",
            _Phase.WAITING_FOR_DIGIT: "WaitForDigit (DigitReceived or InputTimedOut)",
            _Phase.COLLECTING: "CollectDigits (DigitsCollected)",
            _Phase.SAYING: f"the say node {self._node.name!r} (SayFinished)",
            _Phase.FETCHING: f"the data dip of node {self._node.name!r} (DataFetched)",
            _Phase.RETRY_PROMPT: "a retry prompt (PromptFinished)",
            _Phase.GOODBYE_PROMPT: "the goodbye prompt (PromptFinished)",
            _Phase.FAQ_ANSWER: f"the answer of FAQ node {self._node.name!r} (PromptFinished)",
            _Phase.NAME_PROMPT: "the callback name prompt (PromptFinished)",
            _Phase.RECORDING_NAME: "RecordName (NameRecorded)",
            _Phase.NUMBER_IS: "the callback number prompt (PromptFinished)",
            _Phase.SAYING_NUMBER: "SayDigits of the callback number (SayFinished)",
            _Phase.CONFIRM_PROMPT: "the callback confirm prompt (PromptFinished)",
            _Phase.WAITING_TO_CONFIRM: "WaitForDigit (DigitReceived or InputTimedOut)",
            _Phase.ENTERING_NUMBER: "CollectDigits of the callback number (DigitsCollected)",
            _Phase.REGISTERING: "RegisterCallback (CallbackRegistered)",
        }[self._phase]


class _MissingPath(LookupError):
    """The reply has no value at a result path."""


def _pick(reply: Mapping[str, object], path: str) -> InputValue:
    """The value at a dotted path of a JSON object, as a call variable holds it.
    ``_MissingPath`` when it is not there; EvaluationError when it is not a single value."""
    value: object = reply
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            raise _MissingPath(path)
        value = value[key]
    match value:
        case None | bool() | int():
            return value
        case float() if math.isfinite(value):
            return Decimal(str(value))  # the digits the reply showed, exactly
        case str() if len(value) <= MAX_FETCHED_TEXT:
            return value
        case str():
            raise EvaluationError(f"text longer than {MAX_FETCHED_TEXT} characters")
    kind = {list: "a list", dict: "an object"}.get(type(value), type(value).__name__)
    raise EvaluationError(f"expected text, a number, true/false or null, got {kind}")


def _query_value(value: Value) -> str:
    """A query parameter's text; a null value is an error (nothing to ask for)."""
    match value:
        case None:
            raise EvaluationError("the value is null")
        case bool():
            return "true" if value else "false"
        case Decimal():
            return format(value, "f")  # never "1E+3"
        case _:
            return str(value)


def _callback_number(node: CallbackNode, caller_number: InputValue) -> str | None:
    """The caller ID as a number to offer for the callback (digits only, "+" dropped),
    or None when there is no usable one (the caller keys it in)."""
    if not isinstance(caller_number, str):
        return None
    digits = caller_number.removeprefix("+")
    if digits.isascii() and digits.isdigit() and node.min_digits <= len(digits) <= node.max_digits:
        return digits
    return None


def _checked_digit(digit: str | None) -> str:
    if digit is None or len(digit) != 1 or digit not in DTMF_DIGITS:
        raise IvrProtocolError(f"{digit!r} is not a DTMF digit (0-9, *, #)")
    return digit


def _entry_problem(node: CollectNode, digits: str) -> str | None:
    """Why an entry is not valid for the node, or None when it is."""
    if len(digits) < node.min_digits:
        return f"too short ({len(digits)} of at least {node.min_digits} digits)"
    if node.pattern is None and not digits.isdigit():  # only * or # need a pattern's blessing
        return "not only digits 0-9"
    if node.check is not None and not CHECKS[node.check](digits):
        return f"{node.check} check failed"
    if node.pattern is not None:
        try:
            matched = node.pattern.evaluate_condition({"digits": digits})
        except EvaluationError as error:
            return f"pattern failed: {error.message}"
        if not matched:
            return "does not match the pattern"
    return None


def _say(node: SayNode, value: Value) -> SayAction:
    """The action that says ``value`` as the node's kind; EvaluationError when it cannot."""
    number = value if isinstance(value, int | Decimal) and not isinstance(value, bool) else None
    match node.kind:
        case "number":
            if number is None or number != int(number):
                raise EvaluationError(f"a whole number is needed, got {value!r}")
            return SayNumber(int(number))
        case "digits":
            digits = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
            if not isinstance(digits, str) or not digits.isascii() or not digits.isdigit():
                raise EvaluationError(f"digits 0-9 are needed, got {value!r}")
            return SayDigits(digits)
        case "datetime":
            if number is None:
                raise EvaluationError(f"an instant in POSIX seconds is needed, got {value!r}")
            return SayDateTime(float(number), node.timezone)
        case _:
            if number is None:
                raise EvaluationError(f"an amount is needed, got {value!r}")
            assert node.currency is not None, "the validator requires a currency for money"
            return SayMoney(Decimal(number), node.currency)
