"""Whether a call is recorded, whether the caller is told first, where its file goes and
when it expires: pure rules, no I/O (docs/recordings.md).

A policy belongs to a queue or to a campaign (a campaign's wins: its answered customers
wait in its queue). Its mode:

- ``none``: never recorded, nothing said;
- ``all``: every call is recorded from the moment an agent is on the line;
- ``on_demand``: the recorder is armed but muted; the agent starts it during the call (the
  file then holds silence up to that moment, so times in it are times of the talk);
- ``share``: a share of calls (``share_percent``) is recorded for quality checks, drawn
  per call from a random source the caller of ``decide`` injects (tests inject their own).

The announcement ("this call may be recorded") is said to every caller whom the policy
may record when ``announce`` is on: for ``share`` that is every caller, sampled or not, so
that neither the caller nor anyone listening can tell which calls are sampled.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import PurePosixPath

SECONDS_PER_DAY = 86_400
MAX_RETENTION_DAYS = 36_500  # a hundred years: beyond that a typo, not a policy
FILE_FORMAT = "wav"  # what MixMonitor writes: 8 kHz mono 16-bit PCM, readable by ``wave``
# What a file name keeps of the call's id: letters, digits, '.', '-'; the rest becomes '-'.
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")
MAX_NAME_CHARS = 80


class RecordingMode(StrEnum):
    NONE = "none"
    ALL = "all"
    ON_DEMAND = "on_demand"
    SHARE = "share"


class RecordingReason(StrEnum):
    """Why a call has a recording row: what the policy decided for it."""

    ALL = "all"  # the policy records every call
    QUALITY_SAMPLE = "quality_sample"  # drawn into the share for quality checks
    NOT_SAMPLED = "not_sampled"  # a share policy that did not draw this call: no audio
    ON_DEMAND = "on_demand"  # armed muted; audio only once the agent asks


@dataclass(frozen=True)
class RecordingPolicy:
    mode: RecordingMode = RecordingMode.NONE
    share_percent: float = 0.0  # mode share: the percentage of calls recorded, 0-100
    announce: bool = True  # say "this call may be recorded" first
    retention_days: int = 90  # files older than this are deleted

    def __post_init__(self) -> None:
        check_policy(self)


def check_policy(policy: RecordingPolicy, where: str = "policy") -> None:
    """ValueError naming ``where`` and the field when a policy cannot be applied."""
    if not isinstance(policy.mode, RecordingMode):
        raise ValueError(f"{where}.mode: {policy.mode!r} is not one of "
                         f"{', '.join(m.value for m in RecordingMode)}")
    share = policy.share_percent
    if isinstance(share, bool) or not isinstance(share, int | float) or math.isnan(share) \
            or not 0 <= share <= 100:
        raise ValueError(f"{where}.share_percent: {share!r} is not a percentage from 0 to 100")
    if policy.mode is RecordingMode.SHARE and share == 0:
        raise ValueError(f"{where}.share_percent: a share policy needs a share above 0")
    days = policy.retention_days
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RETENTION_DAYS:
        raise ValueError(f"{where}.retention_days: {days!r} is not a whole number of days "
                         f"from 1 to {MAX_RETENTION_DAYS}")


NO_RECORDING = RecordingPolicy()


@dataclass(frozen=True)
class RecordingDecision:
    """What happens to one call: armed (a recorder on the caller's channel), heard from the
    start (not muted), said to the caller, and why."""

    reason: RecordingReason | None  # None: the policy is ``none``, nothing is kept
    announce: bool
    retention_days: int

    @property
    def armed(self) -> bool:
        """A recorder goes on the caller's channel (muted for on demand)."""
        return self.reason in (RecordingReason.ALL, RecordingReason.QUALITY_SAMPLE,
                               RecordingReason.ON_DEMAND)

    @property
    def audible_from_start(self) -> bool:
        return self.reason in (RecordingReason.ALL, RecordingReason.QUALITY_SAMPLE)

    @property
    def kept(self) -> bool:
        """Whether the decision is worth a row (the announcement or a recording)."""
        return self.reason is not None


def decide(policy: RecordingPolicy, draw: float) -> RecordingDecision:
    """The decision for one call. ``draw`` is uniform in [0, 1) from the injected random
    source; a share of p % records exactly the draws below p / 100."""
    if not 0 <= draw < 1:
        raise ValueError(f"draw: {draw!r} is not in [0, 1)")
    announce = policy.announce and policy.mode is not RecordingMode.NONE
    match policy.mode:
        case RecordingMode.NONE:
            reason = None
        case RecordingMode.ALL:
            reason = RecordingReason.ALL
        case RecordingMode.ON_DEMAND:
            reason = RecordingReason.ON_DEMAND
        case RecordingMode.SHARE:
            reason = (RecordingReason.QUALITY_SAMPLE if draw < policy.share_percent / 100
                      else RecordingReason.NOT_SAMPLED)
    return RecordingDecision(reason, announce, policy.retention_days)


@dataclass(frozen=True)
class PolicyRule:
    """A policy and what it covers: one queue or one campaign (exactly one of the two)."""

    policy: RecordingPolicy
    queue: str | None = None
    campaign: str | None = None


def policy_for(rules: Iterable[PolicyRule], *, queue: str | None,
               campaign: str | None, default: RecordingPolicy = NO_RECORDING,
               ) -> RecordingPolicy:
    """The campaign's policy when the call is a campaign's and it has one; else the queue's;
    else ``default``."""
    by_queue: dict[str, RecordingPolicy] = {}
    by_campaign: dict[str, RecordingPolicy] = {}
    for rule in rules:
        if rule.campaign is not None:
            by_campaign[rule.campaign] = rule.policy
        elif rule.queue is not None:
            by_queue[rule.queue] = rule.policy
    if campaign is not None and campaign in by_campaign:
        return by_campaign[campaign]
    if queue is not None and queue in by_queue:
        return by_queue[queue]
    return default


def file_name(call_id: str) -> str:
    """The recording's file name from the call's id alone (Asterisk's Uniqueid, e.g.
    ``1765143000.42``): characters other than letters, digits, '.' and '-' become '-', no
    leading dot, bounded length. Nothing a caller or a user sends reaches it."""
    if not call_id:
        raise ValueError("call_id: empty, a recording needs the call's id")
    safe = _UNSAFE.sub("-", call_id)[:MAX_NAME_CHARS].lstrip(".")
    return f"call-{safe}.{FILE_FORMAT}"


def stored_path(call_id: str, started_at: float) -> PurePosixPath:
    """``YYYY/MM/DD/<file name>`` (UTC day the recording was armed), relative to the
    recordings folder."""
    day = datetime.fromtimestamp(started_at, UTC)
    return PurePosixPath(f"{day:%Y}", f"{day:%m}", f"{day:%d}", file_name(call_id))


def expires_at(started_at: float, retention_days: int) -> float:
    return started_at + retention_days * SECONDS_PER_DAY


def expired(started_at: float, retention_days: int, now: float) -> bool:
    """Whether a recording armed at ``started_at`` is past its retention at ``now``."""
    return now >= expires_at(started_at, retention_days)
