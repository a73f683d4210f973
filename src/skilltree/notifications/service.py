"""The rules of notifications: defaults, changes, and one-click unsubscribe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import directory
from skilltree.accounts.directory import Person
from skilltree.notifications import repository
from skilltree.notifications.models import NotificationPreference
from skilltree.notifications.unsubscribe import read_token, token_for
from skilltree.platform.errors import DomainError


class InvalidUnsubscribeToken(DomainError):
    type_slug = "invalid-unsubscribe-token"
    title = "Invalid unsubscribe link"

    def __init__(self) -> None:
        super().__init__("This unsubscribe link is not valid (it may be truncated).")


@dataclass(frozen=True)
class Preferences:
    weekly_digest: bool = True
    review_reminders: bool = True


async def preferences(db: AsyncSession, user_id: int) -> Preferences:
    row = await repository.preferences_of(db, user_id)
    if row is None:
        return Preferences()
    return Preferences(weekly_digest=row.weekly_digest, review_reminders=row.review_reminders)


async def update(db: AsyncSession, user_id: int, now: datetime, **changes: bool) -> Preferences:
    row = await repository.preferences_of(db, user_id)
    if row is None:
        row = NotificationPreference(
            user_id=user_id, weekly_digest=True, review_reminders=True, updated_at=now
        )
        repository.add(db, row)
    for topic, value in changes.items():
        setattr(row, topic, value)
    row.updated_at = now
    await repository.flush(db)
    return await preferences(db, user_id)


async def unsubscribe(db: AsyncSession, secrets: list[SecretStr], token: str, now: datetime) -> str:
    """Turn off the topic the token names; returns the topic. Doing it twice is harmless."""
    parsed = read_token(secrets, token)
    if parsed is None:
        raise InvalidUnsubscribeToken()
    user_id, topic = parsed
    await update(db, user_id, now, **{topic: False})
    return topic


async def recipients(db: AsyncSession, topic: str) -> list[Person]:
    """Every verified account that has not turned `topic` off, by id."""
    opted_out = await repository.opted_out(db, topic)
    return [
        person for person in await directory.verified_people(db) if person.user_id not in opted_out
    ]


def unsubscribe_url(public_url: str, secret: SecretStr, user_id: int, topic: str) -> str:
    return f"{public_url}/v1/notifications/unsubscribe?token={token_for(secret, user_id, topic)}"
