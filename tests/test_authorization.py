"""The authorisation matrix: every route's access rule, checked against the real app.

ACCESS names the rule of every route. A route without an entry fails
`test_every_route_has_an_access_rule`, so no endpoint can ship without a decision about who
may call it. Each rule is then checked for the callers it must refuse:

    public        anyone
    signed-in     any credential: session, access token or API key (with the route's scope)
    account       a real sign-in (session or access token), never an API key
    org-reader    members of the organisation in the path; others get 404
    org-manager   members (role checked by the service) with a real sign-in; others get 404
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import httpx
import pytest

from skilltree.app import create_app
from skilltree.platform.config import Settings
from tests.support.accounts import Browser

People = Callable[[str], Awaitable[Browser]]

ACCESS: dict[str, str] = {
    "GET /livez": "public",
    "GET /readyz": "public",
    "GET /v1/roadmaps": "public",
    "GET /v1/roadmaps/{slug}": "public",
    "GET /v1/roadmaps/{slug}/tree": "public",
    "GET /v1/roadmaps/{slug}/topics/{topic_slug}": "public",
    "GET /v1/roadmaps/{slug}/export": "public",
    "POST /v1/roadmaps/import": "signed-in",
    "GET /v1/roadmaps/{slug}/outline": "public",
    "GET /v1/roadmaps/{slug}/revisions": "public",
    "GET /v1/roadmaps/{slug}/revisions/{number}": "public",
    "POST /v1/roadmaps": "signed-in",
    "PATCH /v1/roadmaps/{slug}": "signed-in",
    "POST /v1/roadmaps/{slug}/forks": "signed-in",
    "POST /v1/roadmaps/{slug}/topics": "signed-in",
    "PATCH /v1/roadmaps/{slug}/topics/{topic_slug}": "signed-in",
    "DELETE /v1/roadmaps/{slug}/topics/{topic_slug}": "signed-in",
    "POST /v1/roadmaps/{slug}/revisions": "signed-in",
    "POST /v1/auth/register": "public",
    "POST /v1/auth/verify-email": "public",
    "POST /v1/auth/login": "public",
    "POST /v1/auth/login/mfa": "public",
    "POST /v1/auth/token": "public",
    "POST /v1/auth/token/mfa": "public",
    "POST /v1/auth/refresh": "public",
    "POST /v1/auth/password-reset": "public",
    "POST /v1/auth/password-reset/confirm": "public",
    "GET /v1/me": "signed-in",
    "GET /v1/orgs": "signed-in",
    "POST /v1/auth/logout": "account",
    "POST /v1/auth/logout-all": "account",
    "POST /v1/me/password": "account",
    "GET /v1/me/sessions": "account",
    "DELETE /v1/me/sessions/{session_id}": "account",
    "GET /v1/me/security-events": "account",
    "POST /v1/me/api-keys": "account",
    "GET /v1/me/api-keys": "account",
    "DELETE /v1/me/api-keys/{key_id}": "account",
    "POST /v1/me/mfa/totp": "account",
    "POST /v1/me/mfa/totp/confirm": "account",
    "POST /v1/me/mfa/totp/disable": "account",
    "POST /v1/orgs": "account",
    "POST /v1/invitations/accept": "account",
    "GET /v1/orgs/{org}": "org-reader",
    "GET /v1/orgs/{org}/members": "org-reader",
    "GET /v1/orgs/{org}/audit": "org-reader",
    "PATCH /v1/orgs/{org}": "org-manager",
    "DELETE /v1/orgs/{org}": "org-manager",
    "PUT /v1/orgs/{org}/members/{user_id}/role": "org-manager",
    "DELETE /v1/orgs/{org}/members/{user_id}": "org-manager",
    "POST /v1/orgs/{org}/transfer-ownership": "org-manager",
    "POST /v1/orgs/{org}/invitations": "org-manager",
}
PATH_VALUES = {
    "slug": "backend",
    "topic_slug": "http",
    "org": "cohort-7",
    "user_id": "1",
    "session_id": "1",
    "key_id": "1",
    "number": "1",
}
REFUSED = {401, 403}


def operations() -> set[str]:
    schema = create_app(Settings()).openapi()
    return {
        f"{method.upper()} {path}"
        for path, methods in schema["paths"].items()
        for method in methods
    }


def with_rule(*rules: str) -> list[str]:
    return sorted(operation for operation, rule in ACCESS.items() if rule in rules)


async def call(
    client: httpx.AsyncClient, operation: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    method, template = operation.split(" ", 1)
    path = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], template)
    body = {} if method in {"POST", "PUT", "PATCH"} else None
    return await client.request(method, path, json=body, headers=headers)


def test_every_route_has_an_access_rule() -> None:
    assert operations() == set(ACCESS)


@pytest.mark.parametrize("operation", with_rule("public"))
async def test_public_routes_admit_anonymous_callers(
    client: httpx.AsyncClient, operation: str
) -> None:
    assert (await call(client, operation)).status_code not in REFUSED


@pytest.mark.parametrize(
    "operation", with_rule("signed-in", "account", "org-reader", "org-manager")
)
async def test_protected_routes_refuse_anonymous_callers_with_401(
    client: httpx.AsyncClient, operation: str
) -> None:
    response = await call(client, operation)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


@pytest.fixture
async def api_key(people: People) -> str:
    ada = await people("Ada")
    created = await ada.client.post(
        "/v1/orgs", json={"slug": "cohort-7", "name": "Cohort 7"}, headers=ada.write_headers
    )
    assert created.status_code == 201
    response = await ada.client.post(
        "/v1/me/api-keys", json={"name": "matrix", "scopes": ["admin"]}, headers=ada.write_headers
    )
    return str(response.json()["key"])


@pytest.mark.parametrize("operation", with_rule("account", "org-manager"))
async def test_api_keys_cannot_reach_account_or_management_routes(
    second_client: httpx.AsyncClient, api_key: str, operation: str
) -> None:
    response = await call(second_client, operation, {"authorization": f"Bearer {api_key}"})

    assert response.status_code == 403
    assert response.json()["type"] == "/problems/insufficient-scope"


@pytest.mark.parametrize(
    "operation", [op for op in with_rule("signed-in", "org-reader") if op.startswith("GET ")]
)
async def test_api_keys_reach_read_routes(
    second_client: httpx.AsyncClient, api_key: str, operation: str
) -> None:
    response = await call(second_client, operation, {"authorization": f"Bearer {api_key}"})

    assert response.status_code == 200


@pytest.mark.parametrize("operation", with_rule("org-reader", "org-manager"))
async def test_outsiders_get_404_from_organisation_routes(
    people: People, api_key: str, operation: str
) -> None:
    eve = await people("Eve")

    response = await call(eve.client, operation, eve.write_headers)

    assert response.status_code == 404
    assert response.json()["type"] == "/problems/org-not-found"


def test_the_matrix_names_only_known_rules() -> None:
    assert set(ACCESS.values()) <= {"public", "signed-in", "account", "org-reader", "org-manager"}
