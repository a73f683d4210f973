"""The rules of identity and browser sessions: no HTTP types, no SQL.

Every secret handed to a user (session id, e-mail token) is 256 bits from `secrets` and stored
only as its SHA-256 digest. Every failure that could reveal whether an e-mail is registered looks
the same to the caller — same error, same timing, same response.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import mfa, repository, throttle
from skilltree.accounts.errors import (
    EmailNotVerified,
    EmailTaken,
    InvalidCredentials,
    InvalidMfaCode,
    InvalidToken,
    NotAuthenticated,
    OidcEmailNotVerified,
    RefreshTokenReused,
    SessionNotFound,
)
from skilltree.accounts.models import (
    ApiKey,
    EmailToken,
    OidcIdentity,
    RefreshToken,
    TokenFamily,
    User,
)
from skilltree.accounts.oidc import ProviderIdentity
from skilltree.accounts.passwords import (
    check_password_policy,
    hash_password,
    needs_rehash,
    verify_password,
)
from skilltree.accounts.sessions import SessionRecord, SessionStore
from skilltree.accounts.throttle import ThrottleStore
from skilltree.accounts.tokens import TokenKeys, issue_access_token, verify_access_token
from skilltree.audit import service as audit
from skilltree.audit.service import EventKind
from skilltree.identity import Credential, Principal
from skilltree.platform import emails
from skilltree.platform.clock import Clock
from skilltree.platform.config import AuthSettings, MailSettings
from skilltree.platform.crypto import SecretBox, digest
from skilltree.platform.mail import Message
from skilltree.platform.observability import metrics
from skilltree.platform.observability.business import count_on_commit
from skilltree.platform.observability.context import current_client
from skilltree.platform.transactional_mail import TransactionalMailer

VERIFY_EMAIL = "verify-email"
RESET_PASSWORD = "reset-password"  # noqa: S105  (a token purpose, not a password)
MFA_SESSION = "mfa-session"  # a challenge answered with a code, then a browser session
MFA_TOKENS = "mfa-tokens"  # ... then an API token pair
MFA_CHALLENGE_MINUTES = 5
SECRET_BYTES = 32  # 256 bits
# Sliding the idle expiry costs a write; doing it at most once a minute keeps reads read-only.
SLIDE_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class AccountsContext:
    """What the accounts rules need from the outside world, passed in by the caller."""

    clock: Clock
    mailer: TransactionalMailer
    auth: AuthSettings
    mail: MailSettings
    token_keys: TokenKeys
    secret_box: SecretBox
    sessions: SessionStore
    throttles: ThrottleStore


@dataclass(frozen=True)
class SignedIn:
    """Who is making the request, and how, as accounts itself needs it: the user's row and
    the credential's (a browser session, an API token family, or a personal API key, which
    limits the request to the key's scopes). Other domains get its `principal`."""

    user: User
    browser_session: SessionRecord | None = None
    secret: str | None = None  # the cookie value, only right after it was issued
    token_family: str | None = None
    api_key: ApiKey | None = None

    @property
    def principal(self) -> Principal:
        """The caller as other domains see it: no rows, only who, how and with which scopes."""
        if self.api_key is not None:
            credential, scopes = Credential.API_KEY, frozenset(self.api_key.scopes)
        elif self.browser_session is not None:
            credential, scopes = Credential.SESSION, None
        else:
            credential, scopes = Credential.ACCESS_TOKEN, None
        return Principal(
            user_id=self.user.id,
            email=self.user.email,
            display_name=self.user.display_name,
            email_verified=self.user.email_verified_at is not None,
            is_admin=self.user.is_admin,
            credential=credential,
            scopes=scopes,
        )


@dataclass(frozen=True)
class MfaChallenge:
    """The password was right; the second factor is still owed. Answer with the code and this
    token within `expires_in` seconds."""

    token: str
    expires_in: int


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds until the access token expires


def normalize_email(email: str) -> str:
    """One spelling per address: NFKC, trimmed, lower case (providers treat case as equal)."""
    return unicodedata.normalize("NFKC", email).strip().lower()


async def find_user(db: AsyncSession, email: str) -> User | None:
    """The account with this e-mail address, if there is one (for the operator's commands)."""
    return await repository.get_user_by_email(db, normalize_email(email))


async def register(
    db: AsyncSession, ctx: AccountsContext, *, email: str, password: str, display_name: str
) -> None:
    """Create an unverified account and e-mail a verification link.

    An address that is already registered gets a notice instead, and the caller sees exactly
    the same outcome either way, so registration cannot be used to discover accounts.
    """
    email = normalize_email(email)
    check_password_policy(password, context=[email.split("@")[0], display_name])
    existing = await repository.get_user_by_email(db, email)
    if existing is not None:
        ctx.mailer.enqueue(db, _already_registered(ctx, email))
        return
    user = await _add_user(db, ctx.clock, email, password, display_name, verified=False)
    count_on_commit(db, metrics.SIGNUPS.labels("registration"))
    token = await _issue_token(db, ctx, user, VERIFY_EMAIL, hours=ctx.auth.email_verification_hours)
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
    return await _add_user(db, clock, email, password, display_name, verified=True, admin=admin)


async def verify_email(db: AsyncSession, ctx: AccountsContext, token: str) -> None:
    user = await _spend_token(db, ctx, token, VERIFY_EMAIL)
    if user.email_verified_at is None:
        user.email_verified_at = ctx.clock.now()
        await audit.record(db, EventKind.EMAIL_VERIFIED, user_id=user.id, at=ctx.clock.now())


async def login(
    db: AsyncSession, ctx: AccountsContext, *, email: str, password: str, user_agent: str, ip: str
) -> SignedIn | MfaChallenge:
    """Check the credentials and open a new session (a fresh id: no session fixation), or,
    when the account has two-factor authentication, return the challenge to answer first."""
    user = await _check_credentials(db, ctx, email, password)
    if user.totp_enabled_at is not None:
        return await _challenge(db, ctx, user, MFA_SESSION)
    await audit.record(
        db, EventKind.LOGIN_SUCCEEDED, user_id=user.id, at=ctx.clock.now(), via="session"
    )
    return await _open_session(db, ctx, user, user_agent=user_agent, ip=ip)


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
        return await _challenge(db, ctx, user, MFA_SESSION)
    await audit.record(
        db, EventKind.LOGIN_SUCCEEDED, user_id=user.id, at=now, via="oidc", issuer=identity.issuer
    )
    return await _open_session(db, ctx, user, user_agent=user_agent, ip=ip)


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
        return await _add_user(
            db, ctx.clock, email, secrets.token_urlsafe(SECRET_BYTES), name, verified=True
        )
    if user.email_verified_at is None:
        # Someone registered this address and never proved it; the provider just did. Whoever
        # chose that password did not own the mailbox, so it goes, with any session it opened
        # (a "pre-account takeover" would otherwise wait for the owner to link the account).
        user.email_verified_at = ctx.clock.now()
        await _set_password(db, ctx, user, secrets.token_urlsafe(SECRET_BYTES))
        await end_every_sign_in(db, ctx, user)
    return user


async def issue_tokens(
    db: AsyncSession, ctx: AccountsContext, *, email: str, password: str, user_agent: str, ip: str
) -> TokenPair | MfaChallenge:
    """Sign an API client in: a new token family, an access token and a refresh token (or the
    two-factor challenge to answer first)."""
    user = await _check_credentials(db, ctx, email, password)
    if user.totp_enabled_at is not None:
        return await _challenge(db, ctx, user, MFA_TOKENS)
    return await _open_token_family(db, ctx, user, user_agent=user_agent, ip=ip)


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
        return await _open_token_family(db, ctx, user, user_agent=user_agent, ip=ip)
    await audit.record(
        db, EventKind.LOGIN_SUCCEEDED, user_id=user.id, at=now, via="session", mfa=True
    )
    return await _open_session(db, ctx, user, user_agent=user_agent, ip=ip)


async def _open_token_family(
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
    return await _token_pair(db, ctx, user.id, family.id)


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
        await audit.record(
            db, EventKind.REFRESH_TOKEN_REUSED, user_id=family.user_id, at=now, family=family.id
        )
        raise RefreshTokenReused()
    row.used_at = now
    return await _token_pair(db, ctx, family.user_id, family.id)


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
    if now - browser_session.last_seen_at >= SLIDE_INTERVAL:
        browser_session.last_seen_at = now
        browser_session.idle_expires_at = min(
            now + timedelta(minutes=ctx.auth.session_idle_minutes),
            browser_session.absolute_expires_at,
        )
        await ctx.sessions.save_activity(db, browser_session)
    return SignedIn(user, browser_session)


async def logout(db: AsyncSession, ctx: AccountsContext, signed_in: SignedIn) -> None:
    """End what this request signed in with: its browser session, or its token family."""
    await audit.record(db, EventKind.LOGOUT, user_id=signed_in.user.id, at=ctx.clock.now())
    if signed_in.browser_session is not None:
        await ctx.sessions.delete(db, signed_in.user.id, signed_in.browser_session.id)
    if signed_in.token_family is not None:
        await repository.revoke_token_families(
            db, signed_in.user.id, ctx.clock.now(), family_id=signed_in.token_family
        )


async def logout_everywhere(db: AsyncSession, ctx: AccountsContext, user: User) -> None:
    await audit.record(db, EventKind.LOGOUT_EVERYWHERE, user_id=user.id, at=ctx.clock.now())
    await end_every_sign_in(db, ctx, user)


async def end_every_sign_in(db: AsyncSession, ctx: AccountsContext, user: User) -> None:
    """End every browser session and token family of the user (the caller records why)."""
    await ctx.sessions.delete_all(db, user.id)
    await repository.revoke_token_families(db, user.id, ctx.clock.now())


async def list_sessions(db: AsyncSession, ctx: AccountsContext, user: User) -> list[SessionRecord]:
    return await ctx.sessions.list_live(db, user.id, ctx.clock.now())


async def end_session(db: AsyncSession, ctx: AccountsContext, user: User, session_id: int) -> None:
    if not await ctx.sessions.delete(db, user.id, session_id):
        raise SessionNotFound(session_id)
    await audit.record(
        db, EventKind.SESSION_ENDED, user_id=user.id, at=ctx.clock.now(), session=session_id
    )


async def request_password_reset(db: AsyncSession, ctx: AccountsContext, email: str) -> None:
    """E-mail a reset link if the account exists; look exactly the same if it does not."""
    user = await repository.get_user_by_email(db, normalize_email(email))
    if user is None:
        return
    await repository.use_unused_tokens(db, user.id, RESET_PASSWORD, ctx.clock.now())
    minutes = ctx.auth.password_reset_minutes
    token = await _issue_token(db, ctx, user, RESET_PASSWORD, hours=minutes / 60)
    await audit.record(db, EventKind.PASSWORD_RESET_REQUESTED, user_id=user.id, at=ctx.clock.now())
    ctx.mailer.enqueue(db, _reset(ctx, user.email, token, minutes))


async def reset_password(
    db: AsyncSession, ctx: AccountsContext, token: str, new_password: str
) -> None:
    """Set a new password from an e-mailed token; every session of the user ends."""
    user = await _spend_token(db, ctx, token, RESET_PASSWORD)
    check_password_policy(new_password, context=[user.email.split("@")[0], user.display_name])
    await _set_password(db, ctx, user, new_password)
    await audit.record(db, EventKind.PASSWORD_RESET, user_id=user.id, at=ctx.clock.now())
    await logout_everywhere(db, ctx, user)
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
    user = signed_in.user
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
    await _set_password(db, ctx, user, new_password)
    await audit.record(db, EventKind.PASSWORD_CHANGED, user_id=user.id, at=ctx.clock.now())
    return await _keep_only_this_sign_in(db, ctx, signed_in, user_agent=user_agent, ip=ip)


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
    codes = await mfa.confirm_enrolment(db, ctx.secret_box, ctx.clock, signed_in.user, code)
    kept = await _keep_only_this_sign_in(db, ctx, signed_in, user_agent=user_agent, ip=ip)
    return codes, kept


# --- helpers ------------------------------------------------------------------------------


async def _add_user(
    db: AsyncSession,
    clock: Clock,
    email: str,
    password: str,
    display_name: str,
    *,
    verified: bool,
    admin: bool = False,
) -> User:
    now = clock.now()
    user = User(
        email=email,
        display_name=display_name.strip(),
        password_hash=await hash_password(password),
        email_verified_at=now if verified else None,
        is_admin=admin,
        created_at=now,
        password_changed_at=now,
    )
    repository.add(db, user)
    await repository.flush(db)
    return user


async def _challenge(
    db: AsyncSession, ctx: AccountsContext, user: User, purpose: str
) -> MfaChallenge:
    token = await _issue_token(db, ctx, user, purpose, hours=MFA_CHALLENGE_MINUTES / 60)
    return MfaChallenge(token, MFA_CHALLENGE_MINUTES * 60)


async def _check_credentials(
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


async def _token_pair(
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


async def _keep_only_this_sign_in(
    db: AsyncSession, ctx: AccountsContext, signed_in: SignedIn, *, user_agent: str, ip: str
) -> SignedIn:
    """End every other session and token family of the user. A browser session is replaced by
    a new one (new id, new CSRF token); an API client keeps its token family."""
    user = signed_in.user
    await ctx.sessions.delete_all(db, user.id)
    await repository.revoke_token_families(
        db, user.id, ctx.clock.now(), keep=signed_in.token_family
    )
    if signed_in.token_family is not None:
        return signed_in
    return await _open_session(db, ctx, user, user_agent=user_agent, ip=ip)


async def _open_session(
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


async def _set_password(db: AsyncSession, ctx: AccountsContext, user: User, password: str) -> None:
    user.password_hash = await hash_password(password)
    user.password_changed_at = ctx.clock.now()


async def _issue_token(
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


async def _spend_token(db: AsyncSession, ctx: AccountsContext, token: str, purpose: str) -> User:
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


def _reset(ctx: AccountsContext, email: str, token: str, minutes: int) -> Message:
    return emails.render(
        "password_reset",
        to=email,
        minutes=minutes,
        link=f"{ctx.mail.public_url}/reset-password#token={token}",
    )
