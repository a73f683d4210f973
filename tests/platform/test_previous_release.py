"""Expand/contract, checked: the previous release's code keeps working against the schema after
`migrate upgrade` to the newest migration (docs/migrations.md).

"The previous release" is the code as it was just before the newest migration was added: the
parent of the commit that added the newest migration's file. Its `src/` is taken from git
(`git archive`) into a temporary directory and started as a real process (`skilltree serve`)
against a database the current code migrated to head; then it signs up, imports, marks and
reads, and the current code reads back what it wrote. It runs with this checkout's installed
dependencies. A clone without that commit (a shallow one) skips the test with the reason.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from skilltree.platform import migrations
from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import create_engine
from tests.support.accounts import register_and_verify, sign_in
from tests.support.installation import empty_database, served, settings_for
from tests.support.processes import ROOT, base_env, free_port, running, wait_until_ready
from tests.support.progress import WEB, import_roadmap, mark

STARTUP_SECONDS = 300


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LookupError(done.stderr.strip() or f"git {' '.join(args)} failed")
    return done.stdout.strip()


def _newest_migration_file() -> Path:
    from alembic.script import ScriptDirectory

    from skilltree.platform.migrations import alembic_config

    script = ScriptDirectory.from_config(alembic_config()).get_revision("head")
    assert script is not None
    assert script.path is not None
    return Path(script.path).relative_to(ROOT)


def previous_release() -> str:
    """The commit before the one that added the newest migration (skips when unknowable)."""
    newest = _newest_migration_file()
    try:
        added = _git("log", "--diff-filter=A", "--format=%H", "-1", "--", str(newest))
        if not added:
            raise LookupError(f"no commit adds {newest} (not committed yet?)")
        return _git("rev-parse", "--verify", f"{added}^")
    except (LookupError, FileNotFoundError) as error:
        shallow = _git("rev-parse", "--is-shallow-repository") == "true"
        hint = " (a shallow clone: fetch the full history)" if shallow else ""
        pytest.skip(f"the previous release's code is not available{hint}: {error}")


@pytest.fixture(scope="module")
def previous_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release's `src/` directory, extracted from git."""
    commit = previous_release()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "src"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    directory = tmp_path_factory.mktemp("previous-release")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    # Compiled once here, not by every server start (a cold import of the app takes long).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(directory / "src")], check=True)
    return directory / "src"


def _run_previous(source: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env={"PYTHONPATH": str(source), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


def _require_backend_support(source: Path, url: str) -> None:
    """Skip a backend the previous release did not support yet (MariaDB came later)."""
    done = _run_previous(
        source,
        "import sys; from skilltree.platform.config import DatabaseSettings; "
        "DatabaseSettings(url=sys.argv[1])",
        url,
    )
    if done.returncode != 0:
        pytest.skip(f"the previous release does not support {url.split(':', 1)[0]} URLs")


def _head_of(source: Path) -> str:
    """The newest migration the code in `source` knows, asked of that code itself."""
    done = _run_previous(
        source, "from skilltree.platform import migrations as m; print(m.head_revision())"
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
async def migrated_to_head(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with empty_database(request.param, tmp_path) as url:
        engine = create_engine(DatabaseSettings(url=url))
        await migrations.upgrade(engine)
        await engine.dispose()
        yield url


async def test_the_previous_release_works_against_the_newest_schema(
    previous_source: Path, migrated_to_head: str, tmp_path: Path
) -> None:
    _require_backend_support(previous_source, migrated_to_head)
    previous_head = _head_of(previous_source)
    assert previous_head != migrations.head_revision()  # really the code before the migration

    port = free_port()
    outbox = tmp_path / "outbox"
    env = base_env(
        migrated_to_head,
        PYTHONPATH=str(previous_source),  # ahead of the installed (current) package
        SKILLTREE_MAIL_OUTBOX_DIR=str(outbox),
    )
    command = [sys.executable, "-c", "from skilltree.cli import main; main()"]
    command += ["serve", "--host", "127.0.0.1", "--port", str(port)]
    base_url = f"http://127.0.0.1:{port}"
    with running(command, env, tmp_path / "previous.log") as process:
        try:
            # Generous: the old code is imported cold, and the machine may be busy.
            wait_until_ready(base_url, process, seconds=STARTUP_SECONDS)
        except AssertionError as error:
            log = (tmp_path / "previous.log").read_text(errors="replace")[-3000:]
            try:
                ready = httpx.get(f"{base_url}/readyz", timeout=5).text  # noqa: ASYNC210
            except httpx.HTTPError as failure:
                ready = repr(failure)
            raise AssertionError(f"{error}; /readyz: {ready}; its log:\n{log}") from None
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            await register_and_verify(client, outbox, email="ada@example.org", name="Ada")
            ada = await sign_in(client, email="ada@example.org")
            await import_roadmap(ada, WEB, visibility="public")
            assert (await mark(ada, "etags", "done")).status_code == 200
            assert (await client.get("/v1/roadmaps/web/tree")).status_code == 200
            progress = await client.get("/v1/me/progress/web")
            assert progress.status_code == 200, progress.text
            assert progress.json()["summary"]["counts"]["done"] == 1

    # The current code reads what the previous release wrote.
    async with served(settings_for(migrated_to_head, tmp_path)) as current:
        ada = await sign_in(current, email="ada@example.org")
        progress = await current.get("/v1/me/progress/web")
        assert progress.json()["summary"]["counts"]["done"] == 1
