"""Staffing formulas: Erlang B, Erlang C (M/M/N) and Erlang A (M/M/N+M). Pure math.

Units: times in seconds; ``load`` is the offered load in Erlangs, A = arrival rate x mean
handle time (calls per second x seconds; e.g. 200 calls/hour with 180 s handle time is
200 / 3600 x 180 = 10 Erlangs). ``servers`` is the number of agents answering the queue.

The models (textbook assumptions, see docs/simulation.md for what they leave out):
- Erlang B: N lines, Poisson arrivals, no queue: a call finding all N busy is lost.
- Erlang C (M/M/N): Poisson arrivals, exponential handle times, an unlimited FIFO queue,
  callers never give up. Stable only while A < N; at A >= N the line grows without end.
- Erlang A (M/M/N+M, Palm 1943; Garnett, Mandelbaum & Reiman 2002): Erlang C where each
  waiting caller hangs up after an exponential patience of mean ``patience`` seconds.
  Always stable. With patience -> infinity it becomes Erlang C.

Figures follow the project's definitions (docs/simulation.md, DOMAIN.md):
- service level = answered within T / (answered + abandoned after T). Without abandonment
  this is simply P(wait <= T).
- ASA = mean wait of answered calls (those answered at once count, with wait 0).
- occupancy = busy agent time / available agent time = carried load / N.

Numerics: no factorials or powers. Erlang B runs its recurrence in logarithms, so N = 500
or N = 5,000 with tiny or huge loads neither overflows nor underflows; the Erlang A chain
is summed in logarithms with the largest term as the scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# States of the Erlang A queue are summed until their weight falls this far (in natural
# log units, e^-46 ~ 1e-20) below the largest one: far below double precision of the sum.
_NEGLIGIBLE_LOG_WEIGHT = 46.0
# A chain this long means patience so long against an overload that the model is
# meaningless in practice (hundreds of thousands of callers waiting).
_MAX_QUEUE_STATES = 1_000_000
# Poisson weights of the uniformised chain beyond mean + this many standard deviations
# (plus a margin for small means) are below 1e-15 together.
_POISSON_TAIL_SIGMAS = 9.0


# --------------------------------------------------------------------------- validation


def _check_servers(servers: int) -> None:
    if isinstance(servers, bool) or not isinstance(servers, int) or servers < 1:
        raise ValueError(f"servers must be a whole number >= 1, not {servers!r}")


def _check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, not {value!r}")


def offered_load(arrivals_per_hour: float, handle_time: float) -> float:
    """Offered load in Erlangs: calls per hour x mean handle time (s) / 3600."""
    _check_positive("arrivals_per_hour", arrivals_per_hour, allow_zero=True)
    _check_positive("handle_time", handle_time)
    return arrivals_per_hour * handle_time / 3600.0


# --------------------------------------------------------------------------- Erlang B


def _log_erlang_b(servers: int, load: float) -> float:
    """log B(N, A) by the recurrence B(n) = A B(n-1) / (n + A B(n-1)), B(0) = 1.

    In logs: log B(n) = log A + log B(n-1) - log(n + A B(n-1)). A B(n-1) may underflow
    to 0 when it is negligible against n, which is then harmless."""
    log_load = math.log(load)
    log_b = 0.0
    for n in range(1, servers + 1):
        log_b = log_load + log_b - math.log(n + load * math.exp(log_b))
    return log_b


def erlang_b(servers: int, load: float) -> float:
    """Erlang B: the probability that a call finds all ``servers`` lines busy (and is lost)
    with ``load`` Erlangs offered, no queue."""
    _check_servers(servers)
    _check_positive("load", load, allow_zero=True)
    if load == 0:
        return 0.0
    return math.exp(_log_erlang_b(servers, load))


# --------------------------------------------------------------------------- Erlang C


def erlang_c(servers: int, load: float) -> float:
    """Erlang C: the probability that a caller has to wait, P(W > 0), in M/M/N.

    C = N B / (N - A (1 - B)) with B = Erlang B (a stable form of the textbook sum).
    At load >= servers the queue is unstable and every caller waits: 1.0."""
    _check_servers(servers)
    _check_positive("load", load, allow_zero=True)
    if load == 0:
        return 0.0
    if load >= servers:
        return 1.0
    blocking = erlang_b(servers, load)
    return servers * blocking / (servers - load * (1.0 - blocking))


def erlang_c_service_level(servers: int, load: float, handle_time: float,
                           threshold: float) -> float:
    """P(W <= T) in M/M/N: 1 - C e^{-(N - A) T / h}. 0.0 when unstable (load >= servers)."""
    _check_positive("handle_time", handle_time)
    _check_positive("threshold", threshold, allow_zero=True)
    p_wait = erlang_c(servers, load)
    if load >= servers:
        return 0.0
    return 1.0 - p_wait * math.exp(-(servers - load) * threshold / handle_time)


def erlang_c_asa(servers: int, load: float, handle_time: float) -> float:
    """Average speed of answer in M/M/N: C h / (N - A) seconds; infinite when unstable."""
    _check_positive("handle_time", handle_time)
    p_wait = erlang_c(servers, load)
    if load >= servers:
        return math.inf
    return p_wait * handle_time / (servers - load)


def erlang_c_occupancy(servers: int, load: float) -> float:
    """Agent occupancy in M/M/N: A / N (every offered call is carried), at most 1."""
    _check_servers(servers)
    _check_positive("load", load, allow_zero=True)
    return min(load / servers, 1.0)


# --------------------------------------------------------------------------- Erlang A


@dataclass(frozen=True)
class ErlangA:
    """Steady-state figures of M/M/N+M for one (servers, load, handle time, patience)."""

    servers: int
    load: float                     # offered, Erlangs
    p_wait: float                   # an arriving caller finds every agent busy
    p_abandon: float                # ... and hangs up before being answered
    p_answered: float               # 1 - p_abandon
    answered_within: float          # fraction of callers answered with wait <= threshold
    abandoned_after: float          # fraction of callers hanging up after waiting > threshold
    service_level: float            # answered_within / (p_answered + abandoned_after)
    asa: float                      # mean wait of answered calls, seconds
    occupancy: float                # carried load / servers
    threshold: float                # the T of the service level, seconds


def erlang_a(servers: int, load: float, handle_time: float, patience: float,
             threshold: float = 20.0) -> ErlangA:
    """Erlang A (M/M/N+M): N agents, Poisson arrivals, exponential handle times of mean
    ``handle_time``, and callers who hang up after an exponential patience of mean
    ``patience`` seconds while waiting (``math.inf``: never; then this is Erlang C).

    Method. The number of callers in the system is a birth-death chain: births at rate
    lambda; deaths at rate n mu below N and N mu + i theta with i callers waiting
    (mu = 1/handle_time, theta = 1/patience). Its stationary weights, relative to the
    state "N busy, nobody waiting", are 1/B(N, A) for all states up to N (Erlang B) and
    w_i = prod_{m=1..i} lambda / (N mu + m theta) for i callers waiting; they are summed in
    logarithms until negligible. By PASTA an arriving caller sees these probabilities.

    A caller who arrives to find i callers waiting ahead of it moves up when a head-of-line
    caller is answered or anyone ahead hangs up (rate N mu + j theta with j ahead; callers
    behind do not matter, FIFO) and leaves by its own patience at rate theta. So:
    - it is eventually answered with probability
      a_i = prod_{j=0..i} (N mu + j theta) / (N mu + (j + 1) theta),
    - and since each stay is exponential whatever ends it, its expected wait counted only
      if answered is a_i * sum_{j=0..i} 1 / (N mu + (j + 1) theta): that gives the ASA.
    - The service level needs the wait's distribution at T: this pure-death chain with
      killing (j ahead -> j - 1 -> ... -> answered) is evolved for T seconds from the
      arrival distribution by uniformisation (a Poisson-weighted sum of powers of a
      stochastic matrix: exact up to a truncation of 1e-15, and never negative). Mass that
      reached "answered" is answered within T; mass still waiting at T with j ahead will
      hang up later with probability 1 - a_j: that is abandoned after T.
    """
    _check_servers(servers)
    _check_positive("load", load, allow_zero=True)
    _check_positive("handle_time", handle_time)
    _check_positive("threshold", threshold, allow_zero=True)
    if math.isnan(patience) or patience <= 0:
        raise ValueError(f"patience must be > 0 seconds (math.inf: never), not {patience!r}")
    service_rate = 1.0 / handle_time
    abandon_rate = 0.0 if math.isinf(patience) else 1.0 / patience
    if load == 0:
        return ErlangA(servers, load, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, threshold)
    if abandon_rate == 0 and load >= servers:
        # Erlang C overloaded: the line grows for ever, nobody is answered in time.
        return ErlangA(servers, load, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, math.inf, 1.0, threshold)
    arrival_rate = load * service_rate
    full_rate = servers * service_rate          # answering rate when every agent is busy
    arrivals_seen = _arrival_distribution(servers, load, arrival_rate, full_rate,
                                          abandon_rate)
    p_no_wait, waiting_seen = arrivals_seen
    # Leaving rates of a waiting caller with j ahead: moving up (j > 0) or being answered
    # (j = 0) at full_rate + j theta; hanging up at theta.
    advance = [full_rate + j * abandon_rate for j in range(len(waiting_seen))]
    leave = [rate + abandon_rate for rate in advance]
    answered_from = []      # a_j
    answered_wait = []      # a_j * sum 1/leave: expected wait counted when answered
    product, mean_stay = 1.0, 0.0
    for j in range(len(waiting_seen)):
        product *= advance[j] / leave[j]
        mean_stay += 1.0 / leave[j]
        answered_from.append(product)
        answered_wait.append(product * mean_stay)
    p_wait = 1.0 - p_no_wait
    answered_after_wait = math.fsum(q * a for q, a in zip(waiting_seen, answered_from,
                                                          strict=True))
    p_answered = p_no_wait + answered_after_wait
    asa_numerator = math.fsum(q * w for q, w in zip(waiting_seen, answered_wait, strict=True))
    served_by_t, waiting_at_t = _evolve_waiting(waiting_seen, advance, leave, threshold)
    answered_within = p_no_wait + served_by_t
    abandoned_after = math.fsum(w * (1.0 - a) for w, a in zip(waiting_at_t, answered_from,
                                                               strict=True))
    denominator = p_answered + abandoned_after
    return ErlangA(
        servers=servers,
        load=load,
        p_wait=p_wait,
        p_abandon=max(0.0, 1.0 - p_answered),
        p_answered=p_answered,
        answered_within=answered_within,
        abandoned_after=abandoned_after,
        service_level=answered_within / denominator if denominator > 0 else 1.0,
        asa=asa_numerator / p_answered if p_answered > 0 else 0.0,
        occupancy=min(load * p_answered / servers, 1.0),
        threshold=threshold,
    )


def _arrival_distribution(servers: int, load: float, arrival_rate: float, full_rate: float,
                          abandon_rate: float) -> tuple[float, list[float]]:
    """(P(an arrival finds a free agent), [P(it finds all busy and i waiting), i = 0..])."""
    log_weights = [0.0]     # relative to the state "N busy, nobody waiting"
    peak = 0.0
    i = 0
    while True:
        i += 1
        if i > _MAX_QUEUE_STATES:
            raise ValueError(
                f"Erlang A: the queue does not settle within {_MAX_QUEUE_STATES} waiting "
                "callers; the patience is far too long for this overload")
        ratio = arrival_rate / (full_rate + i * abandon_rate)
        log_weight = log_weights[-1] + math.log(ratio)
        log_weights.append(log_weight)
        peak = max(peak, log_weight)
        if ratio < 1.0 and log_weight < peak - _NEGLIGIBLE_LOG_WEIGHT:
            break
    # States 0..N together weigh 1/B relative to state N; state N is log_weights[0].
    log_up_to_full = -_log_erlang_b(servers, load)
    scale = max(peak, log_up_to_full)
    below_full = math.exp(log_up_to_full - scale) - math.exp(-scale)  # states 0..N-1
    waiting = [math.exp(w - scale) for w in log_weights]
    total = below_full + math.fsum(waiting)
    return below_full / total, [w / total for w in waiting]


def _poisson_weights(mean: float) -> list[float]:
    """P(K = n) for K ~ Poisson(mean), n = 0 .. where the tail is below ~1e-15."""
    last = math.ceil(mean + _POISSON_TAIL_SIGMAS * math.sqrt(mean) + 20)
    if mean == 0:
        return [1.0]
    log_mean = math.log(mean)
    return [math.exp(-mean + n * log_mean - math.lgamma(n + 1)) for n in range(last + 1)]


def _evolve_waiting(start: list[float], advance: list[float], leave: list[float],
                    horizon: float) -> tuple[float, list[float]]:
    """Uniformise the waiting caller's chain over ``horizon`` seconds.

    State j = callers ahead; from j the caller moves to j - 1 (j = 0: answered) at
    ``advance[j]`` and hangs up at ``leave[j] - advance[j]``. Returns (probability answered
    by the horizon, probabilities still waiting with j ahead at the horizon)."""
    if horizon == 0:
        return 0.0, list(start)
    uniform_rate = max(leave)
    stay = [1.0 - rate / uniform_rate for rate in leave]
    step_up = [rate / uniform_rate for rate in advance]
    weights = _poisson_weights(uniform_rate * horizon)
    state = list(start)
    served = 0.0
    served_at_horizon = 0.0
    waiting_at_horizon = [0.0] * len(start)
    size = len(start)
    for weight in weights:
        if weight > 0:
            served_at_horizon += weight * served
            waiting_at_horizon = [acc + weight * p for acc, p in zip(waiting_at_horizon, state,
                                                                    strict=True)]
        served += state[0] * step_up[0]
        state = [state[j] * stay[j] + state[j + 1] * step_up[j + 1] for j in range(size - 1)
                 ] + [state[-1] * stay[-1]]
    return served_at_horizon, waiting_at_horizon


# --------------------------------------------------------------------------- staffing


def square_root_staffing(load: float, beta: float) -> int:
    """The square-root staffing rule: N = ceil(A + beta sqrt(A)) (at least 1).

    beta around 0.5-1 for moderate service, 1.5-2 for very good service; a first guess
    that agents_for_service_level refines."""
    _check_positive("load", load, allow_zero=True)
    if not math.isfinite(beta):
        raise ValueError(f"beta must be a finite number, not {beta!r}")
    return max(1, math.ceil(load + beta * math.sqrt(load)))


def service_level(servers: int, load: float, handle_time: float, threshold: float,
                  patience: float = math.inf) -> float:
    """Service level with Erlang C (patience infinite) or Erlang A (finite patience)."""
    if math.isinf(patience):
        return erlang_c_service_level(servers, load, handle_time, threshold)
    return erlang_a(servers, load, handle_time, patience, threshold).service_level


def agents_for_service_level(load: float, handle_time: float, target: float,
                             threshold: float, patience: float = math.inf) -> int:
    """The smallest number of agents whose service level (within ``threshold`` seconds)
    is at least ``target`` (a fraction, e.g. 0.8), by Erlang C or, with a finite
    ``patience``, Erlang A. The service level grows with N, so: square-root guess,
    widen until the target is met, then bisect."""
    if not 0 < target < 1:
        raise ValueError(f"target service level must be a fraction between 0 and 1, "
                         f"not {target!r}")
    _check_positive("load", load, allow_zero=True)
    if load == 0:
        return 1

    def meets(servers: int) -> bool:
        return service_level(servers, load, handle_time, threshold, patience) >= target

    low = (math.floor(load) if math.isinf(patience) else 0)  # known not to meet target
    high = max(low + 1, square_root_staffing(load, 1.0))
    while not meets(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if meets(middle):
            high = middle
        else:
            low = middle
    return high
