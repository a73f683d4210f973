"""Tests of the background machinery (the queue, and e-mail through the outbox) commit for real,
since workers use many connections: on each backend's shared migrated database, with the
background tables emptied before and after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from skilltree.platform.config import AppSettings, DatabaseSettings, MailSettings, Settings
from skilltree.platform.db import Database
from tests.support.background import empty_background_tables, fast_queue_settings


@pytest.fixture
async def bg_database(engine: AsyncEngine) -> AsyncIterator[Database]:
    await empty_background_tables(engine)
    yield Database(engine)
    await empty_background_tables(engine)


@pytest.fixture
def bg_settings(engine: AsyncEngine, tmp_path: Path) -> Settings:
    return Settings(
        app=AppSettings(env="test"),
        database=DatabaseSettings(url=engine.url.render_as_string(hide_password=False)),
        mail=MailSettings(outbox_dir=tmp_path / "outbox"),
        queue=fast_queue_settings(),
    )
