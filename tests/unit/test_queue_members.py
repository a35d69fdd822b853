"""Asterisk's own queues mirror our agents, so the fallback Queue() rings the right people."""

from __future__ import annotations

from callcenter.asterisk.queue_members import (
    Membership,
    actions_for,
    desired_memberships,
    members_from_status,
)

TIERS = {"support": 0, "sales": 1}


def test_a_logged_out_agent_is_in_no_queue_and_a_paused_one_is_paused_everywhere() -> None:
    assert desired_memberships("ana", "logged_out", TIERS) == {}
    assert desired_memberships("ana", "paused", TIERS) == {
        ("support", "PJSIP/ana"): Membership(0, paused=True),
        ("sales", "PJSIP/ana"): Membership(1, paused=True),
    }
    for busy in ("ready", "ringing", "on_call", "wrap_up"):
        assert all(not m.paused for m in desired_memberships("ana", busy, TIERS).values())


def test_logging_in_adds_the_agent_to_each_queue_with_the_tier_as_penalty() -> None:
    actions = actions_for("ana", "Ana", {}, desired_memberships("ana", "ready", TIERS))
    assert actions == [
        {"Action": "QueueAdd", "Queue": "sales", "Interface": "PJSIP/ana", "Penalty": "1",
         "Paused": "false", "MemberName": "Ana"},
        {"Action": "QueueAdd", "Queue": "support", "Interface": "PJSIP/ana", "Penalty": "0",
         "Paused": "false", "MemberName": "Ana"},
    ]


def test_pausing_pauses_and_logging_out_removes_only_our_agent() -> None:
    ready = desired_memberships("ana", "ready", TIERS)
    paused = desired_memberships("ana", "paused", TIERS)
    assert [a["Action"] for a in actions_for("ana", "Ana", ready, paused)] == ["QueuePause"] * 2
    assert actions_for("ana", "Ana", ready, ready) == []
    current = {**ready, ("support", "PJSIP/rui"): Membership(0, False)}
    removals = actions_for("ana", "Ana", current, {})
    assert removals == [
        {"Action": "QueueRemove", "Queue": "sales", "Interface": "PJSIP/ana"},
        {"Action": "QueueRemove", "Queue": "support", "Interface": "PJSIP/ana"},
    ]


def test_a_changed_tier_changes_the_penalty_and_a_dropped_queue_is_left() -> None:
    current = desired_memberships("ana", "ready", TIERS)
    desired = desired_memberships("ana", "ready", {"support": 2})
    assert actions_for("ana", "Ana", current, desired) == [
        {"Action": "QueuePenalty", "Queue": "support", "Interface": "PJSIP/ana",
         "Penalty": "2"},
        {"Action": "QueueRemove", "Queue": "sales", "Interface": "PJSIP/ana"},
    ]


def test_queue_status_members_are_read_and_other_interfaces_ignored() -> None:
    events = [
        {"Event": "QueueParams", "Queue": "support"},
        {"Event": "QueueMember", "Queue": "support", "Location": "PJSIP/ana", "Penalty": "0",
         "Paused": "1"},
        {"Event": "QueueMember", "Queue": "sales", "Location": "PJSIP/ana", "Penalty": "x",
         "Paused": "0"},
        {"Event": "QueueMember", "Queue": "sales", "Location": "Local/100@x", "Paused": "0"},
    ]
    assert members_from_status(events) == {
        ("support", "PJSIP/ana"): Membership(0, True),
        ("sales", "PJSIP/ana"): Membership(0, False),
    }
