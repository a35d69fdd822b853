"""The composition root: builds the core, wires the adapters to it and owns their tasks.

Nothing else in the code base creates long-lived state. ``CallCenter.start()`` brings the
parts up in dependency order, each part's stop going onto one ``AsyncExitStack`` as soon as
the part is up; ``stop()`` closes that stack, so the parts stop in reverse order of start.
A start that fails half-way stops what it had started before raising; a part that fails to
stop is logged by name, the others still stop, and ``stop()`` then raises the error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from aiohttp import web

from callcenter.asterisk.agi_server import AgiServer, CommandTimeouts
from callcenter.asterisk.ami import AmiActionError, AmiClient
from callcenter.asterisk.dispatch import AmiDispatcher
from callcenter.asterisk.events import (
    BridgeEnter,
    ContactStatus,
    CoreShowChannel,
    DeviceStateChange,
    DialEnd,
    DTMFEnd,
    Hangup,
    parse_event,
)
from callcenter.asterisk.sandbox import Sandbox, SandboxError
from callcenter.config import Settings
from callcenter.core.acd_actions import AgentState
from callcenter.core.agent_recovery import agents_on_channels
from callcenter.core.calls import CallLedger, agent_from_channel
from callcenter.core.clock import Clock, SystemClock
from callcenter.core.records import CallRecord
from callcenter.core.registrations import RegistrationBook, RegistrationChanged
from callcenter.core.wallboard import Wallboard
from callcenter.features.accounts.store import AccountRepository, ensure_first_admin
from callcenter.features.agent_transfers.service import TRANSFER_EVENTS, CallTransfers
from callcenter.features.agents.admin import AgentAdmin
from callcenter.features.agents.desk import AgentDesk
from callcenter.features.agents.dialplan import AGENT_BRIDGE_PREFIX, FEATURES
from callcenter.features.agents.store import AgentAccount, AgentDirectory
from callcenter.features.callbacks.dialer import CallbackDialer
from callcenter.features.callbacks.store import CallbackRepository
from callcenter.features.calls.missed import MissedCalls, cel_log_path
from callcenter.features.calls.recorder import RecordWriter
from callcenter.features.calls.spool import DEAD_LETTER_FILE, SPOOL_FILE
from callcenter.features.calls.store import CallRepository, DeadLetterRepository
from callcenter.features.campaigns.attempts import AttemptStore
from callcenter.features.campaigns.dialer import CampaignDialer
from callcenter.features.campaigns.dialplan import DISPOSITION_SCRIPT
from callcenter.features.campaigns.dialplan import SCRIPT as CAMPAIGN_SCRIPT
from callcenter.features.campaigns.dispositions import Dispositions
from callcenter.features.campaigns.imports import upload_services
from callcenter.features.campaigns.store import CampaignRepository
from callcenter.features.compliance.store import ComplianceStore
from callcenter.features.evaluations.store import EvaluationStore
from callcenter.features.ivr.datadip import DataDips
from callcenter.features.ivr.flows import LAST_GOOD_FOLDER, FlowLibrary
from callcenter.features.ivr.sessions import InboundCalls
from callcenter.features.ivr.switches import FlowSwitches
from callcenter.features.queues.driver import AcdDriver
from callcenter.features.queues.mirror import QueueMirror
from callcenter.features.queues.setup import build_acd
from callcenter.features.queues.waiting import QueueCalls
from callcenter.features.rating.service import rating_services
from callcenter.features.recordings.service import (
    CallRecordings,
    asterisk_monitor_folder,
    policy_rules,
    recordings_folder,
)
from callcenter.features.recordings.store import RecordingStore
from callcenter.features.reports.agent_store import AgentAggregates, productivity_points
from callcenter.features.reports.agents import AgentReportServices
from callcenter.features.reports.aggregates import ReportAggregates, report_rules
from callcenter.features.reports.campaign_store import CampaignAggregates
from callcenter.features.reports.campaigns import CampaignReportServices
from callcenter.features.reports.framework import ReportContext
from callcenter.features.reports.wrap_ups import QueueWrapUps
from callcenter.features.supervision.dialplan import TRANSFER_SCRIPT
from callcenter.features.supervision.service import Supervision
from callcenter.features.wallboard.service import WallboardService, queue_targets
from callcenter.features.wallboard.store import queued_since
from callcenter.listener import Capacity, plan_capacity, raise_open_file_limit
from callcenter.store.asterisk_log import LogPositions
from callcenter.store.db import create_engine, ping, session_factory, upgrade
from callcenter.web.app import WebServices, make_app
from callcenter.web.events import EventHub, StreamSettings
from callcenter.web.health import HealthProbe
from callcenter.web.limits import GuardedSite, HttpLimits, install_body_deadline, runner_options
from callcenter.web.metrics import LiveReadings

log = logging.getLogger(__name__)

INBOUND_CONTEXTS = ("callers", "agents")
# An AMI event can be missed (DESIGN.md): every so often, calls that Asterisk no longer has
# and no handler owns are closed from a fresh channel snapshot.
RECONCILE_EVERY_SECONDS = 60.0
# Agents' states are restored from the state log at start if changed within this time.
RESTORE_LOOKBACK_SECONDS = 7 * 86400.0
# At start, records an earlier run left in the spool get this long to reach the database
# before calls are adopted (those not stored by then are adopted from the spool).
REPLAY_WAIT_SECONDS = 10.0
# Which module reads which generated file (the agents' endpoints and the fallback queues).
RELOAD_FOR = {"callcenter-pjsip-agents.conf": "res_pjsip.so",
              "callcenter-queues.conf": "app_queue.so"}


@dataclass
class CallCenter:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    # The stops of the parts that are up, last started on top (module docstring).
    _running: AsyncExitStack = field(default_factory=AsyncExitStack, init=False, repr=False)

    async def start(self) -> None:
        """Bring every part up. If one fails, those already up are stopped again (last first)
        and the error is raised; ``stop()`` then has nothing left to do."""
        async with AsyncExitStack() as parts:
            await self._start(parts)
            self._running = parts.pop_all()

    async def stop(self) -> None:
        """Stop what ``start()`` brought up, last started first. Every part is stopped even if
        one fails to (logged with its name); the error is raised afterwards."""
        running, self._running = self._running, AsyncExitStack()
        await running.aclose()

    async def _start(self, parts: AsyncExitStack) -> None:
        s = self.settings
        await upgrade(s.database_url)
        self.engine = create_engine(s.database_url)
        _stops_with(parts, "database", self.engine.dispose)
        # Each call's trunk legs are priced in the transaction that stores its record.
        self.rating = rating_services(session_factory(self.engine), self.clock,
                                      zone=s.center.zone)
        # The report aggregates follow every record stored, in its transaction.
        self.report_aggregates = ReportAggregates(session_factory(self.engine), report_rules(s))
        await self.report_aggregates.claim_day_zone()  # a new database: its day rows' zone
        # So do the agents' (and their state log, and dispositions) and the campaigns'.
        self.agent_aggregates = AgentAggregates(session_factory(self.engine),
                                                productivity_points(s))
        self.campaign_aggregates = CampaignAggregates(session_factory(self.engine),
                                                      self.agent_aggregates)
        # The queues' wrap-up follows the records and the state log; before the report
        # aggregates, as it locks the call's agents before any aggregate row (wrap_ups.py).
        self.queue_wrap_ups = QueueWrapUps(session_factory(self.engine),
                                           day_zone=self.report_aggregates.rules.day_zone)
        self.calls = CallRepository(session_factory(self.engine),
                                    followers=[self.rating.pricer, self.queue_wrap_ups,
                                               self.report_aggregates, self.agent_aggregates])
        self.callbacks = CallbackRepository(session_factory(self.engine), self.clock)
        self.campaigns = CampaignRepository(session_factory(self.engine), self.clock)
        self.compliance = ComplianceStore(session_factory(self.engine), self.clock)
        self.attempts = AttemptStore(session_factory(self.engine),
                                     followers=[self.campaign_aggregates])
        # Uploaded files a killed run left are deleted now; at stop, imports under way are
        # cancelled (nothing half-stored) before the database goes.
        self.uploads = await upload_services(
            s.data_path, session_factory(self.engine), self.clock,
            max_megabytes=s.service.upload_max_megabytes,
            grace_seconds=s.service.http_body_seconds)
        _stops_with(parts, "imports", self.uploads.imports.close)
        self.accounts = AccountRepository(session_factory(self.engine), self.clock)
        # The first start makes an admin with a generated password (data_dir/admin-password).
        self.first_admin_password = await ensure_first_admin(self.accounts, s.data_path)
        self.events = EventHub(self.clock)
        # Records go to the spool (fsync'd) before the database; what an earlier run left
        # there is replayed now, before any new call is recorded.
        self.dead_letters = DeadLetterRepository(session_factory(self.engine))
        self.writer = RecordWriter(
            self.calls, spool_path=s.data_path / SPOOL_FILE, dead_letters=self.dead_letters,
            dead_letter_path=s.data_path / DEAD_LETTER_FILE, clock=self.clock)
        await self.writer.open()
        self.writer.start()
        _stops_with(parts, "records", self.writer.stop)
        self.ledger = CallLedger(inbound_contexts=INBOUND_CONTEXTS)
        self.directory = AgentDirectory(session_factory(self.engine), self.clock,
                                        followers=[self.agent_aggregates,
                                                   self.queue_wrap_ups],
                                        queues=[q.name for q in s.queues])
        # The settings' agents, once; their SIP passwords are shown at this first start only.
        self.new_sip_passwords = {a.id: a.sip_secret or ""
                                  for a in await self.directory.seed(s.agents)}
        agents = await self.directory.list()
        self._modules_to_reload = self._write_agent_config(agents)
        self.flows = FlowLibrary(s.dialplans_path, s.prompts_path, language=s.ivr.language,
                                 known_queues=[q.name for q in s.queues],
                                 known_agents=[a.id for a in agents],
                                 last_good_dir=s.data_path / LAST_GOOD_FOLDER)
        self.switches = FlowSwitches(s.data_path)
        self.dips = DataDips()
        _stops_with(parts, "data dips", self.dips.close)
        # A broken flow serves its last good copy (an ERROR says so); without one it stops
        # the start with file:line:column.
        self.flows.load(s.ivr.flow)
        self.flows.watch()
        _stops_with(parts, "flows", self.flows.stop)
        self.acd = AcdDriver(build_acd(s, agents, self.clock.now()), self.clock)
        self.mirror = QueueMirror(lambda action: self.ami.send(action),
                                  queues={a.id: a.queues for a in agents})
        _stops_with(parts, "queue mirror", self.mirror.stop)
        self.acd.on_agent_change(self.mirror.changed)
        self.desk = AgentDesk(self.acd, self.directory, pause_reasons=s.acd.pause_reasons,
                              publish=self.events.publish)
        # Phones count as reachable once Asterisk says they are registered (or have a
        # static contact); until the first AMI snapshot, none is.
        self.registrations = RegistrationBook(
            static_contacts={a.id: a.contact for a in agents if a.contact})
        for agent in agents:
            self.acd.set_reachable(agent.id, self.registrations.is_reachable(agent.id))
        await self.desk.restore(agents, auto_login={a.id for a in s.agents if a.logged_in},
                                since=self.clock.now() - RESTORE_LOOKBACK_SECONDS)
        self.callback_dialer = CallbackDialer(
            settings=s, clock=self.clock, acd=self.acd, store=self.callbacks,
            send=lambda action, timeout=None: self.ami.send(action, timeout=timeout),
            ledger=self.ledger, writer=self.writer,
            channels=lambda: self.ami.core_show_channels())
        # Call recordings (docs/recordings.md): each queue's or campaign's policy, MixMonitor
        # on the caller's channel, files moved into the recordings folder at hangup.
        self.recording_store = RecordingStore(session_factory(self.engine))
        self.evaluations = EvaluationStore(session_factory(self.engine))
        self.recordings = CallRecordings(
            store=self.recording_store, clock=self.clock, rules=policy_rules(s),
            folder=recordings_folder(s), asterisk_folder=asterisk_monitor_folder(s),
            announcement=s.recordings.announcement,
            settle_seconds=s.recordings.settle_seconds,
            send=lambda action: self.ami.send(action),
            campaign_of=lambda call_id: getattr(self.ledger.get(call_id), "campaign", None))
        _stops_with(parts, "recordings", self.recordings.drain)
        self.queue_calls = QueueCalls(settings=s, clock=self.clock, acd=self.acd,
                                      ledger=self.ledger, writer=self.writer,
                                      callbacks=self.callbacks,
                                      virtual_hold=(self.callback_dialer
                                                    if self.callback_dialer.enabled else None),
                                      publish=self.events.publish,
                                      recorder=self.recordings)
        self.dialer = CampaignDialer(
            clock=self.clock, acd=self.acd, queues=self.queue_calls, campaigns=self.campaigns,
            attempts=self.attempts, compliance=self.compliance,
            send=lambda action, timeout=None: self.ami.send(action, timeout=timeout),
            ledger=self.ledger, writer=self.writer, enabled=s.outbound.has_trunk,
            publish=self.events.publish, zone=s.center.zone)
        self.dispositions = Dispositions(attempts=self.attempts, campaigns=self.campaigns,
                                         compliance=self.compliance, clock=self.clock)
        self.inbound = InboundCalls(settings=s, clock=self.clock, flows=self.flows,
                                    acd=self.acd, queues=self.queue_calls, ledger=self.ledger,
                                    writer=self.writer, switches=self.switches, dips=self.dips,
                                    callbacks=self.callback_dialer)
        # Supervisors' listen/whisper/barge and transfers act through AMI (self.ami comes
        # later); a transferred caller comes back over the FastAGI script `transfer`.
        self.supervision = Supervision(acd=self.acd, send=lambda action: self.ami.send(action))
        self.transfers = CallTransfers(settings=s, clock=self.clock, acd=self.acd,
                                       queues=self.queue_calls, ledger=self.ledger,
                                       writer=self.writer,
                                       send=lambda action: self.ami.send(action),
                                       active=self.inbound.active)
        # Records left open by an earlier run are closed once AMI shows their channels gone.
        for record in await self._records_left_open():
            self.ledger.adopt(record)
        # Calls Asterisk logged while we could not see them: imported at every AMI connect.
        self.missed_calls = MissedCalls(
            path=cel_log_path(s), calls=self.calls, ledger=self.ledger, writer=self.writer,
            positions=LogPositions(session_factory(self.engine)), inbound_contexts=INBOUND_CONTEXTS)
        # The desk writes the state log the ACD's changes go to: it stops after the ACD.
        self.desk.start()
        _stops_with(parts, "agent desk", self.desk.stop)
        self.acd.start()
        _stops_with(parts, "acd", self.acd.stop)
        await self._start_wallboard(parts)
        capacity = self._plan_capacity()
        self.agi = AgiServer({"ivr": self.inbound.handle, "agent": self.desk.handle_feature,
                              "callback": self.callback_dialer.handle,
                              CAMPAIGN_SCRIPT: self.dialer.handle,
                              DISPOSITION_SCRIPT: self.dispositions.handle,
                              TRANSFER_SCRIPT: self.transfers.handle},
                             s.service.agi_host, s.service.agi_port,
                             allowed_peers=s.service.agi_allowed_peers,
                             secret=s.service.agi_secret,
                             max_sessions=capacity.agi_sessions,
                             timeouts=CommandTimeouts(control=s.service.agi_command_seconds,
                                                      media=s.service.agi_media_seconds))
        await self.agi.start()
        _stops_with(parts, "fastagi", self.agi.stop)
        self.ami = AmiClient(s.asterisk.host, s.asterisk.ami_port, s.asterisk.ami_username,
                             s.asterisk.ami_secret, on_event=self._subscribe_to_ami().dispatch,
                             on_ready=self._on_ami_ready)
        await self.ami.start()
        _stops_with(parts, "ami", self.ami.stop)
        await self.callback_dialer.start()
        _stops_with(parts, "callbacks", self.callback_dialer.stop)
        await self.dialer.start()
        _stops_with(parts, "campaign dialer", self.dialer.stop)
        sweeper = asyncio.create_task(self._reconcile_periodically(), name="reconcile")
        _stops_with(parts, "reconciliation", lambda: _cancelled(sweeper))
        retention = asyncio.create_task(self.recordings.run_sweeps(s.recordings.sweep_seconds),
                                        name="recording-retention")
        _stops_with(parts, "recording retention", lambda: _cancelled(retention))
        self.agent_admin = AgentAdmin(
            acd=self.acd, desk=self.desk, directory=self.directory, clock=self.clock,
            registrations=self.registrations, queues=s.queues,
            apply_agents=self.apply_agents, publish=self.events.publish,
            callbacks_not_offered=self.queue_calls.callbacks_not_offered)
        health = HealthProbe(ami=lambda: self.ami.connected, agi=lambda: self.agi.is_serving,
                             database=lambda: ping(self.engine))
        limits = HttpLimits(max_connections=capacity.http_connections,
                            header_seconds=s.service.http_header_seconds,
                            body_seconds=s.service.http_body_seconds)
        streams = StreamSettings(max_streams=capacity.sse_streams,
                                 max_streams_per_user=s.service.sse_max_streams_per_user,
                                 write_seconds=s.service.sse_write_seconds)
        http_app = make_app(WebServices(
            self.calls, health, self.accounts, self.clock, callbacks=self.callbacks,
            events=self.events, event_stream=streams, agents=self.agent_admin,
            supervision=self.supervision, transfers=self.transfers,
            secure_cookies=s.service.secure_cookies, trusted_proxies=s.service.trusted_proxies,
            dead_letters=self.dead_letters, campaigns=self.campaigns,
            compliance=self.compliance, dialer=self.dialer, dispositions=self.dispositions,
            can_dial=self.dialer.enabled,
            uploads=self.uploads, rating=self.rating,
            queue_names=tuple(q.name for q in s.queues),
            wallboard=self.wallboard, metrics=self._metric_readings(),
            agent_states=self.directory,
            recordings=self.recordings, recording_store=self.recording_store,
            evaluations=self.evaluations,
            report_aggregates=self.report_aggregates,
            report_context=ReportContext(time_zone=s.center.time_zone,
                                         queues=tuple(q.name for q in s.queues)),
            agent_reports=AgentReportServices(self.agent_aggregates, self.directory,
                                              self.clock),
            campaign_reports=CampaignReportServices(
                self.campaign_aggregates, self.agent_aggregates, self.directory,
                self.campaigns, self.clock, costs=self.rating.costs)))
        install_body_deadline(http_app, limits)
        self.web = web.AppRunner(http_app, access_log=None, **runner_options(limits))
        await self.web.setup()
        _stops_with(parts, "web", self.web.cleanup)
        self.http_site = GuardedSite(self.web, s.service.http_host, s.service.http_port,
                                     max_connections=limits.max_connections)
        await self.http_site.start()
        log.info("call center up: FastAGI %s:%d, HTTP http://%s:%d/",
                 s.service.agi_host, self.agi.port, s.service.http_host, s.service.http_port)

    async def _start_wallboard(self, parts: AsyncExitStack) -> None:
        """The live board: today's calls from the stored records (and those the spool still
        holds), then every record version and agent change as they come."""
        s = self.settings
        now = self.clock.now()
        board = Wallboard(queue_targets(s), s.center.zone, now)
        self.wallboard = WallboardService(board, acd=self.acd, clock=self.clock,
                                          publish=self.events.publish)
        stored = await queued_since(session_factory(self.engine), board.day.start)
        self.wallboard.rebuild([*stored, *self.writer.pending_records(),
                                *self.ledger.open_calls()])
        self.writer.listeners.append(self.wallboard.record_changed)
        self.acd.on_agent_change(self.wallboard.agent_changed)
        self.wallboard.start()
        _stops_with(parts, "wallboard", self.wallboard.stop)

    def _metric_readings(self) -> LiveReadings:
        """What /metrics reads at each scrape (web/metrics.py)."""
        def calls_up() -> dict[str, int]:
            counts = dict.fromkeys(("inbound", "outbound"), 0)
            for record in self.ledger.open_calls():
                counts[record.direction.value] += 1
            return counts

        def agents_by_state() -> dict[str, int]:
            counts = dict.fromkeys((state.value for state in AgentState), 0)
            for view in self.acd.agents():
                counts[view.state.value] += 1
            return counts

        return LiveReadings(
            calls_up=calls_up,
            queue_waiting=lambda: {q.name: self.acd.queue_stats(q.name).waiting
                                   for q in self.settings.queues},
            agents_by_state=agents_by_state,
            ami_connected=lambda: self.ami.connected, ami_logins=lambda: self.ami.logins,
            agi_sessions=lambda: self.agi.sessions_active,
            agi_refused=lambda: self.agi.sessions_refused,
            record_backlog=lambda: self.writer.backlog,
            dead_letters=lambda: self.writer.dead_lettered,
            event_subscribers=lambda: self.events.subscriber_count,
            wallboard_snapshots=lambda: self.wallboard.published)

    def _plan_capacity(self) -> Capacity:
        """Raise the open-file limit, then share it: FastAGI first, then HTTP (see
        callcenter/listener.py), so the web face can never take what a call needs."""
        service = self.settings.service
        capacity = plan_capacity(raise_open_file_limit(), reserved=service.reserved_files,
                                 agi_sessions=service.agi_max_sessions,
                                 http_connections=service.http_max_connections,
                                 sse_streams=service.sse_max_streams)
        wanted = (service.agi_max_sessions, service.http_max_connections,
                  service.sse_max_streams)
        planned = (capacity.agi_sessions, capacity.http_connections, capacity.sse_streams)
        (log.warning if planned != wanted else log.info)(
            "open-file limit %d (%d kept for the rest): up to %d FastAGI sessions, %d HTTP "
            "connections, %d event streams%s", capacity.open_files, service.reserved_files,
            *planned, "" if planned == wanted else " (lowered from the settings to fit)")
        return capacity

    async def _records_left_open(self) -> list[CallRecord]:
        """Open records of an earlier run: stored ones, newer versions from the spool."""
        try:
            await self.writer.flush(REPLAY_WAIT_SECONDS)
        except TimeoutError:
            log.warning("%d call records from the spool are not stored yet; adopting their "
                        "spooled versions", self.writer.backlog)
        newest = {record.call_id: record for record in await self.calls.open_calls()}
        newest.update((record.call_id, record) for record in self.writer.pending_records())
        return sorted((record for record in newest.values() if record.is_open),
                      key=lambda record: record.started_at)

    def reload_flows(self) -> None:
        """Re-read every served flow now (SIGHUP, `callcenter ivr reload`)."""
        self.flows.forget_seen()
        self.flows.reload()

    # ------------------------------------------------------------------ AMI wiring

    def _subscribe_to_ami(self) -> AmiDispatcher:
        """Who hears which AMI event. The dispatcher keeps this order: the ledger first, so
        every feature after it sees the call's record as the event left it; the agents'
        transfers last, after the ACD and the agent desk heard of answers and hangups."""
        events = AmiDispatcher()
        events.subscribe_all(
            lambda event: self.writer.apply(self.ledger.on_event(event, self.clock.now())))
        events.subscribe(self._agent_answered, DialEnd)
        events.subscribe(lambda event: self._registrations_changed(
            self.registrations.on_event(event, self.clock.now())), ContactStatus)
        events.subscribe(self._key_pressed, DTMFEnd)
        events.subscribe(lambda event: self.desk.channel_gone(event.uniqueid), Hangup)
        events.subscribe(lambda event: self.desk.bridge_entered(event.uniqueid), BridgeEnter)
        events.subscribe(lambda event: self.dialer.channel_hung_up(event), Hangup)
        events.subscribe(lambda event: self.recordings.channel_gone(event.uniqueid), Hangup)
        events.subscribe(self.transfers.on_event, *TRANSFER_EVENTS)
        return events

    def _agent_answered(self, event: DialEnd) -> None:
        agent = agent_from_channel(event.dest_channel) if event.dial_status == "ANSWER" else None
        if agent:
            self.inbound.agent_answered(event.uniqueid, agent)
            self.dialer.agent_answered(event.uniqueid, agent)

    def _key_pressed(self, event: DTMFEnd) -> None:
        if event.direction == "Received":
            self.acd.key_pressed(event.uniqueid, event.digit)

    def _registrations_changed(self, changes: list[RegistrationChanged]) -> None:
        for change in changes:
            log.info("agent %s: phone %s", change.agent_id,
                     "reachable" if change.reachable else "unreachable")
            self.acd.set_reachable(change.agent_id, change.reachable)
            self.events.publish("agent", {"agent_id": change.agent_id,
                                          "registered": change.registered,
                                          "reachable": change.reachable, "at": change.at})

    def _reconcile(self, snapshot: list[CoreShowChannel]) -> None:
        live = {channel.uniqueid for channel in snapshot}
        self.writer.apply(self.ledger.catch_up(snapshot, self.clock.now()))
        result = self.ledger.reconcile(live, self.clock.now())
        for record in result.closed:
            log.warning("call %s is gone from Asterisk without a hangup we saw; closed from "
                        "a channel snapshot", record.call_id)
        self.writer.apply(result)

    def _recover_agents(self, snapshot: list[CoreShowChannel]) -> None:
        """Nailed-up agents and agents' calls the ACD did not route, from the snapshot of a
        (re)connect, whose Hangups come after it. Not from the periodic snapshot: a Hangup
        seen before it is processed would leave an agent held for a call already over."""
        try:
            self.desk.recover(agents_on_channels(
                snapshot, self.acd.agent_ids(), bridge_prefix=AGENT_BRIDGE_PREFIX,
                feature_codes=FEATURES, queues=[q.name for q in self.settings.queues]))
        except Exception:  # the rest of the resync must go on
            log.exception("agents could not be recovered from the channel snapshot")

    async def _reconcile_periodically(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_EVERY_SECONDS)
            if not self.ami.ready or len(self.ledger) == 0:
                continue
            try:
                self._reconcile(await self.ami.core_show_channels())
            except Exception as exc:  # AMI went away meanwhile: the reconnect reconciles
                log.info("periodic reconciliation skipped: %s", exc)

    async def _on_ami_ready(self, snapshot: list[CoreShowChannel]) -> None:
        """After every (re)connect: settle what happened while we could not see Asterisk."""
        self._recover_agents(snapshot)  # first: before any await lets a call be routed
        modules, self._modules_to_reload = self._modules_to_reload, set()
        try:
            await self._reload_modules(modules)  # files written at start, before AMI was up
        except SandboxError as exc:
            log.warning("Asterisk did not re-read the agents' files: %s", exc)
        await self.missed_calls.run()  # first: it completes calls the snapshot would close
        self._reconcile(snapshot)
        states = await self._device_states()
        if states is not None:
            self._registrations_changed(self.registrations.load_device_states(
                states, self.clock.now()))
        await self._reconcile_fallback_queues()

    async def _reconcile_fallback_queues(self) -> None:
        try:
            status = await self.ami.send({"Action": "QueueStatus"}, as_list=True)
        except AmiActionError as exc:
            log.warning("QueueStatus failed; the fallback queues are not checked: %s", exc)
            return
        await self.mirror.reconcile([m for m in _messages(status) if "event" in m])

    def _write_agent_config(self, agents: list[AgentAccount]) -> set[str]:
        """The sandboxed Asterisk's endpoints and queues from the directory; the modules to
        reload for what changed. An external Asterisk's admin regenerates its own files."""
        if self.settings.asterisk.mode != "sandbox":
            return set()
        try:
            # Prompts are Asterisk's since it was installed and started: only agents change.
            changed = Sandbox(self.settings).write_config(agents, prompts=False)
        except SandboxError as exc:
            log.warning("the sandbox configuration could not be written: %s", exc)
            return set()
        return {module for name, module in RELOAD_FOR.items() if name in changed}

    async def apply_agents(self) -> None:
        """After the directory changed: regenerate Asterisk's files and reload them, then
        set the fallback queues' pause flags of new or changed members."""
        agents = await self.directory.list()
        modules = self._write_agent_config(agents)
        await self._reload_modules(modules)
        self.mirror.set_queues({a.id: a.queues for a in agents})
        if "app_queue.so" in modules:
            await self._reconcile_fallback_queues()

    async def _reload_modules(self, modules: set[str]) -> None:
        """Make the sandboxed Asterisk re-read what was written, through its console: the
        AMI user has no `system` right, which AMI's Reload needs (docs/security-privilege.md).
        SandboxError if Asterisk did not reload one of them."""
        sandbox = Sandbox(self.settings)
        for module in sorted(modules):
            said = await asyncio.to_thread(sandbox.cli, f"module reload {module}")
            if "reloaded successfully" not in said:
                raise SandboxError(f"module reload {module}: {said.strip()[:200]}")

    async def _device_states(self) -> list[DeviceStateChange] | None:
        """The phones' device states now (PJSIPShowContacts would need the `system` right)."""
        try:
            answer = await self.ami.send({"Action": "DeviceStateList"}, as_list=True)
        except AmiActionError as exc:
            log.warning("DeviceStateList failed: %s", exc)
            return None
        return [e for m in _messages(answer) if "event" in m
                for e in [parse_event(m)] if isinstance(e, DeviceStateChange)]


def _stops_with(parts: AsyncExitStack, name: str,
                stop: Callable[[], Awaitable[object]]) -> None:
    """``stop`` runs when ``parts`` closes; a failure is logged with ``name`` and raised on
    (the stack still runs the other parts' stops)."""
    async def stopping() -> None:
        try:
            await stop()
        except Exception:
            log.exception("stopping %s failed", name)
            raise

    parts.push_async_callback(stopping)


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _messages(answer: object) -> list:
    return answer if isinstance(answer, list) else [answer]
