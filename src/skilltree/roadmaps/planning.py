"""Re-import without losing anything: compare a parsed document with the stored tree.

Topics are matched by slug, which importers derive deterministically from titles, so a re-import
of the same file touches nothing, and an edited file changes only the topics that changed.
Topic ids survive edits, moves and renames-with-explicit-slug, so everything keyed to a topic id
(learners' progress) survives them too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from skilltree.roadmaps.document import RoadmapDoc, TopicDoc
from skilltree.roadmaps.models import Topic
from skilltree.roadmaps.read_models import TopicRef

# The stored columns an import may change; compared one by one to report what changed.
CONTENT_FIELDS = (
    "title",
    "summary",
    "why",
    "level",
    "tags",
    "seeds",
    "aliases",
    "resources",
    "implemented_in",
    "concept",
    "estimate_hours",
    "checkbox",
)


@dataclass(frozen=True)
class PlannedTopic:
    slug: str
    parent_slug: str | None
    position: int
    depth: int
    values: dict[str, Any]


@dataclass(frozen=True)
class TopicUpdate:
    topic_id: int
    planned: PlannedTopic
    changed: tuple[str, ...]


@dataclass
class ImportPlan:
    added: list[PlannedTopic] = field(default_factory=list)
    updated: list[TopicUpdate] = field(default_factory=list)
    removed: list[TopicRef] = field(default_factory=list)
    unchanged: int = 0

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def content_hash(document: RoadmapDoc) -> str:
    canonical = orjson.dumps(document.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def flatten(document: RoadmapDoc) -> list[PlannedTopic]:
    """Document order (parents before children) with each topic's place in the tree."""
    planned: list[PlannedTopic] = []

    def walk(topics: list[TopicDoc], parent_slug: str | None, depth: int) -> None:
        for position, topic in enumerate(topics):
            if topic.slug is None:
                raise ValueError(f"topic {topic.title!r} has no slug; importers assign them")
            planned.append(
                PlannedTopic(
                    slug=topic.slug,
                    parent_slug=parent_slug,
                    position=position,
                    depth=depth,
                    values=topic_values(topic),
                )
            )
            walk(topic.children, topic.slug, depth + 1)

    walk(document.topics, None, 1)
    return planned


def topic_values(topic: TopicDoc) -> dict[str, Any]:
    dumped = topic.model_dump(mode="json", include=set(CONTENT_FIELDS))
    return {name: dumped[name] for name in CONTENT_FIELDS}


def plan_import(existing: Sequence[Topic], document: RoadmapDoc) -> ImportPlan:
    """What must be added, updated and removed to make the stored tree equal the document."""
    by_slug = {topic.slug: topic for topic in existing}
    slug_of = {topic.id: topic.slug for topic in existing}
    plan = ImportPlan()
    wanted: set[str] = set()
    for planned in flatten(document):
        wanted.add(planned.slug)
        current = by_slug.get(planned.slug)
        if current is None:
            plan.added.append(planned)
            continue
        changed = _changed_fields(current, planned, slug_of)
        if changed:
            plan.updated.append(TopicUpdate(current.id, planned, changed))
        else:
            plan.unchanged += 1
    plan.removed = [TopicRef.of(topic) for topic in existing if topic.slug not in wanted]
    return plan


def _changed_fields(
    current: Topic, planned: PlannedTopic, slug_of: dict[int, str]
) -> tuple[str, ...]:
    changed = [name for name in CONTENT_FIELDS if getattr(current, name) != planned.values[name]]
    current_parent = slug_of.get(current.parent_id) if current.parent_id is not None else None
    if current_parent != planned.parent_slug:
        changed.append("parent")
    if current.position != planned.position:
        changed.append("position")
    return tuple(changed)
