"""Platform administration: administrators find accounts, grant and revoke the role, and sign
people out; every action is audited, and a change of role ends the target's sessions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import update

from skilltree.accounts.models import User
from skilltree.platform.db import Database
from tests.support.accounts import PASSWORD, Browser, sign_in, user_id

People = Callable[[str], Awaitable[Browser]]


@pytest.fixture
async def root(people: People, database: Database) -> Browser:
    """An administrator, made the way `skilltree user create --admin` leaves one: a flag on
    the user. The session opened before the flag was set sees it, as the flag is read per
    request."""
    person = await people("Root")
    async with database.unit_of_work() as session:
        await session.execute(
            update(User).where(User.id == await user_id(person)).values(is_admin=True)
        )
    return person


async def test_administrators_list_and_search_accounts(root: Browser, people: People) -> None:
    await people("Ada")
    await people("Grace")

    everyone = (await root.client.get("/v1/admin/users")).json()
    found = (await root.client.get("/v1/admin/users", params={"email": "GRACE@"})).json()

    assert [u["email"] for u in everyone["items"]] == [
        "root@example.org",
        "ada@example.org",
        "grace@example.org",
    ]
    assert everyone["total"] == 3
    assert [u["email"] for u in found["items"]] == ["grace@example.org"]
    assert found["items"][0]["is_admin"] is False
    assert found["items"][0]["mfa_enabled"] is False


async def test_the_user_list_pages_with_limit_and_offset(root: Browser, people: People) -> None:
    for name in ("Ada", "Grace", "Linus"):
        await people(name)

    page = (await root.client.get("/v1/admin/users", params={"limit": 2, "offset": 2})).json()

    assert [u["display_name"] for u in page["items"]] == ["Grace", "Linus"]
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 2)


async def test_a_bad_page_size_is_a_problem(root: Browser) -> None:
    response = await root.client.get("/v1/admin/users", params={"limit": 0})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_unknown_user_is_404(root: Browser) -> None:
    response = await root.client.get("/v1/admin/users/999999")

    assert response.status_code == 404
    assert response.json()["type"] == "/problems/user-not-found"


async def test_granting_the_role_signs_the_user_out_and_is_audited(
    root: Browser, people: People
) -> None:
    ada = await people("Ada")
    ada_id = await user_id(ada)

    granted = await root.client.put(
        f"/v1/admin/users/{ada_id}/admin", json={"is_admin": True}, headers=root.write_headers
    )

    assert granted.status_code == 200
    assert granted.json()["is_admin"] is True
    # Ada's old session ends: the new privilege applies from a fresh sign-in only.
    assert (await ada.client.get("/v1/me")).status_code == 401
    assert (await root.client.get(f"/v1/admin/users/{ada_id}")).json()["is_admin"] is True


async def test_granting_is_recorded_in_the_users_security_events(
    root: Browser, people: People
) -> None:
    ada = await people("Ada")
    ada_id = await user_id(ada)
    await root.client.put(
        f"/v1/admin/users/{ada_id}/admin", json={"is_admin": True}, headers=root.write_headers
    )
    ada = await sign_in(ada.client, email="ada@example.org")

    kinds = [e["kind"] for e in (await ada.client.get("/v1/me/security-events")).json()["items"]]

    assert "admin.granted" in kinds


async def test_the_last_administrator_cannot_be_demoted(root: Browser) -> None:
    response = await root.client.put(
        f"/v1/admin/users/{await user_id(root)}/admin",
        json={"is_admin": False},
        headers=root.write_headers,
    )

    assert response.status_code == 409
    assert response.json()["type"] == "/problems/last-administrator"
    assert (await root.client.get("/v1/me")).json()["is_admin"] is True


async def test_an_administrator_can_be_demoted_while_another_remains(
    root: Browser, people: People
) -> None:
    ada = await people("Ada")
    ada_id = await user_id(ada)
    await root.client.put(
        f"/v1/admin/users/{ada_id}/admin", json={"is_admin": True}, headers=root.write_headers
    )

    revoked = await root.client.put(
        f"/v1/admin/users/{ada_id}/admin", json={"is_admin": False}, headers=root.write_headers
    )

    assert revoked.status_code == 200
    assert revoked.json()["is_admin"] is False


async def test_signing_a_user_out_ends_their_sessions_and_tokens(
    root: Browser, people: People
) -> None:
    ada = await people("Ada")
    tokens = await ada.client.post(
        "/v1/auth/token", json={"email": "ada@example.org", "password": PASSWORD}
    )
    refresh_token = tokens.json()["refresh_token"]

    response = await root.client.post(
        f"/v1/admin/users/{await user_id(ada)}/sign-out", headers=root.write_headers
    )

    assert response.status_code == 204
    assert (await ada.client.get("/v1/me")).status_code == 401
    refreshed = await ada.client.post("/v1/auth/refresh", json={"refresh_token": refresh_token})
    assert refreshed.status_code == 401


async def test_an_administrators_api_key_needs_the_admin_scope(root: Browser) -> None:
    async def key(*scopes: str) -> str:
        created = await root.client.post(
            "/v1/me/api-keys",
            json={"name": "ops", "scopes": list(scopes)},
            headers=root.write_headers,
        )
        return str(created.json()["key"])

    with_scope = await root.client.get(
        "/v1/admin/users", headers={"authorization": f"Bearer {await key('admin')}"}
    )
    without = await root.client.get(
        "/v1/admin/users", headers={"authorization": f"Bearer {await key('progress:read')}"}
    )

    assert with_scope.status_code == 200
    assert without.status_code == 403
    assert without.json()["type"] == "/problems/insufficient-scope"
