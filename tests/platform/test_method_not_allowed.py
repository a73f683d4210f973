"""A 405 lists, in Allow, every method the path is served with (RFC 9110 §15.5.6)."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/v1/roadmaps", "GET, HEAD, POST"),
        ("PUT", "/v1/roadmaps", "GET, HEAD, POST"),
        ("DELETE", "/v1/me/progress/web/summary", "GET, HEAD, PUT"),
    ],
)
async def test_a_405_allows_every_method_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path)

    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.headers["content-type"] == "application/problem+json"
