"""`skilltree backup` and `skilltree restore`: a round trip on each backend, with its own tool."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from skilltree.cli import app
from skilltree.platform import backup, migrations, tabledata
from skilltree.platform.config import Settings
from skilltree.platform.db import create_engine
from tests.support.accounts import register_and_verify, sign_in
from tests.support.installation import empty_database, populate, served, settings_for
from tests.support.progress import mark

runner = CliRunner()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
async def installation(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Settings]:
    if request.param != "sqlite":
        tool = "pg_dump" if request.param == "postgresql" else "mariadb-dump"
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (make test installs the database clients)")
    async with empty_database(request.param, tmp_path) as url:
        settings = settings_for(url, tmp_path)
        engine = create_engine(settings.database)
        await migrations.upgrade(engine)
        await engine.dispose()
        await populate(settings)
        yield settings


async def summaries(settings: Settings) -> dict[str, tabledata.TableSummary]:
    engine = create_engine(settings.database)
    try:
        return await tabledata.summarise_all(engine)
    finally:
        await engine.dispose()


async def test_a_restore_brings_back_exactly_what_was_backed_up(
    installation: Settings, tmp_path: Path
) -> None:
    before = await summaries(installation)
    manifest = await backup.create_backup(installation, tmp_path / "backup")

    async with served(installation) as client:  # the day goes on after the backup
        await register_and_verify(
            client, installation.mail.outbox_dir, email="grace@example.org", name="Grace"
        )
        ada = await sign_in(client, email="ada@example.org")
        assert (await mark(ada, "caching", "done")).status_code == 200
    assert await summaries(installation) != before

    restored = await backup.restore_backup(installation, tmp_path / "backup")

    assert manifest.tables == before
    assert restored.revision == migrations.head_revision()
    assert await summaries(installation) == before
    async with served(installation) as client:
        ada = await sign_in(client, email="ada@example.org")
        progress = (await ada.client.get("/v1/me/progress/web")).json()
        grace = await client.post(
            "/v1/auth/login", json={"email": "grace@example.org", "password": "x" * 12}
        )
    assert progress["summary"]["counts"]["done"] == 1
    assert grace.status_code == 401


async def test_the_manifest_names_versions_and_checksums(
    installation: Settings, tmp_path: Path
) -> None:
    await backup.create_backup(installation, tmp_path / "backup")

    manifest = orjson.loads((tmp_path / "backup" / "manifest.json").read_bytes())

    assert manifest["revision"] == migrations.head_revision()
    assert manifest["backend"] in {"sqlite", "postgresql", "mariadb"}
    assert manifest["server_version"]
    assert manifest["tool_version"]
    ((name, digest),) = manifest["files"].items()
    assert (tmp_path / "backup" / name).is_file()
    assert len(digest) == 64
    assert manifest["tables"]["topics"]["rows"] == 14


@pytest.fixture
def sqlite_backup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A backup of a small SQLite installation, made with the command line."""
    monkeypatch.setenv("SKILLTREE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/live.db")
    monkeypatch.setenv("SKILLTREE_LOG_LEVEL", "WARNING")
    assert runner.invoke(app, ["migrate", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["roadmap", "load-builtin"]).exit_code == 0
    result = runner.invoke(app, ["backup", str(tmp_path / "backup")])
    assert result.exit_code == 0, result.output
    return tmp_path / "backup"


def test_restore_refuses_a_backup_from_a_newer_schema(sqlite_backup: Path) -> None:
    manifest_file = sqlite_backup / "manifest.json"
    manifest = orjson.loads(manifest_file.read_bytes())
    manifest["revision"] = "9999"
    manifest_file.write_bytes(orjson.dumps(manifest))

    result = runner.invoke(app, ["restore", str(sqlite_backup), "--yes"])

    assert result.exit_code == 2
    assert "revision 9999 is newer than this version" in result.output


def test_restore_refuses_a_dump_that_does_not_match_its_checksum(sqlite_backup: Path) -> None:
    dump = sqlite_backup / "database.sqlite"
    dump.write_bytes(dump.read_bytes()[:-1] + b"\x01")

    result = runner.invoke(app, ["restore", str(sqlite_backup), "--yes"])

    assert result.exit_code == 2
    assert "database.sqlite does not match its checksum" in result.output


def test_backup_refuses_a_directory_that_holds_files(sqlite_backup: Path) -> None:
    result = runner.invoke(app, ["backup", str(sqlite_backup)])

    assert result.exit_code == 2
    assert "is not empty" in result.output


async def test_a_sqlite_backup_taken_while_the_app_writes_is_consistent(tmp_path: Path) -> None:
    async with empty_database("sqlite", tmp_path) as url:
        settings = settings_for(url, tmp_path)
        engine = create_engine(settings.database)
        await migrations.upgrade(engine)
        await engine.dispose()
        async with served(settings) as client:
            writing = asyncio.create_task(_register_many(client, settings, 15))
            await asyncio.sleep(0.05)
            manifest = await backup.create_backup(settings, tmp_path / "backup")
            await writing

        # The manifest was taken from the copy itself: restoring it verifies every table.
        restored = await backup.restore_backup(settings, tmp_path / "backup")
    assert restored.tables == manifest.tables


async def _register_many(client: object, settings: Settings, count: int) -> None:
    for number in range(count):
        await register_and_verify(
            client,  # type: ignore[arg-type]
            settings.mail.outbox_dir,
            email=f"learner{number}@example.org",
            name=f"Learner {number}",
        )
