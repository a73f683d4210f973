"""Who is calling: the user behind a session cookie or an access token, and opening them."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, MutableMapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import api_keys, repository
from skilltree.accounts.context import (
    SECRET_BYTES,
    SLIDE_INTERVAL,
    Account,
    AccountsContext,
    KeyGrant,
    SignedIn,
    TokenPair,
)
from skilltree.accounts.errors import NotAuthenticated
from skilltree.accounts.models import (
    RefreshToken,
    TokenFamily,
    User,
)
from skilltree.accounts.principal_cache import credential_key, session_key
from skilltree.accounts.sessions import SessionRecord
from skilltree.accounts.tokens import issue_access_token, verify_access_token
from skilltree.audit import service as audit
from skilltree.audit.service import EventKind
from skilltree.platform.crypto import digest
from skilltree.platform.db import after_commit


async def user_row(db: AsyncSession, user_id: int) -> User:
    """The row of a signed-in user, for the flows that change it (a sign-in carries no row)."""
    user = await repository.get_user(db, user_id)
    if user is None:
        raise NotAuthenticated()  # deleted while the request was on its way
    return user


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
    pair = await token_pair(db, ctx, user.id, family.id)
    _keep_once_committed(
        db, ctx, pair.access_token, SignedIn(Account.of(user), token_family=family.id)
    )
    return pair


def _keep_once_committed(
    db: AsyncSession, ctx: AccountsContext, access_token: str, signed_in: SignedIn
) -> None:
    """Keep a new access token's sign-in as its first use would (`authenticate_token`), once
    the family is committed: no lookup on that use, and a token issued at an address refusing
    credentials it does not know (platform/http/rate_limit.py) is not refused. Its expiry is
    read from the token, as that use would read it."""
    claims = verify_access_token(
        ctx.token_keys,
        access_token,
        now=ctx.clock.now(),
        issuer=ctx.auth.token_issuer,
        audience=ctx.auth.token_audience,
    )

    async def keep() -> None:
        # Read after the commit's own announcements, the generation lets it in.
        ctx.principals.keep(
            credential_key("token", access_token),
            signed_in,
            generation=ctx.principals.generation(),
            expires_at=claims.expires_at,
        )

    after_commit(db, keep)


def kept_token(ctx: AccountsContext, access_token: str) -> SignedIn | None:
    """The sign-in behind an access token as this process keeps it, when it may be used as it
    is (accounts/principal_cache.py); None when it must be looked up (`authenticate_token`)."""
    found = ctx.principals.find(credential_key("token", access_token))
    # Expired is decided by the request's clock; near the end the full check (with its
    # allowance for clock skew) decides.
    if found is not None and found.expires_at is not None and ctx.clock.now() < found.expires_at:
        return found.signed_in
    return None


async def authenticate_token(db: AsyncSession, ctx: AccountsContext, access_token: str) -> SignedIn:
    """The user behind a bearer access token, provided its family has not been revoked."""
    kept = kept_token(ctx, access_token)
    if kept is not None:
        return kept
    cache_key = credential_key("token", access_token)
    generation = ctx.principals.generation()
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
    signed_in = SignedIn(Account.of(user), token_family=claims.family)
    ctx.principals.keep(cache_key, signed_in, generation=generation, expires_at=claims.expires_at)
    return signed_in


def kept_api_key(ctx: AccountsContext, credential: str) -> SignedIn | None:
    """The sign-in behind a personal API key as this process keeps it, when it may be used as
    it is; None when it must be looked up (`authenticate_api_key`)."""
    found = ctx.principals.find(credential_key("key", credential))
    now = ctx.clock.now()
    if (
        found is not None
        and (found.expires_at is None or now < found.expires_at)
        # Its last use is recorded to the minute, by the full path: at most one write a minute.
        and found.last_used_at is not None
        and now - found.last_used_at < api_keys.LAST_USE_RESOLUTION
    ):
        return found.signed_in
    return None


async def authenticate_api_key(db: AsyncSession, ctx: AccountsContext, credential: str) -> SignedIn:
    """The owner of a personal API key, limited to the key's scopes."""
    kept = kept_api_key(ctx, credential)
    if kept is not None:
        return kept
    cache_key = credential_key("key", credential)
    generation = ctx.principals.generation()
    user, key = await api_keys.authenticate_key(db, ctx.clock, credential)
    signed_in = SignedIn(Account.of(user), api_key=KeyGrant(key.id, frozenset(key.scopes)))
    ctx.principals.keep(
        cache_key,
        signed_in,
        generation=generation,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
    )
    return signed_in


# Where a request's state notes the session `kept_session` found usable: its digest and sign-in.
CONFIRMED_SESSION = "skilltree.confirmed_session"


def _kept_live_session(
    ctx: AccountsContext, token_hash: str, now: datetime
) -> tuple[SignedIn, SessionRecord] | None:
    """The sign-in behind a session as this process keeps it, and its session, when it is live
    by `now`; None when the process keeps none (or one that looks ended)."""
    found = ctx.principals.find(session_key(token_hash))
    if found is None or (kept := found.signed_in.browser_session) is None or not kept.is_live(now):
        return None
    return found.signed_in, kept


async def kept_session(
    ctx: AccountsContext, secret: str, state: MutableMapping[str, Any] | None = None
) -> SignedIn | None:
    """The sign-in behind a session cookie as this process keeps it, when it may be used as it
    is: live by the request's clock, still in its store, and not due to slide its idle expiry
    (which writes); None when the full path must decide (`authenticate`). Found, it is noted
    in the request's `state`, for `authenticate` to use should the request go on."""
    token_hash = digest(secret)
    now = ctx.clock.now()
    kept = _kept_live_session(ctx, token_hash, now)
    if kept is None or now - kept[1].last_seen_at >= SLIDE_INTERVAL:
        return None
    if not await ctx.sessions.still_stored(token_hash):
        return None
    if state is not None:
        state[CONFIRMED_SESSION] = (token_hash, kept[0])
    return kept[0]


async def authenticate(
    db: AsyncSession,
    ctx: AccountsContext,
    secret: str,
    state: Mapping[str, Any] | None = None,
) -> SignedIn:
    """The signed-in user behind a session cookie, sliding the idle expiry. `state` is the
    request's: a session `kept_session` found usable earlier in the same request (the fast
    path looked first, then sent the request on) is used without asking its store again."""
    token_hash = digest(secret)
    confirmed = None if state is None else state.get(CONFIRMED_SESSION)
    if confirmed is not None and confirmed[0] == token_hash:
        signed_in: SignedIn = confirmed[1]
        return signed_in
    cache_key = session_key(token_hash)
    now = ctx.clock.now()
    kept = _kept_live_session(ctx, token_hash, now)
    if kept is not None:
        signed_in, record = kept
        # The store is the authority: a record it lost (Redis wiped) ends the session here too.
        if not await ctx.sessions.still_stored(token_hash):
            ctx.principals.drop(cache_key)
            raise NotAuthenticated("Your session has ended; sign in again.")
        slid = await slide(db, ctx, record)  # when due: at most once a minute
        if slid is record:
            return signed_in
        signed_in = replace(signed_in, browser_session=slid)
        ctx.principals.keep(cache_key, signed_in, generation=ctx.principals.generation())
        return signed_in
    # Not kept, or kept looking ended (another instance may have slid it): ask the store.
    generation = ctx.principals.generation()
    browser_session = await ctx.sessions.find(db, token_hash)
    if browser_session is None or not browser_session.is_live(now):
        raise NotAuthenticated("Your session has ended; sign in again.")
    user = await repository.get_user(db, browser_session.user_id)
    if user is None:
        raise NotAuthenticated()
    signed_in = SignedIn(Account.of(user), await slide(db, ctx, browser_session))
    ctx.principals.keep(cache_key, signed_in, generation=generation)
    return signed_in


async def slide(
    db: AsyncSession, ctx: AccountsContext, browser_session: SessionRecord
) -> SessionRecord:
    """Activity keeps a session alive: move its idle expiry (at most once a minute). Returns
    the session as it now stands; the record passed in is left as it was."""
    now = ctx.clock.now()
    if now - browser_session.last_seen_at < SLIDE_INTERVAL:
        return browser_session
    slid = replace(
        browser_session,
        last_seen_at=now,
        idle_expires_at=min(
            now + timedelta(minutes=ctx.auth.session_idle_minutes),
            browser_session.absolute_expires_at,
        ),
    )
    await ctx.sessions.save_activity(db, slid)
    return slid


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
        await slide(db, ctx, browser_session)
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
    db: AsyncSession, ctx: AccountsContext, user: Account, *, user_agent: str, ip: str
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
    stored = await ctx.sessions.open(db, record)

    async def keep_once_committed() -> None:
        # Known from its first use, as `authenticate` would keep it then: no lookup on that
        # request, and a session opened at an address refusing credentials it does not know
        # (platform/http/rate_limit.py) is not refused. Read after the commit's own
        # announcements, the generation lets it in.
        kept = SignedIn(user, stored)
        ctx.principals.keep(
            session_key(stored.token_hash), kept, generation=ctx.principals.generation()
        )

    after_commit(db, keep_once_committed)
    return SignedIn(user, stored, secret)
