"""Bearer tokens for API clients: lifecycle, rotation, reuse detection, and JWT attacks."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from pydantic import SecretStr

from skilltree.accounts.errors import NotAuthenticated
from skilltree.accounts.tokens import (
    AccessClaims,
    TokenKeys,
    derive_key,
    issue_access_token,
    verify_access_token,
)
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import Settings
from tests.support.accounts import PASSWORD, register_and_verify


async def get_tokens(client: httpx.AsyncClient, outbox: Path) -> dict[str, str]:
    await register_and_verify(client, outbox)
    response = await client.post(
        "/v1/auth/token", json={"email": "ada@example.org", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_an_access_token_signs_requests_in(client: httpx.AsyncClient, outbox: Path) -> None:
    tokens = await get_tokens(client, outbox)

    me = await client.get("/v1/me", headers=bearer(tokens["access_token"]))

    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 600
    assert me.status_code == 200
    assert me.json()["email"] == "ada@example.org"


async def test_the_token_header_names_its_key_and_algorithm(
    client: httpx.AsyncClient, outbox: Path
) -> None:
    tokens = await get_tokens(client, outbox)

    header = jwt.get_unverified_header(tokens["access_token"])

    assert header["alg"] == "EdDSA"
    assert len(header["kid"]) == 16


async def test_bearer_writes_need_no_csrf_token(client: httpx.AsyncClient, outbox: Path) -> None:
    tokens = await get_tokens(client, outbox)

    response = await client.post("/v1/auth/logout", headers=bearer(tokens["access_token"]))

    assert response.status_code == 204


async def test_an_access_token_expires_after_10_minutes(
    client: httpx.AsyncClient, outbox: Path, clock: FrozenClock
) -> None:
    tokens = await get_tokens(client, outbox)
    clock.advance(minutes=10, seconds=31)  # past the 30 s allowance for clock skew

    response = await client.get("/v1/me", headers=bearer(tokens["access_token"]))

    assert response.status_code == 401


async def test_a_token_already_in_use_still_expires_after_10_minutes(
    client: httpx.AsyncClient, outbox: Path, clock: FrozenClock
) -> None:
    tokens = await get_tokens(client, outbox)
    assert (await client.get("/v1/me", headers=bearer(tokens["access_token"]))).status_code == 200
    clock.advance(minutes=10, seconds=31)

    response = await client.get("/v1/me", headers=bearer(tokens["access_token"]))

    assert response.status_code == 401
    assert response.json()["detail"] == "The access token has expired; refresh it."


async def test_refreshing_rotates_the_refresh_token(
    client: httpx.AsyncClient, outbox: Path
) -> None:
    tokens = await get_tokens(client, outbox)

    refreshed = await client.post(
        "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )

    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"] != tokens["refresh_token"]
    me = await client.get("/v1/me", headers=bearer(refreshed.json()["access_token"]))
    assert me.status_code == 200


async def test_a_reused_refresh_token_revokes_the_whole_family(
    client: httpx.AsyncClient, outbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = await get_tokens(client, outbox)
    legitimate = (
        await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).json()

    replay = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})

    assert replay.status_code == 401
    # The family is dead: the legitimate client's newer tokens stop working too.
    assert (
        await client.get("/v1/me", headers=bearer(legitimate["access_token"]))
    ).status_code == 401
    again = await client.post(
        "/v1/auth/refresh", json={"refresh_token": legitimate["refresh_token"]}
    )
    assert again.status_code == 401
    assert "refresh_token.reused" in capsys.readouterr().out


async def test_logout_revokes_the_access_token_at_once(
    client: httpx.AsyncClient, outbox: Path
) -> None:
    tokens = await get_tokens(client, outbox)

    await client.post("/v1/auth/logout", headers=bearer(tokens["access_token"]))

    assert (await client.get("/v1/me", headers=bearer(tokens["access_token"]))).status_code == 401
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401


async def test_a_password_reset_revokes_every_token(
    client: httpx.AsyncClient, outbox: Path
) -> None:
    from tests.support.accounts import last_token

    tokens = await get_tokens(client, outbox)
    await client.post("/v1/auth/password-reset", json={"email": "ada@example.org"})
    await client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": last_token(outbox), "password": "a brand new passphrase"},
    )

    assert (await client.get("/v1/me", headers=bearer(tokens["access_token"]))).status_code == 401


def forge(header: dict[str, object], payload: dict[str, object], signature: bytes = b"") -> str:
    def encode(part: bytes) -> str:
        return base64.urlsafe_b64encode(part).rstrip(b"=").decode()

    return ".".join(
        [
            encode(json.dumps(header).encode()),
            encode(json.dumps(payload).encode()),
            encode(signature),
        ]
    )


def claims_of(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


async def test_alg_none_is_refused(client: httpx.AsyncClient, outbox: Path) -> None:
    tokens = await get_tokens(client, outbox)
    header = jwt.get_unverified_header(tokens["access_token"])

    forged = forge(header | {"alg": "none"}, claims_of(tokens["access_token"]))

    assert (await client.get("/v1/me", headers=bearer(forged))).status_code == 401


async def test_hs256_signed_with_the_public_key_is_refused(
    client: httpx.AsyncClient, outbox: Path, settings: Settings
) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    tokens = await get_tokens(client, outbox)
    key = derive_key(settings.app.secret_key)
    public_pem = key.public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    # The classic confusion attack: the public key used as an HMAC secret. (PyJWT refuses to
    # do this itself, so the signature is made by hand.)
    import hashlib
    import hmac

    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    unsigned = forge(header, claims_of(tokens["access_token"])).rsplit(".", 1)[0]
    signature = hmac.new(public_pem, unsigned.encode(), hashlib.sha256).digest()
    forged = unsigned + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()

    assert (await client.get("/v1/me", headers=bearer(forged))).status_code == 401


async def test_a_tampered_payload_is_refused(client: httpx.AsyncClient, outbox: Path) -> None:
    tokens = await get_tokens(client, outbox)
    header_b64, _, signature_b64 = tokens["access_token"].split(".")
    payload = claims_of(tokens["access_token"]) | {"sub": "999"}
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()

    tampered = f"{header_b64}.{body}.{signature_b64}"

    assert (await client.get("/v1/me", headers=bearer(tampered))).status_code == 401


@pytest.mark.parametrize(
    ("field", "value"),
    [("aud", "another-api"), ("iss", "someone-else")],
    ids=["audience", "issuer"],
)
async def test_a_token_for_another_audience_or_issuer_is_refused(
    client: httpx.AsyncClient, outbox: Path, settings: Settings, field: str, value: str
) -> None:
    tokens = await get_tokens(client, outbox)
    key = derive_key(settings.app.secret_key)
    claims = claims_of(tokens["access_token"]) | {field: value}

    forged = jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid})

    assert (await client.get("/v1/me", headers=bearer(forged))).status_code == 401


async def test_a_token_with_an_unknown_key_id_is_refused(
    client: httpx.AsyncClient, outbox: Path
) -> None:
    tokens = await get_tokens(client, outbox)
    stranger = derive_key(SecretStr("a key this server never had"))

    forged = jwt.encode(
        claims_of(tokens["access_token"]),
        stranger.private,
        algorithm="EdDSA",
        headers={"kid": stranger.kid},
    )

    assert (await client.get("/v1/me", headers=bearer(forged))).status_code == 401


def test_a_rotated_key_still_verifies_and_signing_moves_to_the_new_one() -> None:
    old, new = SecretStr("the old secret key"), SecretStr("the new secret key")

    keys = TokenKeys(new, [old])

    assert keys.current.kid == derive_key(new).kid
    assert set(keys.verifying) == {derive_key(new).kid, derive_key(old).kid}


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def token_for(keys: TokenKeys, audience: str = "skilltree-api") -> str:
    return issue_access_token(
        keys,
        user_id=7,
        family="family",
        now=NOW,
        lifetime=timedelta(minutes=10),
        issuer="skilltree",
        audience=audience,
    )


def verify(
    keys: TokenKeys, token: str, *, at: datetime = NOW, audience: str = "skilltree-api"
) -> AccessClaims:
    return verify_access_token(keys, token, now=at, issuer="skilltree", audience=audience)


def test_a_signature_is_checked_once_per_token(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = TokenKeys(SecretStr("a secret key"), [])
    token = token_for(keys)
    checks: list[str] = []
    decode = jwt.decode

    def counted(token: str, *args: Any, **kwargs: Any) -> Any:
        checks.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counted)

    first, second = verify(keys, token), verify(keys, token)

    assert first == second
    assert first.user_id == 7
    assert checks == [token]


def test_a_remembered_token_still_expires_and_is_not_valid_before_it_was_issued() -> None:
    keys = TokenKeys(SecretStr("a secret key"), [])
    token = token_for(keys)
    verify(keys, token)

    with pytest.raises(NotAuthenticated, match="expired"):
        verify(keys, token, at=NOW + timedelta(minutes=10, seconds=30))
    with pytest.raises(NotAuthenticated, match="not valid yet"):
        verify(keys, token, at=NOW - timedelta(seconds=31))


def test_a_token_remembered_for_one_audience_is_refused_by_another() -> None:
    keys = TokenKeys(SecretStr("a secret key"), [])
    token = token_for(keys, audience="skilltree-api")
    verify(keys, token, audience="skilltree-api")

    with pytest.raises(NotAuthenticated, match="invalid"):
        verify(keys, token, audience="another-api")


def test_new_keys_do_not_accept_what_old_keys_verified() -> None:
    old = TokenKeys(SecretStr("a retired secret key"), [])
    token = token_for(old)
    verify(old, token)

    with pytest.raises(NotAuthenticated, match="invalid"):
        verify(TokenKeys(SecretStr("the new secret key"), []), token)
