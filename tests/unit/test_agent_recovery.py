"""Reading agents out of a channel snapshot: nailed-up sessions, and calls the ACD did not
route (the fallback's, or ones in progress when the service stopped)."""

from __future__ import annotations

from callcenter.asterisk.events import CoreShowChannel
from callcenter.core.agent_recovery import AgentsOnChannels, CallElsewhere, agents_on_channels
from callcenter.features.agents.dialplan import AGENT_BRIDGE_PREFIX, FEATURES

AGENTS = ("agent1", "agent2", "agent3")
QUEUES = ("sales", "support")


def channel(name: str, uniqueid: str, *, application: str = "", data: str = "",
            linkedid: str | None = None, exten: str = "s", state: str = "Up",
            duration: int | None = 10, context: str = "agents") -> CoreShowChannel:
    return CoreShowChannel(uniqueid=uniqueid, linkedid=linkedid or uniqueid, channel=name,
                           context=context, exten=exten, state=state, application=application,
                           application_data=data, duration_seconds=duration, bridge_id="")


def nailed_seat(agent_id: str, uniqueid: str, **settings: object) -> CoreShowChannel:
    """The agent's own channel in their bridge, as the *50 dialplan leaves it."""
    data = (f"{AGENT_BRIDGE_PREFIX}{agent_id},callcenter_agent_bridge,callcenter_agent,"
            "callcenter_agent_menu")
    return channel(f"PJSIP/{agent_id}-0000000{uniqueid[-1]}", uniqueid, application="ConfBridge",
                   data=data, exten="*50", **settings)  # type: ignore[arg-type]


def read(*channels: CoreShowChannel, agents: tuple[str, ...] = AGENTS) -> AgentsOnChannels:
    return agents_on_channels(channels, agents, bridge_prefix=AGENT_BRIDGE_PREFIX,
                              feature_codes=FEATURES, queues=QUEUES)


def test_an_agent_in_their_own_bridge_is_nailed_up() -> None:
    found = read(nailed_seat("agent1", "100.1"))
    assert found == AgentsOnChannels(nailed={"agent1": "100.1"}, busy={},
                                     live=frozenset({"100.1"}))


def test_a_caller_in_a_nailed_agents_bridge_makes_the_agent_busy_until_the_caller_leaves(
        ) -> None:
    caller = channel("PJSIP/callcenter-trunk-00000004", "100.4", application="ConfBridge",
                     data=f"{AGENT_BRIDGE_PREFIX}agent1,callcenter_agent_bridge,"
                          "callcenter_caller", context="callers", exten="100")
    found = read(nailed_seat("agent1", "100.1"), caller)
    assert found.nailed == {"agent1": "100.1"}
    assert found.busy == {"agent1": CallElsewhere("100.4", None)}


def test_an_agent_leg_of_the_fallback_queue_is_a_call_from_that_queue() -> None:
    caller = channel("PJSIP/callcenter-trunk-00000002", "200.2", application="Queue",
                     data="sales,,,,600", context="callcenter-fallback", exten="q-sales")
    leg = channel("PJSIP/agent2-00000003", "200.3", application="AppQueue",
                  data="(Outgoing Line)", linkedid="200.2")
    found = read(caller, leg)
    assert found.busy == {"agent2": CallElsewhere("200.3", "sales")}
    assert found.nailed == {} and found.live == {"200.2", "200.3"}


def test_a_leg_whose_caller_is_not_in_one_of_our_queues_has_no_queue() -> None:
    dialled = channel("PJSIP/agent1-00000006", "300.6", application="AppDial",
                      data="(Outgoing Line)", linkedid="300.5")
    caller = channel("PJSIP/callcenter-trunk-00000005", "300.5", application="Dial",
                     data="PJSIP/agent1,15", context="callers", exten="100")
    elsewhere = channel("PJSIP/callcenter-trunk-00000007", "300.7", application="Queue",
                        data="other-team", context="callers")
    ringing = channel("PJSIP/agent3-00000008", "300.8", application="AppQueue",
                      linkedid="300.7", state="Ringing")
    orphan = channel("PJSIP/agent2-00000009", "300.9", application="AppDial",
                     linkedid="300.1")  # its caller is not in the snapshot
    found = read(dialled, caller, elsewhere, ringing, orphan)
    assert found.busy == {"agent1": CallElsewhere("300.6", None),
                          "agent3": CallElsewhere("300.8", None),
                          "agent2": CallElsewhere("300.9", None)}


def test_feature_codes_being_dialled_and_phones_that_are_not_agents_are_no_calls() -> None:
    found = read(
        channel("PJSIP/agent1-00000001", "400.1", application="AGI", exten="*521"),
        channel("PJSIP/agent2-00000002", "400.2", application="AGI", exten="*50"),  # not in yet
        channel("PJSIP/caller-00000003", "400.3", application="AGI", context="callers"),
        channel("PJSIP/callcenter-trunk-00000004", "400.4", application="Queue",
                data="sales"),
        channel("Local/agent3@callcenter-supervision-ring-00000005;1", "400.5"),
        channel("PJSIP/agent3-00000006", "400.6", application="ConfBridge",
                data=f"{AGENT_BRIDGE_PREFIX}stranger"),  # a bridge that is nobody's we know
        agents=("agent1", "agent2"),
    )
    assert (found.nailed, found.busy) == ({}, {})
    assert len(found.live) == 6


def test_an_agent_who_dialled_the_ivr_and_sits_in_a_colleagues_bridge_is_busy_too() -> None:
    in_bridge = channel("PJSIP/agent2-00000005", "500.5", application="ConfBridge",
                        data=f"{AGENT_BRIDGE_PREFIX}agent1,callcenter_agent_bridge,"
                             "callcenter_caller", context="callers", exten="100")
    found = read(nailed_seat("agent1", "500.1"), in_bridge)
    assert found.nailed == {"agent1": "500.1"}
    assert found.busy == {"agent1": CallElsewhere("500.5", None),
                          "agent2": CallElsewhere("500.5", None)}


def test_of_several_calls_the_one_up_longest_is_the_agents() -> None:
    short = channel("PJSIP/agent1-00000001", "600.1", application="AppDial", duration=5)
    long = channel("PJSIP/agent1-00000002", "600.2", application="AppDial", duration=50)
    ringing = channel("PJSIP/agent1-00000003", "600.3", application="AppQueue",
                      state="Ringing", duration=90)
    assert read(short, long, ringing).busy == {"agent1": CallElsewhere("600.2", None)}
    assert read(ringing, long, short).busy == {"agent1": CallElsewhere("600.2", None)}
    first = nailed_seat("agent1", "600.4", duration=300)
    second = nailed_seat("agent1", "600.5", duration=3)
    assert read(second, first).nailed == {"agent1": "600.4"}


def test_an_empty_snapshot_says_nothing_is_live() -> None:
    assert read() == AgentsOnChannels(nailed={}, busy={}, live=frozenset())
