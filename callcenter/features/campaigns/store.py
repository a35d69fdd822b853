"""Outbound campaigns in and out of the database (``campaigns``), as ``core.campaigns.Campaign``.

A state change is one conditional UPDATE on the state read, so two managers (or a manager and
the dialer pausing the campaign itself) racing cannot both make one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.campaigns import (
    Campaign,
    CampaignMode,
    CampaignState,
    Disposition,
    DispositionKind,
    MachineAction,
    Outcome,
    check_editable,
    next_state,
)
from callcenter.core.clock import Clock, SystemClock, to_datetime
from callcenter.core.identifiers import check_campaign_name
from callcenter.features.campaigns.models import CampaignRow
from callcenter.store.values import enum_value, required_text, text_value

# What a change may set; name, state and the stamps are the store's.
SETTINGS = tuple(f.name for f in dataclasses.fields(Campaign)
                 if f.name not in {"name", "state", "state_reason", "created_by",
                                   "created_at", "updated_at", "id"})


class CampaignNotFound(LookupError):
    """No campaign has the name asked for."""


class CampaignExists(ValueError):
    """A campaign of that name exists already."""


class CampaignRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 clock: Clock | None = None) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()

    async def add(self, campaign: Campaign) -> Campaign:
        """Store a new campaign (state ``created``); ``CampaignExists`` if the name is taken."""
        now = self._clock.now()
        new = dataclasses.replace(campaign, state=CampaignState.CREATED, state_reason=None,
                                  created_at=now, updated_at=now, id=None)
        values = _values(new)
        try:
            async with self._sessions.begin() as session:
                row_id = (await session.execute(
                    insert(CampaignRow).values(values).returning(CampaignRow.id))).scalar_one()
        except IntegrityError:
            raise CampaignExists(f"campaign {campaign.name!r} exists already") from None
        return dataclasses.replace(new, id=row_id)

    async def get(self, name: str) -> Campaign:
        async with self._sessions() as session:
            row = await session.scalar(select(CampaignRow).where(
                CampaignRow.name == check_campaign_name("name", name)))
        if row is None:
            raise CampaignNotFound(f"campaign {name!r}: no such campaign")
        return _campaign(row)

    async def list(self) -> list[Campaign]:
        async with self._sessions() as session:
            rows = await session.scalars(select(CampaignRow).order_by(CampaignRow.name))
            return [_campaign(row) for row in rows]

    async def change(self, name: str, changes: dict[str, Any]) -> Campaign:
        """Set the settings given (``SETTINGS`` names), while the campaign is created or
        paused; ``CampaignStateError`` otherwise (nothing stored)."""
        unknown = set(changes) - set(SETTINGS)
        if unknown:
            raise ValueError(f"not a campaign setting: {', '.join(sorted(unknown))}")
        current = await self.get(name)
        check_editable(name, current.state)
        changed = dataclasses.replace(current, **changes, updated_at=self._clock.now())
        values = {key: value for key, value in _values(changed).items()
                  if key in changes or key == "updated_at"}
        await self._update_in_state(current, values)
        return changed

    async def set_state(self, name: str, wanted: CampaignState,
                        reason: str | None = None) -> Campaign:
        """Move the campaign to ``wanted`` if its state allows it (core/campaigns.py), with
        the reason (who or what asked); ``CampaignStateError`` otherwise."""
        current = await self.get(name)
        state = next_state(name, current.state, wanted)
        changed = dataclasses.replace(current, state=state, state_reason=reason,
                                      updated_at=self._clock.now())
        await self._update_in_state(current, {
            "state": state.value, "state_reason": text_value("reason", reason),
            "updated_at": to_datetime(changed.updated_at)})
        return changed

    async def _update_in_state(self, current: Campaign, values: dict[str, Any]) -> None:
        """Write ``values`` if the campaign is still in the state it was read in."""
        statement = (update(CampaignRow)
                     .where(CampaignRow.name == current.name,
                            CampaignRow.state == current.state.value)
                     .values(values)
                     .execution_options(synchronize_session=False))
        async with self._sessions.begin() as session:
            if (await session.execute(statement)).rowcount != 1:
                raise ValueError(f"campaign {current.name!r} changed meanwhile; read it again")


def _values(campaign: Campaign) -> dict[str, Any]:
    """Column values, after checking what the database will hold."""
    where = f"campaign {campaign.name!r}"
    return {
        "name": check_campaign_name("name", campaign.name),
        "mode": enum_value(f"{where}: mode", CampaignMode, campaign.mode),
        "queue": required_text(f"{where}: queue", campaign.queue),
        "caller_id": required_text(f"{where}: caller_id", campaign.caller_id),
        "default_region": required_text(f"{where}: default_region", campaign.default_region),
        "hours": {day: list(ranges) for day, ranges in campaign.hours.items()},
        "skip_holidays": bool(campaign.skip_holidays),
        "max_attempts": int(campaign.max_attempts),
        "retry_minutes": {Outcome(k).value: int(v)
                          for k, v in campaign.retry_minutes.items()},
        "ring_seconds": int(campaign.ring_seconds),
        "amd": bool(campaign.amd),
        "machine_action": enum_value(f"{where}: machine_action", MachineAction,
                                     campaign.machine_action),
        "abandon_cap_percent": float(campaign.abandon_cap_percent),
        "safe_harbor_prompt": required_text(f"{where}: safe_harbor_prompt",
                                            campaign.safe_harbor_prompt),
        "requires_consent": bool(campaign.requires_consent),
        "ahead_of_inbound": bool(campaign.ahead_of_inbound),
        "script": text_value(f"{where}: script", campaign.script) or "",
        "dispositions": [{"code": d.name, "label": d.label, "kind": DispositionKind(d.kind).value}
                         for d in campaign.dispositions],
        "state": enum_value(f"{where}: state", CampaignState, campaign.state),
        "state_reason": text_value(f"{where}: state_reason", campaign.state_reason),
        "created_by": text_value(f"{where}: created_by", campaign.created_by),
        "created_at": to_datetime(campaign.created_at),
        "updated_at": to_datetime(campaign.updated_at),
    }


def _campaign(row: CampaignRow) -> Campaign:
    return Campaign(
        id=row.id, name=row.name, mode=CampaignMode(row.mode), queue=row.queue,
        caller_id=row.caller_id, default_region=row.default_region,
        hours={day: list(ranges) for day, ranges in row.hours.items()},
        skip_holidays=row.skip_holidays, max_attempts=row.max_attempts,
        retry_minutes={Outcome(k): int(v) for k, v in row.retry_minutes.items()},
        ring_seconds=row.ring_seconds, amd=row.amd,
        machine_action=MachineAction(row.machine_action),
        abandon_cap_percent=row.abandon_cap_percent,
        safe_harbor_prompt=row.safe_harbor_prompt, requires_consent=row.requires_consent,
        ahead_of_inbound=row.ahead_of_inbound, script=row.script,
        dispositions=tuple(Disposition(d["code"], DispositionKind(d["kind"]), d["label"])
                           for d in row.dispositions),
        state=CampaignState(row.state), state_reason=row.state_reason,
        created_by=row.created_by, created_at=row.created_at.timestamp(),
        updated_at=row.updated_at.timestamp())
