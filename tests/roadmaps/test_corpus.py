"""Checklist shapes found in public repositories (each fixture written here, in that shape): every
one imports with the expected sections, topics, skipped lines and no merged items, through the
parser, the API (dry run and import) and the command line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from skilltree.cli import app as cli
from skilltree.roadmaps.document import TopicDoc, iter_topics
from skilltree.roadmaps.importing import parse_roadmap
from tests.support.accounts import Browser

CORPUS = Path(__file__).parent / "corpus"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load(
    (CORPUS / "expected.yaml").read_text(encoding="utf-8")
)
runner = CliRunner()


def test_the_corpus_holds_at_least_twenty_shapes() -> None:
    assert len(EXPECTED) >= 20
    assert sorted(EXPECTED) == sorted(path.name for path in CORPUS.glob("*.md"))


def links_in(topics: list[TopicDoc]) -> list[str]:
    return [resource.url for topic, _ in iter_topics(topics) for resource in topic.resources]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_shape_parses_as_expected_without_merging(name: str) -> None:
    expected = EXPECTED[name]

    parsed = parse_roadmap((CORPUS / name).read_bytes(), "markdown", source_name=name)

    flat = iter_topics(parsed.document.topics)
    assert parsed.document.title == expected["title"]
    assert len(parsed.document.topics) == expected["sections"]
    assert len(flat) == expected["topics"]
    assert len(parsed.items) == expected["items"]
    assert [line for line, _ in parsed.skipped] == expected["skipped"]
    assert sum(1 for topic, _ in flat if topic.status == "done") == expected["done"]
    assert len(links_in(parsed.document.topics)) == expected["resources"]
    assert parsed.repaired_encoding == expected["encoding"]
    assert parsed.warnings == []  # nothing merged
    assert len({topic.slug for topic, _ in flat}) == len(flat)


@pytest.fixture
async def author(people: Callable[[str], Awaitable[Browser]]) -> httpx.AsyncClient:
    browser = await people("Author")
    browser.client.headers.update(browser.write_headers)
    return browser.client


async def test_each_shape_imports_through_the_api_dry_run_then_for_real(
    author: httpx.AsyncClient,
) -> None:
    for name, expected in sorted(EXPECTED.items()):
        slug = Path(name).stem
        body = (CORPUS / name).read_bytes()
        headers = {"content-type": "text/markdown"}

        preview = await author.post(
            "/v1/roadmaps/import",
            content=body,
            headers=headers,
            params={"dry_run": "true", "slug": slug},
        )
        imported = await author.post(
            "/v1/roadmaps/import", content=body, headers=headers, params={"slug": slug}
        )

        assert preview.status_code == 200, (name, preview.text)
        report = preview.json()
        assert report["topic_count"] == expected["topics"], name
        assert report["item_count"] == expected["items"], name
        assert [s["line"] for s in report["skipped"]] == expected["skipped"], name
        assert report["warnings"] == [], name
        assert imported.status_code == 201, (name, imported.text)
        assert imported.json()["topic_count"] == expected["topics"], name
        tree = (await author.get(f"/v1/roadmaps/{slug}/tree")).json()
        assert tree["roadmap"]["topic_count"] == expected["topics"], name


def test_each_shape_imports_through_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SKILLTREE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("SKILLTREE_LOG_LEVEL", "WARNING")
    assert runner.invoke(cli, ["migrate", "upgrade"]).exit_code == 0

    for name, expected in sorted(EXPECTED.items()):
        path = str(CORPUS / name)
        dry = runner.invoke(cli, ["import", path, "--dry-run"])
        real = runner.invoke(cli, ["import", path])

        assert dry.exit_code == 0, (name, dry.output)
        assert f"{expected['items']} items; {expected['topics']} added" in dry.output, name
        assert "warning:" not in dry.output, name
        for line in expected["skipped"]:
            assert f"skipped line {line}:" in dry.output, name
        assert real.exit_code == 0, (name, real.output)
        assert f"{expected['topics']} added" in real.output, name


def test_the_sample_checklist_of_the_readme_imports_with_its_ticked_boxes() -> None:
    sample = Path(__file__).parents[2] / "examples" / "backend-checklist.md"

    parsed = parse_roadmap(sample.read_bytes(), "markdown", source_name=sample.name)

    assert parsed.document.slug == "my-backend-checklist"
    assert len(parsed.items) == 9
    assert parsed.skipped == []
    assert parsed.warnings == []
    ticked = [t.status for t, _ in iter_topics(parsed.document.topics) if t.status != "todo"]
    assert ticked.count("done") == 2
    assert ticked.count("in_progress") == 1
    assert len(links_in(parsed.document.topics)) == 2
