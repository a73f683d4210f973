"""Pure import planning: which topics an import adds, updates and removes."""

from __future__ import annotations

from skilltree.roadmaps.document import RoadmapDoc, TopicDoc
from skilltree.roadmaps.models import Topic
from skilltree.roadmaps.planning import content_hash, plan_import


def stored(
    topic_id: int, slug: str, parent_id: int | None, position: int, **values: object
) -> Topic:
    defaults: dict[str, object] = {
        "title": slug.title(),
        "summary": "",
        "why": "",
        "level": None,
        "tags": [],
        "seeds": [],
        "aliases": [],
        "resources": [],
        "implemented_in": [],
    }
    defaults.update(values)
    return Topic(id=topic_id, slug=slug, parent_id=parent_id, position=position, **defaults)


def doc(*sections: TopicDoc) -> RoadmapDoc:
    return RoadmapDoc(slug="r", title="R", topics=list(sections))


def test_an_identical_document_plans_no_change() -> None:
    existing = [stored(1, "a", None, 0), stored(2, "b", 1, 0)]
    document = doc(TopicDoc(slug="a", title="A", children=[TopicDoc(slug="b", title="B")]))

    plan = plan_import(existing, document)

    assert not plan.has_changes
    assert plan.unchanged == 2


def test_a_changed_summary_is_reported_by_field() -> None:
    existing = [stored(1, "a", None, 0)]

    plan = plan_import(existing, doc(TopicDoc(slug="a", title="A", summary="new")))

    assert [(u.topic_id, u.changed) for u in plan.updated] == [(1, ("summary",))]


def test_a_topic_missing_from_the_document_is_removed() -> None:
    existing = [stored(1, "a", None, 0), stored(2, "gone", None, 1)]

    plan = plan_import(existing, doc(TopicDoc(slug="a", title="A")))

    assert [t.slug for t in plan.removed] == ["gone"]


def test_the_content_hash_depends_on_content_only() -> None:
    one = doc(TopicDoc(slug="a", title="A"))
    same = doc(TopicDoc(slug="a", title="A"))
    other = doc(TopicDoc(slug="a", title="A2"))

    assert content_hash(one) == content_hash(same) != content_hash(other)
