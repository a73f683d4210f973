"""Response and request models of the roadmaps API (never the ORM classes themselves)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from skilltree.roadmaps.document import Level, ReferenceKind, ResourceType, TopicStatus


class RoadmapOut(BaseModel):
    slug: str
    title: str
    description: str
    source: str = Field(description="builtin (shipped with skilltree) or import")
    version: int = Field(description="Incremented by every import that changes the roadmap")
    visibility: str = Field(description="public, organisation (members) or private (owner)")
    topic_count: int
    updated_at: datetime
    links: dict[str, str]


class RoadmapListOut(BaseModel):
    items: list[RoadmapOut]


class TopicNodeOut(BaseModel):
    slug: str
    title: str
    summary: str
    level: Level | None
    tags: list[str]
    implemented: bool = Field(description="True when this codebase shows the topic in code")
    concept: str | None = Field(description="Canonical concept key shared across roadmaps")
    estimate_hours: float | None
    children: list[TopicNodeOut]


class RoadmapTreeOut(BaseModel):
    roadmap: RoadmapOut
    topics: list[TopicNodeOut]


class ResourceOut(BaseModel):
    title: str
    url: str
    type: ResourceType


class ReferenceOut(BaseModel):
    kind: ReferenceKind
    target: str = Field(
        description="module: dotted path[:symbol]; endpoint: 'METHOD /path'; test: pytest node id"
    )


class TopicRefOut(BaseModel):
    slug: str
    title: str


class TopicOut(BaseModel):
    roadmap: str
    slug: str
    title: str
    summary: str
    why: str
    level: Level | None
    tags: list[str]
    seeds: list[str] = Field(description="The seed checklists this topic was gathered from")
    resources: list[ResourceOut]
    implemented_in: list[ReferenceOut] = Field(
        description="Where skilltree itself implements this topic: module, endpoint and test"
    )
    concept: str | None = Field(description="Canonical concept key shared across roadmaps")
    estimate_hours: float | None = Field(description="Estimated hours to learn the topic")
    path: list[TopicRefOut] = Field(description="Ancestors from the section down to the parent")
    children: list[TopicRefOut]
    links: dict[str, str]


class TopicChangeOut(BaseModel):
    slug: str
    fields: list[str]


class ImportChangesOut(BaseModel):
    added: list[str]
    updated: list[TopicChangeOut]
    removed: list[str]
    unchanged: int


class SkippedLineOut(BaseModel):
    line: int
    text: str


class PreviewNodeOut(BaseModel):
    slug: str
    title: str
    line: int | None
    status: TopicStatus | None
    children: list[PreviewNodeOut]


class ImportReportOut(BaseModel):
    roadmap: str
    title: str
    created: bool = Field(description="True when the import created a new roadmap")
    dry_run: bool
    version: int | None = Field(description="The roadmap's version after the import")
    topic_count: int
    item_count: int = Field(description="Checklist items found in the source")
    changes: ImportChangesOut
    repaired_encoding: str | None = Field(
        description="The legacy encoding whose mojibake was repaired, if any"
    )
    warnings: list[str]
    skipped: list[SkippedLineOut] = Field(description="Prose lines that were not made topics")
    preview: list[PreviewNodeOut] | None = Field(
        description="The parsed tree (dry runs only), to check before importing"
    )
