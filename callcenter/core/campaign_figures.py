"""Campaigns' figures per 15-minute UTC bucket (issue 14's outbound reports), pure.

Each dialer attempt counts, as it stands now, in a few named counters of its campaign:

    placed               every attempt, in the bucket it was placed
    outcome:<outcome>    its outcome once it ended (dial_rules.Outcome), where it was placed
                         (as the dialer's own ``outcome_counts``)
    live_answer          a person answered (outcome human or dropped), when they answered
                         (as the dialer's ``live_answers``: what its abandon budget counts)
    abandoned            such a live answer no agent took within 2 s
    contact              a person talked to an agent (outcome human), when they answered
    disposition:<name>   the agent's disposition of such a call, when it was answered

Machines are no live answers, so they count in no abandon rate. An attempt that changes
(answered, ended, disposed) takes its old counts off and adds its new ones: ``counts``
of the attempt before and after, and their difference, ``count_changes``.

The figures over any set of buckets come from the sums: the abandon rate is the dialer's
own ``WindowCounts(live answers, abandoned).rate`` (core/pacing.py), never a second formula.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from callcenter.core.agent_figures import bucket_of, micros
from callcenter.core.dial_rules import Outcome
from callcenter.core.pacing import WindowCounts

LIVE = frozenset({Outcome.HUMAN.value, Outcome.DROPPED.value})
PLACED, LIVE_ANSWER, ABANDONED, CONTACT = "placed", "live_answer", "abandoned", "contact"
OUTCOME_PREFIX, DISPOSITION_PREFIX = "outcome:", "disposition:"


@dataclass(frozen=True, slots=True)
class AttemptFacts:
    """What the campaign figures need of one attempt (times in POSIX seconds)."""

    campaign: str
    placed_at: float
    answered_at: float | None = None
    outcome: str | None = None  # None while the call is under way
    abandoned: bool = False
    disposition: str | None = None
    agent_id: str | None = None  # the agent who took the call
    disposed_at: float | None = None


CountKey = tuple[str, int, str]  # campaign, bucket start (microseconds), counter


def counts(attempt: AttemptFacts) -> Counter[CountKey]:
    """The counters this attempt adds to, as it stands."""
    found: Counter[CountKey] = Counter()
    placed = bucket_of(micros(attempt.placed_at))
    found[(attempt.campaign, placed, PLACED)] += 1
    if attempt.outcome:
        found[(attempt.campaign, placed, OUTCOME_PREFIX + attempt.outcome)] += 1
    if attempt.outcome in LIVE and attempt.answered_at is not None:
        answered = bucket_of(micros(attempt.answered_at))
        found[(attempt.campaign, answered, LIVE_ANSWER)] += 1
        if attempt.abandoned:
            found[(attempt.campaign, answered, ABANDONED)] += 1
        if attempt.outcome == Outcome.HUMAN.value:
            found[(attempt.campaign, answered, CONTACT)] += 1
            if attempt.disposition:
                found[(attempt.campaign, answered,
                       DISPOSITION_PREFIX + attempt.disposition)] += 1
    return found


def count_changes(before: AttemptFacts | None, after: AttemptFacts | None,
                  ) -> dict[CountKey, int]:
    """What to add to each counter when an attempt goes from ``before`` to ``after`` (None:
    not there); counters that do not move are left out."""
    changes: Counter[CountKey] = Counter()
    if after is not None:
        changes.update(counts(after))
    if before is not None:
        changes.subtract(counts(before))
    return {key: amount for key, amount in sorted(changes.items()) if amount}


@dataclass
class CampaignTotals:
    """Counter sums over a set of buckets, and the figures made from them."""

    counters: Counter[str]

    @classmethod
    def of(cls, counters: Mapping[str, int] | None = None) -> CampaignTotals:
        return cls(Counter(counters or {}))

    def merge(self, other: CampaignTotals) -> None:
        self.counters.update(other.counters)

    @property
    def placed(self) -> int:
        return self.counters[PLACED]

    @property
    def live_answers(self) -> int:
        return self.counters[LIVE_ANSWER]

    @property
    def abandoned(self) -> int:
        return self.counters[ABANDONED]

    @property
    def contacts(self) -> int:
        return self.counters[CONTACT]

    @property
    def abandon_rate(self) -> float:
        """Abandoned live answers / live answers (machines excluded); 0 with none."""
        return WindowCounts(self.live_answers, self.abandoned).rate

    def outcomes(self) -> dict[str, int]:
        return {outcome.value: self.counters[OUTCOME_PREFIX + outcome.value]
                for outcome in Outcome}

    def dispositions(self) -> dict[str, int]:
        return {name[len(DISPOSITION_PREFIX):]: amount
                for name, amount in sorted(self.counters.items())
                if name.startswith(DISPOSITION_PREFIX) and amount}

    def conversion(self) -> dict[str, float]:
        """Per disposition: its calls / contacts (the share of people reached)."""
        return {name: amount / self.contacts if self.contacts else 0.0
                for name, amount in self.dispositions().items()}
