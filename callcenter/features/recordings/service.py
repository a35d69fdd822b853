"""Recording calls live: the policy's decision, the announcement, Asterisk's MixMonitor, and
the file's way from Asterisk's spool into the recordings folder (docs/recordings.md).

The queue handling (``features.queues.waiting.QueueCalls``) tells this service two moments
of every call that reaches a queue, on the caller's own FastAGI session:

- ``caller_joined``: the caller is in line. The policy (the campaign's, else the queue's)
  is decided once per call with the injected random source; if it says so, the caller
  hears the announcement now, before anything else, and the row says when.
- ``connecting``: an agent is about to be rung or joined. The first time, MixMonitor is
  started on the caller's channel (AGI ``EXEC MixMonitor <file>,b``): ``b`` writes audio only
  while the caller is bridged, so the file holds the talk and neither the ringing nor the
  music; an on-demand call's recorder is then muted at once (AMI ``MixMonitorMute``) until
  the agent asks (``request``). A campaign call, which never "joins" through the IVR, gets
  its decision and announcement here.

MixMonitor stops by itself when the caller's channel goes. On AMI's ``Hangup`` of the
caller (``channel_gone``) the service waits ``settle_seconds`` for Asterisk to close the
file, moves it to ``<folder>/YYYY/MM/DD/call-<id>.wav`` (mode 600), reads its length with
``wave`` and stores the row. The file name comes from the call's id alone
(``core.recording_policy.file_name``).

AMI ``MixMonitor`` itself needs the ``system`` class, which the service's AMI user does not
have (docs/security-privilege.md): that is why the recorder starts over AGI, and only
muting goes over AMI (class ``call``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import shutil
import wave
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callcenter.asterisk.agi import AgiHangup
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.prompting import play
from callcenter.config import Settings
from callcenter.core.clock import Clock
from callcenter.core.recording_policy import (
    SECONDS_PER_DAY,
    PolicyRule,
    RecordingDecision,
    RecordingMode,
    RecordingPolicy,
    RecordingReason,
    decide,
    file_name,
    policy_for,
    stored_path,
)
from callcenter.features.recordings.store import (
    Recording,
    RecordingNotFound,
    RecordingStatus,
    RecordingStore,
)
from callcenter.private_files import private_folder

log = logging.getLogger(__name__)

MUTE_ACTION = "MixMonitorMute"
STABLE_CHECKS = 20  # a file still growing after settle_seconds is waited for this many times
STABLE_INTERVAL = 0.25


Send = Callable[[Mapping[str, Any]], Awaitable[Any]]  # the AMI client's send


class RecordingRefused(Exception):
    """A request this call cannot take (not on demand, not armed yet); the message says why."""


def policy_rules(settings: Settings) -> list[PolicyRule]:
    """The settings' ``[[recording_policies]]`` as the core's rules (config.py checked them)."""
    return [PolicyRule(RecordingPolicy(RecordingMode(rule.mode), rule.share_percent,
                                       rule.announce, rule.retention_days),
                       queue=rule.queue or None, campaign=rule.campaign or None)
            for rule in settings.recording_policies]


@dataclass
class _LiveCall:
    """What the service holds for a call while it is on."""

    decision: RecordingDecision
    channel: str
    decided_at: float
    announced: bool = False
    armed: bool = False
    requested: bool = False
    disabled: bool = False  # on demand whose recorder could not be muted: none for this call


class CallRecordings:
    def __init__(self, *, store: RecordingStore, clock: Clock, rules: list[PolicyRule],
                 folder: Path, asterisk_folder: Path, announcement: str = "recording-notice",
                 settle_seconds: float = 2.0, draw: Callable[[], float] = random.random,
                 send: Send | None = None,
                 campaign_of: Callable[[str], str | None] = lambda call_id: None) -> None:
        self._store = store
        self._clock = clock
        self._rules = rules
        self.folder = folder
        self.asterisk_folder = asterisk_folder
        self._announcement = announcement
        self._settle_seconds = settle_seconds
        self._draw = draw
        self._send = send
        self._campaign_of = campaign_of
        self._live: dict[str, _LiveCall] = {}
        self._finishing: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ during the call

    async def caller_joined(self, session: AgiSession, call_id: str, queue: str | None,
                            ) -> None:
        """Decide the call's policy (once) and say the announcement if it is due. Never
        fails the call: a problem is logged and the call goes on (only AgiHangup passes)."""
        try:
            await self._joined(session, call_id, queue)
        except AgiHangup:
            raise
        except Exception:
            log.exception("call %s: recording policy or announcement failed; the call goes on",
                          call_id)

    async def connecting(self, session: AgiSession, call_id: str, queue: str | None,
                         agent_id: str) -> None:
        """An agent is about to take the call: arm the recorder the first time. Never fails
        the call (only AgiHangup passes)."""
        try:
            await self._joined(session, call_id, queue)
            await self._arm(session, call_id, agent_id)
        except AgiHangup:
            raise
        except Exception:
            log.exception("call %s: the recorder could not be started; the call goes on "
                          "unrecorded", call_id)

    async def _joined(self, session: AgiSession, call_id: str, queue: str | None) -> None:
        live = await self._decide(session, call_id, queue)
        if live is None or live.announced or not live.decision.announce:
            return
        live.announced = True  # said once per call, even if the caller overflows
        at = self._clock.now()
        await play(session, self._announcement)
        await self._store.announced(call_id, at)

    async def _arm(self, session: AgiSession, call_id: str, agent_id: str) -> None:
        live = self._live.get(call_id)
        if live is None or not live.decision.armed or live.disabled:
            return
        if not live.armed:
            name = file_name(call_id)
            # A relative name: Asterisk writes it into <astspooldir>/monitor/.
            await session.exec("MixMonitor", f"{name},b")
            live.armed = True
            if not live.decision.audible_from_start:
                try:
                    await self._mute(live.channel, muted=True)
                except Exception:
                    # Never record a call nobody asked to record: the recorder goes.
                    live.disabled = True
                    live.armed = False
                    await session.exec("StopMixMonitor")
                    raise
        await self._store.connected(call_id, agent_id)

    async def request(self, call_id: str, by: str) -> Recording:
        """Start the on-demand recording of a call that is on now (unmute its recorder)."""
        live = self._live.get(call_id)
        if live is None:
            raise RecordingNotFound(call_id)
        if live.decision.reason is not RecordingReason.ON_DEMAND:
            raise RecordingRefused(f"call {call_id}: its policy does not record on demand "
                                   f"({live.decision.reason})")
        if not live.armed:
            raise RecordingRefused(f"call {call_id}: no agent is on the call yet")
        if not live.requested:
            await self._mute(live.channel, muted=False)
            live.requested = True
            await self._store.requested(call_id, by, self._clock.now())
        return await self._store.by_call(call_id)

    def channel_gone(self, call_id: str) -> None:
        """AMI saw the caller's channel hang up: finish its recording in the background."""
        live = self._live.pop(call_id, None)
        if live is None:
            return
        task = asyncio.create_task(self._finish(call_id, live), name=f"recording-{call_id}")
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def drain(self) -> None:
        """Wait for the recordings being finished (at shutdown, and in tests)."""
        while self._finishing:
            await asyncio.gather(*list(self._finishing), return_exceptions=True)

    # ------------------------------------------------------------------ files

    def audio_path(self, recording: Recording) -> Path:
        """The stored file of a recording that has audio; RecordingNotFound otherwise.
        The path comes from the row (written by us), checked again to lie in the folder."""
        if not recording.has_audio or recording.file is None:
            raise RecordingNotFound(recording.id)
        folder = self.folder.resolve()
        path = (folder / recording.file).resolve()
        if not path.is_relative_to(folder) or not path.is_file():
            raise RecordingNotFound(recording.id)
        return path

    async def delete(self, recording_id: int, by: str) -> Recording:
        """Remove one recording's file and mark it deleted by ``by``; RecordingNotFound for
        an unknown or already deleted one."""
        recording = await self._store.get(recording_id)
        if recording.status is RecordingStatus.DELETED:
            raise RecordingNotFound(recording_id)
        self._remove_file(recording)
        return await self._store.deleted(recording_id, by=by, at=self._clock.now())

    async def sweep(self) -> int:
        """Delete every recording past its retention; finish rows a crashed run left
        pending for over a day. Returns how many were deleted."""
        now = self._clock.now()
        for call_id, live in list(self._live.items()):
            if now - live.decided_at > SECONDS_PER_DAY:  # its Hangup was missed (AMI away)
                del self._live[call_id]
        for stale in await self._store.pending():
            if stale.call_id not in self._live and now - stale.started_at > SECONDS_PER_DAY:
                await self._finish_stale(stale)
        deleted = 0
        for recording in await self._store.expired(now):
            self._remove_file(recording)
            with contextlib.suppress(RecordingNotFound):  # a user deleted it meanwhile
                await self._store.deleted(recording.id, by="retention", at=now)
                deleted += 1
        if deleted:
            log.info("recordings: %d past their retention deleted", deleted)
        return deleted

    async def run_sweeps(self, every_seconds: float) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("recordings: the retention sweep failed; next in %s s",
                              every_seconds)
            await asyncio.sleep(every_seconds)

    # ------------------------------------------------------------------ inside

    async def _decide(self, session: AgiSession, call_id: str, queue: str | None,
                      ) -> _LiveCall | None:
        live = self._live.get(call_id)
        if live is not None:
            return live
        campaign = self._campaign_of(call_id)
        policy = policy_for(self._rules, queue=queue, campaign=campaign)
        decision = decide(policy, self._draw())
        if not decision.kept:
            return None
        now = self._clock.now()
        live = _LiveCall(decision, channel=session.env.channel, decided_at=now)
        self._live[call_id] = live
        await self._store.decided(call_id, decision, queue=queue, campaign=campaign, at=now)
        log.info("call %s: recording policy of %s says %s", call_id,
                 f"campaign {campaign}" if campaign else f"queue {queue}", decision.reason)
        return live

    async def _mute(self, channel: str, *, muted: bool) -> None:
        if self._send is None:
            raise RecordingRefused("recording on demand needs the AMI connection")
        await self._send({"Action": MUTE_ACTION, "Channel": channel,
                              "Direction": "both", "State": "1" if muted else "0"})

    async def _finish(self, call_id: str, live: _LiveCall) -> None:
        ended = self._clock.now()
        source = self.asterisk_folder / file_name(call_id)
        try:
            keep = live.armed and (live.decision.audible_from_start or live.requested)
            if not live.armed:  # never connected, or an on-demand recorder stopped at once
                source.unlink(missing_ok=True)
                await self._store.no_audio(call_id, ended)
                return
            await asyncio.sleep(self._settle_seconds)
            await _until_stable(source)
            if not keep:
                source.unlink(missing_ok=True)  # on demand, never asked for: not kept
                await self._store.no_audio(call_id, ended)
                return
            await self._store_file(call_id, live.decided_at, source, ended)
        except Exception:
            log.exception("call %s: its recording could not be finished (file %s)", call_id,
                          source)

    async def _finish_stale(self, stale: Recording) -> None:
        source = self.asterisk_folder / file_name(stale.call_id)
        keep = stale.reason is not RecordingReason.ON_DEMAND or stale.requested_at is not None
        if keep and source.is_file():
            await self._store_file(stale.call_id, stale.started_at, source, self._clock.now())
        else:
            source.unlink(missing_ok=True)
            await self._store.no_audio(stale.call_id, self._clock.now())

    async def _store_file(self, call_id: str, started_at: float, source: Path,
                          ended: float) -> None:
        relative = stored_path(call_id, started_at)
        target = self.folder / relative
        seconds = await asyncio.to_thread(_move_private, source, target)
        if seconds is None:
            await self._store.no_audio(call_id, ended)
            return
        await self._store.stored(call_id, file=str(relative), seconds=seconds,
                                 size_bytes=target.stat().st_size, ended_at=ended)
        log.info("call %s: recording stored, %.1f s in %s", call_id, seconds, relative)

    def _remove_file(self, recording: Recording) -> None:
        if recording.file is None:
            return
        path = self.folder / recording.file
        try:
            path.unlink(missing_ok=True)
        except OSError:
            log.exception("recording %d: its file %s could not be removed", recording.id, path)
            raise


def _move_private(source: Path, target: Path) -> float | None:
    """Move Asterisk's file into the folder as a private file; its audio length in seconds,
    or None (and no file) when there is no audio at all (the caller was never bridged)."""
    if not source.is_file():
        return None
    seconds = wav_seconds(source)
    if seconds <= 0:
        source.unlink()
        return None
    for depth in (3, 2, 1, 0):  # the folder, YYYY, MM, DD: each private when made here
        private_folder(target.parents[depth])
    shutil.move(source, target)  # the spool may be on another file system
    os.chmod(target, 0o600)
    return seconds


def wav_seconds(path: Path) -> float:
    """The audio length of a WAV file, from its header (frames / rate)."""
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


async def _until_stable(path: Path) -> None:
    """Wait while the file is still growing (Asterisk finishing its last writes)."""
    last = -1
    for _ in range(STABLE_CHECKS):
        size = path.stat().st_size if path.is_file() else -1
        if size == last:
            return
        last = size
        await asyncio.sleep(STABLE_INTERVAL)


def recordings_folder(settings: Settings) -> Path:
    return Path(settings.recordings.folder) if settings.recordings.folder \
        else settings.data_path / "recordings"


def asterisk_monitor_folder(settings: Settings) -> Path:
    """Where MixMonitor's files appear on this machine (see RecordingSettings)."""
    if settings.recordings.asterisk_folder:
        return Path(settings.recordings.asterisk_folder)
    if settings.asterisk.mode == "external":
        return Path("/var/spool/asterisk/monitor")
    from callcenter.asterisk.sandbox import Sandbox  # only the sandbox's layout is needed
    return Sandbox(settings).instance_dir / "spool" / "monitor"
