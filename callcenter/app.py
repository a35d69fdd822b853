"""The composition root: builds the core, wires the adapters to it and owns their tasks.

Nothing else in the code base creates long-lived state. ``CallCenter.start()`` brings the
parts up in dependency order and ``stop()`` takes them down in reverse.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiohttp import web

from callcenter.asterisk.agi_server import AgiServer
from callcenter.asterisk.ami import AmiClient
from callcenter.asterisk.events import (
    AmiEvent,
    CoreShowChannel,
    DeviceStateChange,
    DialEnd,
    parse_event,
)
from callcenter.config import Settings
from callcenter.core.acd import Acd, AgentSpec, QueueRules
from callcenter.core.calls import CallLedger, agent_from_channel
from callcenter.core.clock import Clock, SystemClock
from callcenter.service.acd_driver import AcdDriver
from callcenter.service.datadip import DataDips
from callcenter.service.flows import FlowLibrary
from callcenter.service.inbound import InboundCalls
from callcenter.service.recorder import RecordWriter
from callcenter.service.switches import FlowSwitches
from callcenter.store.accounts import AccountRepository, ensure_first_admin
from callcenter.store.db import create_engine, ping, session_factory, upgrade
from callcenter.store.repositories import CallbackRepository, CallRepository
from callcenter.web.app import WebServices, make_app
from callcenter.web.events import EventHub
from callcenter.web.keys import HealthProbe

log = logging.getLogger(__name__)

INBOUND_CONTEXTS = ("callers", "agents")
# An AMI event can be missed (DESIGN.md): every so often, calls that Asterisk no longer has
# and no handler owns are closed from a fresh channel snapshot.
RECONCILE_EVERY_SECONDS = 60.0


@dataclass
class CallCenter:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)

    async def start(self) -> None:
        s = self.settings
        await upgrade(s.database_url)
        self.engine = create_engine(s.database_url)
        self.calls = CallRepository(session_factory(self.engine))
        self.callbacks = CallbackRepository(session_factory(self.engine), self.clock)
        self.accounts = AccountRepository(session_factory(self.engine), self.clock)
        # The first start makes an admin with a generated password (data_dir/admin-password).
        self.first_admin_password = await ensure_first_admin(self.accounts, s.data_path)
        self.events = EventHub(self.clock)
        self.writer = RecordWriter(self.calls)
        self.ledger = CallLedger(inbound_contexts=INBOUND_CONTEXTS)
        self.flows = FlowLibrary(s.dialplans_path, s.prompts_path, language=s.ivr.language,
                                 known_queues=[q.name for q in s.queues],
                                 known_agents=[a.id for a in s.agents])
        self.switches = FlowSwitches(s.data_path)
        self.dips = DataDips()
        self.flows.load(s.ivr.flow)  # a broken flow stops the start with file:line:column
        self.flows.watch()
        now = self.clock.now()
        acd = Acd(
            {q.name: QueueRules(q.name, float(q.ring_timeout), float(q.max_wait))
             for q in s.queues},
            # Nobody takes calls until AMI says their phone is reachable (see AcdDriver).
            [AgentSpec(a.id, a.queues, logged_in=False) for a in s.agents],
            now,
        )
        self.acd = AcdDriver(acd, self.clock, logged_in={a.id: a.logged_in for a in s.agents})
        self.inbound = InboundCalls(settings=s, clock=self.clock, flows=self.flows,
                                    acd=self.acd, ledger=self.ledger, writer=self.writer,
                                    switches=self.switches, dips=self.dips,
                                    callbacks=self.callbacks)
        # Records left open by an earlier run are closed once AMI shows their channels gone.
        for record in await self.calls.open_calls():
            self.ledger.adopt(record)
        self.writer.start()
        self.acd.start()
        self.agi = AgiServer({"ivr": self.inbound.handle}, s.service.agi_host,
                             s.service.agi_port)
        await self.agi.start()
        self.ami = AmiClient(s.asterisk.host, s.asterisk.ami_port, s.asterisk.ami_username,
                             s.asterisk.ami_secret, on_event=self._on_ami_event,
                             on_ready=self._on_ami_ready)
        await self.ami.start()
        self._sweeper = asyncio.create_task(self._reconcile_periodically(), name="reconcile")
        health = HealthProbe(ami=lambda: self.ami.connected, agi=lambda: self.agi.is_serving,
                             database=lambda: ping(self.engine))
        self.web = web.AppRunner(make_app(WebServices(
            self.calls, health, self.accounts, self.clock, callbacks=self.callbacks,
            events=self.events)), access_log=None)
        await self.web.setup()
        site = web.TCPSite(self.web, s.service.http_host, s.service.http_port)
        await site.start()
        log.info("call center up: FastAGI %s:%d, HTTP http://%s:%d/",
                 s.service.agi_host, self.agi.port, s.service.http_host, s.service.http_port)

    def reload_flows(self) -> None:
        """Re-read every served flow now (SIGHUP, `callcenter ivr reload`)."""
        self.flows.forget_seen()
        self.flows.reload()

    async def stop(self) -> None:
        if hasattr(self, "_sweeper"):
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        for name, stop in (("web", lambda: self.web.cleanup()),
                           ("flows", lambda: self.flows.stop()),
                           ("ami", lambda: self.ami.stop()),
                           ("fastagi", lambda: self.agi.stop()), ("acd", lambda: self.acd.stop()),
                           ("records", lambda: self.writer.stop()),
                           ("data dips", lambda: self.dips.close()),
                           ("database", lambda: self.engine.dispose())):
            try:
                await stop()
            except AttributeError:
                continue  # never started
            except Exception:
                log.exception("stopping %s failed", name)

    # ------------------------------------------------------------------ AMI wiring

    def _on_ami_event(self, event: AmiEvent) -> None:
        self.writer.apply(self.ledger.on_event(event, self.clock.now()))
        if isinstance(event, DialEnd) and event.dial_status == "ANSWER":
            agent = agent_from_channel(event.dest_channel)
            if agent:
                self.inbound.agent_answered(event.uniqueid, agent)
        elif isinstance(event, DeviceStateChange):
            self._device_state(event)

    def _device_state(self, event: DeviceStateChange) -> None:
        technology, _, agent_id = event.device.partition("/")
        if technology == "PJSIP":
            self.acd.device_state(agent_id, event.state)

    def _reconcile(self, snapshot: list[CoreShowChannel]) -> None:
        live = {channel.uniqueid for channel in snapshot}
        self.writer.apply(self.ledger.catch_up(snapshot, self.clock.now()))
        result = self.ledger.reconcile(live, self.clock.now())
        for record in result.closed:
            log.warning("call %s is gone from Asterisk without a hangup we saw; closed from "
                        "a channel snapshot", record.call_id)
        self.writer.apply(result)

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
        self._reconcile(snapshot)
        answer = await self.ami.send({"Action": "DeviceStateList"}, as_list=True)
        for message in answer if isinstance(answer, list) else [answer]:
            if "event" in message:
                event = parse_event(message)
                if isinstance(event, DeviceStateChange):
                    self._device_state(event)
