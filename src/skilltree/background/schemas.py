"""Response models of the dead-letter admin API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from skilltree.background.service import Letter


class DeadLetterOut(BaseModel):
    id: int
    task_id: str
    task: str
    attempts: int
    error: str
    failed_at: datetime
    payload: dict[str, Any] | None

    @classmethod
    def of(cls, letter: Letter) -> DeadLetterOut:
        # The fields are the read model's, by name: read them off it rather than list them twice.
        return cls.model_validate(letter, from_attributes=True)


class DeadLetterListOut(BaseModel):
    items: list[DeadLetterOut]
    total: int
    limit: int
    offset: int


class ReplayOut(BaseModel):
    message_id: str


class PurgeOut(BaseModel):
    purged: int
