"""Every query of the accounts domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts.models import (
    ApiKey,
    BrowserSession,
    EmailToken,
    LoginThrottle,
    OidcIdentity,
    RecoveryCode,
    RefreshToken,
    TokenFamily,
    User,
)
from skilltree.platform.db import is_mysql


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def list_users(
    session: AsyncSession, *, email_contains: str | None, limit: int, offset: int
) -> tuple[Sequence[User], int]:
    """A page of users, oldest first, and how many match in all."""
    query = select(User)
    if email_contains:
        query = query.where(User.email.contains(email_contains.lower(), autoescape=True))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    page = await session.scalars(query.order_by(User.id).limit(limit).offset(offset))
    return page.all(), total or 0


async def count_admins(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).where(User.is_admin.is_(True))) or 0


async def delete_user(session: AsyncSession, user: User) -> None:
    """Delete the account's row; the database cascades to every row that names it (ON DELETE
    CASCADE) and unlinks the rest (ON DELETE SET NULL). Deleted as a row, not by a statement:
    the principal cache then forgets this user only, not every caller."""
    await session.delete(user)
    await session.flush()


async def get_token(session: AsyncSession, token_hash: str, *purposes: str) -> EmailToken | None:
    """The token with this digest, if it was issued for one of `purposes`."""
    query = select(EmailToken).where(
        EmailToken.token_hash == token_hash, EmailToken.purpose.in_(purposes)
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


async def touch_browser_session(
    session: AsyncSession, session_id: int, *, last_seen_at: datetime, idle_expires_at: datetime
) -> None:
    """Change the row in the unit of work rather than now: the slide happens on reads, and on
    SQLite a read transaction that writes cannot wait for the write lock ("database is
    locked"); changes left for the commit are written in a transaction that queues for it
    (platform/db.py)."""
    row = await session.get(BrowserSession, session_id)
    if row is not None:
        row.last_seen_at = last_seen_at
        row.idle_expires_at = idle_expires_at


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
        delete(BrowserSession).where(
            BrowserSession.id == session_id, BrowserSession.user_id == user_id
        )
    )
    return bool(getattr(result, "rowcount", 0))


async def delete_browser_sessions(
    session: AsyncSession, user_id: int, *, keep: int | None = None
) -> None:
    query = delete(BrowserSession).where(BrowserSession.user_id == user_id)
    if keep is not None:
        query = query.where(BrowserSession.id != keep)
    await session.execute(query)


def add(
    session: AsyncSession,
    row: User
    | EmailToken
    | BrowserSession
    | TokenFamily
    | RefreshToken
    | ApiKey
    | RecoveryCode
    | OidcIdentity,
) -> None:
    session.add(row)


async def flush(session: AsyncSession) -> None:
    await session.flush()


async def get_token_family(session: AsyncSession, family_id: str) -> TokenFamily | None:
    return await session.get(TokenFamily, family_id)


async def get_user_of_live_family(
    session: AsyncSession, family_id: str, user_id: int
) -> User | None:
    """The user, if the token family is theirs and not revoked: the check every bearer request
    makes, in one query rather than the family and then the user."""
    query = (
        select(User)
        .join(TokenFamily, TokenFamily.user_id == User.id)
        .where(
            TokenFamily.id == family_id,
            TokenFamily.user_id == user_id,
            TokenFamily.revoked_at.is_(None),
        )
    )
    return (await session.execute(query)).scalar_one_or_none()


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


async def get_throttles(session: AsyncSession, keys: list[str]) -> Sequence[LoginThrottle]:
    query = select(LoginThrottle).where(LoginThrottle.key.in_(keys))
    return (await session.execute(query)).scalars().all()


async def count_failure(
    session: AsyncSession, key: str, now: datetime, *, forget_before: datetime
) -> int:
    """Add one failure to the key atomically (an upsert) and return the new count.

    Failures older than `forget_before` are forgotten first. The upsert makes two concurrent
    failures count as two, on SQLite and PostgreSQL alike.
    """
    dialect = session.get_bind().dialect.name
    fresh = case(
        (LoginThrottle.last_failure_at < forget_before, 1), else_=LoginThrottle.failures + 1
    )
    if is_mysql(dialect):
        # No RETURNING on MySQL: the upsert, then a read of the row this transaction now holds
        # locked. `failures` is assigned before `last_failure_at`, so `fresh` sees the old time.
        from sqlalchemy.dialects.mysql import insert as mysql_insert  # only on MariaDB/MySQL

        await session.execute(
            mysql_insert(LoginThrottle)
            .values(key=key, failures=1, last_failure_at=now, locked_until=None)
            .on_duplicate_key_update([("failures", fresh), ("last_failure_at", now)])
        )
        failures = select(LoginThrottle.failures).where(LoginThrottle.key == key)
        return (await session.execute(failures)).scalar_one()
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    statement = (
        insert(LoginThrottle)
        .values(key=key, failures=1, last_failure_at=now, locked_until=None)
        .on_conflict_do_update(
            index_elements=[LoginThrottle.key],
            set_={"failures": fresh, "last_failure_at": now},
        )
        .returning(LoginThrottle.failures)
    )
    return (await session.execute(statement)).scalar_one()


async def lock_throttle(session: AsyncSession, key: str, until: datetime) -> None:
    await session.execute(
        update(LoginThrottle).where(LoginThrottle.key == key).values(locked_until=until)
    )


async def clear_throttle(session: AsyncSession, key: str) -> None:
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))


async def get_api_key_by_prefix(session: AsyncSession, prefix: str) -> ApiKey | None:
    query = select(ApiKey).where(ApiKey.prefix == prefix)
    return (await session.execute(query)).scalar_one_or_none()


async def get_api_key(session: AsyncSession, user_id: int, key_id: int) -> ApiKey | None:
    query = select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id)
    return (await session.execute(query)).scalar_one_or_none()


async def list_api_keys(session: AsyncSession, user_id: int) -> Sequence[ApiKey]:
    query = select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.id)
    return (await session.execute(query)).scalars().all()


async def unused_recovery_codes(session: AsyncSession, user_id: int) -> Sequence[RecoveryCode]:
    query = select(RecoveryCode).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
    )
    return (await session.execute(query)).scalars().all()


async def delete_recovery_codes(session: AsyncSession, user_id: int) -> None:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


async def get_oidc_identity(
    session: AsyncSession, issuer: str, subject: str
) -> OidcIdentity | None:
    query = select(OidcIdentity).where(
        OidcIdentity.issuer == issuer, OidcIdentity.subject == subject
    )
    return (await session.execute(query)).scalar_one_or_none()


async def people(session: AsyncSession, user_ids: Sequence[int]) -> Sequence[tuple[int, str, str]]:
    """(id, e-mail, name) of these users, by name then id."""
    query = (
        select(User.id, User.email, User.display_name)
        .where(User.id.in_(user_ids))
        .order_by(User.display_name, User.id)
    )
    return [(row.id, row.email, row.display_name) for row in await session.execute(query)]


async def verified_people(session: AsyncSession) -> Sequence[tuple[int, str, str]]:
    """(id, e-mail, name) of every account with a verified address, by id."""
    query = (
        select(User.id, User.email, User.display_name)
        .where(User.email_verified_at.is_not(None))
        .order_by(User.id)
    )
    return [(row.id, row.email, row.display_name) for row in await session.execute(query)]


async def delete_expired_sessions(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        delete(BrowserSession).where(
            or_(BrowserSession.idle_expires_at < now, BrowserSession.absolute_expires_at < now)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_expired_tokens(session: AsyncSession, now: datetime) -> int:
    removed = 0
    for model in (EmailToken, RefreshToken):
        result = await session.execute(delete(model).where(model.expires_at < now))
        removed += int(getattr(result, "rowcount", 0) or 0)
    return removed
