"""Secrets at rest: the data folder, secrets.toml and the SQLite database are their owner's
alone from the moment they exist, whatever the umask; a file left readable by an older
version is tightened at the next start."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.config import load_settings
from callcenter.private_files import write_private
from callcenter.store.db import create_engine, upgrade


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that takes nothing away: every mode below is what the code asked for."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def no_chmod(monkeypatch: pytest.MonkeyPatch) -> None:
    """Creating readable and tightening afterwards is what we must not do: forbid chmod."""
    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"{self} was chmod-ed after creation")
    monkeypatch.setattr(Path, "chmod", refuse)
    monkeypatch.setattr(os, "chmod", lambda *a, **k: refuse(Path(str(a[0]))))


def test_secrets_toml_and_its_folder_are_created_private(
    tmp_path: Path, open_umask: None, no_chmod: None
) -> None:
    data = tmp_path / "data"
    settings = load_settings(env={"CALLCENTER_DATA_DIR": str(data)})
    assert settings.agents[0].password
    assert mode(data) == 0o700
    assert mode(data / "secrets.toml") == 0o600
    assert [p.name for p in data.iterdir()] == ["secrets.toml"]  # no temporary left behind


def test_a_readable_secrets_toml_from_an_older_version_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    load_settings(env={"CALLCENTER_DATA_DIR": str(data)})
    (data / "secrets.toml").chmod(0o644)
    again = load_settings(env={"CALLCENTER_DATA_DIR": str(data)})
    assert mode(data / "secrets.toml") == 0o600
    assert again.agents[0].password  # the same secrets, read back


def test_write_private_replaces_atomically_and_never_follows_a_planted_link(
    tmp_path: Path, open_umask: None
) -> None:
    target = tmp_path / "secret"
    write_private(target, "one\n")
    write_private(target, "two\n")
    assert target.read_text() == "two\n" and mode(target) == 0o600
    elsewhere = tmp_path / "elsewhere"
    (tmp_path / f".secret.{os.getpid()}.tmp").symlink_to(elsewhere)
    with pytest.raises(FileExistsError):
        write_private(target, "three\n")
    assert not elsewhere.exists() and target.read_text() == "two\n"


async def test_the_sqlite_database_and_its_folder_are_created_private(
    tmp_path: Path, open_umask: None
) -> None:
    folder = tmp_path / "fresh"
    url = f"sqlite+aiosqlite:///{folder / 'callcenter.db'}"
    await upgrade(url)
    assert mode(folder) == 0o700
    database = folder / "callcenter.db"
    assert mode(database) == 0o600
    with sqlite3.connect(database) as connection:  # WAL mode: -wal and -shm appear
        connection.execute("INSERT INTO users (username, password_hash, active, created_at, "
                           "updated_at) VALUES ('x', 'h', 1, '2026-01-01', '2026-01-01')")
        companions = [p for p in folder.iterdir() if p.name != "callcenter.db"]
        assert companions, "expected the WAL files while a connection is open"
        for path in companions:
            assert mode(path) == 0o600, path


async def test_a_readable_database_from_an_older_version_is_tightened(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'callcenter.db'}"
    await upgrade(url)
    (tmp_path / "callcenter.db").chmod(0o644)
    engine = create_engine(url)
    await engine.dispose()
    assert mode(tmp_path / "callcenter.db") == 0o600


def test_a_file_for_asterisks_group_is_640_from_its_first_byte(
    tmp_path: Path, open_umask: None, no_chmod: None
) -> None:
    target = tmp_path / "pjsip-agents.conf"
    write_private(target, "[agent1-auth]\n", mode=0o640, group=os.getgid())
    assert mode(target) == 0o640 and target.stat().st_gid == os.getgid()
    with pytest.raises(ValueError, match="gives others no rights"):
        write_private(target, "x", mode=0o644)
