"""A real OpenID Connect provider on loopback, for end-to-end sign-in tests.

It serves what skilltree talks to over HTTP — the discovery document, the JWKS, the
authorization endpoint and the token endpoint — from a uvicorn server in a thread, and plays
by the rules a real provider enforces: registered client and redirect URI, client secret, PKCE
S256, single-use codes. The person "signed in" at the provider is `provider.person`; tests can
also make it misbehave (`id_token_claims` overrides, signing with a foreign key) to check that
skilltree refuses what it must.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from skilltree.platform.clock import Clock

CLIENT_ID = "skilltree"
CLIENT_SECRET = "provider-issued-secret"


@dataclass
class Person:
    subject: str = "provider-user-1"
    email: str = "ada@example.org"
    email_verified: bool = True
    name: str = "Ada Lovelace"


@dataclass
class _Grant:
    person: Person
    redirect_uri: str
    nonce: str
    code_challenge: str


@dataclass
class LoopbackProvider:
    clock: Clock
    redirect_uri: str
    issuer: str = ""
    person: Person = field(default_factory=Person)
    # Claims to change in the next ID tokens (a wrong audience, an old expiry, ...).
    id_token_claims: dict[str, Any] = field(default_factory=dict)
    # Sign ID tokens with this key instead of the published one.
    foreign_key: RSAKey | None = None
    signing_key: RSAKey = field(default_factory=lambda: _new_key("key-1"))
    token_requests: list[dict[str, str]] = field(default_factory=list)
    _grants: dict[str, _Grant] = field(default_factory=dict)

    def rotate_key(self) -> None:
        self.signing_key = _new_key(f"key-{secrets.token_hex(4)}")

    # --- endpoints ---

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "scopes_supported": ["openid", "email", "profile"],
            }
        )

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(KeySet([self.signing_key]).as_dict(private=False))

    async def authorize(self, request: Request) -> Response:
        query = request.query_params
        if (
            query.get("client_id") != CLIENT_ID
            or query.get("redirect_uri") != self.redirect_uri
            or query.get("response_type") != "code"
            or query.get("code_challenge_method") != "S256"
            or not query.get("code_challenge")
            or "openid" not in query.get("scope", "").split()
        ):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(24)
        self._grants[code] = _Grant(
            person=self.person,
            redirect_uri=query["redirect_uri"],
            nonce=query.get("nonce", ""),
            code_challenge=query["code_challenge"],
        )
        location = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        return RedirectResponse(location, status_code=302)

    async def token(self, request: Request) -> Response:
        form = {key: str(value) for key, value in (await request.form()).items()}
        self.token_requests.append(form)
        if not self._client_authenticated(request):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self._grants.pop(form.get("code", ""), None)  # single use
        if (
            grant is None
            or form.get("grant_type") != "authorization_code"
            or form.get("redirect_uri") != grant.redirect_uri
            or _s256(form.get("code_verifier", "")) != grant.code_challenge
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(self.clock.now().timestamp())
        claims = {
            "iss": self.issuer,
            "sub": grant.person.subject,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            "email": grant.person.email,
            "email_verified": grant.person.email_verified,
            "name": grant.person.name,
        } | self.id_token_claims
        key = self.foreign_key or self.signing_key
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            }
        )

    def _client_authenticated(self, request: Request) -> bool:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        client_id, _, secret = base64.b64decode(credentials).decode().partition(":")
        return client_id == CLIENT_ID and secrets.compare_digest(secret, CLIENT_SECRET)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
            ]
        )


@contextmanager
def running_provider(clock: Clock, redirect_uri: str) -> Iterator[LoopbackProvider]:
    """Start the provider on a free loopback port; stop it afterwards."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    provider = LoopbackProvider(clock=clock, redirect_uri=redirect_uri)
    provider.issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(provider.app(), log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the loopback OpenID provider did not start")
        time.sleep(0.01)
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


def _s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
