"""One home for identifier rules and defaults: the settings, the store and the ACD agree."""

from __future__ import annotations

import pytest

from callcenter import config
from callcenter.core import identifiers
from callcenter.core.acd import Acd
from callcenter.core.acd_config import Strategy
from callcenter.core.clock import VirtualClock, to_datetime
from callcenter.features.agents.models import AgentRow
from callcenter.features.agents.store import AgentDirectory, NewAgent
from callcenter.store import create_engine, session_factory

T0 = 1_700_000_000.0


@pytest.mark.parametrize(("check", "good", "bad"), [
    (identifiers.check_agent_id, ["agent1", "a", "a" * 32, "ann-b_2"],
     ["Ann", "1ann", "a" * 33, "a b", "", "ann\n", 7]),
    (identifiers.check_queue_name, ["sales", "vip-2"], ["Sales", "s;x", "-s"]),
    (identifiers.check_flow_name, ["main"], ["Main", "main.yaml"]),
    (identifiers.check_pause_reason, ["lunch"], ["Lunch!", "RONA"]),
    (identifiers.check_prompt_name, ["Welcome_2", "0-intro"], ["-x", "a b", "x" * 65]),
    (identifiers.check_e164, ["+551130000000", "+12025550123"],
     ["551130000000", "+0551130000", "+1234567", "+5511300000001234"]),
])
def test_each_rule_takes_what_it_should_and_names_the_rest(check, good, bad) -> None:
    for value in good:
        assert check("where", value) == value
    for value in bad:
        with pytest.raises(ValueError, match=r"^where: .* is not an? "):
            check("where", value)


def test_an_error_says_what_is_allowed() -> None:
    with pytest.raises(ValueError) as error:
        identifiers.check_agent_id("agents[0].id", "Ann")
    assert str(error.value) == ("agents[0].id: 'Ann' is not an agent id (a lowercase letter, "
                                "then up to 31 lowercase letters, digits, '-' or '_')")


def test_the_settings_strategies_are_the_acd_strategies() -> None:
    assert tuple(s.value for s in Strategy) == config.STRATEGIES
    assert config.QueueSettings(name="x").strategy == Strategy.LONGEST_IDLE


def test_the_acd_and_the_settings_default_to_the_same_pause_reasons(tmp_path) -> None:
    settings = config.load_settings(env={"CALLCENTER_DATA_DIR": str(tmp_path)})
    assert settings.acd.pause_reasons == identifiers.DEFAULT_PAUSE_REASONS
    acd = Acd({}, [], 0.0)
    assert acd.pause_reasons == (*identifiers.DEFAULT_PAUSE_REASONS, identifiers.RONA)


async def test_the_store_creates_agents_by_the_settings_rule_but_still_reads_older_ids(
    db_url: str,
) -> None:
    engine = create_engine(db_url)
    try:
        directory = AgentDirectory(session_factory(engine), clock=VirtualClock(start=T0))
        await directory.create(NewAgent(id="agent1", name="Agent One"))
        for older in ("Agent2", "2nd", "a" * 40):  # what the store accepted before
            with pytest.raises(ValueError, match=f"^id: '{older}' is not an agent id"):
                await directory.create(NewAgent(id=older, name="Older"))
        async with session_factory(engine).begin() as session:  # stored by an older version
            session.add(AgentRow(id="Agent2", name="Older", sip_digest="x" * 32, contact=None,
                                 active=True, created_at=to_datetime(T0),
                                 updated_at=to_datetime(T0)))
        older_agent = await directory.get("Agent2")
        assert older_agent is not None and older_agent.name == "Older"
        assert [a.id for a in await directory.list()] == ["Agent2", "agent1"]
        renamed = await directory.update("Agent2", name="Still Here")
        assert renamed.name == "Still Here"
        with pytest.raises(ValueError, match="is not an agent id"):
            await directory.get("a" * 41)
    finally:
        await engine.dispose()
