"""Response and request models of the roadmaps API (never the ORM classes themselves)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from skilltree.identity import Slug, Visibility
from skilltree.platform.http.api_description import not_null
from skilltree.roadmaps.document import (
    Level,
    ReferenceKind,
    ResourceType,
    Title,
    TopicStatus,
)

Text = Annotated[str, StringConstraints(max_length=20_000)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]


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
    total: int = Field(description="Roadmaps matching the filters, on every page")
    limit: int
    offset: int
    links: dict[str, str] = Field(description="first, prev and next pages (also in Link)")


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
        description="module: dotted path[:symbol]; endpoint: 'METHOD /path'; test: pytest node "
        "id; file: a path from the repository root"
    )
    path: str | None = Field(
        default=None,
        description="The file that holds it, from the repository root (found from the code "
        "itself, so it never drifts)",
    )
    line_start: int | None = Field(default=None, description="First line of its definition")
    line_end: int | None = Field(default=None, description="Last line of its definition")


class ImplementationOut(BaseModel):
    status: Literal["implemented", "theory", "planned"] = Field(
        description="implemented: see implemented_in; theory: cannot be shown in this "
        "codebase (see reason); planned: can be, and is not yet"
    )
    reason: str = Field(default="", description="Why a theory topic cannot be shown in code")


class TopicRefOut(BaseModel):
    slug: str
    title: str


class TopicOut(BaseModel):
    id: int = Field(description="Stable across renames, moves and re-imports")
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
    implementation: ImplementationOut | None = Field(
        default=None,
        description="Built-in roadmap leaves: whether skilltree implements this topic",
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


class CheckedMarkOut(BaseModel):
    topic: str = Field(description="The topic's slug")
    status: TopicStatus


class ImportProgressOut(BaseModel):
    applied: bool = Field(
        description="True when the marks were recorded as your progress (not on a dry run)"
    )
    marks: list[CheckedMarkOut] = Field(
        description="The boxes the file had ticked ([x] done, [/] in progress, [-] skipped)"
    )
    changed: int = Field(description="Topics whose status the import changed")


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
    progress: ImportProgressOut | None = Field(
        default=None,
        description="With apply_progress: the ticked boxes applied (or, on a dry run, to apply)",
    )


class _In(BaseModel):
    # An unknown field is a mistake worth a 422, not something to drop silently.
    model_config = ConfigDict(extra="forbid")


# The service's rule (`organisation_for`), stated in the document so that clients and fuzzers
# send what it accepts: "org" names the organisation of an organisation roadmap, and goes
# with visibility=organisation only.
_ORG_GOES_WITH_ORGANISATION_VISIBILITY: dict[str, Any] = {
    "anyOf": [
        {
            "properties": {"visibility": {"const": "organisation"}, "org": {"type": "string"}},
            "required": ["visibility", "org"],
        },
        {
            "properties": {
                "visibility": {"enum": ["private", "public"]},
                "org": {"type": "null"},
            }
        },
    ]
}


class _WithVisibility(_In):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra=_ORG_GOES_WITH_ORGANISATION_VISIBILITY
    )


class RoadmapIn(_WithVisibility):
    slug: Slug
    title: Title
    description: Text = ""
    visibility: Visibility = Visibility.PRIVATE
    org: Slug | None = Field(default=None, description="With visibility=organisation")


class RoadmapPatchIn(_In):
    """Only the fields sent change."""

    title: Title | None = None
    description: Text | None = None
    visibility: Visibility | None = None
    org: Slug | None = Field(default=None, description="With visibility=organisation")


class ForkIn(_WithVisibility):
    slug: Slug = Field(description="The slug of your copy")
    title: Title | None = Field(default=None, description="Defaults to the original's title")
    visibility: Visibility = Visibility.PRIVATE
    org: Slug | None = None
    carry_progress: bool | None = Field(
        default=None,
        description="Copy your progress on the original onto the copy. Default: yes, unless "
        "the copy is an organisation's (visibility=organisation)",
    )


class TopicIn(_In):
    title: Title
    slug: Slug | None = Field(default=None, description="Derived from the title if omitted")
    parent: Slug | None = Field(default=None, description="The parent topic; omit for a section")
    position: int | None = Field(default=None, ge=0, le=100_000, description="Omit to append")
    summary: Text = ""
    why: Text = ""
    level: Level | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=30)


class TopicPatchIn(_In):
    """Only the fields sent change; "parent": null moves the topic to the top level."""

    # None is "not sent" for the fields that cannot be null (checked below).
    title: Title | None = Field(default=None, json_schema_extra=not_null)
    slug: Slug | None = Field(default=None, json_schema_extra=not_null)
    parent: Slug | None = None
    position: int | None = Field(default=None, ge=0, le=100_000)
    summary: Text | None = Field(default=None, json_schema_extra=not_null)
    why: Text | None = Field(default=None, json_schema_extra=not_null)
    level: Level | None = None
    tags: list[Tag] | None = Field(default=None, max_length=30, json_schema_extra=not_null)

    @model_validator(mode="after")
    def _required_fields_are_not_null(self) -> TopicPatchIn:
        # null means "clear" for level and "top level" for parent; these cannot be cleared.
        for name in ("title", "slug", "summary", "why", "tags"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class RevisionIn(_In):
    note: Annotated[str, StringConstraints(max_length=2000)] = ""


class RevisionOut(BaseModel):
    number: int
    content_hash: str
    note: str
    published_at: datetime
    links: dict[str, str]


class RevisionListOut(BaseModel):
    items: list[RevisionOut]


class RevisionDocumentOut(RevisionOut):
    document: dict[str, Any] = Field(description="The roadmap as published (import format)")
