"""Back up and restore an installation with each backend's own tool, under a verified manifest.

- SQLite: the online backup API (a consistent copy page by page while the app keeps serving).
- PostgreSQL: `pg_dump --format=custom`, restored by `pg_restore --clean --single-transaction`.
- MariaDB/MySQL: `mariadb-dump --single-transaction` (a consistent InnoDB snapshot, no locks),
  restored by feeding the dump to `mariadb`.

A backup is a directory: the dump file and `manifest.json`, which records the schema revision,
the server's and the tool's versions, the dump's SHA-256, and every table's row count and
checksum (platform/tabledata.py) taken from the same moment where the backend allows it. A
restore checks the dump against the manifest before touching anything, refuses a backup from a
newer schema than this version knows, and verifies every table after it. skilltree keeps no
uploaded files outside the database (imports are parsed and stored as rows), so the database is
the whole installation; `files` in the manifest lists what the directory holds.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from skilltree.platform import migrations, tabledata
from skilltree.platform.config import DatabaseSettings, Settings
from skilltree.platform.db import create_engine, is_mysql

MANIFEST = "manifest.json"
FORMAT = 1
TOOL_TIMEOUT_SECONDS = 3600


class BackupRefused(Exception):
    """A backup or restore that cannot (or must not) go ahead; nothing was changed."""


@dataclass(frozen=True)
class Manifest:
    format: int
    backend: str
    revision: str
    skilltree_version: str
    server_version: str
    tool_version: str
    created_at: str
    files: dict[str, str]  # file name -> SHA-256
    tables: dict[str, tabledata.TableSummary] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            data: dict[str, Any] = orjson.loads(raw)
            data["tables"] = {
                name: tabledata.TableSummary(**summary) for name, summary in data["tables"].items()
            }
            return cls(**data)
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            raise BackupRefused(
                f"{MANIFEST} is not a skilltree backup manifest: {error}"
            ) from error


def backend_of(engine: AsyncEngine) -> str:
    name = engine.dialect.name
    return "mariadb" if is_mysql(name) else name


async def create_backup(settings: Settings, directory: Path) -> Manifest:
    """Write a backup of the configured database into `directory` (created; must not exist)."""
    await asyncio.to_thread(_new_directory, directory)
    engine = create_engine(settings.database)
    try:
        revision = await migrations.current_revision(engine)
        if revision is None or revision != migrations.head_revision():
            raise BackupRefused(
                f"the database is at revision {revision or 'none'}, not "
                f"{migrations.head_revision()}: run `skilltree migrate upgrade` first"
            )
        backend = backend_of(engine)
        server_version = await _server_version(engine)
        if backend == "sqlite":
            dump, tool = await _sqlite_backup(engine, directory)
            tables = await _summarise_file(directory / dump)
        elif backend == "postgresql":
            dump, tool = await asyncio.to_thread(_pg_dump, engine.url, directory)
            tables = await _summarise_dump(engine, directory / dump, backend)
        else:
            dump, tool = await asyncio.to_thread(_mariadb_dump, engine.url, directory)
            tables = await _summarise_dump(engine, directory / dump, backend)
    finally:
        await engine.dispose()
    manifest = Manifest(
        format=FORMAT,
        backend=backend,
        revision=revision,
        skilltree_version=version("skilltree"),
        server_version=server_version,
        tool_version=tool,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        files={dump: _sha256(directory / dump)},
        tables=tables,
    )
    (directory / MANIFEST).write_bytes(manifest.to_json())
    return manifest


async def restore_backup(settings: Settings, directory: Path) -> Manifest:
    """Replace the configured database's contents with the backup in `directory`."""
    manifest = read_manifest(directory)
    engine = create_engine(settings.database)
    try:
        backend = backend_of(engine)
        if manifest.backend != backend:
            raise BackupRefused(
                f"this is a {manifest.backend} backup and the database is {backend}: restore it "
                f"into {manifest.backend}, then move it with `skilltree db copy`"
            )
        (dump,) = manifest.files
        if backend == "sqlite":
            await _sqlite_restore(engine, directory / dump)
        elif backend == "postgresql":
            await asyncio.to_thread(_pg_restore, engine.url, directory / dump)
        else:
            await asyncio.to_thread(_mariadb_restore, engine.url, directory / dump)
        if manifest.revision == migrations.head_revision():
            restored = await tabledata.summarise_all(engine)
            different = [
                name for name, summary in manifest.tables.items() if restored.get(name) != summary
            ]
            if different:
                raise BackupRefused(
                    "the restored data differs from the backup in " + ", ".join(different)
                )
    finally:
        await engine.dispose()
    return manifest


def _new_directory(directory: Path) -> None:
    if directory.exists() and any(directory.iterdir()):
        raise BackupRefused(f"{directory} is not empty; choose a new directory")
    directory.mkdir(parents=True, exist_ok=True)


def read_manifest(directory: Path) -> Manifest:
    """The backup's manifest, once every file it lists matches its checksum and the schema
    revision is one this version knows."""
    path = directory / MANIFEST
    if not path.is_file():
        raise BackupRefused(f"{directory} holds no {MANIFEST}")
    manifest = Manifest.from_json(path.read_bytes())
    if manifest.format != FORMAT:
        raise BackupRefused(f"backup format {manifest.format} is not {FORMAT}")
    if manifest.revision not in migrations.known_revisions():
        raise BackupRefused(
            f"the backup's schema revision {manifest.revision} is newer than this version of "
            f"skilltree (head {migrations.head_revision()}); restore it with a newer version"
        )
    if len(manifest.files) != 1:
        raise BackupRefused("a backup lists exactly one dump file")
    for name, expected in manifest.files.items():
        file = directory / name
        if Path(name).name != name or not file.is_file():
            raise BackupRefused(f"{name} is missing from {directory}")
        if _sha256(file) != expected:
            raise BackupRefused(f"{name} does not match its checksum in {MANIFEST}")
    return manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


async def _server_version(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        query = "SELECT sqlite_version()" if engine.dialect.name == "sqlite" else "SELECT version()"
        return str((await connection.execute(text(query))).scalar_one())


# --- SQLite -----------------------------------------------------------------------------------


def _sqlite_path(engine: AsyncEngine) -> str:
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupRefused("an in-memory SQLite database has nothing to back up")
    return database


async def _summarise_file(path: Path) -> dict[str, tabledata.TableSummary]:
    engine = create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{path}"))
    try:
        return await tabledata.summarise_all(engine)
    finally:
        await engine.dispose()


def _copy_sqlite(source: str, target: str) -> None:
    # The online backup API copies pages under a read lock: writers in WAL mode carry on, and
    # the copy is one consistent state of the database.
    with sqlite3.connect(source) as origin, sqlite3.connect(target) as copy:
        origin.backup(copy)
    origin.close()
    copy.close()


async def _sqlite_backup(engine: AsyncEngine, directory: Path) -> tuple[str, str]:
    name = "database.sqlite"
    await asyncio.to_thread(_copy_sqlite, _sqlite_path(engine), str(directory / name))
    return name, f"sqlite3 online backup (SQLite {sqlite3.sqlite_version})"


async def _sqlite_restore(engine: AsyncEngine, dump: Path) -> None:
    await engine.dispose()  # the pool's connections would hold the old pages
    await asyncio.to_thread(_copy_sqlite, str(dump), _sqlite_path(engine))


# --- PostgreSQL -------------------------------------------------------------------------------


def _libpq_environment(url: URL) -> dict[str, str]:
    environment = dict(os.environ)
    environment.update(
        PGHOST=url.host or "localhost",
        PGPORT=str(url.port or 5432),
        PGUSER=url.username or "postgres",
        PGDATABASE=url.database or "",
    )
    if url.password:
        environment["PGPASSWORD"] = str(url.password)
    return environment


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupRefused(f"`{name}` is not installed (it ships with the database's client)")
    return path


def _run(arguments: list[str], environment: dict[str, str], **kwargs: Any) -> str:
    kwargs.setdefault("stdout", subprocess.PIPE)
    completed = subprocess.run(  # noqa: S603 (arguments built here, no shell)
        arguments,
        env=environment,
        stderr=subprocess.PIPE,
        timeout=TOOL_TIMEOUT_SECONDS,
        check=False,
        **kwargs,
    )
    if completed.returncode != 0:
        stderr = completed.stderr.decode(errors="replace").strip()
        raise BackupRefused(f"{Path(arguments[0]).name} failed: {stderr[-2000:]}")
    return completed.stdout.decode(errors="replace") if completed.stdout else ""


def _pg_dump(url: URL, directory: Path) -> tuple[str, str]:
    name = "database.pgdump"
    pg_dump = _tool("pg_dump")
    _run(
        [pg_dump, "--format=custom", "--no-owner", f"--file={directory / name}"],
        _libpq_environment(url),
    )
    return name, _run([pg_dump, "--version"], dict(os.environ)).strip()


def _pg_restore(url: URL, dump: Path) -> None:
    # --clean drops what the dump is about to create; one transaction: all of it or nothing.
    _run(
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            f"--dbname={url.database}",
            str(dump),
        ],
        _libpq_environment(url),
    )


# --- MariaDB / MySQL --------------------------------------------------------------------------


@contextmanager
def _mysql_options(url: URL) -> Iterator[list[str]]:
    """Connection options for the client tools; the password goes in a private option file,
    never on the command line, where `ps` would show it."""
    with tempfile.NamedTemporaryFile("w", suffix=".cnf", delete=True) as options:
        # mkstemp creates the file readable by its owner only (0600).
        options.write(f"[client]\npassword={url.password or ''}\n")
        options.flush()
        yield [
            f"--defaults-extra-file={options.name}",
            f"--host={url.host or '127.0.0.1'}",
            f"--port={url.port or 3306}",
            f"--user={url.username or 'root'}",
        ]


def _mariadb_dump(url: URL, directory: Path) -> tuple[str, str]:
    name = "database.sql"
    dump_tool = shutil.which("mariadb-dump") or _tool("mysqldump")
    with _mysql_options(url) as options, (directory / name).open("wb") as out:
        _run(
            [
                dump_tool,
                *options,
                # One consistent InnoDB snapshot, without locking the tables writers use.
                "--single-transaction",
                "--skip-lock-tables",
                "--triggers",
                "--routines",
                "--hex-blob",
                "--default-character-set=utf8mb4",
                str(url.database),
            ],
            dict(os.environ),
            stdout=out,
        )
    return name, _run([dump_tool, "--version"], dict(os.environ)).strip()


def _mariadb_restore(url: URL, dump: Path) -> None:
    client = shutil.which("mariadb") or _tool("mysql")
    with _mysql_options(url) as options, dump.open("rb") as source:
        _run(
            [client, *options, "--default-character-set=utf8mb4", str(url.database)],
            dict(os.environ),
            stdin=source,
        )


# --- Checksums of a dump ----------------------------------------------------------------------


async def _summarise_dump(
    engine: AsyncEngine, dump: Path, backend: str
) -> dict[str, tabledata.TableSummary]:
    """The tables as the dump holds them: restored into a scratch database on the same server,
    summarised, dropped. The live database may have changed since the dump's snapshot, so
    summarising it instead would describe a different moment."""
    scratch = f"skilltree_backup_check_{os.urandom(6).hex()}"
    admin_url = make_url(engine.url.render_as_string(hide_password=False))
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        quoted = f'"{scratch}"' if backend == "postgresql" else f"`{scratch}`"
        await autocommit.execute(text(f"CREATE DATABASE {quoted}"))
    scratch_url = admin_url.set(database=scratch)
    try:
        if backend == "postgresql":
            await asyncio.to_thread(_pg_restore, scratch_url, dump)
        else:
            await asyncio.to_thread(_mariadb_restore, scratch_url, dump)
        scratch_engine = create_engine(
            DatabaseSettings(url=scratch_url.render_as_string(hide_password=False))
        )
        try:
            return await tabledata.summarise_all(scratch_engine)
        finally:
            await scratch_engine.dispose()
    finally:
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            drop = f"DROP DATABASE IF EXISTS {quoted}"
            if backend == "postgresql":
                drop += " WITH (FORCE)"
            await autocommit.execute(text(drop))
