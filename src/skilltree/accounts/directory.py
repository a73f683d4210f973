"""What other domains may read about accounts: people as read models, never the `User` row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import repository


@dataclass(frozen=True, slots=True)
class Person:
    user_id: int
    email: str
    display_name: str


async def people(db: AsyncSession, user_ids: Sequence[int]) -> list[Person]:
    """These users (the ones that still exist), by display name then id."""
    if not user_ids:
        return []
    return [Person(*row) for row in await repository.people(db, list(user_ids))]


async def verified_people(db: AsyncSession) -> list[Person]:
    """Everyone whose e-mail address is verified (who may be written to), by id."""
    return [Person(*row) for row in await repository.verified_people(db)]
