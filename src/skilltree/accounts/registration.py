"""Registration: new accounts (self-service or by an operator) and e-mail verification."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import repository
from skilltree.accounts.context import VERIFY_EMAIL, AccountsContext, normalize_email
from skilltree.accounts.credentials import issue_email_token, spend_email_token
from skilltree.accounts.errors import EmailTaken
from skilltree.accounts.models import User
from skilltree.accounts.passwords import (
    check_password_policy,
    hash_password,
)
from skilltree.audit import service as audit
from skilltree.audit.service import EventKind
from skilltree.platform import emails
from skilltree.platform.clock import Clock
from skilltree.platform.mail import Message
from skilltree.platform.observability import metrics
from skilltree.platform.observability.business import count_on_commit


async def register(
    db: AsyncSession, ctx: AccountsContext, *, email: str, password: str, display_name: str
) -> None:
    """Create an unverified account and e-mail a verification link.

    An address that is already registered gets a notice instead, and the caller sees exactly
    the same outcome either way, so registration cannot be used to discover accounts.
    """
    email = normalize_email(email)
    check_password_policy(password, context=[email.split("@")[0], display_name])
    # Hashed on both branches: the hash is nearly all of the work, and a branch without it would
    # answer several times faster, telling which addresses have accounts.
    password_hash = await hash_password(password)
    existing = await repository.get_user_by_email(db, email)
    if existing is not None:
        ctx.mailer.enqueue(db, _already_registered(ctx, email))
        return
    user = await add_user(
        db, ctx.clock, email, password, display_name, verified=False, password_hash=password_hash
    )
    count_on_commit(db, metrics.SIGNUPS.labels("registration"))
    token = await issue_email_token(
        db, ctx, user, VERIFY_EMAIL, hours=ctx.auth.email_verification_hours
    )
    ctx.mailer.enqueue(db, _verification(ctx, email, token))


async def create_user(
    db: AsyncSession,
    clock: Clock,
    *,
    email: str,
    password: str,
    display_name: str,
    admin: bool = False,
) -> User:
    """An operator creates an account directly (`skilltree user create`): verified at once."""
    email = normalize_email(email)
    check_password_policy(password, context=[email.split("@")[0], display_name])
    if await repository.get_user_by_email(db, email) is not None:
        raise EmailTaken(email)
    count_on_commit(db, metrics.SIGNUPS.labels("operator"))
    return await add_user(db, clock, email, password, display_name, verified=True, admin=admin)


async def verify_email(db: AsyncSession, ctx: AccountsContext, token: str) -> None:
    user = await spend_email_token(db, ctx, token, VERIFY_EMAIL)
    if user.email_verified_at is None:
        user.email_verified_at = ctx.clock.now()
        await audit.record(db, EventKind.EMAIL_VERIFIED, user_id=user.id, at=ctx.clock.now())


async def add_user(
    db: AsyncSession,
    clock: Clock,
    email: str,
    password: str,
    display_name: str,
    *,
    verified: bool,
    admin: bool = False,
    password_hash: str | None = None,
) -> User:
    now = clock.now()
    user = User(
        email=email,
        display_name=display_name.strip(),
        password_hash=password_hash or await hash_password(password),
        email_verified_at=now if verified else None,
        is_admin=admin,
        created_at=now,
        password_changed_at=now,
    )
    repository.add(db, user)
    await repository.flush(db)
    return user


def _verification(ctx: AccountsContext, email: str, token: str) -> Message:
    return emails.render(
        "verification",
        to=email,
        hours=ctx.auth.email_verification_hours,
        link=f"{ctx.mail.public_url}/verify-email#token={token}",
        token=token,
    )


def _already_registered(ctx: AccountsContext, email: str) -> Message:
    return emails.render(
        "already_registered", to=email, reset_url=f"{ctx.mail.public_url}/reset-password"
    )
