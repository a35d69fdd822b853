"""The agent desk after an AMI (re)connect: agents brought in line with what the channel
snapshot says (nailed-up sessions, calls the ACD did not route), then followed by Hangups.
A real directory (SQLite, and PostgreSQL when available), a real ACD behind its driver."""

from __future__ import annotations

from types import SimpleNamespace

from callcenter.core.acd import AgentState, ConnectMode, OfferCall
from callcenter.core.agent_recovery import AgentsOnChannels, CallElsewhere
from tests.support.agent_floor import FLOOR_T0, Floor

T0 = FLOOR_T0  # the clock of the floor fixture (tests/conftest.py)


def snapshot(*, nailed: dict[str, str] | None = None,
             busy: dict[str, CallElsewhere] | None = None,
             also_live: tuple[str, ...] = ()) -> AgentsOnChannels:
    nailed, busy = nailed or {}, busy or {}
    live = {*nailed.values(), *(call.channel for call in busy.values()), *also_live}
    return AgentsOnChannels(nailed=nailed, busy=busy, live=frozenset(live))


async def state_log(floor: Floor, agent_id: str) -> list[tuple[str, str | None]]:
    await floor.desk.flush()
    return [(c.state, c.reason) for c in await floor.directory.state_history(agent_id)]


async def test_a_logged_in_agent_found_in_their_bridge_is_nailed_up_again(floor: Floor):
    floor.desk.request("alice", "login")  # as restore() does: ringing, phone = agent id
    floor.clock.advance(3)
    found = snapshot(nailed={"alice": "1795.1"})
    floor.desk.recover(found)
    floor.desk.recover(found)  # every reconnect: the same snapshot changes nothing more
    view = floor.driver.acd.agent("alice")
    assert (view.state, view.mode, view.phone) == (AgentState.READY, ConnectMode.NAILED,
                                                    "alice")
    assert floor.desk.nailed_channel("alice") == "1795.1"
    inbox = floor.driver.enqueue("call-1", "sales")
    assert inbox.get_nowait() == OfferCall("call-1", "alice", 15.0, ConnectMode.NAILED, False,
                                           "sales")
    floor.driver.left("call-1")
    floor.desk.channel_gone("1795.1")  # the agent hung up their line
    assert floor.driver.acd.agent_state("alice") is AgentState.LOGGED_OUT
    assert await state_log(floor, "alice") == [
        ("ready", "login"), ("ringing", "call call-1"), ("ready", "caller left"),
        ("logged_out", "logout")]


async def test_an_agent_logged_out_stays_so_though_their_phone_sits_in_the_bridge(floor: Floor):
    floor.desk.recover(snapshot(nailed={"alice": "1795.1"}))
    assert floor.driver.acd.agent_state("alice") is AgentState.LOGGED_OUT
    assert floor.desk.nailed_channel("alice") is None
    assert await state_log(floor, "alice") == []


async def test_an_agent_on_a_fallback_call_is_held_until_its_channel_hangs_up(floor: Floor):
    floor.desk.request("alice", "login")
    floor.desk.request("bob", "login")
    floor.clock.advance(5)
    found = snapshot(busy={"alice": CallElsewhere("1795.7", "sales")})
    floor.desk.recover(found)
    floor.desk.recover(found)
    view = floor.driver.acd.agent("alice")
    assert (view.state, view.call_id) == (AgentState.ON_CALL, "1795.7")
    # alice has been idle longest, yet the next caller goes to bob (sales tier 1, open at 30 s)
    inbox = floor.driver.enqueue("call-1", "sales")
    assert inbox.empty()
    floor.clock.advance(30)
    floor.driver.tick()
    assert inbox.get_nowait().agent_id == "bob"  # type: ignore[union-attr]
    floor.desk.channel_gone("1795.7")  # AMI: Hangup
    assert floor.driver.acd.agent_state("alice") is AgentState.WRAP_UP  # sales: 10 s
    floor.clock.advance(10)
    floor.driver.tick()
    assert floor.driver.acd.agent_state("alice") is AgentState.READY
    assert await state_log(floor, "alice") == [
        ("ready", "login"), ("on_call", "call 1795.7 outside the ACD"),
        ("wrap_up", "call ended"), ("ready", "wrap-up ended")]


async def test_channels_gone_from_the_next_snapshot_hung_up_unseen(floor: Floor):
    floor.desk.request("alice", "login")
    floor.desk.request("bob", "login")
    floor.desk.recover(snapshot(nailed={"alice": "1795.1"},
                                busy={"alice": CallElsewhere("1795.2", None),
                                      "bob": CallElsewhere("1795.3", None)}))
    assert floor.driver.acd.agent_state("bob") is AgentState.ON_CALL
    floor.desk.request("alice", "pause", reason="lunch")  # deferred: she is on a call
    floor.desk.recover(snapshot(also_live=("1795.9",)))  # AMI was away; all three are gone
    assert floor.driver.acd.agent_state("bob") is AgentState.READY
    assert floor.driver.acd.agent_state("alice") is AgentState.LOGGED_OUT
    assert floor.desk.nailed_channel("alice") is None
    assert (await state_log(floor, "alice"))[-3:] == [
        ("on_call", "call 1795.2 outside the ACD"), ("paused", "lunch"), ("logged_out", "logout")]


async def test_calls_the_acd_routed_itself_are_left_to_it(floor: Floor):
    floor.desk.request("alice", "login")
    inbox = floor.driver.enqueue("call-1", "sales")
    assert isinstance(inbox.get_nowait(), OfferCall)  # alice rings: the service's own Dial
    floor.desk.recover(snapshot(busy={"alice": CallElsewhere("1795.4", "sales")}))
    floor.driver.answered("call-1", "alice")
    floor.desk.recover(snapshot(busy={"alice": CallElsewhere("1795.4", "sales")}))
    view = floor.driver.acd.agent("alice")
    assert (view.state, view.call_id) == (AgentState.ON_CALL, "call-1")
    floor.desk.channel_gone("1795.4")  # nothing held for it: nothing to end
    assert floor.driver.acd.agent_state("alice") is AgentState.ON_CALL
    assert floor.desk.hold_for_call("bob", "1795.5") is False  # logged out: nothing to hold


async def test_a_paused_agent_on_a_call_elsewhere_is_paused_again_after_it(floor: Floor):
    floor.desk.request("alice", "login")
    floor.desk.request("alice", "pause", reason="break")
    assert floor.desk.hold_for_call("alice", "1795.6", queue="sales") is True
    floor.desk.channel_gone("1795.6")
    assert floor.driver.acd.agent_state("alice") is AgentState.WRAP_UP  # sales: 10 s
    floor.clock.advance(10)
    floor.driver.tick()
    view = floor.driver.acd.agent("alice")
    assert (view.state, view.reason) == (AgentState.PAUSED, "break")


class NailedPhone:
    """The FastAGI session of an agent's phone dialling *50."""

    def __init__(self, agent_id: str, uniqueid: str) -> None:
        self.env = SimpleNamespace(channel=f"PJSIP/{agent_id}-00000001", uniqueid=uniqueid,
                                   args=["login-nailed"])
        self.variables: dict[str, str] = {}
        self.hung_up = False

    async def set_variable(self, name: str, value: str) -> None:
        self.variables[name] = value

    async def stream_file(self, name: str, escape_digits: str = "") -> str | None:
        return None  # "you are logged in"


async def test_a_nailed_up_agent_takes_calls_only_once_their_phone_is_in_its_bridge(
        floor: Floor):
    floor.driver.set_reachable("alice", True)
    await floor.desk.handle_feature(NailedPhone("alice", "u1"))  # type: ignore[arg-type]
    assert floor.driver.acd.agent_state("alice") is AgentState.READY
    inbox = floor.driver.enqueue("call-1", "sales")
    assert inbox.empty(), "a caller was joined to a bridge the agent has not reached yet"
    floor.desk.bridge_entered("someone-else")
    assert inbox.empty()
    floor.desk.bridge_entered("u1")  # AMI: the agent's phone entered its bridge
    assert inbox.get_nowait() == OfferCall("call-1", "alice", 15.0, ConnectMode.NAILED, False,
                                           "sales")


async def test_a_phone_gone_before_its_bridge_is_as_reachable_as_it_was(floor: Floor):
    floor.driver.set_reachable("alice", True)
    await floor.desk.handle_feature(NailedPhone("alice", "u2"))  # type: ignore[arg-type]
    assert not floor.driver.reachable("alice")
    floor.desk.channel_gone("u2")
    assert floor.driver.acd.agent_state("alice") is AgentState.LOGGED_OUT
    assert floor.driver.reachable("alice")
