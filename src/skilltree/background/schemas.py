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
        return cls(
            id=letter.id,
            task_id=letter.task_id,
            task=letter.task,
            attempts=letter.attempts,
            error=letter.error,
            failed_at=letter.failed_at,
            payload=letter.payload,
        )


class DeadLetterListOut(BaseModel):
    items: list[DeadLetterOut]
    total: int
    limit: int
    offset: int


class ReplayOut(BaseModel):
    message_id: str


class PurgeOut(BaseModel):
    purged: int
