"""Signing in: password, OpenID provider and second factor, for browsers and API clients."""

from __future__ import annotations

import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import mfa, repository, throttle
from skilltree.accounts.authentication import open_session, open_token_family, token_pair
from skilltree.accounts.context import (
    MFA_CHALLENGE_MINUTES,
    MFA_SESSION,
    MFA_TOKENS,
    SECRET_BYTES,
    Account,
    AccountsContext,
    MfaChallenge,
    SignedIn,
    TokenPair,
    normalize_email,
)
from skilltree.accounts.credentials import issue_email_token, set_password
from skilltree.accounts.errors import (
    EmailNotVerified,
    InvalidCredentials,
    InvalidMfaCode,
    NotAuthenticated,
    OidcEmailNotVerified,
    RefreshTokenReused,
)
from skilltree.accounts.models import (
    OidcIdentity,
    User,
)
from skilltree.accounts.oidc import ProviderIdentity
from skilltree.accounts.passwords import (
    hash_password,
    needs_rehash,
    verify_password,
)
from skilltree.accounts.principal_cache import forget_on_commit
from skilltree.accounts.registration import add_user
from skilltree.accounts.sign_out import end_every_sign_in
from skilltree.audit import service as audit
from skilltree.audit.service import EventKind
from skilltree.platform.crypto import digest
from skilltree.platform.observability.context import current_client


async def login(
    db: AsyncSession, ctx: AccountsContext, *, email: str, password: str, user_agent: str, ip: str
) -> SignedIn | MfaChallenge:
    """Check the credentials and open a new session (a fresh id: no session fixation), or,
    when the account has two-factor authentication, return the challenge to answer first."""
    user = await check_credentials(db, ctx, email, password)
    if user.totp_enabled_at is not None:
        return await challenge(db, ctx, user, MFA_SESSION)
    await audit.record(
        db, EventKind.LOGIN_SUCCEEDED, user_id=user.id, at=ctx.clock.now(), via="session"
    )
    return await open_session(db, ctx, Account.of(user), user_agent=user_agent, ip=ip)


async def sign_in_with_provider(
    db: AsyncSession,
    ctx: AccountsContext,
    identity: ProviderIdentity,
    *,
    user_agent: str,
    ip: str,
) -> SignedIn | MfaChallenge:
    """Sign in with an identity an OpenID provider vouched for (see accounts/oidc.py).

    A known (issuer, subject) pair signs its user in. A new one is linked by e-mail, and only
    by an address the provider says it verified: linking on an unverified address would let
    anyone who types a victim's e-mail at a careless provider into the victim's account. The
    second factor still applies: the provider replaces the password, not the TOTP code.
    """
    now = ctx.clock.now()
    link = await repository.get_oidc_identity(db, identity.issuer, identity.subject)
    user = None if link is None else await repository.get_user(db, link.user_id)
    if link is not None and user is not None:
        link.last_login_at = now
    else:
        user = await _account_for(db, ctx, identity)
        repository.add(
            db,
            OidcIdentity(
                user_id=user.id,
                issuer=identity.issuer,
                subject=identity.subject,
                email=user.email,
                created_at=now,
                last_login_at=now,
            ),
        )
        await audit.record(
            db, EventKind.OIDC_LINKED, user_id=user.id, at=now, issuer=identity.issuer
        )
    if user.totp_enabled_at is not None:
        return await challenge(db, ctx, user, MFA_SESSION)
    await audit.record(
        db, EventKind.LOGIN_SUCCEEDED, user_id=user.id, at=now, via="oidc", issuer=identity.issuer
    )
    return await open_session(db, ctx, Account.of(user), user_agent=user_agent, ip=ip)


async def _account_for(db: AsyncSession, ctx: AccountsContext, identity: ProviderIdentity) -> User:
    """The account a new provider identity belongs to: the one with its verified e-mail, or a
    new one."""
    if identity.email is None or not identity.email_verified:
        raise OidcEmailNotVerified()
    email = normalize_email(identity.email)
    user = await repository.get_user_by_email(db, email)
    if user is None:
        name = (identity.name or email.split("@")[0]).strip()[:100] or email.split("@")[0][:100]
        # No password: a random one nobody knows. A reset link sets a real one if wanted.
        return await add_user(
            db, ctx.clock, email, secrets.token_urlsafe(SECRET_BYTES), name, verified=True
        )
    if user.email_verified_at is None:
        # Someone registered this address and never proved it; the provider just did. Whoever
        # chose that password did not own the mailbox, so it goes, with any session it opened
        # (a "pre-account takeover" would otherwise wait for the owner to link the account).
        user.email_verified_at = ctx.clock.now()
        await set_password(db, ctx, user, secrets.token_urlsafe(SECRET_BYTES))
        await end_every_sign_in(db, ctx, user.id)
    return user


async def issue_tokens(
    db: AsyncSession, ctx: AccountsContext, *, email: str, password: str, user_agent: str, ip: str
) -> TokenPair | MfaChallenge:
    """Sign an API client in: a new token family, an access token and a refresh token (or the
    two-factor challenge to answer first)."""
    user = await check_credentials(db, ctx, email, password)
    if user.totp_enabled_at is not None:
        return await challenge(db, ctx, user, MFA_TOKENS)
    return await open_token_family(db, ctx, user, user_agent=user_agent, ip=ip)


async def complete_mfa(
    db: AsyncSession,
    ctx: AccountsContext,
    *,
    challenge: str,
    code: str | None,
    recovery_code: str | None,
    user_agent: str,
    ip: str,
) -> SignedIn | TokenPair:
    """Answer a two-factor challenge: a browser session or a token pair, as first asked for.

    A wrong code spends the challenge (the password must be given again) and counts as a failed
    sign-in for the brute-force throttle, so codes cannot be guessed through one challenge.
    """
    now = ctx.clock.now()
    row = await repository.get_token(db, digest(challenge), MFA_SESSION, MFA_TOKENS)
    if row is None or row.used_at is not None or now >= row.expires_at:
        raise InvalidMfaCode()
    row.used_at = now
    user = await repository.get_user(db, row.user_id)
    if user is None:
        raise InvalidMfaCode()
    if not await mfa.verify_second_factor(
        db, ctx.secret_box, ctx.clock, user, code=code, recovery_code=recovery_code
    ):
        await throttle.record_failure(
            ctx.throttles, db, throttle.keys_for(user.email, current_client().ip), now
        )
        await audit.record(db, EventKind.LOGIN_FAILED, user_id=user.id, at=now, step="mfa")
        raise InvalidMfaCode()
    if row.purpose == MFA_TOKENS:
        return await open_token_family(db, ctx, user, user_agent=user_agent, ip=ip)
    await audit.record(
        db, EventKind.LOGIN_SUCCEEDED, user_id=user.id, at=now, via="session", mfa=True
    )
    return await open_session(db, ctx, Account.of(user), user_agent=user_agent, ip=ip)


async def refresh_tokens(db: AsyncSession, ctx: AccountsContext, refresh_token: str) -> TokenPair:
    """Trade a refresh token for a new pair; the old refresh token is spent.

    A refresh token is used once. If a spent one comes back, two parties hold it — the client
    and a thief — and there is no telling which is which, so the whole family is revoked: the
    thief's tokens die with the victim's, and the victim signs in again.
    """
    now = ctx.clock.now()
    row = await repository.get_refresh_token(db, digest(refresh_token))
    if row is None or now >= row.expires_at:
        raise NotAuthenticated("The refresh token is invalid or expired; sign in again.")
    family = await repository.get_token_family(db, row.family_id)
    if family is None or family.revoked_at is not None:
        raise NotAuthenticated("The refresh token has been revoked; sign in again.")
    if row.used_at is not None:
        family.revoked_at = now
        forget_on_commit(db, family.user_id)  # its access tokens die on every instance
        await audit.record(
            db, EventKind.REFRESH_TOKEN_REUSED, user_id=family.user_id, at=now, family=family.id
        )
        raise RefreshTokenReused()
    row.used_at = now
    return await token_pair(db, ctx, family.user_id, family.id)


async def challenge(
    db: AsyncSession, ctx: AccountsContext, user: User, purpose: str
) -> MfaChallenge:
    token = await issue_email_token(db, ctx, user, purpose, hours=MFA_CHALLENGE_MINUTES / 60)
    return MfaChallenge(token, MFA_CHALLENGE_MINUTES * 60)


async def check_credentials(
    db: AsyncSession, ctx: AccountsContext, email: str, password: str
) -> User:
    email = normalize_email(email)
    now = ctx.clock.now()
    throttle_keys = throttle.keys_for(email, current_client().ip)
    await throttle.ensure_not_locked(ctx.throttles, db, throttle_keys, now)
    user = await repository.get_user_by_email(db, email)
    # Verify even without a user (against a decoy hash): the answer takes the same time.
    if not await verify_password(user.password_hash if user else None, password) or user is None:
        await audit.record(
            db,
            EventKind.LOGIN_FAILED,
            user_id=user.id if user else None,
            at=ctx.clock.now(),
            email=email,
        )
        await throttle.record_failure(ctx.throttles, db, throttle_keys, now)
        raise InvalidCredentials()
    await throttle.record_success(ctx.throttles, db, email)
    if user.email_verified_at is None:
        raise EmailNotVerified()
    if needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
    return user
