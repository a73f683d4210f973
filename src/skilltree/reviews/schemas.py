"""Request and response models of the reviews API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
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


def due_list_json(items: list[dict[str, Any]], links: PageLinks) -> bytes:
    """The JSON of `DueListOut` for these items (`DueCardOut`'s fields, in its order), byte
    for byte what pydantic writes for the model, without building and validating a model per
    card: compact, UTF-8 unescaped, UTC times ending in Z, microseconds only when there are
    some (tests/reviews/test_schemas.py holds the two to the same bytes)."""
    page_links = {"self": links.self, "next": links.next, "prev": links.prev}
    return orjson.dumps({"items": items, "links": page_links}, option=orjson.OPT_UTC_Z)


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: ReviewRating = Field(description="again, hard, good or easy")


class ReviewOut(BaseModel):
    id: int
    rating: ReviewRating
    reviewed_at: datetime
    due: datetime = Field(description="When the card comes due next")
