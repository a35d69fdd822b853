"""What the campaigns API takes and answers (see web/contract.py): a campaign's settings, its
state, and the change of state a manager asks for."""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, model_validator
from pydantic.json_schema import WithJsonSchema

from callcenter.core.call_lists import ColumnMapping
from callcenter.core.campaigns import (
    DEFAULT_DISPOSITIONS,
    DEFAULT_RETRY_MINUTES,
    DEFAULT_SAFE_HARBOR_PROMPT,
    MAX_ABANDON_CAP_PERCENT,
    MIN_RING_SECONDS,
    Campaign,
    CampaignMode,
    CampaignState,
    Disposition,
    DispositionKind,
    MachineAction,
    Outcome,
)
from callcenter.core.dial_rules import DEFAULT_MAX_ATTEMPTS, DEFAULT_RING_TIME
from callcenter.core.hours import ScheduleError, parse_schedule
from callcenter.core.identifiers import (
    CAMPAIGN_NAME_RE,
    E164_RE,
    PROMPT_NAME_RE,
    QUEUE_NAME_RE,
)
from callcenter.features.campaigns.imports import (
    IMPORT_ID_RE,
    MAX_REJECTS_LISTED,
    ImportJob,
    ImportKind,
    ImportState,
)
from callcenter.features.campaigns.list_files import SINGLE_BYTE_ENCODINGS
from callcenter.features.campaigns.lists import MAX_LIST_NAME_CHARS, StoredList
from callcenter.web.contract import (
    Answer,
    Body,
    Flag,
    PathArgs,
    Query,
    Text,
    Time,
    fail,
    one_of,
    pattern_text,
    refuse_as_named,
    refuse_nul,
    shown,
    stored_text,
    whole_match,
    whole_param,
)
from callcenter.web.params import iso, json_kind

MAX_ATTEMPTS = 20
MAX_RETRY_MINUTES = 30 * 24 * 60  # a month
MAX_RING_SECONDS = 120
MAX_SCRIPT_CHARS = 20_000
MAX_DISPOSITIONS = 50
MAX_REASON_CHARS = 200
REGION_RE = re.compile(r"^[A-Z]{2}$")
DISPOSITION_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
CAMPAIGN_NAME_WORDS = "a campaign name (a lowercase letter, then up to 31 lowercase letters, " \
                      "digits, '-' or '_')"
REQUESTED_STATES = (CampaignState.RUNNING, CampaignState.PAUSED, CampaignState.STOPPED)


def whole_number(low: int, high: int) -> BeforeValidator:
    def validate(value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            fail(f"expected a whole number from {low} to {high}, got {shown(value)}")
        return value
    return BeforeValidator(validate)


def _hours(value: object) -> object:
    """Weekly hours as flows write them; checked by the same parser (core/hours.py)."""
    if not isinstance(value, dict) or not value:
        fail('expected an object such as {"mon-fri": ["09:00-20:00"]}, '
             f"got {json_kind(value)}")
    try:
        parse_schedule({"timezone": "UTC", "weekly": value}, where="hours")
    except ScheduleError as exc:
        fail("; ".join(p.message if p.path == "hours.weekly" else
                       f"{p.path.removeprefix('hours.weekly.')}: {p.message}"
                       for p in exc.problems))
    return value


def _retry_minutes(value: object) -> object:
    if not isinstance(value, dict):
        fail(f"expected an object of outcome -> minutes, got {json_kind(value)}")
    for outcome, minutes in value.items():
        if outcome not in {o.value for o in Outcome}:
            fail(f"{shown(outcome)} is not one of {', '.join(o.value for o in Outcome)}")
        if isinstance(minutes, bool) or not isinstance(minutes, int) or \
                not 1 <= minutes <= MAX_RETRY_MINUTES:
            fail(f"expected a whole number of minutes from 1 to {MAX_RETRY_MINUTES}, "
                 f"got {shown(minutes)}", where=f"retry_minutes.{outcome}")
    return {**{o.value: m for o, m in DEFAULT_RETRY_MINUTES.items()}, **value}


def _abandon_cap(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not 0 < value <= MAX_ABANDON_CAP_PERCENT:
        fail(f"expected a percentage above 0 and at most {MAX_ABANDON_CAP_PERCENT:g} "
             f"(the legal cap), got {shown(value)}")
    return float(value)


def _dispositions(value: object) -> object:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_DISPOSITIONS:
        fail(f"expected a list of 1 to {MAX_DISPOSITIONS} dispositions, got {json_kind(value)}")
    kinds = ", ".join(k.value for k in DispositionKind)
    seen: set[str] = set()
    for i, item in enumerate(value):
        where = f"dispositions[{i}]"
        if not isinstance(item, dict) or set(item) != {"code", "label", "kind"}:
            fail('expected {"code": ..., "label": ..., "kind": ...}, '
                 f"got {json_kind(item)}", where=where)
        code, label, kind = item["code"], item["label"], item["kind"]
        if not isinstance(code, str) or not DISPOSITION_CODE_RE.fullmatch(code):
            fail(f"{shown(code)} is not a disposition code (a lowercase letter, then up to 31 "
                 "lowercase letters, digits or '_')", where=f"{where}.code")
        if code in seen:
            fail(f"{code!r} is listed twice", where=f"{where}.code")
        seen.add(code)
        if not isinstance(label, str) or not 1 <= len(label) <= 80:
            fail(f"expected text of 1 to 80 characters, got {shown(label)}",
                 where=f"{where}.label")
        refuse_nul(label, where=f"{where}.label")
        if kind not in {k.value for k in DispositionKind}:
            fail(f"{shown(kind)} is not one of {kinds}", where=f"{where}.kind")
    return value


HOURS_SCHEMA = {"type": "object", "minProperties": 1,
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                "description": "weekly calling hours in the callee's own time, as flows write "
                               "them: weekday or range -> list of 'HH:MM-HH:MM'"}
RETRY_SCHEMA = {"type": "object", "propertyNames": {"enum": [o.value for o in Outcome]},
                "additionalProperties": {"type": "integer", "minimum": 1,
                                         "maximum": MAX_RETRY_MINUTES},
                "description": "minutes before a number is dialled again after each outcome "
                               "(those not given keep their defaults)"}
DISPOSITIONS_SCHEMA = {"type": "array", "minItems": 1, "maxItems": MAX_DISPOSITIONS,
                       "items": {"type": "object", "additionalProperties": False,
                                 "required": ["code", "label", "kind"],
                                 "properties": {
                                     "code": whole_match(DISPOSITION_CODE_RE),
                                     "label": {"type": "string", "minLength": 1,
                                               "maxLength": 80},
                                     "kind": {"enum": [k.value for k in DispositionKind]}}}}

Hours = Annotated[dict[str, list[str]], BeforeValidator(_hours), WithJsonSchema(HOURS_SCHEMA)]
RetryMinutes = Annotated[dict[str, int], BeforeValidator(_retry_minutes),
                         WithJsonSchema(RETRY_SCHEMA)]
Attempts = Annotated[int, whole_number(1, MAX_ATTEMPTS),
                     WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPTS})]
RingSeconds = Annotated[int, whole_number(MIN_RING_SECONDS, MAX_RING_SECONDS), WithJsonSchema(
    {"type": "integer", "minimum": MIN_RING_SECONDS, "maximum": MAX_RING_SECONDS,
     "description": "how long a number rings before the dialer gives up (at least 15 s, "
                    "about 4 rings)"})]
AbandonCap = Annotated[float, BeforeValidator(_abandon_cap), WithJsonSchema(
    {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_ABANDON_CAP_PERCENT,
     "description": "abandoned live answers / live answers, in %, over the campaign's day "
                    "and a rolling 30 days"})]
Dispositions = Annotated[list[dict[str, str]], BeforeValidator(_dispositions),
                         WithJsonSchema(DISPOSITIONS_SCHEMA)]
Script = stored_text(0, MAX_SCRIPT_CHARS)
Mode = one_of(CampaignMode)
Machine = one_of(MachineAction, description="what a call an answering machine took gets")
QueueName = pattern_text(QUEUE_NAME_RE, "a queue name",
                         description="the queue whose agents take the campaign's calls")
CallerId = pattern_text(E164_RE, "an E.164 number (+, then 8-15 digits)",
                        description="sent on every call")
Region = pattern_text(REGION_RE, "a two-letter country code such as BR or US",
                      description="for numbers written without their +country code")
Prompt = pattern_text(PROMPT_NAME_RE, "a prompt name (letters, digits, '-' and '_')",
                      description="what a live answer hears when no agent is free within 2 s")

# ----------------------------------------------------------------------- what is sent


class CampaignPath(PathArgs):
    name: Annotated[pattern_text(CAMPAIGN_NAME_RE, CAMPAIGN_NAME_WORDS),
                    Field(description="the campaign's name")]


class NewCampaign(Body):
    """A new campaign (state ``created``); only name, mode, queue, caller_id,
    default_region and hours are required."""

    name: pattern_text(CAMPAIGN_NAME_RE, CAMPAIGN_NAME_WORDS)
    mode: Mode
    queue: QueueName
    caller_id: CallerId
    default_region: Region
    hours: Hours
    skip_holidays: Flag = True
    max_attempts: Attempts = DEFAULT_MAX_ATTEMPTS
    retry_minutes: RetryMinutes = Field(
        default_factory=lambda: {o.value: m for o, m in DEFAULT_RETRY_MINUTES.items()})
    ring_seconds: RingSeconds = int(DEFAULT_RING_TIME)
    amd: Annotated[Flag, Field(description="answering machine detection (Asterisk AMD)")] = False
    machine_action: Machine = MachineAction.HANG_UP.value
    abandon_cap_percent: AbandonCap = MAX_ABANDON_CAP_PERCENT
    safe_harbor_prompt: Prompt = DEFAULT_SAFE_HARBOR_PROMPT
    requires_consent: Annotated[Flag, Field(
        description="dial only numbers with a recorded consent")] = False
    ahead_of_inbound: Annotated[Flag, Field(
        description="the campaign's answers go ahead of inbound callers waiting in its "
                    "queue (by default inbound callers keep priority)")] = False
    script: Script = ""
    dispositions: Dispositions = Field(default_factory=lambda: [
        {"code": d.name, "label": d.label, "kind": d.kind.value} for d in DEFAULT_DISPOSITIONS])

    def settings(self) -> dict[str, Any]:
        """The campaign's settings as the core's values."""
        return _settings(self, type(self).model_fields)


class CampaignChanges(Body):
    """Only the settings given change (a campaign's name does not); while it is created or
    paused."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    mode: Mode | None = None
    queue: QueueName | None = None
    caller_id: CallerId | None = None
    default_region: Region | None = None
    hours: Hours | None = None
    skip_holidays: Flag | None = None
    max_attempts: Attempts | None = None
    retry_minutes: RetryMinutes | None = None
    ring_seconds: RingSeconds | None = None
    amd: Flag | None = None
    machine_action: Machine | None = None
    abandon_cap_percent: AbandonCap | None = None
    safe_harbor_prompt: Prompt | None = None
    requires_consent: Flag | None = None
    ahead_of_inbound: Flag | None = None
    script: Script | None = None
    dispositions: Dispositions | None = None

    @model_validator(mode="before")
    @classmethod
    def _something(cls, sent: object) -> object:
        if isinstance(sent, Mapping) and not sent:
            fail(f"nothing to change; give one of {', '.join(cls.model_fields)}")
        return sent

    def settings(self) -> dict[str, Any]:
        return _settings(self, self.model_fields_set)


class StateRequest(Body):
    state: one_of([s.value for s in REQUESTED_STATES],
                  description="running starts or resumes dialing; paused places no new calls "
                              "(calls in progress go on); stopped is for good")
    reason: Annotated[Text | None, WithJsonSchema(
        {"type": "string", "maxLength": MAX_REASON_CHARS})] = None

    @model_validator(mode="after")
    def _short_reason(self) -> StateRequest:
        if self.reason is not None:
            if len(self.reason) > MAX_REASON_CHARS:
                fail(f"at most {MAX_REASON_CHARS} characters", where="reason")
            refuse_nul(self.reason, where="reason")
        return self


def _settings(body: Body, names: object) -> dict[str, Any]:
    converters = {
        "mode": CampaignMode, "machine_action": MachineAction,
        "retry_minutes": lambda v: {Outcome(k): m for k, m in v.items()},
        "dispositions": lambda v: tuple(Disposition(d["code"], DispositionKind(d["kind"]),
                                                    d["label"]) for d in v),
    }
    return {name: converters.get(name, lambda v: v)(getattr(body, name))
            for name in names if name != "name"}  # type: ignore[attr-defined]


# ----------------------------------------------------------------------- what is answered


class DispositionAnswer(Answer):
    code: str
    label: str
    kind: one_of([k.value for k in DispositionKind])


class CampaignAnswer(Answer):
    """A campaign's settings and state."""

    name: Annotated[str, WithJsonSchema(whole_match(CAMPAIGN_NAME_RE))]
    state: one_of(CampaignState)
    state_reason: str | None = Field(description="who or what changed the state last, why")
    mode: one_of(CampaignMode)
    queue: str
    caller_id: str
    default_region: str
    hours: dict[str, list[str]]
    skip_holidays: bool
    max_attempts: int = Field(ge=1)
    retry_minutes: dict[str, int]
    ring_seconds: int = Field(ge=MIN_RING_SECONDS)
    amd: bool
    machine_action: one_of(MachineAction)
    abandon_cap_percent: float
    safe_harbor_prompt: str
    requires_consent: bool
    ahead_of_inbound: bool
    script: str
    dispositions: list[DispositionAnswer]
    created_by: str | None
    created_at: Time
    updated_at: Time

    @classmethod
    def of(cls, campaign: Campaign) -> CampaignAnswer:
        return cls(
            name=campaign.name, state=campaign.state.value, state_reason=campaign.state_reason,
            mode=campaign.mode.value, queue=campaign.queue, caller_id=campaign.caller_id,
            default_region=campaign.default_region, hours=dict(campaign.hours),
            skip_holidays=campaign.skip_holidays, max_attempts=campaign.max_attempts,
            retry_minutes={Outcome(k).value: v for k, v in campaign.retry_minutes.items()},
            ring_seconds=campaign.ring_seconds, amd=campaign.amd,
            machine_action=campaign.machine_action.value,
            abandon_cap_percent=campaign.abandon_cap_percent,
            safe_harbor_prompt=campaign.safe_harbor_prompt,
            requires_consent=campaign.requires_consent,
            ahead_of_inbound=campaign.ahead_of_inbound, script=campaign.script,
            dispositions=[DispositionAnswer(code=d.name, label=d.label, kind=d.kind.value)
                          for d in campaign.dispositions],
            created_by=campaign.created_by, created_at=iso(campaign.created_at),
            updated_at=iso(campaign.updated_at))


class CampaignList(Answer):
    campaigns: list[CampaignAnswer]


# ----------------------------------------------------------------------- call lists

MAX_COLUMN_NAME_CHARS = 200
ENCODING_NAMES = ("utf-8", "cp1252", "latin-1", "iso8859-15", "mac-roman")
ColumnName = stored_text(1, MAX_COLUMN_NAME_CHARS)


def _encoding(value: object) -> object:
    if value is None or value == "":
        return None
    try:
        codec = codecs.lookup(str(value)).name.replace("-", "_")
    except LookupError:
        codec = ""
    if codec not in SINGLE_BYTE_ENCODINGS | {"utf_8"}:
        fail(f"{str(value)[:40]!r} is not read; use one of {', '.join(ENCODING_NAMES)} "
             "(UTF-16 files are known by their byte-order mark)")
    return value


Encoding = Annotated[str | None, BeforeValidator(_encoding),
                     WithJsonSchema({"type": "string", "enum": list(ENCODING_NAMES)})]


class FileQuery(Query):
    """What an upload's query says about its file; a required parameter left out is named."""

    @model_validator(mode="before")
    @classmethod
    def _required(cls, sent: object) -> object:
        if isinstance(sent, Mapping):
            for name, declared in cls.model_fields.items():
                if declared.is_required() and name not in sent:
                    fail("is required", where=name)
        return sent


class ColumnsQuery(FileQuery):
    """The column mapping, by the header's names (any case, surrounding spaces ignored)."""

    phone: Annotated[ColumnName, Field(description="the column of the phone number")]
    name: Annotated[ColumnName | None, Field(
        description="the column of the callee's name")] = None
    time_zone: Annotated[ColumnName | None, Field(
        description="a column of IANA time zones overriding the number's")] = None
    encoding: Annotated[Encoding, Field(
        description="a CSV file's encoding when it is not UTF-8 (or UTF-16 with its "
                    "byte-order mark)")] = None
    sheet: Annotated[stored_text(1, 200) | None, Field(
        description="an XLSX file's sheet; left out: the active one")] = None

    @model_validator(mode="after")
    def _mapping_once(self) -> ColumnsQuery:
        try:
            self.mapping()
        except ValueError as exc:
            refuse_as_named(str(exc))
        return self

    def mapping(self) -> ColumnMapping:
        return ColumnMapping(phone=self.phone, name=self.name, time_zone=self.time_zone)


class ListUploadQuery(ColumnsQuery):
    list: Annotated[stored_text(1, MAX_LIST_NAME_CHARS), Field(
        description="the new list's name, once per campaign")]


class ListPath(PathArgs):
    name: Annotated[pattern_text(CAMPAIGN_NAME_RE, CAMPAIGN_NAME_WORDS),
                    Field(description="the campaign's name")]
    list_id: Annotated[whole_param(1, 2**62), Field(description="the list's id")]


class ImportPath(PathArgs):
    import_id: Annotated[pattern_text(IMPORT_ID_RE, "an import id (16 hex digits)"),
                         Field(description="the id the upload answered")]


class ProblemsQuery(Query):
    limit: Annotated[whole_param(1, 500), Field(description="rows not taken per page")] = 100
    offset: Annotated[whole_param(0, 10**9), Field(description="rows not taken to skip")] = 0


class ListChange(Body):
    active: Annotated[Flag, Field(description="false: the dialer skips the list")]


class CallListAnswer(Answer):
    """A call list and what its uploads counted (added up over its uploads)."""

    id: int
    campaign: str
    name: str
    active: bool = Field(description="a disabled list is not dialled")
    uploads: int = Field(description="1, plus the uploads appended")
    rows_read: int
    accepted: int = Field(description="numbers to call")
    rejected: int
    duplicates: int
    blank_rows: int
    ambiguous_time_zones: int
    created_by: str | None
    created_at: Time
    recycled_at: Time | None = Field(
        description="attempts placed before this no longer count towards max attempts")

    @classmethod
    def of(cls, stored: StoredList) -> CallListAnswer:
        s = stored.summary
        return cls(id=stored.id, campaign=stored.campaign, name=stored.name,
                   active=stored.active, uploads=stored.uploads, rows_read=s.rows_read,
                   accepted=s.accepted, rejected=s.rejected, duplicates=s.duplicates,
                   blank_rows=s.blank_rows, ambiguous_time_zones=s.ambiguous_time_zones,
                   created_by=stored.created_by, created_at=iso(stored.created_at),
                   recycled_at=iso(stored.recycled_at))


class CallListsAnswer(Answer):
    campaign: str
    lists: list[CallListAnswer]


class ListProblem(Answer):
    """A row not taken: rejected (the reason) or a duplicate (the number, the line kept)."""

    upload: int = Field(description="1: the list's first upload; then each append")
    line: int = Field(description="the line in that upload's file (the header is line 1)")
    reason: str
    number: str | None
    first_line: int | None


class CallListDetail(Answer):
    call_list: CallListAnswer
    limit: int
    offset: int
    problems: list[ListProblem] = Field(description="rows not taken, by upload and line")


class UploadCounts(Answer):
    """What one upload's rows became."""

    rows_read: int
    accepted: int
    rejected: int
    duplicates: int
    blank_rows: int


class RowReject(Answer):
    line: int
    reason: str


class ImportAnswer(Answer):
    """An upload's import: its state and progress, and what it stored when done."""

    id: str
    kind: one_of([k.value for k in ImportKind])
    campaign: str | None
    target: str = Field(description="the list's name, or what the upload fills")
    state: one_of([s.value for s in ImportState],
                  description="queued, reading, then done, failed or cancelled")
    rows_done: int = Field(description="rows read so far")
    rows_total: int | None = Field(
        description="rows expected: for CSV the line breaks a first pass counted (an upper "
                    "bound: quoted cells may hold line breaks); for XLSX the sheet's recorded "
                    "size; null when unknown")
    size_bytes: int
    created_by: str
    created_at: Time
    finished_at: Time | None
    error: str | None = Field(description="failed: what is wrong and where")
    error_line: int | None = Field(description="failed: the line of the file at fault")
    call_list: CallListAnswer | None = Field(description="done (call lists): the list now")
    counts: UploadCounts | None = Field(description="done: what this upload's rows became")
    rejects: list[RowReject] = Field(
        description=f"done (do-not-call, consents): rows not taken, the first "
                    f"{MAX_REJECTS_LISTED}; a call list keeps its own (GET the list)")

    @classmethod
    def of(cls, job: ImportJob) -> ImportAnswer:
        result = job.result
        return cls(
            id=job.id, kind=job.kind.value, campaign=job.campaign, target=job.target,
            state=job.state.value, rows_done=job.rows_done, rows_total=job.rows_total,
            size_bytes=job.size_bytes, created_by=job.created_by,
            created_at=iso(job.created_at), finished_at=iso(job.finished_at),
            error=job.error, error_line=job.error_line,
            call_list=CallListAnswer.of(result["list"]) if "list" in result else None,
            counts=UploadCounts(**{name: getattr(result["counts"], name)
                                   for name in UploadCounts.model_fields})
            if "counts" in result else None,
            rejects=[RowReject(line=line, reason=reason)
                     for line, reason in result.get("rejects", ())])
