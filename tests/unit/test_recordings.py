"""Call recording: the policy's decisions (hand cases and hypothesis, with an injected random
source), file names no caller can steer, the settings' checks, the store on both databases,
the live service over a stand-in AGI session and AMI (announcement first, MixMonitor, the
file's way into the folder, on demand, retention), and the routes with their roles
(Range requests, ids only)."""

from __future__ import annotations

import random
import re
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.asterisk.agi import AgiEnvironment
from callcenter.config import ConfigError, load_settings
from callcenter.core.clock import VirtualClock
from callcenter.core.recording_policy import (
    SECONDS_PER_DAY,
    PolicyRule,
    RecordingMode,
    RecordingPolicy,
    RecordingReason,
    decide,
    expired,
    file_name,
    policy_for,
    stored_path,
)
from callcenter.features.accounts.store import Role
from callcenter.features.calls.store import CallRepository
from callcenter.features.evaluations.store import EvaluationStore
from callcenter.features.recordings.service import (
    CallRecordings,
    RecordingRefused,
    policy_rules,
    wav_seconds,
)
from callcenter.features.recordings.store import (
    RecordingNotFound,
    RecordingStatus,
    RecordingStore,
)
from callcenter.web.app import WebServices, make_app
from tests.support.web import accounts_for, client_signed_as, health_probe

T0 = 1_795_000_000.0  # 2026-11-18 UTC
ALL = RecordingPolicy(RecordingMode.ALL, announce=True, retention_days=30)
ON_DEMAND = RecordingPolicy(RecordingMode.ON_DEMAND, announce=True, retention_days=30)


# --------------------------------------------------------------------------- the policy


def test_none_records_nothing_and_says_nothing():
    decision = decide(RecordingPolicy(RecordingMode.NONE, announce=True), 0.0)
    assert (decision.kept, decision.armed, decision.announce) == (False, False, False)


def test_all_records_from_the_start_and_announces_when_told():
    decision = decide(ALL, 0.99)
    assert decision.reason is RecordingReason.ALL
    assert decision.armed and decision.audible_from_start and decision.announce
    quiet = decide(RecordingPolicy(RecordingMode.ALL, announce=False), 0.5)
    assert quiet.armed and not quiet.announce


def test_on_demand_is_armed_but_not_heard_until_asked():
    decision = decide(ON_DEMAND, 0.5)
    assert decision.reason is RecordingReason.ON_DEMAND
    assert decision.armed and not decision.audible_from_start


@given(share=st.integers(1, 100), draw=st.floats(0, 1, exclude_max=True))
def test_a_share_records_exactly_the_draws_below_it_and_announces_to_everyone(share, draw):
    decision = decide(RecordingPolicy(RecordingMode.SHARE, share_percent=share), draw)
    sampled = draw < share / 100
    assert decision.armed is sampled
    assert decision.reason is (RecordingReason.QUALITY_SAMPLE if sampled
                               else RecordingReason.NOT_SAMPLED)
    assert decision.kept and decision.announce  # nobody can tell the sampled calls apart


def test_a_ten_percent_share_with_a_seeded_source_is_reproducible_and_near_ten_percent():
    policy = RecordingPolicy(RecordingMode.SHARE, share_percent=10)

    def sampled(seed: int) -> list[bool]:
        source = random.Random(seed)
        return [decide(policy, source.random()).armed for _ in range(5000)]

    first = sampled(7)
    assert first == sampled(7)  # the same source, the same calls
    assert 450 <= sum(first) <= 550  # 10 % of 5000, within about 3 standard deviations


def test_a_draw_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="draw"):
        decide(ALL, 1.0)


@pytest.mark.parametrize(("kwargs", "field_"), [
    ({"mode": RecordingMode.SHARE, "share_percent": 0}, "share_percent"),
    ({"share_percent": 101}, "share_percent"),
    ({"share_percent": float("nan")}, "share_percent"),
    ({"retention_days": 0}, "retention_days"),
    ({"retention_days": True}, "retention_days"),
])
def test_a_policy_that_cannot_be_applied_is_refused_naming_the_field(kwargs, field_):
    with pytest.raises(ValueError, match=f"policy.{field_}"):
        RecordingPolicy(**kwargs)


def test_a_campaigns_policy_wins_over_its_queues_and_the_default_is_none():
    rules = [PolicyRule(ALL, queue="sales"), PolicyRule(ON_DEMAND, campaign="spring")]
    assert policy_for(rules, queue="sales", campaign="spring") is ON_DEMAND
    assert policy_for(rules, queue="sales", campaign="autumn") is ALL
    assert policy_for(rules, queue="support", campaign=None).mode is RecordingMode.NONE


@given(st.text(min_size=1, max_size=300))
def test_a_file_name_is_made_of_the_call_id_alone_and_cannot_leave_its_folder(call_id):
    name = file_name(call_id)
    assert re.fullmatch(r"call-[A-Za-z0-9.-]{0,80}\.wav", name)
    assert "/" not in name and not name.startswith(".")
    path = stored_path(call_id, T0)
    assert path.parts[:3] == ("2026", "11", "18") and len(path.parts) == 4


def test_a_real_uniqueid_keeps_its_shape():
    assert file_name("1795000000.42") == "call-1795000000.42.wav"
    assert file_name("../../etc/passwd") == "call--..-etc-passwd.wav"


def test_retention_counts_whole_days_from_the_start():
    assert not expired(T0, 30, T0 + 30 * SECONDS_PER_DAY - 1)
    assert expired(T0, 30, T0 + 30 * SECONDS_PER_DAY)


# --------------------------------------------------------------------------- settings


def settings_with(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "callcenter.toml"
    path.write_text(text)
    return load_settings(path, env={"CALLCENTER_DATA_DIR": str(tmp_path)})


def test_policies_come_from_the_settings(tmp_path: Path):
    settings = settings_with(tmp_path, """
[[recording_policies]]
queue = "sales"
mode = "share"
share_percent = 10
retention_days = 7
[[recording_policies]]
campaign = "spring"
mode = "on_demand"
announce = false
""")
    rules = policy_rules(settings)
    assert rules[0] == PolicyRule(RecordingPolicy(RecordingMode.SHARE, 10, True, 7),
                                  queue="sales")
    assert rules[1].campaign == "spring" and not rules[1].policy.announce


@pytest.mark.parametrize(("entry", "message"), [
    ('queue = "nowhere"\nmode = "all"', r"recording_policies\[0\].queue: 'nowhere'"),
    ('queue = "sales"\ncampaign = "x"\nmode = "all"', "either a queue or a campaign"),
    ('queue = "sales"\nmode = "sometimes"', r"recording_policies\[0\].mode: 'sometimes'"),
    ('queue = "sales"\nmode = "share"', r"recording_policies\[0\].share_percent"),
    ('queue = "sales"\nmode = "all"\nretention_days = 0',
     r"recording_policies\[0\].retention_days"),
])
def test_a_bad_policy_stops_the_start_naming_the_entry(tmp_path: Path, entry, message):
    with pytest.raises(ConfigError, match=message):
        settings_with(tmp_path, f"[[recording_policies]]\n{entry}\n")


def test_a_queue_with_two_policies_is_refused(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"recording_policies\[1\]: queue 'sales' already"):
        settings_with(tmp_path, '[[recording_policies]]\nqueue = "sales"\nmode = "all"\n'
                                '[[recording_policies]]\nqueue = "sales"\nmode = "none"\n')


# --------------------------------------------------------------------------- stand-ins


@dataclass
class FakeSession:
    """The caller's AGI session: what the service asked of it, in order."""

    env: AgiEnvironment
    commands: list[str] = field(default_factory=list)
    hung_up: bool = False

    async def stream_file(self, name: str, escape_digits: str = "") -> str | None:
        self.commands.append(f"play {name}")
        return None

    async def exec(self, app: str, args: str = "") -> int:
        self.commands.append(f"{app}({args})")
        return 0


def caller(call_id: str) -> FakeSession:
    return FakeSession(AgiEnvironment.from_lines({
        "agi_uniqueid": call_id, "agi_channel": f"PJSIP/anonymous-{call_id[-4:]}"}))


@dataclass
class FakeAmi:
    actions: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False

    async def send(self, action: Any) -> dict[str, str]:
        if self.down:
            raise ConnectionError("AMI is down")
        self.actions.append(dict(action))
        return {"Response": "Success"}


def write_wav(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x01\x00" * int(8000 * seconds))


@dataclass
class World:
    clock: VirtualClock
    store: RecordingStore
    service: CallRecordings
    ami: FakeAmi
    spool: Path
    folder: Path


def world_with(sessions: async_sessionmaker[AsyncSession], tmp_path: Path,
               rules: list[PolicyRule], draws: list[float] | None = None) -> World:
    clock = VirtualClock(T0)
    store = RecordingStore(sessions)
    ami = FakeAmi()
    pending = list(draws or [])
    spool, folder = tmp_path / "spool" / "monitor", tmp_path / "recordings"
    spool.mkdir(parents=True)
    service = CallRecordings(store=store, clock=clock, rules=rules, folder=folder,
                             asterisk_folder=spool, settle_seconds=0,
                             draw=lambda: pending.pop(0) if pending else 0.5,
                             send=ami.send, campaign_of=lambda call_id: None)
    return World(clock, store, service, ami, spool, folder)


# --------------------------------------------------------------------------- the service


async def test_an_all_call_is_announced_first_recorded_while_bridged_and_stored(
        sessions, tmp_path: Path):
    w = world_with(sessions, tmp_path, [PolicyRule(ALL, queue="sales")])
    session = caller("1795000000.7")
    await w.service.caller_joined(session, "1795000000.7", "sales")
    w.clock.advance(4)
    await w.service.connecting(session, "1795000000.7", "sales", "agent1")
    await w.service.connecting(session, "1795000000.7", "sales", "agent2")  # after a transfer
    assert session.commands == ["play callcenter/recording-notice",
                                "MixMonitor(call-1795000000.7.wav,b)"]
    write_wav(w.spool / "call-1795000000.7.wav", 12.5)  # what Asterisk wrote
    w.clock.advance(20)
    w.service.channel_gone("1795000000.7")
    await w.service.drain()
    recording = await w.store.by_call("1795000000.7")
    assert recording.status is RecordingStatus.STORED
    assert (recording.announced, recording.announced_at) == (True, T0)
    assert recording.agent_id == "agent1"  # the first agent, who took the call
    assert recording.file == "2026/11/18/call-1795000000.7.wav"
    assert recording.seconds == pytest.approx(12.5)
    stored = w.folder / recording.file
    assert stored.stat().st_size == recording.size_bytes
    assert stored.stat().st_mode & 0o077 == 0  # nobody else may read it
    assert not (w.spool / "call-1795000000.7.wav").exists()
    assert recording.ended_at == T0 + 24 and recording.expires_at == T0 + 30 * SECONDS_PER_DAY
    assert w.ami.actions == []


async def test_a_call_not_sampled_hears_the_announcement_and_is_not_recorded(
        sessions, tmp_path: Path):
    share = RecordingPolicy(RecordingMode.SHARE, share_percent=10)
    w = world_with(sessions, tmp_path, [PolicyRule(share, queue="sales")], draws=[0.1, 0.05])
    first, second = caller("1795000000.1"), caller("1795000000.2")
    for session in (first, second):
        await w.service.connecting(session, session.env.uniqueid, "sales", "agent1")
    assert first.commands == ["play callcenter/recording-notice"]  # 0.1 is not below 10 %
    assert second.commands[-1] == "MixMonitor(call-1795000000.2.wav,b)"
    not_sampled = await w.store.by_call("1795000000.1")
    assert (not_sampled.reason, not_sampled.status) == (RecordingReason.NOT_SAMPLED,
                                                        RecordingStatus.NO_AUDIO)
    assert (await w.store.by_call("1795000000.2")).reason is RecordingReason.QUALITY_SAMPLE


async def test_a_queue_without_a_policy_leaves_no_trace(sessions, tmp_path: Path):
    w = world_with(sessions, tmp_path, [PolicyRule(ALL, queue="sales")])
    session = caller("1795000000.3")
    await w.service.connecting(session, "1795000000.3", "support", "agent1")
    assert session.commands == []
    with pytest.raises(RecordingNotFound):
        await w.store.by_call("1795000000.3")


async def test_on_demand_is_muted_until_the_agent_asks_and_kept_only_then(
        sessions, tmp_path: Path):
    w = world_with(sessions, tmp_path, [PolicyRule(ON_DEMAND, queue="sales")])
    asked, never = caller("1795000000.4"), caller("1795000000.5")
    for session in (asked, never):
        await w.service.connecting(session, session.env.uniqueid, "sales", "agent1")
    assert [a["State"] for a in w.ami.actions] == ["1", "1"]
    assert w.ami.actions[0] == {"Action": "MixMonitorMute", "Channel": asked.env.channel,
                                "Direction": "both", "State": "1"}
    w.clock.advance(30)
    recording = await w.service.request("1795000000.4", "alice")
    await w.service.request("1795000000.4", "alice")  # asked twice: the first stands
    assert w.ami.actions[2:] == [{"Action": "MixMonitorMute", "Channel": asked.env.channel,
                                  "Direction": "both", "State": "0"}]
    assert (recording.requested_at, recording.requested_by) == (T0 + 30, "alice")
    for session in (asked, never):
        write_wav(w.spool / file_name(session.env.uniqueid), 40)
        w.service.channel_gone(session.env.uniqueid)
    await w.service.drain()
    assert (await w.store.by_call("1795000000.4")).status is RecordingStatus.STORED
    assert (await w.store.by_call("1795000000.5")).status is RecordingStatus.NO_AUDIO
    assert not (w.spool / file_name("1795000000.5")).exists()  # nobody asked: not kept


async def test_on_demand_is_refused_for_other_policies_and_calls_not_on(sessions, tmp_path):
    w = world_with(sessions, tmp_path, [PolicyRule(ALL, queue="sales")])
    session = caller("1795000000.6")
    await w.service.connecting(session, "1795000000.6", "sales", "agent1")
    with pytest.raises(RecordingRefused, match="does not record on demand"):
        await w.service.request("1795000000.6", "alice")
    with pytest.raises(RecordingNotFound):
        await w.service.request("1795000000.99", "alice")


async def test_an_on_demand_recorder_that_cannot_be_muted_is_stopped(sessions, tmp_path):
    w = world_with(sessions, tmp_path, [PolicyRule(ON_DEMAND, queue="sales")])
    w.ami.down = True
    session = caller("1795000000.8")
    await w.service.connecting(session, "1795000000.8", "sales", "agent1")  # the call goes on
    assert session.commands[-2:] == ["MixMonitor(call-1795000000.8.wav,b)",
                                     "StopMixMonitor()"]
    with pytest.raises(RecordingRefused, match="no agent"):
        await w.service.request("1795000000.8", "alice")


async def test_a_caller_never_bridged_leaves_no_file(sessions, tmp_path: Path):
    w = world_with(sessions, tmp_path, [PolicyRule(ALL, queue="sales")])
    gone_early, no_audio = caller("1795000000.10"), caller("1795000000.11")
    await w.service.caller_joined(gone_early, "1795000000.10", "sales")  # hung up waiting
    await w.service.connecting(no_audio, "1795000000.11", "sales", "agent1")
    write_wav(w.spool / file_name("1795000000.11"), 0)  # the agent never answered
    for call_id in ("1795000000.10", "1795000000.11"):
        w.service.channel_gone(call_id)
    await w.service.drain()
    for call_id in ("1795000000.10", "1795000000.11"):
        recording = await w.store.by_call(call_id)
        assert recording.status is RecordingStatus.NO_AUDIO and recording.file is None
    assert list(w.folder.rglob("*.wav")) == []


async def stored_call(w: World, call_id: str, seconds: float = 3) -> int:
    session = caller(call_id)
    await w.service.connecting(session, call_id, "sales", "agent1")
    write_wav(w.spool / file_name(call_id), seconds)
    w.service.channel_gone(call_id)
    await w.service.drain()
    return (await w.store.by_call(call_id)).id


async def test_retention_deletes_expired_files_and_marks_their_rows(sessions, tmp_path):
    w = world_with(sessions, tmp_path, [PolicyRule(ALL, queue="sales")])
    old = await stored_call(w, "1795000000.20")
    w.clock.advance(10 * SECONDS_PER_DAY)
    young = await stored_call(w, "1795000000.21")
    w.clock.advance(20 * SECONDS_PER_DAY)  # the first is 30 days old now
    assert await w.service.sweep() == 1
    gone, kept = await w.store.get(old), await w.store.get(young)
    assert (gone.status, gone.deleted_by, gone.deleted_at) == (
        RecordingStatus.DELETED, "retention", w.clock.now())
    assert not (w.folder / str(gone.file)).exists()
    assert kept.status is RecordingStatus.STORED and (w.folder / str(kept.file)).is_file()
    assert await w.service.sweep() == 0


async def test_a_supervisor_deletes_one_and_it_is_audited(sessions, tmp_path: Path):
    w = world_with(sessions, tmp_path, [PolicyRule(ALL, queue="sales")])
    recording_id = await stored_call(w, "1795000000.30")
    file = w.folder / str((await w.store.get(recording_id)).file)
    w.clock.advance(60)
    deleted = await w.service.delete(recording_id, "sue")
    assert (deleted.deleted_by, deleted.deleted_at) == ("sue", T0 + 60)
    assert not file.exists()
    with pytest.raises(RecordingNotFound):
        await w.service.delete(recording_id, "sue")
    with pytest.raises(RecordingNotFound):
        w.service.audio_path(await w.store.get(recording_id))


# --------------------------------------------------------------------------- the store


async def test_a_call_is_decided_once(sessions):
    store = RecordingStore(sessions)
    first = await store.decided("c1", decide(ALL, 0.5), queue="sales", campaign=None, at=T0)
    again = await store.decided("c1", decide(ON_DEMAND, 0.5), queue="sales", campaign=None,
                                at=T0 + 5)
    assert again == first


async def test_the_listing_filters_newest_first(sessions):
    store = RecordingStore(sessions)
    for n, (queue, at) in enumerate([("sales", T0), ("support", T0 + 10), ("sales", T0 + 20)]):
        await store.decided(f"c{n}", decide(ALL, 0.5), queue=queue, campaign=None, at=at)
        await store.connected(f"c{n}", f"agent{n % 2}")
    assert [r.call_id for r in await store.listing()] == ["c2", "c1", "c0"]
    assert [r.call_id for r in await store.listing(queue="sales")] == ["c2", "c0"]
    assert [r.call_id for r in await store.listing(agent_id="agent1")] == ["c1"]
    assert [r.call_id for r in await store.listing(since=T0 + 5, until=T0 + 20)] == ["c1"]
    assert await store.listing(with_audio=True) == []


# --------------------------------------------------------------------------- the routes


async def served(sessions, tmp_path: Path) -> tuple[World, TestServer, Any]:
    w = world_with(sessions, tmp_path, [PolicyRule(ALL, queue="sales")])
    accounts = accounts_for(sessions)
    app = make_app(WebServices(CallRepository(sessions), health_probe(), accounts, w.clock,
                               recordings=w.service, recording_store=w.store,
                               evaluations=EvaluationStore(sessions)))
    return w, TestServer(app), accounts


async def test_only_supervisors_and_admins_hear_a_recording_with_ranges(sessions, tmp_path):
    w, server, accounts = await served(sessions, tmp_path)
    recording_id = await stored_call(w, "1795000000.40", seconds=2)
    file = w.folder / str((await w.store.get(recording_id)).file)
    whole = file.read_bytes()
    supervisor = await client_signed_as(server, accounts, [Role.SUPERVISOR])
    agent = await client_signed_as(server, accounts, [Role.AGENT], agent_id="agent1")
    try:
        response = await supervisor.get(f"/api/recordings/{recording_id}/audio")
        assert response.status == 200
        assert response.headers["Content-Type"] == "audio/wav"
        assert response.headers["Accept-Ranges"] == "bytes"
        assert await response.read() == whole
        part = await supervisor.get(f"/api/recordings/{recording_id}/audio",
                                    headers={"Range": "bytes=44-1043"})
        assert part.status == 206
        assert part.headers["Content-Range"] == f"bytes 44-1043/{len(whole)}"
        assert await part.read() == whole[44:1044]
        tail = await supervisor.get(f"/api/recordings/{recording_id}/audio",
                                    headers={"Range": "bytes=-100"})
        assert tail.status == 206 and await tail.read() == whole[-100:]
        beyond = await supervisor.get(f"/api/recordings/{recording_id}/audio",
                                      headers={"Range": f"bytes={len(whole) + 10}-"})
        assert beyond.status == 416
        for path in (f"/api/recordings/{recording_id}/audio", f"/api/recordings/{recording_id}",
                     "/api/recordings"):
            assert (await agent.get(path)).status == 403, path
        assert (await agent.delete(f"/api/recordings/{recording_id}")).status == 403
        listed = await (await supervisor.get("/api/recordings", params={"with_audio": "1"})
                        ).json()
        assert [r["audio_url"] for r in listed["recordings"]] == [
            f"/api/recordings/{recording_id}/audio"]
    finally:
        await supervisor.close()
        await agent.close()


async def test_nothing_but_an_id_reaches_the_file(sessions, tmp_path):
    _world, server, accounts = await served(sessions, tmp_path)
    secret = tmp_path / "secret.wav"
    write_wav(secret, 1)
    admin = await client_signed_as(server, accounts, [Role.ADMIN])
    try:
        for raw in ("..%2F..%2Fsecret.wav", "..", "1.wav", "-1", "0", "%2Fetc%2Fpasswd",
                    "99999999999999999999"):
            response = await admin.get(f"/api/recordings/{raw}/audio")
            assert response.status in (400, 404), raw
            if response.status == 400:
                assert "is not an id" in (await response.json())["error"]
        assert (await admin.get("/api/recordings/12345/audio")).status == 404
    finally:
        await admin.close()


async def test_a_deleted_recording_is_404_and_says_who_deleted_it(sessions, tmp_path):
    w, server, accounts = await served(sessions, tmp_path)
    recording_id = await stored_call(w, "1795000000.41")
    supervisor = await client_signed_as(server, accounts, [Role.SUPERVISOR], username="sue")
    try:
        deleted = await supervisor.delete(f"/api/recordings/{recording_id}")
        body = await deleted.json()
        assert deleted.status == 200 and body["deleted_by"] == "sue"
        assert body["status"] == "deleted" and body["audio_url"] is None
        assert (await supervisor.get(f"/api/recordings/{recording_id}/audio")).status == 404
        assert (await supervisor.delete(f"/api/recordings/{recording_id}")).status == 404
    finally:
        await supervisor.close()


async def test_an_agent_starts_only_their_own_on_demand_recording(sessions, tmp_path):
    w, server, accounts = await served(sessions, tmp_path)
    w.service._rules = [PolicyRule(ON_DEMAND, queue="sales")]
    session = caller("1795000000.50")
    await w.service.connecting(session, "1795000000.50", "sales", "agent1")
    mine = await client_signed_as(server, accounts, [Role.AGENT], agent_id="agent1")
    other = await client_signed_as(server, accounts, [Role.AGENT], agent_id="agent2")
    try:
        refused = await other.post("/api/recordings/requests",
                                   json={"call_id": "1795000000.50"})
        assert refused.status == 403
        bad = await mine.post("/api/recordings/requests", json={"call_id": "../x y"})
        assert bad.status == 400 and "call_id" in (await bad.json())["error"]
        asked = await mine.post("/api/recordings/requests", json={"call_id": "1795000000.50"})
        assert asked.status == 200
        assert (await asked.json())["requested_by"] == "agentagent1"
        unknown = await mine.post("/api/recordings/requests", json={"call_id": "17.1"})
        assert unknown.status == 404
    finally:
        await mine.close()
        await other.close()


def test_wav_seconds_reads_the_header(tmp_path: Path):
    write_wav(tmp_path / "a.wav", 1.25)
    assert wav_seconds(tmp_path / "a.wav") == pytest.approx(1.25)


async def test_a_recording_left_pending_by_a_crashed_run_is_finished_by_the_sweep(
        sessions, tmp_path: Path):
    w = world_with(sessions, tmp_path, [PolicyRule(ALL, queue="sales")])
    await w.service.connecting(caller("1795000000.70"), "1795000000.70", "sales", "agent1")
    write_wav(w.spool / file_name("1795000000.70"), 5)
    # The service dies before the hangup; the next run knows nothing of the call.
    restarted = CallRecordings(store=w.store, clock=w.clock, rules=[], folder=w.folder,
                               asterisk_folder=w.spool, settle_seconds=0)
    await restarted.sweep()
    assert (await w.store.by_call("1795000000.70")).status is RecordingStatus.PENDING
    w.clock.advance(SECONDS_PER_DAY + 1)  # no call lasts a day: it is over
    await restarted.sweep()
    recording = await w.store.by_call("1795000000.70")
    assert recording.status is RecordingStatus.STORED
    assert recording.seconds == pytest.approx(5)
