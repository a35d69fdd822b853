"""Agents' phones registering, refreshing, going unreachable and leaving, as AMI tells it."""

from __future__ import annotations

from callcenter.asterisk.events import ContactList, ContactStatus, DeviceStateChange, Hangup
from callcenter.core.registrations import Registration, RegistrationBook, RegistrationChanged

T0 = 1_795_917_484.0
PHONE = "sip:agent2@127.0.0.1:55015"
STATIC = "sip:agent1@127.0.0.1:5081"


def status(value: str, *, aor: str = "agent2", uri: str = PHONE,
           timestamp: float | None = None, roundtrip: int | None = 0) -> ContactStatus:
    return ContactStatus(timestamp=timestamp, aor=aor, uri=uri, status=value, endpoint=aor,
                         roundtrip_usec=roundtrip)


def listed(aor: str, uri: str, value: str = "NonQualified",
           roundtrip: int | None = None) -> ContactList:
    return ContactList(object_name=f"{aor};@0123abcd", endpoint=aor, uri=uri, status=value,
                       roundtrip_usec=roundtrip, expiration_time=int(T0) + 300,
                       user_agent="probe-phone")


def test_a_phone_that_registers_then_unregisters_flips_the_agent_twice() -> None:
    book = RegistrationBook()
    assert book.registration("agent2") == Registration(
        agent_id="agent2", registered=False, reachable=False, contacts=(), changed_at=None,
        roundtrip_usec=None)
    assert book.on_event(status("NonQualified", timestamp=T0), now=T0 + 0.5) == [
        RegistrationChanged("agent2", registered=True, reachable=True, at=T0)]
    assert book.registration("agent2") == Registration(
        agent_id="agent2", registered=True, reachable=True, contacts=(PHONE,), changed_at=T0,
        roundtrip_usec=None)
    assert book.is_reachable("agent2")
    assert book.on_event(status("Removed"), now=T0 + 8) == [
        RegistrationChanged("agent2", registered=False, reachable=False, at=T0 + 8)]
    assert book.registration("agent2").changed_at == T0 + 8
    assert not book.is_reachable("agent2")


def test_a_refreshed_registration_is_no_change() -> None:
    book = RegistrationBook()
    book.on_event(status("Created"), now=T0)
    assert book.on_event(status("Updated"), now=T0 + 60) == []
    assert book.on_event(status("NonQualified"), now=T0 + 120) == []
    assert book.registration("agent2").changed_at == T0


def test_a_phone_that_stops_answering_qualifies_is_registered_but_not_reachable() -> None:
    book = RegistrationBook()
    book.on_event(status("Reachable", roundtrip=1873), now=T0)
    assert book.registration("agent2").roundtrip_usec == 1873
    assert book.on_event(status("Unreachable", roundtrip=0), now=T0 + 30) == [
        RegistrationChanged("agent2", registered=True, reachable=False, at=T0 + 30)]
    unreachable = book.registration("agent2")
    assert (unreachable.registered, unreachable.reachable) == (True, False)
    assert unreachable.contacts == (PHONE,) and unreachable.roundtrip_usec is None
    assert book.on_event(status("Reachable", roundtrip=2400), now=T0 + 60) == [
        RegistrationChanged("agent2", registered=True, reachable=True, at=T0 + 60)]


def test_a_new_round_trip_alone_changes_nothing_but_the_figure() -> None:
    book = RegistrationBook()
    book.on_event(status("Reachable", roundtrip=1873), now=T0)
    assert book.on_event(status("Reachable", roundtrip=950), now=T0 + 60) == []
    registration = book.registration("agent2")
    assert (registration.roundtrip_usec, registration.changed_at) == (950, T0)


def test_a_phone_moving_to_a_new_address_stays_registered() -> None:
    book = RegistrationBook()
    moved = "sip:agent2@192.0.2.9:5062;ob"
    book.on_event(status("NonQualified"), now=T0)
    assert book.on_event(status("NonQualified", uri=moved), now=T0 + 1) == []
    assert book.on_event(status("Removed"), now=T0 + 1) == []
    assert book.registration("agent2").contacts == (moved,)
    assert book.registration("agent2").changed_at == T0 + 1


def test_a_snapshot_replaces_what_was_known_and_reports_the_differences() -> None:
    book = RegistrationBook()
    book.on_event(status("NonQualified", aor="agent2"), now=T0)
    book.on_event(status("NonQualified", aor="agent3", uri="sip:agent3@10.0.0.3:5060"), now=T0)
    # While the AMI was away, agent3 left and agent4 registered; agent2 is unchanged.
    changes = book.load_snapshot([listed("agent2", PHONE),
                                  listed("agent4", "sip:agent4@10.0.0.4:5060")], now=T0 + 100)
    assert changes == [
        RegistrationChanged("agent3", registered=False, reachable=False, at=T0 + 100),
        RegistrationChanged("agent4", registered=True, reachable=True, at=T0 + 100),
    ]
    assert book.registration("agent2").changed_at == T0
    assert set(book.registrations()) == {"agent2", "agent3", "agent4"}
    assert [r.registered for r in book.registrations().values()] == [True, False, True]


def test_an_empty_snapshot_means_no_phone_is_registered() -> None:
    book = RegistrationBook()
    book.on_event(status("NonQualified"), now=T0)
    assert book.load_snapshot([], now=T0 + 5) == [
        RegistrationChanged("agent2", registered=False, reachable=False, at=T0 + 5)]
    assert book.load_snapshot([], now=T0 + 6) == []


def test_a_snapshot_keeps_an_unreachable_contact_unreachable() -> None:
    book = RegistrationBook()
    assert book.load_snapshot([listed("agent2", PHONE, "Unreachable")], now=T0) == [
        RegistrationChanged("agent2", registered=True, reachable=False, at=T0)]
    assert book.load_snapshot([listed("agent2", PHONE, "Reachable", 700)], now=T0 + 1) == [
        RegistrationChanged("agent2", registered=True, reachable=True, at=T0 + 1)]
    assert book.registration("agent2").roundtrip_usec == 700


def test_a_static_contact_is_registered_without_any_event_and_survives_snapshots() -> None:
    book = RegistrationBook(static_contacts={"agent1": STATIC})
    assert book.registration("agent1") == Registration(
        agent_id="agent1", registered=True, reachable=True, contacts=(STATIC,),
        changed_at=None, roundtrip_usec=None)
    assert book.load_snapshot([], now=T0) == []
    # A reload removes and re-creates permanent contacts: it stays registered meanwhile.
    assert book.on_event(status("Removed", aor="agent1", uri=STATIC), now=T0 + 1) == []
    assert book.is_reachable("agent1")
    assert book.on_event(status("Unreachable", aor="agent1", uri=STATIC), now=T0 + 2) == [
        RegistrationChanged("agent1", registered=True, reachable=False, at=T0 + 2)]
    assert book.load_snapshot([], now=T0 + 3) == []  # the snapshot never lists it
    assert not book.is_reachable("agent1")
    assert "agent1" in book.registrations()


def test_a_static_contact_can_be_changed_or_dropped() -> None:
    book = RegistrationBook(static_contacts={"agent1": STATIC})
    book.on_event(status("Unreachable", aor="agent1", uri=STATIC), now=T0)
    other = "sip:agent1@127.0.0.1:5099"
    assert book.set_static_contact("agent1", other, now=T0 + 1) == [
        RegistrationChanged("agent1", registered=True, reachable=True, at=T0 + 1)]
    assert book.registration("agent1").contacts == (other,)
    assert book.set_static_contact("agent1", None, now=T0 + 2) == [
        RegistrationChanged("agent1", registered=False, reachable=False, at=T0 + 2)]
    assert book.set_static_contact("agent5", STATIC, now=T0 + 3) == [
        RegistrationChanged("agent5", registered=True, reachable=True, at=T0 + 3)]


def test_other_events_and_contacts_without_a_name_are_ignored() -> None:
    book = RegistrationBook()
    hangup = Hangup(uniqueid="1.1", linkedid="1.1", channel="PJSIP/agent2-00000001",
                    cause=16, cause_text="Normal Clearing")
    assert book.on_event(hangup, now=T0) == []
    assert book.on_event(status("NonQualified", aor=""), now=T0) == []
    assert book.on_event(status("NonQualified", uri=""), now=T0) == []
    nameless = ContactStatus(aor="", uri=PHONE, status="NonQualified", endpoint="agent2",
                             roundtrip_usec=None)
    assert book.on_event(nameless, now=T0) == [  # the endpoint names it when the aor does not
        RegistrationChanged("agent2", registered=True, reachable=True, at=T0)]
    assert set(book.registrations()) == {"agent2"}


# The snapshot after each AMI connect is a DeviceStateList answer: PJSIPShowContacts needs
# the `system` right, which the service's AMI user does not have.

def device(agent_id: str, state: str) -> DeviceStateChange:
    return DeviceStateChange(device=f"PJSIP/{agent_id}", state=state)


def test_a_device_state_snapshot_tells_which_phones_can_be_rung() -> None:
    book = RegistrationBook()
    changes = book.load_device_states([device("agent2", "NOT_INUSE"),
                                       device("agent3", "UNAVAILABLE"),
                                       DeviceStateChange(device="Queue:sales", state="INUSE")],
                                      now=T0)
    assert changes == [RegistrationChanged("agent2", registered=True, reachable=True, at=T0)]
    assert book.is_reachable("agent2") and not book.is_reachable("agent3")
    # An agent on a call is still reachable; a phone gone since is not (nor listed at all).
    assert book.load_device_states([device("agent2", "INUSE")], now=T0 + 1) == []
    assert book.load_device_states([], now=T0 + 2) == [
        RegistrationChanged("agent2", registered=False, reachable=False, at=T0 + 2)]


def test_the_next_contact_status_replaces_the_snapshots_stand_in() -> None:
    book = RegistrationBook()
    book.load_device_states([device("agent2", "NOT_INUSE")], now=T0)
    # The phone unregisters: its only contact (max_contacts = 1) is gone, whatever its URI.
    assert book.on_event(status("Removed"), now=T0 + 5) == [
        RegistrationChanged("agent2", registered=False, reachable=False, at=T0 + 5)]
    book.load_device_states([device("agent2", "NOT_INUSE")], now=T0 + 6)
    assert book.on_event(status("NonQualified"), now=T0 + 7) == []
    assert book.registration("agent2").contacts == (PHONE,)


def test_a_device_snapshot_keeps_what_events_said_of_a_contact() -> None:
    book = RegistrationBook(static_contacts={"agent1": STATIC})
    book.on_event(status("Unreachable"), now=T0)  # registered, but does not answer qualifies
    book.on_event(status("Unreachable", aor="agent1", uri=STATIC), now=T0)
    assert book.load_device_states([device("agent2", "UNAVAILABLE"),
                                    device("agent1", "NOT_INUSE")], now=T0 + 1) == []
    assert book.registration("agent2").registered and not book.is_reachable("agent2")
    # A static contact changes only by its own events: the device state is not its word.
    assert not book.is_reachable("agent1")
    # UNKNOWN: Asterisk does not know yet, so what was known stays.
    assert book.load_device_states([device("agent2", "UNKNOWN")], now=T0 + 2) == []
    assert book.registration("agent2").contacts == (PHONE,)
