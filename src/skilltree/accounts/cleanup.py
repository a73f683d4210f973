"""Removing what has expired: browser sessions, e-mail tokens and refresh tokens.

Expired rows already fail every check; deleting them keeps the tables (and their indexes) the
size of the active user base rather than of its history.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import repository
from skilltree.platform.maintenance import cleanup


@cleanup("accounts.expired-sessions")
async def expired_sessions(session: AsyncSession, now: datetime) -> int:
    return await repository.delete_expired_sessions(session, now)


@cleanup("accounts.expired-tokens")
async def expired_tokens(session: AsyncSession, now: datetime) -> int:
    return await repository.delete_expired_tokens(session, now)
