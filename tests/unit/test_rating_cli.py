"""`callcenter tariffs import FILE`, `callcenter tariffs list` and `callcenter rate`: a
tariff imported from the command line, a bad file named line by line, a re-rating shown
then applied, then showing no difference."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callcenter.cli import main
from callcenter.core.clock import SystemClock
from callcenter.features.calls.store import CallRepository
from callcenter.features.rating.service import rating_services
from callcenter.store import create_engine, session_factory, upgrade
from tests.unit.test_rating_store import HEADER, TARIFF, campaign_call


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CALLCENTER_ASTERISK__MODE", "external")
    monkeypatch.setenv("CALLCENTER_ASTERISK__AMI_SECRET", "ami-secret-1")
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


def store_calls(data_dir: Path) -> None:
    async def run() -> None:
        url = f"sqlite+aiosqlite:///{data_dir / 'callcenter.db'}"
        await upgrade(url)
        engine = create_engine(url)
        try:
            rating = rating_services(session_factory(engine), SystemClock())
            calls = CallRepository(session_factory(engine), followers=[rating.pricer])
            await calls.save(campaign_call("a", "+5511999990000", "2026-06-01T10:05:00Z", 61))
            await calls.save(campaign_call("b", "+4930123456", "2026-06-01T11:00:00Z", 60))
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_a_tariff_is_imported_listed_and_a_period_re_rated(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tariff = tmp_path / "carrier.csv"
    tariff.write_text(TARIFF)
    assert main(["tariffs", "import", str(tariff)]) == 0
    assert capsys.readouterr().out.startswith("imported 'carrier.csv' as tariff 1: 7 rates in "
                                              "BRL, USD")
    store_calls(data_dir)

    fix = tmp_path / "fix.csv"
    fix.write_text(HEADER + "5511,outbound,,0.15,0.05,60/60,0,BRL,2,half_up,2026-01-01,fix\n")
    assert main(["tariffs", "import", str(fix), "--name", "correction"]) == 0
    assert capsys.readouterr().out.startswith("imported 'correction' as tariff 2")
    assert main(["tariffs", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listing] == ["id", "2", "1"]
    assert listing[1].endswith("correction") and listing[2].endswith("carrier.csv")

    period = ["rate", "--since", "2026-06-01", "--until", "2026-06-02"]
    assert main(period) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].endswith("dry run: nothing stored (--apply stores it)")
    assert shown[2].split() == ["2026-06-01", "BRL", "0.25", "0.35", "+0.10", "1", "->", "1"]
    assert shown[3].split() == ["2026-06-01", "unpriced", "-", "-", "-", "1", "->", "1"]
    assert shown[4] == "2 closed calls checked, 1 would change"
    assert main([*period, "--apply"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2 closed calls checked, 1 changed"
    assert main(period) == 0
    again = capsys.readouterr().out.splitlines()
    assert again[2].split()[4] == "0.00" and again[-1] == "2 closed calls checked, 0 would change"


def test_a_bad_file_is_named_line_by_line_and_nothing_imported(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "55,outbound,,0.1,0,1/1,0,BRL,2,up,2026-01-01,ok\n"
                            "56,outbound,,0.1,0,1/1,0,XYZ,2,up,2026-01-01,currency\n"
                            "57,outbound,,-1,0,1/1,0,BRL,2,up,2026-01-01,negative\n")
    assert main(["tariffs", "import", str(bad)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{bad}: 2 problem(s), nothing imported:",
        f"{bad}:3: currency 'XYZ': not an ISO 4217 currency code",
        f"{bad}:4: per_minute '-1': an amount, 0 or more"]
    assert main(["tariffs", "list"]) == 0
    assert capsys.readouterr().out.startswith("no tariff imported yet")
    assert main(["tariffs", "import", str(tmp_path / "missing.csv")]) == 2
    assert main(["rate", "--since", "2026-06-02", "--until", "2026-06-01"]) == 2
    assert "--since must be before --until" in capsys.readouterr().err
    assert main(["rate", "--since", "2026-06-01", "--until", "2026-06-02",
                 "--zone", "Mars/Base"]) == 2
