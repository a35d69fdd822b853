"""Asterisk configuration generated from the callcenter settings: pure functions.

Each generator takes the ``Settings`` and returns the text of one Asterisk file; ``sandbox_files``
and ``include_files`` collect them as ``{file name: text}``. Nothing here touches the disk
except ``write_generated``.

Agents come from the settings' ``[[agents]]`` (the demo seed) or, when the generators are
given them, from the database (``store.agents.AgentAccount``): ``pjsip_agent_endpoints``,
``queues(settings, agents)`` and the file sets' ``agents`` argument. Both go through the same
code, so the same agent gives the same sections either way. Only active database agents get
an endpoint and queue memberships; a database agent's tier k in a queue is member penalty k.

Two sets of files:

- ``sandbox_files(settings)``: everything the sandboxed Asterisk needs besides the static
  files in ``asterisk-conf/`` (which ``#include`` these by name).
- ``include_files(settings)``: only what an Asterisk run by someone else
  (``asterisk.mode = "external"``) needs from us, to be ``#include``d by its admin:

  - ``callcenter-pjsip-agents.conf`` in ``pjsip.conf`` (one endpoint, auth and aor per agent;
    the admin's own trunk sends inbound calls to context ``callers``; and, when
    ``outbound.trunk_host`` is set, the outbound trunk ``callcenter-trunk``),
  - ``callcenter-extensions.conf`` in ``extensions.conf`` (contexts ``callers``,
    ``callcenter-fallback`` and ``agents``; with a trunk, ``callcenter-outbound``),
  - ``callcenter-queues.conf`` in ``queues.conf`` (the fallback queues),
  - ``callcenter-confbridge.conf`` in ``confbridge.conf`` (nailed-up agents' bridges),
  - ``callcenter-manager-user.conf`` in ``manager.conf`` (the AMI user, least rights),
  - ``callcenter-cel.conf`` inside ``cel.conf``'s ``[general]`` and
    ``callcenter-cel-sqlite3.conf`` in ``cel_sqlite3_custom.conf``: Asterisk's own log of
    every call, which the service imports the calls it missed from (docs/records.md).

  ``write_generated(settings, out_dir)`` writes them, e.g. into ``/etc/asterisk``, after which
  the admin adds ``#include "callcenter-….conf"`` lines and reloads Asterisk.

Every value written is checked again here (config.py validates settings, but a value that
reaches an Asterisk file must never carry a line break, ``;`` or a section bracket, which would
let it add configuration of its own). A bad value raises ``ValueError`` naming the setting.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from callcenter.asterisk.cel_reader import cel_general_options, cel_sqlite_mapping
from callcenter.asterisk.events import OUTSIDE_LEG_EVENT
from callcenter.config import (
    E164_RE,
    PREFIX_RE,
    AgentSettings,
    QueueSettings,
    Settings,
    extension_pattern_regex,
    split_host_port,
)
from callcenter.core.caller_id import NAME_MAX, NUMBER_MAX
from callcenter.features.agents.dialplan import confbridge_profiles, feature_code_lines
from callcenter.features.callbacks.dialplan import callback_contexts
from callcenter.features.campaigns.dialplan import campaign_contexts, disposition_code_lines
from callcenter.features.supervision.dialplan import supervision_contexts
from callcenter.private_files import write_private

if TYPE_CHECKING:  # only data crosses over: the store imports this module, not the reverse
    from callcenter.features.agents.store import AgentAccount

# Least rights for the callcenter AMI user (docs/security-privilege.md). Write classes each
# action needs, read from `manager show command` on Asterisk 22: Ping and QueueStatus none,
# CoreShowChannels system|reporting, DeviceStateList call|reporting, Redirect/Setvar/Atxfer
# call, Hangup system|call, QueuePause/QueueAdd agent, Originate originate. No `system`: it
# would let Originate run System(), Exec() or a local AGI program (Asterisk allows those
# applications only to a user with `system`); Reload (system|config) is done through the
# sandbox's console instead, and `config` is no better: UpdateConfig plus a reload writes a
# dialplan that runs anything. PJSIPShowContacts needs `system` too: the phones' state at
# connect comes from DeviceStateList. Read classes are the events we follow: system
# (FullyBooted, Reload, Shutdown, ContactStatus), call (channels, bridges, dials, device
# states, transfers), dtmf (keys pressed in a queue); not agent, user or reporting, whose
# events (queue members, RTCP reports...) nothing reads. An action's own answer comes
# whatever the read classes; reading grants no action.
AMI_READ_CLASSES = ("system", "call", "dtmf", "user")  # user: the outbound context's UserEvent
AMI_WRITE_CLASSES = ("call", "agent", "originate", "reporting")

FALLBACK_QUEUE = "operator"
FALLBACK_CONTEXT = "callcenter-fallback"
# app_queue member states that make a fallback queue count as empty.
EMPTY_WHEN = "paused,invalid,unavailable"
CALLERS_CONTEXT = "callers"
AGENTS_CONTEXT = "agents"
DEMO_TRUNK_ENDPOINT = "anonymous"  # res_pjsip matches unidentified callers to this name
TRANSPORT_NAME = "callcenter-udp"
TRUNK_ENDPOINT = "callcenter-trunk"  # the outbound trunk's endpoint, aor and identify
OUTBOUND_CONTEXT = "callcenter-outbound"  # transfers dial Local/<number>@ this context
# Set (inherited, "__") on a caller's channel by the IVR before it dials a transfer out: the
# outbound context then reports the leg when it ends. A callback's dialling does not set it.
TRANSFER_OUT_VARIABLE = "CALLCENTER_TRANSFER_OUT"
DIALLED_VARIABLE = "CALLCENTER_DIALLED"  # the number the outbound context dials
RESERVED_NAMES = (DEMO_TRUNK_ENDPOINT, TRANSPORT_NAME, TRUNK_ENDPOINT)
CODECS = "ulaw,alaw"
# The digest realm of every agent's auth section. A stored digest is MD5(user:realm:password),
# so the realm must never change: a new realm would invalidate every stored digest.
SIP_REALM = "callcenter"
_MD5_HEX = re.compile(r"[0-9a-f]{32}")

_FORBIDDEN = {"\r": "a line break", "\n": "a line break", "\0": "a NUL byte",
              ";": "';'", "[": "'['", "]": "']'"}


def checked(setting: str, value: object) -> str:
    """The value as text, or ValueError if it could break out of its line or section."""
    text = str(value)
    for char, what in _FORBIDDEN.items():
        if char in text:
            raise ValueError(f"{setting}: {text!r} contains {what}, not allowed in Asterisk files")
    if text != text.strip():
        raise ValueError(f"{setting}: {text!r} has leading or trailing spaces")
    return text


def _required(setting: str, value: object) -> str:
    text = checked(setting, value)
    if not text:
        raise ValueError(f"{setting}: must not be empty")
    return text


def _section(name: str, options: list[tuple[str, str]], *, comment: str = "") -> str:
    lines = [f"; {comment}"] if comment else []
    lines.append(f"[{name}]")
    lines.extend(f"{key} = {value}" for key, value in options)
    return "\n".join(lines) + "\n"


def _file(title: str, sections: list[str]) -> str:
    header = (f"; {title}\n"
              "; Generated by callcenter from its settings: edit the settings, not this file.\n")
    return "\n".join([header, *sections])


def _queue_where(settings: Settings, queue: QueueSettings) -> str:
    return f"queues[{settings.queues.index(queue)}]"


def sip_digest(username: str, password: str) -> str:
    """What PJSIP needs to check an agent's phone instead of its password: the digest
    credential MD5("username:realm:password") in hex (RFC 2617's HA1)."""
    return hashlib.md5(f"{username}:{SIP_REALM}:{password}".encode(),
                       usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class _Agent:
    """One agent as the generators need it, from the settings or from the database."""

    where: str  # how errors name it: "agents[0]" (settings) or "agent 'alice'" (database)
    id: str
    name: str
    digest: str  # sip_digest(id, password); "" when the settings give no password
    contact: str  # "": the phone registers
    penalties: Mapping[str, int]  # queue -> member penalty
    member: bool  # a static member of its queues: settings' logged_in; database: active


def _settings_agents(settings: Settings) -> list[_Agent]:
    return [_from_settings(f"agents[{index}]", agent)
            for index, agent in enumerate(settings.agents)]


def _from_settings(where: str, agent: AgentSettings) -> _Agent:
    digest = sip_digest(agent.id, checked(f"{where}.password", agent.password)) \
        if agent.password else ""
    return _Agent(where=where, id=agent.id, name=agent.name, digest=digest,
                  contact=agent.contact, penalties=dict.fromkeys(agent.queues, 0),
                  member=agent.logged_in)


def _database_agents(agents: Sequence[AgentAccount]) -> list[_Agent]:
    return [
        _Agent(where=f"agent {agent.id!r}", id=agent.id, name=agent.name,
               digest=agent.sip_digest, contact=agent.contact or "",
               penalties=agent.queues, member=True)
        for agent in agents if agent.active
    ]


def _agents(settings: Settings, agents: Sequence[AgentAccount] | None) -> list[_Agent]:
    """The database's agents when given, else the settings' ones."""
    return _settings_agents(settings) if agents is None else _database_agents(agents)


# --------------------------------------------------------------------------- manager


def _ip_setting(setting: str, value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    text = _required(setting, value)
    if text == "localhost":
        return ipaddress.IPv4Address("127.0.0.1")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{setting}: {text!r} is not an IP address") from None


def manager_general(settings: Settings) -> str:
    """[general] of manager.conf: AMI on asterisk.host:ami_port only."""
    address = _ip_setting("asterisk.host", settings.asterisk.host)
    port = _required("asterisk.ami_port", settings.asterisk.ami_port)
    return _file("AMI: where it listens.", [_section("general", [
        ("enabled", "yes"),
        ("webenabled", "no"),
        ("bindaddr", str(address)),
        ("port", port),
        ("timestampevents", "yes"),
        ("displayconnects", "no"),
        ("authlimit", "5"),
        ("authtimeout", "10"),
    ])])


def manager_user(settings: Settings) -> str:
    """The callcenter AMI user: its secret, where it may connect from, least rights."""
    asterisk = settings.asterisk
    username = _required("asterisk.ami_username", asterisk.ami_username)
    secret = _required("asterisk.ami_secret", asterisk.ami_secret)
    address = _ip_setting("asterisk.host", asterisk.host)
    options = [("secret", secret), ("deny", "0.0.0.0/0.0.0.0"),
               ("permit", "127.0.0.1/255.255.255.255")]
    if address.version == 6:
        options += [("deny", "::/0"), ("permit", "::1/128")]
        if address.is_private and not address.is_loopback and not address.is_unspecified:
            options.append(("permit", f"{address}/128"))
    elif address.is_private and not address.is_loopback and not address.is_unspecified:
        options.append(("permit", f"{address}/255.255.255.255"))
    options += [
        ("read", ",".join(AMI_READ_CLASSES)),
        ("write", ",".join(AMI_WRITE_CLASSES)),
        ("writetimeout", "5000"),
    ]
    return _file("AMI: the callcenter service's user.", [_section(username, options)])


# --------------------------------------------------------------------------- pjsip


def _media_options() -> list[tuple[str, str]]:
    return [
        ("disallow", "all"),
        ("allow", CODECS),
        ("dtmf_mode", "rfc4733"),
        ("direct_media", "no"),
        ("rtp_symmetric", "yes"),
        ("force_rport", "yes"),
        ("rewrite_contact", "yes"),
    ]


def pjsip_transport(settings: Settings) -> str:
    """The UDP transport and the demo inbound trunk (unauthenticated callers reach the IVR)."""
    host = _ip_setting("asterisk.sip_host", settings.asterisk.sip_host)
    port = _required("asterisk.sip_port", settings.asterisk.sip_port)
    bind = f"[{host}]:{port}" if host.version == 6 else f"{host}:{port}"
    transport = _section(TRANSPORT_NAME, [
        ("type", "transport"), ("protocol", "udp"), ("bind", bind),
    ])
    trunk = _section(DEMO_TRUNK_ENDPOINT, [
        ("type", "endpoint"),
        ("transport", TRANSPORT_NAME),
        ("context", CALLERS_CONTEXT),
        *_media_options(),
        # Connected-line updates would re-INVITE the caller mid-call for no benefit.
        ("send_connected_line", "no"),
        ("allow_transfer", "no"),
    ], comment="The demo inbound trunk: any caller that is not an agent reaches the IVR.")
    return _file("PJSIP: transport and demo trunk.", [transport, trunk])


def _agent_sections(agent: _Agent) -> list[str]:
    where = agent.where
    agent_id = _required(f"{where}.id", agent.id)
    if agent_id in RESERVED_NAMES:
        raise ValueError(f"{where}.id: {agent_id!r} is reserved")
    name = _required(f"{where}.name", agent.name)
    if '"' in name or "<" in name or ">" in name:
        raise ValueError(f"{where}.name: {name!r} must not contain quotes or angle brackets")
    if not agent.digest:
        raise ValueError(f"{where}.password: must not be empty")
    if not _MD5_HEX.fullmatch(agent.digest):
        raise ValueError(f"{where}.sip_digest: not an MD5 digest (32 lowercase hex digits)")
    endpoint = _section(agent_id, [
        ("type", "endpoint"),
        ("transport", TRANSPORT_NAME),
        ("context", AGENTS_CONTEXT),
        *_media_options(),
        ("auth", f"{agent_id}-auth"),
        ("aors", agent_id),
        ("callerid", f'"{name}" <{agent_id}>'),
        ("allow_transfer", "no"),
    ], comment=f"Agent {agent_id} ({name}).")
    # Only the digest reaches Asterisk's files, never the password; the realm is fixed here
    # because the digest was computed with it (see SIP_REALM).
    auth = _section(f"{agent_id}-auth", [
        ("type", "auth"), ("auth_type", "digest"), ("realm", SIP_REALM),
        ("username", agent_id), ("password_digest", f"MD5:{agent.digest}"),
    ])
    aor_options = [("type", "aor"), ("max_contacts", "1"), ("remove_existing", "yes")]
    if agent.contact:
        aor_options.append(("contact", checked(f"{where}.contact", agent.contact)))
    return [endpoint, auth, _section(agent_id, aor_options)]


def pjsip_agents(settings: Settings) -> str:
    """One endpoint (context ``agents``), auth and aor per settings agent; then the outbound
    trunk."""
    return _pjsip_agents_file(settings, _settings_agents(settings))


def pjsip_agent_endpoints(settings: Settings, agents: Sequence[AgentAccount]) -> str:
    """As ``pjsip_agents``, for the database's agents (active ones only)."""
    return _pjsip_agents_file(settings, _database_agents(agents))


def _pjsip_agents_file(settings: Settings, agents: Sequence[_Agent]) -> str:
    sections = [section for agent in agents for section in _agent_sections(agent)]
    sections += _trunk_sections(settings)
    return _file("PJSIP: one endpoint per agent, and the outbound trunk if any.", sections)


def _host_port(setting: str, value: str) -> tuple[str, str]:
    """(host as written in a SIP URI or a match, ":port" or ""), both rebuilt from checked
    parts so that nothing but an address, a host name and a port reaches the file."""
    try:
        host, port = split_host_port(value)
    except ValueError as exc:
        raise ValueError(f"{setting}: {exc}") from None
    checked(setting, host)
    written = f"[{ipaddress.IPv6Address(host)}]" if ":" in host else host
    return written, (f":{port}" if port is not None else "")


def _trunk_match(setting: str, value: str) -> str:
    """One identify ``match``: an address or network, or a host name, with an optional port
    (an IPv6 address in brackets only when a port follows it)."""
    address, slash, prefix = value.partition("/")
    host, port = _host_port(setting, address)
    bare = host.strip("[]")
    mask = ""
    if slash:
        try:
            network = ipaddress.ip_network(f"{bare}/{prefix}", strict=False)
        except ValueError:
            raise ValueError(f"{setting}: {value!r} is not an address/prefix network") from None
        bare, mask = str(network.network_address), f"/{network.prefixlen}"
    written = f"[{bare}]" if port and ":" in bare else bare
    return f"{written}{port}{mask}"


def _trunk_sections(settings: Settings) -> list[str]:
    """The carrier or PBX that transfers go out through, when ``outbound.trunk_host`` is set.

    Calls coming from it (identified by ``trunk_match``, else by ``trunk_host``) reach the
    IVR like any caller; calls to it authenticate with the optional digest credentials.
    """
    outbound = settings.outbound
    if not outbound.trunk_host:
        return []
    host, port = _host_port("outbound.trunk_host", outbound.trunk_host)
    endpoint_options = [
        ("type", "endpoint"),
        ("transport", TRANSPORT_NAME),
        ("context", CALLERS_CONTEXT),
        *_media_options(),
        ("aors", TRUNK_ENDPOINT),
        ("send_connected_line", "no"),
        ("allow_transfer", "no"),
    ]
    if outbound.trunk_username:
        endpoint_options.append(("outbound_auth", f"{TRUNK_ENDPOINT}-auth"))
    comment = f"The outbound trunk: transfers leave through {host}{port}."
    sections = [_section(TRUNK_ENDPOINT, endpoint_options, comment=comment)]
    if outbound.trunk_username:
        sections.append(_section(f"{TRUNK_ENDPOINT}-auth", [
            ("type", "auth"), ("auth_type", "userpass"),
            ("username", _required("outbound.trunk_username", outbound.trunk_username)),
            ("password", _required("outbound.trunk_password", outbound.trunk_password)),
        ]))
    sections.append(_section(TRUNK_ENDPOINT, [("type", "aor"), ("contact", f"sip:{host}{port}")]))
    if outbound.trunk_match:
        matches = [_trunk_match(f"outbound.trunk_match[{i}]", value)
                   for i, value in enumerate(outbound.trunk_match)]
    else:  # the trunk's address, any port
        matches = [host.strip("[]")]
    sections.append(_section(TRUNK_ENDPOINT, [
        ("type", "identify"), ("endpoint", TRUNK_ENDPOINT),
        *(("match", match) for match in matches),
    ]))
    return sections


# --------------------------------------------------------------------------- dialplan


def _ivr_number(settings: Settings) -> str:
    number = _required("ivr.number", settings.ivr.number)
    if number.startswith("_") or "," in number:
        raise ValueError(f"ivr.number: {number!r} is not a plain extension")
    return number


def fallback_queue(settings: Settings) -> QueueSettings | None:
    """The queue the fallback dialplan uses: ``operator``, else the first queue, else none."""
    return settings.queue(FALLBACK_QUEUE) or (settings.queues[0] if settings.queues else None)


# What a caller's number may keep: digits, letters (``anonymous``), + * # . - and nothing
# else, at most 40 of them. A name keeps every byte from space up (UTF-8 included) but no
# control byte, at most 80 bytes. FILTER takes ``\\xHH`` escapes in its allowed list.
CALLER_NUMBER_ALLOWED = "0-9A-Za-z+*#.\\-"
CALLER_NAME_ALLOWED = "\\x20-\\x7e\\x80-\\xff"
CALLER_NUMBER_MAX = NUMBER_MAX  # the same bounds the service applies (core/caller_id.py)
CALLER_NAME_MAX = NAME_MAX
CALLER_ID_RAW_VARIABLE = "CALLCENTER_CALLERID_RAW"


def clean_caller_id_lines(first: str) -> list[str]:
    """Dialplan that cleans a caller's ID before anything reads it (``first`` begins the
    first line, e.g. ``exten => 100,1,``).

    Asterisk decodes the SIP From user part (``%0d%0a`` becomes CR LF) and copies the number
    unescaped into AGI environments and AMI events, where a line break splits one message in
    two. So before Answer(), the AGI or any other event of the call: the raw ID is kept
    URI-encoded in CALLCENTER_CALLERID_RAW as ``<name> <<number>>`` (no space or angle
    bracket survives URIENCODE, so the two parts stay apart; Set() would drop quotes), then
    the number, the name and the redirecting number (a Diversion header: AGI's agi_rdnis)
    are filtered. Every ``${CALLERID(...)}`` here sits inside URIENCODE, FILTER or LEN, so
    no application's arguments (shown in Newexten events) ever hold the raw bytes either.
    """
    # The length is cut in a second step, on the clean value: a raw ")" or "(" would throw
    # out the parentheses count Asterisk uses to find ``:offset:length`` after a function.
    number = f"${{FILTER({CALLER_NUMBER_ALLOWED},${{CALLERID(num)}})}}"
    name = f"${{FILTER({CALLER_NAME_ALLOWED},${{CALLERID(name)}})}}"
    diverted = f"${{FILTER({CALLER_NUMBER_ALLOWED},${{REDIRECTING(from-num)}})}}"
    return [
        f"{first}Set({CALLER_ID_RAW_VARIABLE}="
        "${URIENCODE(${CALLERID(name)})} <${URIENCODE(${CALLERID(num)})}>)",
        f" same => n,Set(CALLERID(num)={number})",
        f" same => n,Set(CALLERID(num)=${{CALLERID(num):0:{CALLER_NUMBER_MAX}}})",
        f" same => n,Set(CALLERID(name)={name})",
        f" same => n,Set(CALLERID(name)=${{CALLERID(name):0:{CALLER_NAME_MAX}}})",
        f" same => n,ExecIf($[${{LEN(${{REDIRECTING(from-num)}})}} > 0]"
        f"?Set(REDIRECTING(from-num,i)={diverted}))",
    ]


def agi_url(settings: Settings) -> str:
    """``agi://host:port/<secret>``: every AGI() of the dialplan appends ``/<script>``.

    The FastAGI server serves only sessions whose path starts with the secret
    (``service.agi_secret``), so a stranger who reaches its port cannot forge a call.
    """
    agi_host = _ip_setting("asterisk.agi_host_for_asterisk", settings.agi_host_for_asterisk)
    agi_port = _required("service.agi_port", settings.service.agi_port)
    agi_host_text = f"[{agi_host}]" if agi_host.version == 6 else str(agi_host)
    secret = checked("service.agi_secret", settings.service.agi_secret)
    return f"agi://{agi_host_text}:{agi_port}" + (f"/{secret}" if secret else "")


def extensions(settings: Settings) -> str:
    """Contexts ``callers`` (the IVR over FastAGI), ``callcenter-fallback`` and ``agents``."""
    number = _ivr_number(settings)
    agi = agi_url(settings)
    callers = "\n".join([
        "; Callers dialling the IVR number. If the FastAGI service cannot be reached (AGISTATUS",
        "; FAILURE) or has no IVR (NOTFOUND), the caller is not lost: the fallback queues them.",
        f"[{CALLERS_CONTEXT}]",
        *clean_caller_id_lines(f"exten => {number},1,"),
        " same => n,Answer()",
        # The raw caller ID, URI-encoded, is the IVR's first argument: it goes on the record.
        f" same => n,AGI({agi}/ivr,${{{CALLER_ID_RAW_VARIABLE}}})",
        # The service hangs up every call it finishes: a channel still up after AGI() means
        # the service failed, refused or died (AGISTATUS SUCCESS after a killed process).
        f" same => n,Goto({FALLBACK_CONTEXT},s,1)",
        "",
    ])
    agents = "\n".join([
        "; Agents' phones: feature codes, the IVR (to test it) and nothing else.",
        f"[{AGENTS_CONTEXT}]",
        *feature_code_lines(agi,
                            [checked(f"acd.pause_reasons[{i}]", r)
                             for i, r in enumerate(settings.acd.pause_reasons)]),
        *disposition_code_lines(agi),
        f"exten => {number},1,Goto({CALLERS_CONTEXT},{number},1)",
        "exten => _X.,1,Hangup()",
        "",
    ])
    return _file("Dialplan.", [callers, _fallback_context(settings), agents,
                               *callback_contexts(agi,
                                                  settings.outbound.has_trunk),
                               *campaign_contexts(agi, settings.outbound.has_trunk),
                               *supervision_contexts(agi,
                                                     FALLBACK_CONTEXT),
                               *_outbound_contexts(settings)])


def _fallback_context(settings: Settings) -> str:
    """Plain Asterisk routing while the service is down.

    A caller the service had queued (``CALLCENTER_QUEUE``) goes on waiting in Asterisk's queue
    of the same name; anyone else goes to the fallback queue. A caller who already talked to
    an agent (``CALLCENTER_STAGE``: talking, talked, or ringing with DIALSTATUS ANSWER: the
    agent hung up after the service died) is hung up, not queued again.
    """
    lines = [
        "; Plain Asterisk routing while the callcenter service is down.",
        f"[{FALLBACK_CONTEXT}]",
        'exten => s,1,GotoIf($["${CALLCENTER_STAGE}" = "talking"]?done)',
        ' same => n,GotoIf($["${CALLCENTER_STAGE}" = "talked"]?done)',
        ' same => n,GotoIf($["${CALLCENTER_STAGE}${DIALSTATUS}" = "ringingANSWER"]?done)',
        " same => n,Playback(callcenter/sorry-fallback)",
    ]
    default = fallback_queue(settings)
    if default is not None:
        lines.append(' same => n,GotoIf($[${DIALPLAN_EXISTS(callcenter-fallback,'
                     'q-${CALLCENTER_QUEUE},1)}]?q-${CALLCENTER_QUEUE},1)')
        lines.append(f" same => n,Goto(q-{default.name},1)")
    lines += [" same => n(done),Hangup()"]
    for queue in settings.queues:
        where = _queue_where(settings, queue)
        name = _required(f"{where}.name", queue.name)
        max_wait = _required(f"{where}.max_wait", queue.max_wait)
        lines += [f"exten => q-{name},1,Set(CALLCENTER_STAGE=fallback)",
                  " same => n,Set(CALLCENTER_HOPS=$[0${CALLCENTER_HOPS} + 1])",
                  f" same => n,Queue({name},,,,{max_wait})",
                  *_fallback_overflow(queue, default, hops=len(settings.queues)),
                  " same => n(sorry),Playback(callcenter/sorry-no-agent)",
                  " same => n,Hangup()"]
    return "\n".join([*lines, ""])


def _fallback_overflow(queue: QueueSettings, default: QueueSettings | None, *,
                       hops: int) -> list[str]:
    """Where ``Queue()`` sends a caller it gave up on: past max_wait or max_length, to the
    queue's overflow_to (as the service does); with nobody at work in the queue (JOINEMPTY,
    LEAVEEMPTY: its members are paused, logged out or unreachable, and nobody can log in
    while the service is down), to overflow_to or else the fallback queue. The hop count
    stops a caller going round queues that all are empty."""
    lines = [f' same => n,GotoIf($[${{CALLCENTER_HOPS}} > {hops}]?sorry)']
    if queue.overflow_to:
        lines.append(' same => n,GotoIf($["${QUEUESTATUS}" = "TIMEOUT" | "${QUEUESTATUS}" = '
                     f'"FULL"]?q-{queue.overflow_to},1)')
    empty_to = queue.overflow_to or (default.name if default and default.name != queue.name
                                     else "")
    if empty_to:
        lines.append(' same => n,GotoIf($["${QUEUESTATUS}" = "JOINEMPTY" | "${QUEUESTATUS}" = '
                     f'"LEAVEEMPTY"]?q-{empty_to},1)')
    return lines


def confbridge_profiles_file(settings: Settings) -> str:
    """Bridge and user profiles of nailed-up agents' conferences (no settings involved)."""
    return _file("ConfBridge profiles for nailed-up agents.", [confbridge_profiles()])


def _outbound_patterns(settings: Settings) -> list[tuple[str, bool]]:
    """(dialplan pattern, is an outside number) for every destination the settings allow."""
    outbound = settings.outbound
    patterns = []
    for i, pattern in enumerate(outbound.extension_patterns):
        setting = f"outbound.extension_patterns[{i}]"
        try:  # digits, X, Z, N, [classes] and a final '.': nothing else gets through
            extension_pattern_regex(pattern)
        except ValueError as exc:
            raise ValueError(f"{setting}: {exc}") from None
        patterns.append(("_" + pattern.removeprefix("_").upper(), False))
    for i, prefix in enumerate(outbound.allowed_prefixes):
        setting = f"outbound.allowed_prefixes[{i}]"
        if not PREFIX_RE.fullmatch(_required(setting, prefix)):
            raise ValueError(f"{setting}: {prefix!r} is not '+' and digits")
        # '!': zero or more further characters, so a prefix may also be a whole number.
        patterns.append((f"_{prefix}!", True))
    return list(dict.fromkeys(patterns))  # a rule written twice: one extension, not an error


def _outbound_contexts(settings: Settings) -> list[str]:
    """Context ``callcenter-outbound``: transfers out of the IVR, only with a trunk.

    The service dials ``Local/<number>@callcenter-outbound`` after checking the number
    against the settings; the same rules are the only extensions here, so a number the
    settings do not allow has nowhere to go in Asterisk either. No endpoint's context
    includes this one: neither callers nor agents can dial out through it.
    """
    outbound = settings.outbound
    if not outbound.trunk_host:
        return []
    caller_id = outbound.caller_id
    if caller_id and not E164_RE.fullmatch(checked("outbound.caller_id", caller_id)):
        raise ValueError(f"outbound.caller_id: {caller_id!r} is not an E.164 number")
    timeout = _required("outbound.dial_timeout", outbound.dial_timeout)
    lines = [
        f"; Transfers out of the IVR: callcenter dials Local/<number>@{OUTBOUND_CONTEXT}.",
        "; Only the extensions and outside numbers the settings allow exist here. Hangup()",
        "; keeps the cause Dial() set, so the transfer's own Dial() sees the same DIALSTATUS.",
        "; When the leg ends (either side hangs up), h tells the service how Dial() timed it",
        f"; (UserEvent {OUTSIDE_LEG_EVENT}) if the IVR placed it ({TRANSFER_OUT_VARIABLE}",
        "; inherited from the caller's channel): the trunk leg it costs is priced from that.",
        f"[{OUTBOUND_CONTEXT}]",
    ]
    # FILTER: whatever matched the pattern, only '+' and digits reach the dial string.
    number = "${FILTER(+0-9,${EXTEN})}"
    dial = f"Dial(PJSIP/${{{DIALLED_VARIABLE}}}@{TRUNK_ENDPOINT},{timeout})"
    patterns = _outbound_patterns(settings)
    for pattern, outside in patterns:
        lines.append(f"exten => {pattern},1,Set({DIALLED_VARIABLE}={number})")
        if outside and caller_id:  # our number, and no name: the caller's stays private
            lines.append(f" same => n,Set(CALLERID(all)=<{caller_id}>)")
        lines.append(f" same => n,{dial}")
        lines.append(" same => n,Hangup()")
    if patterns:  # some destination is allowed: its legs are reported
        lines += [
            f'exten => h,1,GotoIf($["${{{TRANSFER_OUT_VARIABLE}}}" != "1"]?done)',
            f" same => n,UserEvent({OUTSIDE_LEG_EVENT},Number: ${{{DIALLED_VARIABLE}}},"
            "DialStatus: ${DIALSTATUS},AnsweredMs: ${ANSWEREDTIME_MS})",
            " same => n(done),NoOp()",
        ]
    return ["\n".join(lines) + "\n"]


# --------------------------------------------------------------------------- queues, moh, rtp


def queues(settings: Settings, agents: Sequence[AgentAccount] | None = None) -> str:
    """One Asterisk queue per callcenter queue, with its agents as static members: the
    settings' logged-in agents (penalty 0), or the database's active ones when ``agents`` is
    given (penalty = their tier in that queue)."""
    members = _agents(settings, agents)
    sections = []
    for queue in settings.queues:
        where = _queue_where(settings, queue)
        options = [
            ("strategy", "leastrecent"),
            ("musicclass", _required(f"{where}.moh_class", queue.moh_class)),
            ("timeout", _required(f"{where}.ring_timeout", queue.ring_timeout)),
            ("retry", "2"),
            # Nobody at work (paused, logged out, phone unreachable): go elsewhere (see
            # _fallback_overflow); members busy on calls still count as at work.
            ("joinempty", EMPTY_WHEN),
            ("leavewhenempty", EMPTY_WHEN),
            ("maxlen", queue.max_length),
            ("ringinuse", "no"),
        ]
        for agent in members:
            if queue.name in agent.penalties and agent.member:
                options.append(("member", _member(agent, queue.name)))
        sections.append(_section(_required(f"{where}.name", queue.name), options))
    return _file("Queues for the fallback dialplan.", sections)


def _member(agent: _Agent, queue: str) -> str:
    """``PJSIP/<id>,<penalty>,<name>``: the lower the penalty, the sooner the agent rings."""
    where = agent.where
    agent_id = _required(f"{where}.id", agent.id)
    name = _required(f"{where}.name", agent.name)
    if "," in name:
        raise ValueError(f"{where}.name: {name!r} must not contain ','")
    penalty = agent.penalties[queue]
    if isinstance(penalty, bool) or not isinstance(penalty, int) or penalty < 0:
        raise ValueError(f"{where}.queues[{queue!r}]: tier {penalty!r} is not a whole number "
                         "of 0 or more")
    return f"PJSIP/{agent_id},{penalty},{name}"


def music_on_hold(settings: Settings) -> str:
    """Every music class a queue names, played from Debian's opsound files."""
    classes = ["default"]
    for queue in settings.queues:
        moh_class = _required(f"{_queue_where(settings, queue)}.moh_class", queue.moh_class)
        if moh_class not in classes:
            classes.append(moh_class)
    return _file("Music on hold.", [
        _section(name, [("mode", "files"), ("directory", "moh"), ("sort", "random")])
        for name in classes
    ])


def rtp(settings: Settings) -> str:
    """The UDP port range for audio."""
    start = _required("asterisk.rtp_start", settings.asterisk.rtp_start)
    end = _required("asterisk.rtp_end", settings.asterisk.rtp_end)
    return _file("RTP ports.", [_section("general", [("rtpstart", start), ("rtpend", end)])])


# Modules that let a dialplan (or an Originate of an application) run programs on the host
# or reach out of it: System()/TrySystem(), SHELL(), ExternalIVR() of a local program,
# MP3Player() (spawns mpg123), CURL(). None is used by callcenter; without them a leaked AMI
# secret cannot be turned into commands on the server (docs/security-privilege.md).
DANGEROUS_MODULES = ("app_system.so", "func_shell.so", "app_externalivr.so", "app_mp3.so",
                     "func_curl.so")


def modules_noload(settings: Settings) -> str:
    """``noload`` lines for modules.conf's [modules] (included there, without a header)."""
    del settings  # the same for every installation
    return _file("Modules never to load: they run programs on the host.",
                 ["\n".join(f"noload => {module}" for module in DANGEROUS_MODULES) + "\n"])


# --------------------------------------------------------------------------- file sets

_SANDBOX_ONLY: dict[str, Callable[[Settings], str]] = {
    "callcenter-pjsip-transport.conf": pjsip_transport,
    "callcenter-manager-general.conf": manager_general,
    "callcenter-musiconhold.conf": music_on_hold,
    "callcenter-rtp.conf": rtp,
}


def include_files(
    settings: Settings, agents: Sequence[AgentAccount] | None = None
) -> dict[str, str]:
    """The files an external Asterisk's admin ``#include``s (see the module docstring).

    ``agents``: the database's agents; None: the settings' ``[[agents]]``.
    """
    return {
        "callcenter-pjsip-agents.conf": _pjsip_agents_file(settings, _agents(settings, agents)),
        "callcenter-extensions.conf": extensions(settings),
        "callcenter-queues.conf": queues(settings, agents),
        "callcenter-confbridge.conf": confbridge_profiles_file(settings),
        "callcenter-manager-user.conf": manager_user(settings),
        "callcenter-modules.conf": modules_noload(settings),
        "callcenter-cel.conf": cel_general_options(),
        "callcenter-cel-sqlite3.conf": cel_sqlite_mapping(),
    }


def sandbox_files(
    settings: Settings, agents: Sequence[AgentAccount] | None = None
) -> dict[str, str]:
    """Every generated file the sandboxed Asterisk's static configuration includes."""
    files = include_files(settings, agents)
    files.update({name: generate(settings) for name, generate in _SANDBOX_ONLY.items()})
    return files


def write_generated(
    settings: Settings,
    out_dir: str | os.PathLike[str],
    agents: Sequence[AgentAccount] | None = None,
) -> list[Path]:
    """Write ``include_files`` into out_dir (mode 640: they hold secrets); return the paths."""
    folder = Path(out_dir)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    written = []
    for name, text in include_files(settings, agents).items():
        path = folder / name
        write_private(path, text, mode=0o640)  # never readable by others, even half-written
        written.append(path)
    return written
