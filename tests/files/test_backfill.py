"""`skilltree files backfill-variants`: images stored without their variants get the task
queued once, however often the command runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from skilltree.cli import app as cli
from skilltree.files import service
from skilltree.platform.clock import SystemClock
from skilltree.platform.queue.models import OutboxMessage
from tests.files.conftest import (
    ATTACHMENTS,
    make_image_variants,
    png,
    put_avatar,
    upload,
)
from tests.support.accounts import Browser


async def forget_queued_variants(app: FastAPI) -> None:
    """As if the images had been stored before the variants task existed."""
    async with app.state.resources.database.unit_of_work() as session:
        await session.execute(
            delete(OutboxMessage).where(OutboxMessage.task_name == service.VARIANTS_TASK)
        )


async def backfill(app: FastAPI) -> service.Backfill:
    looked_at: list[int] = []
    async with app.state.resources.database.unit_of_work() as session:
        return await service.backfill_variants(session, SystemClock().now(), looked_at.append)


async def queued_tasks(app: FastAPI) -> int:
    query = select(func.count()).where(OutboxMessage.task_name == service.VARIANTS_TASK)
    async with app.state.resources.database.unit_of_work() as session:
        return int((await session.execute(query)).scalar_one())


async def test_images_without_variants_are_queued_once(ada: Browser, app: FastAPI) -> None:
    await upload(ada, png(300, 200))
    await put_avatar(ada, png(100, 100))
    await upload(ada, b"plain words\n", "notes.txt", "text/plain")
    await forget_queued_variants(app)

    first = await backfill(app)
    second = await backfill(app)

    assert (first.queued, first.already_queued) == (2, 0)  # the attachment and the avatar
    assert (second.queued, second.already_queued) == (0, 2)
    assert await queued_tasks(app) == 2


async def test_a_backfilled_image_gets_its_thumbnail(ada: Browser, app: FastAPI) -> None:
    await upload(ada, png(300, 200))
    await forget_queued_variants(app)
    await backfill(app)

    await make_image_variants(app)

    [item] = (await ada.client.get(ATTACHMENTS)).json()["items"]
    assert (await ada.client.get(item["thumbnail_url"])).status_code == 200
    async with app.state.resources.database.unit_of_work() as session:
        assert await service.images_missing_variants(session) == 0
    assert await backfill(app) == service.Backfill(0, 0)


runner = CliRunner()


def test_the_command_queues_each_image_once_with_a_progress_bar(workdir: Path) -> None:
    (workdir / "password").write_text("a long enough passphrase for ada", encoding="utf-8")
    created = runner.invoke(
        cli, ["user", "create", "ada@example.org", "--name", "Ada", "--password-file", "password"]
    )
    assert created.exit_code == 0, created.output
    with sqlite3.connect(workdir / "cli.db") as db:
        user_id = db.execute("SELECT id FROM users").fetchone()[0]
        for number, content_type in enumerate(("image/png", "image/jpeg", "application/pdf")):
            db.execute(
                "INSERT INTO stored_files (key, user_id, kind, filename, content_type, size,"
                " sha256, created_at) VALUES (?, ?, 'attachment', 'f', ?, 1, ?, '2026-01-01')",
                (f"attachments/{user_id}/{number}", user_id, content_type, "0" * 64),
            )

    first = runner.invoke(cli, ["files", "backfill-variants"])
    again = runner.invoke(cli, ["files", "backfill-variants"])

    assert first.exit_code == 0, first.output
    assert "checking" in first.output
    assert "2/2" in first.output
    assert first.output.strip().splitlines()[-1] == (
        "queued 2 image(s) for their variants (0 already queued)"
    )
    assert again.output.strip().splitlines()[-1] == (
        "queued 0 image(s) for their variants (2 already queued)"
    )
    with sqlite3.connect(workdir / "cli.db") as db:
        [(queued,)] = db.execute("SELECT count(*) FROM outbox_messages").fetchall()
    assert queued == 2
