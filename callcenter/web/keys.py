"""Typed keys for what the composition root hands to the web application."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from callcenter.features.agents.admin import AgentAdmin
from callcenter.features.callbacks.store import CallbackRepository
from callcenter.features.calls.store import CallRepository, DeadLetterRepository


@dataclass(frozen=True)
class HealthProbe:
    """What /healthz asks; each returns True when that part is up."""

    ami: Callable[[], bool]
    agi: Callable[[], bool]
    database: Callable[[], Awaitable[bool]]


AGENTS = web.AppKey("agents", AgentAdmin)
CALLS = web.AppKey("calls", CallRepository)
DEAD_LETTERS = web.AppKey("dead_letters", DeadLetterRepository)
CALLBACKS = web.AppKey("callbacks", CallbackRepository)
HEALTH = web.AppKey("health", HealthProbe)
