"""Personal API keys: long-lived, scoped credentials for scripts and integrations.

A key reads `sk_<prefix>_<secret>`. The prefix (public, unique) finds the row in one indexed
lookup; the secret (256 bits) is compared by its SHA-256 digest in constant time. The `sk_`
marker lets secret scanners recognise leaked keys. Keys carry scopes, and never the power to
manage the account itself (keys, password, sessions), so a leaked key cannot mint new ones.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import repository
from skilltree.accounts.context import Account
from skilltree.accounts.errors import ApiKeyNotFound, NotAuthenticated, ScopeBeyondRights
from skilltree.accounts.models import ApiKey, User
from skilltree.accounts.principal_cache import forget_on_commit
from skilltree.audit import service as audit
from skilltree.audit.service import EventKind
from skilltree.identity import Scope
from skilltree.platform.clock import Clock
from skilltree.platform.crypto import digest

KEY_MARKER = "sk_"
PREFIX_BYTES = 6  # 8 url-safe characters
SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as its owner sees it: never its secret."""

    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool

    @classmethod
    def of(cls, key: ApiKey) -> KeyInfo:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            scopes=list(key.scopes),
            created_at=key.created_at,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
            revoked=key.revoked_at is not None,
        )


# A key's last use is recorded to the minute: a key used for every read would otherwise make
# every read a write (on SQLite, a wait for the one write lock).
LAST_USE_RESOLUTION = timedelta(minutes=1)


async def create_key(
    db: AsyncSession,
    clock: Clock,
    user: Account,
    *,
    name: str,
    scopes: Sequence[Scope],
    expires_in_days: int | None,
) -> tuple[KeyInfo, str]:
    """A new key and its full text, which is returned this once and never stored."""
    if Scope.ADMIN in scopes and not user.is_admin:
        raise ScopeBeyondRights("Only an administrator can create a key with the 'admin' scope.")
    now = clock.now()
    prefix = secrets.token_urlsafe(PREFIX_BYTES).replace("_", "x").replace("-", "y")
    secret = secrets.token_urlsafe(SECRET_BYTES)
    key = ApiKey(
        user_id=user.id,
        name=name,
        prefix=prefix,
        secret_hash=digest(secret),
        scopes=sorted({scope.value for scope in scopes}),
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    repository.add(db, key)
    await repository.flush(db)
    await audit.record(
        db, EventKind.API_KEY_CREATED, user_id=user.id, at=now, key=prefix, scopes=key.scopes
    )
    return KeyInfo.of(key), f"{KEY_MARKER}{prefix}_{secret}"


def looks_like_api_key(credential: str) -> bool:
    return credential.startswith(KEY_MARKER)


async def authenticate_key(db: AsyncSession, clock: Clock, credential: str) -> tuple[User, ApiKey]:
    """The owner and key behind `sk_<prefix>_<secret>`; NotAuthenticated for anything else."""
    prefix, _, secret = credential.removeprefix(KEY_MARKER).partition("_")
    key = await repository.get_api_key_by_prefix(db, prefix) if prefix and secret else None
    now = clock.now()
    valid = (
        key is not None
        and hmac.compare_digest(key.secret_hash, digest(secret))
        and key.revoked_at is None
        and (key.expires_at is None or now < key.expires_at)
    )
    if not valid or key is None:
        raise NotAuthenticated("The API key is invalid, expired or revoked.")
    user = await repository.get_user(db, key.user_id)
    if user is None:
        raise NotAuthenticated()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USE_RESOLUTION:
        key.last_used_at = now
    return user, key


async def list_keys(db: AsyncSession, user_id: int) -> list[KeyInfo]:
    return [KeyInfo.of(key) for key in await repository.list_api_keys(db, user_id)]


async def revoke_key(db: AsyncSession, clock: Clock, user_id: int, key_id: int) -> None:
    key = await repository.get_api_key(db, user_id, key_id)
    if key is None:
        raise ApiKeyNotFound(key_id)
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        forget_on_commit(db, user_id)  # every instance refuses the key from the commit on
        await audit.record(
            db, EventKind.API_KEY_REVOKED, user_id=user_id, at=key.revoked_at, key=key.prefix
        )
