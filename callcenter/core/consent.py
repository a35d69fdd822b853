"""Do-not-call entries and the consent ledger, as values; and what the ledger says now.

The ledger is append-only: a consent is granted or revoked by an entry, never by changing
one. ``consent_now`` reads what it says for a number and a campaign (the one rule; the
calling rules in core/dial_rules.py ask it): a revocation is honoured from the moment it is
stored and wins over every earlier grant; only a later grant (a new consent, with its own
proof) lifts it. A grant or revocation for every campaign (``campaign`` None) applies to each.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class ConsentKind(StrEnum):
    GRANTED = "granted"
    REVOKED = "revoked"


class ConsentSource(StrEnum):
    """Where a consent or revocation came from."""

    API = "api"  # a system or a manager through the API (an upload, a web form's record)
    AGENT = "agent"  # an agent's disposition after a call
    IVR = "ivr"  # a key on the safe-harbor message ("press 9 to stop these calls")
    IMPORT = "import"  # a file of consents or revocations


@dataclass(frozen=True)
class ConsentEntry:
    number: str  # E.164
    campaign: str | None  # None: every campaign
    kind: ConsentKind
    at: float
    source: ConsentSource
    proof: str  # the text or reference that proves it ("web form 2026-11-02 #8812", ...)
    recorded_by: str | None = None  # the user or part of the service that wrote it
    id: int | None = None  # given by the store; orders entries made at the same time


@dataclass(frozen=True)
class DoNotCall:
    number: str  # E.164
    campaign: str | None  # None: the global list
    added_at: float
    source: str  # "api", "agent", "ivr", "import"
    reason: str
    added_by: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class ConsentNow:
    """What the ledger says for one number and campaign at a time."""

    granted: bool
    entry: ConsentEntry | None  # the entry that decides; None: nothing recorded

    @property
    def revoked(self) -> bool:
        return self.entry is not None and self.entry.kind is ConsentKind.REVOKED


def consent_now(entries: Iterable[ConsentEntry], campaign: str, at: float) -> ConsentNow:
    """The consent of one number (``entries`` are its ledger entries) in ``campaign`` at
    ``at``. A grant counts from its time (one dated later, a skewed clock, not yet); a
    revocation counts whatever its time (it is never postponed) and wins over every grant made
    before it or in the same second; only a later grant lifts it. Entries for every campaign
    (``campaign`` None) apply to each."""
    last_grant: ConsentEntry | None = None
    last_revocation: ConsentEntry | None = None
    for entry in entries:
        if entry.campaign is not None and entry.campaign != campaign:
            continue
        order = (entry.at, entry.id or 0)
        if entry.kind is ConsentKind.REVOKED:
            if last_revocation is None or order >= (last_revocation.at, last_revocation.id or 0):
                last_revocation = entry
        elif entry.at <= at and (last_grant is None
                                 or order >= (last_grant.at, last_grant.id or 0)):
            last_grant = entry
    if last_revocation is not None and (last_grant is None
                                        or last_revocation.at >= last_grant.at):
        return ConsentNow(granted=False, entry=last_revocation)
    return ConsentNow(granted=last_grant is not None, entry=last_grant)


def on_do_not_call(entries: Iterable[DoNotCall], number: str, campaign: str
                   ) -> DoNotCall | None:
    """The entry that forbids dialing ``number`` for ``campaign``: the global list's first,
    then the campaign's; None when neither lists it."""
    found: DoNotCall | None = None
    for entry in entries:
        if entry.number != number:
            continue
        if entry.campaign is None:
            return entry
        if entry.campaign == campaign and found is None:
            found = entry
    return found
