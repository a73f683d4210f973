"""API models of the rooms domain (the WebSocket protocol itself: docs/realtime.md)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from skilltree.identity import MAX_SLUG_LENGTH, SLUG_PATTERN


class RoomIn(BaseModel):
    key: str = Field(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)
    title: str = Field(min_length=1, max_length=200)
    roadmap: str | None = Field(default=None, pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)
    topic: str | None = Field(default=None, pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)


class RoomOut(BaseModel):
    key: str
    title: str
    last_seq: int


class RoomListOut(BaseModel):
    items: list[RoomOut]


class TicketOut(BaseModel):
    ticket: str = Field(description="Single use; open the socket before expires_at")
    expires_at: datetime
    url: str = Field(description="Where to connect (add last_seq=N to resume)")


class EntryOut(BaseModel):
    seq: int
    kind: str = Field(description="message | deletion")
    author_id: int | None
    body: str | None = Field(description="Plain text; null once deleted")
    target_seq: int | None = Field(description="For a deletion: the message deleted")
    deleted: bool
    created_at: datetime


class EntryListOut(BaseModel):
    items: list[EntryOut]
    last_seq: int
