"""`skilltree db copy`: a whole installation moved between real databases of every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skilltree.cli import app
from skilltree.platform import dbcopy, migrations, tabledata
from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import create_engine
from tests.support.accounts import register_and_verify, sign_in
from tests.support.installation import empty_database, populate, served, settings_for

runner = CliRunner()

BACKENDS = {
    "sqlite": (),
    "postgresql": (pytest.mark.postgres,),
    "mariadb": (pytest.mark.mariadb,),
}
PAIRS = [
    pytest.param(
        source, target, marks=[*BACKENDS[source], *BACKENDS[target]], id=f"{source}-{target}"
    )
    for source in BACKENDS
    for target in BACKENDS
    if source != target
]


class Sources:
    """One populated installation per backend, made on first use and shared by the module's
    tests (a copy only reads its source)."""

    def __init__(self, stack: AsyncExitStack, tmp: pytest.TempPathFactory) -> None:
        self.stack, self.tmp = stack, tmp
        self.made: dict[str, str] = {}

    async def url(self, backend: str) -> str:
        if backend not in self.made:
            directory = self.tmp.mktemp(f"source-{backend}")
            url = await self.stack.enter_async_context(empty_database(backend, directory))
            engine = create_engine(DatabaseSettings(url=url))
            await migrations.upgrade(engine)
            await engine.dispose()
            await populate(settings_for(url, directory))
            self.made[backend] = url
        return self.made[backend]


@pytest.fixture(scope="module")
async def sources(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sources]:
    async with AsyncExitStack() as stack:
        yield Sources(stack, tmp_path_factory)


async def summaries(url: str) -> dict[str, tabledata.TableSummary]:
    engine = create_engine(DatabaseSettings(url=url))
    try:
        return await tabledata.summarise_all(engine)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("source_backend", "target_backend"), PAIRS)
async def test_a_copy_carries_every_row_and_the_target_serves_them(
    sources: Sources, source_backend: str, target_backend: str, tmp_path: Path
) -> None:
    source = await sources.url(source_backend)
    async with empty_database(target_backend, tmp_path) as target:
        report = await dbcopy.copy_database(source, target, batch_rows=5)

        assert report.tables == await summaries(source)
        assert report.tables["topics"].rows == 14
        settings = settings_for(target, tmp_path)
        async with served(settings) as client:
            ada = await sign_in(client, email="ada@example.org")
            progress = await ada.client.get("/v1/me/progress/web")
            note = await ada.client.get("/v1/me/progress/web/etags/note")
            fork = await ada.client.get("/v1/roadmaps/my-web")
            # New rows get new ids after the copied ones (PostgreSQL's sequences were moved on).
            await register_and_verify(
                client, settings.mail.outbox_dir, email="grace@example.org", name="Grace"
            )
        assert progress.status_code == 200
        assert progress.json()["summary"]["counts"]["done"] == 1
        assert "«W/» prefix 🚀" in note.json()["markdown"]
        assert fork.json()["source"] == "fork"


async def test_a_target_with_data_is_refused_unless_replace_is_given(
    sources: Sources, tmp_path: Path
) -> None:
    source = await sources.url("sqlite")
    async with empty_database("sqlite", tmp_path) as target:
        await dbcopy.copy_database(source, target)
        async with served(settings_for(target, tmp_path)) as client:
            await register_and_verify(
                client, tmp_path / "outbox", email="grace@example.org", name="Grace"
            )
        changed = await summaries(target)

        with pytest.raises(dbcopy.CopyRefused, match="already holds data"):
            await dbcopy.copy_database(source, target)
        assert await summaries(target) == changed

        report = await dbcopy.copy_database(source, target, replace=True)
        assert report.tables == await summaries(source)


async def test_a_copy_that_fails_half_way_leaves_the_target_empty_and_can_be_run_again(
    sources: Sources, tmp_path: Path
) -> None:
    source = await sources.url("sqlite")
    seen: list[tuple[str, int]] = []

    def crash_in_topics(table: str, done: int, total: int) -> None:
        seen.append((table, done))
        if table == "topics" and done > 0:
            raise KeyboardInterrupt  # the operator's Ctrl-C, half-way through

    async with empty_database("sqlite", tmp_path) as target:
        with pytest.raises(KeyboardInterrupt):
            await dbcopy.copy_database(source, target, batch_rows=3, progress=crash_in_topics)
        assert {summary.rows for summary in (await summaries(target)).values()} == {0}

        report = await dbcopy.copy_database(source, target, batch_rows=3)
    assert report.tables == await summaries(source)
    # Progress came batch by batch, never more than a batch at a time.
    topics = [done for table, done in seen if table == "topics"]
    assert topics == [0, 3]


def test_the_command_copies_and_refuses_with_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKILLTREE_LOG_LEVEL", "WARNING")
    source = f"sqlite+aiosqlite:///{tmp_path}/source.db"
    target = f"sqlite+aiosqlite:///{tmp_path}/target.db"
    monkeypatch.setenv("SKILLTREE_DATABASE_URL", source)
    assert runner.invoke(app, ["migrate", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["roadmap", "load-builtin"]).exit_code == 0

    copied = runner.invoke(app, ["db", "copy", "--from", source, "--to", target])
    again = runner.invoke(app, ["db", "copy", "--from", source, "--to", target])
    bad_url = runner.invoke(app, ["db", "copy", "--from", "oracle://x", "--to", target])

    assert copied.exit_code == 0, copied.output
    assert "verified" in copied.output
    assert "topics" in copied.output  # the progress bar names each table
    assert again.exit_code == 2
    assert "already holds data" in again.output
    assert bad_url.exit_code == 2
