"""Routes each typed AMI event to the features that subscribed to its kind.

The AMI client feeds ``dispatch``; the composition root (app.py) only subscribes. A kind is
an event class (``Hangup``, ``DialEnd``...) or, for events without a type of their own
(``OtherEvent``), the event's name as Asterisk spells it (``"AttendedTransfer"``);
``subscribe_all`` takes every event.

Order is part of the contract: an event reaches its subscribers in the order they subscribed,
whichever way (all events or some kinds). The call ledger subscribes first, so every feature
sees the call's record as that event left it.

A subscriber that raises is logged and the event still reaches the others: one feature's bug
must not blind the rest to a hangup.

On the hot path (every event of a busy Asterisk): one dict lookup finds the prepared tuple of
subscribers for the event's class (and name, for an ``OtherEvent``); kinds nobody asked for
find the all-events subscribers alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from callcenter.asterisk.events import AmiEvent, OtherEvent, parse_event

log = logging.getLogger(__name__)

Subscriber = Callable[[AmiEvent], None]
EventKind = type | str  # an event class, or an OtherEvent's name


class AmiDispatcher:
    def __init__(self) -> None:
        # In subscription order: (kinds, or None for every event; the subscriber).
        self._subscriptions: list[tuple[frozenset[EventKind] | None, Subscriber]] = []
        self._routes: dict[EventKind, tuple[Subscriber, ...]] = {}
        self._to_all: tuple[Subscriber, ...] = ()

    def subscribe_all(self, subscriber: Subscriber) -> None:
        """``subscriber`` gets every event, in its turn among the others."""
        self._subscriptions.append((None, subscriber))
        self._prepare()

    def subscribe(self, subscriber: Subscriber, *kinds: EventKind) -> None:
        """``subscriber`` gets the events of ``kinds``: event classes, or names of events
        that have no class (they arrive as ``OtherEvent``)."""
        if not kinds:
            raise ValueError("subscribe to at least one kind of event (or subscribe_all)")
        for kind in kinds:
            if isinstance(kind, str):
                typed = parse_event({"Event": kind})
                if not isinstance(typed, OtherEvent):
                    raise ValueError(f"{kind!r} events arrive as {type(typed).__name__}: "
                                     "subscribe to that class")
            elif not isinstance(kind, type) or kind is OtherEvent:
                raise ValueError(f"{kind!r}: subscribe to an event class or an event's name")
        self._subscriptions.append((frozenset(kinds), subscriber))
        self._prepare()

    def dispatch(self, event: AmiEvent) -> None:
        kind: EventKind = type(event)
        if kind is OtherEvent:
            kind = event.name  # type: ignore[union-attr]
        for subscriber in self._routes.get(kind, self._to_all):
            try:
                subscriber(event)
            except Exception:
                log.exception("AMI event subscriber %s failed on %r",
                              getattr(subscriber, "__qualname__", subscriber), event)

    def _prepare(self) -> None:
        """The subscribers of each kind anyone named, and of the rest, in subscription order."""
        named = {kind for kinds, _ in self._subscriptions if kinds for kind in kinds}
        self._routes = {
            kind: tuple(subscriber for kinds, subscriber in self._subscriptions
                        if kinds is None or kind in kinds)
            for kind in named
        }
        self._to_all = tuple(subscriber for kinds, subscriber in self._subscriptions
                             if kinds is None)
