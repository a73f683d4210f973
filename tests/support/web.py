"""The web app in a real browser: skilltree under uvicorn on a free loopback port, driven by
Playwright through Debian's Chromium (Playwright's own browser download is never used).

The server runs in a subprocess with its own SQLite file (migrated, the built-in roadmap
loaded) and outbox folder, exactly as `make run` serves it, so the pages, the session cookie,
the CSP and the scripts are the production ones.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from skilltree.platform import migrations
from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import Database, create_engine
from skilltree.platform.mail import read_outbox
from skilltree.roadmaps import service
from skilltree.roadmaps.builtin import load_builtin
from skilltree.roadmaps.policies import OPERATOR
from skilltree.search import service as search
from tests.support.accounts import TOKEN, text_of
from tests.support.databases import IN_CI

CHROMIUM = os.environ.get("SKILLTREE_TEST_CHROMIUM") or shutil.which("chromium") or ""
# Where screenshots go: a folder of the test run, or docs/ui/ when refreshing the README's.
SCREENSHOTS = os.environ.get("SKILLTREE_SCREENSHOTS_DIR")
WIDTHS = {"phone": 375, "desktop": 1280}
# Generous: on a machine shared with other test suites, importing the app alone can take a minute.
START_SECONDS = 240


def require_chromium() -> str:
    if CHROMIUM and Path(CHROMIUM).exists():
        return CHROMIUM
    reason = "Chromium not found (apt-get install chromium, or set SKILLTREE_TEST_CHROMIUM)"
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: browser tests must run)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _prepare(url: str) -> None:
    engine = create_engine(DatabaseSettings(url=url))
    try:
        await migrations.upgrade(engine)
        database = Database(engine)
        async with database.unit_of_work() as session:
            await service.import_roadmap(session, load_builtin(), viewer=OPERATOR, source="builtin")
        # What `skilltree search reindex` does on a deployment: the server here runs no worker
        # to index the import's events, and the search page needs the built-in roadmap.
        async with database.unit_of_work() as session:
            await search.reindex(session, lambda _: None)
    finally:
        await engine.dispose()


@dataclass
class LiveServer:
    url: str
    outbox: Path
    process: asyncio.subprocess.Process
    log: Path

    def last_link(self, to: str) -> str:
        """The link in the newest e-mail to `to`, as the reader would click it."""
        for message in reversed(read_outbox(self.outbox)):
            if message["To"] == to:
                text = text_of(message)
                for word in text.split():
                    if word.startswith(self.url) and TOKEN.search(word):
                        return word
        raise AssertionError(f"no e-mail with a link to {to}")


@asynccontextmanager
async def live_server(directory: Path, **environment: str) -> AsyncIterator[LiveServer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database_url = f"sqlite+aiosqlite:///{directory / 'skilltree.db'}"
    await _prepare(database_url)
    env = {
        **os.environ,
        "SKILLTREE_DATABASE_URL": database_url,
        "SKILLTREE_MAIL_OUTBOX_DIR": str(directory / "outbox"),
        "SKILLTREE_MAIL_PUBLIC_URL": url,
        "SKILLTREE_AUTH_COOKIE_SECURE": "false",
        "SKILLTREE_RATE_LIMIT_ENABLED": "false",
        "SKILLTREE_LOG_ACCESS_LOG": "false",
        **environment,
    }
    log = directory / "server.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "skilltree.app:create_app_from_environment",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            env=env,
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        await _wait_until_live(url, process, log)
        yield LiveServer(url, directory / "outbox", process, log)
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=15)
        except TimeoutError:
            process.kill()
            await process.wait()


def _read(log: Path) -> str:
    return log.read_text(errors="replace")


async def _wait_until_live(url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise AssertionError(f"the server exited:\n{_read(log)}")
            try:
                if (await client.get(f"{url}/livez")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"the server did not start in {START_SECONDS} s:\n{_read(log)}")


async def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is now."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"][:5]],
        }
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


async def screenshots(page: Any, name: str, directory: Path) -> None:
    """The page at a phone's width and a laptop's, full length."""
    target = Path(SCREENSHOTS) if SCREENSHOTS else directory
    target.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    for label, width in WIDTHS.items():
        await page.set_viewport_size({"width": width, "height": 800 if width > 600 else 740})
        await page.screenshot(path=target / f"{name}-{label}.png")
    await page.set_viewport_size(original)
