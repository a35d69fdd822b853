"""Places the calls of running campaigns and hands every live answer to an agent.

Once a second (``tick_seconds``) each running campaign is paced (core/pacing.py ``decide``:
how many calls now, from its agents in the ACD, its calls in flight and its measured
figures, under the abandon budget), and that many entries are taken from its lists:

1. ``AttemptStore.candidates`` gives the next entries, which wait in a small in-memory
   hopper; right before each call the entry's history, the do-not-call lists and the consent
   ledger are read again and the calling rules (core/dial_rules.py ``may_dial``) asked, so a
   do-not-call request or a revocation stored a second ago is honoured;
2. the attempt row is written, THEN the call placed: an AMI ``Originate`` of the number
   through the trunk (features/campaigns/dialplan.py), ringing for the campaign's ring time;
3. not answered: the OriginateResponse's Reason is the outcome (busy, no answer, failed);
   answered: Asterisk runs the FastAGI script ``campaign`` (after ``AMD()`` when the
   campaign detects machines) and ``handle`` takes the call:

   - a person (or AMD not sure): the call joins the campaign's queue in the ACD, behind
     inbound callers (``OUTBOUND_PRIORITY``), and must be offered to an agent within
     ``SAFE_HARBOR_SECONDS`` (2 s): a nailed-up agent is joined at once, a ring-mode agent is
     rung for what is left of the 2 s. Otherwise the customer hears the safe-harbor message
     ("press 9 to stop these calls": a revocation in the consent ledger and the campaign's
     do-not-call list) and the call counts as abandoned;
   - a machine: hung up, left the campaign's message after the greeting, or passed to an
     agent like a person, as the campaign says.

A campaign pauses itself, with the reason, when no agent of its queue is logged in (it
never dials without an agent to take the answer) or when its trunk fails every call
(``TrunkWatch``). Each attempt's outcome feeds the campaign's figures (DialerStats) and its
abandon budget (live answers and abandons, today and over 30 days, rebuilt from the stored
attempts when the service starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from callcenter.asterisk.agi import AgiHangup
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.ami import AmiError
from callcenter.asterisk.confgen import TRUNK_ENDPOINT
from callcenter.asterisk.events import Hangup
from callcenter.asterisk.prompting import hang_up_quietly, play
from callcenter.core.acd import AgentState, ConnectMode, OfferCall
from callcenter.core.calls import CallLedger
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
from callcenter.core.campaigns import Campaign, CampaignMode, CampaignState, MachineAction
from callcenter.core.clock import Clock
from callcenter.core.consent import ConsentKind, ConsentSource
from callcenter.core.dial_rules import CallingRules, DncList, NumberStatus, Outcome, may_dial
from callcenter.core.pacing import (
    ROLLING_DAYS,
    SAFE_HARBOR_SECONDS,
    AbandonBudget,
    DialerStats,
    InFlight,
    PacingDecision,
    decide,
)
from callcenter.core.records import CallRecord, Direction, Disposition, HangupBy
from callcenter.core.wallboard import CenterDay
from callcenter.features.calls.recorder import RecordWriter
from callcenter.features.campaigns.attempts import AttemptStore, DialEntry, PlacedAttempt
from callcenter.features.campaigns.dialplan import (
    ANSWERED_STEP,
    CAMPAIGN_CONTEXT,
    TOKEN_RE,
    dial_channel,
    originate_variables,
)
from callcenter.features.campaigns.store import CampaignRepository
from callcenter.features.compliance.store import ComplianceStore
from callcenter.features.queues.driver import AcdDriver
from callcenter.features.queues.waiting import QueueCalls, next_message

log = logging.getLogger(__name__)

Publish = Callable[[str, Mapping[str, Any]], None]

ORIGINATE_GRACE_SECONDS = 5.0  # an OriginateResponse later than ring time + this: lost
FIGURES_EVERY_TICKS = 5  # the live figures go out on the event stream every 5 s
HANGUP_EVENT_GRACE_SECONDS = 1.0
# From the answer to the FastAGI step: AMD listens at most 5 s (amd.conf's
# total_analysis_time); far past that, the step is not coming.
STEP_GRACE_SECONDS = 30.0
HOPPER_PER_AGENT = 4  # entries read ahead per logged-in agent
MIN_HOPPER = 20
STOP_KEY = "9"
MACHINE_MESSAGE_PROMPT = "campaign-machine-message"
CALLS_STOPPED_PROMPT = "campaign-calls-stopped"
NO_AGENT_REASON = "dialer: no agent of queue {queue} is logged in"
TRUNK_REASON = "dialer: the trunk failed {count} calls in a row; check the trunk"


class PreviewRefused(ValueError):
    """A preview request the campaign, the agent or the number does not allow now."""


class AmiSender(Protocol):
    def __call__(self, action: Mapping[str, Any], *,
                 timeout: float | None = None) -> Awaitable[Any]: ...


@dataclass(eq=False)
class _Call:
    """One call placed, from its Originate to its outcome."""

    campaign: Campaign
    placed: PlacedAttempt
    entry: DialEntry
    token: str
    answered_at: float | None = None
    hangup_cause: int | None = None  # Q.850, from AMI's Hangup of the customer's channel
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)
    step_started: asyncio.Event = field(default_factory=asyncio.Event)
    waiting_agent: bool = False
    done: bool = False
    for_agent: str | None = None  # preview: the agent who chose to dial it


@dataclass(eq=False)
class _Run:
    """What the dialer keeps for one campaign while it runs."""

    campaign: Campaign
    stats: DialerStats
    budget: AbandonBudget
    trunk: TrunkWatch = field(default_factory=TrunkWatch)
    hopper: deque[DialEntry] = field(default_factory=deque)
    calls: dict[str, _Call] = field(default_factory=dict)
    decision: PacingDecision | None = None  # the last one
    previews: dict[str, DialEntry] = field(default_factory=dict)  # preview: agent -> entry
    _rules: tuple[float, CallingRules] | None = None  # for the campaign's updated_at

    def rules(self) -> CallingRules:
        """The campaign's calling rules, made again only when its settings changed (its
        hours are parsed once, not for every number dialled)."""
        if self._rules is None or self._rules[0] != self.campaign.updated_at:
            self._rules = (self.campaign.updated_at, calling_rules(self.campaign))
        return self._rules[1]

    def in_flight(self) -> InFlight:
        # AMD listens in the dialplan before the FastAGI step: to the service those calls
        # still ring, so none is counted "in AMD".
        ringing = [c.placed.placed_at for c in self.calls.values() if c.answered_at is None]
        return InFlight(ringing_since=ringing,
                        live_waiting=sum(1 for c in self.calls.values() if c.waiting_agent))


UTC_ZONE = ZoneInfo("UTC")


class CampaignDialer:
    def __init__(self, *, clock: Clock, acd: AcdDriver, queues: QueueCalls,
                 campaigns: CampaignRepository, attempts: AttemptStore,
                 compliance: ComplianceStore, send: AmiSender, ledger: CallLedger,
                 writer: RecordWriter, enabled: bool, publish: Publish | None = None,
                 tick_seconds: float = 1.0, zone: ZoneInfo = UTC_ZONE) -> None:
        self._clock = clock
        self._zone = zone  # the center's: a campaign's "today" and abandon day
        self._acd = acd
        self._queues = queues
        self._campaigns = campaigns
        self._attempts = attempts
        self._compliance = compliance
        self._send = send
        self._ledger = ledger
        self._writer = writer
        self.enabled = enabled  # an outbound trunk is configured
        self._publish = publish
        self._tick_seconds = tick_seconds
        self._runs: dict[str, _Run] = {}
        self._calls: dict[str, _Call] = {}  # by token, for the FastAGI step
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._ticks = 0

    async def start(self) -> None:
        closed = await self._attempts.close_left_open(self._clock.now())
        if closed:
            log.warning("dialer: %d attempts left open by an earlier run closed as failed",
                        closed)
        if self.enabled:
            self._loop = asyncio.create_task(self._pace_forever(), name="campaign dialer")

    async def stop(self) -> None:
        tasks = [t for t in (self._loop, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def settled(self) -> None:
        """Until every call the dialer placed so far has been carried out (its Originate
        answered, its outcome stored)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------------ pacing

    async def _pace_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # one bad tick (the store away) must not stop the dialer
                log.exception("dialer: pacing failed; trying again next tick")
            await asyncio.sleep(self._tick_seconds)

    async def tick(self) -> None:
        """Pace every running campaign once."""
        running = {c.name: c for c in await self._campaigns.list()
                   if c.state is CampaignState.RUNNING}
        for name in [n for n, run in self._runs.items() if n not in running and not run.calls]:
            del self._runs[name]  # paused or stopped, and its last calls are over
        for campaign in running.values():
            run = self._runs.get(campaign.name)
            if run is None:
                run = self._runs[campaign.name] = _Run(
                    campaign, DialerStats(), await self._budget(campaign))
            run.campaign = campaign
            await self._pace(run)
        self._ticks += 1
        if self._ticks % FIGURES_EVERY_TICKS == 0:
            for run in self._runs.values():
                self._event(run.campaign.name, "figures", **self._live(run.campaign, run))

    async def _budget(self, campaign: Campaign) -> AbandonBudget:
        """The campaign's abandon budget, rebuilt from its stored live answers: a restart
        must not forget the abandons of the day or of the last 30 days."""
        budget = AbandonBudget(campaign.abandon_cap_percent / 100, zone=self._zone)
        since = self._clock.now() - ROLLING_DAYS * 86400
        for at, abandoned in await self._attempts.live_answers(campaign.name, since):
            budget.record(at, abandoned=abandoned)
        return budget

    async def _pace(self, run: _Run) -> None:
        campaign = run.campaign
        now = self._clock.now()
        ours_waiting = sum(1 for c in run.calls.values() if c.waiting_agent)
        # Inbound callers waiting take the ready agents first, unless the campaign goes ahead.
        waiting_inbound = 0 if campaign.ahead_of_inbound else max(
            0, self._acd.queue_stats(campaign.queue).waiting - ours_waiting)
        agents = pacing_agents(self._acd.queue_members(campaign.queue), waiting_inbound)
        if agents.logged_in == 0:
            await self._pause(run, NO_AGENT_REASON.format(queue=campaign.queue))
            return
        decision = decide(now, pacing_rules(campaign), ready_agents=agents.ready,
                          busy_agents=agents.busy, in_flight=run.in_flight(), stats=run.stats,
                          budget=run.budget.standing(now))
        run.decision = decision
        for _ in range(decision.calls):
            entry = await self._next_allowed(run)
            if entry is None:
                break
            await self._place(run, entry)

    async def _next_allowed(self, run: _Run) -> DialEntry | None:
        """The next entry the calling rules allow now, read fresh; None when the hopper and
        a refill have none."""
        refilled = False
        while True:
            if not run.hopper:
                if refilled:
                    return None
                await self._refill(run)
                refilled = True
                continue
            entry = run.hopper.popleft()
            fresh = await self._attempts.entry_now(run.campaign, entry.entry_id)
            if (fresh is not None and self._agent_free_for(fresh)
                    and await self._allowed(run, fresh)):
                return fresh

    def _agent_free_for(self, entry: DialEntry) -> bool:
        """A personal call back is placed only while its agent is ready to take it (it
        comes back with the next refill otherwise)."""
        if entry.personal_agent is None:
            return True
        try:
            agent = self._acd.agent(entry.personal_agent)
        except ValueError:  # the agent is gone: anyone of the queue takes it
            return True
        return agent.state is AgentState.READY and agent.reachable

    async def _refill(self, run: _Run) -> None:
        busy = {call.entry.entry_id for call in run.calls.values()} | {
            entry.entry_id for entry in run.previews.values()}
        size = max(MIN_HOPPER, HOPPER_PER_AGENT * len(self._acd.queue_members(
            run.campaign.queue)))
        now = self._clock.now()
        # The ledgers are read at dial time, one number at a time: here the hours, retries
        # and attempts sort out what cannot be called now.
        rules = dataclasses.replace(run.rules(), consent_scope=None)
        for entry in await self._attempts.candidates(run.campaign, limit=size, skip=busy):
            status = NumberStatus(callee_places(entry.number, entry.time_zones,
                                                skip_holidays=run.campaign.skip_holidays),
                                  entry.attempts)
            if may_dial(rules, status, now).allowed:
                run.hopper.append(entry)

    async def _allowed(self, run: _Run, entry: DialEntry) -> bool:
        campaign = run.campaign
        lists = {DncList.GLOBAL if e.campaign is None else DncList.CAMPAIGN
                 for e in await self._compliance.do_not_call_entries(entry.number)
                 if e.campaign in (None, campaign.name)}
        consent = (tuple(await self._compliance.consent_entries(entry.number))
                   if campaign.requires_consent else ())
        status = NumberStatus(callee_places(entry.number, entry.time_zones,
                                            skip_holidays=campaign.skip_holidays),
                              entry.attempts, frozenset(lists), consent)
        decision = may_dial(run.rules(), status, self._clock.now())
        if not decision.allowed:
            log.debug("campaign %s: %s not dialled: %s", campaign.name, entry.number,
                      decision.reason)
        return decision.allowed

    async def _pause(self, run: _Run, reason: str) -> None:
        name = run.campaign.name
        try:
            await self._campaigns.set_state(name, CampaignState.PAUSED, reason)
        except ValueError as exc:  # a manager changed it meanwhile: theirs wins
            log.info("campaign %s: not paused (%s)", name, exc)
            return
        log.warning("campaign %s paused itself: %s", name, reason)
        run.hopper.clear()
        self._event(name, "paused", reason=reason)

    # ------------------------------------------------------------------ placing a call

    async def _place(self, run: _Run, entry: DialEntry, *,
                     for_agent: str | None = None) -> PlacedAttempt:
        campaign = run.campaign
        placed = await self._attempts.placed(campaign.name, entry, self._clock.now())
        token = f"cmp-{placed.id}-{secrets.token_hex(4)}"
        call = _Call(campaign, placed, entry, token, for_agent=for_agent)
        run.calls[token] = call
        self._calls[token] = call
        self._spawn(self._originate(run, call), f"originate {token}")
        return placed

    # ------------------------------------------------------------------ preview

    async def preview(self, name: str, agent_id: str) -> DialEntry:
        """The entry the agent previews now (the same one until they dial or skip it);
        ``PreviewRefused`` when the campaign is no running preview campaign of theirs, or
        nothing may be called now."""
        run = await self._preview_run(name, agent_id)
        held = run.previews.get(agent_id)
        if held is not None:
            fresh = await self._attempts.entry_now(run.campaign, held.entry_id)
            if fresh is not None and await self._allowed(run, fresh):
                run.previews[agent_id] = fresh
                return fresh
            del run.previews[agent_id]
        entry = await self._next_allowed(run)
        if entry is None:
            raise PreviewRefused(f"campaign {name!r}: no number may be called now")
        run.previews[agent_id] = entry
        return entry

    async def preview_choice(self, name: str, agent_id: str, entry_id: int, *,
                             dial: bool) -> PlacedAttempt | None:
        """The agent dials or skips the entry they preview; the attempt when dialled."""
        run = await self._preview_run(name, agent_id)
        held = run.previews.get(agent_id)
        if held is None or held.entry_id != entry_id:
            raise PreviewRefused(f"entry {entry_id} is not the one agent {agent_id} previews")
        del run.previews[agent_id]
        if not dial:
            log.info("campaign %s: agent %s skipped %s", name, agent_id, held.number)
            return None
        fresh = await self._attempts.entry_now(run.campaign, entry_id)
        if fresh is None or not await self._allowed(run, fresh):
            raise PreviewRefused(f"entry {entry_id} may not be called now (a do-not-call "
                                 "listing, a revocation or the hours changed meanwhile)")
        if self._acd.agent(agent_id).state is not AgentState.READY:
            run.previews[agent_id] = fresh  # kept: they dial it once ready
            raise PreviewRefused(f"agent {agent_id} is not ready: the answer needs them")
        return await self._place(run, fresh, for_agent=agent_id)

    async def _preview_run(self, name: str, agent_id: str) -> _Run:
        campaign = await self._campaigns.get(name)
        if campaign.mode is not CampaignMode.PREVIEW or campaign.state is not \
                CampaignState.RUNNING:
            raise PreviewRefused(f"campaign {name!r} is {campaign.mode.value} and "
                                 f"{campaign.state.value}: only a running preview campaign "
                                 "is previewed")
        if agent_id not in {agent.agent_id for agent in self._acd.queue_members(campaign.queue)}:
            raise PreviewRefused(f"agent {agent_id} does not serve queue {campaign.queue}")
        run = self._runs.get(name)
        if run is None:
            run = self._runs[name] = _Run(campaign, DialerStats(), await self._budget(campaign))
        run.campaign = campaign
        return run

    async def _originate(self, run: _Run, call: _Call) -> None:
        campaign = call.campaign
        ring = float(campaign.ring_seconds)
        action = {
            "Action": "Originate", "Channel": dial_channel(call.placed.number, TRUNK_ENDPOINT),
            "Context": CAMPAIGN_CONTEXT, "Exten": ANSWERED_STEP, "Priority": 1,
            "Timeout": round(ring * 1000), "CallerID": f"<{campaign.caller_id}>",
            "Async": True, "ChannelId": call.token,
            "Variable": originate_variables(call.token, amd=campaign.amd,
                                            safe_harbor_prompt=campaign.safe_harbor_prompt)}
        log.info("campaign %s: calling %s (attempt %d of entry %d)", campaign.name,
                 call.placed.number, call.placed.attempt, call.entry.entry_id)
        try:
            answer = await self._send(action, timeout=ring + ORIGINATE_GRACE_SECONDS)
        except AmiError as exc:
            log.error("campaign %s: Originate to %s failed: %s", campaign.name,
                      call.placed.number, exc)
            if call.answered_at is None:  # its step never started: nothing rings
                await self._ended(run, call, Outcome.FAILED, hangup_cause=f"AMI: {exc}")
            return
        messages = answer if isinstance(answer, list) else [answer]
        response = next((m for m in messages if m.get("Event") == "OriginateResponse"), None)
        if response is None or response.get("Response") == "Success":
            # Answered: the FastAGI step takes the call, unless the customer hangs up first
            # (during AMD: AMD() says HANGUP and the dialplan ends) or the step never comes.
            await self._step_or_hangup(run, call)
            return
        if call.answered_at is None:
            reason = str(response.get("Reason", ""))
            # AMI may deliver the channel's Hangup (with the cause) just after the answer.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.hung_up.wait(), HANGUP_EVENT_GRACE_SECONDS)
            await self._ended(run, call, unanswered_outcome(reason, call.hangup_cause),
                              hangup_cause=f"cause {call.hangup_cause}, reason {reason}")

    async def _step_or_hangup(self, run: _Run, call: _Call) -> None:
        step = asyncio.ensure_future(call.step_started.wait())
        gone = asyncio.ensure_future(call.hung_up.wait())
        try:
            await asyncio.wait({step, gone}, timeout=STEP_GRACE_SECONDS,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            step.cancel()
            gone.cancel()
        if call.step_started.is_set():
            return
        if call.hung_up.is_set():
            await self._ended(run, call, Outcome.DROPPED,
                              hangup_cause=f"answered, hung up before the service took the call "
                                           f"(cause {call.hangup_cause})")
        else:
            log.error("campaign %s: attempt %d answered but its FastAGI step never came",
                      run.campaign.name, call.placed.id)
            await self._ended(run, call, Outcome.FAILED,
                              hangup_cause="answered, the FastAGI step never came")

    def channel_hung_up(self, event: Hangup) -> None:
        """AMI's Hangup of a channel: for our calls, the cause says busy or unanswered."""
        call = self._calls.get(event.uniqueid)
        if call is not None:
            call.hangup_cause = event.cause
            call.hung_up.set()

    async def _ended(self, run: _Run, call: _Call, outcome: Outcome, *,
                     amd_status: str | None = None, hangup_cause: str | None = None,
                     abandoned: bool = False, agent_id: str | None = None) -> None:
        if call.done:
            return
        call.done = True
        now = self._clock.now()
        run.calls.pop(call.token, None)
        self._calls.pop(call.token, None)
        ring = (call.answered_at - call.placed.placed_at
                if call.answered_at is not None else None)
        run.stats.call_ended(now, dial_result(outcome), ring_seconds=ring)
        if run.trunk.ended(outcome):
            await self._pause(run, TRUNK_REASON.format(count=run.trunk.failed_in_a_row))
            run.trunk.reset()
        try:
            await self._attempts.ended(call.placed.id, outcome, now, amd_status=amd_status,
                                       hangup_cause=hangup_cause, abandoned=abandoned,
                                       agent_id=agent_id)
        except Exception:
            log.exception("campaign %s: attempt %d's outcome (%s) not stored",
                          run.campaign.name, call.placed.id, outcome.value)
        if not call.step_started.is_set():
            self._record_unanswered(call, outcome, hangup_cause, now)
        self._event(run.campaign.name, "call_ended", attempt_id=call.placed.id,
                    number=call.placed.number, attempt=call.placed.attempt,
                    outcome=outcome.value, abandoned=abandoned, agent_id=agent_id)

    def _record_unanswered(self, call: _Call, outcome: Outcome, cause: str | None,
                           now: float) -> None:
        """A call the service never took (not answered, or hung up before its FastAGI step)
        is a call record too, so the history and the reports see every attempt."""
        number = call.placed.number
        self._writer.submit([CallRecord(
            call_id=call.token, started_at=call.placed.placed_at, ended_at=now,
            channel=dial_channel(number, TRUNK_ENDPOINT), caller_number=number,
            caller_name=call.entry.name or None, dialed_number=number,
            hangup_by=HangupBy.SYSTEM if outcome is Outcome.FAILED else HangupBy.CALLER,
            hangup_cause=cause, disposition=Disposition.FAILED,
            note=f"campaign {call.campaign.name}: {outcome.value}",
            direction=Direction.OUTBOUND, campaign=call.campaign.name,
            campaign_attempt_id=call.placed.id)])

    # ------------------------------------------------------------------ the answered call

    async def handle(self, session: AgiSession) -> None:
        """The ``campaign`` script's ``answered`` step, with the attempt's token."""
        args = session.env.args
        step, token = (args[0], args[1]) if len(args) >= 2 else ("", "")
        call = self._calls.get(token) if TOKEN_RE.fullmatch(token) else None
        if step != ANSWERED_STEP or call is None or call.done:
            log.warning("campaign step %r for unknown or finished attempt %r (%s): hung up",
                        step, token, session.env.channel)
            await hang_up_quietly(session)
            return
        run = self._runs.get(call.campaign.name)
        if run is None:  # cannot happen while the call is tracked; say so if it does
            await hang_up_quietly(session)
            return
        now = self._clock.now()
        call.answered_at = now
        call.step_started.set()
        amd_status = None
        if call.campaign.amd:
            amd_status = (await session.get_variable("AMDSTATUS") or "NOTSURE").upper()
        # Stored on the side: the customer is waiting for an agent meanwhile.
        self._spawn(self._store_answer(call, now, session.env.uniqueid), f"answer {token}")
        call_id = session.env.uniqueid
        self._writer.apply(self._ledger.handler_started(
            call_id, channel=session.env.channel, caller_number=call.placed.number,
            caller_name=call.entry.name or None, dialed_number=call.placed.number, now=now))
        record = self._ledger.get(call_id)
        if record is not None:
            record.direction = Direction.OUTBOUND
            record.campaign = call.campaign.name
            record.campaign_attempt_id = call.placed.id
        hangup_by = HangupBy.CALLER
        try:
            if is_human(amd_status):
                hangup_by = await self._to_agent(run, call, session, amd_status, Outcome.HUMAN)
            else:
                hangup_by = await self._machine(run, call, session, amd_status)
        except AgiHangup:
            hangup_by = HangupBy.CALLER
        finally:
            if not call.done:  # hung up before anything decided the outcome
                await self._ended(run, call, Outcome.DROPPED, amd_status=amd_status,
                                  hangup_cause="the customer hung up")
            self._writer.apply(self._ledger.handler_finished(
                call_id, self._clock.now(), hangup_by=hangup_by,
                no_agent=hangup_by is HangupBy.SYSTEM))

    async def _store_answer(self, call: _Call, at: float, call_id: str) -> None:
        try:
            await self._attempts.answered(call.placed.id, at, call_id)
        except Exception:
            log.exception("campaign %s: attempt %d's answer not stored", call.campaign.name,
                          call.placed.id)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _machine(self, run: _Run, call: _Call, session: AgiSession,
                       amd_status: str | None) -> HangupBy:
        action = call.campaign.machine_action
        if action is MachineAction.TO_AGENT:
            return await self._to_agent(run, call, session, amd_status, Outcome.MACHINE)
        if action is MachineAction.LEAVE_MESSAGE:
            # After the greeting's beep: wait for 1.5 s of silence, at most 20 s.
            with contextlib.suppress(Exception):
                await session.exec("WaitForSilence", "1500,1,20")
            await play(session, MACHINE_MESSAGE_PROMPT)
        await self._ended(run, call, Outcome.MACHINE, amd_status=amd_status,
                          hangup_cause=f"machine: {action.value}")
        await hang_up_quietly(session)
        return HangupBy.SYSTEM

    async def _to_agent(self, run: _Run, call: _Call, session: AgiSession,
                        amd_status: str | None, outcome: Outcome) -> HangupBy:
        """Join the answer to an agent of the campaign's queue within 2 s, or say the
        safe-harbor message; who ended the call."""
        call_id = session.env.uniqueid
        campaign = call.campaign
        deadline = self._clock.now() + SAFE_HARBOR_SECONDS
        call.waiting_agent = True
        self._writer.apply(self._ledger.queued(call_id, campaign.queue, self._clock.now()))
        inbox = self._acd.enqueue(call_id, campaign.queue, priority=queue_priority(campaign),
                                  waiting_since=self._clock.now(),
                                  for_agent=call.for_agent or self._personal(call.entry))
        agent_id: str | None = None
        try:
            while agent_id is None:
                remaining = deadline - self._clock.now()
                if remaining <= 0:
                    break
                try:
                    message = await asyncio.wait_for(next_message(inbox, session), remaining)
                except TimeoutError:
                    break
                if not isinstance(message, OfferCall):
                    continue  # announcements and keys mean nothing in these 2 seconds
                if message.mode is ConnectMode.NAILED:
                    agent_id = message.agent_id
                    self._connected(run, call, agent_id)
                    return await self._talk(run, call, session, outcome, amd_status,
                                            agent_id, nailed=True)
                # A ring-mode agent has what is left of the 2 seconds (Dial counts whole
                # seconds: at least one); AMI's DialEnd says when they answer.
                left = deadline - self._clock.now()
                queue = self._queues.queue_settings(campaign.queue)
                if await self._queues.ring(session, call_id, message.agent_id, left,
                                           queue.moh_class, queue=queue.name):
                    self._connected(run, call, message.agent_id)
                    return await self._talk(run, call, session, outcome, amd_status,
                                            message.agent_id, nailed=False)
        except AgiHangup:
            self._acd.left(call_id)
            if call.waiting_agent:
                run.budget.record(self._clock.now(), abandoned=True)
            await self._ended(run, call, Outcome.DROPPED, amd_status=amd_status,
                              hangup_cause="the customer hung up before an agent took the call",
                              abandoned=call.waiting_agent)
            raise
        # Nobody within 2 s: abandoned, whatever happens next.
        self._acd.left(call_id)
        call.waiting_agent = False
        run.budget.record(self._clock.now(), abandoned=True)
        await self._ended(run, call, Outcome.DROPPED, amd_status=amd_status,
                          hangup_cause="no agent within 2 s: safe-harbor message",
                          abandoned=True)
        await self.safe_harbor(campaign, call.placed, session)
        return HangupBy.SYSTEM

    def agent_answered(self, call_id: str, agent_id: str) -> None:
        """AMI saw a ring-mode agent pick up one of our calls (DialEnd ANSWER): the customer
        is connected now, not when the talk is over."""
        call = self._calls.get(call_id)
        run = self._runs.get(call.campaign.name) if call is not None else None
        if call is not None and run is not None and call.waiting_agent:
            self._connected(run, call, agent_id)
            self._acd.answered(call_id, agent_id)

    def _connected(self, run: _Run, call: _Call, agent_id: str) -> None:
        """The answer reached an agent: a live answer that was not abandoned (counted once),
        and a ``connected`` event for the agent's screen (the attempt to dispose of, the
        list row's fields)."""
        if not call.waiting_agent:
            return
        call.waiting_agent = False
        run.budget.record(self._clock.now(), abandoned=False)
        entry = call.entry
        self._event(call.campaign.name, "connected", attempt_id=call.placed.id,
                    agent_id=agent_id, call_id=call.token, number=entry.number,
                    name=entry.name, extra=[list(field) for field in entry.extra])

    def _personal(self, entry: DialEntry) -> str | None:
        """The agent a personal call back goes to, while the ACD still knows them."""
        if entry.personal_agent is None or entry.personal_agent not in self._acd.agent_ids():
            return None
        return entry.personal_agent

    async def _talk(self, run: _Run, call: _Call, session: AgiSession, outcome: Outcome,
                    amd_status: str | None, agent_id: str, *, nailed: bool) -> HangupBy:
        call_id = session.env.uniqueid
        started = self._clock.now()
        try:
            if nailed:
                queue = self._queues.queue_settings(call.campaign.queue)
                await self._queues.join_nailed(session, call_id, agent_id, queue)
        finally:
            self._acd.left(call_id)
            run.stats.talk_ended(self._clock.now(), self._clock.now() - started)
            await self._ended(run, call, outcome, amd_status=amd_status,
                              hangup_cause="talked", agent_id=agent_id)
        await hang_up_quietly(session)
        return HangupBy.AGENT

    async def safe_harbor(self, campaign: Campaign, placed: PlacedAttempt,
                          session: AgiSession) -> None:
        """The message, with the key that stops these calls for good: a revocation in the
        consent ledger and the campaign's do-not-call list, at once."""
        digit = await play(session, campaign.safe_harbor_prompt, STOP_KEY)
        if digit == STOP_KEY:
            await self._stop_calls(campaign.name, placed)
            await play(session, CALLS_STOPPED_PROMPT)
        await hang_up_quietly(session)

    async def _stop_calls(self, campaign: str, placed: PlacedAttempt) -> None:
        number = placed.number
        try:
            await self._compliance.record_consent(
                number, campaign, ConsentKind.REVOKED, source=ConsentSource.IVR,
                proof=f"pressed {STOP_KEY} on the safe-harbor message, attempt {placed.id}",
                recorded_by="dialer")
            await self._compliance.add_do_not_call(
                number, campaign, source="ivr", reason=f"pressed {STOP_KEY} on the "
                f"safe-harbor message", added_by="dialer")
        except Exception:
            log.exception("campaign %s: %s pressed %s but it could not be stored", campaign,
                          number, STOP_KEY)

    # ------------------------------------------------------------------ figures

    async def campaign(self, name: str) -> Campaign:
        return await self._campaigns.get(name)

    async def attempts(self, name: str, limit: int) -> list[dict[str, Any]]:
        """The campaign's attempts, newest first (``CampaignNotFound`` for no campaign)."""
        await self._campaigns.get(name)
        return await self._attempts.attempts(name, limit)

    async def figures(self, name: str) -> dict[str, Any]:
        """A campaign's figures now: today's attempts by outcome, the abandon rates, the
        calls in flight and the agents, contacts per hour, the list's progress and the time
        to finish it at the last hour's pace. ``CampaignNotFound`` for an unknown name."""
        campaign = await self._campaigns.get(name)
        run = self._runs.get(name)
        now = self._clock.now()
        today = await self._attempts.outcome_counts(
            name, CenterDay.containing(now, self._zone).start)
        last_hour = await self._attempts.outcome_counts(name, now - 3600)
        total, called, done = await self._attempts.list_progress(campaign)
        live = self._live(campaign, run) if run is not None else self._live(
            campaign, _Run(campaign, DialerStats(), await self._budget(campaign)))
        remaining = total - done
        return {
            **live,
            "today": today,
            "contacts_per_hour": last_hour[Outcome.HUMAN.value],
            "list": {"entries": total, "called": called, "done": done,
                     "remaining": remaining,
                     "penetration_percent": round(100 * called / total, 2) if total else 0.0},
            "minutes_to_finish": (round(60 * remaining / last_hour["placed"], 1)
                                  if last_hour["placed"] and remaining else None),
        }

    def _live(self, campaign: Campaign, run: _Run) -> dict[str, Any]:
        """The figures the dialer holds in memory (cheap: published every few seconds)."""
        standing = run.budget.standing(self._clock.now())
        in_flight = run.in_flight()
        states = Counter(agent.state.value for agent in self._acd.queue_members(campaign.queue))
        working = sum(n for state, n in states.items() if state not in ("logged_out", "paused"))
        decision = run.decision
        return {
            "state": campaign.state.value, "state_reason": campaign.state_reason,
            "ringing": len(in_flight.ringing_since), "in_amd": in_flight.in_amd,
            "waiting_for_agent": in_flight.live_waiting,
            "abandon_cap_percent": campaign.abandon_cap_percent,
            "abandon_percent_today": round(100 * standing.today.rate, 2),
            "abandon_percent_30_days": round(100 * standing.rolling.rate, 2),
            "live_answers_today": standing.today.live_answers,
            "abandoned_today": standing.today.abandoned,
            "dial_level": round(in_flight.total / working, 2) if working else 0.0,
            "pacing": None if decision is None else {
                "mode": decision.mode.value, "reason": decision.reason,
                "calls": decision.calls},
            "agents": {state.value: states.get(state.value, 0) for state in AgentState},
        }

    def _event(self, campaign: str, change: str, **data: Any) -> None:
        if self._publish is None:
            return
        try:
            self._publish("campaign", {"campaign": campaign, "change": change, **data})
        except Exception:  # live screens are a nicety: the calls go on all the same
            log.exception("campaign %s: live event not published", campaign)
