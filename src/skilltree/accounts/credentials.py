"""Credentials: password resets and changes, second factor enrolment, one-time e-mail tokens."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import mfa, repository
from skilltree.accounts.authentication import user_row
from skilltree.accounts.context import (
    RESET_PASSWORD,
    SECRET_BYTES,
    AccountsContext,
    SignedIn,
    normalize_email,
)
from skilltree.accounts.errors import (
    InvalidCredentials,
    InvalidToken,
)
from skilltree.accounts.models import (
    EmailToken,
    User,
)
from skilltree.accounts.passwords import (
    check_password_policy,
    hash_password,
    verify_password,
)
from skilltree.accounts.sign_out import keep_only_this_sign_in, logout_everywhere
from skilltree.audit import service as audit
from skilltree.audit.service import EventKind
from skilltree.platform import emails
from skilltree.platform.crypto import digest
from skilltree.platform.mail import Message


async def request_password_reset(db: AsyncSession, ctx: AccountsContext, email: str) -> None:
    """E-mail a reset link if the account exists, and a notice saying it does not otherwise.

    Both branches write and hand over one e-mail, nearly all of the work: a branch that sent
    nothing would answer several times faster and tell which addresses have accounts. The
    strict per-IP limit on `/v1/auth/` bounds how many notices one client can cause.
    """
    email = normalize_email(email)
    user = await repository.get_user_by_email(db, email)
    if user is None:
        ctx.mailer.enqueue(db, _no_account(ctx, email))
        return
    await repository.use_unused_tokens(db, user.id, RESET_PASSWORD, ctx.clock.now())
    minutes = ctx.auth.password_reset_minutes
    token = await issue_email_token(db, ctx, user, RESET_PASSWORD, hours=minutes / 60)
    await audit.record(db, EventKind.PASSWORD_RESET_REQUESTED, user_id=user.id, at=ctx.clock.now())
    ctx.mailer.enqueue(db, _reset(ctx, user.email, token, minutes))


async def reset_password(
    db: AsyncSession, ctx: AccountsContext, token: str, new_password: str
) -> None:
    """Set a new password from an e-mailed token; every session of the user ends."""
    user = await spend_email_token(db, ctx, token, RESET_PASSWORD)
    check_password_policy(new_password, context=[user.email.split("@")[0], user.display_name])
    await set_password(db, ctx, user, new_password)
    await audit.record(db, EventKind.PASSWORD_RESET, user_id=user.id, at=ctx.clock.now())
    await logout_everywhere(db, ctx, user.id)
    # Whoever controls the mailbox has just proved it, so the address counts as verified.
    user.email_verified_at = user.email_verified_at or ctx.clock.now()


async def change_password(
    db: AsyncSession,
    ctx: AccountsContext,
    signed_in: SignedIn,
    *,
    current_password: str,
    new_password: str,
    user_agent: str,
    ip: str,
) -> SignedIn:
    """Change the password (the current one is required).

    Every other session and token family ends. A browser session is replaced by a new one
    (privilege change: new id); an API client keeps its token family.
    """
    user = await user_row(db, signed_in.user.id)
    if not await verify_password(user.password_hash, current_password):
        await audit.record(
            db,
            EventKind.LOGIN_FAILED,
            user_id=user.id,
            at=ctx.clock.now(),
            during="password change",
        )
        raise InvalidCredentials()
    check_password_policy(new_password, context=[user.email.split("@")[0], user.display_name])
    await set_password(db, ctx, user, new_password)
    await audit.record(db, EventKind.PASSWORD_CHANGED, user_id=user.id, at=ctx.clock.now())
    return await keep_only_this_sign_in(db, ctx, signed_in, user_agent=user_agent, ip=ip)


async def enable_mfa(
    db: AsyncSession,
    ctx: AccountsContext,
    signed_in: SignedIn,
    code: str,
    *,
    user_agent: str,
    ip: str,
) -> tuple[list[str], SignedIn]:
    """Turn two-factor authentication on with a first code; returns the recovery codes.

    Sessions and token families opened with the password alone end (a thief holding one would
    otherwise keep it), and this browser gets a fresh session id: a privilege change."""
    codes = await mfa.confirm_enrolment(db, ctx.secret_box, ctx.clock, signed_in.user.id, code)
    kept = await keep_only_this_sign_in(db, ctx, signed_in, user_agent=user_agent, ip=ip)
    return codes, kept


async def set_password(db: AsyncSession, ctx: AccountsContext, user: User, password: str) -> None:
    user.password_hash = await hash_password(password)
    user.password_changed_at = ctx.clock.now()


async def issue_email_token(
    db: AsyncSession, ctx: AccountsContext, user: User, purpose: str, *, hours: float
) -> str:
    token = secrets.token_urlsafe(SECRET_BYTES)
    now = ctx.clock.now()
    repository.add(
        db,
        EmailToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=digest(token),
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        ),
    )
    await repository.flush(db)
    return token


async def spend_email_token(
    db: AsyncSession, ctx: AccountsContext, token: str, purpose: str
) -> User:
    """Mark a token used and return its user; unknown, expired and used tokens look the same."""
    row = await repository.get_token(db, digest(token), purpose)
    now = ctx.clock.now()
    if row is None or row.used_at is not None or now >= row.expires_at:
        raise InvalidToken()
    row.used_at = now
    user = await repository.get_user(db, row.user_id)
    if user is None:
        raise InvalidToken()
    return user


def _no_account(ctx: AccountsContext, email: str) -> Message:
    return emails.render(
        "password_reset_no_account", to=email, register_url=f"{ctx.mail.public_url}/sign-up"
    )


def _reset(ctx: AccountsContext, email: str, token: str, minutes: int) -> Message:
    return emails.render(
        "password_reset",
        to=email,
        minutes=minutes,
        link=f"{ctx.mail.public_url}/reset-password#token={token}",
    )
