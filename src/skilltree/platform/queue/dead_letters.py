"""The dead-letter queue: tasks that will not succeed by being tried again, kept for a person.

Dead letters live in the database whichever broker runs, so `skilltree dlq` and the admin API
list, show, replay and purge them the same way everywhere. Replaying writes the task back
through the outbox with a fresh attempt count, in the same transaction that deletes the letter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.queue import outbox
from skilltree.platform.queue.models import DeadLetter

MAX_ERROR_CHARS = 4000


def record(
    session: AsyncSession,
    *,
    task_id: str,
    task_name: str,
    args: list[Any],
    labels: dict[str, Any],
    attempts: int,
    error: BaseException,
    now: datetime,
) -> None:
    session.add(
        DeadLetter(
            task_id=task_id,
            task_name=task_name,
            args=args,
            labels=labels,
            attempts=attempts,
            error=f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS],
            failed_at=now,
        )
    )


async def count(session: AsyncSession, *, task_name: str | None = None) -> int:
    query = select(func.count()).select_from(DeadLetter)
    if task_name is not None:
        query = query.where(DeadLetter.task_name == task_name)
    return int(await session.scalar(query) or 0)


async def page(
    session: AsyncSession, *, limit: int, offset: int = 0, task_name: str | None = None
) -> Sequence[DeadLetter]:
    """Newest first."""
    query = select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit).offset(offset)
    if task_name is not None:
        query = query.where(DeadLetter.task_name == task_name)
    return (await session.scalars(query)).all()


async def get(session: AsyncSession, letter_id: int) -> DeadLetter | None:
    return await session.get(DeadLetter, letter_id)


async def replay(session: AsyncSession, letter: DeadLetter, *, now: datetime) -> str:
    """Queue the task again (attempt 1 of a fresh budget) and remove the letter; returns the
    new message id."""
    payload = letter.args[0] if letter.args else {}
    message_id = outbox.enqueue(session, letter.task_name, payload, now=now)
    await session.delete(letter)
    return message_id


async def delete_one(session: AsyncSession, letter: DeadLetter) -> None:
    await session.delete(letter)


async def purge(session: AsyncSession, *, task_name: str | None = None) -> int:
    statement = delete(DeadLetter)
    if task_name is not None:
        statement = statement.where(DeadLetter.task_name == task_name)
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)
