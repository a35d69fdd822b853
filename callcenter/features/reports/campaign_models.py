"""The campaign aggregates: named counters per campaign and 15-minute UTC bucket
(core/campaign_figures.py says which), kept up to date as the dialer's attempts are written
(features/campaigns/attempts.py) and rebuildable from ``campaign_attempts``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.models import Base, UtcDateTime


class CampaignCountRow(Base):
    __tablename__ = "campaign_counts"

    campaign: Mapped[str] = mapped_column(String, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    counter: Mapped[str] = mapped_column(String, primary_key=True)  # "placed", "contact"...
    count: Mapped[int] = mapped_column(BigInteger)
