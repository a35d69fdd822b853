"""One settings object: embedded defaults, an optional TOML file, then environment overrides.

Every value is validated when loaded; a wrong one raises ``ConfigError`` naming the key
and what is wrong, so the service stops with a clear message instead of misbehaving later.

Environment overrides use ``CALLCENTER_<SECTION>__<KEY>``, e.g.
``CALLCENTER_ASTERISK__AMI_PORT=5039``. ``CALLCENTER_CONFIG`` names the TOML file and
``CALLCENTER_DATA_DIR`` the folder for the database, the sandbox and logs.

The sections are pydantic dataclasses (frozen; ``dataclasses.replace`` works on them) and
pydantic-settings reads the sources: its TOML source for the file and its environment
source (``CALLCENTER_`` prefix, ``__`` between section and key) for overrides. Pydantic
types each value; ``_config_error`` words its errors as ``section.key: problem``; the
checks that span keys (ports, hosts, overflow chains...) run after, in ``_check``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import field, replace
from pathlib import Path
from typing import Annotated, Any, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError, create_model
from pydantic.dataclasses import dataclass
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings.sources.utils import parse_env_vars

from callcenter.core.acd_config import Strategy
from callcenter.core.flows.names import TOPIC_RE
from callcenter.core.identifiers import (
    AGENT_ID_RE,
    ASTERISK_NAME_RE,
    BUILT_PROMPT_NAME_RE,
    CAMPAIGN_NAME_RE,
    DEFAULT_PAUSE_REASONS,
    E164_RE,
    FLOW_NAME_RE,
    MAX_PAUSE_REASONS,
    PAUSE_REASON_RE,
    QUEUE_NAME_RE,
)
from callcenter.core.recording_policy import RecordingMode, RecordingPolicy
from callcenter.netaddr import parse_networks
from callcenter.private_files import tighten, write_private

REPO_ROOT = Path(__file__).resolve().parent.parent
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


# ------------------------------------------------------------------------- value types
# The file gives typed values, the environment text: each type takes both, and says what it
# expected in the words the messages have always used.


def _whole_number(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value)
    raise ValueError(f"expected a whole number, got {value!r}")


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "1", "yes")
    raise ValueError(f"expected true or false, got {value!r}")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    return value


def _comma_list(value: Any) -> Any:
    """"a, b" (the environment's way to give a list) -> ["a", "b"]; anything else as is."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _names(value: Any) -> tuple[str, ...]:
    value = _comma_list(value)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of names, got {value!r}")
    return tuple(value)


def _numbers(value: Any) -> Any:
    value = _comma_list(value)
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list of whole numbers, got {value!r}")
    return tuple(value)  # each item: WholeNumber, with its index in the error's path


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Text = Annotated[str, BeforeValidator(_text)]
# NoDecode: the environment source passes "a, b" through instead of reading it as JSON.
Names = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_names)]
Numbers = Annotated[tuple[WholeNumber, ...], NoDecode, BeforeValidator(_numbers)]

_SECTION = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------- schema


@dataclass(frozen=True, config=_SECTION)
class ServiceSettings:
    agi_host: Text = "127.0.0.1"
    agi_port: WholeNumber = 4573
    # Who may open FastAGI sessions: Asterisk's addresses (or networks). Required when
    # agi_host is not a loopback address; empty: loopback peers only.
    agi_allowed_peers: Names = ()
    agi_secret: Text = ""  # first segment of every AGI URL; empty: generated once, kept
    http_host: Text = "127.0.0.1"
    http_port: WholeNumber = 8080
    log_level: Text = "INFO"
    # Limits against exhaustion (docs/configuration.md, docs/security-exhaust.md). Calls come
    # first: the open-file budget is planned so that FastAGI always has room for agi_max_sessions
    # whatever the web face holds; the HTTP caps are lowered to fit when the budget is short.
    agi_max_sessions: WholeNumber = 2000  # concurrent FastAGI sessions; one more is closed
    agi_command_seconds: WholeNumber = 30  # a control command (ANSWER, SET VARIABLE...)
    agi_media_seconds: WholeNumber = 900  # a prompt, GET DATA or RECORD FILE: its length + this
    http_max_connections: WholeNumber = 500  # open HTTP connections (SSE streams count)
    http_header_seconds: WholeNumber = 10  # to send a request's headers; also keep-alive idle
    http_body_seconds: WholeNumber = 30  # to send a request's body once its headers came
    # A file upload (call list, do-not-call, consents): streamed to disk, at most this size;
    # it gets http_body_seconds, then must keep up 64 KiB/s on average (docs/outbound.md).
    upload_max_megabytes: WholeNumber = 200
    sse_max_streams: WholeNumber = 100  # open /api/events streams in all; beyond: 503
    sse_max_streams_per_user: WholeNumber = 8  # per user (a session and its tokens)
    sse_write_seconds: WholeNumber = 30  # a stream whose client reads nothing this long ends
    reserved_files: WholeNumber = 256  # open files kept for the rest: database, AMI, logs
    log_repeat_limit: WholeNumber = 20  # the same log line (call site) this often per window,
    log_repeat_window_seconds: WholeNumber = 60  # then a count of what was held back
    secure_cookies: Flag = False  # session cookies only over HTTPS (set it behind TLS)
    # Reverse proxies whose X-Forwarded-For names the client (addresses or networks); from
    # anyone else the header is ignored, so a client cannot pick its own address.
    trusted_proxies: Names = ()


# (key, lowest) of the [service] limits; the highest is 1,000,000 for each.
SERVICE_LIMITS = (("agi_max_sessions", 1), ("agi_command_seconds", 1),
                  ("agi_media_seconds", 1), ("http_max_connections", 16),
                  ("http_header_seconds", 1), ("http_body_seconds", 1),
                  ("upload_max_megabytes", 1),
                  ("sse_max_streams", 1), ("sse_max_streams_per_user", 1),
                  ("sse_write_seconds", 1), ("reserved_files", 64),
                  ("log_repeat_limit", 1), ("log_repeat_window_seconds", 1))


@dataclass(frozen=True, config=_SECTION)
class DatabaseSettings:
    url: Text = ""  # empty: SQLite file in the data folder


@dataclass(frozen=True, config=_SECTION)
class AsteriskSettings:
    mode: Text = "sandbox"  # "sandbox": we install and run it; "external": someone else does
    host: Text = "127.0.0.1"  # where AMI listens (and SIP, for the printed softphone hint)
    ami_port: WholeNumber = 5038
    ami_username: Text = "callcenter"
    ami_secret: Text = ""  # empty: generated once and kept in the data folder
    sip_host: Text = "127.0.0.1"  # where the SIP (UDP) transport listens; 0.0.0.0 for LAN
    sip_port: WholeNumber = 5060
    rtp_start: WholeNumber = 10000
    rtp_end: WholeNumber = 10999
    instance: Text = "main"  # sandbox instance name, so several can run side by side
    sandbox_root: Text = ""  # empty: <data_dir>/asterisk-root
    agi_host_for_asterisk: Text = ""  # how Asterisk reaches our FastAGI; empty: service.agi_host
    debian_mirror: Text = "http://deb.debian.org/debian"
    # Asterisk's own channel event log, as the service sees the file (docs/records.md); empty:
    # the sandbox instance's, or /var/log/asterisk/callcenter-cel.db for an external Asterisk.
    cel_log: Text = ""


@dataclass(frozen=True, config=_SECTION)
class IvrSettings:
    number: Text = "100"  # the extension callers dial to reach the IVR
    flow: Text = "main"  # dialplans/<flow>.yaml
    dialplans_dir: Text = ""  # empty: the repository's dialplans/
    prompts_dir: Text = ""  # empty: the repository's ivr_prompts/
    language: Text = "en"


@dataclass(frozen=True, config=_SECTION)
class OutboundSettings:
    """Transfers out of the IVR (flow targets ``{extension: ...}`` and ``{external: ...}``)."""

    trunk_host: Text = ""  # "host[:port]" of the SIP carrier or PBX; empty: no transfers out
    trunk_username: Text = ""  # digest credentials the trunk asks us for; both or neither
    trunk_password: Text = ""
    trunk_match: Names = ()  # where the trunk's calls come from; empty: trunk_host
    caller_id: Text = ""  # E.164 number shown on external calls; empty: the caller's own
    dial_timeout: WholeNumber = 30  # seconds the destination rings before the transfer gives up
    extension_patterns: Names = ()  # e.g. ["2XXX"]; empty: no extension allowed
    allowed_prefixes: Names = ()  # e.g. ["+55"]; empty: no outside number allowed

    @property
    def has_trunk(self) -> bool:
        return bool(self.trunk_host)


STRATEGIES = tuple(strategy.value for strategy in Strategy)


@dataclass(frozen=True, config=_SECTION)
class AcdSettings:
    """What applies to every queue and agent."""

    # Reasons an agent may give for a pause; feature code *52N picks the Nth (1-9). "RONA"
    # (ring, no answer) is always one: the ACD sets it itself.
    pause_reasons: Names = DEFAULT_PAUSE_REASONS


@dataclass(frozen=True, config=_SECTION)
class ReportSettings:
    """What the reports count (docs/reports.md). A change applies to calls stored from then
    on; `callcenter reports rebuild` applies it to the calls already stored."""

    csat_questions: Names = ("agent-rating",)  # survey question ids answered 1-5 (CSAT)
    csat_satisfied_from: WholeNumber = 4  # a CSAT answer this high or higher is "satisfied"
    nps_questions: Names = ("nps",)  # survey question ids answered 0-10 (NPS)
    # Productivity points (the agent report's "points", for productivity-based pay):
    points_inbound_call: WholeNumber = 1  # each inbound call an agent answered
    points_outbound_call: WholeNumber = 1  # each campaign call an agent answered
    points_transfer: WholeNumber = 0  # each transfer an agent made that the target took
    points_dispositions: Names = ()  # "name=points" per campaign disposition, e.g. "sale=10"


@dataclass(frozen=True, config=_SECTION)
class QueueSettings:
    name: Text
    strategy: Text = Strategy.LONGEST_IDLE.value  # one of STRATEGIES
    ring_timeout: WholeNumber = 15  # seconds an agent's phone rings before the next is tried
    max_wait: WholeNumber = 600  # seconds a caller may wait; then overflow_to, else apology
    max_length: WholeNumber = 0  # callers waiting beyond which a new one overflows; 0: no limit
    overflow_to: Text = ""  # the queue that takes callers over max_wait or max_length
    tier_delays: Numbers = ()  # seconds after which agents of tier 1, 2, ... help
    relax_every: WholeNumber = 0  # seconds of waiting after which skill levels asked drop one
    wrap_up: WholeNumber = 0  # seconds of wrap-up after each call
    manual_wrap_up: Flag = False  # the agent ends wrap-up themselves (wrap_up ignored)
    announce_every: WholeNumber = 0  # seconds between position/expected-wait announcements
    offer_callback: Flag = False  # announcements offer "press 1 to be called back" (needs
    # [outbound] rules that allow the caller's number)
    rona_pause: Flag = True  # an agent who lets a call ring out is paused (reason RONA)
    handle_time: WholeNumber = 180  # expected seconds per call until calls have been measured
    service_level_seconds: WholeNumber = 20  # the T of "answered within T seconds"
    moh_class: Text = "default"
    # Callers who hang up waiting less than this many seconds are short abandons (the
    # wallboard and the reports show them apart); wallboard alerts (docs/wallboard.md) when
    # today's service level falls below / the abandon rate rises above these percentages
    # (0: no such alert).
    short_abandon_seconds: WholeNumber = 5
    alert_service_level_below: WholeNumber = 80
    alert_abandon_rate_above: WholeNumber = 10


@dataclass(frozen=True, config=_SECTION)
class CenterSettings:
    """The center as a whole."""

    # The IANA time zone the center's days are counted in (the wallboard's "today", the
    # reports' days), e.g. "America/Sao_Paulo".
    time_zone: Text = "UTC"
    # Wallboard alerts (docs/wallboard.md): one clears only once its figure is this many
    # points back on the good side, and none is raised before this many calls count in its
    # ratio (a first abandoned call is not "100 % abandoned").
    alert_hysteresis_percent: WholeNumber = 5
    alert_min_calls: WholeNumber = 10

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True, config=_SECTION)
class AgentSettings:
    id: Text
    name: Text
    password: Text = ""  # SIP password; empty: generated once and kept in the data folder
    queues: Names = ()  # "support" (tier 0) or "sales:1" (an overflow tier)
    skills: Names = ()  # "billing:7": skill name and level 1-10
    logged_in: Flag = True
    contact: Text = ""  # static SIP contact (e.g. a test phone); empty: the phone registers

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


@dataclass(frozen=True, config=_SECTION)
class RecordingSettings:
    """Call recordings (docs/recordings.md): where files go, how often expired ones go."""

    folder: Text = ""  # empty: <data_dir>/recordings (files in YYYY/MM/DD/ below it)
    # Where the service finds the files Asterisk's MixMonitor writes (Asterisk's
    # <astspooldir>/monitor as this machine sees it); empty: the sandbox instance's, or
    # /var/spool/asterisk/monitor for an external Asterisk.
    asterisk_folder: Text = ""
    announcement: Text = "recording-notice"  # the prompt said to callers the policy may record
    sweep_seconds: WholeNumber = 3600  # how often expired recordings are deleted
    settle_seconds: WholeNumber = 2  # after the caller's hangup, for Asterisk to close the file


@dataclass(frozen=True, config=_SECTION)
class RecordingPolicySettings:
    """One ``[[recording_policies]]`` entry: the policy of one queue or one campaign."""

    queue: Text = ""  # the queue it covers (or campaign, not both)
    campaign: Text = ""  # the campaign it covers; a campaign's policy wins over its queue's
    mode: Text = "none"  # none, all, on_demand or share
    share_percent: WholeNumber = 0  # mode share: percentage of calls recorded (1-100)
    announce: Flag = True  # say "this call may be recorded" to the callers it may record
    retention_days: WholeNumber = 90  # files are deleted this many days after the call


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


@dataclass(frozen=True, config=_SECTION)
class Settings:
    service: ServiceSettings = field(default_factory=ServiceSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    asterisk: AsteriskSettings = field(default_factory=AsteriskSettings)
    ivr: IvrSettings = field(default_factory=IvrSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    acd: AcdSettings = field(default_factory=AcdSettings)
    queues: tuple[QueueSettings, ...] = ()  # the file's [[queues]]; none there: DEMO_QUEUES
    agents: tuple[AgentSettings, ...] = ()  # the file's [[agents]]; none there: DEMO_AGENTS
    data_dir: Text = ""
    center: CenterSettings = field(default_factory=CenterSettings)
    recordings: RecordingSettings = field(default_factory=RecordingSettings)
    recording_policies: tuple[RecordingPolicySettings, ...] = ()  # the file's, per queue/campaign
    reports: ReportSettings = field(default_factory=ReportSettings)

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


SECTIONS: dict[str, type] = {
    "service": ServiceSettings,
    "database": DatabaseSettings,
    "asterisk": AsteriskSettings,
    "ivr": IvrSettings,
    "outbound": OutboundSettings,
    "acd": AcdSettings,
    "center": CenterSettings,
    "recordings": RecordingSettings,
    "reports": ReportSettings,
}
TABLE_LISTS: dict[str, type] = {"queues": QueueSettings, "agents": AgentSettings,
                                "recording_policies": RecordingPolicySettings}


def setting_keys() -> list[str]:
    """Every key a settings file may hold, as ``section.key``, ``queues[].key`` and
    ``agents[].key`` (docs/configuration.md documents exactly these; a test checks)."""
    keys = [f"{name}.{f.name}" for name, cls in SECTIONS.items()
            for f in dataclasses.fields(cls)]
    keys += [f"{name}[].{f.name}" for name, cls in TABLE_LISTS.items()
             for f in dataclasses.fields(cls)]
    return [*keys, "data_dir"]


class _SourcesConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLCENTER_", env_nested_delimiter="__",
                                      extra="forbid", case_sensitive=False)


# The pydantic-settings face of Settings: the same fields and types (read off Settings, so
# the two cannot differ), with the sources' configuration.
SettingsSources: type[BaseSettings] = create_model(  # type: ignore[call-overload]
    "SettingsSources",
    __base__=_SourcesConfig,
    **{f.name: (get_type_hints(Settings, include_extras=True)[f.name],
                Field(default=f.default) if f.default is not dataclasses.MISSING
                else Field(default_factory=f.default_factory))
       for f in dataclasses.fields(Settings)},
)


class _GivenEnvironment(EnvSettingsSource):
    """pydantic-settings' environment source over the mapping load_settings was given
    (``os.environ`` unless a caller, such as a test, passes its own)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._given = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._given, self.case_sensitive, self.env_ignore_empty,
                              self.env_parse_none_str)


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
        raw = _read_file(Path(file_name))
    overrides = _section_variables(env)
    for section, values in _GivenEnvironment(SettingsSources, overrides)().items():
        if isinstance(raw.get(section), dict):  # else the file's value is refused below
            raw[section] = {**raw[section], **values}
        else:
            raw.setdefault(section, values)
    # The file's data_dir comes before CALLCENTER_DATA_DIR (as it always has).
    data_dir = raw.pop("data_dir", None) or env.get("CALLCENTER_DATA_DIR") or default_data_dir()
    raw.setdefault("queues", DEMO_QUEUES)
    raw.setdefault("agents", DEMO_AGENTS)
    try:
        loaded = SettingsSources.model_validate({**raw, "data_dir": str(data_dir)})
    except ValidationError as exc:
        raise _config_error(exc) from None
    settings = Settings(**dict(loaded))
    _check(settings)
    return _fill_secrets(settings)


def _read_file(file_path: Path) -> dict[str, Any]:
    if not file_path.is_file():
        raise ConfigError(f"{file_path}: settings file not found")
    try:
        return dict(TomlConfigSettingsSource(SettingsSources, toml_file=file_path).toml_data)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file_path}: not valid TOML: {exc}") from None


def _section_variables(env: Mapping[str, str]) -> dict[str, str]:
    """The ``CALLCENTER_<SECTION>__<KEY>`` variables; an unknown section stops the start."""
    found = {}
    for name, value in env.items():
        if not name.startswith("CALLCENTER_") or "__" not in name:
            continue
        section = name[len("CALLCENTER_"):].lower().partition("__")[0]
        if section not in SECTIONS:
            raise ConfigError(f"{name}: unknown section {section!r}")
        found[name] = value
    return found


def _config_error(error: ValidationError) -> ConfigError:
    """Pydantic's first error, worded as ``section.key: problem``."""
    problems = error.errors(include_url=False)
    first = problems[0]
    loc, kind, value = first["loc"], first["type"], first.get("input")
    where = _key_path(loc)
    if kind == "value_error":
        return ConfigError(f"{where}: {first['ctx']['error']}")
    if kind == "missing":
        parent = loc[:-1]
        missing = [str(p["loc"][-1]) for p in problems
                   if p["type"] == "missing" and p["loc"][:-1] == parent]
        return ConfigError(f"{_key_path(parent)}: missing {', '.join(missing)}")
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        if len(loc) == 1:
            return ConfigError(f"{where}: unknown section")
        schema = SECTIONS.get(str(loc[0])) or TABLE_LISTS[str(loc[0])]
        known = ", ".join(f.name for f in dataclasses.fields(schema))
        return ConfigError(f"{where}: unknown setting (known: {known})")
    if kind in ("tuple_type", "list_type") and len(loc) == 1 and loc[0] in TABLE_LISTS:
        return ConfigError(f"{where}: expected a list of [[{where}]] tables")
    if kind.startswith(("dataclass", "model", "dict")):
        return ConfigError(f"{where}: expected a table, got {value!r}")
    return ConfigError(f"{where}: {first['msg']}, got {value!r}")


def _key_path(loc: tuple[int | str, ...]) -> str:
    """("queues", 0, "tier_delays", 1) -> "queues[0].tier_delays[1]"."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path


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
    for name, low in SERVICE_LIMITS:
        value = getattr(s.service, name)
        if not low <= value <= 1_000_000:
            raise ConfigError(f"service.{name}: {value} is not between {low} and 1000000")
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
        if not ASTERISK_NAME_RE.fullmatch(getattr(s.asterisk, key)):
            raise ConfigError(
                f"asterisk.{key}: {getattr(s.asterisk, key)!r} must be lowercase letters, "
                "digits, '-' or '_' (max 32)"
            )
    if not EXTEN_RE.fullmatch(s.ivr.number):
        raise ConfigError(f"ivr.number: {s.ivr.number!r} is not a dialable extension")
    if not FLOW_NAME_RE.fullmatch(s.ivr.flow):
        raise ConfigError(f"ivr.flow: {s.ivr.flow!r} is not a flow name")
    if not s.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            "database.url: must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    _check_queues_and_agents(s)
    _check_outbound(s.outbound)
    _check_center(s)
    _check_recordings(s)


def _check_queues_and_agents(s: Settings) -> None:
    seen: set[str] = set()
    for i, q in enumerate(s.queues):
        where = f"queues[{i}]"
        if not QUEUE_NAME_RE.fullmatch(q.name):
            raise ConfigError(f"{where}.name: {q.name!r} must be lowercase letters and digits")
        if q.name in seen:
            raise ConfigError(f"{where}.name: queue {q.name!r} is defined twice")
        seen.add(q.name)
        if not 1 <= q.ring_timeout <= 300:
            raise ConfigError(f"{where}.ring_timeout: {q.ring_timeout} is not 1-300 seconds")
        if not 1 <= q.max_wait <= 86400:
            raise ConfigError(f"{where}.max_wait: {q.max_wait} is not 1-86400 seconds")
        if not ASTERISK_NAME_RE.fullmatch(q.moh_class):
            raise ConfigError(f"{where}.moh_class: {q.moh_class!r} is not a class name")
    agent_ids: set[str] = set()
    for i, a in enumerate(s.agents):
        where = f"agents[{i}]"
        if not AGENT_ID_RE.fullmatch(a.id):
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
    _check_reports(s)
    _check_points(s)


def _check_points(s: Settings) -> None:
    from callcenter.core.agent_figures import points_from_settings

    try:
        points_from_settings(s.reports.points_inbound_call, s.reports.points_outbound_call,
                             s.reports.points_transfer, s.reports.points_dispositions)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


MEMBERSHIP_RE = re.compile(r"^(?P<name>[a-z][a-z0-9_-]{0,31})(?::(?P<number>[0-9]))?$")
SKILL_RE = re.compile(r"^(?P<name>[a-z][a-z0-9_-]{0,39})(?::(?P<number>[0-9]{1,2}))?$")


def _check_reports(s: Settings) -> None:
    if not 1 <= s.reports.csat_satisfied_from <= 5:
        raise ConfigError("reports.csat_satisfied_from: give 1 to 5 (CSAT answers are 1-5)")
    for key in ("csat_questions", "nps_questions"):
        for i, question in enumerate(getattr(s.reports, key)):
            if not TOPIC_RE.fullmatch(question):  # the flow checker's rule for question ids
                raise ConfigError(f"reports.{key}[{i}]: {question[:40]!r} is not a question id")
    if set(s.reports.csat_questions) & set(s.reports.nps_questions):
        raise ConfigError("reports.nps_questions: a question cannot count for both CSAT and NPS")


def _check_acd(s: Settings) -> None:
    reasons = s.acd.pause_reasons
    if not 1 <= len(reasons) <= MAX_PAUSE_REASONS:
        raise ConfigError(f"acd.pause_reasons: give 1 to {MAX_PAUSE_REASONS} reasons (feature "
                          "code *52N picks one)")
    for i, reason in enumerate(reasons):
        if not PAUSE_REASON_RE.fullmatch(reason):
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


def _check_center(s: Settings) -> None:
    try:
        ZoneInfo(s.center.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"center.time_zone: {s.center.time_zone[:60]!r} is not a known time "
                          "zone (an IANA name such as 'UTC' or 'America/Sao_Paulo')") from None
    if not 0 <= s.center.alert_hysteresis_percent <= 50:
        raise ConfigError(f"center.alert_hysteresis_percent: "
                          f"{s.center.alert_hysteresis_percent} is not 0-50")
    if not 1 <= s.center.alert_min_calls <= 100_000:
        raise ConfigError(f"center.alert_min_calls: {s.center.alert_min_calls} is not "
                          "1-100000")
    for i, q in enumerate(s.queues):
        for key, high in (("short_abandon_seconds", 3600), ("alert_service_level_below", 100),
                          ("alert_abandon_rate_above", 100)):
            value = getattr(q, key)
            if not 0 <= value <= high:
                raise ConfigError(f"queues[{i}].{key}: {value} is not 0-{high}")


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


def _check_recordings(s: Settings) -> None:
    """Recording settings and policies: every policy applicable, covering one known queue or
    one campaign, none covered twice."""
    r = s.recordings
    if not 60 <= r.sweep_seconds <= 86_400:
        raise ConfigError(f"recordings.sweep_seconds: {r.sweep_seconds} is not between 60 "
                          "and 86400")
    if not 0 <= r.settle_seconds <= 60:
        raise ConfigError(f"recordings.settle_seconds: {r.settle_seconds} is not between 0 "
                          "and 60")
    if not BUILT_PROMPT_NAME_RE.fullmatch(r.announcement):
        raise ConfigError(f"recordings.announcement: {r.announcement!r} is not a prompt name")
    queues = {q.name for q in s.queues}
    covered: set[tuple[str, str]] = set()
    for i, rule in enumerate(s.recording_policies):
        where = f"recording_policies[{i}]"
        if bool(rule.queue) == bool(rule.campaign):
            raise ConfigError(f"{where}: name either a queue or a campaign")
        if rule.queue and rule.queue not in queues:
            raise ConfigError(f"{where}.queue: {rule.queue!r} is not a configured queue")
        if rule.campaign and not CAMPAIGN_NAME_RE.fullmatch(rule.campaign):
            raise ConfigError(f"{where}.campaign: {rule.campaign!r} is not a campaign name")
        key = ("queue", rule.queue) if rule.queue else ("campaign", rule.campaign)
        if key in covered:
            raise ConfigError(f"{where}: {key[0]} {key[1]!r} already has a policy")
        covered.add(key)
        modes = [m.value for m in RecordingMode]
        if rule.mode not in modes:
            raise ConfigError(f"{where}.mode: {rule.mode!r} is not one of {', '.join(modes)}")
        try:
            RecordingPolicy(RecordingMode(rule.mode), rule.share_percent, rule.announce,
                            rule.retention_days)
        except ValueError as exc:
            raise ConfigError(f"{where}{str(exc).removeprefix('policy')}") from None
