"""What other domains may read about accounts: people as read models, never the `User` row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import repository
from skilltree.accounts.context import normalize_email


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


async def person_by_email(db: AsyncSession, email: str) -> Person | None:
    """The account with this e-mail address, if there is one (for the operator's commands)."""
    user = await repository.get_user_by_email(db, normalize_email(email))
    return None if user is None else Person(user.id, user.email, user.display_name)


async def verified_people(db: AsyncSession) -> list[Person]:
    """Everyone whose e-mail address is verified (who may be written to), by id."""
    return [Person(*row) for row in await repository.verified_people(db)]


async def rename(db: AsyncSession, user_id: int, display_name: str) -> None:
    """Change the name others see (the caller validated it: profiles.schemas.DisplayName)."""
    user = await repository.get_user(db, user_id)
    if user is not None:
        user.display_name = display_name
