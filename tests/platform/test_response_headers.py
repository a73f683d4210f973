"""Headers every response carries: Cache-Control (personal answers are never stored by a cache)
and the security headers, refusals from the body limit included."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
from fastapi import FastAPI

from tests.support.accounts import PASSWORD, Browser

People = Callable[[str], Awaitable[Browser]]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


async def test_every_route_says_how_its_answer_may_be_cached(app: FastAPI, people: People) -> None:
    ada = await people("Ada")
    paths = app.openapi()["paths"]
    missing = []
    stored = []

    for path, operations in paths.items():
        for method in operations:
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            response = await ada.client.request(
                method.upper(), concrete(path), json={}, headers=ada.write_headers
            )
            cache_control = response.headers.get("cache-control")
            if cache_control is None:
                missing.append(f"{method.upper()} {path} {response.status_code}")
            elif not cache_control.startswith("public") and "no-store" not in cache_control:
                stored.append(f"{method.upper()} {path} {cache_control}")

    assert missing == []
    assert stored == []


async def test_personal_and_secret_answers_are_private_no_store(people: People) -> None:
    ada = await people("Ada")

    me = await ada.client.get("/v1/me")
    token = await ada.client.post(
        "/v1/auth/token", json={"email": "ada@example.org", "password": PASSWORD}
    )
    key = await ada.client.post(
        "/v1/me/api-keys",
        json={"name": "k", "scopes": ["progress:read"]},
        headers=ada.write_headers,
    )

    for response in (me, token, key):
        assert response.status_code in (200, 201), response.text
        assert response.headers["cache-control"] == "private, no-store"


async def test_a_413_by_content_length_carries_the_security_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/auth/register",
        content=b"x" * (3 * 1024 * 1024),
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 413
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in response.headers
    assert response.headers["cache-control"] == "private, no-store"


async def test_an_oversized_chunked_body_is_a_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    response = await client.post(
        "/v1/auth/register", content=chunks(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-content-type-options"] == "nosniff"
