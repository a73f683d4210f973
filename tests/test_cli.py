"""The skilltree command as an operator uses it, on a real SQLite file."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from skilltree.app import create_app
from skilltree.cli import app
from skilltree.platform import migrations
from skilltree.platform.config import load_settings
from skilltree.roadmaps.builtin import seed_files
from tests.support.redis import REDIS_URL, isolated_prefix

runner = CliRunner()


def test_migrate_current_reports_the_head_revision(workdir: Path) -> None:
    result = runner.invoke(app, ["migrate", "current"])

    assert result.exit_code == 0
    head = migrations.head_revision()
    assert f"current: {head} (head: {head})" in result.output


@pytest.mark.parametrize("seed", seed_files(), ids=lambda p: p.name[:3])
def test_each_seed_imports_with_dry_run(workdir: Path, seed: Path) -> None:
    result = runner.invoke(app, ["import", str(seed), "--dry-run"])

    assert result.exit_code == 0, result.output
    assert "would import" in result.output
    assert "0 updated, 0 removed" in result.output


def test_import_then_export_markdown(workdir: Path) -> None:
    source = workdir / "plan.md"
    source.write_text("# Plan\n\n## Basics\n\n- [ ] HTTP\n- [ ] SQL\n", encoding="utf-8")

    imported = runner.invoke(app, ["import", str(source)])
    exported = runner.invoke(app, ["export", "plan"])

    assert imported.exit_code == 0, imported.output
    assert "imported 'plan' (new roadmap)" in imported.output
    assert exported.exit_code == 0
    assert exported.output.startswith("# Plan\n\n## Basics\n\n- [ ] HTTP\n- [ ] SQL\n")


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    async with isolated_prefix() as prefix:
        yield prefix


async def served_tree(slug: str) -> str:
    """The tree a server started from the same environment answers, as a reader sees it."""
    server = create_app(load_settings())
    async with server.router.lifespan_context(server):
        transport = httpx.ASGITransport(app=server)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get(f"/v1/roadmaps/{slug}/tree")
    assert response.status_code == 200, response.text
    return response.text


@pytest.mark.redis
def test_an_import_from_the_command_line_is_served_at_once_from_a_shared_cache(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, redis_prefix: str
) -> None:
    monkeypatch.setenv("SKILLTREE_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("SKILLTREE_REDIS_KEY_PREFIX", redis_prefix)
    source = workdir / "plan.md"
    source.write_text("# Plan\n\n## Basics\n\n- [ ] HTTP\n", encoding="utf-8")
    assert runner.invoke(app, ["import", str(source)]).exit_code == 0
    before = asyncio.run(served_tree("plan"))  # now in the cache

    source.write_text("# Plan\n\n## Basics\n\n- [ ] HTTP\n- [ ] SQL\n", encoding="utf-8")
    reimported = runner.invoke(app, ["import", str(source)])
    after = asyncio.run(served_tree("plan"))

    assert reimported.exit_code == 0, reimported.output
    assert '"SQL"' not in before
    assert '"SQL"' in after


def test_bad_input_exits_2_naming_the_file_and_line(workdir: Path) -> None:
    source = workdir / "bad.md"
    source.write_bytes(b"# T\n\n## S\n\n- fine\n- \x00\x01\x02\n")

    result = runner.invoke(app, ["import", str(source)])

    assert result.exit_code == 2
    assert f"{source}: line 6" in result.output


def test_missing_file_exits_2(workdir: Path) -> None:
    result = runner.invoke(app, ["import", "nope.md"])

    assert result.exit_code == 2
    assert "nope.md: no such file" in result.output


def test_invalid_settings_exit_2_listing_each_bad_setting(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKILLTREE_HTTP_PORT", "http")
    monkeypatch.setenv("SKILLTREE_DATABASE_URL", "oracle://x")

    result = runner.invoke(app, ["migrate", "current"])

    assert result.exit_code == 2
    assert "SKILLTREE_HTTP_PORT" in result.output
    assert "SKILLTREE_DATABASE_URL" in result.output
    assert "Traceback" not in result.output


def test_load_builtin_is_idempotent(workdir: Path) -> None:
    first = runner.invoke(app, ["roadmap", "load-builtin"])
    second = runner.invoke(app, ["roadmap", "load-builtin"])

    assert first.exit_code == 0, first.output
    assert "(new roadmap)" in first.output
    assert "0 added, 0 updated, 0 removed" in second.output


def test_coverage_lists_every_seed_item_and_succeeds() -> None:
    result = runner.invoke(app, ["roadmap", "coverage"])

    assert result.exit_code == 0, result.output
    assert "0 unmapped, 0 ambiguous" in result.output
    assert "-> EXCLUDED" in result.output


def test_coverage_fails_on_an_unmapped_item(tmp_path: Path) -> None:
    seed = tmp_path / "999_extra.txt"
    seed.write_text("# Extra\n\n## New things\n\n- Quantum backend sorcery\n", encoding="utf-8")

    result = runner.invoke(app, ["roadmap", "coverage", str(seed)])

    assert result.exit_code == 1
    assert "Quantum backend sorcery\t-> UNMAPPED" in result.output


def test_user_create_makes_an_admin_once_per_address(workdir: Path) -> None:
    secret = workdir / "password"
    secret.write_text("a long operator passphrase\n", encoding="utf-8")

    result = runner.invoke(
        app,
        [
            "user",
            "create",
            "Root@Example.org",
            "--name",
            "Root",
            "--admin",
            "--password-file",
            str(secret),
        ],
    )
    again = runner.invoke(
        app,
        ["user", "create", "root@example.org", "--name", "Root", "--password-file", str(secret)],
    )

    assert result.exit_code == 0, result.output
    assert "created administrator root@example.org" in result.output
    assert again.exit_code == 2
    assert "already has an account" in again.output


def test_user_create_refuses_a_weak_password(workdir: Path) -> None:
    result = runner.invoke(
        app, ["user", "create", "a@example.org", "--name", "A"], input="short\nshort\n"
    )

    assert result.exit_code == 2
    assert "at least 12 characters" in result.output


def test_commands_work_in_a_fresh_process(tmp_path: Path) -> None:
    """In-process tests import every module; an operator's shell does not. Run the commands
    the README and `make run` use in a clean interpreter, as they run in production."""
    import os
    import subprocess
    import sys

    env = os.environ | {
        "SKILLTREE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/fresh.db",
        "SKILLTREE_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-c", "from skilltree.cli import main; main()"]
    for arguments in (["migrate", "upgrade"], ["roadmap", "load-builtin"], ["export", "backend"]):
        result = subprocess.run(
            [*command, *arguments],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{arguments}: {result.stderr[-2000:]}"


def _bury_a_letter(workdir: Path) -> None:
    import asyncio
    from datetime import UTC, datetime

    from skilltree.platform.config import DatabaseSettings
    from skilltree.platform.db import Database
    from skilltree.platform.queue import dead_letters

    async def bury() -> None:
        database = Database.from_settings(
            DatabaseSettings(url=f"sqlite+aiosqlite:///{workdir}/cli.db")
        )
        async with database.unit_of_work() as session:
            dead_letters.record(
                session,
                task_id="t-1",
                task_name="mail.send",
                args=[{"to": "ada@example.org"}],
                labels={"attempt": 8},
                attempts=8,
                error=ConnectionError("mail server unreachable"),
                now=datetime.now(UTC),
            )
        await database.dispose()

    asyncio.run(bury())


def test_dlq_lists_shows_replays_and_purges(workdir: Path) -> None:
    _bury_a_letter(workdir)
    _bury_a_letter(workdir)

    listed = runner.invoke(app, ["dlq", "list"])
    letter_id = listed.output.split("\t", 1)[0]
    shown = runner.invoke(app, ["dlq", "show", letter_id])
    replayed = runner.invoke(app, ["dlq", "replay", letter_id])
    purged = runner.invoke(app, ["dlq", "purge", "--yes"])
    missing = runner.invoke(app, ["dlq", "show", letter_id])

    assert "mail.send\t8 attempts" in listed.output
    assert "2 dead letter(s)" in listed.output
    assert '"to": "ada@example.org"' in shown.output
    assert "ConnectionError: mail server unreachable" in shown.output
    assert replayed.exit_code == 0
    assert f"replayed dead letter {letter_id}" in replayed.output
    assert "purged 1 dead letter(s)" in purged.output
    assert missing.exit_code == 2


def test_the_command_and_the_shared_wiring_start_without_the_framework_or_the_tables() -> None:
    """`skilltree --help` and a command's start-up stay fast (issue 12: under 0.5 s and 1.5 s)
    because importing the CLI, and the wiring that `skilltree grpc` and the app's lifespan
    share, imports neither FastAPI, SQLAlchemy, Redis nor any table: each command imports what
    it uses when it runs."""
    probe = (
        "import sys, skilltree.cli, skilltree.wiring; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'fastapi', 'starlette', 'sqlalchemy', 'redis'}), "
        "'skilltree.models' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert done.stdout.split() == ["[]", "False"]


@pytest.mark.parametrize(
    ("arguments", "environment"),
    [(["--workers", "2"], {}), ([], {"SKILLTREE_HTTP_WORKERS": "2"})],
)
def test_serve_refuses_several_workers_without_redis(
    arguments: list[str],
    environment: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without Redis each worker process keeps its own cache, limits and live fan-out: a write
    answered by one worker would leave the others serving what it changed until the entry's
    TTL (an hour for a public roadmap). Several workers need a shared Redis."""
    started: list[int] = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SKILLTREE_REDIS_URL", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(
        "skilltree.cli._run_uvicorn", lambda settings, **options: started.append(options["workers"])
    )

    refused = runner.invoke(app, ["serve", *arguments])
    monkeypatch.setenv("SKILLTREE_REDIS_URL", REDIS_URL)
    with_redis = runner.invoke(app, ["serve", *arguments])
    monkeypatch.delenv("SKILLTREE_REDIS_URL")
    monkeypatch.delenv("SKILLTREE_HTTP_WORKERS", raising=False)
    one_worker = runner.invoke(app, ["serve"])

    assert refused.exit_code == 2
    assert "SKILLTREE_REDIS_URL" in refused.output
    assert (with_redis.exit_code, one_worker.exit_code) == (0, 0)
    assert started == [2, 1]  # the refused one never started
