"""Signing in with an OpenID Connect provider: the authorization code flow with PKCE.

1. `begin` builds the provider's authorization URL with three fresh random values:
   `state` (ties the callback to this browser: no login CSRF), `nonce` (ties the ID token to
   this attempt: no replay) and a PKCE `code_verifier` (only whoever started the flow can redeem
   the code, even if it leaks from a redirect). They travel in an encrypted, HttpOnly cookie
   that lives ten minutes; nothing is stored server-side until the sign-in succeeds.
2. `finish` checks the `state` against the cookie, redeems the code at the token endpoint with
   the verifier and the client secret, and validates the ID token: signature against the
   provider's published keys (JWKS, refetched once when a token names an unknown `kid`, which is
   how providers rotate keys), an allow-list of algorithms (never `none`, never HMAC), and the
   `iss`, `aud`, `azp`, `exp`, `iat` and `nonce` claims.

authlib supplies the protocol rules (discovery validation, the authorization request, PKCE, the
ID token's claim rules), joserfc verifies the signature and httpx makes the two requests; this
module only wires them together. What an identity may do to
accounts (link, create) is the service's decision: `service.sign_in_with_provider`.

authlib, joserfc and httpx are imported by the functions that use them, so that they load with
the first sign-in through a provider: a worker whose deployment configures none never carries
them (tests/test_memory.py, tests/test_lazy_imports.py).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from cryptography.fernet import InvalidToken

from skilltree.accounts.errors import (
    OidcLoginFailed,
    OidcProviderNotFound,
    OidcProviderUnavailable,
)
from skilltree.platform.config import OidcProvider
from skilltree.platform.crypto import SecretBox

if TYPE_CHECKING:
    import httpx
    from joserfc import jwt
    from joserfc.jwk import KeySet, KeySetSerialization

FLOW_COOKIE = "skilltree_oidc"
FLOW_SECONDS = 10 * 60
# Asymmetric signatures only: with an HMAC algorithm the "key" would be our client secret, and
# with "none" there would be no signature at all.
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
# Discovery documents and keys change rarely; re-reading them hourly picks up rotations.
METADATA_TTL_SECONDS = 3600
CLOCK_LEEWAY_SECONDS = 60
HTTP_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class PendingLogin:
    """What the callback must match, sealed into the flow cookie."""

    provider: str
    state: str
    nonce: str
    code_verifier: str
    expires_at: float  # epoch seconds

    def seal(self, box: SecretBox) -> str:
        return box.encrypt(json.dumps(asdict(self)))

    @classmethod
    def unseal(cls, box: SecretBox, sealed: str | None, now: datetime) -> PendingLogin:
        if not sealed:
            raise OidcLoginFailed("No sign-in is in progress in this browser; start again.")
        try:
            pending = cls(**json.loads(box.decrypt(sealed)))
        except (InvalidToken, ValueError, TypeError) as error:
            raise OidcLoginFailed("The sign-in could not be resumed; start again.") from error
        if now.timestamp() >= pending.expires_at:
            raise OidcLoginFailed("The sign-in took too long; start again.")
        return pending


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the provider says signed in, from a validated ID token."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None


@dataclass
class _Cached:
    metadata: dict[str, Any]
    keys: KeySet
    fetched_at: float


class OidcClient:
    """The configured providers, with their discovery documents and keys cached in-process."""

    def __init__(self, providers: list[OidcProvider]) -> None:
        self._providers = {p.name: p for p in providers}
        self._cache: dict[str, _Cached] = {}

    @property
    def names(self) -> list[str]:
        return sorted(self._providers)

    def provider(self, name: str) -> OidcProvider:
        if name not in self._providers:
            raise OidcProviderNotFound(name)
        return self._providers[name]

    async def begin(
        self, provider: OidcProvider, redirect_uri: str, now: datetime
    ) -> tuple[str, PendingLogin]:
        """The URL to send the browser to, and what the callback must match."""
        from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
        from authlib.oauth2.rfc7636 import create_s256_code_challenge

        cached = await self._discover(provider)
        pending = PendingLogin(
            provider=provider.name,
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(48),  # 64 characters, within RFC 7636's 43–128
            expires_at=now.timestamp() + FLOW_SECONDS,
        )
        url = prepare_grant_uri(
            cached.metadata["authorization_endpoint"],
            client_id=provider.client_id,
            response_type="code",
            redirect_uri=redirect_uri,
            scope=" ".join(provider.scopes),
            state=pending.state,
            nonce=pending.nonce,
            code_challenge=create_s256_code_challenge(pending.code_verifier),
            code_challenge_method="S256",
        )
        return str(url), pending

    async def finish(
        self,
        provider: OidcProvider,
        redirect_uri: str,
        pending: PendingLogin,
        *,
        code: str,
        state: str,
        now: datetime,
    ) -> ProviderIdentity:
        # As bytes: compare_digest refuses a str beyond ASCII, which the query may carry.
        same_state = secrets.compare_digest(state.encode(), pending.state.encode())
        if pending.provider != provider.name or not same_state:
            raise OidcLoginFailed("The sign-in response does not match this browser's request.")
        cached = await self._discover(provider)
        tokens = await _redeem(provider, cached, redirect_uri, code, pending.code_verifier)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OidcLoginFailed("The provider returned no ID token.")
        claims = await self._validated_claims(provider, cached, id_token, pending, tokens, now)
        email = claims.get("email")
        return ProviderIdentity(
            issuer=provider.issuer,
            subject=str(claims["sub"]),
            email=email if isinstance(email, str) else None,
            email_verified=claims.get("email_verified") is True,
            name=claims.get("name") if isinstance(claims.get("name"), str) else None,
        )

    async def _validated_claims(
        self,
        provider: OidcProvider,
        cached: _Cached,
        id_token: str,
        pending: PendingLogin,
        tokens: dict[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        from authlib.oidc.core import CodeIDToken
        from joserfc.errors import JoseError

        try:
            token = self._decode(id_token, cached.keys)
        except JoseError:
            # Perhaps the provider rotated its keys since we cached them: fetch them once more.
            cached = await self._discover(provider, refresh=True)
            try:
                token = self._decode(id_token, cached.keys)
            except JoseError as error:
                raise OidcLoginFailed("The ID token's signature is not valid.") from error
        claims = CodeIDToken(
            token.claims,
            token.header,
            options={
                "iss": {"essential": True, "value": provider.issuer},
                "aud": {"essential": True, "value": provider.client_id},
            },
            params={
                "nonce": pending.nonce,
                "client_id": provider.client_id,
                "access_token": tokens.get("access_token"),
            },
        )
        try:
            claims.validate(now=int(now.timestamp()), leeway=CLOCK_LEEWAY_SECONDS)
        except JoseError as error:
            raise OidcLoginFailed(f"The ID token is not valid ({error.error}).") from error
        return dict(claims)

    @staticmethod
    def _decode(id_token: str, keys: KeySet) -> jwt.Token:
        from joserfc import jwt

        return jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)

    async def _discover(self, provider: OidcProvider, *, refresh: bool = False) -> _Cached:
        import httpx
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        cached = self._cache.get(provider.name)
        if cached and not refresh and time.monotonic() - cached.fetched_at < METADATA_TTL_SECONDS:
            return cached
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http:
            metadata = await _get_json(
                http, provider, f"{provider.issuer}/.well-known/openid-configuration"
            )
            _check_metadata(provider, metadata)
            jwks = await _get_json(http, provider, metadata["jwks_uri"])
            try:
                keys = KeySet.import_key_set(cast("KeySetSerialization", jwks))
            except (JoseError, ValueError, KeyError, TypeError) as error:
                raise OidcProviderUnavailable(provider.name) from error
        cached = _Cached(metadata, keys, time.monotonic())
        self._cache[provider.name] = cached
        return cached


async def _redeem(
    provider: OidcProvider, cached: _Cached, redirect_uri: str, code: str, code_verifier: str
) -> dict[str, Any]:
    """The token request (RFC 6749 §4.1.3 with RFC 7636's verifier), authenticated with the
    client secret as the provider prefers: HTTP Basic, else in the form."""
    import httpx

    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    secret = provider.client_secret.get_secret_value()
    supported = cached.metadata.get("token_endpoint_auth_methods_supported", [])
    auth: httpx.BasicAuth | None = None
    if "client_secret_basic" in supported or not supported:  # Basic is the default (§9)
        auth = httpx.BasicAuth(provider.client_id, secret)
    else:
        form |= {"client_id": provider.client_id, "client_secret": secret}
    async with httpx.AsyncClient(
        auth=auth, timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False
    ) as http:
        try:
            response = await http.post(
                cached.metadata["token_endpoint"], data=form, headers={"accept": "application/json"}
            )
            tokens = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise OidcProviderUnavailable(provider.name) from error
    if response.status_code != 200 or not isinstance(tokens, dict):
        reason = tokens.get("error", "refused") if isinstance(tokens, dict) else "refused"
        raise OidcLoginFailed(f"The provider did not accept the sign-in ({reason}).")
    return tokens


async def _get_json(http: httpx.AsyncClient, provider: OidcProvider, url: str) -> dict[str, Any]:
    import httpx

    try:
        response = await http.get(url)
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise OidcProviderUnavailable(provider.name) from error
    if not isinstance(document, dict):
        raise OidcProviderUnavailable(provider.name)
    return document


def _check_metadata(provider: OidcProvider, metadata: dict[str, Any]) -> None:
    """The discovery document must be valid and name the configured issuer: a document that
    names another issuer could hand us someone else's keys (OpenID Connect Discovery §4.3)."""
    from authlib.oidc.discovery import OpenIDProviderMetadata

    try:
        OpenIDProviderMetadata(metadata).validate()
    except ValueError as error:
        raise OidcProviderUnavailable(provider.name) from error
    if metadata.get("issuer", "").rstrip("/") != provider.issuer:
        raise OidcProviderUnavailable(provider.name)
    if "S256" not in metadata.get("code_challenge_methods_supported", ["S256"]):
        raise OidcProviderUnavailable(provider.name)
