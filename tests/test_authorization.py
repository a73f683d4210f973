"""The authorisation matrix: every route × every kind of caller → the outcome they must get.

ACCESS names the rule of every route; a route without an entry fails
`test_every_route_has_an_access_rule`, so no endpoint ships without a decision about who may
call it. `expected()` turns a rule into the outcome for each caller, and
`test_every_caller_gets_the_outcome_the_rule_promises` calls every route as every caller
against the real app, on SQLite and PostgreSQL.

The callers:

    anonymous          no credentials
    learner            member of the organisation in the path, role learner
    mentor             same, role mentor
    owner              same, role owner
    outsider           signed in, owner of another organisation
    admin              platform administrator, not a member of the organisation
    key                API key with the `admin` scope, held by a platform administrator who is
                       a learner of the organisation
    key-without-scope  that person's key with every scope but the one the route needs

The outcomes, read from the response (status and problem type):

    ok         not refused (the route ran; it may still say 404, 409 or 422 about the input)
    401        not signed in
    scope      403 insufficient-scope: an API key without the scope, or on an account route
    role       403 role-required: a member whose role is too low
    not-admin  403 not-platform-admin
    hidden     404 org-not-found: not a member, and not told the organisation exists
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from skilltree.accounts.models import User
from skilltree.app import create_app
from skilltree.identity import Scope
from skilltree.orgs.models import Membership, Organisation
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import RealtimeSettings, Settings
from skilltree.platform.db import Database
from tests.support.accounts import Browser, register_and_verify, sign_in

ROLES = ("learner", "mentor", "owner")


@dataclass(frozen=True)
class Rule:
    """Who may call a route.

    kind   public | signed-in | account (a real sign-in, never an API key) | org (members of
           the organisation in the path) | admin (platform administrators)
    scope  the API-key scope the route needs, if any
    role   for org routes: the least role admitted
    keys   for org routes: whether API keys are admitted at all (changes need a real sign-in)
    """

    kind: str
    scope: Scope | None = None
    role: str = "learner"
    keys: bool = True


PUBLIC = Rule("public")
SIGNED_IN = Rule("signed-in")
ACCOUNT = Rule("account")
ADMIN = Rule("admin", scope=Scope.ADMIN)
PROGRESS_READER = Rule("signed-in", scope=Scope.PROGRESS_READ)
PROGRESS_WRITER = Rule("signed-in", scope=Scope.PROGRESS_WRITE)
ROADMAP_WRITER = Rule("signed-in", scope=Scope.ROADMAPS_WRITE)
MEMBERS = Rule("org")
OWNERS_READ = Rule("org", role="owner")
MENTORS_MANAGE = Rule("org", role="mentor", keys=False)
OWNERS_MANAGE = Rule("org", role="owner", keys=False)
MENTORS_READ = Rule("org", role="mentor")
MEMBERS_MANAGE = Rule("org", keys=False)

ACCESS: dict[str, Rule] = {
    "GET /livez": PUBLIC,
    "GET /startupz": PUBLIC,
    "GET /metrics": PUBLIC,
    "GET /readyz": PUBLIC,
    "GET /v1/roadmaps": PUBLIC,
    "GET /v1/roadmaps/{slug}": PUBLIC,
    "GET /v1/roadmaps/{slug}/tree": PUBLIC,
    "GET /v1/roadmaps/{slug}/topics/{topic_slug}": PUBLIC,
    "GET /v1/roadmaps/{slug}/export": PUBLIC,
    "POST /v1/roadmaps/import": ROADMAP_WRITER,
    "POST /v1/auth/register": PUBLIC,
    "POST /v1/auth/verify-email": PUBLIC,
    "POST /v1/auth/login": PUBLIC,
    "POST /v1/auth/login/mfa": PUBLIC,
    "POST /v1/auth/token": PUBLIC,
    "POST /v1/auth/token/mfa": PUBLIC,
    "POST /v1/auth/refresh": PUBLIC,
    "POST /v1/auth/password-reset": PUBLIC,
    "POST /v1/auth/password-reset/confirm": PUBLIC,
    "GET /v1/auth/oidc/providers": PUBLIC,
    "GET /v1/auth/oidc/{provider}/login": PUBLIC,
    "GET /v1/auth/oidc/{provider}/callback": PUBLIC,
    "GET /v1/me": SIGNED_IN,
    "GET /v1/orgs": SIGNED_IN,
    "GET /v1/me/notifications": SIGNED_IN,
    "PUT /v1/me/notifications": ACCOUNT,
    "POST /v1/notifications/unsubscribe": PUBLIC,
    "POST /v1/auth/logout": ACCOUNT,
    "POST /v1/auth/logout-all": ACCOUNT,
    "POST /v1/me/password": ACCOUNT,
    "GET /v1/me/sessions": ACCOUNT,
    "DELETE /v1/me/sessions/{session_id}": ACCOUNT,
    "GET /v1/me/security-events": ACCOUNT,
    "POST /v1/me/api-keys": ACCOUNT,
    "GET /v1/me/api-keys": ACCOUNT,
    "DELETE /v1/me/api-keys/{key_id}": ACCOUNT,
    "POST /v1/me/mfa/totp": ACCOUNT,
    "POST /v1/me/mfa/totp/confirm": ACCOUNT,
    "POST /v1/me/mfa/totp/disable": ACCOUNT,
    "POST /v1/orgs": ACCOUNT,
    "POST /v1/invitations/accept": ACCOUNT,
    "GET /v1/orgs/{org}": MEMBERS,
    "GET /v1/orgs/{org}/members": MEMBERS,
    "GET /v1/orgs/{org}/audit": OWNERS_READ,
    "PATCH /v1/orgs/{org}": OWNERS_MANAGE,
    "DELETE /v1/orgs/{org}": OWNERS_MANAGE,
    "PUT /v1/orgs/{org}/members/{user_id}/role": OWNERS_MANAGE,
    "DELETE /v1/orgs/{org}/members/{user_id}": OWNERS_MANAGE,
    "POST /v1/orgs/{org}/transfer-ownership": OWNERS_MANAGE,
    "POST /v1/orgs/{org}/invitations": MENTORS_MANAGE,
    "GET /v1/admin/users": ADMIN,
    "GET /v1/admin/users/{user_id}": ADMIN,
    "PUT /v1/admin/users/{user_id}/admin": ADMIN,
    "POST /v1/admin/users/{user_id}/sign-out": ADMIN,
    "POST /v1/orgs/{org}/webhooks": OWNERS_MANAGE,
    "GET /v1/orgs/{org}/webhooks": OWNERS_READ,
    "DELETE /v1/orgs/{org}/webhooks/{endpoint_id}": OWNERS_MANAGE,
    "GET /v1/orgs/{org}/webhooks/{endpoint_id}/deliveries": OWNERS_READ,
    "POST /v1/orgs/{org}/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver": OWNERS_MANAGE,
    "POST /v1/orgs/{org}/webhooks/{endpoint_id}/test": OWNERS_MANAGE,
    "GET /v1/admin/dlq": ADMIN,
    "DELETE /v1/admin/dlq": ADMIN,
    "GET /v1/admin/dlq/{letter_id}": ADMIN,
    "DELETE /v1/admin/dlq/{letter_id}": ADMIN,
    "POST /v1/admin/dlq/{letter_id}/replay": ADMIN,
    "GET /v1/me/profile": PROGRESS_READER,
    "PATCH /v1/me/profile": PROGRESS_WRITER,
    "GET /v1/me/progress/{roadmap}": PROGRESS_READER,
    "PUT /v1/me/progress/{roadmap}/{topic}": PROGRESS_WRITER,
    "POST /v1/me/progress/{roadmap}/undo": PROGRESS_WRITER,
    "GET /v1/me/progress/{roadmap}/history": PROGRESS_READER,
    "GET /v1/me/progress/{roadmap}/summary": PROGRESS_READER,
    "GET /v1/me/progress/{roadmap}/export": PROGRESS_READER,
    "POST /v1/me/progress/{roadmap}/import": PROGRESS_WRITER,
    "GET /v1/me/stats": PROGRESS_READER,
    "GET /v1/me/progress/{roadmap}/{topic}/note": PROGRESS_READER,
    "PUT /v1/me/progress/{roadmap}/{topic}/note": PROGRESS_WRITER,
    "GET /v1/me/progress/{roadmap}/{topic}/resources": PROGRESS_READER,
    "POST /v1/me/progress/{roadmap}/{topic}/resources": PROGRESS_WRITER,
    "DELETE /v1/me/progress/{roadmap}/{topic}/resources/{resource_id}": PROGRESS_WRITER,
    "GET /v1/me/reviews/due": PROGRESS_READER,
    "POST /v1/me/reviews/{card_id}": PROGRESS_WRITER,
    "GET /v1/users/{handle}/badges/{roadmap}.svg": PUBLIC,
    "GET /v1/roadmaps/{slug}/outline": PUBLIC,
    "GET /v1/roadmaps/{slug}/revisions": PUBLIC,
    "GET /v1/roadmaps/{slug}/revisions/{number}": PUBLIC,
    "POST /v1/roadmaps": ROADMAP_WRITER,
    "PATCH /v1/roadmaps/{slug}": ROADMAP_WRITER,
    "POST /v1/roadmaps/{slug}/forks": ROADMAP_WRITER,
    "POST /v1/roadmaps/{slug}/topics": ROADMAP_WRITER,
    "PATCH /v1/roadmaps/{slug}/topics/{topic_slug}": ROADMAP_WRITER,
    "DELETE /v1/roadmaps/{slug}/topics/{topic_slug}": ROADMAP_WRITER,
    "POST /v1/roadmaps/{slug}/revisions": ROADMAP_WRITER,
    # Public; notes and resources are found only with a credential that may read progress.
    "GET /v1/search": PUBLIC,
    "POST /v1/me/progress/{roadmap}/{topic}/note/attachments": PROGRESS_WRITER,
    "GET /v1/me/progress/{roadmap}/{topic}/note/attachments": PROGRESS_READER,
    "DELETE /v1/me/progress/{roadmap}/{topic}/note/attachments/{file_id}": PROGRESS_WRITER,
    # Public route: the signed link (bound to its user) is the authorisation.
    "GET /v1/files/{key}": PUBLIC,
    # Resumable uploads (tus): discovery is public; an upload is its owner's alone.
    "OPTIONS /v1/me/uploads": PUBLIC,
    "POST /v1/me/uploads": PROGRESS_WRITER,
    "HEAD /v1/me/uploads/{upload_id}": PROGRESS_READER,
    "PATCH /v1/me/uploads/{upload_id}": PROGRESS_WRITER,
    "DELETE /v1/me/uploads/{upload_id}": PROGRESS_WRITER,
    "GET /v1/orgs/{org}/progress": MENTORS_READ,
    "PUT /v1/orgs/{org}/sharing": MEMBERS_MANAGE,
    "POST /v1/orgs/{org}/assignments": MENTORS_MANAGE,
    "GET /v1/orgs/{org}/assignments": MEMBERS,
    "DELETE /v1/orgs/{org}/assignments/{assignment_id}": MENTORS_MANAGE,
    "GET /v1/me/assignments": PROGRESS_READER,
    "GET /v1/orgs/{org}/feed": MEMBERS,
    "GET /v1/orgs/{org}/feed/stream": MEMBERS,
    "GET /v1/me/stream": PROGRESS_READER,
    "GET /v1/orgs/{org}/rooms": MEMBERS,
    "POST /v1/orgs/{org}/rooms": MEMBERS_MANAGE,
    "POST /v1/orgs/{org}/rooms/{room}/tickets": MEMBERS,
    "GET /v1/orgs/{org}/rooms/{room}/messages": MEMBERS,
    "DELETE /v1/orgs/{org}/rooms/{room}/messages/{seq}": MENTORS_MANAGE,
    # The endpoint admits everyone; each field applies its REST twin's rule (GRAPHQL_TWINS).
    "GET /graphql": PUBLIC,
    "POST /graphql": PUBLIC,
    "GET /v1/admin/flags": ADMIN,
    "GET /v1/admin/flags/{flag}": ADMIN,
    "PUT /v1/admin/flags/{flag}": ADMIN,
    "PATCH /v1/admin/flags/{flag}": ADMIN,
    "DELETE /v1/admin/flags/{flag}": ADMIN,
}

# Bodies valid enough that a caller who passes the access check reaches the service (where
# roles are checked), instead of stopping at a 422.
BODIES: dict[str, dict[str, Any]] = {
    "PATCH /v1/orgs/{org}": {"name": "Cohort Seven"},
    "PUT /v1/orgs/{org}/members/{user_id}/role": {"role": "mentor"},
    "POST /v1/orgs/{org}/transfer-ownership": {"user_id": 999_999},
    "POST /v1/orgs/{org}/invitations": {"email": "new@example.org", "role": "learner"},
    "PUT /v1/admin/users/{user_id}/admin": {"is_admin": True},
    "POST /v1/orgs/{org}/webhooks": {"url": "https://8.8.8.8/hook", "event_types": ["*"]},
    "PUT /v1/orgs/{org}/sharing": {"share_details": False},
    "POST /v1/orgs/{org}/assignments": {"roadmap": "backend"},
    "POST /v1/orgs/{org}/rooms": {"key": "matrix-room", "title": "Matrix"},
    "PUT /v1/admin/flags/{flag}": {"enabled": True},
}

CALLERS = ("anonymous", *ROLES, "outsider", "admin", "key", "key-without-scope")


def expected(rule: Rule, caller: str) -> str:
    """The outcome `rule` promises `caller`."""
    if rule.kind == "public":
        return "ok"
    if caller == "anonymous":
        return "401"
    is_key = caller.startswith("key")
    if is_key and caller == "key-without-scope" and rule.scope is not None:
        return "scope"
    if rule.kind == "signed-in":
        return "ok"
    if rule.kind == "account":
        return "scope" if is_key else "ok"
    if rule.kind == "admin":
        return "ok" if caller in ("admin", "key") else "not-admin"
    # Organisation routes. The key holder is a learner of the organisation.
    if caller in ("outsider", "admin"):
        return "hidden"
    if is_key and not rule.keys:
        return "scope"
    role = "learner" if is_key else caller
    return "ok" if ROLES.index(role) >= ROLES.index(rule.role) else "role"


def outcome(response: httpx.Response) -> str:
    if response.request.method == "HEAD":
        # No body to name the problem: on the routes HEAD serves (the caller's own uploads)
        # a 401 is the sign-in's and a 403 the scope's.
        return {401: "401", 403: "scope"}.get(response.status_code, "ok")
    problem_type = ""
    if response.headers.get("content-type") == "application/problem+json":
        problem_type = response.json()["type"]
    refusals = {
        (401, "/problems/not-authenticated"): "401",
        (403, "/problems/insufficient-scope"): "scope",
        (403, "/problems/role-required"): "role",
        (403, "/problems/not-platform-admin"): "not-admin",
        (404, "/problems/org-not-found"): "hidden",
    }
    return refusals.get((response.status_code, problem_type), "ok")


def operations() -> set[str]:
    schema = create_app(Settings()).openapi()
    return {
        f"{method.upper()} {path}"
        for path, methods in schema["paths"].items()
        for method in methods
    }


def test_every_route_has_an_access_rule() -> None:
    assert operations() == set(ACCESS)


def test_the_rules_promise_what_the_docstring_says() -> None:
    assert expected(OWNERS_MANAGE, "mentor") == "role"
    assert expected(OWNERS_MANAGE, "key") == "scope"
    assert expected(MEMBERS, "admin") == "hidden"
    assert expected(ADMIN, "owner") == "not-admin"
    assert expected(ROADMAP_WRITER, "key-without-scope") == "scope"


@dataclass
class World:
    """One organisation (cohort-7) with a member of each role, an outsider, an administrator
    and API keys; `headers[caller]` are what each caller sends besides its cookies."""

    clients: dict[str, httpx.AsyncClient]
    headers: dict[str, dict[str, str]]
    path_values: dict[str, str]
    keys_without: dict[Scope | None, str]


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        transaction = await conn.begin()
        yield conn
        await transaction.rollback()


@pytest.fixture
async def matrix_app(
    settings: Settings, connection: AsyncConnection, clock: FrozenClock
) -> AsyncIterator[FastAPI]:
    # Like the shared `app`, but the test holds the connection, so it can wrap each call in a
    # savepoint and roll back whatever the call changed before the next caller tries.
    sessions = async_sessionmaker(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )
    database = Database(connection.engine, sessions)
    # Event streams admitted by the rule end at once, so every call returns.
    settings = settings.model_copy(
        update={"realtime": RealtimeSettings(stream_max_seconds=0.01, heartbeat_seconds=0.01)}
    )
    application = create_app(settings, database=database, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def world(
    matrix_app: FastAPI, connection: AsyncConnection, outbox: Path, clock: FrozenClock
) -> AsyncIterator[World]:
    transport = httpx.ASGITransport(app=matrix_app)
    clients: dict[str, httpx.AsyncClient] = {}
    browsers: dict[str, Browser] = {}

    async def person(caller: str, name: str) -> Browser:
        client = httpx.AsyncClient(transport=transport, base_url="http://test")
        clients[caller] = client
        email = f"{name.lower()}@example.org"
        await register_and_verify(client, outbox, email=email, name=name)
        browsers[caller] = await sign_in(client, email=email)
        return browsers[caller]

    for caller, name in [
        ("owner", "Ada"),
        ("mentor", "Mia"),
        ("learner", "Lee"),
        ("outsider", "Eve"),
        ("admin", "Root"),
        ("key", "Kai"),
    ]:
        await person(caller, name)
    owner, outsider, kai = browsers["owner"], browsers["outsider"], browsers["key"]
    for browser, slug in [(owner, "cohort-7"), (outsider, "other-cohort")]:
        created = await browser.client.post(
            "/v1/orgs", json={"slug": slug, "name": slug}, headers=browser.write_headers
        )
        assert created.status_code == 201, created.text
    ids = {c: (await b.client.get("/v1/me")).json()["id"] for c, b in browsers.items()}
    async with connection.begin_nested():
        org_id = await connection.scalar(
            Organisation.__table__.select()
            .with_only_columns(Organisation.id)
            .where(Organisation.slug == "cohort-7")
        )
        for caller, role in [("mentor", "mentor"), ("learner", "learner"), ("key", "learner")]:
            await connection.execute(
                Membership.__table__.insert().values(
                    org_id=org_id, user_id=ids[caller], role=role, joined_at=clock.now()
                )
            )
        await connection.execute(
            update(User).where(User.id.in_([ids["admin"], ids["key"]])).values(is_admin=True)
        )

    async def key_with(*scopes: str) -> str:
        response = await kai.client.post(
            "/v1/me/api-keys",
            json={"name": "matrix", "scopes": list(scopes)},
            headers=kai.write_headers,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["key"])

    everything_but_admin = [s for s in Scope if s is not Scope.ADMIN]
    keys_without: dict[Scope | None, str] = {
        None: await key_with(Scope.PROGRESS_READ),
        **{
            scope: await key_with(*[s for s in everything_but_admin if s is not scope])
            for scope in Scope
        },
    }
    anonymous = httpx.AsyncClient(transport=transport, base_url="http://test")
    keyholder = httpx.AsyncClient(transport=transport, base_url="http://test")
    clients |= {"anonymous": anonymous, "key": keyholder, "key-without-scope": keyholder}
    admin_key = await key_with(Scope.ADMIN)
    headers = {caller: b.write_headers for caller, b in browsers.items() if caller != "key"}
    headers |= {"anonymous": {}, "key": {"authorization": f"Bearer {admin_key}"}}
    path_values = {
        "slug": "backend",
        "topic_slug": "http",
        "org": "cohort-7",
        # The owner as the target: a lower role acting on them is refused, the owner acting
        # on themselves passes the access check (and may then meet a 409 about the input).
        "user_id": str(ids["owner"]),
        # Ids are positive (a 0 is refused as input, before any access check); none this big
        # exists, so an allowed caller meets a 404 after passing the check.
        "session_id": NO_SUCH_ID,
        "provider": "nowhere",
        "number": "1",
        "roadmap": "matrix",
        "topic": "http",
        "resource_id": "1",
        "card_id": "1",
        "handle": "ada",
        "key_id": NO_SUCH_ID,
        "letter_id": NO_SUCH_ID,
        "endpoint_id": NO_SUCH_ID,
        "delivery_id": NO_SUCH_ID,
        "file_id": "1",
        "key": "attachments/1/0",
        "upload_id": "0" * 32,
        "assignment_id": NO_SUCH_ID,
        "room": "lobby",
        "seq": "1",
        "flag": "no-such-flag",
    }
    yield World(clients, headers, path_values, keys_without)
    for client in {id(c): c for c in clients.values()}.values():
        await client.aclose()


NO_SUCH_ID = "999999"


async def call_as(world: World, caller: str, operation: str) -> httpx.Response:
    method, template = operation.split(" ", 1)
    path = re.sub(r"\{(\w+)\}", lambda m: world.path_values[m.group(1)], template)
    headers = world.headers.get(caller, {})
    if caller == "key-without-scope":
        key = world.keys_without[ACCESS[operation].scope]
        headers = {"authorization": f"Bearer {key}"}
    body = BODIES.get(operation, {}) if method in {"POST", "PUT", "PATCH"} else None
    return await world.clients[caller].request(method, path, json=body, headers=headers)


async def test_every_caller_gets_the_outcome_the_rule_promises(
    world: World, connection: AsyncConnection
) -> None:
    mismatches = []
    for operation in sorted(ACCESS):
        for caller in CALLERS:
            # Each call's changes (a deleted organisation, a revoked session) are undone
            # before the next one, so every caller meets the same world.
            # (Cookies too: a sign-out clears the caller's cookie.)
            client = world.clients[caller]
            cookies = httpx.Cookies(client.cookies)
            savepoint = await connection.begin_nested()
            response = await call_as(world, caller, operation)
            await savepoint.rollback()
            client.cookies = cookies
            want, got = expected(ACCESS[operation], caller), outcome(response)
            if got != want:
                mismatches.append(
                    f"{operation} as {caller}: {got} ({response.status_code}), want {want}"
                )

    assert mismatches == []


# --- GraphQL -----------------------------------------------------------------------------------
# Each GraphQL field has a REST twin whose rule it must apply: the same callers, the same
# refusals, read from the problem in the first error's `extensions`.
GRAPHQL_TWINS: dict[str, str] = {
    "GET /v1/roadmaps": "{ roadmaps { total } }",
    "GET /v1/roadmaps/{slug}": '{ roadmap(slug: "backend") { slug } }',
    "GET /v1/roadmaps/{slug}/tree": '{ roadmap(slug: "backend") { tree { slug } } }',
    "GET /v1/roadmaps/{slug}/topics/{topic_slug}": '{ topic(roadmap: "backend", slug: "http")'
    " { slug } }",
    "GET /v1/orgs": "{ me { organisations { slug } } }",
    "GET /v1/orgs/{org}": '{ me { organisation(slug: "cohort-7") { role } } }',
    "GET /v1/orgs/{org}/members": '{ me { organisation(slug: "cohort-7") { members { role } } } }',
    "GET /v1/me/progress/{roadmap}": '{ me { progress(roadmap: "matrix") { roadmap } } }',
    "GET /v1/me/progress/{roadmap}/{topic}/note": '{ me { note(roadmap: "matrix",'
    ' topic: "http") { markdown } } }',
    "GET /v1/me/reviews/due": "{ me { reviewsDue { id } } }",
    "PUT /v1/me/progress/{roadmap}/{topic}": 'mutation { setStatus(roadmap: "matrix",'
    ' topic: "http", status: "done") { status } }',
    "POST /v1/me/progress/{roadmap}/undo": 'mutation { undo(roadmap: "matrix") { topic } }',
    "PUT /v1/me/progress/{roadmap}/{topic}/note": 'mutation { saveNote(roadmap: "matrix",'
    ' topic: "http", markdown: "hi") { markdown } }',
    "POST /v1/me/reviews/{card_id}": 'mutation { reviewCard(cardId: 1, rating: "good") { id } }',
}


def graphql_outcome(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    errors = response.json().get("errors") or []
    if not errors:
        return "ok"
    problem = errors[0]["extensions"]["problem"]
    refusals = {
        (401, "/problems/not-authenticated"): "401",
        (403, "/problems/insufficient-scope"): "scope",
        (403, "/problems/role-required"): "role",
        (403, "/problems/not-platform-admin"): "not-admin",
        (404, "/problems/org-not-found"): "hidden",
    }
    return refusals.get((problem["status"], problem["type"]), "ok")


def test_every_graphql_twin_names_a_route_with_a_rule() -> None:
    assert set(GRAPHQL_TWINS) <= set(ACCESS)


async def test_every_caller_gets_the_same_outcome_through_graphql(
    world: World, connection: AsyncConnection
) -> None:
    mismatches = []
    for operation, document in sorted(GRAPHQL_TWINS.items()):
        for caller in CALLERS:
            headers = world.headers.get(caller, {})
            if caller == "key-without-scope":
                key = world.keys_without[ACCESS[operation].scope]
                headers = {"authorization": f"Bearer {key}"}
            savepoint = await connection.begin_nested()
            response = await world.clients[caller].post(
                "/graphql", json={"query": document}, headers=headers
            )
            await savepoint.rollback()
            want, got = expected(ACCESS[operation], caller), graphql_outcome(response)
            if got != want:
                mismatches.append(f"{operation} through GraphQL as {caller}: {got}, want {want}")

    assert mismatches == []


# --- The web app's pages ---------------------------------------------------------------------
# Pages are not in the OpenAPI document, so they have a matrix of their own. Their callers are a
# visitor (no cookie) and a learner (a browser session); API keys and tokens never reach a page.
#
#   page         anyone may read it (signed-in learners see more)
#   form         anyone may post it (sign-in, sign-up): only the same-origin checks apply
#   learner page a visitor is sent to sign in (303)
#   learner form a learner's change: a visitor is sent to sign in (303), a post without the
#                session's CSRF token is refused (403 csrf-rejected)

WEB_ACCESS: dict[str, str] = {
    "GET /": "page",
    "GET /assets/{name}": "page",
    "GET /roadmaps/{slug}": "page",
    "GET /roadmaps/{slug}/topics/{topic}": "page",
    "GET /sign-in": "page",
    "GET /sign-up": "page",
    "GET /sign-up/check-your-inbox": "page",
    "GET /verify-email": "page",
    "POST /sign-in": "form",
    "POST /sign-in/code": "form",
    "POST /sign-up": "form",
    "POST /verify-email": "form",
    "POST /sign-out": "learner form",
    "POST /roadmaps/{slug}/undo": "learner form",
    "POST /roadmaps/{slug}/topics/{topic}/status": "learner form",
    "POST /roadmaps/{slug}/topics/{topic}/note": "learner form",
    "POST /roadmaps/{slug}/topics/{topic}/resources": "learner form",
    "GET /reviews": "learner page",
    "POST /reviews/{card_id}": "learner form",
    "GET /account": "learner page",
    "GET /reset-password": "page",
    "GET /orgs": "learner page",
    "POST /orgs": "learner form",
    "GET /orgs/{org}": "learner page",
    "POST /orgs/{org}/invitations": "learner form",
    "GET /invitations": "page",
    "POST /invitations": "learner form",
    "POST /reset-password": "form",
    "POST /reset-password/request": "form",
    "POST /account/two-factor": "learner form",
    "POST /account/two-factor/confirm": "learner form",
    "GET /import": "learner page",
    "POST /import": "learner form",
    "POST /roadmaps/{slug}/fork": "learner form",
    "GET /roadmaps/{slug}/edit": "editor page",
    "POST /roadmaps/{slug}/edit": "editor form",
    "POST /roadmaps/{slug}/edit/topics": "editor form",
    "POST /roadmaps/{slug}/edit/topics/{topic}": "editor form",
    "POST /roadmaps/{slug}/edit/topics/{topic}/delete": "editor form",
    "POST /account/sessions/{session_id}/end": "learner form",
    "POST /account/api-keys": "learner form",
    "POST /account/api-keys/{key_id}/revoke": "learner form",
    "POST /account/profile": "learner form",
    "GET /search": "page",
    "POST /orgs/{org}/members/{user_id}/role": "learner form",
    "POST /orgs/{org}/members/{user_id}/remove": "learner form",
}
WEB_PATH_VALUES = {
    "slug": "backend",
    "topic": "http",
    "name": "missing.css",
    "card_id": "1",
    "org": "cohort-7",
    "session_id": "999999",
    "key_id": "999999",
    "user_id": "999999",
}
HTML = {"accept": "text/html"}


def web_operations() -> set[str]:
    from fastapi.routing import iter_route_contexts

    return {
        f"{method} {route.path}"
        for route in iter_route_contexts(create_app(Settings()).routes)
        if getattr(route.original_route, "endpoint", None) is not None
        and route.original_route.endpoint.__module__.startswith("skilltree.web.")
        for method in sorted(route.methods or ())
    }


def test_every_page_has_an_access_rule() -> None:
    assert web_operations() == set(WEB_ACCESS)


@pytest.mark.parametrize("operation", sorted(WEB_ACCESS))
async def test_every_page_treats_visitors_and_learners_as_its_rule_says(
    operation: str,
    client: httpx.AsyncClient,
    people: Any,
) -> None:
    rule = WEB_ACCESS[operation]
    method, template = operation.split(" ", 1)
    path = re.sub(r"\{(\w+)\}", lambda m: WEB_PATH_VALUES[m.group(1)], template)
    if rule == "page":
        response = await client.request(method, path, headers=HTML)
        assert response.status_code in (200, 303, 404), response.text
        return
    if rule == "learner page":
        visitor = await client.get(path, headers=HTML)
        assert visitor.status_code == 303
        assert visitor.headers["location"] == f"/sign-in?next={path}"
        learner = await people("Lena")
        # A learner who is not a member gets the organisation's 404, never a sign-in.
        assert (await learner.client.get(path, headers=HTML)).status_code in (200, 404)
        return
    if rule == "editor page":
        # Someone else's roadmap (or none): 403 when it can be seen, 404 when it cannot.
        visitor = await client.get(path, headers=HTML)
        assert visitor.status_code == 303
        assert visitor.headers["location"] == f"/sign-in?next={path}"
        learner = await people("Lena")
        assert (await learner.client.get(path, headers=HTML)).status_code in (403, 404)
        return
    if rule == "form":
        cross_site = await client.post(path, headers={**HTML, "origin": "https://evil.example"})
        assert cross_site.status_code == 403
        return
    visitor = await client.post(path, headers=HTML)
    assert visitor.status_code == 303
    assert visitor.headers["location"].startswith("/sign-in")
    learner = await people("Lena")
    forged = await learner.client.post(path, data={"csrf_token": "forged"}, headers=HTML)
    assert forged.status_code == 403
    assert "CSRF" in forged.text
    allowed = await learner.client.post(
        path, data={"csrf_token": learner.csrf_token, "status": "done"}, headers=HTML
    )
    if rule == "editor form":
        assert allowed.status_code in (403, 404), allowed.text
        assert "CSRF" not in allowed.text
        return
    assert allowed.status_code not in (401, 403), allowed.text
