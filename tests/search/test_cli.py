"""`skilltree search reindex` on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from skilltree.cli import app

runner = CliRunner()


def test_reindex_indexes_every_topic_of_the_builtin_roadmap(workdir: Path) -> None:
    loaded = runner.invoke(app, ["roadmap", "load-builtin"])
    assert loaded.exit_code == 0, loaded.output

    first = runner.invoke(app, ["search", "reindex"])
    again = runner.invoke(app, ["search", "reindex"])

    assert first.exit_code == 0, first.output
    count = int(first.output.strip().splitlines()[-1].split()[1])
    assert count > 400  # the built-in roadmap's topics
    assert "indexing" in first.output
    assert again.output.strip().splitlines()[-1] == f"indexed {count} documents"
