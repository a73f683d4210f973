"""Request and response models of the reviews API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from skilltree.platform.http.pagination import PageLinks
from skilltree.reviews.service import ReviewRating


class DueCardOut(BaseModel):
    id: int
    due: datetime
    roadmap: str | None
    topic: str | None
    title: str | None
    links: dict[str, str] = Field(description="Where to review it and where its topic lives")


class DueListOut(BaseModel):
    items: list[DueCardOut]
    links: PageLinks


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: ReviewRating = Field(description="again, hard, good or easy")


class ReviewOut(BaseModel):
    id: int
    rating: ReviewRating
    reviewed_at: datetime
    due: datetime = Field(description="When the card comes due next")
