"""Pacing of the outbound dialer: how many calls to place now. Pure: no I/O, no clock.

Three parts, each fed with values (times are POSIX seconds passed in, never read):

- ``AbandonBudget``: abandoned live answers / live answers (machines excluded) of one
  campaign, over the campaign's day (its reference time zone) and a rolling 30 days; says
  how many more abandons are allowed now and whether the budget is spent.
- ``DialerStats``: measured answer rate, machine share, time to answer, AMD decision time,
  talk and wrap-up durations, as exponentially weighted estimates with priors.
- ``decide``: the number of calls to place now for preview, progressive or predictive
  pacing, given the agents, the calls in flight, the stats and the budget.

The predictive model (docs/outbound.md, "Pacing"): the live answers still to come from the
calls in flight and from ``n`` new calls, X, against the agents free within the answer window
plus the 2-second rule, M; the expected abandons are E[(X - M)+]. X and M are sums of
independent Bernoulli variables of different probabilities. X is replaced by the binomial of
the same count and mean, which by Hoeffding's theorem (1956) gives every convex function (the
shortfall is one) an expectation at least as large: it errs towards fewer calls. M, whose
chances are very unequal (a few agents about to be free, many far from it), by the binomial
of the same mean and variance: the widest one would count agents' chances as far more
uncertain than they are and cost occupancy. A second check bounds the chance of more
abandons than the budget allows now, with the widest binomials on both sides.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from enum import StrEnum

from callcenter.core.campaigns import MAX_ABANDON_CAP_PERCENT, CampaignMode
from callcenter.core.dial_rules import DAY as DAY_SECONDS
from callcenter.core.dial_rules import DEFAULT_RING_TIME

DEFAULT_ABANDON_CAP = MAX_ABANDON_CAP_PERCENT / 100  # TCPA/TSR: 3% of live answers
ROLLING_DAYS = 30
SAFE_HARBOR_SECONDS = 2.0  # a live answer not joined to an agent within 2 s is abandoned

# The recent answer rate (for the breach's chance): about the last 60 calls or 5 minutes.
RECENT_CALLS = 60.0
RECENT_HALF_LIFE = 300.0

# Probability mass left out of a binomial's range; 1e-12 of a call is nothing.
_TAIL_SIGMAS = 8.0


# --------------------------------------------------------------------------- the budget


@dataclass(frozen=True, slots=True)
class WindowCounts:
    live_answers: int
    abandoned: int

    @property
    def rate(self) -> float:
        """Abandoned live answers / live answers (0 when nobody answered yet)."""
        return self.abandoned / self.live_answers if self.live_answers else 0.0

    def abandons_allowed(self, cap: float) -> float:
        """How many abandons could happen now, each one a live answer too, with the rate
        still within ``cap``: the largest k with (A + k) / (L + k) <= cap."""
        return max(0.0, (cap * self.live_answers - self.abandoned) / (1.0 - cap))

    def surplus(self, cap: float) -> float:
        """Abandons the window's past answers earned and did not use: cap x L - A."""
        return cap * self.live_answers - self.abandoned


@dataclass(frozen=True, slots=True)
class BudgetStanding:
    """The budget at one instant: both windows, the cap and what is left."""

    cap: float
    today: WindowCounts
    rolling: WindowCounts

    @property
    def abandons_allowed(self) -> float:
        """Abandons allowed now in both windows, even if no other live answer came."""
        return min(self.today.abandons_allowed(self.cap),
                   self.rolling.abandons_allowed(self.cap))

    @property
    def abandons_allowed_now(self) -> int:
        return math.floor(self.abandons_allowed + 1e-9)

    @property
    def spent(self) -> bool:
        """One more abandon would put a window over the cap: dial progressively."""
        return self.abandons_allowed_now < 1

    def surplus(self, cap: float) -> float:
        return min(self.today.surplus(cap), self.rolling.surplus(cap))


class AbandonBudget:
    """Live answers and abandons of one campaign, per day and over a rolling window.

    Record each live answer once its fate is known (joined to an agent, or abandoned at the
    2-second mark). The day is the date in ``zone`` (the campaign's reference time zone).
    The rolling window keeps counts in ``bucket_seconds`` buckets: a bucket only partly inside
    the window counts its abandons but not its live answers, so the rate it shows is never
    below the exact one (at most one bucket of live answers short)."""

    def __init__(self, cap: float = DEFAULT_ABANDON_CAP, *, zone: tzinfo = UTC,
                 rolling_days: int = ROLLING_DAYS, bucket_seconds: float = 60.0) -> None:
        if not 0.0 < cap < 1.0:
            raise ValueError(f"abandon cap must be a fraction between 0 and 1, not {cap!r}")
        if rolling_days < 1 or bucket_seconds <= 0:
            raise ValueError("rolling_days must be >= 1 and bucket_seconds > 0")
        self.cap = cap
        self.zone = zone
        self.window_seconds = rolling_days * DAY_SECONDS
        self.bucket_seconds = bucket_seconds
        # Buckets in time order: [bucket start, live answers, abandoned].
        self._starts: deque[float] = deque()
        self._buckets: deque[list[int]] = deque()
        self._live_total = 0
        self._abandoned_total = 0
        self._days: dict[date, list[int]] = {}

    def _day(self, at: float) -> date:
        return datetime.fromtimestamp(at, tz=self.zone).date()

    def record(self, at: float, *, abandoned: bool) -> None:
        """One live answer at ``at``; ``abandoned`` when no agent took it within 2 s."""
        start = math.floor(at / self.bucket_seconds) * self.bucket_seconds
        if self._starts and start < self._starts[0] and start + self.bucket_seconds <= (
                self._starts[-1] - self.window_seconds):
            return  # older than anything the window still holds: it fell out already
        day = self._days.setdefault(self._day(at), [0, 0])
        day[0] += 1
        day[1] += abandoned
        if not self._starts or start > self._starts[-1]:
            self._starts.append(start)
            self._buckets.append([0, 0])
            bucket = self._buckets[-1]
        else:  # late news of an earlier bucket: rare, found from the end
            index = bisect.bisect_left(self._starts, start)
            if index == len(self._starts) or self._starts[index] != start:
                self._starts.insert(index, start)
                self._buckets.insert(index, [0, 0])
            bucket = self._buckets[index]
        bucket[0] += 1
        bucket[1] += abandoned
        self._live_total += 1
        self._abandoned_total += abandoned

    def standing(self, now: float) -> BudgetStanding:
        """The counts at ``now``; buckets wholly older than the window are dropped."""
        window_start = now - self.window_seconds
        while self._starts and self._starts[0] + self.bucket_seconds <= window_start:
            self._starts.popleft()
            live, abandoned = self._buckets.popleft()
            self._live_total -= live
            self._abandoned_total -= abandoned
        live = self._live_total
        if self._starts and self._starts[0] < window_start:
            live -= self._buckets[0][0]  # partly outside: its answers no longer vouch
        today = self._day(now)
        for old in [day for day in self._days if day < today]:
            del self._days[old]  # a day once over is never asked about again
        day_live, day_abandoned = self._days.get(today, (0, 0))
        return BudgetStanding(cap=self.cap,
                              today=WindowCounts(day_live, day_abandoned),
                              rolling=WindowCounts(live, self._abandoned_total))


# --------------------------------------------------------------------------- statistics


class Estimate:
    """A running mean and variance, exponentially weighted, starting from a prior.

    Each sample has weight 1; older ones fade by ``1 - 1/window`` per new sample (about the
    last ``window`` samples count) and by half every ``half_life`` seconds, whichever is
    faster, but never below ``prior_weight`` in all: a quiet hour makes the next samples
    move the estimate faster without letting one sample decide it alone. The prior counts
    as ``prior_weight`` samples of value ``prior`` (and spread ``prior_sd``)."""

    __slots__ = ("_last_at", "_sum", "_sum_sq", "_weight", "half_life", "prior_weight",
                 "samples", "window")

    def __init__(self, prior: float, *, prior_sd: float = 0.0, prior_weight: float = 20.0,
                 window: float = 400.0, half_life: float = 1800.0) -> None:
        self.prior_weight = prior_weight
        self.window = window
        self.half_life = half_life
        self._weight = prior_weight
        self._sum = prior * prior_weight
        self._sum_sq = (prior_sd**2 + prior**2) * prior_weight
        self._last_at: float | None = None
        self.samples = 0

    def add(self, at: float, value: float) -> None:
        keep = 1.0 - 1.0 / self.window
        if self._last_at is not None and at > self._last_at:
            keep = min(keep, 0.5 ** ((at - self._last_at) / self.half_life))
        # Never forget below the prior's weight (keep >= floor / weight).
        keep = max(keep, min(1.0, self.prior_weight / self._weight))
        self._weight = self._weight * keep + 1.0
        self._sum = self._sum * keep + value
        self._sum_sq = self._sum_sq * keep + value * value
        if self._last_at is None or at > self._last_at:
            self._last_at = at
        self.samples += 1

    @property
    def mean(self) -> float:
        return self._sum / self._weight

    @property
    def variance(self) -> float:
        return max(0.0, self._sum_sq / self._weight - self.mean**2)


def _lognormal_cdf(x: float, mean: float, variance: float) -> float:
    """P(T <= x) for a lognormal of this mean and variance (a point mass at the mean when
    the variance is 0). Durations of calls are skewed to the right: a lognormal fits them
    better than a normal, and needs only the two moments we keep."""
    if x <= 0.0:
        return 0.0
    if variance <= 1e-12 or mean <= 0.0:
        return 1.0 if x >= mean else 0.0
    sigma_sq = math.log1p(variance / (mean * mean))
    mu = math.log(mean) - sigma_sq / 2.0
    return 0.5 * math.erfc((mu - math.log(x)) / math.sqrt(2.0 * sigma_sq))


class DialResult(StrEnum):
    """What pacing learns from a call's end (the calling rules' finer outcomes map here)."""

    LIVE = "live"  # a person answered (AMD said human, or no AMD)
    MACHINE = "machine"
    UNANSWERED = "unanswered"  # no answer, busy, congestion, failed


@dataclass(frozen=True, slots=True)
class Priors:
    """What to assume before a campaign has figures (overridable per campaign)."""

    answer_rate: float = 0.30  # live answers per call placed
    machine_share: float = 0.25  # machines per answered call
    answered_rate: float = 0.40  # answered (live or machine) per call placed
    time_to_answer: float = 8.0  # seconds from placing to the answer
    amd_seconds: float = 2.5
    talk_seconds: float = 180.0
    wrap_up_seconds: float = 15.0


class DialerStats:
    """Measured figures of one campaign, from the outcomes of its calls.

    Rates adapt over about the last ``window`` calls (or the last ``half_life`` seconds when
    calls are few), so a drifting answer rate is followed within minutes. ``measured`` says
    whether enough calls have ended for predictive pacing to trust the figures."""

    def __init__(self, priors: Priors | None = None, *, window: float = 400.0,
                 half_life: float = 1800.0, min_calls: int = 50) -> None:
        p = priors or Priors()
        self.min_calls = min_calls

        def estimate(prior: float, sd: float = 0.0) -> Estimate:
            return Estimate(prior, prior_sd=sd, window=window, half_life=half_life)

        self.answer_rate = estimate(p.answer_rate)  # live / placed
        # The same over about the last 60 calls (or 5 minutes): noisier, but it sees a rising
        # answer rate sooner; only the breach's chance uses it (the pessimistic side).
        self.recent_answer_rate = Estimate(p.answer_rate, window=RECENT_CALLS,
                                           half_life=RECENT_HALF_LIFE)
        self.answered_rate = estimate(p.answered_rate)  # (live + machine) / placed
        self.machine_share = estimate(p.machine_share)  # machine / answered
        self.time_to_answer = estimate(p.time_to_answer, p.time_to_answer / 2)
        self.amd_seconds = estimate(p.amd_seconds, p.amd_seconds / 3)
        self.talk_seconds = estimate(p.talk_seconds, p.talk_seconds)
        self.wrap_up_seconds = estimate(p.wrap_up_seconds, p.wrap_up_seconds / 3)

    def call_ended(self, at: float, outcome: DialResult, *, ring_seconds: float | None = None,
                   amd_seconds: float | None = None) -> None:
        """One call placed by the campaign has its outcome (``ring_seconds``: placed to
        answered, for answered calls; ``amd_seconds``: the AMD's decision time)."""
        answered = outcome is not DialResult.UNANSWERED
        self.answer_rate.add(at, 1.0 if outcome is DialResult.LIVE else 0.0)
        self.recent_answer_rate.add(at, 1.0 if outcome is DialResult.LIVE else 0.0)
        self.answered_rate.add(at, 1.0 if answered else 0.0)
        if answered:
            self.machine_share.add(at, 1.0 if outcome is DialResult.MACHINE else 0.0)
            if ring_seconds is not None and ring_seconds >= 0:
                self.time_to_answer.add(at, ring_seconds)
        if amd_seconds is not None and amd_seconds >= 0:
            self.amd_seconds.add(at, amd_seconds)

    def talk_ended(self, at: float, seconds: float) -> None:
        self.talk_seconds.add(at, max(0.0, seconds))

    def wrap_up_ended(self, at: float, seconds: float) -> None:
        self.wrap_up_seconds.add(at, max(0.0, seconds))

    @property
    def measured(self) -> bool:
        return self.answer_rate.samples >= self.min_calls


# --------------------------------------------------------------------------- the decision


class AgentPhase(StrEnum):
    TALKING = "talking"
    WRAP_UP = "wrap_up"


@dataclass(frozen=True, slots=True)
class BusyAgent:
    """A logged-in agent who will be free again: on a call or in wrap-up since ``since``."""

    phase: AgentPhase
    since: float


@dataclass(frozen=True, slots=True)
class InFlight:
    """The campaign's calls not yet with an agent: ringing (their placing times), answered
    and waiting for the AMD, and live answers waiting for an agent (within their 2 s)."""

    ringing_since: Sequence[float] = ()
    in_amd: int = 0
    live_waiting: int = 0

    @property
    def total(self) -> int:
        return len(self.ringing_since) + self.in_amd + self.live_waiting


@dataclass(frozen=True, slots=True)
class PacingRules:
    """The campaign's settings for pacing.

    ``target_share``: predictive plans against this share of the cap, so that chance and
    the model's errors have room before the cap itself. ``bank_share``: the share of the
    abandons earned and unused so far (cap x answers - abandons) one decision may plan on
    top of what its own answers earn. ``max_calls_per_agent``: calls in flight per agent
    logged in, never more (a guard when the answer rate is tiny)."""

    mode: CampaignMode = CampaignMode.PREDICTIVE
    amd: bool = False  # as a campaign's default (core/campaigns.py)
    ring_seconds: float = DEFAULT_RING_TIME
    target_share: float = 0.8
    bank_share: float = 0.0
    max_calls_per_agent: float = 6.0
    max_lines: int | None = None  # the trunk's channels for this campaign, if limited
    # The chance, per decision, that the calls in flight bring more abandons than the budget
    # allows now, at most: the expectation alone lets two abandons land at once when only
    # one is allowed (early in the day, with few agents), and a short day has no time to
    # earn them back.
    breach_risk: float = 1e-5


@dataclass(frozen=True, slots=True)
class PacingDecision:
    calls: int
    mode: CampaignMode  # how the calls were sized (predictive may fall back to progressive)
    reason: str
    progressive_calls: int
    expected_live: float = 0.0  # live answers expected from all calls in flight after this
    expected_abandons: float = 0.0  # of those, with no agent free within 2 s
    abandon_limit: float = 0.0  # what the budget allowed for them
    breach_chance: float = 0.0  # P(more abandons than the budget allows now), modelled


def _binomial_range(trials: int, p: float) -> tuple[int, list[float]]:
    """(lowest k, pmf from there) of Binomial(trials, p), leaving out a negligible tail."""
    if trials <= 0 or p <= 0.0:
        return 0, [1.0]
    if p >= 1.0:
        return trials, [1.0]
    mean = trials * p
    spread = _TAIL_SIGMAS * math.sqrt(mean * (1.0 - p)) + _TAIL_SIGMAS
    low = max(0, math.floor(mean - spread))
    high = min(trials, math.ceil(mean + spread))
    log_p, log_q = math.log(p), math.log1p(-p)
    first = math.exp(math.lgamma(trials + 1) - math.lgamma(low + 1)
                     - math.lgamma(trials - low + 1) + low * log_p + (trials - low) * log_q)
    odds = p / (1.0 - p)
    # pmf(k + 1) = pmf(k) (trials - k) / (k + 1) p / (1 - p)
    steps = [(trials - k) / (k + 1) * odds for k in range(low, high)]
    return low, list(itertools.accumulate(steps, operator.mul, initial=first))


def _shortfall(x_low: int, x_pmf: list[float], x_mean: float, ready: int, b_low: int,
               b_pmf: list[float]) -> float:
    """E[(X - M)+] for X with pmf x_pmf from x_low (mean x_mean) and M = ready + B, B with
    pmf b_pmf from b_low."""
    x_high = x_low + len(x_pmf) - 1
    # shortfall[m - x_low] = E[(X - m)+] for m in [x_low, x_high]; built from the top with
    # E[(X - m)+] = E[(X - m - 1)+] + P(X > m).
    shortfall = [0.0] * len(x_pmf)
    above = 0.0  # P(X > m)
    for index in range(len(x_pmf) - 1, 0, -1):
        above += x_pmf[index]
        shortfall[index - 1] = shortfall[index] + above
    total = 0.0
    agents = ready + b_low
    for probability in b_pmf:
        if agents >= x_high:
            break  # no shortfall from here up
        if agents <= x_low:
            total += probability * (x_mean - agents)  # X >= x_low >= agents (up to a tail)
        else:
            total += probability * shortfall[agents - x_low]
        agents += 1
    return total


def _breach_chance(x_low: int, x_pmf: list[float], ready: int, b_low: int, b_pmf: list[float],
                   allowed: int) -> float:
    """P(X - M > allowed) for X with pmf x_pmf from x_low and M = ready + B, B with pmf b_pmf
    from b_low: the chance of more abandons than ``allowed``."""
    x_high = x_low + len(x_pmf) - 1
    # greater[m - x_low] = P(X > m), from the top.
    greater = list(itertools.accumulate(reversed(x_pmf[1:])))[::-1]
    breach = 0.0
    threshold = ready + b_low + allowed  # more abandons than allowed: X > M + allowed
    for probability in b_pmf:
        if threshold >= x_high:
            break
        breach += probability if threshold < x_low else probability * greater[threshold - x_low]
        threshold += 1
    return min(breach, 1.0)


def expected_shortfall(demand_trials: int, demand_mean: float, sure_demand: int,
                       ready: int, supply_trials: int, supply_mean: float) -> float:
    """E[(X - M)+]: X = sure_demand + Bin(demand_trials, demand_mean / demand_trials) live
    answers, M = ready + Bin(supply_trials, supply_mean / supply_trials) agents."""
    x_low, x_pmf = _binomial_range(demand_trials,
                                   demand_mean / demand_trials if demand_trials else 0.0)
    b_low, b_pmf = _binomial_range(supply_trials,
                                   supply_mean / supply_trials if supply_trials else 0.0)
    return _shortfall(x_low + sure_demand, x_pmf, sure_demand + demand_mean, ready, b_low,
                      b_pmf)


def _ringing_live_chances(now: float, ringing_since: Sequence[float], stats: DialerStats,
                          ring_seconds: float, agent_share_of_answers: float
                          ) -> tuple[int, float]:
    """Live answers still to come from the ringing calls: for a call unanswered at age a,
    P(answer later) = q (1 - F(a)) / (1 - q F(a)), q = answered per placed, F the time to
    answer's distribution; ages are taken by whole seconds (one table per decision).
    Returns (calls that may still answer, their expected live answers): a call past the ring
    time is no trial at all (counting it would only widen the binomial)."""
    answered = min(stats.answered_rate.mean, 1.0 - 1e-9)
    tta_mean, tta_var = stats.time_to_answer.mean, stats.time_to_answer.variance
    table: dict[int, float] = {}
    total = 0.0
    trials = 0
    for placed in ringing_since:
        age = int(now - placed)  # negative (placed "after" now): F is 0 there
        chance = table.get(age)
        if chance is None:
            if age >= ring_seconds:
                chance = 0.0
            else:
                done = _lognormal_cdf(float(age), tta_mean, tta_var)
                chance = (answered * (1.0 - done) / (1.0 - answered * done)
                          * agent_share_of_answers)
            table[age] = chance
        if chance > 0.0:
            total += chance
            trials += 1
    return trials, total


def _matched_binomial(mean: float, sum_sq: float, trials: int) -> tuple[int, float]:
    """(n, p) of the binomial with the mean and (about) the variance of a sum of ``trials``
    independent chances with this sum and sum of squares: variance = mean - sum_sq, so
    p = sum_sq / mean and n = mean / p, n whole (rounded, at most ``trials``, at least the
    mean) and p then mean / n. Chances as unequal as busy agents' (a few about to be free,
    many far from it) have much less variance than the binomial of the same count: this
    one keeps the real spread instead of the widest."""
    if trials <= 0 or mean <= 0.0:
        return 0, 0.0
    p = min(1.0, max(sum_sq / mean, mean / trials))
    n = min(trials, max(math.ceil(mean - 1e-9), round(mean / p)))
    return n, min(1.0, mean / n)


def _lognormal(mean: float, variance: float) -> tuple[float, float]:
    """(mu, sigma x sqrt 2) of the lognormal with this mean and variance (sigma 0: a point)."""
    if variance <= 1e-12 or mean <= 0.0:
        return math.log(max(mean, 1e-9)), 0.0
    sigma_sq = math.log1p(variance / (mean * mean))
    return math.log(mean) - sigma_sq / 2.0, math.sqrt(2.0 * sigma_sq)


def _expected_free(now: float, agents: Sequence[BusyAgent], within: float,
                   stats: DialerStats, soon: float | None = None
                   ) -> tuple[float, float, float]:
    """Sums over the busy agents of P(free by now + within), of its square, and of
    P(free by now + soon) (0 when ``soon`` is None), given how long each has been in their
    phase:
    (F(elapsed + deadline) - F(elapsed)) / (1 - F(elapsed)), F the phase's duration
    distribution (lognormal from the measured mean and variance). A talking agent has the
    wrap-up after the talk, taken at its mean. One loop, the lognormals' constants computed
    once: this is most of a decision's time with 200 agents."""
    erfc, log = math.erfc, math.log
    wrap_mean = stats.wrap_up_seconds.mean
    soon_at = -1.0 if soon is None else soon
    by_phase = {
        AgentPhase.TALKING: (*_lognormal(stats.talk_seconds.mean, stats.talk_seconds.variance),
                             within - wrap_mean, soon_at - wrap_mean),
        AgentPhase.WRAP_UP: (*_lognormal(wrap_mean, stats.wrap_up_seconds.variance), within,
                             soon_at),
    }
    total = 0.0
    total_sq = 0.0
    total_soon = 0.0
    for agent in agents:
        mu, spread, deadline, soon_deadline = by_phase[agent.phase]
        if deadline <= 0.0:
            continue
        elapsed = now - agent.since
        if spread == 0.0:  # a duration without spread: free exactly at its mean
            end = math.exp(mu)
            free = 1.0 if elapsed < end <= elapsed + deadline else 0.0
            total += free
            total_sq += free
            total_soon += 1.0 if elapsed < end <= elapsed + soon_deadline else 0.0
            continue
        before = 0.5 * erfc((mu - log(elapsed)) / spread) if elapsed > 0.0 else 0.0
        survive = 1.0 - before
        if survive < 1e-9:
            continue  # far past every duration we know: assume nothing (the safe side)
        after = 0.5 * erfc((mu - log(elapsed + deadline)) / spread)
        chance = (after - before) / survive  # F grows: never negative
        total += chance
        total_sq += chance * chance
        if soon_deadline > 0.0:
            after = 0.5 * erfc((mu - log(elapsed + soon_deadline)) / spread)
            total_soon += (after - before) / survive
    return total, total_sq, total_soon


def decide(now: float, rules: PacingRules, *, ready_agents: int,
           busy_agents: Sequence[BusyAgent], in_flight: InFlight, stats: DialerStats,
           budget: BudgetStanding) -> PacingDecision:
    """How many calls to place now.

    ``ready_agents``: logged in and waiting for a call; ``busy_agents``: logged in, on a call
    or in wrap-up (paused agents are in neither: they will not take a call soon)."""
    progressive = max(0, ready_agents - in_flight.total)
    if ready_agents + len(busy_agents) == 0:
        return PacingDecision(0, rules.mode, "no agent logged in", 0)
    if rules.mode is CampaignMode.PREVIEW:
        return PacingDecision(0, CampaignMode.PREVIEW, "preview: the agent chooses", progressive)
    headroom = _line_headroom(rules, ready_agents + len(busy_agents), in_flight.total)
    progressive = min(progressive, headroom)
    if rules.mode is CampaignMode.PROGRESSIVE:
        return PacingDecision(progressive, CampaignMode.PROGRESSIVE, "progressive", progressive)
    if budget.spent:
        return PacingDecision(progressive, CampaignMode.PROGRESSIVE,
                              "abandon budget spent: progressive", progressive)
    if not stats.measured:
        return PacingDecision(progressive, CampaignMode.PROGRESSIVE,
                              "too few calls measured yet: progressive", progressive)

    # Who needs an agent: live answers (with AMD), or every answer (without: the machine is
    # only found out by the agent).
    machine_share = min(max(stats.machine_share.mean, 0.0), 1.0)
    agent_share_of_answers = 1.0 - machine_share if rules.amd else 1.0
    per_call = min(1.0, stats.answered_rate.mean * agent_share_of_answers)
    ringing_trials, ringing = _ringing_live_chances(
        now, in_flight.ringing_since, stats, rules.ring_seconds, agent_share_of_answers)
    amd_live = in_flight.in_amd * (1.0 - machine_share)
    # The answer window: a new call's live answer comes after the ring and the AMD; agents
    # free by then plus the 2 seconds the rule grants can take it.
    window = stats.time_to_answer.mean + (stats.amd_seconds.mean if rules.amd else 0.0)
    within = window + SAFE_HARBOR_SECONDS
    # For the breach's chance, only the agents free by the time the first of the calls in
    # flight can need one (a call answering now, after the AMD, plus the 2 seconds): the
    # expected abandons may count an agent freed late in the window for an answer that came
    # early in it (it averages out over many agents); the tail must not.
    soon = (stats.amd_seconds.mean if rules.amd else 0.0) + SAFE_HARBOR_SECONDS
    supply_mean, supply_sq, soon_mean = _expected_free(now, busy_agents, within, stats, soon)
    supply_trials = len(busy_agents)
    uncertain_trials = ringing_trials + in_flight.in_amd
    uncertain_mean = ringing + amd_live

    target = budget.cap * rules.target_share
    bank = rules.bank_share * max(0.0, budget.surplus(target))
    hard_limit = budget.abandons_allowed
    allowed_now = budget.abandons_allowed_now

    # The agents' side is the same for every number of calls tried: its pmf once. The
    # expected abandons take the binomial with the real mix's mean and variance; the
    # breach's chance the binomial of the same count and mean (wider: the safe side).
    b_low, b_pmf = _binomial_range(*_matched_binomial(supply_mean, supply_sq, supply_trials))
    soon_low, soon_pmf = _binomial_range(supply_trials,
                                         soon_mean / supply_trials if supply_trials else 0.0)

    # The breach's chance also takes the live answers at the recent rate when it is higher:
    # the answer rate may be rising faster than the main estimate follows.
    surge = max(1.0, stats.recent_answer_rate.mean / max(stats.answer_rate.mean, 1e-9))

    def plan(extra: int, *, stop_if_over: bool = False) -> tuple[float, float, float, float]:
        """(live answers expected, expected abandons, their limit, the breach's chance) with
        ``extra`` new calls; the breach's chance is not computed (inf) when the expectation
        is over the limit already and ``stop_if_over``."""
        live = uncertain_mean + extra * per_call
        trials = uncertain_trials + extra
        chance = live / trials if trials else 0.0
        live_total = live + in_flight.live_waiting
        x_low, x_pmf = _binomial_range(trials, chance)
        abandons = _shortfall(x_low + in_flight.live_waiting, x_pmf, live_total, ready_agents,
                              b_low, b_pmf)
        limit = min(hard_limit, target * live_total + bank)
        if stop_if_over and abandons > limit:
            return live_total, abandons, limit, math.inf
        if surge > 1.0:
            x_low, x_pmf = _binomial_range(trials, min(1.0, chance * surge))
        breach = _breach_chance(x_low + in_flight.live_waiting, x_pmf, ready_agents,
                                soon_low, soon_pmf, allowed_now)
        return live_total, abandons, limit, breach

    def fits(extra: int) -> bool:
        _, abandons, limit, breach = plan(extra, stop_if_over=True)
        return abandons <= limit and breach <= rules.breach_risk

    if not fits(progressive):
        live, abandons, limit, breach = plan(progressive)
        return PacingDecision(progressive, CampaignMode.PROGRESSIVE,
                              "calls in flight already use the budget: progressive",
                              progressive, live, abandons, limit, breach)
    # The expected abandons grow convexly with the calls and the limit linearly, so the calls
    # that fit are one run from ``progressive`` up: find its end by doubling, then halving.
    low, step, high = progressive, 1, max(progressive, headroom) + 1
    while low + step < high:
        if fits(low + step):
            low, step = low + step, step * 2
        else:
            high = low + step
    # Between low (fits) and high (does not, or past the limits): the first that does not.
    low += bisect.bisect_left(range(low + 1, high), True, key=lambda n: not fits(n))
    live, abandons, limit, breach = plan(low)
    return PacingDecision(low, CampaignMode.PREDICTIVE, "predictive", progressive, live, abandons,
                          limit, breach)


def _line_headroom(rules: PacingRules, logged_in: int, in_flight: int) -> int:
    """Calls that may still be placed under the per-agent and trunk limits."""
    most = math.floor(rules.max_calls_per_agent * logged_in)
    if rules.max_lines is not None:
        most = min(most, rules.max_lines)
    return max(0, most - in_flight)


__all__ = [
    "AbandonBudget",
    "AgentPhase",
    "BudgetStanding",
    "BusyAgent",
    "DialResult",
    "DialerStats",
    "Estimate",
    "InFlight",
    "PacingDecision",
    "PacingRules",
    "Priors",
    "WindowCounts",
    "decide",
    "expected_shortfall",
]
