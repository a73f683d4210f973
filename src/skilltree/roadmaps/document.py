"""The portable shape of a roadmap: what importers produce, exporters write and the service stores.

One schema serves the built-in YAML file, JSON/YAML imports and the JSON export, so a roadmap
round-trips through export and import unchanged.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from skilltree.identity.slug import Slug

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
EstimateHours = Annotated[float, Field(gt=0, le=10_000)]
Level = Literal["beginner", "intermediate", "advanced"]
TopicStatus = Literal["todo", "in_progress", "done", "skipped"]
ResourceType = Literal["link", "spec", "docs", "article", "book", "video", "course", "tool"]
ReferenceKind = Literal["module", "endpoint", "test", "file"]


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class ResourceDoc(_Document):
    title: Title
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2048)]
    type: ResourceType = "link"


class ReferenceDoc(_Document):
    """Where this codebase implements a topic: a module (or module:symbol), an endpoint, a test,
    or a file that is not Python (a CI script, a Makefile) by its path from the repository root."""

    kind: ReferenceKind
    target: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class TopicDoc(_Document):
    slug: Slug | None = None
    title: Title
    summary: str = ""
    why: str = ""
    level: Level | None = None
    tags: list[str] = Field(default_factory=list)
    seeds: list[str] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)
    resources: list[ResourceDoc] = Field(default_factory=list)
    implemented_in: list[ReferenceDoc] = Field(default_factory=list)
    # The canonical concept this topic teaches ("http-caching"): topics of different roadmaps
    # with the same concept share a learner's progress (when the learner's profile allows it).
    concept: Slug | None = None
    # How long the topic takes to learn, for the remaining-time estimate of a roadmap.
    estimate_hours: EstimateHours | None = None
    # The checkbox state found in the source ([x] done, [/] in progress, [-] skipped).
    status: TopicStatus | None = None
    # Whether the source wrote the item as a task ("- [ ]", True) or a plain bullet (False);
    # None when the source does not say (YAML, JSON, headings). The markdown export follows it.
    checkbox: bool | None = None
    # 1-based line in the source file, for previews and error messages; never exported.
    line: int | None = Field(default=None, exclude=True)
    children: list[TopicDoc] = Field(default_factory=list)


class RoadmapDoc(_Document):
    slug: Slug | None = None
    title: Title
    description: str = ""
    topics: list[TopicDoc] = Field(default_factory=list)


def iter_topics(topics: list[TopicDoc], depth: int = 1) -> list[tuple[TopicDoc, int]]:
    """Every topic of a tree in document order with its depth (sections are depth 1)."""
    flat: list[tuple[TopicDoc, int]] = []
    for topic in topics:
        flat.append((topic, depth))
        flat.extend(iter_topics(topic.children, depth + 1))
    return flat
