"""API models of the cohorts domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from skilltree.identity import MAX_SLUG_LENGTH, SLUG_PATTERN
from skilltree.platform.http.bounds import RowId
from skilltree.platform.http.pagination import PageLinks


class StuckTopicOut(BaseModel):
    topic: str
    title: str
    in_progress_since: datetime


class RoadmapStandingOut(BaseModel):
    roadmap: str
    title: str
    percent_done: float
    done: int
    total: int
    last_activity_at: datetime | None = Field(
        description="null when the member shares the percentage only"
    )
    stuck: list[StuckTopicOut] | None = Field(
        description="Topics in progress longest, oldest first; null when not shared"
    )


class MemberStandingOut(BaseModel):
    user_id: int
    display_name: str
    role: str
    details_shared: bool
    current_streak: int | None
    last_activity_at: datetime | None
    roadmaps: list[RoadmapStandingOut]


class RoadmapRefOut(BaseModel):
    slug: str
    title: str


class MentorViewOut(BaseModel):
    roadmaps: list[RoadmapRefOut]
    members: list[MemberStandingOut]


class SharingIn(BaseModel):
    share_details: bool = Field(
        description="false: mentors see your percentage done only, and the feed leaves out "
        "your topic-by-topic progress"
    )


class SharingOut(BaseModel):
    share_details: bool


class AssignmentIn(BaseModel):
    roadmap: str = Field(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)
    section: str | None = Field(default=None, pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)
    user_ids: list[RowId] | None = Field(
        default=None, max_length=1000, description="Omit to assign to the whole organisation"
    )
    due_at: AwareDatetime | None = None


class AssignmentOut(BaseModel):
    id: int
    org: str
    roadmap: str
    roadmap_title: str
    section: str | None
    assignee_id: int | None = Field(description="null: every member")
    due_at: datetime | None
    created_at: datetime
    completed_by: list[int] = Field(
        description="Who completed it (a learner sees only whether they did)"
    )


class AssignmentListOut(BaseModel):
    items: list[AssignmentOut]


class ActivityOut(BaseModel):
    id: int
    kind: str = Field(
        description="topic.done | section.finished | member.joined | roadmap.published | "
        "assignment.created | assignment.completed"
    )
    actor_id: int | None
    data: dict[str, Any]
    occurred_at: datetime


class FeedOut(BaseModel):
    items: list[ActivityOut]
    links: PageLinks
