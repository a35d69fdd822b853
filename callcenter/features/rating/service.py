"""Rating's parts, made once by the composition root (app.py) and the command line."""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.asterisk.confgen import DEMO_TRUNK_ENDPOINT, TRUNK_ENDPOINT
from callcenter.core.clock import Clock
from callcenter.core.trunk_legs import Trunks
from callcenter.features.rating.store import CallPricer, CostQueries, TariffStore

# The generated PJSIP configuration's trunks: the carrier's endpoint (inbound calls from it,
# every outbound call through it) and the one unidentified callers land on (the demo's
# SIP callers, and a carrier whose addresses are not in outbound.trunk_match).
TRUNKS = Trunks(inbound=frozenset({TRUNK_ENDPOINT, DEMO_TRUNK_ENDPOINT}), outbound=TRUNK_ENDPOINT)


@dataclass(frozen=True)
class RatingServices:
    tariffs: TariffStore
    pricer: CallPricer  # the calls' RecordFollower
    costs: CostQueries
    # The center's zone ([center] time_zone): the days of costs and re-rating, unless a
    # request names another.
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))


def rating_services(sessions: async_sessionmaker[AsyncSession], clock: Clock,
                    trunks: Trunks = TRUNKS, zone: ZoneInfo | None = None) -> RatingServices:
    tariffs = TariffStore(sessions, clock)
    return RatingServices(tariffs, CallPricer(sessions, tariffs, trunks), CostQueries(sessions),
                          zone or ZoneInfo("UTC"))
