"""Closing an account: proving it is really the owner asking, then removing the account itself.

What the account's person made in other domains (files, roadmaps, organisations) is removed by
the flow in `skilltree.erasure`, which calls these two steps first and last.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import mfa, repository
from skilltree.accounts.authentication import user_row
from skilltree.accounts.context import AccountsContext, SignedIn
from skilltree.accounts.errors import (
    InvalidCredentials,
    LastAdministrator,
    RecentSignInRequired,
    SecondFactorRequired,
)
from skilltree.accounts.models import User
from skilltree.accounts.passwords import verify_password
from skilltree.accounts.sign_out import end_every_sign_in
from skilltree.audit import service as audit
from skilltree.audit.service import EventKind
from skilltree.platform import emails
from skilltree.platform.mail import Message


async def confirm_deletion(
    db: AsyncSession,
    ctx: AccountsContext,
    signed_in: SignedIn,
    *,
    password: str | None,
    code: str | None,
) -> None:
    """Re-authenticate before an irreversible change: the current password, or (without one) a
    browser session opened in the last few minutes, and with MFA on a current code. A stolen
    session or a browser left signed in cannot delete the account; an account that signs in
    only through an OpenID provider, and so knows no password, signs in again (decision 0059)."""
    user = await user_row(db, signed_in.user.id)
    if password is None:
        if not signed_in_recently(signed_in, ctx.clock.now()):
            raise RecentSignInRequired(int(RECENT_SIGN_IN.total_seconds() // 60))
    elif not await verify_password(user.password_hash, password):
        await audit.record(
            db, EventKind.LOGIN_FAILED, user_id=user.id, at=ctx.clock.now(), during="deletion"
        )
        raise InvalidCredentials()
    if user.totp_enabled_at is not None and not await _second_factor(db, ctx, user, code):
        raise SecondFactorRequired()
    if user.is_admin and await repository.count_admins(db) <= 1:
        raise LastAdministrator()


# How recent a sign-in stands in for the password when deleting the account.
RECENT_SIGN_IN = timedelta(minutes=5)


def signed_in_recently(signed_in: SignedIn, now: datetime) -> bool:
    """A browser session opened within RECENT_SIGN_IN (its start never moves, however long it
    is used). Tokens and API keys do not count: their sign-in time is not the person's."""
    session = signed_in.browser_session
    return session is not None and now - session.created_at <= RECENT_SIGN_IN


async def _second_factor(
    db: AsyncSession, ctx: AccountsContext, user: User, code: str | None
) -> bool:
    return await mfa.verify_second_factor(
        db, ctx.secret_box, ctx.clock, user, code=code, recovery_code=None
    )


async def delete_account(db: AsyncSession, ctx: AccountsContext, user_id: int) -> None:
    """End every sign-in, keep a pseudonymous audit record, write the goodbye e-mail, and
    delete the row: the database cascades to sessions, tokens, keys and every other row that
    names the user. The address is free again once this commits."""
    user = await user_row(db, user_id)
    email = user.email
    await end_every_sign_in(db, ctx, user_id)
    await repository.delete_user(db, user)
    # Recorded after the row is gone, so the event is not unlinked by ON DELETE SET NULL:
    # the id stays in its details, the e-mail nowhere.
    await audit.record(
        db, EventKind.ACCOUNT_DELETED, user_id=None, at=ctx.clock.now(), deleted_user_id=user_id
    )
    ctx.mailer.enqueue(db, _goodbye(ctx, email))


def _goodbye(ctx: AccountsContext, email: str) -> Message:
    return emails.render("account_deleted", to=email, register_url=f"{ctx.mail.public_url}/sign-up")
