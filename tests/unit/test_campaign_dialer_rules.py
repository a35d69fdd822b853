"""The dialer never places a call the rules forbid, over many random scenarios (hypothesis):
a number on a do-not-call list, without consent where the campaign needs it, or revoked;
outside the callee's hours; more often than its attempts and retry delay allow; or with no
agent logged in. The store is real (SQLite), the ACD is real, the clock is virtual; AMI is
played by the test (every call busy), so each scenario runs many pacing rounds in
milliseconds."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import tempfile
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.asterisk.events import Hangup
from callcenter.core.campaigns import CampaignState
from callcenter.core.consent import ConsentKind, ConsentSource
from callcenter.core.dial_rules import Outcome
from callcenter.store.db import create_engine, session_factory
from tests.support.dialer import dialer_floor

T0 = 1_796_716_800.0  # 2026-12-08 08:00 UTC: 03:00 in Washington, D.C.
NUMBERS = [f"+1202555{100 + i:04d}" for i in range(6)]
ZONE = ZoneInfo("America/New_York")
MAX_ATTEMPTS = 2
BUSY_RETRY_MINUTES = 20

number_state = st.fixed_dictionaries({
    "global_dnc": st.booleans(), "campaign_dnc": st.booleans(),
    "consent": st.sampled_from(["none", "granted", "revoked", "granted-then-revoked"])})
scenario = st.fixed_dictionaries({
    "numbers": st.lists(number_state, min_size=1, max_size=len(NUMBERS)),
    "requires_consent": st.booleans(),
    "ready": st.integers(0, 2),
    "steps": st.lists(st.floats(30, 4 * 3600), min_size=3, max_size=12),
    "listed_later": st.integers(0, len(NUMBERS) - 1),  # put on the DNC list mid-run
})


@pytest.fixture(scope="module")
def template(migrated_sqlite: Path) -> Path:
    return migrated_sqlite


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=scenario)
def test_the_dialer_never_places_a_call_the_rules_forbid(template: Path, case: dict) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "callcenter.db"
        with closing(sqlite3.connect(template)) as source, \
                closing(sqlite3.connect(path)) as copy:
            source.backup(copy)
        asyncio.run(run_scenario(f"sqlite+aiosqlite:///{path}", case))


async def run_scenario(url: str, case: dict) -> None:
    engine = create_engine(url)
    try:
        await check(session_factory(engine), case)
    finally:
        await engine.dispose()


async def check(sessions, case: dict) -> None:  # type: ignore[no-untyped-def]
    numbers = NUMBERS[:len(case["numbers"])]
    floor = await dialer_floor(
        sessions, T0, numbers, ready=("agent1", "agent2")[:case["ready"]],
        requires_consent=case["requires_consent"], max_attempts=MAX_ATTEMPTS,
        hours={"mon-fri": ["09:00-17:00"]},
        retry_minutes={Outcome.BUSY: BUSY_RETRY_MINUTES})
    forbidden: set[str] = set()
    for number, state in zip(numbers, case["numbers"], strict=True):
        for listed, campaign in ((state["global_dnc"], None),
                                 (state["campaign_dnc"], "renewals")):
            if listed:
                await floor.compliance.add_do_not_call(number, campaign, source="test",
                                                       reason="asked")
                forbidden.add(number)
        for kind in {"none": [], "granted": ["granted"], "revoked": ["revoked"],
                     "granted-then-revoked": ["granted", "revoked"]}[state["consent"]]:
            await floor.compliance.record_consent(number, "renewals", ConsentKind(kind),
                                                  source=ConsentSource.API, proof="test")
        if case["requires_consent"] and state["consent"] != "granted":
            forbidden.add(number)
    await floor.campaigns.set_state("renewals", CampaignState.RUNNING, "test")
    late = numbers[case["listed_later"] % len(numbers)]
    dialled_at: dict[str, list[float]] = {}
    for index, step in enumerate(case["steps"]):
        if index == len(case["steps"]) // 2:  # listed while the campaign runs
            await floor.compliance.add_do_not_call(late, None, source="test", reason="now")
            forbidden.add(late)
        before = len(floor.sent)
        await floor.dialer.tick()
        await floor.dialer.settled()
        now = floor.clock.now()
        for number in floor.dialled()[before:]:
            dialled_at.setdefault(number, []).append(now)
            assert number not in forbidden, f"{number} dialled against the rules"
            local = datetime.fromtimestamp(now, UTC).astimezone(ZONE)
            assert local.weekday() < 5 and 9 <= local.hour < 17, f"{number} at {local}"
        if case["ready"] == 0:
            assert len(floor.sent) == before, "a call with no agent logged in"
            campaign = await floor.campaigns.get("renewals")
            assert campaign.state is CampaignState.PAUSED
            return
        floor.clock.advance(step)
    for number, times in dialled_at.items():
        assert len(times) <= MAX_ATTEMPTS, f"{number} dialled {len(times)} times"
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(gap >= BUSY_RETRY_MINUTES * 60 for gap in gaps), (number, gaps)


async def test_an_allowed_number_is_dialled_once_then_waits_for_its_retry(
        sqlite_sessions) -> None:  # type: ignore[no-untyped-def]
    opening = T0 + 6 * 3600  # 09:00 in Washington, D.C., a Tuesday
    floor = await dialer_floor(sqlite_sessions, opening, NUMBERS[:1],
                               retry_minutes={Outcome.BUSY: BUSY_RETRY_MINUTES},
                               hours={"mon-fri": ["09:00-17:00"]})
    await floor.campaigns.set_state("renewals", CampaignState.RUNNING, "test")
    await floor.dialer.tick()
    await floor.dialer.settled()
    assert floor.dialled() == NUMBERS[:1]
    [attempt] = await floor.attempts.attempts("renewals")
    assert (attempt["outcome"], attempt["hangup_cause"]) == ("busy", "cause 17, reason 0")
    [record] = floor.records  # every attempt is a call record, answered or not
    assert (record.direction.value, record.campaign, record.campaign_attempt_id,
            record.caller_number, record.disposition.value if record.disposition else None,
            record.note) == ("outbound", "renewals", attempt["id"], NUMBERS[0], "failed",
                             "campaign renewals: busy")
    floor.clock.advance(BUSY_RETRY_MINUTES * 60 - 1)
    await floor.dialer.tick()
    await floor.dialer.settled()
    assert floor.dialled() == NUMBERS[:1]
    floor.clock.advance(1)
    await floor.dialer.tick()
    await floor.dialer.settled()
    assert floor.dialled() == NUMBERS[:1] * 2



class KeyOnPrompt:
    """A FastAGI session whose customer presses ``key`` during the first prompt."""

    def __init__(self, key: str | None) -> None:
        self.key = key
        self.played: list[str] = []
        self.hung_up = False

    async def stream_file(self, name: str, escape_digits: str = "") -> str | None:
        self.played.append(name)
        first = len(self.played) == 1
        return self.key if first and self.key and self.key in escape_digits else None

    async def hangup(self) -> None:
        self.hung_up = True


@pytest.mark.parametrize("key", ["9", None])
async def test_pressing_9_on_the_safe_harbor_message_stops_the_calls_at_once(
        sqlite_sessions, key: str | None) -> None:  # type: ignore[no-untyped-def]
    floor = await dialer_floor(sqlite_sessions, T0 + 6 * 3600, NUMBERS[:1],
                               requires_consent=True)
    number = NUMBERS[0]
    await floor.compliance.record_consent(number, "renewals", ConsentKind.GRANTED,
                                          source=ConsentSource.API, proof="web form")
    campaign = await floor.campaigns.get("renewals")
    [entry] = await floor.attempts.candidates(campaign, limit=1)
    placed = await floor.attempts.placed("renewals", entry, floor.clock.now())
    session = KeyOnPrompt(key)
    await floor.dialer.safe_harbor(campaign, placed, session)  # type: ignore[arg-type]
    assert session.hung_up
    consent = await floor.compliance.consent(number, "renewals")
    blocked = await floor.compliance.blocked(number, "renewals")
    if key == "9":
        assert session.played == ["callcenter/safe-harbor", "callcenter/campaign-calls-stopped"]
        assert consent.revoked and consent.entry is not None
        assert consent.entry.source is ConsentSource.IVR
        assert blocked is not None and blocked.campaign == "renewals"
    else:
        assert session.played == ["callcenter/safe-harbor"]
        assert consent.granted and blocked is None


async def test_a_trunk_that_fails_every_call_pauses_the_campaign_with_the_reason(
        sqlite_sessions) -> None:  # type: ignore[no-untyped-def]
    numbers = [f"+1202555{200 + i:04d}" for i in range(14)]

    async def refused(action: dict) -> list[dict]:  # type: ignore[type-arg]
        floor.dialer.channel_hung_up(Hangup(uniqueid=action["ChannelId"], linkedid="",
                                            channel="PJSIP/trunk", cause=21,
                                            cause_text="Call rejected"))
        return [{"Event": "OriginateResponse", "Response": "Failure", "Reason": "0"}]

    async def congested(action: dict) -> list[dict]:  # type: ignore[type-arg]
        floor.dialer.channel_hung_up(Hangup(uniqueid=action["ChannelId"], linkedid="",
                                            channel="PJSIP/trunk", cause=34,
                                            cause_text="No circuit/channel congestion"))
        return [{"Event": "OriginateResponse", "Response": "Failure", "Reason": "0"}]

    answers = iter([refused] + [congested] * 20)

    async def answer(action: dict) -> list[dict]:  # type: ignore[type-arg]
        return await next(answers)(action)

    floor = await dialer_floor(sqlite_sessions, T0 + 6 * 3600, numbers,
                               ready=("agent1", "agent2"), answer=answer)
    await floor.campaigns.set_state("renewals", CampaignState.RUNNING, "test")
    for _ in range(8):
        await floor.dialer.tick()
        await floor.dialer.settled()
        campaign = await floor.campaigns.get("renewals")
        if campaign.state is CampaignState.PAUSED:
            break
    assert campaign.state is CampaignState.PAUSED
    assert campaign.state_reason == ("dialer: the trunk failed 10 calls in a row; check the "
                                     "trunk")
    outcomes = [a["outcome"] for a in await floor.attempts.attempts("renewals")]
    # The first was refused by the callee (no answer: not the trunk's fault); then the
    # congested calls, two at a time: the tenth in a row paused it (the eleventh was already
    # ringing beside it). A paused campaign places nothing more.
    assert outcomes.count("no_answer") == 1 and outcomes.count("failed") in (10, 11), outcomes
    placed = len(floor.sent)
    await floor.dialer.tick()
    await floor.dialer.settled()
    assert len(floor.sent) == placed == len(outcomes)


@pytest.mark.parametrize(("zone", "placed_today"), [("UTC", 1), ("America/Sao_Paulo", 0)])
async def test_today_in_the_figures_is_the_centers_day(
        sqlite_sessions, zone: str, placed_today: int) -> None:  # type: ignore[no-untyped-def]
    # Placed at 02:00 UTC: today in UTC, but 23:00 yesterday in São Paulo.
    floor = await dialer_floor(sqlite_sessions, T0 - 6 * 3600, NUMBERS[:1],
                               zone=ZoneInfo(zone))
    campaign = await floor.campaigns.get("renewals")
    [entry] = await floor.attempts.candidates(campaign, limit=1)
    await floor.attempts.placed("renewals", entry, floor.clock.now())
    floor.clock.advance(8 * 3600)  # 10:00 UTC, 07:00 in São Paulo: the same UTC day
    figures = await floor.dialer.figures("renewals")
    assert figures["today"]["placed"] == placed_today
