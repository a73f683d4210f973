"""Removing what has expired: browser sessions, e-mail tokens and refresh tokens.

Expired rows already fail every check; deleting them keeps the tables (and their indexes) the
size of the active user base rather than of its history.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts.models import BrowserSession, EmailToken, RefreshToken
from skilltree.platform.maintenance import cleanup


@cleanup("accounts.expired-sessions")
async def expired_sessions(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        delete(BrowserSession).where(
            or_(BrowserSession.idle_expires_at < now, BrowserSession.absolute_expires_at < now)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


@cleanup("accounts.expired-tokens")
async def expired_tokens(session: AsyncSession, now: datetime) -> int:
    removed = 0
    for model in (EmailToken, RefreshToken):
        result = await session.execute(delete(model).where(model.expires_at < now))
        removed += int(getattr(result, "rowcount", 0) or 0)
    return removed
