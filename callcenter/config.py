"""One settings object: embedded defaults, an optional TOML file, then environment overrides.

Every value is validated when loaded; a wrong one raises ``ConfigError`` naming the key
and what is wrong, so the service stops with a clear message instead of misbehaving later.

Environment overrides use ``CALLCENTER_<SECTION>__<KEY>``, e.g.
``CALLCENTER_ASTERISK__AMI_PORT=5039``. ``CALLCENTER_CONFIG`` names the TOML file and
``CALLCENTER_DATA_DIR`` the folder for the database, the sandbox and logs.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from callcenter.core.flows.names import E164_RE
from callcenter.netaddr import parse_networks
from callcenter.private_files import tighten, write_private

REPO_ROOT = Path(__file__).resolve().parent.parent
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
EXTEN_RE = re.compile(r"^[0-9*#+]{1,20}$")
AGI_SECRET_RE = re.compile(r"^[A-Za-z0-9]{16,128}$")


class ConfigError(ValueError):
    """A setting is wrong; the message names the key and the problem."""


def default_data_dir() -> Path:
    env = os.environ.get("CALLCENTER_DATA_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "callcenter"


@dataclass(frozen=True)
class ServiceSettings:
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    # Who may open FastAGI sessions: Asterisk's addresses (or networks). Required when
    # agi_host is not a loopback address; empty: loopback peers only.
    agi_allowed_peers: tuple[str, ...] = ()
    agi_secret: str = ""  # first segment of every AGI URL; empty: generated once, kept
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    log_level: str = "INFO"
    # Limits against exhaustion (docs/configuration.md, docs/security-exhaust.md). Calls come
    # first: the open-file budget is planned so that FastAGI always has room for agi_max_sessions
    # whatever the web face holds; the HTTP caps are lowered to fit when the budget is short.
    agi_max_sessions: int = 2000  # concurrent FastAGI sessions; one more is closed at once
    agi_command_seconds: int = 30  # a control command (ANSWER, SET VARIABLE...) must be answered
    agi_media_seconds: int = 900  # a prompt, GET DATA or RECORD FILE: its own length plus this
    http_max_connections: int = 500  # open HTTP connections (SSE streams count); beyond: 503
    http_header_seconds: int = 10  # to send a request's headers; also the keep-alive idle time
    http_body_seconds: int = 30  # to send a request's body once its headers came
    sse_max_streams: int = 100  # open /api/events streams in all; beyond: 503
    sse_max_streams_per_user: int = 8  # per user (a session and its tokens); beyond: 503
    sse_write_seconds: int = 30  # a stream whose client reads nothing this long is ended
    reserved_files: int = 256  # open files kept for the rest: database, AMI, logs, flows
    log_repeat_limit: int = 20  # the same log line (call site) this often per window, then
    log_repeat_window_seconds: int = 60  # a count of what was held back
    secure_cookies: bool = False  # session cookies only over HTTPS (set it behind TLS)
    # Reverse proxies whose X-Forwarded-For names the client (addresses or networks); from
    # anyone else the header is ignored, so a client cannot pick its own address.
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, low in (("agi_max_sessions", 1), ("agi_command_seconds", 1),
                          ("agi_media_seconds", 1), ("http_max_connections", 16),
                          ("http_header_seconds", 1), ("http_body_seconds", 1),
                          ("sse_max_streams", 1), ("sse_max_streams_per_user", 1),
                          ("sse_write_seconds", 1), ("reserved_files", 64),
                          ("log_repeat_limit", 1), ("log_repeat_window_seconds", 1)):
            value = getattr(self, name)
            if not low <= value <= 1_000_000:
                raise ConfigError(f"service.{name}: {value} is not between {low} and 1000000")


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = ""  # empty: SQLite file in the data folder


@dataclass(frozen=True)
class AsteriskSettings:
    mode: str = "sandbox"  # "sandbox": we install and run it; "external": someone else does
    host: str = "127.0.0.1"  # where AMI listens (and SIP, for the printed softphone hint)
    ami_port: int = 5038
    ami_username: str = "callcenter"
    ami_secret: str = ""  # empty: generated once and kept in the data folder
    sip_host: str = "127.0.0.1"  # where the SIP (UDP) transport listens; 0.0.0.0 for LAN phones
    sip_port: int = 5060
    rtp_start: int = 10000
    rtp_end: int = 10999
    instance: str = "main"  # sandbox instance name, so several can run side by side
    sandbox_root: str = ""  # empty: <data_dir>/asterisk-root
    agi_host_for_asterisk: str = ""  # how Asterisk reaches our FastAGI; empty: service.agi_host
    debian_mirror: str = "http://deb.debian.org/debian"
    # Asterisk's own channel event log, as the service sees the file (docs/records.md); empty:
    # the sandbox instance's, or /var/log/asterisk/callcenter-cel.db for an external Asterisk.
    cel_log: str = ""


@dataclass(frozen=True)
class IvrSettings:
    number: str = "100"  # the extension callers dial to reach the IVR
    flow: str = "main"  # dialplans/<flow>.yaml
    dialplans_dir: str = ""  # empty: the repository's dialplans/
    prompts_dir: str = ""  # empty: the repository's ivr_prompts/
    language: str = "en"


@dataclass(frozen=True)
class OutboundSettings:
    """Transfers out of the IVR (flow targets ``{extension: ...}`` and ``{external: ...}``)."""

    trunk_host: str = ""  # "host[:port]" of the SIP carrier or PBX; empty: no transfers out
    trunk_username: str = ""  # digest credentials the trunk asks us for; both or neither
    trunk_password: str = ""
    trunk_match: tuple[str, ...] = ()  # where the trunk's calls come from; empty: trunk_host
    caller_id: str = ""  # E.164 number shown on external calls; empty: the caller's own
    dial_timeout: int = 30  # seconds the destination rings before the transfer gives up
    extension_patterns: tuple[str, ...] = ()  # e.g. ["2XXX"]; empty: no extension allowed
    allowed_prefixes: tuple[str, ...] = ()  # e.g. ["+55"]; empty: no outside number allowed

    @property
    def has_trunk(self) -> bool:
        return bool(self.trunk_host)


STRATEGIES = ("longest_idle", "round_robin", "fewest_calls", "least_talk_time", "random",
              "skills")
DEFAULT_PAUSE_REASONS = ("break", "lunch", "training", "meeting", "coaching")


@dataclass(frozen=True)
class AcdSettings:
    """What applies to every queue and agent."""

    # Reasons an agent may give for a pause; feature code *52N picks the Nth (1-9). "RONA"
    # (ring, no answer) is always one: the ACD sets it itself.
    pause_reasons: tuple[str, ...] = DEFAULT_PAUSE_REASONS


@dataclass(frozen=True)
class QueueSettings:
    name: str
    strategy: str = "longest_idle"  # one of STRATEGIES
    ring_timeout: int = 15  # seconds an agent's phone rings before the next agent is tried
    max_wait: int = 600  # seconds a caller may wait; then overflow_to, else the apology
    max_length: int = 0  # callers waiting beyond which a new one overflows; 0: no limit
    overflow_to: str = ""  # the queue that takes callers over max_wait or max_length
    tier_delays: tuple[int, ...] = ()  # seconds after which agents of tier 1, 2, ... help
    relax_every: int = 0  # seconds of waiting after which skill levels asked drop by one
    wrap_up: int = 0  # seconds of wrap-up after each call
    manual_wrap_up: bool = False  # the agent ends wrap-up themselves (wrap_up ignored)
    announce_every: int = 0  # seconds between position/expected-wait announcements; 0: none
    offer_callback: bool = False  # announcements offer "press 1 to be called back" (needs
    # [outbound] rules that allow the caller's number)
    rona_pause: bool = True  # an agent who lets a call ring out is paused (reason RONA)
    handle_time: int = 180  # expected seconds per call until calls have been measured
    service_level_seconds: int = 20  # the T of "answered within T seconds"
    moh_class: str = "default"


@dataclass(frozen=True)
class AgentSettings:
    id: str
    name: str
    password: str = ""  # SIP password; empty: generated once and kept in the data folder
    queues: tuple[str, ...] = ()  # "support" (tier 0) or "sales:1" (an overflow tier)
    skills: tuple[str, ...] = ()  # "billing:7": skill name and level 1-10
    logged_in: bool = True
    contact: str = ""  # static SIP contact (e.g. a test phone); empty: the phone registers

    @property
    def memberships(self) -> dict[str, int]:
        """Queue -> tier (0: primary; k: helps once the queue's tier_delays[k-1] passed)."""
        return dict(_name_and_number(q, default=0) for q in self.queues)

    @property
    def skill_levels(self) -> dict[str, int]:
        return dict(_name_and_number(s, default=None) for s in self.skills)


def _name_and_number(text: str, *, default: int | None) -> tuple[str, int]:
    """"sales:1" -> ("sales", 1); "sales" -> ("sales", default). Validated by _check."""
    name, colon, number = text.partition(":")
    if not colon:
        if default is None:
            raise ValueError(f"{text!r}: expected name:number")
        return name, default
    return name, int(number)


@dataclass(frozen=True)
class Settings:
    service: ServiceSettings = field(default_factory=ServiceSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    asterisk: AsteriskSettings = field(default_factory=AsteriskSettings)
    ivr: IvrSettings = field(default_factory=IvrSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    acd: AcdSettings = field(default_factory=AcdSettings)
    queues: tuple[QueueSettings, ...] = ()
    agents: tuple[AgentSettings, ...] = ()
    data_dir: str = ""

    # Derived paths, so nobody recomputes them differently.
    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.data_path / 'callcenter.db'}"

    @property
    def dialplans_path(self) -> Path:
        return Path(self.ivr.dialplans_dir) if self.ivr.dialplans_dir else REPO_ROOT / "dialplans"

    @property
    def prompts_path(self) -> Path:
        return Path(self.ivr.prompts_dir) if self.ivr.prompts_dir else REPO_ROOT / "ivr_prompts"

    @property
    def sandbox_root(self) -> Path:
        if self.asterisk.sandbox_root:
            return Path(self.asterisk.sandbox_root)
        return self.data_path / "asterisk-root"

    @property
    def agi_host_for_asterisk(self) -> str:
        return self.asterisk.agi_host_for_asterisk or self.service.agi_host

    def queue(self, name: str) -> QueueSettings | None:
        return next((q for q in self.queues if q.name == name), None)


DEMO_QUEUES = (
    QueueSettings(name="sales"),
    QueueSettings(name="support"),
    QueueSettings(name="operator"),
)
DEMO_AGENTS = (
    AgentSettings(id="agent1", name="Alice", queues=("sales", "support", "operator")),
    AgentSettings(id="agent2", name="Bruno", queues=("support", "operator")),
    AgentSettings(id="agent3", name="Chen", queues=("sales", "operator")),
)


# --------------------------------------------------------------------------- loading


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Defaults ← TOML file (if any) ← environment. Raises ConfigError on any bad value."""
    env = dict(os.environ) if env is None else env
    raw: dict[str, Any] = {}
    file_name = path if path is not None else env.get("CALLCENTER_CONFIG")
    if file_name:
        file_path = Path(file_name)
        try:
            raw = tomllib.loads(file_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{file_path}: settings file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file_path}: not valid TOML: {exc}") from None
    _apply_env(raw, env)
    data_dir = raw.pop("data_dir", None) or env.get("CALLCENTER_DATA_DIR") or default_data_dir()
    settings = _build(raw, str(data_dir))
    _check(settings)
    return _fill_secrets(settings)


_SECTIONS: dict[str, type] = {
    "service": ServiceSettings,
    "database": DatabaseSettings,
    "asterisk": AsteriskSettings,
    "ivr": IvrSettings,
    "outbound": OutboundSettings,
    "acd": AcdSettings,
}


def _apply_env(raw: dict[str, Any], env: dict[str, str]) -> None:
    for name, value in env.items():
        if not name.startswith("CALLCENTER_") or "__" not in name:
            continue
        section, _, key = name[len("CALLCENTER_") :].lower().partition("__")
        if section not in _SECTIONS:
            raise ConfigError(f"{name}: unknown section {section!r}")
        raw.setdefault(section, {})[key] = value  # typed by _coerce like any file value


def _coerce(where: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
            return int(value)
        raise ConfigError(f"{where}: expected a whole number, got {value!r}")
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected text, got {value!r}")
        return value
    if kind == tuple[str, ...]:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of names, got {value!r}")
        return tuple(value)
    if kind == tuple[int, ...]:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        items = [_coerce(f"{where}[{i}]", v, int) for i, v in enumerate(value)] \
            if isinstance(value, list) else None
        if items is None:
            raise ConfigError(f"{where}: expected a list of whole numbers, got {value!r}")
        return tuple(items)
    raise AssertionError(kind)


def _make(cls: type, where: str, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table, got {raw!r}")
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown setting (known: {', '.join(known)})")
        hint = known[key].type
        kind = {"int": int, "str": str, "bool": bool, "tuple[str, ...]": tuple[str, ...],
                "tuple[int, ...]": tuple[int, ...]}[
            hint if isinstance(hint, str) else hint.__name__
        ]
        values[key] = _coerce(f"{where}.{key}", value, kind)
    try:
        return cls(**values)
    except TypeError as exc:  # a required key is missing
        missing = [n for n, f in known.items() if n not in values and _required(f)]
        raise ConfigError(f"{where}: missing {', '.join(missing) or exc}") from None


def _required(f: Any) -> bool:
    from dataclasses import MISSING

    return f.default is MISSING and f.default_factory is MISSING


def _build(raw: dict[str, Any], data_dir: str) -> Settings:
    unknown = set(raw) - {*_SECTIONS, "queues", "agents"}
    if unknown:
        raise ConfigError(f"{sorted(unknown)[0]}: unknown section")
    sections = {name: _make(cls, name, raw.get(name, {})) for name, cls in _SECTIONS.items()}
    queues = DEMO_QUEUES
    if "queues" in raw:
        if not isinstance(raw["queues"], list):
            raise ConfigError("queues: expected a list of [[queues]] tables")
        queues = tuple(
            _make(QueueSettings, f"queues[{i}]", q) for i, q in enumerate(raw["queues"])
        )
    agents = DEMO_AGENTS
    if "agents" in raw:
        if not isinstance(raw["agents"], list):
            raise ConfigError("agents: expected a list of [[agents]] tables")
        agents = tuple(
            _make(AgentSettings, f"agents[{i}]", a) for i, a in enumerate(raw["agents"])
        )
    return Settings(queues=queues, agents=agents, data_dir=data_dir, **sections)


def _port(where: str, value: int) -> None:
    if not 1 <= value <= 65535:
        raise ConfigError(f"{where}: {value} is not a TCP/UDP port (1-65535)")


def _private_host(where: str, value: str) -> None:
    """AMI and FastAGI must never listen on a public address."""
    if value == "localhost":
        return
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not an IP address") from None
    if not (address.is_loopback or address.is_private):
        raise ConfigError(
            f"{where}: {value} is a public address; AMI and FastAGI may only listen on "
            "localhost or a private network"
        )


def _networks(where: str, values: tuple[str, ...]) -> None:
    try:
        parse_networks(values, where)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _check_agi_security(service: ServiceSettings) -> None:
    """FastAGI trusts the session it is given: only Asterisk may open one (docs/security-
    privilege.md). Off loopback, an allowlist of Asterisk's addresses is required."""
    _networks("service.agi_allowed_peers", service.agi_allowed_peers)
    if service.agi_host != "localhost" and not service.agi_allowed_peers:
        address = ipaddress.ip_address(service.agi_host)
        if not address.is_loopback:
            where = ("every address" if address.is_unspecified
                     else f"{address}, reachable from other machines")
            raise ConfigError(
                f"service.agi_host: {service.agi_host} listens on {where}; list Asterisk's "
                "addresses in service.agi_allowed_peers so that nobody else can open a "
                "FastAGI session")
    if service.agi_secret and not AGI_SECRET_RE.fullmatch(service.agi_secret):
        raise ConfigError("service.agi_secret: use 16-128 letters and digits (it goes into "
                          "the dialplan's AGI URLs)")


def _check(s: Settings) -> None:
    _private_host("service.agi_host", s.service.agi_host)
    _check_agi_security(s.service)
    _private_host("asterisk.host", s.asterisk.host)
    if s.asterisk.agi_host_for_asterisk:
        _private_host("asterisk.agi_host_for_asterisk", s.asterisk.agi_host_for_asterisk)
    for key in ("agi_port", "http_port"):
        _port(f"service.{key}", getattr(s.service, key))
    for key in ("ami_port", "sip_port", "rtp_start", "rtp_end"):
        _port(f"asterisk.{key}", getattr(s.asterisk, key))
    if s.asterisk.rtp_start >= s.asterisk.rtp_end:
        raise ConfigError("asterisk.rtp_start: must be below asterisk.rtp_end")
    if s.service.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(
            f"service.log_level: {s.service.log_level!r} is not DEBUG, INFO, WARNING or ERROR"
        )
    _networks("service.trusted_proxies", s.service.trusted_proxies)
    if s.asterisk.mode not in ("sandbox", "external"):
        raise ConfigError(f"asterisk.mode: {s.asterisk.mode!r} is not 'sandbox' or 'external'")
    if s.asterisk.mode == "external" and not s.asterisk.ami_secret:
        raise ConfigError("asterisk.ami_secret: required when asterisk.mode is 'external'")
    for key in ("ami_username", "instance"):
        if not NAME_RE.fullmatch(getattr(s.asterisk, key)):
            raise ConfigError(
                f"asterisk.{key}: {getattr(s.asterisk, key)!r} must be lowercase letters, "
                "digits, '-' or '_' (max 32)"
            )
    if not EXTEN_RE.fullmatch(s.ivr.number):
        raise ConfigError(f"ivr.number: {s.ivr.number!r} is not a dialable extension")
    if not NAME_RE.fullmatch(s.ivr.flow):
        raise ConfigError(f"ivr.flow: {s.ivr.flow!r} is not a flow name")
    if not s.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            "database.url: must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    _check_queues_and_agents(s)
    _check_outbound(s.outbound)


def _check_queues_and_agents(s: Settings) -> None:
    seen: set[str] = set()
    for i, q in enumerate(s.queues):
        where = f"queues[{i}]"
        if not NAME_RE.fullmatch(q.name):
            raise ConfigError(f"{where}.name: {q.name!r} must be lowercase letters and digits")
        if q.name in seen:
            raise ConfigError(f"{where}.name: queue {q.name!r} is defined twice")
        seen.add(q.name)
        if not 1 <= q.ring_timeout <= 300:
            raise ConfigError(f"{where}.ring_timeout: {q.ring_timeout} is not 1-300 seconds")
        if not 1 <= q.max_wait <= 86400:
            raise ConfigError(f"{where}.max_wait: {q.max_wait} is not 1-86400 seconds")
        if not NAME_RE.fullmatch(q.moh_class):
            raise ConfigError(f"{where}.moh_class: {q.moh_class!r} is not a class name")
    agent_ids: set[str] = set()
    for i, a in enumerate(s.agents):
        where = f"agents[{i}]"
        if not NAME_RE.fullmatch(a.id):
            raise ConfigError(f"{where}.id: {a.id!r} must be lowercase letters and digits")
        if a.id in agent_ids:
            raise ConfigError(f"{where}.id: agent {a.id!r} is defined twice")
        agent_ids.add(a.id)
        if any(c in a.name for c in "\r\n\0;\""):
            raise ConfigError(f"{where}.name: must not contain quotes, ';' or line breaks")
        if a.password and not re.fullmatch(r"[A-Za-z0-9_.-]{8,64}", a.password):
            raise ConfigError(
                f"{where}.password: use 8-64 letters, digits, '.', '-' or '_'"
            )
        if a.contact and not re.fullmatch(r"sip:[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+(:[0-9]+)?",
                                          a.contact):
            raise ConfigError(f"{where}.contact: {a.contact!r} is not sip:user@host[:port]")
        tiers = {q.name: len(q.tier_delays) for q in s.queues}
        for entry in a.queues:
            match = MEMBERSHIP_RE.fullmatch(entry)
            if not match:
                raise ConfigError(f"{where}.queues: {entry!r} is not a queue name or queue:tier")
            queue, tier = match["name"], int(match["number"] or 0)
            if queue not in seen:
                raise ConfigError(f"{where}.queues: unknown queue {queue!r}")
            if tier > tiers[queue]:
                raise ConfigError(f"{where}.queues: {entry!r}: queue {queue!r} has "
                                  f"{tiers[queue]} overflow tier(s) (its tier_delays)")
        if len(a.memberships) != len(a.queues):
            raise ConfigError(f"{where}.queues: a queue is listed twice")
        for entry in a.skills:
            match = SKILL_RE.fullmatch(entry)
            if not match or match["number"] is None or not 1 <= int(match["number"]) <= 10:
                raise ConfigError(f"{where}.skills: {entry!r} is not skill:level (level 1-10)")
        if len(a.skill_levels) != len(a.skills):
            raise ConfigError(f"{where}.skills: a skill is listed twice")
    _check_acd(s)


MEMBERSHIP_RE = re.compile(r"^(?P<name>[a-z][a-z0-9_-]{0,31})(?::(?P<number>[0-9]))?$")
SKILL_RE = re.compile(r"^(?P<name>[a-z][a-z0-9_-]{0,39})(?::(?P<number>[0-9]{1,2}))?$")


def _check_acd(s: Settings) -> None:
    reasons = s.acd.pause_reasons
    if not 1 <= len(reasons) <= 9:
        raise ConfigError("acd.pause_reasons: give 1 to 9 reasons (feature code *52N picks one)")
    for i, reason in enumerate(reasons):
        if not NAME_RE.fullmatch(reason):
            raise ConfigError(f"acd.pause_reasons[{i}]: {reason!r} must be lowercase letters, "
                              "digits, '-' or '_'")
    if len(set(reasons)) != len(reasons):
        raise ConfigError("acd.pause_reasons: a reason is listed twice")
    names = {q.name for q in s.queues}
    for i, q in enumerate(s.queues):
        where = f"queues[{i}]"
        if q.strategy not in STRATEGIES:
            raise ConfigError(f"{where}.strategy: {q.strategy!r} is not one of "
                              f"{', '.join(STRATEGIES)}")
        for key, low, high in (("max_length", 0, 10_000), ("wrap_up", 0, 3600),
                               ("announce_every", 0, 3600), ("relax_every", 0, 86400),
                               ("handle_time", 1, 86400), ("service_level_seconds", 1, 3600)):
            value = getattr(q, key)
            if not low <= value <= high:
                raise ConfigError(f"{where}.{key}: {value} is not {low}-{high}")
        if 0 < q.announce_every < 15:
            raise ConfigError(f"{where}.announce_every: {q.announce_every} s is too often "
                              "(at least 15, or 0 for never)")
        if list(q.tier_delays) != sorted(set(q.tier_delays)) or any(
                not 1 <= d <= 86400 for d in q.tier_delays):
            raise ConfigError(f"{where}.tier_delays: {list(q.tier_delays)} must be rising "
                              "seconds, 1-86400")
        if q.overflow_to:
            if q.overflow_to not in names:
                raise ConfigError(f"{where}.overflow_to: unknown queue {q.overflow_to!r}")
            chain, target = [q.name], q.overflow_to
            while target:
                if target in chain:
                    raise ConfigError(f"{where}.overflow_to: overflow loops: "
                                      f"{' -> '.join([*chain, target])}")
                chain.append(target)
                target = s.queue(target).overflow_to  # type: ignore[union-attr]


# --------------------------------------------------------------------------- outbound

PREFIX_RE = re.compile(r"^\+[1-9][0-9]{0,14}$")  # at least a country code
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
SIP_USER_RE = re.compile(r"^[A-Za-z0-9_.~+-]{1,64}$")
# Printable ASCII without spaces, quotes, backslash, ';' '#' '[' ']': nothing an Asterisk
# configuration file could read as a comment, a section or an include.
SIP_PASSWORD_RE = re.compile(r"^[A-Za-z0-9_.~!@$%^&*()+=:,/?{}|<>-]{1,128}$")
_PATTERN_PARTS = re.compile(r"[0-9]|[XxZzNn]|\[(?:[0-9](?:-[0-9])?)+\]")
_PATTERN_REGEX = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]"}
MAX_PATTERN_PARTS = 20


def extension_pattern_regex(pattern: str) -> re.Pattern[str]:
    """An Asterisk-style extension pattern as a regular expression; ValueError if it is none.

    ``2001`` (exactly), ``2XXX`` (X any digit, Z 1-9, N 2-9), ``3[0-4]XX`` (one of),
    ``9.`` (a final ``.``: one or more further digits). A leading ``_`` is allowed. Only
    digits ever match, unlike Asterisk's own ``.``.
    """
    body = pattern[1:] if pattern.startswith("_") else pattern
    more = body.endswith(".")
    if more:
        body = body[:-1]
    parts: list[str] = []
    position = 0
    while position < len(body):
        found = _PATTERN_PARTS.match(body, position)
        if found is None:
            raise ValueError(
                f"{pattern!r}: {body[position]!r} is not a digit, X, Z, N, a [class] or a final "
                "'.'")
        part = found.group()
        if part.startswith("[") and any(a > b for a, b in re.findall(r"(\d)-(\d)", part)):
            raise ValueError(f"{pattern!r}: the range in {part} runs backwards")
        parts.append(_PATTERN_REGEX.get(part.upper(), part))
        position = found.end()
    if not parts:
        raise ValueError(f"{pattern!r}: needs at least one digit, X, Z, N or [class]")
    if len(parts) > MAX_PATTERN_PARTS:
        raise ValueError(f"{pattern!r}: longer than {MAX_PATTERN_PARTS} digits")
    return re.compile("".join(parts) + ("[0-9]+" if more else ""))


def split_host_port(value: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``v6``, ``[v6]`` or ``[v6]:port`` → (host, port or None).

    The host is an IP address or a DNS name; ValueError says what is wrong.
    """
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{value!r} is not [IPv6 address] or [IPv6 address]:port")
        return _ipv6(host, value), (_port_number(rest[1:]) if rest else None)
    if value.count(":") > 1:  # a bare IPv6 address: no port can follow it
        return _ipv6(value, value), None
    host, colon, port_text = value.partition(":")
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        if not HOSTNAME_RE.fullmatch(host) or host.replace(".", "").isdigit():
            raise ValueError(f"{host!r} is not an IP address or a host name") from None
    return host, (_port_number(port_text) if colon else None)


def _ipv6(host: str, value: str) -> str:
    try:
        return str(ipaddress.IPv6Address(host))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv6 address (with a port, write "
                         "[2001:db8::1]:5060)") from None


def _port_number(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{text!r} is not a port (1-65535)")
    return int(text)


def _check_trunk_match(where: str, value: str) -> None:
    """An address the trunk calls from: IP, IP/prefix (network), host name; optional :port."""
    address, slash, prefix = value.partition("/")
    try:
        host, _ = split_host_port(address)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if slash:
        try:
            ipaddress.ip_network(f"{host}/{prefix}", strict=False)
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not an address/prefix network") from None


def _check_outbound(o: OutboundSettings) -> None:
    if o.trunk_host:
        try:
            split_host_port(o.trunk_host)
        except ValueError as exc:
            raise ConfigError(f"outbound.trunk_host: {exc}") from None
    if bool(o.trunk_username) != bool(o.trunk_password):
        missing = "trunk_password" if o.trunk_username else "trunk_username"
        raise ConfigError(f"outbound.{missing}: set trunk_username and trunk_password together")
    if o.trunk_username and not SIP_USER_RE.fullmatch(o.trunk_username):
        raise ConfigError(f"outbound.trunk_username: {o.trunk_username!r}: use 1-64 letters, "
                          "digits or _.~+-")
    if o.trunk_password and not SIP_PASSWORD_RE.fullmatch(o.trunk_password):
        raise ConfigError("outbound.trunk_password: use 1-128 printable characters without "
                          "spaces, quotes, backslash, ';', '#', '[' or ']'")
    for i, match in enumerate(o.trunk_match):
        _check_trunk_match(f"outbound.trunk_match[{i}]", match)
    if o.caller_id and not E164_RE.fullmatch(o.caller_id):
        raise ConfigError(f"outbound.caller_id: {o.caller_id!r} is not an E.164 number "
                          "(+, then 8-15 digits, e.g. +551130000000)")
    if not 5 <= o.dial_timeout <= 300:
        raise ConfigError(f"outbound.dial_timeout: {o.dial_timeout} is not 5-300 seconds")
    for i, pattern in enumerate(o.extension_patterns):
        try:
            extension_pattern_regex(pattern)
        except ValueError as exc:
            raise ConfigError(f"outbound.extension_patterns[{i}]: {exc}") from None
    for i, prefix in enumerate(o.allowed_prefixes):
        if not PREFIX_RE.fullmatch(prefix):
            raise ConfigError(
                f"outbound.allowed_prefixes[{i}]: {prefix!r} is not '+' and a country code "
                "(or a longer start of a number), e.g. '+55' or '+5511'")


def _fill_secrets(s: Settings) -> Settings:
    """Secrets left empty are generated once and kept in <data_dir>/secrets.toml (mode 600)."""
    needs_ami = not s.asterisk.ami_secret
    needs_agi = not s.service.agi_secret
    needs_agents = [a for a in s.agents if not a.password]
    if not needs_ami and not needs_agi and not needs_agents:
        return s
    store = s.data_path / "secrets.toml"
    known: dict[str, str] = {}
    if store.exists():
        known = {k: str(v) for k, v in tomllib.loads(store.read_text()).items()}
    changed = False

    def secret(key: str) -> str:
        nonlocal changed
        if key not in known:
            known[key] = secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")
            changed = True
        return known[key]

    asterisk = s.asterisk
    if needs_ami:
        asterisk = replace(asterisk, ami_secret=secret("ami_secret"))
    service = replace(s.service, agi_secret=secret("agi_secret")) if needs_agi else s.service
    agents = tuple(
        a if a.password else replace(a, password=secret(f"agent_{a.id}")) for a in s.agents
    )
    if changed:  # write_private makes the data folder private too
        write_private(store, "".join(f'{k} = "{v}"\n' for k, v in sorted(known.items())))
    else:
        tighten(store)  # made readable by an older version: fix it at the next start
    return replace(s, service=service, asterisk=asterisk, agents=agents)
