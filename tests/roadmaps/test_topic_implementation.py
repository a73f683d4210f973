"""A built-in topic's page says whether skilltree implements it, and where: file and lines."""

from __future__ import annotations

import httpx
import pytest
import yaml

from skilltree.platform.db import Database
from skilltree.roadmaps import service
from skilltree.roadmaps.builtin.locations import ROOT
from skilltree.roadmaps.builtin.status import STATUS_FILE, load_status_file
from skilltree.roadmaps.importing import ParsedRoadmap
from skilltree.roadmaps.policies import OPERATOR


@pytest.fixture
async def backend(database: Database, builtin_roadmap: ParsedRoadmap) -> None:
    async with database.unit_of_work() as session:
        await service.import_roadmap(session, builtin_roadmap, viewer=OPERATOR, source="builtin")


async def topic(client: httpx.AsyncClient, slug: str) -> dict[str, object]:
    response = await client.get(f"/v1/roadmaps/backend/topics/{slug}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.usefixtures("backend")
async def test_an_implemented_topic_links_to_files_and_lines(client: httpx.AsyncClient) -> None:
    found = await topic(client, "social-login")

    assert found["implementation"] == {"status": "implemented", "reason": ""}
    references = found["implemented_in"]
    assert isinstance(references, list)
    by_kind = {ref["kind"]: ref for ref in references}
    endpoint = by_kind["endpoint"]
    assert endpoint["path"] == "src/skilltree/accounts/router.py"
    lines = (ROOT / endpoint["path"]).read_text(encoding="utf-8").splitlines()
    handler = "\n".join(lines[endpoint["line_start"] - 1 : endpoint["line_end"]])
    assert "def " in handler
    assert "oidc" in handler or "provider" in handler
    test = by_kind["test"]
    assert test["path"] == "tests/accounts/test_oidc.py"
    assert test["line_start"] <= test["line_end"]


@pytest.mark.usefixtures("backend")
async def test_a_theory_topic_says_why(client: httpx.AsyncClient) -> None:
    found = await topic(client, "osi-model")

    implementation = found["implementation"]
    assert isinstance(implementation, dict)
    assert implementation["status"] == "theory"
    assert implementation["reason"]
    assert found["implemented_in"] == []


def a_planned_topic() -> str:
    """A leaf the status file plans and no reference implements yet: which one changes as the
    codebase grows, so it is looked up rather than named."""
    references = yaml.safe_load((STATUS_FILE.parent / "implemented_in.yaml").read_text())
    return sorted(load_status_file().planned - set(references))[0]


@pytest.mark.usefixtures("backend")
async def test_a_planned_topic_and_a_section_are_told_apart(client: httpx.AsyncClient) -> None:
    assert (await topic(client, a_planned_topic()))["implementation"] == {
        "status": "planned",
        "reason": "",
    }
    assert (await topic(client, "auth"))["implementation"] is None
