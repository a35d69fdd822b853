"""What the do-not-call and consent routes take and answer (see web/contract.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from callcenter.core.consent import ConsentEntry, ConsentKind, ConsentSource, DoNotCall
from callcenter.core.identifiers import CAMPAIGN_NAME_RE, E164_RE
from callcenter.features.campaigns.schemas import (
    REGION_RE,
    ColumnName,
    Encoding,
    FileQuery,
)
from callcenter.features.compliance.store import MAX_PROOF_CHARS, MAX_REASON_CHARS
from callcenter.web.contract import (
    Answer,
    Body,
    Query,
    Time,
    name_param,
    one_of,
    pattern_text,
    stored_text,
    whole_param,
)
from callcenter.web.params import iso

Number = pattern_text(E164_RE, "an E.164 number (+, then 8-15 digits)")
CampaignOrAll = pattern_text(CAMPAIGN_NAME_RE, "a campaign name", nullable=True,
                             description="the campaign; left out: every campaign")


class NewDoNotCall(Body):
    number: Number
    campaign: CampaignOrAll = None
    reason: stored_text(1, MAX_REASON_CHARS)


class DoNotCallQuery(Query):
    campaign: Annotated[name_param(CAMPAIGN_NAME_RE, "a campaign name"),
                        Field(description="this campaign's list; left out: the global list")
                        ] = None
    limit: Annotated[whole_param(1, 500), Field(description="page size")] = 100
    offset: Annotated[whole_param(0, 10**9), Field(description="rows to skip")] = 0


class LedgerQuery(Query):
    campaign: Annotated[name_param(CAMPAIGN_NAME_RE, "a campaign name"),
                        Field(description="this campaign's entries and those for every "
                                          "campaign; left out: the whole ledger")] = None


class NumberQuery(Query):
    number: Annotated[name_param(E164_RE, "an E.164 number (+, then 8-15 digits)"),
                      Field(description="the number (E.164; + written %2B in a URL)")] = None


class NewConsent(Body):
    number: Number
    campaign: CampaignOrAll = None
    kind: one_of(ConsentKind, description="granted: may be called; revoked: never again "
                                          "until a new grant")
    source: one_of(ConsentSource) = ConsentSource.API.value
    proof: Annotated[stored_text(1, MAX_PROOF_CHARS),
                     Field(description="the text or reference that proves it")]


class DoNotCallAnswer(Answer):
    number: str
    campaign: str | None = Field(description="null: the global list")
    added_at: Time
    source: str
    reason: str
    added_by: str | None

    @classmethod
    def of(cls, entry: DoNotCall) -> DoNotCallAnswer:
        return cls(number=entry.number, campaign=entry.campaign, added_at=iso(entry.added_at),
                   source=entry.source, reason=entry.reason, added_by=entry.added_by)


class DoNotCallList(Answer):
    campaign: str | None
    limit: int
    offset: int
    entries: list[DoNotCallAnswer]


class ConsentAnswer(Answer):
    id: int
    number: str
    campaign: str | None = Field(description="null: every campaign")
    kind: one_of(ConsentKind)
    at: Time
    source: one_of(ConsentSource)
    proof: str
    recorded_by: str | None

    @classmethod
    def of(cls, entry: ConsentEntry) -> ConsentAnswer:
        assert entry.id is not None
        return cls(id=entry.id, number=entry.number, campaign=entry.campaign,
                   kind=entry.kind.value, at=iso(entry.at), source=entry.source.value,
                   proof=entry.proof, recorded_by=entry.recorded_by)


class ConsentHistory(Answer):
    """Oldest first: the audit trail of one number."""

    number: str
    entries: list[ConsentAnswer]


# ----------------------------------------------------------------------- uploads

Campaign = Annotated[name_param(CAMPAIGN_NAME_RE, "a campaign name"),
                     Field(description="this campaign's; left out: every campaign")]
RegionParam = Annotated[name_param(REGION_RE, "a two-letter country (BR, US)"), Field(
    description="the country of numbers written without +; left out: every number must "
                "be E.164")]
FileEncoding = Annotated[Encoding, Field(
    description="the file's encoding when it is not UTF-8 (or UTF-16 with its mark)")]


class DoNotCallUploadQuery(FileQuery):
    campaign: Campaign = None
    number: Annotated[ColumnName, Field(description="the column of the numbers")]
    reason: Annotated[stored_text(1, MAX_REASON_CHARS), Field(
        description="stored with every number (e.g. 'national registry 2026-12')")]
    reason_column: Annotated[ColumnName | None, Field(
        description="a column whose text, when not empty, is the row's reason instead")
    ] = None
    region: RegionParam = None
    encoding: FileEncoding = None


class ConsentUploadQuery(FileQuery):
    campaign: Campaign = None
    number: Annotated[ColumnName, Field(description="the column of the numbers")]
    proof: Annotated[ColumnName, Field(
        description="the column of each entry's proof (text or reference)")]
    kind: Annotated[ColumnName | None, Field(
        description="a column of granted/revoked; left out: every row is granted")] = None
    at: Annotated[ColumnName | None, Field(
        description="a column of ISO 8601 times the consent was given (not in the "
                    "future); left out or empty: now")] = None
    source: Annotated[one_of(ConsentSource), Field(
        description="where the entries came from")] = ConsentSource.IMPORT.value
    region: RegionParam = None
    encoding: FileEncoding = None
