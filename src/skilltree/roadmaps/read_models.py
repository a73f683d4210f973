"""What the roadmaps domain hands out: frozen copies of its rows, never the rows themselves.

A row handed to a router or another domain is a live object of someone else's unit of work:
changing it writes to the database, reading one of its unloaded columns queries behind the
caller's back, and it is only as fresh as that session. A frozen read model is none of these,
so the service converts at its edge (`tests/roadmaps/test_read_models.py` checks that no
public function of the domain's services returns a table row).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

from skilltree.roadmaps.models import Roadmap, Topic


@dataclass(frozen=True, slots=True)
class RoadmapRef:
    """A roadmap as other domains and the routes read it (its topics are loaded apart)."""

    id: int
    slug: str
    title: str
    description: str
    source: str  # builtin, import, custom or fork
    version: int
    visibility: str
    owner_id: int | None
    org_id: int | None
    updated_at: datetime

    @classmethod
    def of(cls, row: Roadmap) -> RoadmapRef:
        return cls(
            row.id,
            row.slug,
            row.title,
            row.description,
            row.source,
            row.version,
            row.visibility,
            row.owner_id,
            row.org_id,
            row.updated_at,
        )


@dataclass(frozen=True, slots=True)
class TopicRef:
    """A topic's place in its tree and what an outline shows of it."""

    id: int
    roadmap_id: int
    parent_id: int | None
    position: int
    slug: str
    title: str
    summary: str
    concept: str | None
    estimate_hours: float | None

    @classmethod
    def of(cls, row: Topic) -> TopicRef:
        return cls(
            row.id,
            row.roadmap_id,
            row.parent_id,
            row.position,
            row.slug,
            row.title,
            row.summary,
            row.concept,
            row.estimate_hours,
        )


@dataclass(frozen=True, slots=True)
class TopicDetail(TopicRef):
    """Everything a topic says: what its page, exports, forks and revisions show."""

    why: str
    level: str | None
    tags: tuple[str, ...]
    seeds: tuple[str, ...]
    aliases: tuple[str, ...]
    resources: tuple[dict[str, Any], ...]
    implemented_in: tuple[dict[str, Any], ...]
    checkbox: bool | None
    updated_at: datetime

    @classmethod
    def of(cls, row: Topic) -> TopicDetail:
        return cls(
            row.id,
            row.roadmap_id,
            row.parent_id,
            row.position,
            row.slug,
            row.title,
            row.summary,
            row.concept,
            row.estimate_hours,
            row.why,
            row.level,
            tuple(row.tags),
            tuple(row.seeds),
            tuple(row.aliases),
            tuple(row.resources),
            tuple(row.implemented_in),
            row.checkbox,
            row.updated_at,
        )


# A tree of outline topics (what progress rolls up) or of whole topics (pages, exports). The
# type is covariant: a tree of details may be read wherever a tree of outlines is expected.
AnyTopic = TypeVar("AnyTopic", bound=TopicRef, covariant=True)


@dataclass(frozen=True, slots=True)
class TopicNode(Generic[AnyTopic]):
    topic: AnyTopic
    children: tuple[TopicNode[AnyTopic], ...] = ()


@dataclass(frozen=True, slots=True)
class RoadmapTree(Generic[AnyTopic]):
    roadmap: RoadmapRef
    sections: tuple[TopicNode[AnyTopic], ...]
    topic_count: int


@dataclass(frozen=True, slots=True)
class RoadmapListing:
    roadmap: RoadmapRef
    topic_count: int


@dataclass(frozen=True, slots=True)
class TopicView:
    """A topic with the path of sections above it and the subtopics right below it."""

    roadmap: RoadmapRef
    topic: TopicDetail
    ancestors: tuple[TopicRef, ...]
    children: tuple[TopicRef, ...]


class TopicPlace(NamedTuple):
    """What a write about one topic needs of it: which topic, in which roadmap."""

    id: int
    roadmap_id: int
    slug: str


class TreeTopic(NamedTuple):
    """One topic as the tree's JSON shows it, straight from its columns: a tuple, so a tree of
    10,000 topics costs no object per topic beyond the row itself (decision 0043)."""

    id: int
    parent_id: int | None
    slug: str
    title: str
    summary: str
    level: str | None
    tags: list[str]
    implemented: bool
    concept: str | None
    estimate_hours: float | None


@dataclass(frozen=True, slots=True)
class TreeRows:
    """A roadmap and its topics grouped by parent, siblings by position (the groups in any
    order: the sections may come last)."""

    roadmap: RoadmapRef
    topics: Sequence[TreeTopic]


Nested = TypeVar("Nested", bound=TopicRef)


def nest(topics: Sequence[Nested]) -> tuple[TopicNode[Nested], ...]:
    """Topics in tree order (grouped by parent, siblings by position) as nested nodes."""
    children: dict[int | None, list[Nested]] = {}
    for topic in topics:
        children.setdefault(topic.parent_id, []).append(topic)

    def below(parent_id: int | None) -> tuple[TopicNode[Nested], ...]:
        return tuple(TopicNode(topic, below(topic.id)) for topic in children.get(parent_id, ()))

    return below(None)


def walk(nodes: Iterable[TopicNode[Nested]]) -> Iterator[TopicNode[Nested]]:
    """Every node of `nodes` and of their subtrees, depth first in document order (each node
    before its children, as the roadmap lists its topics)."""
    for node in nodes:
        yield node
        yield from walk(node.children)


def count_nodes(nodes: Iterable[TopicNode[TopicRef]]) -> int:
    """How many topics `nodes` and their subtrees hold."""
    return sum(1 for _ in walk(nodes))
