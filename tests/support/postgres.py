"""A real, throwaway PostgreSQL server for tests.

``running_postgres()`` installs Debian's ``postgresql`` package if its binaries are missing,
creates a cluster in a temporary folder owned by the ``postgres`` user (the server refuses to
run as root), listens on 127.0.0.1 on a free port with a random password, and stops and
removes everything on exit. Each process of a parallel run (pytest-xdist worker) starts its
own server, in its own folder on its own reserved port. When the server cannot start it
fails if ``CI=true`` and skips otherwise.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tests.support.ports import free_port
from tests.support.real_parts import in_ci, unavailable

SERVER_USER = "postgres"  # the Unix account that owns and runs the cluster
SUPERUSER = "postgres"  # the database role the tests connect as
DATABASE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server could not be installed or started; the message says why."""


@dataclass(frozen=True)
class PostgresServer:
    bin_dir: Path
    host: str
    port: int
    password: str

    def url(self, database: str) -> str:
        """A SQLAlchemy URL for ``database`` on this server."""
        return (
            f"postgresql+asyncpg://{SUPERUSER}:{self.password}@{self.host}:{self.port}/{database}"
        )

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create an empty database (or a copy of ``template``) and return its URL."""
        copy_of = ["--template", _database_name(template)] if template else []
        self._client("createdb", *copy_of, _database_name(name))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing any connections still open to it."""
        self._client("dropdb", "--force", "--if-exists", _database_name(name))

    @contextmanager
    def fresh_database(self, template: str | None = None) -> Iterator[str]:
        """A new database with a unique name, empty or a copy of ``template`` (which nobody
        may be connected to meanwhile), dropped afterwards."""
        name = f"test_{uuid.uuid4().hex}"
        url = self.create_database(name, template)
        try:
            yield url
        finally:
            self.drop_database(name)

    def _client(self, program: str, *args: str) -> None:
        command = [
            str(self.bin_dir / program),
            "--host", self.host,
            "--port", str(self.port),
            "--username", SUPERUSER,
            "--no-password",
            *args,
        ]  # fmt: skip
        env = {**os.environ, "PGPASSWORD": self.password}
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} failed: {result.stderr.strip()}")


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A running PostgreSQL server; skips (or fails when CI=true) if it cannot start."""
    cluster = _Cluster()
    try:
        server = cluster.start()
    except PostgresUnavailable as exc:
        cluster.remove()
        if in_ci():
            raise
        unavailable(f"PostgreSQL is not available: {exc}")
    try:
        yield server
    finally:
        cluster.stop()
        cluster.remove()


# --------------------------------------------------------------------------- the cluster


class _Cluster:
    """One initdb'd data folder and its server process, all inside one temporary folder."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.bin_dir: Path | None = None
        self.run_as: list[str] = []
        self.started = False

    @property
    def data_dir(self) -> Path:
        assert self.folder is not None
        return self.folder / "data"

    @property
    def log_file(self) -> Path:
        assert self.folder is not None
        return self.folder / "server.log"

    def start(self) -> PostgresServer:
        self.bin_dir = _postgres_bin_dir()
        run_as = _as_server_user()  # checked before anything is created
        self.folder = Path(tempfile.mkdtemp(prefix="callcenter-pg-"))
        password = secrets.token_hex(16)
        password_file = self.folder / "password"
        password_file.write_text(password + "\n")
        self.run_as = run_as
        _give_to_server_user(self.folder)
        self._run(
            "initdb",
            "--pgdata", str(self.data_dir),
            "--username", SUPERUSER,
            "--pwfile", str(password_file),
            "--auth-local", "trust",  # only through the socket inside our private folder
            "--auth-host", "scram-sha-256",
            "--encoding", "UTF8",
            "--no-locale",
            "--no-sync",
        )  # fmt: skip
        password_file.unlink()
        port = free_port()  # reserved: parallel test workers each start their own server
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={port}",
                f"-c unix_socket_directories={self.folder}",
                # A zone far from UTC: a time that depended on the server's zone would show up.
                "-c timezone=Pacific/Chatham",
                "-c fsync=off",  # a throwaway cluster: durability only costs time
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        )
        self._run(
            "pg_ctl", "start",
            "--pgdata", str(self.data_dir),
            "--log", str(self.log_file),
            "--options", options,
            "--wait", "--timeout", "60",
        )  # fmt: skip
        self.started = True
        return PostgresServer(bin_dir=self.bin_dir, host="127.0.0.1", port=port, password=password)

    def stop(self) -> None:
        if self.started:
            self._run("pg_ctl", "stop", "--pgdata", str(self.data_dir), "--mode", "fast", "--wait")
            self.started = False

    def remove(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def _run(self, program: str, *args: str) -> None:
        assert self.bin_dir is not None
        command = [*self.run_as, str(self.bin_dir / program), *args]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresUnavailable(f"{program} could not run: {exc}") from None
        if result.returncode != 0:
            log = self.log_file.read_text(errors="replace")[-2000:] if self._has_log() else ""
            raise PostgresUnavailable(
                f"{program} {args[0] if args else ''} failed (exit {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-2000:]}"
                + (f"\nserver log:\n{log}" if log else "")
            )

    def _has_log(self) -> bool:
        return self.folder is not None and self.log_file.exists()


def _postgres_bin_dir() -> Path:
    """Where initdb and pg_ctl live, installing Debian's postgresql package if needed."""
    found = _find_bin_dir()
    if found is None:
        _install_postgresql()
        found = _find_bin_dir()
    if found is None:
        raise PostgresUnavailable("initdb and pg_ctl not found, even after installing postgresql")
    return found


def _find_bin_dir() -> Path | None:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.insert(0, Path(on_path).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def _install_postgresql() -> None:
    if os.geteuid() != 0:
        raise PostgresUnavailable("PostgreSQL is not installed and we are not root to install it")
    if shutil.which("apt-get") is None:
        raise PostgresUnavailable("PostgreSQL is not installed and apt-get is missing")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]
    for attempt in ([install], [["apt-get", "update"], install]):
        results = [
            subprocess.run(step, env=env, capture_output=True, text=True, timeout=900)
            for step in attempt
        ]
        if results[-1].returncode == 0:
            return
    raise PostgresUnavailable(f"apt-get install postgresql failed: {results[-1].stderr[-2000:]}")


def _as_server_user() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its programs as the postgres user."""
    if os.geteuid() != 0:
        return []
    try:
        import pwd

        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresUnavailable(f"there is no {SERVER_USER!r} system user") from None
    return ["runuser", "-u", SERVER_USER, "--"]


def _give_to_server_user(folder: Path) -> None:
    folder.chmod(0o700)
    if os.geteuid() == 0:
        for path in (folder, *folder.iterdir()):
            shutil.chown(path, user=SERVER_USER)


def _database_name(name: str) -> str:
    if not DATABASE_NAME_RE.match(name):
        raise ValueError(f"database name {name!r}: use lowercase letters, digits and '_'")
    return name


# --------------------------------------------------------------------------- reuse

# What a test could change in the schema: the tables' columns, indexes, constraints,
# sequences, triggers and the migration the database is at.
_SCHEMA_FINGERPRINT = """
SELECT md5(concat_ws('|',
  (SELECT string_agg(concat_ws(':', table_name, column_name, data_type, is_nullable,
                               column_default), ',' ORDER BY table_name, column_name)
     FROM information_schema.columns WHERE table_schema = 'public'),
  (SELECT string_agg(indexdef, ',' ORDER BY indexdef)
     FROM pg_indexes WHERE schemaname = 'public'),
  (SELECT string_agg(conname || ':' || pg_get_constraintdef(c.oid), ',' ORDER BY conname)
     FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
    WHERE n.nspname = 'public'),
  (SELECT string_agg(sequencename, ',' ORDER BY sequencename)
     FROM pg_sequences WHERE schemaname = 'public'),
  (SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal),
  (SELECT string_agg(version_num, ',') FROM alembic_version)))
"""


class ReusedDatabase:
    """One database per test process, made once from the migrated template and emptied after
    each test, instead of a new copy per test: on the loaded 2-core CI machine CREATE
    DATABASE costs 0.4-0.9 s (it copies the whole catalog), emptying the tables a few
    milliseconds. A test that changed the schema (its fingerprint differs) or left the
    database unusable gets a new copy of the template, so no test sees another's leftovers.
    """

    def __init__(self, server: PostgresServer, template: str) -> None:
        self._server = server
        self._template = template
        self._name = ""
        self._fingerprint = ""
        self._make()

    @property
    def url(self) -> str:
        return self._server.url(self._name)

    def reset(self) -> None:
        """Back to the template's state: no rows, sequences from their start."""
        try:
            same_schema = asyncio.run(self._empty())
        except Exception:  # whatever the test left, a new copy mends it
            same_schema = False
        if not same_schema:
            self._server.drop_database(self._name)
            self._make()

    def drop(self) -> None:
        self._server.drop_database(self._name)

    def _make(self) -> None:
        self._name = f"test_{uuid.uuid4().hex}"
        self._server.create_database(self._name, self._template)
        self._fingerprint = asyncio.run(self._read_fingerprint())

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(host=self._server.host, port=self._server.port,
                                     user=SUPERUSER, password=self._server.password,
                                     database=self._name)

    async def _read_fingerprint(self) -> str:
        connection = await self._connect()
        try:
            return str(await connection.fetchval(_SCHEMA_FINGERPRINT))
        finally:
            await connection.close()

    async def _empty(self) -> bool:
        """Delete every row and restart the used sequences; False if the schema changed."""
        connection = await self._connect()
        try:
            # Connections the test left open could hold locks (or be mid-transaction).
            await connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            if await connection.fetchval(_SCHEMA_FINGERPRINT) != self._fingerprint:
                return False
            tables = await connection.fetch(
                "SELECT quote_ident(tablename) FROM pg_tables "
                "WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
            sequences = await connection.fetch(
                "SELECT quote_ident(sequencename) FROM pg_sequences "
                "WHERE schemaname = 'public' AND last_value IS NOT NULL")
            async with connection.transaction():
                # Foreign keys are triggers: off for this session, so the order is free.
                await connection.execute("SET LOCAL session_replication_role = replica")
                for (table,) in tables:
                    await connection.execute(f"DELETE FROM {table}")
                for (sequence,) in sequences:
                    await connection.execute(f"ALTER SEQUENCE {sequence} RESTART")
            return True
        finally:
            await connection.close()
