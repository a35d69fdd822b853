"""Do-not-call entries and the consent ledger, as values; and what the ledger says now.

The ledger is append-only: a consent is granted or revoked by an entry, never by changing
one. What it says for a number and a campaign is read from the entries in time order (the
store's order for entries at the same time): the last entry that applies wins, so a
revocation is honoured from its time on, and only a later grant (a new consent, with its own
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


def consent_now(entries: Iterable[ConsentEntry], number: str, campaign: str,
                at: float) -> ConsentNow:
    """The consent for ``number`` in ``campaign`` at ``at``: the last entry made by then for
    that number and that campaign or every campaign."""
    deciding: ConsentEntry | None = None
    for entry in entries:
        if entry.number != number or entry.at > at:
            continue
        if entry.campaign is not None and entry.campaign != campaign:
            continue
        if deciding is None or (entry.at, entry.id or 0) >= (deciding.at, deciding.id or 0):
            deciding = entry
    return ConsentNow(granted=deciding is not None and deciding.kind is ConsentKind.GRANTED,
                      entry=deciding)


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
