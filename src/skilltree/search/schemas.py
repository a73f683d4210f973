"""API models of search."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from skilltree.platform.http.pagination import PageLinks


class Kind(StrEnum):
    TOPIC = "topic"
    NOTE = "note"
    RESOURCE = "resource"


class StatusFilter(StrEnum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    SKIPPED = "skipped"


class SearchHitOut(BaseModel):
    kind: Kind
    roadmap: str = Field(examples=["backend"])
    topic: str = Field(examples=["idempotency-keys"], description="The topic's slug")
    topic_title: str
    title_html: str = Field(
        description="The hit's title, HTML-escaped, matched words wrapped in <mark>"
    )
    snippet_html: str = Field(
        description="A passage around the matches, HTML-escaped, matched words in <mark>"
    )
    score: float = Field(description="Relevance: higher is better; comparable within one query")
    resource_id: int | None = Field(default=None, description="For resources: its id")
    url: str = Field(description="Where the hit lives in the API")


class SearchOut(BaseModel):
    items: list[SearchHitOut]
    counts: dict[str, int] = Field(
        description="Matches per kind you may see (notes and resources only when they are yours)"
    )
    links: PageLinks
