"""Every query of the accounts domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts.models import (
    BrowserSession,
    EmailToken,
    RefreshToken,
    TokenFamily,
    User,
)


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_token(session: AsyncSession, token_hash: str, purpose: str) -> EmailToken | None:
    query = select(EmailToken).where(
        EmailToken.token_hash == token_hash, EmailToken.purpose == purpose
    )
    return (await session.execute(query)).scalar_one_or_none()


async def use_unused_tokens(
    session: AsyncSession, user_id: int, purpose: str, now: datetime
) -> None:
    """Spend every outstanding token of a purpose: only the newest link may work."""
    await session.execute(
        update(EmailToken)
        .where(EmailToken.user_id == user_id, EmailToken.purpose == purpose)
        .where(EmailToken.used_at.is_(None))
        .values(used_at=now)
    )


async def get_browser_session(session: AsyncSession, token_hash: str) -> BrowserSession | None:
    query = select(BrowserSession).where(BrowserSession.token_hash == token_hash)
    return (await session.execute(query)).scalar_one_or_none()


async def list_browser_sessions(
    session: AsyncSession, user_id: int, now: datetime
) -> Sequence[BrowserSession]:
    query = (
        select(BrowserSession)
        .where(BrowserSession.user_id == user_id)
        .where(BrowserSession.idle_expires_at > now, BrowserSession.absolute_expires_at > now)
        .order_by(BrowserSession.last_seen_at.desc())
    )
    return (await session.execute(query)).scalars().all()


async def delete_browser_session(session: AsyncSession, user_id: int, session_id: int) -> bool:
    """Delete one of the user's sessions; False if the user has no such session."""
    result = await session.execute(
        delete(BrowserSession)
        .where(BrowserSession.id == session_id, BrowserSession.user_id == user_id)
        .returning(BrowserSession.id)
    )
    return result.scalar_one_or_none() is not None


async def delete_browser_sessions(
    session: AsyncSession, user_id: int, *, keep: int | None = None
) -> None:
    query = delete(BrowserSession).where(BrowserSession.user_id == user_id)
    if keep is not None:
        query = query.where(BrowserSession.id != keep)
    await session.execute(query)


def add(
    session: AsyncSession,
    row: User | EmailToken | BrowserSession | TokenFamily | RefreshToken,
) -> None:
    session.add(row)


async def flush(session: AsyncSession) -> None:
    await session.flush()


async def get_token_family(session: AsyncSession, family_id: str) -> TokenFamily | None:
    return await session.get(TokenFamily, family_id)


async def get_refresh_token(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    query = select(RefreshToken).where(RefreshToken.token_hash == token_hash)
    return (await session.execute(query)).scalar_one_or_none()


async def revoke_token_families(
    session: AsyncSession,
    user_id: int,
    now: datetime,
    *,
    family_id: str | None = None,
    keep: str | None = None,
) -> None:
    """Revoke one family, or every live family of the user (except `keep`)."""
    query = update(TokenFamily).where(
        TokenFamily.user_id == user_id, TokenFamily.revoked_at.is_(None)
    )
    if family_id is not None:
        query = query.where(TokenFamily.id == family_id)
    if keep is not None:
        query = query.where(TokenFamily.id != keep)
    await session.execute(query.values(revoked_at=now))
