"""Every response carries the browser's defences; HSTS only over https."""

from __future__ import annotations

import httpx


async def test_api_responses_forbid_framing_sniffing_and_active_content(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/roadmaps")

    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "camera=()" in response.headers["permissions-policy"]


async def test_errors_carry_the_headers_too(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nowhere")

    assert response.status_code == 404
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_docs_pages_may_load_their_scripts_from_the_server_only(
    client: httpx.AsyncClient,
) -> None:
    for page in ("/docs", "/redoc"):
        policy = (await client.get(page)).headers["content-security-policy"]

        assert "script-src 'self'" in policy
        assert "https:" not in policy  # nothing from a CDN or any other site


async def test_hsts_is_sent_only_over_https(client: httpx.AsyncClient) -> None:
    plain = await client.get("/livez")
    secure = await client.get("https://test/livez")

    assert "strict-transport-security" not in plain.headers
    assert secure.headers["strict-transport-security"].startswith("max-age=63072000")


async def test_cors_preflight_from_an_allowed_origin_is_answered(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/v1/auth/logout",
        headers={
            "origin": "http://test",
            "access-control-request-method": "POST",
            "access-control-request-headers": "x-csrf-token",
        },
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://test"
    assert response.headers["access-control-allow-credentials"] == "true"


async def test_cors_refuses_an_origin_not_on_the_list(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        "/v1/auth/logout",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    simple = await client.get("/v1/roadmaps", headers={"origin": "https://evil.example"})

    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


async def test_a_refused_preflight_is_a_problem_that_names_what_was_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/v1/auth/logout",
        headers={
            "origin": "https://evil.example",
            "access-control-request-method": "TRACE",
            "access-control-request-headers": "x-not-allowed",
        },
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/cors-preflight-refused"
    assert problem["instance"] == "/v1/auth/logout"
    assert problem["refused"] == ["origin", "method", "headers"]
    assert problem["request_id"] == response.headers["x-request-id"]
