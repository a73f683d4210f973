"""Pages read what they show once: a topic page loads its roadmap's tree a single time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from skilltree.roadmaps import repository
from tests.support.accounts import Browser
from tests.support.progress import WEB, import_roadmap, mark
from tests.support.queries import count_statements

HTML = {"accept": "text/html"}


def tree_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call that reads a whole roadmap's topics (the full tree or its outline)."""
    calls: list[str] = []
    for name in ("load_topics", "load_topics_of", "load_outline"):
        original = getattr(repository, name)

        def counted(*args: Any, _name: str = name, _original: Any = original) -> Awaitable[Any]:
            calls.append(_name)
            result: Awaitable[Sequence[Any]] = _original(*args)
            return result

        monkeypatch.setattr(repository, name, counted)
    return calls


async def test_a_signed_in_topic_page_loads_the_roadmap_tree_once(
    people: Callable[[str], Awaitable[Browser]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ada = await people("Ada")
    await import_roadmap(ada, WEB)
    await mark(ada, "etags", "done")
    await ada.client.put(
        "/v1/me/progress/web/etags/note",
        json={"markdown": "weak vs strong"},
        headers=ada.write_headers,
    )
    calls = tree_loads(monkeypatch)
    page = await ada.client.get("/roadmaps/web/topics/etags", headers=HTML)
    assert page.status_code == 200
    assert "weak vs strong" in page.text
    assert calls == ["load_topics_of"]


async def test_an_anonymous_topic_page_loads_the_roadmap_tree_once(
    people: Callable[[str], Awaitable[Browser]],
    monkeypatch: pytest.MonkeyPatch,
    client: Any,
) -> None:
    ada = await people("Ada")
    await import_roadmap(ada, WEB, visibility="public")
    calls = tree_loads(monkeypatch)
    page = await client.get("/roadmaps/web/topics/etags", headers=HTML)
    assert page.status_code == 200
    assert calls == ["load_topics_of"]


async def test_a_topic_page_runs_as_many_statements_for_a_large_roadmap_as_a_small_one(
    people: Callable[[str], Awaitable[Browser]], engine: AsyncEngine
) -> None:
    ada = await people("Ada")
    small = {**WEB, "slug": "small"}
    large = {
        **WEB,
        "slug": "large",
        "topics": [
            *WEB["topics"],
            *(
                {
                    "slug": f"s{s}",
                    "title": f"S{s}",
                    "children": [{"slug": f"s{s}-t{t}", "title": f"T{s}.{t}"} for t in range(20)],
                }
                for s in range(10)
            ),
        ],
    }
    counts = {}
    for document in (small, large):
        await import_roadmap(ada, document)
        await mark(ada, "etags", "done", roadmap=document["slug"])
        with count_statements(engine) as log:
            page = await ada.client.get(f"/roadmaps/{document['slug']}/topics/etags", headers=HTML)
        assert page.status_code == 200
        counts[document["slug"]] = log.count
    assert counts["small"] == counts["large"]
