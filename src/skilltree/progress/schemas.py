"""Request and response models of the progress API (never the ORM classes)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from skilltree.identity import MAX_SLUG_LENGTH, SLUG_PATTERN
from skilltree.platform.http.pagination import PageLinks
from skilltree.progress.exporting import JSON_FORMAT
from skilltree.progress.rollup import Source, Status
from skilltree.roadmaps.document import Title

Confidence = Annotated[int, Field(ge=1, le=5, description="How sure you feel, 1 (not) to 5")]
HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/?#]+[^\s]*$", max_length=2048)]
MAX_IMPORTED_TOPICS = 100_000


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status
    confidence: Confidence | None = None


class TopicProgressOut(BaseModel):
    roadmap: str
    topic: str
    status: Status
    confidence: int | None
    updated_at: datetime


class TallyOut(BaseModel):
    total: int = Field(description="Leaf topics (the units of work)")
    counts: dict[Status, int] = Field(description="Leaf topics by status, by the roll-up rule")
    percent_done: float = Field(description="Done leaves out of those not skipped")
    total_hours: float
    remaining_hours: float = Field(description="Estimated hours of the leaves not done or skipped")


class TopicStateOut(BaseModel):
    slug: str
    title: str
    status: Status
    source: Source = Field(
        description="own: you set it; concept: set on the same concept in another roadmap; "
        "derived: from its children; default: untouched"
    )
    confidence: int | None
    updated_at: datetime | None
    percent_done: float
    children: list[TopicStateOut]


class RoadmapProgressOut(BaseModel):
    roadmap: str
    summary: TallyOut
    topics: list[TopicStateOut]


class SectionSummaryOut(BaseModel):
    slug: str
    title: str
    status: Status
    summary: TallyOut


class SummaryOut(BaseModel):
    roadmap: str
    summary: TallyOut
    sections: list[SectionSummaryOut]


class EventOut(BaseModel):
    id: int
    topic: str
    topic_title: str
    from_status: Status | None = Field(description="null: the topic had no status of its own")
    to_status: Status | None
    confidence: int | None
    occurred_at: datetime
    request_id: str | None
    undoes_event_id: int | None = Field(description="Set on an undo: the change it reverted")


class HistoryOut(BaseModel):
    items: list[EventOut]
    links: PageLinks


class UndoOut(BaseModel):
    undone_event_id: int
    event: EventOut


class HeatmapDayOut(BaseModel):
    date: date
    count: int


class StatsOut(BaseModel):
    time_zone: str
    current_streak: int = Field(description="Consecutive active days up to today (or yesterday)")
    longest_streak: int
    heatmap: list[HeatmapDayOut] = Field(description="The last 365 days, oldest first")


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    markdown: str


class NoteOut(BaseModel):
    markdown: str
    html: str = Field(description="Rendered and sanitised; safe to insert into a page")
    updated_at: datetime | None


class ResourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    url: HttpUrl


class ResourceOut(BaseModel):
    id: int
    title: str
    url: str
    created_at: datetime


class ResourceListOut(BaseModel):
    items: list[ResourceOut]


class ImportedTopicIn(BaseModel):
    # Exports carry title and updated_at too; they are informative and ignored here.
    model_config = ConfigDict(extra="ignore")

    topic_id: int | None = None
    slug: (
        Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)] | None
    ) = None
    status: Status
    confidence: Confidence | None = None

    @model_validator(mode="after")
    def _names_a_topic(self) -> ImportedTopicIn:
        if self.topic_id is None and self.slug is None:
            raise ValueError("each topic needs a topic_id or a slug")
        return self


class ProgressFileIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: Literal["skilltree-progress/1"] = Field(description=f"Always {JSON_FORMAT!r}")
    roadmap: str | None = None
    topics: list[ImportedTopicIn] = Field(max_length=MAX_IMPORTED_TOPICS)


class ImportResultOut(BaseModel):
    roadmap: str
    changed: int = Field(description="Topics whose status changed (one event each)")
    unchanged: int = Field(description="Topics already as in the file")
