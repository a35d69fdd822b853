"""The IVR flow model: a validated, frozen ``Flow`` of typed nodes and targets.

``checker.parse_flow`` builds it from a flow file; ``core/ivr.py`` runs it for one call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from callcenter.core.expr import Expression
from callcenter.core.hours import Schedule

DTMF_DIGITS = "0123456789*#"
DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 3
# Variables every call has (the adapter fills them; absent ones are null).
BUILTIN_VARIABLES = frozenset(
    {"caller.number", "caller.name", "call.dialed", "call.id", "call.language", "call.protocol"}
)
SAY_KINDS = ("number", "digits", "datetime", "money")
CURRENCIES = ("BRL", "USD", "EUR")
DEFAULT_TERMINATOR = "#"
DEFAULT_ATTENDANT_KEY = "0"
DEFAULT_MAX_MENU_DEPTH = 3
DEFAULT_LANGUAGE = "en"
FAQ_SOLVED_KEY = "1"  # "did this solve it? 1 yes, 2 talk to a person"
FAQ_NOT_SOLVED_KEY = "2"
DEFAULT_RECORD_SECONDS = 5
DEFAULT_CALLBACK_MIN_DIGITS = 8
DEFAULT_CALLBACK_MAX_DIGITS = 15
# The prompts a callback node plays unless the flow names others (ivr_prompts/prompts.toml).
CALLBACK_PROMPTS = {
    "name_prompt": "callback-record-name",
    "number_prompt": "callback-number-is",
    "confirm_prompt": "callback-confirm",
    "enter_prompt": "callback-enter-number",
}


@dataclass(frozen=True)
class QueueTarget:
    """Hand the caller to an ACD queue; the IVR is done. ``survey``: a flow the caller is
    sent to when the agent hangs up (post-call survey). ``priority``: higher is served
    first (e.g. 10 for a VIP found by a data dip); ``skills``: skill -> the level (1-10) an
    agent needs to take the call (the queue's relax_every lowers it as the wait grows)."""

    queue: str
    survey: str | None = None
    priority: int = 0
    skills: Mapping[str, int] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class NodeTarget:
    """Go on to another node of the same flow."""

    node: str


@dataclass(frozen=True)
class HangupTarget:
    """End the call, after playing ``prompt`` if there is one."""

    prompt: str | None = None


@dataclass(frozen=True)
class AgentTarget:
    """Ring one agent directly (their PJSIP endpoint); the IVR is done. ``survey`` as for
    a queue."""

    agent: str
    survey: str | None = None


@dataclass(frozen=True)
class TransferTarget:
    """Transfer out of the IVR: ``kind`` "extension" (digits) or "external" (E.164)."""

    kind: str
    destination: str


@dataclass(frozen=True)
class FlowTarget:
    """Continue in another call flow (by its name); this flow is done."""

    flow: str


Target = QueueTarget | NodeTarget | HangupTarget | AgentTarget | TransferTarget | FlowTarget


@dataclass(frozen=True)
class PlayNode:
    """Play a prompt (digits pressed meanwhile are ignored), then go to ``next``."""

    name: str
    prompt: str
    next: Target


@dataclass(frozen=True)
class MenuNode:
    """Play a prompt and wait for one digit; after ``retries`` failed tries, ``on_exhausted``."""

    name: str
    prompt: str
    options: Mapping[str, Target]  # DTMF digit -> where it leads
    on_exhausted: Target
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    invalid_prompt: str | None = None
    timeout_prompt: str | None = None


@dataclass(frozen=True)
class SetNode:
    """Set call variables, in file order (later ones see earlier ones), then go to ``next``."""

    name: str
    assignments: Mapping[str, Expression]
    next: Target


@dataclass(frozen=True)
class ConditionNode:
    """Go to ``then`` when the condition is true, to ``otherwise`` when false or failing."""

    name: str
    condition: Expression
    then: Target
    otherwise: Target


@dataclass(frozen=True)
class CollectNode:
    """Play a prompt and collect several digits into ``variable``; validated, with retries."""

    name: str
    prompt: str
    variable: str
    max_digits: int
    next: Target
    on_exhausted: Target
    min_digits: int = 1
    terminator: str | None = DEFAULT_TERMINATOR
    timeout: float = DEFAULT_TIMEOUT  # seconds between digits
    retries: int = DEFAULT_RETRIES
    check: str | None = None  # a name in checkdigits.CHECKS
    # ``matches(digits, <pattern>)``: the admin's regex, checked by expr's pattern safety rules.
    pattern: Expression | None = None
    invalid_prompt: str | None = None
    timeout_prompt: str | None = None


@dataclass(frozen=True)
class SayNode:
    """Speak a value: a number, digits one by one, a date and time, or money."""

    name: str
    kind: str  # one of SAY_KINDS
    value: Expression
    next: Target
    currency: str | None = None  # money only
    timezone: str = "UTC"  # datetime only


@dataclass(frozen=True)
class TimeNode:
    """Go to ``open`` or ``closed`` according to the schedule (and the admin switch)."""

    name: str
    schedule: Schedule = field(compare=False)
    open: Target
    closed: Target


@dataclass(frozen=True)
class GotoNode:
    """Go straight to ``next`` (a named junction several nodes can share)."""

    name: str
    next: Target


@dataclass(frozen=True)
class FetchNode:
    """An HTTP data dip: GET ``url`` with ``params`` (query name -> expression), then copy
    values of the JSON reply into variables (``result``: variable -> dotted path) and go to
    ``next``; when every try failed or a path is missing, go to ``on_failure``."""

    name: str
    url: str
    params: Mapping[str, Expression]
    timeout: float  # seconds per try
    retries: int  # extra tries after a failed one
    result: Mapping[str, str]
    next: Target
    on_failure: Target


@dataclass(frozen=True)
class LanguageNode:
    """Ask the caller to choose a language by key; prompts and says from then on are in it.
    Without a valid choice after the tries the language stays as it was. Either way: ``next``.
    """

    name: str
    prompt: str
    options: Mapping[str, str]  # DTMF digit -> one of the flow's languages
    next: Target
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    invalid_prompt: str | None = None
    timeout_prompt: str | None = None

    @property
    def on_exhausted(self) -> Target:
        return self.next


@dataclass(frozen=True)
class FaqNode:
    """Play a FAQ's answer, then ask "did this solve it? 1 yes, 2 talk to a person". The
    outcome per ``topic`` is kept for self-service reports. A key pressed during the answer
    counts as the reply (1 or 2)."""

    name: str
    topic: str
    answer: str  # prompt
    question: str  # prompt
    solved: Target
    not_solved: Target
    on_exhausted: Target  # no valid reply after the tries (default: not_solved)
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    invalid_prompt: str | None = None
    timeout_prompt: str | None = None


@dataclass(frozen=True)
class QuestionNode:
    """A survey question: play ``prompt``, one key is the answer (``answers``: key -> value),
    stored with the call under ``question``; optionally also kept in ``variable``."""

    name: str
    question: str  # the question's id in reports
    prompt: str
    answers: Mapping[str, str]
    next: Target
    on_exhausted: Target  # no valid answer after the tries (nothing stored); default: next
    variable: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    invalid_prompt: str | None = None
    timeout_prompt: str | None = None


@dataclass(frozen=True)
class CallbackNode:
    """"Call me back": record the caller's name, confirm the number to call (the caller ID,
    said back; or keyed in), then register the request for ``queue``'s agents."""

    name: str
    queue: str
    next: Target  # the request is registered
    on_failure: Target  # no number confirmed after the tries, or the request was not stored
    name_prompt: str = CALLBACK_PROMPTS["name_prompt"]
    number_prompt: str = CALLBACK_PROMPTS["number_prompt"]
    confirm_prompt: str = CALLBACK_PROMPTS["confirm_prompt"]
    enter_prompt: str = CALLBACK_PROMPTS["enter_prompt"]
    record_seconds: int = DEFAULT_RECORD_SECONDS
    min_digits: int = DEFAULT_CALLBACK_MIN_DIGITS
    max_digits: int = DEFAULT_CALLBACK_MAX_DIGITS
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES

    @property
    def prompts(self) -> tuple[str, ...]:
        return (self.name_prompt, self.number_prompt, self.confirm_prompt, self.enter_prompt)


FlowNode = (
    PlayNode
    | MenuNode
    | SetNode
    | ConditionNode
    | CollectNode
    | SayNode
    | TimeNode
    | GotoNode
    | FetchNode
    | LanguageNode
    | FaqNode
    | QuestionNode
    | CallbackNode
)


def node_targets(node: FlowNode) -> list[Target]:
    """Every target a node may lead to."""
    match node:
        case MenuNode():
            return [*node.options.values(), node.on_exhausted]
        case ConditionNode():
            return [node.then, node.otherwise]
        case CollectNode():
            return [node.next, node.on_exhausted]
        case TimeNode():
            return [node.open, node.closed]
        case FetchNode() | CallbackNode():
            return [node.next, node.on_failure]
        case FaqNode():
            return [node.solved, node.not_solved, node.on_exhausted]
        case QuestionNode():
            return [node.next, node.on_exhausted]
        case _:
            return [node.next]


@dataclass(frozen=True)
class Flow:
    name: str
    start: str
    nodes: Mapping[str, FlowNode]  # read-only, in file order
    source: str = "<flow>"
    # ``policy: sac``: the attendant key reaches ``attendant`` from every node (see ivr.py).
    policy: str | None = None
    attendant: Target | None = None  # a QueueTarget or AgentTarget when policy is "sac"
    attendant_key: str = DEFAULT_ATTENDANT_KEY
    max_menu_depth: int = DEFAULT_MAX_MENU_DEPTH
    # The languages its prompts exist in; the first is the fallback, spoken to callers whose
    # language the flow does not offer.
    languages: tuple[str, ...] = (DEFAULT_LANGUAGE,)

    @property
    def fallback_language(self) -> str:
        return self.languages[0]

    @property
    def is_sac(self) -> bool:
        return self.policy == "sac"

    def node(self, name: str) -> FlowNode:
        try:
            return self.nodes[name]
        except KeyError:
            raise ValueError(f"flow {self.name!r} has no node {name!r}") from None

    def prompts(self) -> frozenset[str]:
        """Every prompt name the flow may play (for checks and pre-loading)."""
        names: set[str] = set()
        for node in self.nodes.values():
            if isinstance(node, PlayNode | MenuNode | CollectNode | LanguageNode | QuestionNode):
                names.add(node.prompt)
            if isinstance(node, MenuNode | CollectNode | LanguageNode | QuestionNode | FaqNode):
                names.update(p for p in (node.invalid_prompt, node.timeout_prompt) if p)
            if isinstance(node, FaqNode):
                names.update((node.answer, node.question))
            if isinstance(node, CallbackNode):
                names.update(node.prompts)
            names.update(
                t.prompt for t in node_targets(node) if isinstance(t, HangupTarget) and t.prompt
            )
        return frozenset(names)



def show_target(target: Target) -> str:
    """A target as the admin would write it in the file."""
    match target:
        case QueueTarget(queue=queue):
            return f"{{queue: {queue}}}"
        case AgentTarget(agent=agent):
            return f"{{agent: {agent}}}"
        case NodeTarget(node=node):
            return f"{{node: {node}}}"
        case FlowTarget(flow=flow):
            return f"{{flow: {flow}}}"
        case TransferTarget(kind=kind, destination=destination):
            return f"{{{kind}: '{destination}'}}"
        case HangupTarget(prompt=None):
            return "{hangup: true}"
        case HangupTarget(prompt=prompt):
            return f"{{hangup: true, prompt: {prompt}}}"
    raise AssertionError(f"unknown target {target!r}")


