"""Two instances behind one Redis and one database: each keeps the callers it has seen in
memory (accounts/principal_cache.py), and a sign-out, revocation or demotion made through
one is refused by the other at once: by the announcement, long before the cache's own expiry.
How fast the announcement travels is a figure for the benchmarks, not a test's bound: a
loaded machine must not fail a promise that holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from skilltree.accounts.models import User
from skilltree.accounts.principal_cache import PrincipalCache, principal_cache_for
from skilltree.app import create_app
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import RedisSettings, Settings
from skilltree.platform.db import Database
from tests.support.accounts import PASSWORD, Browser, bearer_headers, user_id
from tests.support.orgs import invite_and_join
from tests.support.redis import REDIS_URL, isolated_prefix

pytestmark = pytest.mark.redis

People = Callable[[str], Awaitable[Browser]]
# The promise: a credential ended on one instance is refused by every other at once, which here
# means far inside the 30 s a cached caller is otherwise kept: only the push can explain it.
AT_ONCE_SECONDS = 2.0


@pytest.fixture
async def redis_settings(settings: Settings) -> AsyncIterator[Settings]:
    async with isolated_prefix() as prefix:
        yield settings.model_copy(update={"redis": RedisSettings(url=REDIS_URL, key_prefix=prefix)})


async def _instance(settings: Settings, database: Database, clock: FrozenClock) -> FastAPI:
    return create_app(settings, database=database, clock=clock)


@pytest.fixture
async def app(
    redis_settings: Settings, database: Database, clock: FrozenClock
) -> AsyncIterator[FastAPI]:
    """Instance A: where people sign up, sign in and sign out."""
    application = await _instance(redis_settings, database, clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def other(
    redis_settings: Settings, database: Database, clock: FrozenClock
) -> AsyncIterator[FastAPI]:
    """Instance B: the same database and Redis, its own memory."""
    application = await _instance(redis_settings, database, clock)
    async with application.router.lifespan_context(application):
        yield application


def cache_of(instance: FastAPI) -> PrincipalCache:
    resources = instance.state.resources
    return principal_cache_for(resources.broadcaster, resources.settings.auth)


@pytest.fixture
async def on_b(other: FastAPI) -> AsyncIterator[Callable[[Browser], httpx.AsyncClient]]:
    """The same browser (cookie jar) talking to instance B."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=other), base_url="http://test"
    ) as client:

        def as_browser(person: Browser) -> httpx.AsyncClient:
            client.cookies = person.client.cookies
            return client

        yield as_browser


async def kept_by_b(other: FastAPI, ask: Callable[[], Awaitable[httpx.Response]]) -> None:
    """Ask B twice: the second answer comes from its memory."""
    assert (await ask()).status_code == 200
    hits = cache_of(other).hits
    assert (await ask()).status_code == 200
    assert cache_of(other).hits == hits + 1, "B did not keep the caller"


async def refused_within(
    ask: Callable[[], Awaitable[httpx.Response]], status: int, seconds: float = 10.0
) -> float:
    """How long after the change the first request answered `status` was sent (the test
    fails past `seconds`). Measured at sending, so a slow answer on a loaded machine is not
    counted as a slow revocation. Each request is sent 5 ms after the last: both instances
    share this test's event loop, and a request answered from memory never yields to it, so
    without a pause B would not get to read the announcement its own process would read as
    it arrives."""
    loop = asyncio.get_running_loop()
    changed = loop.time()
    while True:
        await asyncio.sleep(0.005)
        sent = loop.time()
        response = await ask()
        if response.status_code == status:
            return sent - changed
        assert sent - changed < seconds, f"still {response.status_code} after {seconds}s"


async def test_an_access_token_signed_out_on_a_is_refused_by_b_at_once(
    people: People, other: FastAPI, on_b: Callable[[Browser], httpx.AsyncClient]
) -> None:
    ada = await people("Ada")
    bearer = await bearer_headers(ada)
    b = on_b(ada)
    b.cookies.clear()  # the token alone

    async def me_on_b() -> httpx.Response:
        return await b.get("/v1/me", headers=bearer)

    await kept_by_b(other, me_on_b)
    signed_out = await ada.client.post("/v1/auth/logout", headers=bearer)
    assert signed_out.status_code == 204

    assert await refused_within(me_on_b, 401) < AT_ONCE_SECONDS


async def test_a_session_signed_out_on_a_is_refused_by_b_at_once(
    people: People, other: FastAPI, on_b: Callable[[Browser], httpx.AsyncClient]
) -> None:
    ada = await people("Ada")
    session_cookies = httpx.Cookies(ada.client.cookies)
    b = on_b(ada)

    async def me_on_b() -> httpx.Response:
        b.cookies = session_cookies
        return await b.get("/v1/me")

    await kept_by_b(other, me_on_b)
    assert (await ada.client.post("/v1/auth/logout", headers=ada.write_headers)).status_code == 204

    assert await refused_within(me_on_b, 401) < AT_ONCE_SECONDS


async def test_a_reused_refresh_token_on_a_ends_the_access_token_on_b_at_once(
    people: People, other: FastAPI, on_b: Callable[[Browser], httpx.AsyncClient]
) -> None:
    ada = await people("Ada")
    tokens = await ada.client.post(
        "/v1/auth/token", json={"email": "ada@example.org", "password": PASSWORD}
    )
    bearer = {"authorization": f"Bearer {tokens.json()['access_token']}"}
    refresh = {"refresh_token": tokens.json()["refresh_token"]}
    b = on_b(ada)
    b.cookies.clear()

    async def me_on_b() -> httpx.Response:
        return await b.get("/v1/me", headers=bearer)

    await kept_by_b(other, me_on_b)
    assert (await ada.client.post("/v1/auth/refresh", json=refresh)).status_code == 200
    reused = await ada.client.post("/v1/auth/refresh", json=refresh)  # a thief's replay
    assert reused.status_code == 401, reused.text

    assert await refused_within(me_on_b, 401) < AT_ONCE_SECONDS


async def test_an_api_key_revoked_on_a_is_refused_by_b_at_once(
    people: People, other: FastAPI, on_b: Callable[[Browser], httpx.AsyncClient]
) -> None:
    ada = await people("Ada")
    created = await ada.client.post(
        "/v1/me/api-keys",
        json={"name": "sync", "scopes": ["progress:read"]},
        headers=ada.write_headers,
    )
    assert created.status_code == 201, created.text
    key = {"authorization": f"Bearer {created.json()['key']}"}
    b = on_b(ada)
    b.cookies.clear()

    async def me_on_b() -> httpx.Response:
        return await b.get("/v1/me", headers=key)

    await kept_by_b(other, me_on_b)
    revoked = await ada.client.delete(
        f"/v1/me/api-keys/{created.json()['id']}", headers=ada.write_headers
    )
    assert revoked.status_code == 204

    assert await refused_within(me_on_b, 401) < AT_ONCE_SECONDS


async def test_a_password_change_on_a_ends_other_sign_ins_on_b_at_once(
    people: People, other: FastAPI, on_b: Callable[[Browser], httpx.AsyncClient]
) -> None:
    ada = await people("Ada")
    bearer = await bearer_headers(ada)  # another sign-in: a token family
    b = on_b(ada)
    b.cookies.clear()

    async def me_on_b() -> httpx.Response:
        return await b.get("/v1/me", headers=bearer)

    await kept_by_b(other, me_on_b)
    changed = await ada.client.post(
        "/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "a different horse entirely 42"},
        headers=ada.write_headers,
    )
    assert changed.status_code == 200, changed.text

    assert await refused_within(me_on_b, 401) < AT_ONCE_SECONDS


async def test_an_administrator_demoted_on_a_is_refused_by_b_at_once(
    people: People, database: Database, other: FastAPI, on_b: Callable[[Browser], httpx.AsyncClient]
) -> None:
    root, grace = await people("Root"), await people("Grace")
    async with database.unit_of_work() as session:
        await session.execute(
            update(User)
            .where(User.id.in_([await user_id(root), await user_id(grace)]))
            .values(is_admin=True)
        )
    grace_token = await bearer_headers(grace)
    b = on_b(grace)
    b.cookies.clear()

    async def users_on_b() -> httpx.Response:
        return await b.get("/v1/admin/users", headers=grace_token)

    await kept_by_b(other, users_on_b)
    demoted = await root.client.put(
        f"/v1/admin/users/{await user_id(grace)}/admin",
        json={"is_admin": False},
        headers=root.write_headers,
    )
    assert demoted.status_code == 200, demoted.text

    # The change of role signs Grace out everywhere; B no longer knows her at all.
    assert await refused_within(users_on_b, 401) < AT_ONCE_SECONDS


async def test_an_administrator_demoted_by_the_operator_is_refused_by_b_at_once(
    people: People, database: Database, other: FastAPI, on_b: Callable[[Browser], httpx.AsyncClient]
) -> None:
    """The flag changed in the table itself (as `skilltree user` commands do): no sign-in
    ends, yet B stops treating her as an administrator at once."""
    grace = await people("Grace")
    async with database.unit_of_work() as session:
        await session.execute(
            update(User).where(User.id == await user_id(grace)).values(is_admin=True)
        )
    grace_token = await bearer_headers(grace)
    b = on_b(grace)
    b.cookies.clear()

    async def users_on_b() -> httpx.Response:
        return await b.get("/v1/admin/users", headers=grace_token)

    await kept_by_b(other, users_on_b)
    async with database.unit_of_work() as session:
        await session.execute(
            update(User).where(User.id == await user_id(grace)).values(is_admin=False)
        )

    assert await refused_within(users_on_b, 403) < AT_ONCE_SECONDS


@pytest.fixture
async def cohort(people: People, outbox: Path) -> tuple[Browser, Browser]:
    """Ada owns cohort-7; Bob is one of its mentors."""
    ada, bob = await people("Ada"), await people("Bob")
    created = await ada.client.post(
        "/v1/orgs", json={"slug": "cohort-7", "name": "Cohort 7"}, headers=ada.write_headers
    )
    assert created.status_code == 201, created.text
    await invite_and_join(ada, bob, outbox, "mentor", "bob@example.org")
    return ada, bob


async def test_a_mentor_demoted_on_a_cannot_invite_on_b_at_once(
    cohort: tuple[Browser, Browser],
    other: FastAPI,
    on_b: Callable[[Browser], httpx.AsyncClient],
) -> None:
    ada, bob = cohort
    b = on_b(bob)
    invitations = iter(range(1000))

    async def invite_on_b() -> httpx.Response:
        return await b.post(
            "/v1/orgs/cohort-7/invitations",
            json={"email": f"learner{next(invitations)}@example.org", "role": "learner"},
            headers=bob.write_headers,
        )

    assert (await invite_on_b()).status_code == 201
    assert (await b.get("/v1/me")).status_code == 200  # Bob is kept by B
    demoted = await ada.client.put(
        f"/v1/orgs/cohort-7/members/{await user_id(bob)}/role",
        json={"role": "learner"},
        headers=ada.write_headers,
    )
    assert demoted.status_code == 204, demoted.text

    assert await refused_within(invite_on_b, 403) < AT_ONCE_SECONDS


async def test_a_member_removed_on_a_cannot_read_the_organisation_on_b_at_once(
    cohort: tuple[Browser, Browser],
    other: FastAPI,
    on_b: Callable[[Browser], httpx.AsyncClient],
) -> None:
    ada, bob = cohort
    b = on_b(bob)

    async def org_on_b() -> httpx.Response:
        return await b.get("/v1/orgs/cohort-7")

    await kept_by_b(other, org_on_b)
    removed = await ada.client.delete(
        f"/v1/orgs/cohort-7/members/{await user_id(bob)}", headers=ada.write_headers
    )
    assert removed.status_code == 204, removed.text

    refused = await org_on_b()
    assert refused.status_code in (403, 404), refused.text


async def test_with_its_subscription_lost_b_looks_every_caller_up(
    people: People, other: FastAPI, on_b: Callable[[Browser], httpx.AsyncClient]
) -> None:
    """Redis unreachable (here: B's subscription gone): B cannot hear of revocations, so it
    keeps nobody and asks the database on every request; a sign-out on A still holds."""
    ada = await people("Ada")
    bearer = await bearer_headers(ada)
    b = on_b(ada)
    b.cookies.clear()

    async def me_on_b() -> httpx.Response:
        return await b.get("/v1/me", headers=bearer)

    await kept_by_b(other, me_on_b)
    await other.state.resources.broadcaster.close()
    hits = cache_of(other).hits
    assert (await me_on_b()).status_code == 200
    assert cache_of(other).hits == hits  # looked up, not remembered

    assert (await ada.client.post("/v1/auth/logout", headers=bearer)).status_code == 204
    assert (await me_on_b()).status_code == 401


# Organisation roles are kept with the caller (accounts/principal_cache.py): a request that
# needs them (a progress write, a roadmap edit) reads no membership once B knows the caller.
# A join, a removal, a change of role or a deleted organisation on A reaches B by the same push.

TEAM_ROADMAP = {
    "slug": "team-web",
    "title": "Team web",
    "topics": [{"slug": "http", "title": "HTTP"}, {"slug": "indexes", "title": "Indexes"}],
}


async def share_with(owner: Browser, org: str, document: dict[str, object]) -> None:
    shared = await owner.client.post(
        "/v1/roadmaps/import",
        json=document,
        params={"visibility": "organisation", "org": org},
        headers=owner.write_headers,
    )
    assert shared.status_code == 201, shared.text


async def roles_kept_by_b(other: FastAPI, ask: Callable[[], Awaitable[httpx.Response]]) -> None:
    """Ask B twice: the second time the caller's roles come from its memory."""
    assert (await ask()).status_code in (200, 201, 404)
    hits = cache_of(other).role_hits
    assert (await ask()).status_code in (200, 201, 404)
    assert cache_of(other).role_hits > hits, "B did not keep the caller's roles"


async def test_a_member_removed_on_a_cannot_record_progress_on_b_at_once(
    cohort: tuple[Browser, Browser],
    other: FastAPI,
    on_b: Callable[[Browser], httpx.AsyncClient],
) -> None:
    ada, bob = cohort
    await share_with(ada, "cohort-7", TEAM_ROADMAP)
    bearer = await bearer_headers(bob)
    b = on_b(bob)
    b.cookies.clear()
    statuses = iter(["done", "in_progress"] * 1000)

    async def mark_on_b() -> httpx.Response:
        return await b.put(
            "/v1/me/progress/team-web/http", json={"status": next(statuses)}, headers=bearer
        )

    assert (await mark_on_b()).status_code == 200
    await roles_kept_by_b(other, mark_on_b)
    removed = await ada.client.delete(
        f"/v1/orgs/cohort-7/members/{await user_id(bob)}", headers=ada.write_headers
    )
    assert removed.status_code == 204, removed.text

    assert await refused_within(mark_on_b, 404) < AT_ONCE_SECONDS


async def test_a_member_who_leaves_on_a_cannot_record_progress_on_b_at_once(
    cohort: tuple[Browser, Browser],
    other: FastAPI,
    on_b: Callable[[Browser], httpx.AsyncClient],
) -> None:
    ada, bob = cohort
    await share_with(ada, "cohort-7", TEAM_ROADMAP)
    b = on_b(bob)

    async def mark_on_b() -> httpx.Response:
        return await b.put(
            "/v1/me/progress/team-web/indexes",
            json={"status": "in_progress"},
            headers=bob.write_headers,
        )

    await roles_kept_by_b(other, mark_on_b)
    left = await bob.client.delete(
        f"/v1/orgs/cohort-7/members/{await user_id(bob)}", headers=bob.write_headers
    )
    assert left.status_code == 204, left.text

    assert await refused_within(mark_on_b, 404) < AT_ONCE_SECONDS


async def test_a_mentor_demoted_on_a_cannot_edit_the_organisations_roadmap_on_b_at_once(
    cohort: tuple[Browser, Browser],
    other: FastAPI,
    on_b: Callable[[Browser], httpx.AsyncClient],
) -> None:
    ada, bob = cohort
    await share_with(ada, "cohort-7", TEAM_ROADMAP)
    b = on_b(bob)
    topics = iter(range(1000))

    async def add_topic_on_b() -> httpx.Response:
        number = next(topics)
        return await b.post(
            "/v1/roadmaps/team-web/topics",
            json={"title": f"Topic {number}", "slug": f"topic-{number}"},
            headers=bob.write_headers,
        )

    assert (await add_topic_on_b()).status_code == 201
    await roles_kept_by_b(other, add_topic_on_b)
    demoted = await ada.client.put(
        f"/v1/orgs/cohort-7/members/{await user_id(bob)}/role",
        json={"role": "learner"},
        headers=ada.write_headers,
    )
    assert demoted.status_code == 204, demoted.text

    assert await refused_within(add_topic_on_b, 403) < AT_ONCE_SECONDS


async def test_someone_who_joins_on_a_sees_the_organisations_roadmap_on_b_at_once(
    cohort: tuple[Browser, Browser],
    people: People,
    outbox: Path,
    other: FastAPI,
    on_b: Callable[[Browser], httpx.AsyncClient],
) -> None:
    ada, _bob = cohort
    await share_with(ada, "cohort-7", TEAM_ROADMAP)
    carol = await people("Carol")
    b = on_b(carol)

    async def mark_on_b() -> httpx.Response:
        return await b.put(
            "/v1/me/progress/team-web/http", json={"status": "done"}, headers=carol.write_headers
        )

    assert (await mark_on_b()).status_code == 404  # not a member yet
    await roles_kept_by_b(other, mark_on_b)
    await invite_and_join(ada, carol, outbox, "learner", "carol@example.org")

    assert await refused_within(mark_on_b, 200) < AT_ONCE_SECONDS


async def test_the_members_of_an_organisation_deleted_on_a_see_nothing_of_a_later_one_on_b(
    cohort: tuple[Browser, Browser],
    people: People,
    other: FastAPI,
    on_b: Callable[[Browser], httpx.AsyncClient],
) -> None:
    """An organisation's id may be given again to the next one created (SQLite reuses the
    highest row id): the roles B kept for the deleted one must not open the new one."""
    ada, bob = cohort
    await share_with(ada, "cohort-7", TEAM_ROADMAP)
    b = on_b(bob)

    async def mark_on_b(roadmap: str) -> httpx.Response:
        return await b.put(
            f"/v1/me/progress/{roadmap}/http", json={"status": "done"}, headers=bob.write_headers
        )

    await roles_kept_by_b(other, lambda: mark_on_b("team-web"))
    deleted = await ada.client.delete("/v1/orgs/cohort-7", headers=ada.write_headers)
    assert deleted.status_code == 204, deleted.text
    dave = await people("Dave")
    created = await dave.client.post(
        "/v1/orgs", json={"slug": "cohort-9", "name": "Cohort 9"}, headers=dave.write_headers
    )
    assert created.status_code == 201, created.text
    await share_with(dave, "cohort-9", {**TEAM_ROADMAP, "slug": "dave-web"})

    assert await refused_within(lambda: mark_on_b("dave-web"), 404) < AT_ONCE_SECONDS
