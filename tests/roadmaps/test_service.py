"""Import semantics: stable ids across re-imports, moves and edits; the built-in roadmap."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.roadmaps import service
from skilltree.roadmaps.errors import BuiltinRoadmapProtected
from skilltree.roadmaps.importing import ParsedRoadmap, parse_roadmap
from skilltree.roadmaps.models import Topic
from skilltree.roadmaps.policies import OPERATOR


async def import_as_operator(
    session: AsyncSession, parsed: ParsedRoadmap, **options: Any
) -> service.ImportReport:
    return await service.import_roadmap(session, parsed, viewer=OPERATOR, **options)


def markdown(text: str) -> ParsedRoadmap:
    return parse_roadmap(text.encode(), "markdown")


async def topic_ids(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Topic.slug, Topic.id))
    return dict(rows.all())


async def test_moving_a_topic_keeps_its_id(session: AsyncSession) -> None:
    await import_as_operator(session, markdown("# R\n\n## A\n\n- Keep me\n\n## B\n\n- Other\n"))
    before = await topic_ids(session)

    report = await import_as_operator(
        session, markdown("# R\n\n## A\n\n- Other2\n\n## B\n\n- Other\n- Keep me\n")
    )

    after = await topic_ids(session)
    assert after["keep-me"] == before["keep-me"]
    moved = next(u for u in report.plan.updated if u.planned.slug == "keep-me")
    assert set(moved.changed) == {"parent", "position"}
    view = await service.get_topic(session, "r", "keep-me", OPERATOR)
    assert [t.slug for t in view.ancestors] == ["b"]


async def test_a_topic_moved_under_a_new_parent_keeps_its_id(session: AsyncSession) -> None:
    await import_as_operator(session, markdown("# R\n\n## A\n\n- Leaf\n"))
    before = await topic_ids(session)

    await import_as_operator(session, markdown("# R\n\n## A\n\n- Group\n  - Leaf\n"))

    view = await service.get_topic(session, "r", "leaf", OPERATOR)
    assert view.topic.id == before["leaf"]
    assert [t.slug for t in view.ancestors] == ["a", "group"]


async def test_removing_a_parent_keeps_a_child_that_moved_elsewhere(session: AsyncSession) -> None:
    await import_as_operator(session, markdown("# R\n\n## A\n\n- Old group\n  - Child\n"))
    before = await topic_ids(session)

    await import_as_operator(session, markdown("# R\n\n## A\n\n- Child\n"))

    after = await topic_ids(session)
    assert "old-group" not in after
    assert after["child"] == before["child"]


async def test_dry_run_reports_changes_without_writing(session: AsyncSession) -> None:
    await import_as_operator(session, markdown("# R\n\n## A\n\n- One\n"))

    report = await import_as_operator(
        session, markdown("# R\n\n## A\n\n- One\n- Two\n"), dry_run=True
    )

    assert [p.slug for p in report.plan.added] == ["two"]
    assert "two" not in await topic_ids(session)


async def test_an_import_cannot_replace_the_builtin_roadmap(
    session: AsyncSession, builtin_roadmap: ParsedRoadmap
) -> None:
    await import_as_operator(session, builtin_roadmap, source="builtin")

    with pytest.raises(BuiltinRoadmapProtected):
        await import_as_operator(session, markdown("# Backend\n\n## A\n\n- One\n"), slug="backend")


async def test_loading_the_builtin_roadmap_twice_changes_nothing(
    session: AsyncSession, builtin_roadmap: ParsedRoadmap
) -> None:
    first = await import_as_operator(session, builtin_roadmap, source="builtin")
    second = await import_as_operator(session, builtin_roadmap, source="builtin")

    assert first.created
    assert len(first.plan.added) > 200
    assert not second.plan.has_changes
    assert second.roadmap is not None
    assert second.roadmap.version == 1
