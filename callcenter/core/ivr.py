"""The IVR interpreter: one ``IvrSession`` per call walks a validated ``Flow``.

Sans-I/O: the adapter asks for the first action with ``start()``, carries it out (plays a
prompt, waits for a digit), reports what happened as an event to ``handle()`` and gets the
next action, until a terminal one: ``RouteToQueue`` or ``Hangup``.

A menu is heard at most ``retries`` times: each hearing that ends with no digit or a digit
that is not an option is a failed try (its feedback prompt is played, if the menu has one);
after the last failed try the caller goes to ``on_exhausted``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

from callcenter.core.flowfile import (
    DTMF_DIGITS,
    Flow,
    FlowNode,
    HangupTarget,
    MenuNode,
    NodeTarget,
    PlayNode,
    QueueTarget,
    Target,
)
from callcenter.core.records import IvrStep

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
    """Terminal: hand the caller to the ACD queue."""

    queue: str


@dataclass(frozen=True)
class Hangup:
    """Terminal: end the call (any goodbye prompt was already asked for)."""

    reason: str


IvrAction = PlayPrompt | WaitForDigit | RouteToQueue | Hangup

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


IvrEvent = PromptFinished | DigitReceived | InputTimedOut


class IvrProtocolError(RuntimeError):
    """The adapter used the session wrongly: an event it was not waiting for, or one too many."""


class _Phase(Enum):
    NOT_STARTED = auto()
    NODE_PROMPT = auto()  # playing the current node's own prompt
    WAITING_FOR_DIGIT = auto()  # after a menu prompt
    RETRY_PROMPT = auto()  # playing a menu's invalid/no-input prompt after a failed try
    GOODBYE_PROMPT = auto()  # playing a hangup target's prompt
    FINISHED = auto()


class IvrSession:
    """One caller's walk through a flow. ``path`` records every node entered."""

    def __init__(self, flow: Flow, now: float) -> None:
        self.flow = flow
        self.path: list[IvrStep] = []
        self._created_at = now
        self._phase = _Phase.NOT_STARTED
        self._node: FlowNode = flow.node(flow.start)
        self._tries = 0  # hearings of the current menu so far
        self._hangup_reason = ""
        self._final_action: RouteToQueue | Hangup | None = None

    @property
    def finished(self) -> bool:
        return self._phase is _Phase.FINISHED

    @property
    def current_node(self) -> str:
        return self._node.name

    @property
    def final_action(self) -> RouteToQueue | Hangup | None:
        """The terminal action, once the session is finished."""
        return self._final_action

    def start(self) -> IvrAction:
        if self._phase is not _Phase.NOT_STARTED:
            raise IvrProtocolError("start() was already called for this IVR session")
        return self._enter(self._node, self._created_at, again=False)

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
            case _Phase.NODE_PROMPT, PromptFinished(digit=digit):
                match self._node:
                    case PlayNode(next=following):
                        return self._go(following, "next", now)  # barge-in is ignored here
                    case MenuNode(timeout=timeout) if digit is None:
                        self._phase = _Phase.WAITING_FOR_DIGIT
                        return WaitForDigit(timeout)
                    case MenuNode() as menu:
                        return self._menu_input(menu, _checked_digit(digit), now)
            case _Phase.WAITING_FOR_DIGIT, DigitReceived(digit=digit):
                return self._menu_input(self._menu(), _checked_digit(digit), now)
            case _Phase.WAITING_FOR_DIGIT, InputTimedOut():
                return self._failed_try(self._menu(), "timeout", now)
            case _Phase.RETRY_PROMPT, PromptFinished():
                return self._after_failed_try(self._menu(), now)
            case _Phase.GOODBYE_PROMPT, PromptFinished():
                return self._finish(Hangup(self._hangup_reason))
        raise IvrProtocolError(f"{event} does not answer {self._awaiting()}")

    # -- transitions' helpers

    def _enter(self, node: FlowNode, now: float, *, again: bool) -> IvrAction:
        """Each hearing of a node is a step of the path; ``again`` repeats a menu after a failed
        try, anything else (even an option leading back to the same menu) starts afresh."""
        if not again:
            self._tries = 0
        self._node = node
        self.path.append(IvrStep(node=node.name, at=now))
        self._phase = _Phase.NODE_PROMPT
        if isinstance(node, MenuNode):
            self._tries += 1
            return PlayPrompt(node.prompt, interruptible=True)
        return PlayPrompt(node.prompt, interruptible=False)

    def _menu_input(self, menu: MenuNode, digit: str, now: float) -> IvrAction:
        target = menu.options.get(digit)
        if target is None:
            return self._failed_try(menu, f"invalid:{digit}", now)
        self.path[-1].input = digit
        return self._go(target, f"option {digit}", now)

    def _failed_try(self, menu: MenuNode, what: str, now: float) -> IvrAction:
        self.path[-1].input = what
        feedback = menu.timeout_prompt if what == "timeout" else menu.invalid_prompt
        if feedback is None:
            return self._after_failed_try(menu, now)
        self._phase = _Phase.RETRY_PROMPT
        return PlayPrompt(feedback, interruptible=False)

    def _after_failed_try(self, menu: MenuNode, now: float) -> IvrAction:
        if self._tries < menu.retries:
            return self._enter(menu, now, again=True)
        return self._go(menu.on_exhausted, f"no valid choice after {menu.retries} tries", now)

    def _go(self, target: Target, why: str, now: float) -> IvrAction:
        match target:
            case QueueTarget(queue=queue):
                return self._finish(RouteToQueue(queue))
            case NodeTarget(node=name):
                return self._enter(self.flow.node(name), now, again=False)
            case HangupTarget(prompt=prompt):
                self._hangup_reason = f"{self._node.name}: {why}"
                if prompt is None:
                    return self._finish(Hangup(self._hangup_reason))
                self._phase = _Phase.GOODBYE_PROMPT
                return PlayPrompt(prompt, interruptible=False)
        raise AssertionError(f"unknown target {target!r}")

    def _finish(self, action: RouteToQueue | Hangup) -> IvrAction:
        self._phase = _Phase.FINISHED
        self._final_action = action
        return action

    def _menu(self) -> MenuNode:
        assert isinstance(self._node, MenuNode), "only menus wait for digits"
        return self._node

    def _awaiting(self) -> str:
        return {
            _Phase.NODE_PROMPT: f"the prompt of node {self._node.name!r} (PromptFinished)",
            _Phase.WAITING_FOR_DIGIT: "WaitForDigit (DigitReceived or InputTimedOut)",
            _Phase.RETRY_PROMPT: "a retry prompt (PromptFinished)",
            _Phase.GOODBYE_PROMPT: "the goodbye prompt (PromptFinished)",
        }[self._phase]


def _checked_digit(digit: str | None) -> str:
    if digit is None or len(digit) != 1 or digit not in DTMF_DIGITS:
        raise IvrProtocolError(f"{digit!r} is not a DTMF digit (0-9, *, #)")
    return digit
