"""Access tokens: short-lived signed JWTs (RFC 7519) for API clients.

- Signed with Ed25519 (EdDSA): verifying needs only the public key, and the algorithm is the
  only one accepted — `alg: none`, HS256-with-the-public-key and every other confusion attack
  fail the allow-list before any signature is looked at.
- The signing key is derived from SKILLTREE_SECRET_KEY with HKDF; its id (`kid`) is a digest of
  the public key. Rotating the secret key (old one moved to SKILLTREE_PREVIOUS_SECRET_KEYS)
  changes the kid; tokens signed with a previous key keep verifying until they expire.
- Times are checked against the injected Clock, not the wall clock, so expiry is testable.
- A verified signature is remembered (`TokenKeys.verified`): a client sends the same token with
  every request, and checking it again would give the same answer.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cachetools import LRUCache
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import SecretStr

from skilltree.accounts.errors import NotAuthenticated

ALGORITHM = "EdDSA"
CLOCK_SKEW = timedelta(seconds=30)
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "fam"]
# Tokens whose verified claims are remembered: about 1.5 kB each, a few MB at most.
REMEMBERED_TOKENS = 4096


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    family: str  # the refresh-token family this access token was issued with
    expires_at: datetime


def derive_key(secret: SecretStr) -> SigningKey:
    seed = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"skilltree access-token signing v1"
    ).derive(secret.get_secret_value().encode())
    private = Ed25519PrivateKey.from_private_bytes(seed)
    raw_public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return SigningKey(kid=hashlib.sha256(raw_public).hexdigest()[:16], private=private)


class TokenKeys:
    """The current signing key and every key whose tokens are still accepted."""

    def __init__(self, current: SecretStr, previous: list[SecretStr]) -> None:
        self.current = derive_key(current)
        self.verifying = {key.kid: key for key in [self.current, *map(derive_key, previous)]}
        # The claims of tokens that passed `_verified_claims`, by (token, issuer, audience).
        # Only what cannot change for a given token string is remembered: the signature is over
        # those exact bytes, and these keys are fixed (new keys make a new TokenKeys, with an
        # empty memory). Expiry is still checked against the clock on every use, and revocation
        # is not a property of the token at all: its family is looked up on every request
        # (accounts.service.authenticate_token), so a sign-out ends a remembered token at once.
        # Only tokens that verified get in, so forged ones cannot push real ones out.
        self.verified: LRUCache[tuple[str, str, str], dict[str, Any]] = LRUCache(
            maxsize=REMEMBERED_TOKENS
        )


def issue_access_token(
    keys: TokenKeys,
    *,
    user_id: int,
    family: str,
    now: datetime,
    lifetime: timedelta,
    issuer: str,
    audience: str,
) -> str:
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": str(user_id),
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": uuid.uuid4().hex,
        "fam": family,
    }
    return jwt.encode(
        claims, keys.current.private, algorithm=ALGORITHM, headers={"kid": keys.current.kid}
    )


def verify_access_token(
    keys: TokenKeys, token: str, *, now: datetime, issuer: str, audience: str
) -> AccessClaims:
    """The claims of a valid token; NotAuthenticated for anything else, without saying why."""
    claims = _verified_claims(keys, token, issuer=issuer, audience=audience)
    timestamp = now.timestamp()
    if timestamp >= claims["exp"] + CLOCK_SKEW.total_seconds():
        raise NotAuthenticated("The access token has expired; refresh it.")
    if timestamp < claims["nbf"] - CLOCK_SKEW.total_seconds():
        raise NotAuthenticated("The access token is not valid yet.")
    return AccessClaims(
        user_id=int(claims["sub"]),
        family=str(claims["fam"]),
        expires_at=datetime.fromtimestamp(claims["exp"], tz=now.tzinfo),
    )


def _verified_claims(keys: TokenKeys, token: str, *, issuer: str, audience: str) -> dict[str, Any]:
    """The token's claims once its signature, issuer and audience check out, remembered."""
    remembered = keys.verified.get((token, issuer, audience))
    if remembered is None:
        remembered = _check_signature(keys, token, issuer=issuer, audience=audience)
        keys.verified[(token, issuer, audience)] = remembered
    return remembered


def _check_signature(keys: TokenKeys, token: str, *, issuer: str, audience: str) -> dict[str, Any]:
    """The claims of a token signed with one of the keys, for this issuer and audience."""
    try:
        header = jwt.get_unverified_header(token)
        key = keys.verifying.get(str(header.get("kid")))
        if key is None:
            raise NotAuthenticated("The access token is invalid.")
        claims: dict[str, Any] = jwt.decode(
            token,
            key.public,
            algorithms=[ALGORITHM],  # the allow-list: the token's own `alg` is never trusted
            audience=audience,
            issuer=issuer,
            options={
                "require": REQUIRED_CLAIMS,
                # Times are checked by verify_access_token, against the injected clock, on
                # every use: they are the one thing about a token that changes.
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError as error:
        raise NotAuthenticated("The access token is invalid.") from error
    return claims
