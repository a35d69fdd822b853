"""``callcenter tariffs import FILE``, ``callcenter tariffs list`` and ``callcenter rate``:
the same store calls the API makes, with text for a terminal."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from callcenter.config import Settings
from callcenter.core.clock import SystemClock
from callcenter.core.rating import TariffError, amount_text
from callcenter.core.report_periods import PeriodError, time_zone
from callcenter.features.rating.service import rating_services
from callcenter.features.rating.store import Rerating
from callcenter.store.db import create_engine, session_factory, upgrade

MAX_FILE_BYTES = 64 * 1024 * 1024  # the command line trusts its user more than the web


@dataclass(frozen=True)
class Answer:
    exit_code: int
    text: str


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a container)
        return "cli"


async def import_tariff(settings: Settings, path: Path, name: str | None) -> Answer:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return Answer(2, f"{path}: {size} bytes, over the {MAX_FILE_BYTES} this takes")
        data = path.read_bytes()
    except OSError as exc:
        return Answer(2, f"{path}: {exc.strerror or exc}")
    await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        tariffs = rating_services(session_factory(engine), SystemClock()).tariffs
        try:
            tariff = await tariffs.import_file(name or path.name, data, _who())
        except TariffError as exc:
            return Answer(1, f"{path}: {len(exc.problems)} problem(s), nothing imported:\n"
                             + "\n".join(f"{path}:{p.line}: {p.message}"
                                         for p in exc.problems))
    finally:
        await engine.dispose()
    return Answer(0, f"imported {tariff.name!r} as tariff {tariff.id}: {tariff.rate_count} "
                     f"rates in {', '.join(tariff.currencies)} (a running service prices "
                     "with it within 30 s)")


async def list_tariffs(settings: Settings) -> Answer:
    await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        files = await rating_services(session_factory(engine), SystemClock()).tariffs.tariffs()
    finally:
        await engine.dispose()
    if not files:
        return Answer(0, "no tariff imported yet: callcenter tariffs import FILE")
    lines = [f"{'id':>5}  {'imported (UTC)':<20} {'rates':>6}  {'currencies':<12} {'by':<16} name"]
    for f in files:
        when = datetime.fromtimestamp(f.imported_at).astimezone(ZoneInfo("UTC"))
        lines.append(f"{f.id:>5}  {when:%Y-%m-%d %H:%M:%S}  {f.rate_count:>6}  "
                     f"{' '.join(f.currencies):<12} {f.imported_by:<16} {f.name}")
    return Answer(0, "\n".join(lines))


def parse_moment(text: str, zone: ZoneInfo, what: str) -> float:
    """A date (its midnight in ``zone``) or an ISO 8601 time (UTC without an offset)."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} {text!r}: a date (2026-11-01) or an ISO 8601 time "
                         "(2026-11-01T00:00:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone if len(text) == 10 else ZoneInfo("UTC"))
    return when.timestamp()


def zone_named(key: str) -> ZoneInfo:
    try:
        return time_zone(key)
    except PeriodError as exc:
        raise ValueError(f"--zone: {exc}") from None


async def rerate(settings: Settings, since: str, until: str, *, apply: bool,
                 zone: str) -> Answer:
    try:
        days_zone = zone_named(zone)
        start = parse_moment(since, days_zone, "--since")
        end = parse_moment(until, days_zone, "--until")
        if start >= end:
            raise ValueError("--since must be before --until")
    except ValueError as exc:
        return Answer(2, str(exc))
    await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        pricer = rating_services(session_factory(engine), SystemClock()).pricer
        result = await pricer.rerate(start, end, apply=apply, zone=days_zone)
    finally:
        await engine.dispose()
    return Answer(0, rerating_text(result, days_zone))


def rerating_text(result: Rerating, zone: ZoneInfo) -> str:
    def moment(ts: float) -> str:
        return datetime.fromtimestamp(ts, zone).isoformat()

    what = ("applied: the new prices are stored" if result.applied
            else "dry run: nothing stored (--apply stores it)")
    lines = [f"calls that started {moment(result.since)} .. {moment(result.until)}; {what}",
             f"{'day':<10}  {'currency':<8}  {'old total':>12}  {'new total':>12}  "
             f"{'difference':>12}  legs (old -> new)"]
    for line in result.lines:
        if line.currency is None:
            lines.append(f"{line.day:<10}  {'unpriced':<8}  {'-':>12}  {'-':>12}  {'-':>12}  "
                         f"{line.old_legs} -> {line.new_legs}")
            continue
        difference = line.difference or Decimal(0)
        sign = "+" if difference > 0 else ""
        lines.append(f"{line.day:<10}  {line.currency:<8}  "
                     f"{amount_text(line.old_total or Decimal(0)):>12}  "
                     f"{amount_text(line.new_total or Decimal(0)):>12}  "
                     f"{sign + amount_text(difference):>12}  "
                     f"{line.old_legs} -> {line.new_legs}")
    lines.append(f"{result.calls_checked} closed calls checked, {result.calls_changed} "
                 f"{'changed' if result.applied else 'would change'}")
    return "\n".join(lines)
