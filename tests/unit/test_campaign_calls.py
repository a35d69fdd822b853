"""What a campaign and Asterisk's answers mean for the calling rules and pacing."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from callcenter.core.acd import Acd, AgentSpec, QueueRules
from callcenter.core.acd_actions import AgentState, AgentView, ConnectMode
from callcenter.core.campaign_calls import (
    TrunkWatch,
    callee_places,
    calling_rules,
    dial_result,
    is_human,
    pacing_agents,
    pacing_rules,
    queue_priority,
    unanswered_outcome,
)
from callcenter.core.campaigns import Campaign, CampaignMode
from callcenter.core.dial_rules import Outcome
from callcenter.core.hours import HolidayRegion
from callcenter.core.pacing import AgentPhase, DialResult

CAMPAIGN = Campaign(name="renewals", mode=CampaignMode.PREDICTIVE, queue="sales",
                    caller_id="+551130000000", default_region="BR",
                    hours={"mon-fri": ["09:00-20:00"]}, requires_consent=True, amd=True,
                    retry_minutes={Outcome.BUSY: 5})


def test_a_campaign_becomes_its_calling_and_pacing_rules():
    rules = calling_rules(CAMPAIGN)
    assert rules.consent_scope == "renewals"
    assert rules.retry_delay(Outcome.BUSY) == 300
    assert rules.ring_time == 20
    assert len(rules.calling_hours[0]) == 1 and rules.calling_hours[5] == ()
    pacing = pacing_rules(CAMPAIGN, max_lines=30)
    assert (pacing.mode, pacing.amd, pacing.ring_seconds, pacing.max_lines) == (
        CampaignMode.PREDICTIVE, True, 20.0, 30)


def test_the_callee_gets_the_holidays_of_the_number_s_country_when_the_campaign_skips_them():
    [place] = callee_places("+5511987654321", ["America/Sao_Paulo"], skip_holidays=True)
    assert place.holidays == HolidayRegion("BR")
    [place] = callee_places("+5511987654321", ["America/Sao_Paulo"], skip_holidays=False)
    assert place.holidays is None
    # A country the holidays package does not know has no holidays, not an error.
    places = callee_places("+88213123456", ["Etc/UTC"], skip_holidays=True)
    assert [p.holidays for p in places] == [None]


def test_originate_reasons_and_amd_statuses_become_outcomes():
    assert unanswered_outcome("5") is Outcome.BUSY
    assert unanswered_outcome("0", 17) is Outcome.BUSY
    assert unanswered_outcome("0", 34) is Outcome.FAILED
    assert unanswered_outcome("3", 16) is Outcome.NO_ANSWER
    assert unanswered_outcome("1", 21) is Outcome.NO_ANSWER
    assert unanswered_outcome("3") is Outcome.NO_ANSWER
    assert unanswered_outcome("8") is Outcome.FAILED
    assert unanswered_outcome("what") is Outcome.FAILED
    assert is_human(None) and is_human("HUMAN") and is_human("notsure")
    assert not is_human("MACHINE") and not is_human("HANGUP")
    assert dial_result(Outcome.HUMAN) is DialResult.LIVE
    assert dial_result(Outcome.DROPPED) is DialResult.LIVE
    assert dial_result(Outcome.MACHINE) is DialResult.MACHINE
    assert dial_result(Outcome.BUSY) is DialResult.UNANSWERED


def agent(state: AgentState, since: float = 0.0, reachable: bool = True) -> AgentView:
    return AgentView(agent_id="a", state=state, reason=None, since=since, idle_since=since,
                     phone=None, mode=ConnectMode.NAILED, reachable=reachable, call_id=None,
                     queues=("sales",), skills={}, calls_answered=0, talk_time=0.0,
                     deferred=None)


def test_inbound_callers_waiting_take_the_ready_agents_first():
    members = [agent(AgentState.READY), agent(AgentState.READY),
               agent(AgentState.READY, reachable=False), agent(AgentState.ON_CALL, 5.0),
               agent(AgentState.WRAP_UP, 7.0), agent(AgentState.PAUSED),
               agent(AgentState.LOGGED_OUT)]
    seen = pacing_agents(members, waiting_inbound=1)
    assert seen.ready == 1
    assert [(b.phase, b.since) for b in seen.busy] == [(AgentPhase.TALKING, 5.0),
                                                       (AgentPhase.WRAP_UP, 7.0)]
    assert seen.logged_in == 6
    assert pacing_agents(members, waiting_inbound=9).ready == 0


@given(st.lists(st.sampled_from(list(Outcome)), max_size=60))
def test_the_trunk_counts_as_refusing_only_after_failures_in_a_row(outcomes):
    watch = TrunkWatch(limit=3)
    run = 0
    for outcome in outcomes:
        if outcome is Outcome.FAILED:
            run += 1
        elif outcome is not Outcome.BUSY:
            run = 0
        assert watch.ended(outcome) is (run >= 3)


def test_answers_wait_behind_inbound_callers_unless_the_campaign_goes_ahead():
    acd = Acd({"sales": QueueRules("sales")}, [AgentSpec("a", ("sales",))], 0.0)
    for ahead, served_first in ((False, "inbound"), (True, "outbound")):
        campaign = dataclasses.replace(CAMPAIGN, ahead_of_inbound=ahead)
        acd.enqueue("inbound", "sales", 1.0, priority=0)
        acd.enqueue("outbound", "sales", 2.0, priority=queue_priority(campaign))
        assert acd.waiting("sales")[0] == served_first
        for call in ("inbound", "outbound"):
            acd.caller_left(call, 3.0)
