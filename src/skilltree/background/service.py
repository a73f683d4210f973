"""The administrators' view of failed background work: dead letters, as read models.

The letters themselves are the queue's (platform.queue.dead_letters); the CLI's `skilltree dlq`
uses the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.background.errors import DeadLetterNotFound
from skilltree.platform.queue import dead_letters
from skilltree.platform.queue.models import DeadLetter


@dataclass(frozen=True, slots=True)
class Letter:
    id: int
    task_id: str
    task: str
    attempts: int
    error: str
    failed_at: datetime
    payload: dict[str, Any] | None

    @classmethod
    def of(cls, letter: DeadLetter) -> Letter:
        return cls(
            id=letter.id,
            task_id=letter.task_id,
            task=letter.task_name,
            attempts=letter.attempts,
            error=letter.error,
            failed_at=letter.failed_at,
            payload=letter.args[0] if letter.args else None,
        )


@dataclass(frozen=True, slots=True)
class LetterPage:
    items: list[Letter]
    total: int


async def page(db: AsyncSession, *, limit: int, offset: int, task_name: str | None) -> LetterPage:
    """Dead letters, newest first, and how many there are in all."""
    letters = await dead_letters.page(db, limit=limit, offset=offset, task_name=task_name)
    total = await dead_letters.count(db, task_name=task_name)
    return LetterPage([Letter.of(letter) for letter in letters], total)


async def get(db: AsyncSession, letter_id: int) -> Letter:
    return Letter.of(await _letter(db, letter_id))


async def replay(db: AsyncSession, letter_id: int, *, now: datetime) -> str:
    """Queue the task again with a fresh set of attempts; the letter is removed."""
    return await dead_letters.replay(db, await _letter(db, letter_id), now=now)


async def delete(db: AsyncSession, letter_id: int) -> None:
    await dead_letters.delete_one(db, await _letter(db, letter_id))


async def purge(db: AsyncSession, *, task_name: str | None) -> int:
    return await dead_letters.purge(db, task_name=task_name)


async def _letter(db: AsyncSession, letter_id: int) -> DeadLetter:
    letter = await dead_letters.get(db, letter_id)
    if letter is None:
        raise DeadLetterNotFound(letter_id)
    return letter
