"""`skilltree import` with an owner, a visibility and the file's ticked boxes applied."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from skilltree.app import create_app
from skilltree.cli import app
from skilltree.platform.config import load_settings

runner = CliRunner()
PLAN = "# Plan\n\n## Basics\n\n- [x] HTTP\n- [ ] SQL\n"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SKILLTREE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("SKILLTREE_LOG_LEVEL", "WARNING")
    assert runner.invoke(app, ["migrate", "upgrade"]).exit_code == 0
    (tmp_path / "password").write_text("a long and unusual passphrase 42", encoding="utf-8")
    created = runner.invoke(
        app,
        ["user", "create", "me@example.org", "--name", "Me", "--password-file", "password"],
    )
    assert created.exit_code == 0, created.output
    (tmp_path / "plan.md").write_text(PLAN, encoding="utf-8")
    return tmp_path


async def anonymous_status(slug: str) -> int:
    server = create_app(load_settings())
    async with server.router.lifespan_context(server):
        transport = httpx.ASGITransport(app=server)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return (await http.get(f"/v1/roadmaps/{slug}")).status_code


def test_an_owned_import_is_private_and_the_ticked_boxes_become_progress(
    workdir: Path,
) -> None:
    result = runner.invoke(
        app, ["import", "plan.md", "--owner", "me@example.org", "--apply-progress"]
    )

    assert result.exit_code == 0, result.output
    assert "progress: http -> done" in result.output
    assert "applied 1 ticked boxes to me@example.org's progress (1 changed)" in result.output
    assert asyncio.run(anonymous_status("plan")) == 404
    again = runner.invoke(
        app, ["import", "plan.md", "--owner", "me@example.org", "--apply-progress"]
    )
    assert "(0 changed)" in again.output


def test_an_owned_import_can_be_made_public(workdir: Path) -> None:
    result = runner.invoke(
        app, ["import", "plan.md", "--owner", "me@example.org", "--visibility", "public"]
    )

    assert result.exit_code == 0, result.output
    assert asyncio.run(anonymous_status("plan")) == 200


def test_a_dry_run_says_which_boxes_would_be_applied(workdir: Path) -> None:
    result = runner.invoke(
        app, ["import", "plan.md", "--owner", "me@example.org", "--apply-progress", "--dry-run"]
    )

    assert result.exit_code == 0, result.output
    assert "would apply 1 ticked boxes to me@example.org's progress" in result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--apply-progress"], "--apply-progress needs --owner"),
        (["--visibility", "private"], "a private roadmap needs --owner"),
        (["--owner", "nobody@example.org"], "No account has the e-mail address"),
    ],
)
def test_import_options_that_cannot_work_are_refused(
    workdir: Path, arguments: list[str], message: str
) -> None:
    result = runner.invoke(app, ["import", "plan.md", *arguments])

    assert result.exit_code == 2
    assert message in result.output
