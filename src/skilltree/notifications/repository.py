"""Every query of the notifications domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts.models import User
from skilltree.notifications.models import NotificationPreference


async def preferences_of(session: AsyncSession, user_id: int) -> NotificationPreference | None:
    return await session.get(NotificationPreference, user_id)


async def recipients(session: AsyncSession, topic: str) -> Sequence[tuple[int, str, str]]:
    """(id, e-mail, name) of every verified account that has not turned `topic` off; no row
    means the defaults, which are on."""
    wanted = getattr(NotificationPreference, topic)
    query = (
        select(User.id, User.email, User.display_name)
        .outerjoin(NotificationPreference, NotificationPreference.user_id == User.id)
        .where(User.email_verified_at.is_not(None), func.coalesce(wanted, True).is_(True))
        .order_by(User.id)
    )
    return [(row.id, row.email, row.display_name) for row in (await session.execute(query)).all()]
