"""`callcenter reports rebuild`: the aggregates recounted from the stored records."""

from __future__ import annotations

from datetime import UTC, datetime

from callcenter.config import Settings
from callcenter.features.calls.store import CallRepository
from callcenter.features.reports.agent_store import AgentAggregates, productivity_points
from callcenter.features.reports.aggregates import ReportAggregates, report_rules
from callcenter.features.reports.campaign_store import CampaignAggregates
from callcenter.features.reports.wrap_ups import QueueWrapUps
from callcenter.store import create_engine, session_factory, upgrade


def parse_time(name: str, text: str | None) -> float | None:
    """An ISO 8601 time (no zone: UTC) as POSIX seconds; ValueError naming ``name``."""
    if text is None or text == "":
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--{name}: {text[:40]!r} is not an ISO 8601 time "
                         "(e.g. 2026-11-28T00:00:00Z)") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


async def rebuild_reports(settings: Settings, *, since: str | None = None,
                          until: str | None = None) -> int:
    """Recount; how many records were read. The schema is brought up to date first."""
    start, end = parse_time("since", since), parse_time("until", until)
    if start is not None and end is not None and start >= end:
        raise ValueError("--since must be before --until")
    await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        sessions = session_factory(engine)
        aggregates = ReportAggregates(sessions, report_rules(settings))
        read = await aggregates.rebuild(CallRepository(sessions), since=start, until=end)
        # The queues' wrap-up, whole whatever the range: it may have been emptied with them.
        await QueueWrapUps(sessions, day_zone=aggregates.rules.day_zone).rebuild()
        # The agent and campaign aggregates are rebuilt whole, whatever the range: an
        # agent's time runs from one logged change to the next, across any boundary.
        agents = AgentAggregates(sessions, productivity_points(settings))
        await agents.rebuild()
        await CampaignAggregates(sessions, agents).rebuild()
        return read
    finally:
        await engine.dispose()
