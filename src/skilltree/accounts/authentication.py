"""Who is calling: the user behind a session cookie or an access token, and opening them."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import repository
from skilltree.accounts.context import (
    SECRET_BYTES,
    SLIDE_INTERVAL,
    AccountsContext,
    SignedIn,
    TokenPair,
)
from skilltree.accounts.errors import NotAuthenticated
from skilltree.accounts.models import (
    RefreshToken,
    TokenFamily,
    User,
)
from skilltree.accounts.sessions import SessionRecord
from skilltree.accounts.tokens import issue_access_token, verify_access_token
from skilltree.audit import service as audit
from skilltree.audit.service import EventKind
from skilltree.platform.crypto import digest


async def open_token_family(
    db: AsyncSession, ctx: AccountsContext, user: User, *, user_agent: str, ip: str
) -> TokenPair:
    family = TokenFamily(
        id=secrets.token_hex(16),
        user_id=user.id,
        created_at=ctx.clock.now(),
        user_agent=user_agent[:300],
        ip=ip[:64],
    )
    repository.add(db, family)
    await repository.flush(db)
    await audit.record(
        db, EventKind.TOKENS_ISSUED, user_id=user.id, at=family.created_at, family=family.id
    )
    return await token_pair(db, ctx, user.id, family.id)


async def authenticate_token(db: AsyncSession, ctx: AccountsContext, access_token: str) -> SignedIn:
    """The user behind a bearer access token, provided its family has not been revoked."""
    claims = verify_access_token(
        ctx.token_keys,
        access_token,
        now=ctx.clock.now(),
        issuer=ctx.auth.token_issuer,
        audience=ctx.auth.token_audience,
    )
    # None too when the account is gone: the family is found through its user.
    user = await repository.get_user_of_live_family(db, claims.family, claims.user_id)
    if user is None:
        raise NotAuthenticated("The access token has been revoked; sign in again.")
    return SignedIn(user, token_family=claims.family)


async def authenticate(db: AsyncSession, ctx: AccountsContext, secret: str) -> SignedIn:
    """The signed-in user behind a session cookie, sliding the idle expiry."""
    browser_session = await ctx.sessions.find(db, digest(secret))
    now = ctx.clock.now()
    if browser_session is None or not browser_session.is_live(now):
        raise NotAuthenticated("Your session has ended; sign in again.")
    user = await repository.get_user(db, browser_session.user_id)
    if user is None:
        raise NotAuthenticated()
    await _slide(db, ctx, browser_session)
    return SignedIn(user, browser_session)


async def _slide(db: AsyncSession, ctx: AccountsContext, browser_session: SessionRecord) -> None:
    """Activity keeps a session alive: move its idle expiry (at most once a minute)."""
    now = ctx.clock.now()
    if now - browser_session.last_seen_at >= SLIDE_INTERVAL:
        browser_session.last_seen_at = now
        browser_session.idle_expires_at = min(
            now + timedelta(minutes=ctx.auth.session_idle_minutes),
            browser_session.absolute_expires_at,
        )
        await ctx.sessions.save_activity(db, browser_session)


def credential_reference(current: SignedIn) -> str:
    """A handle on the credential behind a sign-in that outlives its request, for connections
    opened with it (a study-room socket) to check later that it still holds. It names the
    credential, never contains it: a session by its digest, a token family or API key by id."""
    if current.api_key is not None:
        return f"key:{current.api_key.id}"
    if current.browser_session is not None:
        return f"session:{current.browser_session.token_hash}"
    return f"family:{current.token_family}"


async def credential_in_force(
    db: AsyncSession, ctx: AccountsContext, user_id: int, reference: str
) -> bool:
    """Whether the credential `credential_reference` named is still in force for this user:
    False once the session was signed out or expired, the token family or API key revoked
    (or expired), or the account deleted. A live session's idle expiry slides, as for any
    request: a connection in use is activity."""
    kind, _, value = reference.partition(":")
    now = ctx.clock.now()
    if kind == "session":
        browser_session = await ctx.sessions.find(db, value)
        if browser_session is None or browser_session.user_id != user_id:
            return False
        if not browser_session.is_live(now):
            return False
        await _slide(db, ctx, browser_session)
        return True
    if kind == "family":
        return await repository.get_user_of_live_family(db, value, user_id) is not None
    if kind == "key" and value.isdigit():
        key = await repository.get_api_key(db, user_id, int(value))
        return (
            key is not None
            and key.revoked_at is None
            and (key.expires_at is None or now < key.expires_at)
        )
    return False


async def token_pair(
    db: AsyncSession, ctx: AccountsContext, user_id: int, family: str
) -> TokenPair:
    now = ctx.clock.now()
    refresh_token = secrets.token_urlsafe(SECRET_BYTES)
    repository.add(
        db,
        RefreshToken(
            family_id=family,
            token_hash=digest(refresh_token),
            created_at=now,
            expires_at=now + timedelta(days=ctx.auth.refresh_token_days),
        ),
    )
    await repository.flush(db)
    lifetime = timedelta(minutes=ctx.auth.access_token_minutes)
    access_token = issue_access_token(
        ctx.token_keys,
        user_id=user_id,
        family=family,
        now=now,
        lifetime=lifetime,
        issuer=ctx.auth.token_issuer,
        audience=ctx.auth.token_audience,
    )
    return TokenPair(access_token, refresh_token, int(lifetime.total_seconds()))


async def open_session(
    db: AsyncSession, ctx: AccountsContext, user: User, *, user_agent: str, ip: str
) -> SignedIn:
    secret = secrets.token_urlsafe(SECRET_BYTES)
    now = ctx.clock.now()
    absolute = now + timedelta(hours=ctx.auth.session_absolute_hours)
    record = SessionRecord(
        id=0,  # assigned by the store
        user_id=user.id,
        token_hash=digest(secret),
        csrf_token=secrets.token_urlsafe(SECRET_BYTES),
        created_at=now,
        last_seen_at=now,
        idle_expires_at=min(now + timedelta(minutes=ctx.auth.session_idle_minutes), absolute),
        absolute_expires_at=absolute,
        user_agent=user_agent[:300],
        ip=ip[:64],
    )
    return SignedIn(user, await ctx.sessions.open(db, record), secret)
