"""`skilltree db copy`: a whole installation moved between real databases of every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from skilltree.platform import dbcopy, migrations, tabledata
from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import create_engine
from tests.support.accounts import register_and_verify, sign_in
from tests.support.installation import empty_database, populate, served, settings_for

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
