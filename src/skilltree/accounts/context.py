"""What every accounts flow shares: the context passed in, the signed-in caller, the outcomes."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from skilltree.accounts.models import User
from skilltree.accounts.principal_cache import PrincipalCache
from skilltree.accounts.sessions import SessionRecord, SessionStore
from skilltree.accounts.throttle import ThrottleStore
from skilltree.accounts.tokens import TokenKeys
from skilltree.identity import Credential, Principal
from skilltree.platform.clock import Clock
from skilltree.platform.config import AuthSettings, MailSettings
from skilltree.platform.crypto import SecretBox
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
    # Callers found by earlier requests, forgotten on every announced change.
    principals: PrincipalCache


@dataclass(frozen=True, slots=True)
class Account:
    """A user as routes show it: the `User` row itself stays inside accounts."""

    id: int
    email: str
    display_name: str
    email_verified: bool
    is_admin: bool
    mfa_enabled: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> Account:
        return cls(
            id=user.id,
            email=user.email,
            display_name=user.display_name,
            email_verified=user.email_verified_at is not None,
            is_admin=user.is_admin,
            mfa_enabled=user.totp_enabled_at is not None,
            created_at=user.created_at,
        )


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """The personal API key a request was made with: which one, and what it may do."""

    id: int
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who is making the request, and how, as accounts itself needs it: the account and the
    credential (a browser session, an API token family, or a personal API key, which limits
    the request to the key's scopes). Read models only, never rows: a sign-in outlives the
    unit of work that found it (accounts/principal_cache.py keeps it between requests).
    Other domains get its `principal`."""

    user: Account
    browser_session: SessionRecord | None = None
    secret: str | None = None  # the cookie value, only right after it was issued
    token_family: str | None = None
    api_key: KeyGrant | None = None

    @property
    def account(self) -> Account:
        return self.user

    @property
    def principal(self) -> Principal:
        """The caller as other domains see it: no rows, only who, how and with which scopes."""
        if self.api_key is not None:
            credential, scopes = Credential.API_KEY, self.api_key.scopes
        elif self.browser_session is not None:
            credential, scopes = Credential.SESSION, None
        else:
            credential, scopes = Credential.ACCESS_TOKEN, None
        return Principal(
            user_id=self.user.id,
            email=self.user.email,
            display_name=self.user.display_name,
            email_verified=self.user.email_verified,
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
