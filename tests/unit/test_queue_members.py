"""Asterisk's own queues mirror our agents, so the fallback Queue() rings who is at work."""

from __future__ import annotations

import pytest

from callcenter.features.queues.fallback_members import (
    members_from_status,
    pause_actions,
    paused_in_fallback,
)


@pytest.mark.parametrize(("state", "paused"), [
    ("logged_out", True), ("paused", True),
    ("ready", False), ("ringing", False), ("on_call", False), ("wrap_up", False),
])
def test_only_agents_logged_out_or_paused_are_skipped_by_the_fallback(state, paused) -> None:
    assert paused_in_fallback(state) is paused


def test_a_pause_pauses_each_membership_that_is_not_paused_yet() -> None:
    current = {"support": False, "sales": True}
    assert pause_actions("ana", "paused", ["support", "sales"], current) == [
        {"Action": "QueuePause", "Queue": "support", "Interface": "PJSIP/ana",
         "Paused": "true", "Reason": "callcenter: paused"},
    ]
    assert pause_actions("ana", "ready", ["support", "sales"], current) == [
        {"Action": "QueuePause", "Queue": "sales", "Interface": "PJSIP/ana",
         "Paused": "false", "Reason": "callcenter: ready"},
    ]
    assert pause_actions("ana", "ready", ["support"], {"support": False}) == []


def test_a_queue_asterisk_does_not_have_the_agent_in_is_left_alone() -> None:
    assert pause_actions("ana", "paused", ["support", "billing"], {"support": True}) == []


def test_queue_status_members_are_read_and_other_interfaces_ignored() -> None:
    events = [
        {"Event": "QueueParams", "Queue": "support"},
        {"Event": "QueueMember", "Queue": "support", "Location": "PJSIP/ana", "Paused": "1"},
        {"Event": "QueueMember", "Queue": "sales", "Location": "PJSIP/ana", "Paused": "0"},
        {"Event": "QueueMember", "Queue": "sales", "Location": "Local/100@x", "Paused": "0"},
        {"event": "QueueMember", "queue": "sales", "interface": "PJSIP/rui", "paused": "0"},
    ]
    assert members_from_status(events) == {"ana": {"support": True, "sales": False},
                                           "rui": {"sales": False}}
