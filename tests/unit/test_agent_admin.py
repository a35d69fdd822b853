"""The agent admin facade: agents are stored first, then routed, then Asterisk is told; state
requests go through the desk (so the state log keeps every change); bad input changes
nothing. A real directory (SQLite, and PostgreSQL when available) and a real ACD."""

from __future__ import annotations

import logging
import re

import pytest

from callcenter.core.acd import AgentState, ConnectMode, OfferCall, OfferFailure, UnknownAgent
from callcenter.features.agents.admin import (
    TIERS_AT_RESTART,
    AgentConflict,
    AgentInputError,
    AgentNotFound,
    DuplicateAgent,
    QueueNotFound,
)
from tests.support.agent_floor import FLOOR_T0, Floor

T0 = FLOOR_T0  # the clock of the floor fixture (tests/conftest.py)


async def stored(floor: Floor) -> list[tuple[str, str, dict[str, int], dict[str, int], bool]]:
    return [(a.id, a.name, dict(a.queues), dict(a.skills), a.active)
            for a in await floor.directory.list(active_only=False)]


async def state_log(floor: Floor, agent_id: str) -> list[tuple[str, str | None]]:
    await floor.desk.flush()
    return [(c.state, c.reason) for c in await floor.directory.state_history(agent_id)]


# --------------------------------------------------------------------------- creating


async def test_a_new_agent_is_stored_routed_logged_out_and_asterisk_is_told(floor: Floor):
    floor.clock.advance(5)
    change = await floor.admin.create("dave", "Dave Roy", queues={"support": 0},
                                      skills={"billing": 3})
    assert change.warnings == ()
    account = change.status.account
    assert (account.id, account.name, dict(account.queues), dict(account.skills)) == (
        "dave", "Dave Roy", {"support": 0}, {"billing": 3})
    assert len(account.sip_secret) >= 16
    assert await floor.directory.get("dave") == account
    assert change.status.live is not None
    assert change.status.live.state is AgentState.LOGGED_OUT
    assert floor.outside.applied == [T0 + 5]
    assert ("agent", {"agent_id": "dave", "change": "created"}) in floor.outside.events
    assert ("queue", {"queue": "support", "change": "members", "agent_id": "dave",
                      "tier": 0}) in floor.outside.events
    # and routing uses them once they log in
    floor.driver.login("dave", phone="dave")
    inbox = floor.driver.enqueue("call-1", "support")
    assert inbox.get_nowait() == OfferCall("call-1", "dave", 15.0, ConnectMode.RING, False,
                                           "support")


@pytest.mark.parametrize(("queues", "skills", "message"), [
    ({"billing": 0}, {}, "queues['billing']: no such queue; known: sales, support"),
    ({"sales": 2}, {}, "queues['sales']: tier 2 is not a whole number from 0 to 1"),
    ({"support": 1}, {}, "queues['support']: tier 1 is not a whole number from 0 to 0"),
    ({"sales": True}, {}, "queues['sales']: tier True"),
])
async def test_bad_memberships_are_refused_and_nothing_is_stored(
        floor: Floor, queues, skills, message):
    before = await stored(floor)
    with pytest.raises(AgentInputError, match=re.escape(message)):
        await floor.admin.create("dave", "Dave Roy", queues=queues, skills=skills)
    assert await stored(floor) == before
    assert floor.outside.applied == []
    assert floor.outside.events == []


@pytest.mark.parametrize(("agent_id", "name", "message"), [
    ("dave", "Dave <Roy>", "name: 'Dave <Roy>' contains"),
    ("dave", " Dave", "leading or trailing spaces"),
])
async def test_a_bad_name_is_refused_and_nothing_is_stored(floor: Floor, agent_id, name,
                                                                 message):
    before = await stored(floor)
    with pytest.raises(AgentInputError, match=message):
        await floor.admin.create(agent_id, name)
    assert await stored(floor) == before


async def test_a_taken_id_is_a_duplicate_and_the_agent_there_is_untouched(floor: Floor):
    before = await stored(floor)
    with pytest.raises(DuplicateAgent, match="'alice': already exists"):
        await floor.admin.create("alice", "Another Alice", queues={"support": 0})
    assert await stored(floor) == before
    assert floor.driver.acd.agent("alice").queues == ("sales",)


async def test_when_asterisk_cannot_be_updated_the_agent_stays_and_a_warning_says_so(
        floor: Floor, caplog):
    floor.outside.fail_apply = True
    with caplog.at_level(logging.ERROR, logger="callcenter.features.agents.admin"):
        change = await floor.admin.create("dave", "Dave Roy", queues={"sales": 0})
    assert len(change.warnings) == 1
    assert "Asterisk was not updated (ApplyFailed: AMI is not connected)" in change.warnings[0]
    assert "Asterisk's configuration was not applied" in caplog.text
    assert await floor.directory.get("dave") is not None
    assert floor.driver.acd.agent_state("dave") is AgentState.LOGGED_OUT


async def test_an_overflow_tier_membership_is_stored_with_a_warning_about_routing(floor: Floor):
    change = await floor.admin.create("dave", "Dave Roy", queues={"sales": 1})
    assert change.warnings == (TIERS_AT_RESTART,)
    assert dict(change.status.account.queues) == {"sales": 1}


# --------------------------------------------------------------------------- changing


async def test_new_queues_take_effect_at_once_a_waiting_caller_reaches_the_agent(floor: Floor):
    floor.driver.login("alice", phone="alice")
    inbox = floor.driver.enqueue("call-1", "support")  # bob serves it, logged out
    assert inbox.empty()
    change = await floor.admin.update("alice", queues={"sales": 0, "support": 0})
    assert change.warnings == ()
    assert inbox.get_nowait() == OfferCall("call-1", "alice", 15.0, ConnectMode.RING, False,
                                           "support")
    assert floor.driver.acd.agent_state("alice") is AgentState.RINGING
    assert (await state_log(floor, "alice"))[-1] == ("ringing", "call call-1")
    assert floor.outside.applied == [T0]  # queues are in Asterisk's fallback queues


async def test_skills_alone_change_routing_but_not_asterisk(floor: Floor):
    change = await floor.admin.update("alice", skills={"french": 2, "german": 7})
    assert dict(change.status.account.skills) == {"french": 2, "german": 7}
    assert dict(floor.driver.acd.agent("alice").skills) == {"french": 2, "german": 7}
    assert floor.outside.applied == []
    assert ("agent", {"agent_id": "alice", "change": "updated"}) in floor.outside.events


async def test_deactivating_logs_the_agent_out_stores_it_and_takes_them_out_of_routing(
        floor: Floor):
    await floor.admin.change_state("alice", "logged_in")
    floor.clock.advance(60)
    change = await floor.admin.update("alice", active=False)
    assert change.warnings == ()
    assert change.status.live is None
    assert not (await floor.directory.get("alice")).active  # type: ignore[union-attr]
    with pytest.raises(UnknownAgent):
        floor.driver.acd.agent_state("alice")
    assert await state_log(floor, "alice") == [("ready", "login"), ("logged_out", "logout")]
    assert floor.outside.applied == [T0 + 60]
    # back again: in routing, logged out
    change = await floor.admin.update("alice", active=True)
    assert change.status.live is not None
    assert change.status.live.state is AgentState.LOGGED_OUT


async def test_an_agent_on_a_call_cannot_be_deactivated_and_nothing_changes(floor: Floor):
    await floor.admin.change_state("alice", "logged_in")
    floor.driver.enqueue("call-1", "sales")
    floor.driver.answered("call-1", "alice")
    before = await stored(floor)
    with pytest.raises(AgentConflict, match="'alice' is on_call: they can be deactivated "
                                            "after the call"):
        await floor.admin.update("alice", active=False, name="Alice M.")
    assert await stored(floor) == before
    assert floor.driver.acd.agent_state("alice") is AgentState.ON_CALL


async def test_bad_changes_are_refused_before_anything_is_stored(floor: Floor):
    before = await stored(floor)
    with pytest.raises(AgentInputError, match="no such queue"):
        await floor.admin.update("alice", name="Alice M.", queues={"nowhere": 0})
    with pytest.raises(AgentInputError, match="name"):
        await floor.admin.update("alice", name="")
    with pytest.raises(AgentNotFound, match="'zoe': no such agent"):
        await floor.admin.update("zoe", name="Zoe")
    assert await stored(floor) == before
    assert floor.outside.applied == []


async def test_a_new_secret_is_stored_and_asterisk_is_told(floor: Floor):
    old = (await floor.directory.get("bob")).sip_digest  # type: ignore[union-attr]
    change = await floor.admin.rotate_secret("bob")
    stored = await floor.directory.get("bob")
    assert stored is not None and stored.sip_digest != old
    assert stored.has_sip_secret(change.sip_secret) and stored.sip_secret is None
    assert floor.outside.applied == [T0]
    with pytest.raises(AgentNotFound):
        await floor.admin.rotate_secret("zoe")


# --------------------------------------------------------------------------- states


async def test_login_pause_ready_logout_are_applied_and_every_change_is_logged(floor: Floor):
    outcome = await floor.admin.change_state("alice", "logged_in")
    assert (outcome.deferred, outcome.live.state, outcome.live.phone) == (
        False, AgentState.READY, "alice")
    floor.clock.advance(10)
    outcome = await floor.admin.change_state("alice", "paused", reason="lunch")
    assert outcome.message == "agent 'alice' is paused (lunch)"
    outcome = await floor.admin.change_state("alice", "paused", reason="lunch")
    assert outcome.message == "agent 'alice' was already paused: nothing changed"
    await floor.admin.change_state("alice", "ready")
    await floor.admin.change_state("alice", "logged_out")
    assert await state_log(floor, "alice") == [
        ("ready", "login"), ("paused", "lunch"), ("ready", "ready"), ("logged_out", "logout")]
    kinds = [(kind, data.get("state")) for kind, data in floor.outside.events]
    assert kinds == [("agent", "ready"), ("agent", "paused"), ("agent", "ready"),
                     ("agent", "logged_out")]


async def test_a_pause_while_ringing_is_deferred_until_the_ring_ends(floor: Floor):
    await floor.admin.change_state("alice", "logged_in")
    floor.driver.enqueue("call-1", "sales")
    outcome = await floor.admin.change_state("alice", "paused", reason="break")
    assert outcome.deferred
    assert outcome.live.state is AgentState.RINGING
    assert outcome.live.deferred == "pause"
    assert outcome.message == "agent 'alice' is ringing: the pause applies when the call ends"
    floor.driver.failed("call-1", "alice", OfferFailure.REJECTED)
    assert floor.driver.acd.agent("alice").reason == "break"
    assert await state_log(floor, "alice") == [
        ("ready", "login"), ("ringing", "call call-1"), ("paused", "break")]


async def test_ready_during_a_call_cancels_a_deferred_logout(floor: Floor):
    await floor.admin.change_state("alice", "logged_in")
    floor.driver.enqueue("call-1", "sales")
    floor.driver.answered("call-1", "alice")
    assert (await floor.admin.change_state("alice", "logged_out")).deferred
    outcome = await floor.admin.change_state("alice", "ready")
    assert not outcome.deferred
    assert outcome.message == ("agent 'alice' is on_call: the logout deferred until the call "
                               "ends is cancelled")
    floor.driver.left("call-1")
    assert floor.driver.acd.agent_state("alice") is AgentState.WRAP_UP


@pytest.mark.parametrize(("state", "fields", "message"), [
    ("paused", {}, "reason: required to pause; one of break, lunch, RONA"),
    ("paused", {"reason": "nap"}, "reason: 'nap' is not a pause reason; use one of break, "
                                  "lunch, RONA"),
    ("ready", {"reason": "lunch"}, "reason: only for state paused, not ready"),
    ("ready", {"phone": "desk-1"}, "phone: only for state logged_in, not ready"),
    ("logged_in", {"phone": "bob"}, "phone: 'bob' is the phone of agent 'bob'; agent "
                                   "'alice' takes calls on 'alice'"),
])
async def test_bad_state_requests_say_what_is_wrong_and_log_nothing(floor: Floor, state, fields,
                                                                    message):
    with pytest.raises(AgentInputError) as refused:
        await floor.admin.change_state("alice", state, **fields)
    assert str(refused.value) == message
    assert await state_log(floor, "alice") == []


@pytest.mark.parametrize(("agent_id", "state", "fields", "message"), [
    ("alice", "paused", {"reason": "lunch"}, "agent 'alice' is logged out: log in first"),
    ("alice", "logged_out", {}, "agent 'alice' is already logged out"),
    ("alice", "logged_in", {"mode": "nailed"}, "a nailed-up login must come from the agent's "
                                               "phone: dial *50"),
    ("carol", "logged_in", {}, "agent 'carol' is inactive: an admin must activate them first"),
])
async def test_changes_the_state_does_not_allow_are_conflicts_with_the_reason(
        floor: Floor, agent_id, state, fields, message):
    with pytest.raises(AgentConflict, match=re.escape(message)):
        await floor.admin.change_state(agent_id, state, **fields)
    assert await state_log(floor, agent_id) == []


async def test_a_second_login_from_another_phone_is_refused_and_the_first_stands(floor: Floor):
    await floor.admin.change_state("alice", "logged_in", phone="desk-7")
    with pytest.raises(AgentConflict, match="'alice' is logged in on phone 'desk-7': log out "
                                            "there first"):
        await floor.admin.change_state("alice", "logged_in")
    with pytest.raises(AgentConflict, match="'alice' is already logged in"):
        await floor.admin.change_state("alice", "logged_in", phone="desk-7")
    with pytest.raises(AgentConflict, match="phone 'desk-7' is in use by agent 'alice'"):
        await floor.admin.change_state("bob", "logged_in", phone="desk-7")
    assert floor.driver.acd.agent("alice").phone == "desk-7"
    assert await state_log(floor, "alice") == [("ready", "login")]
    assert await state_log(floor, "bob") == []


async def test_an_unknown_agent_is_not_found(floor: Floor):
    with pytest.raises(AgentNotFound, match="'zoe': no such agent"):
        await floor.admin.change_state("zoe", "ready")
    with pytest.raises(AgentNotFound):
        await floor.admin.agent("zoe")
    with pytest.raises(AgentNotFound):
        await floor.admin.history("zoe", None, None, 10)


async def test_logging_in_with_an_unregistered_phone_says_no_call_reaches_them(floor: Floor):
    floor.driver.set_reachable("alice", False)
    outcome = await floor.admin.change_state("alice", "logged_in")
    assert outcome.message == ("agent 'alice' is ready: their phone is not registered, so no "
                               "call reaches them until it is")


# --------------------------------------------------------------------------- reading


async def test_agents_are_listed_with_their_live_state_and_registration(floor: Floor):
    await floor.admin.change_state("bob", "logged_in")
    # a phone with a static contact counts as registered
    floor.registrations.set_static_contact("bob", "sip:bob@192.0.2.7:5060", T0)
    agents = {status.account.id: status for status in await floor.admin.agents()}
    assert list(agents) == ["alice", "bob", "carol"]
    assert agents["bob"].live is not None and agents["bob"].live.state is AgentState.READY
    assert agents["bob"].registration.registered
    assert not agents["alice"].registration.registered
    assert agents["carol"].live is None  # inactive


async def test_a_queue_shows_its_callers_in_line_and_its_members_by_tier(floor: Floor):
    await floor.admin.change_state("alice", "logged_in")
    floor.driver.enqueue("call-1", "sales")  # rings alice
    floor.clock.advance(4)
    floor.driver.enqueue("call-2", "sales", priority=5)
    floor.clock.advance(2)
    queue = await floor.admin.queue("sales")
    assert queue.rules.name == "sales"
    assert (queue.stats.waiting, queue.stats.busy, queue.stats.logged_in) == (2, 1, 1)
    assert [(c["call_id"], c["position"], c["state"]) for c in queue.calls] == [
        ("call-2", 1, "waiting"), ("call-1", 2, "ringing")]
    assert [(m.agent_id, m.tier, m.state) for m in queue.members] == [
        ("alice", 0, AgentState.RINGING), ("bob", 1, AgentState.LOGGED_OUT)]
    support = await floor.admin.queue("support")
    assert [(m.agent_id, m.tier) for m in support.members] == [("bob", 0)]  # carol: inactive
    assert [q.rules.name for q in await floor.admin.queues()] == ["sales", "support"]
    with pytest.raises(QueueNotFound, match="'billing': no such queue; known: sales, support"):
        await floor.admin.queue("billing")


async def test_history_is_a_time_range_oldest_first_cut_at_the_limit(floor: Floor):
    for _ in range(3):
        await floor.admin.change_state("alice", "logged_in")
        floor.clock.advance(60)
        await floor.admin.change_state("alice", "logged_out")
        floor.clock.advance(60)
    await floor.desk.flush()
    changes, more = await floor.admin.history("alice", None, None, 4)
    assert [(c.state, c.at) for c in changes] == [
        ("ready", T0), ("logged_out", T0 + 60), ("ready", T0 + 120), ("logged_out", T0 + 180)]
    assert more
    changes, more = await floor.admin.history("alice", T0 + 120, T0 + 240, 10)
    assert [c.at for c in changes] == [T0 + 120, T0 + 180]
    assert not more
