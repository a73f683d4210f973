"""Signing out: one session, every session, and the list of where an account is signed in."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import repository
from skilltree.accounts.authentication import open_session, user_row
from skilltree.accounts.context import Account, AccountsContext, SignedIn
from skilltree.accounts.errors import SessionNotFound
from skilltree.accounts.principal_cache import forget_on_commit
from skilltree.accounts.sessions import SessionRecord
from skilltree.audit import service as audit
from skilltree.audit.service import EventKind


async def logout(db: AsyncSession, ctx: AccountsContext, signed_in: SignedIn) -> None:
    """End what this request signed in with: its browser session, or its token family."""
    forget_on_commit(db, signed_in.user.id)
    await audit.record(db, EventKind.LOGOUT, user_id=signed_in.user.id, at=ctx.clock.now())
    if signed_in.browser_session is not None:
        await ctx.sessions.delete(db, signed_in.user.id, signed_in.browser_session.id)
    if signed_in.token_family is not None:
        await repository.revoke_token_families(
            db, signed_in.user.id, ctx.clock.now(), family_id=signed_in.token_family
        )


async def logout_everywhere(db: AsyncSession, ctx: AccountsContext, user_id: int) -> None:
    await audit.record(db, EventKind.LOGOUT_EVERYWHERE, user_id=user_id, at=ctx.clock.now())
    await end_every_sign_in(db, ctx, user_id)


async def end_every_sign_in(db: AsyncSession, ctx: AccountsContext, user_id: int) -> None:
    """End every browser session and token family of the user (the caller records why)."""
    forget_on_commit(db, user_id)
    await ctx.sessions.delete_all(db, user_id)
    await repository.revoke_token_families(db, user_id, ctx.clock.now())


async def list_sessions(
    db: AsyncSession, ctx: AccountsContext, user_id: int
) -> list[SessionRecord]:
    return await ctx.sessions.list_live(db, user_id, ctx.clock.now())


async def end_session(
    db: AsyncSession, ctx: AccountsContext, user_id: int, session_id: int
) -> None:
    if not await ctx.sessions.delete(db, user_id, session_id):
        raise SessionNotFound(session_id)
    forget_on_commit(db, user_id)
    await audit.record(
        db, EventKind.SESSION_ENDED, user_id=user_id, at=ctx.clock.now(), session=session_id
    )


async def keep_only_this_sign_in(
    db: AsyncSession, ctx: AccountsContext, signed_in: SignedIn, *, user_agent: str, ip: str
) -> SignedIn:
    """End every other session and token family of the user. A browser session is replaced by
    a new one (new id, new CSRF token); an API client keeps its token family. The account is
    read again: the flow that called this may have just changed it (second factor on)."""
    user_id = signed_in.user.id
    forget_on_commit(db, user_id)
    await ctx.sessions.delete_all(db, user_id)
    await repository.revoke_token_families(
        db, user_id, ctx.clock.now(), keep=signed_in.token_family
    )
    account = Account.of(await user_row(db, user_id))
    if signed_in.token_family is not None:
        return replace(signed_in, user=account)
    return await open_session(db, ctx, account, user_agent=user_agent, ip=ip)
