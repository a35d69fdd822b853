"""One home for identifier rules and defaults: the settings, the store and the ACD agree."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter import config
from callcenter.core import identifiers
from callcenter.core.acd import Acd
from callcenter.core.acd_config import Strategy
from callcenter.core.clock import VirtualClock, to_datetime
from callcenter.core.flows import FlowError, parse_flow
from callcenter.features.agents.models import AgentRow
from callcenter.features.agents.store import AgentDirectory, NewAgent
from callcenter.features.ivr.prompts import PromptError, convert_recordings, load_prompt_texts

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
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    directory = AgentDirectory(sessions, clock=VirtualClock(start=T0))
    await directory.create(NewAgent(id="agent1", name="Agent One"))
    for older in ("Agent2", "2nd", "a" * 40):  # what the store accepted before
        with pytest.raises(ValueError, match=f"^id: '{older}' is not an agent id"):
            await directory.create(NewAgent(id=older, name="Older"))
    async with sessions.begin() as session:  # stored by an older version
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


# ------------------------------------------------------------- names of Asterisk's objects


@pytest.mark.parametrize("name", ["main", "cc-2", "a" * 32, "Main", "2nd", "a" * 33, "a b",
                                  "main\n", ""])
def test_the_settings_name_asterisk_s_objects_by_the_rule_in_identifiers(
    tmp_path: Path, name: str
) -> None:
    follows = identifiers.ASTERISK_NAME_RE.fullmatch(name) is not None
    for toml, key in [(f"[asterisk]\ninstance = {json.dumps(name)}\n", "asterisk.instance"),
                      (f"[asterisk]\nami_username = {json.dumps(name)}\n",
                       "asterisk.ami_username"),
                      (f'[[queues]]\nname = "sales"\nmoh_class = {json.dumps(name)}\n'
                       '[[queues]]\nname = "support"\n[[queues]]\nname = "operator"\n',
                       "queues[0].moh_class")]:
        path = tmp_path / "settings.toml"
        path.write_text(toml)
        environment = {"CALLCENTER_DATA_DIR": str(tmp_path / "data")}
        if follows:
            config.load_settings(path, env=environment)
        else:
            with pytest.raises(config.ConfigError, match=f"^{re.escape(key)}: "):
                config.load_settings(path, env=environment)


# ------------------------------------------------------------------------- prompt names

# Names near both rules' edges: either case, a leading '-' or '_', what could leave a folder
# or split an AGI argument ('/', '.', space, line break, NUL), non-ASCII, too long.
prompt_names = st.one_of(
    st.text(alphabet="aZ09_-./ \n\x00é", max_size=70),
    st.from_regex(identifiers.PROMPT_NAME_RE, fullmatch=True),
    st.from_regex(identifiers.BUILT_PROMPT_NAME_RE, fullmatch=True),
)


def flow_playing(prompt: str) -> list[str]:
    text = ("name: main\nstart: hello\nnodes:\n  hello:\n    type: play\n"
            f"    prompt: {json.dumps(prompt)}\n    next: {{hangup: true}}\n")
    try:
        parse_flow(text, "main.yaml", known_queues=set(),
                   prompt_exists=lambda name, language: True)
    except FlowError as error:
        return [str(problem) for problem in error.problems]
    return []


@given(name=prompt_names)
def test_a_flow_plays_any_prompt_name_and_the_builder_makes_only_the_stricter_ones(
    name: str,
) -> None:
    playable = identifiers.PROMPT_NAME_RE.fullmatch(name) is not None
    buildable = identifiers.BUILT_PROMPT_NAME_RE.fullmatch(name) is not None
    assert playable or not buildable  # a flow can play every prompt the builder makes
    problems = flow_playing(name)
    assert (problems == []) == playable, problems
    if not playable:
        assert any("is not a valid prompt name" in problem or "must not be empty" in problem
                   for problem in problems), problems
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "prompts.toml").write_text(f'{json.dumps(name)} = "Hello."\n',
                                                  encoding="utf-8")
        if buildable:
            assert load_prompt_texts(Path(folder)) == {name: "Hello."}
        else:
            with pytest.raises(PromptError, match=r"a prompt name is lowercase letters, "
                                                   r"digits, '-' or '_'$"):
                load_prompt_texts(Path(folder))


@pytest.mark.parametrize("stem", ["Welcome", "_intro", "-x", "a b", "x" * 65])
def test_a_recording_is_converted_only_under_a_name_the_builder_may_write(
    tmp_path: Path, stem: str
) -> None:
    sources = tmp_path / "en" / "sources"
    sources.mkdir(parents=True)
    (sources / f"{stem}.wav").write_bytes(b"not even audio")
    with pytest.raises(PromptError, match="a prompt name is lowercase letters"):
        convert_recordings(tmp_path)
    assert not (tmp_path / "en" / f"{stem}.wav").exists()
