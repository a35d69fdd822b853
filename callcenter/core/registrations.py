"""Which agents' phones are registered with Asterisk, and which of them it can ring.

Folds the AMI's ``ContactStatus`` events (live) and a ``DeviceStateList`` answer (a snapshot
after each AMI connect) into one registration per agent. The snapshot is not
``PJSIPShowContacts``: that action needs the AMI ``system`` right, which the service does not
hold (docs/security-privilege.md). A PJSIP endpoint's device state is ``UNAVAILABLE`` while
Asterisk can reach none of its contacts and something else once it can; the contact's URI is
then unknown until its next ``ContactStatus`` (each aor keeps one contact, ``max_contacts =
1``, so that event replaces the snapshot's stand-in). ``load_snapshot`` of ``ContactList``
entries stays for a user that has the right.
Our PJSIP aor, endpoint and agent share one name, so the aor names the agent. No I/O: time
comes in as values, and only flips of ``registered`` or ``reachable`` come out, for the ACD's
``set_reachable``.

What Asterisk 22 sends (seen on the sandbox): a phone's REGISTER gives
``ContactStatus: NonQualified`` (``Reachable``/``Unreachable`` once the aor is qualified), a
refresh nothing, an unREGISTER or expiry ``Removed``. An aor's static ``contact`` (a test
phone) never registers and is not listed by PJSIPShowContacts: pass those as
``static_contacts``; they count as registered until an event says Asterisk cannot reach them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the typed records the AMI adapter builds; only data crosses over
    from callcenter.asterisk.events import ContactList, ContactStatus, DeviceStateChange

REMOVED = "Removed"
UNREACHABLE = "Unreachable"
REACHABLE = "Reachable"  # the only status whose round trip was measured by a qualify
# Device states of an endpoint Asterisk cannot ring (no contact, or none reachable).
UNREACHABLE_DEVICE_STATES = frozenset({"UNAVAILABLE", "INVALID"})
SNAPSHOT_CONTACT = ""  # stands for a contact a device state showed, its URI not yet known


@dataclass(frozen=True)
class Registration:
    """One agent's phone as Asterisk sees it."""

    agent_id: str
    registered: bool  # at least one contact: a registration or a static contact
    reachable: bool  # at least one contact Asterisk has not found unreachable
    contacts: tuple[str, ...]  # contact URIs, sorted
    changed_at: float | None  # when any of the above last changed; None: never changed
    roundtrip_usec: int | None  # the fastest reachable contact's last qualify; None: unmeasured


@dataclass(frozen=True)
class RegistrationChanged:
    """``registered`` or ``reachable`` flipped for an agent."""

    agent_id: str
    registered: bool
    reachable: bool
    at: float


@dataclass(frozen=True)
class _Contact:
    reachable: bool
    roundtrip_usec: int | None


class RegistrationBook:
    """Registrations of every aor Asterisk reported, keyed by agent id (= aor name)."""

    def __init__(self, static_contacts: Mapping[str, str] | None = None) -> None:
        self._contacts: dict[str, dict[str, _Contact]] = {}
        self._static: dict[str, str] = dict(static_contacts or {})
        self._changed_at: dict[str, float] = {}

    # ------------------------------------------------------------------ queries

    def registration(self, agent_id: str) -> Registration:
        contacts = self._current(agent_id)
        measured = [c.roundtrip_usec for c in contacts.values()
                    if c.reachable and c.roundtrip_usec is not None]
        return Registration(
            agent_id=agent_id,
            registered=bool(contacts),
            reachable=any(c.reachable for c in contacts.values()),
            contacts=tuple(sorted(contacts)),
            changed_at=self._changed_at.get(agent_id),
            roundtrip_usec=min(measured) if measured else None,
        )

    def is_reachable(self, agent_id: str) -> bool:
        return any(c.reachable for c in self._current(agent_id).values())

    def registrations(self) -> dict[str, Registration]:
        """Every agent seen or given a static contact, by agent id."""
        agent_ids = sorted({*self._contacts, *self._static, *self._changed_at})
        return {agent_id: self.registration(agent_id) for agent_id in agent_ids}

    # ------------------------------------------------------------------ changes

    def on_event(self, event: object, now: float) -> list[RegistrationChanged]:
        """Feed one typed AMI event; other event types are ignored quickly."""
        if getattr(event, "name", "") != "ContactStatus":
            return []
        status: ContactStatus = event  # type: ignore[assignment]
        agent_id = status.aor or status.endpoint
        if not agent_id or not status.uri:
            return []
        at = status.timestamp or now
        before = self.registration(agent_id)
        contacts = self._contacts.setdefault(agent_id, {})
        contacts.pop(SNAPSHOT_CONTACT, None)  # the one contact of the aor, now by its URI
        if status.status == REMOVED:
            contacts.pop(status.uri, None)
        else:
            contacts[status.uri] = _contact(status.status, status.roundtrip_usec)
        if not contacts:
            del self._contacts[agent_id]
        return self._compare(before, at)

    def load_snapshot(
        self, entries: Iterable[ContactList], now: float
    ) -> list[RegistrationChanged]:
        """Replace every registration with a PJSIPShowContacts answer's ContactList entries
        (none: no phone is registered; Asterisk then answers "No Contacts found")."""
        fresh: dict[str, dict[str, _Contact]] = {}
        for entry in entries:
            agent_id = entry.aor or entry.endpoint
            if agent_id and entry.uri:
                fresh.setdefault(agent_id, {})[entry.uri] = _contact(
                    entry.status, entry.roundtrip_usec)
        # Unreachable static contacts stay so: the snapshot never lists them.
        for agent_id, uri in self._static.items():
            known = self._contacts.get(agent_id, {}).get(uri)
            if known is not None:
                fresh.setdefault(agent_id, {})[uri] = known
        return self._replace(fresh, now)

    def _replace(self, fresh: dict[str, dict[str, _Contact]],
                 now: float) -> list[RegistrationChanged]:
        affected = sorted({*self._contacts, *fresh})
        before = {agent_id: self.registration(agent_id) for agent_id in affected}
        self._contacts = fresh
        changes: list[RegistrationChanged] = []
        for agent_id in affected:
            changes += self._compare(before[agent_id], now)
        return changes

    def load_device_states(
        self, states: Iterable[DeviceStateChange], now: float
    ) -> list[RegistrationChanged]:
        """Replace every registration with a DeviceStateList answer's ``PJSIP/<agent>``
        entries; an agent whose endpoint is not listed has no contact (static ones aside)."""
        fresh: dict[str, dict[str, _Contact]] = {}
        for entry in states:
            technology, _, agent_id = entry.device.partition("/")
            if technology != "PJSIP" or not agent_id or agent_id in self._static:
                continue  # a static contact changes only by its own ContactStatus
            known = self._contacts.get(agent_id, {})
            if entry.state in UNREACHABLE_DEVICE_STATES:
                kept = {uri: c for uri, c in known.items() if not c.reachable}
            elif entry.state == "UNKNOWN":
                kept = dict(known)  # Asterisk does not know yet: neither do we
            else:
                kept = {uri: c for uri, c in known.items() if c.reachable} or {
                    SNAPSHOT_CONTACT: _Contact(reachable=True, roundtrip_usec=None)}
            if kept:
                fresh[agent_id] = kept
        # Unreachable static contacts stay so: only their own events change them.
        for agent_id, uri in self._static.items():
            static = self._contacts.get(agent_id, {}).get(uri)
            if static is not None:
                fresh.setdefault(agent_id, {})[uri] = static
        return self._replace(fresh, now)

    def set_static_contact(
        self, agent_id: str, uri: str | None, now: float
    ) -> list[RegistrationChanged]:
        """An agent's static contact was set (a URI), changed or removed (None)."""
        before = self.registration(agent_id)
        old = self._static.pop(agent_id, None)
        if old is not None and old != uri:
            self._contacts.get(agent_id, {}).pop(old, None)
        if uri:
            self._static[agent_id] = uri
        return self._compare(before, now)

    # ------------------------------------------------------------------ internals

    def _current(self, agent_id: str) -> dict[str, _Contact]:
        contacts = dict(self._contacts.get(agent_id, {}))
        static = self._static.get(agent_id)
        if static is not None and static not in contacts:
            # Never reported, or reported removed (a reload re-creates it): still there.
            contacts[static] = _Contact(reachable=True, roundtrip_usec=None)
        return contacts

    def _compare(self, before: Registration, at: float) -> list[RegistrationChanged]:
        after = self.registration(before.agent_id)
        # A new round trip from each qualify is no change of registration.
        if (after.registered, after.reachable, after.contacts) != (
            before.registered, before.reachable, before.contacts
        ):
            self._changed_at[before.agent_id] = at
        if (after.registered, after.reachable) == (before.registered, before.reachable):
            return []
        return [RegistrationChanged(before.agent_id, after.registered, after.reachable, at)]


def _contact(status: str, roundtrip_usec: int | None) -> _Contact:
    """Any status but Unreachable can be rung (NonQualified: never qualified, so unknown)."""
    return _Contact(
        reachable=status != UNREACHABLE,
        roundtrip_usec=roundtrip_usec if status == REACHABLE else None,
    )
