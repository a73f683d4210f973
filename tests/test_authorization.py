"""The authorisation matrix: every route × every kind of caller → the outcome they must get.

ACCESS names the rule of every route; a route without an entry fails
`test_every_route_has_an_access_rule`, so no endpoint ships without a decision about who may
call it. SUCCESS names what an admitted caller gets (its status) and what the call needs to
get it (a body, something of the caller's own to act on). `expected()` turns a rule into the
outcome for each caller, and `test_every_caller_gets_the_outcome_the_rule_promises` calls every
route as every caller against the real app, on SQLite, PostgreSQL and MariaDB.

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

    ok         admitted: the route's success status in SUCCESS, reached with valid data
    401        not signed in
    scope      403 insufficient-scope: an API key without the scope, or on an account route
    role       403 role-required: a member whose role is too low
    not-admin  403 not-platform-admin
    hidden     404 org-not-found: not a member, and not told the organisation exists
    link       403 invalid-download-link: a signed link made for someone else

Any other answer (a 403 of another type, a 422 from a body the table got wrong) is a
mismatch.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import grpc
import httpx
import pyotp
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from skilltree.accounts.models import User
from skilltree.app import create_app
from skilltree.identity import Scope
from skilltree.notifications.unsubscribe import token_for
from skilltree.orgs.models import Membership, Organisation
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import FilesSettings, RealtimeSettings, Settings
from skilltree.platform.db import Database
from skilltree.platform.queue.models import DeadLetter
from skilltree.rooms.models import Room, RoomEntry
from skilltree.rpc.server import GrpcServer
from skilltree.rpc.v1 import progress_pb2, roadmaps_pb2
from skilltree.rpc.v1.progress_pb2_grpc import ProgressStub
from skilltree.rpc.v1.roadmaps_pb2_grpc import RoadmapsStub
from tests.files.conftest import png, run_image_variants
from tests.support.accounts import PASSWORD, Browser, last_token, register_and_verify, sign_in

ROLES = ("learner", "mentor", "owner")


@dataclass(frozen=True)
class Rule:
    """Who may call a route.

    kind   public | signed-in | account (a real sign-in, never an API key) | org (members of
           the organisation in the path) | admin (platform administrators) | link (whoever
           the signed link in the path was made for)
    scope  the API-key scope the route needs, if any
    role   for org routes: the least role admitted
    keys   for org routes: whether API keys are admitted at all (changes need a real sign-in)
    """

    kind: str
    scope: Scope | None = None
    role: str = "learner"
    keys: bool = True


PUBLIC = Rule("public")
SIGNED_LINK = Rule("link")
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
    # The signed link is the authorisation, and it is signed for one person: theirs only.
    "GET /v1/files/{key}": SIGNED_LINK,
    # Resumable uploads (tus): discovery is public; an upload is its owner's alone.
    "OPTIONS /v1/me/uploads": PUBLIC,
    "POST /v1/me/uploads": PROGRESS_WRITER,
    "HEAD /v1/me/uploads/{upload_id}": PROGRESS_READER,
    "PATCH /v1/me/uploads/{upload_id}": PROGRESS_WRITER,
    "DELETE /v1/me/uploads/{upload_id}": PROGRESS_WRITER,
    # Avatars: your own to set and remove; anyone sees a public profile's.
    "PUT /v1/me/avatar": PROGRESS_WRITER,
    "DELETE /v1/me/avatar": PROGRESS_WRITER,
    "GET /v1/users/{handle}/avatar": PUBLIC,
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
    "DELETE /v1/me": ACCOUNT,
}

CALLERS = ("anonymous", *ROLES, "outsider", "admin", "key", "key-without-scope")


def expected(rule: Rule, caller: str) -> str:
    """The outcome `rule` promises `caller`."""
    if rule.kind == "public":
        return "ok"
    if rule.kind == "link":
        return "link" if caller == "anonymous" else "ok"
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
        # a 401 is the sign-in's and a 403 the scope's; anything else is its status.
        return {401: "401", 403: "scope"}.get(response.status_code, str(response.status_code))
    problem_type = ""
    if response.headers.get("content-type") == "application/problem+json":
        problem_type = response.json()["type"]
    refusals = {
        (401, "/problems/not-authenticated"): "401",
        (403, "/problems/insufficient-scope"): "scope",
        (403, "/problems/role-required"): "role",
        (403, "/problems/not-platform-admin"): "not-admin",
        (404, "/problems/org-not-found"): "hidden",
        (403, "/problems/invalid-download-link"): "link",
    }
    # Anything else is the status itself: an admitted caller's success, or a refusal (a 403
    # of another type, say) that no rule promises, which then fails the matrix.
    return refusals.get((response.status_code, problem_type), str(response.status_code))


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
class Own:
    """What each person owns in the world: the values their admitted calls act on."""

    slug: str
    roadmap_etag: str
    topic_etag: str
    session_id: int
    key_id: int
    resource_id: int
    file_id: int
    card_id: int
    note_etag: str
    totp_secret: str
    download_url: str


@dataclass
class World:
    """One organisation (cohort-7) with a member of each role, an outsider, an administrator
    and API keys; `headers[caller]` are what each caller sends besides its cookies."""

    clients: dict[str, httpx.AsyncClient]
    headers: dict[str, dict[str, str]]
    path_values: dict[str, str]
    keys_without: dict[Scope | None, str]
    browsers: dict[str, Browser] = field(default_factory=dict)
    own: dict[str, Own] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    outbox: Path = Path()
    clock: FrozenClock = field(default_factory=FrozenClock)
    secret_key: SecretStr = field(default_factory=lambda: SecretStr(""))
    tia_secret: str = ""
    flag_etag: str = ""
    resources: Any = None  # the app's, for running a background task where a route needs one


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        transaction = await conn.begin()
        yield conn
        await transaction.rollback()


@pytest.fixture
async def matrix_app(
    settings: Settings, connection: AsyncConnection, clock: FrozenClock, tmp_path: Path
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
        update={
            "realtime": RealtimeSettings(stream_max_seconds=0.01, heartbeat_seconds=0.01),
            "files": FilesSettings(storage_dir=tmp_path / "files"),
        }
    )
    application = create_app(settings, database=database, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


ADA = "ada@example.org"
TIA = "tia@example.org"
NEW_PASSWORD = "a different horse, battery and staple"
NO_SUCH_ID = "999999"
# A public roadmap of the organisation's owner: what progress, reviews, badges, forks and
# assignments act on.
MATRIX: dict[str, Any] = {
    "slug": "matrix",
    "title": "Matrix",
    "topics": [{"slug": "http", "title": "HTTP"}],
}
MATRIX_COPY = MATRIX | {"slug": "imported"}


async def ok(response: Awaitable[httpx.Response], status: int = 200) -> Any:
    answered = await response
    assert answered.status_code == status, answered.text
    return answered.json() if answered.content else None


async def etag(client: httpx.AsyncClient, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return response.headers["etag"]


async def own_things(person: Browser, name: str) -> Own:
    """Gives `person` one of each thing an admitted call acts on."""
    client, headers = person.client, person.write_headers
    slug = f"{name}-road"
    await ok(client.post("/v1/roadmaps", json={"slug": slug, "title": name}, headers=headers), 201)
    await ok(
        client.post(
            f"/v1/roadmaps/{slug}/topics", json={"title": "HTTP", "slug": "http"}, headers=headers
        ),
        201,
    )
    progress = "/v1/me/progress/matrix/http"
    await ok(client.put(progress, json={"status": "done"}, headers=headers))
    note = await client.put(f"{progress}/note", json={"markdown": "Notes"}, headers=headers)
    assert note.status_code in (200, 201), note.text
    resource = await ok(
        client.post(
            f"{progress}/resources",
            json={"title": "MDN", "url": "https://developer.mozilla.org/"},
            headers=headers,
        ),
        201,
    )
    files = []
    for _ in range(2):
        upload = {"file": ("notes.txt", b"what I learned\n", "text/plain")}
        files.append(
            await ok(
                client.post(f"{progress}/note/attachments", files=upload, headers=headers), 201
            )
        )
    key = await ok(
        client.post(
            "/v1/me/api-keys", json={"name": "own", "scopes": ["progress:read"]}, headers=headers
        ),
        201,
    )
    enrolment = await ok(client.post("/v1/me/mfa/totp", headers=headers))
    return Own(
        slug=slug,
        roadmap_etag=await etag(client, f"/v1/roadmaps/{slug}"),
        topic_etag=await etag(client, f"/v1/roadmaps/{slug}/topics/http"),
        session_id=(await ok(client.get("/v1/me/sessions")))["items"][0]["id"],
        key_id=key["id"],
        resource_id=resource["id"],
        file_id=files[0]["id"],
        card_id=(await ok(client.get("/v1/me/reviews/due")))["items"][0]["id"],
        note_etag=note.headers["etag"],
        totp_secret=enrolment["secret"],
        download_url=files[1]["download_url"],
    )


async def two_factor_person(
    transport: httpx.ASGITransport, outbox: Path, clock: FrozenClock
) -> str:
    """Tia, who signs in with a password and a code: her TOTP secret."""
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await register_and_verify(client, outbox, email=TIA, name="Tia")
        tia = await sign_in(client, email=TIA)
        secret = (await ok(client.post("/v1/me/mfa/totp", headers=tia.write_headers)))["secret"]
        code = pyotp.TOTP(secret).at(clock.now())
        await ok(
            client.post("/v1/me/mfa/totp/confirm", json={"code": code}, headers=tia.write_headers)
        )
    clock.advance(seconds=60)  # the code just used is spent; the matrix's codes are new ones
    return str(secret)


@pytest.fixture
async def world(
    matrix_app: FastAPI,
    connection: AsyncConnection,
    outbox: Path,
    clock: FrozenClock,
    settings: Settings,
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
    # Through a unit of work of the app, as `skilltree user` commands do: the instance forgets
    # the callers it keeps (accounts/principal_cache.py) once the change commits.
    async with matrix_app.state.resources.database.unit_of_work() as session:
        await session.execute(
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

    world = World(clients, headers, {}, keys_without, browsers=browsers, ids=ids)
    world.outbox, world.clock, world.secret_key = outbox, clock, settings.app.secret_key
    world.resources = matrix_app.state.resources
    await arrange_the_world(world, connection, transport)
    yield world
    for client in {id(c): c for c in clients.values()}.values():
        await client.aclose()


async def arrange_the_world(
    world: World, connection: AsyncConnection, transport: httpx.ASGITransport
) -> None:
    """What the admitted calls act on: a public roadmap with a revision, a public profile, a
    webhook with a delivery, an assignment, a room message, a dead letter, a feature flag,
    and each person's own things."""
    ada, root = world.browsers["owner"], world.browsers["admin"]
    client, headers = ada.client, ada.write_headers
    await ok(
        client.post(
            "/v1/roadmaps/import", json=MATRIX, params={"visibility": "public"}, headers=headers
        ),
        201,
    )
    revision = await ok(
        client.post("/v1/roadmaps/matrix/revisions", json={"note": "First"}, headers=headers), 201
    )
    await ok(
        client.patch("/v1/me/profile", json={"handle": "ada", "is_public": True}, headers=headers)
    )
    org = "/v1/orgs/cohort-7"
    endpoint = await ok(
        client.post(
            f"{org}/webhooks",
            json={"url": "https://8.8.8.8/hook", "event_types": ["*"]},
            headers=headers,
        ),
        201,
    )
    hooks = f"{org}/webhooks/{endpoint['id']}"
    await ok(client.post(f"{hooks}/test", headers=headers), 202)
    delivery = (await ok(client.get(f"{hooks}/deliveries")))["items"][0]
    assignment = await ok(
        client.post(f"{org}/assignments", json={"roadmap": "matrix"}, headers=headers), 201
    )
    await ok(client.get(f"{org}/rooms"))
    await ok(
        root.client.put(
            "/v1/admin/flags/matrix-flag", json={"enabled": True}, headers=root.write_headers
        ),
        201,
    )
    world.flag_etag = await etag(root.client, "/v1/admin/flags/matrix-flag")
    async with connection.begin_nested():
        seq = await a_room_message(world, connection)
        letter = await connection.execute(
            insert(DeadLetter).values(
                task_id="matrix",
                task_name="mail.send",
                args=[],
                labels={},
                attempts=3,
                error="ConnectionError",
                failed_at=world.clock.now(),
            )
        )
    assert letter.inserted_primary_key is not None
    letter_id = letter.inserted_primary_key[0]
    world.tia_secret = await two_factor_person(transport, world.outbox, world.clock)
    for caller, browser in world.browsers.items():
        world.own[caller] = await own_things(browser, caller)
    world.path_values = {
        "slug": "matrix",
        "topic_slug": "http",
        "org": "cohort-7",
        # The key holder, a learner of the organisation, as the member acted on: a lower role
        # is refused, the owner may change or remove them. (Never the caller: a member may
        # leave, so acting on yourself is not a test of the role.)
        "user_id": str(world.ids["key"]),
        "provider": "nowhere",
        "number": str(revision["number"]),
        "roadmap": "matrix",
        "topic": "http",
        "handle": "ada",
        "letter_id": str(letter_id),
        "endpoint_id": str(endpoint["id"]),
        "delivery_id": str(delivery["id"]),
        "assignment_id": str(assignment["items"][0]["id"]),
        "room": "lobby",
        "seq": str(seq),
        "flag": "matrix-flag",
        "upload_id": "0" * 32,
        # A caller's own things are found only by their own calls (see `own`); a refused
        # caller is refused before any lookup, so these never matter.
        **dict.fromkeys(("session_id", "key_id", "resource_id", "card_id", "file_id"), NO_SUCH_ID),
    }


async def a_room_message(world: World, connection: AsyncConnection) -> int:
    """A message in the organisation's lobby (messages are said over the room's WebSocket)."""
    room = (
        await connection.execute(
            select(Room.id, Room.last_seq)
            .join(Organisation, Organisation.id == Room.org_id)
            .where(Organisation.slug == "cohort-7", Room.key == "lobby")
        )
    ).one()
    seq = int(room.last_seq) + 1
    await connection.execute(update(Room).where(Room.id == room.id).values(last_seq=seq))
    await connection.execute(
        insert(RoomEntry).values(
            room_id=room.id,
            seq=seq,
            kind="message",
            author_id=world.ids["learner"],
            body="hello",
            created_at=world.clock.now(),
        )
    )
    return seq


async def call_as(world: World, caller: str, operation: str) -> httpx.Response:
    method, template = operation.split(" ", 1)
    call = Call()
    success = SUCCESS[operation]
    admitted = expected(ACCESS[operation], caller) == "ok"
    refused_too = success.refused_too or isinstance(success.arrange, Sends)
    if success.arrange is not None and (admitted or refused_too):
        call = await success.arrange(Cell(world, caller))
    values = world.path_values | call.values
    path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)
    headers = world.headers.get(caller, {})
    if caller == "key-without-scope":
        key = world.keys_without[ACCESS[operation].scope]
        headers = {"authorization": f"Bearer {key}"}
    body = call.json
    if body is None and call.files is None and call.content is None:
        body = {} if method in {"POST", "PUT", "PATCH"} else None
    return await world.clients[caller].request(
        method,
        path,
        json=body,
        content=call.content,
        files=call.files,
        params=call.params,
        headers=headers | call.headers,
    )


def test_every_route_names_the_success_of_an_admitted_caller() -> None:
    assert set(SUCCESS) == set(ACCESS)


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
            want = expected(ACCESS[operation], caller)
            if want == "ok":
                want = str(SUCCESS[operation].status)
            got = outcome(response)
            if got != want:
                mismatches.append(
                    f"{operation} as {caller}: {got} ({response.text[:200]}), want {want}"
                )

    assert mismatches == []


# --- What an admitted caller gets --------------------------------------------------------------
# Every admitted caller must reach the route's success, with data that exists: the status below,
# after the arrangement (if any) made what the call acts on. `own(...)` values belong to the
# caller's person (their roadmap, session, key, resource...), made once in `world`; the other
# arrangements run inside the call's savepoint and are rolled back with it.


@dataclass
class Call:
    """What one caller sends: values for the path's placeholders, a body, query, headers."""

    values: dict[str, str] = field(default_factory=dict)
    json: Any = None
    params: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes, str]] | None = None
    content: bytes | None = None  # a raw body (a tus PATCH), sent instead of JSON


@dataclass(frozen=True)
class Cell:
    """The caller about to be admitted, and the world around them."""

    world: World
    caller: str

    @property
    def me(self) -> Browser:
        """The caller's person in a browser (a key's holder for the key callers)."""
        return self.world.browsers["key" if self.caller.startswith("key") else self.caller]

    @property
    def own(self) -> Own:
        return self.world.own["key" if self.caller.startswith("key") else self.caller]


Arrange = Callable[[Cell], Awaitable[Call]]


@dataclass(frozen=True)
class Success:
    status: int
    arrange: Arrange | None = None
    # Whether refused callers send what the arrangement makes too (it must not need them).
    refused_too: bool = False


@dataclass(frozen=True)
class Sends:
    """A body every caller sends, refused ones too: where the role is checked after the body
    is read, an invalid body would be refused first and the role never tested."""

    body: dict[str, Any]

    async def __call__(self, cell: Cell) -> Call:
        return Call(json=self.body)


def sends(**body: Any) -> Sends:
    return Sends(body)


def own(*names: str, if_match: str | None = None, **body: Any) -> Arrange:
    """Path values (and an If-Match) from what the caller's person owns."""

    async def arrange(cell: Cell) -> Call:
        values = {name: str(getattr(cell.own, name)) for name in names}
        headers = {"if-match": str(getattr(cell.own, if_match))} if if_match else {}
        return Call(values=values, json=body or None, headers=headers)

    return arrange


async def new_person(cell: Cell, name: str) -> str:
    """Signs someone new up (anonymously); the verification token from their e-mail."""
    email = f"{name.lower()}@example.org"
    anonymous = cell.world.clients["anonymous"]
    response = await anonymous.post(
        "/v1/auth/register", json={"email": email, "password": PASSWORD, "display_name": name}
    )
    assert response.status_code == 202, response.text
    return last_token(cell.world.outbox)


async def verification_token(cell: Cell) -> Call:
    return Call(json={"token": await new_person(cell, "Vera")})


async def reset_token(cell: Cell) -> Call:
    anonymous = cell.world.clients["anonymous"]
    requested = await anonymous.post("/v1/auth/password-reset", json={"email": ADA})
    assert requested.status_code == 202, requested.text
    return Call(json={"token": last_token(cell.world.outbox), "password": NEW_PASSWORD})


async def a_throwaway_account(cell: Cell) -> Call:
    """Someone new, signed in with an access token, deletes their own account: the caller's
    own would take their files' bytes (which a rollback does not bring back), and the owner
    and the administrator are refused as the last of their kind."""
    token = await new_person(cell, "Dora")
    anonymous = cell.world.clients["anonymous"]
    verified = await anonymous.post("/v1/auth/verify-email", json={"token": token})
    assert verified.status_code == 204, verified.text
    issued = await anonymous.post(
        "/v1/auth/token", json={"email": "dora@example.org", "password": PASSWORD}
    )
    assert issued.status_code == 200, issued.text
    bearer = {"authorization": f"Bearer {issued.json()['access_token']}"}
    return Call(json={"password": PASSWORD}, headers=bearer)


async def refresh_token(cell: Cell) -> Call:
    anonymous = cell.world.clients["anonymous"]
    issued = await anonymous.post("/v1/auth/token", json={"email": ADA, "password": PASSWORD})
    assert issued.status_code == 200, issued.text
    return Call(json={"refresh_token": issued.json()["refresh_token"]})


def second_factor(route: str) -> Arrange:
    """A password sign-in of someone with two factors, to be finished with a code."""

    async def arrange(cell: Cell) -> Call:
        anonymous = cell.world.clients["anonymous"]
        first = await anonymous.post(route, json={"email": TIA, "password": PASSWORD})
        assert first.status_code == 200, first.text
        code = pyotp.TOTP(cell.world.tia_secret).at(cell.world.clock.now())
        return Call(json={"mfa_token": first.json()["mfa_token"], "code": code})

    return arrange


async def unsubscribe_token(cell: Cell) -> Call:
    token = token_for(cell.world.secret_key, cell.world.ids["owner"], "weekly_digest")
    return Call(params={"token": token})


async def totp_code(cell: Cell) -> Call:
    return Call(json={"code": pyotp.TOTP(cell.own.totp_secret).at(cell.world.clock.now())})


async def two_factors_on(cell: Cell) -> Call:
    me = cell.me
    started = await me.client.post("/v1/me/mfa/totp", headers=me.write_headers)
    code = pyotp.TOTP(started.json()["secret"]).at(cell.world.clock.now())
    confirmed = await me.client.post(
        "/v1/me/mfa/totp/confirm", json={"code": code}, headers=me.write_headers
    )
    assert confirmed.status_code == 200, confirmed.text
    # Turning a second factor on replaces the browser session, and its CSRF token with it.
    return Call(
        json={"password": PASSWORD}, headers={"x-csrf-token": confirmed.json()["csrf_token"]}
    )


async def an_invitation(cell: Cell) -> Call:
    """An invitation for the caller to an organisation they are not in yet."""
    inviter = cell.world.browsers["outsider" if cell.caller == "owner" else "owner"]
    created = await inviter.client.post(
        "/v1/orgs", json={"slug": "guild", "name": "Guild"}, headers=inviter.write_headers
    )
    assert created.status_code == 201, created.text
    email = (await cell.me.client.get("/v1/me")).json()["email"]
    invited = await inviter.client.post(
        "/v1/orgs/guild/invitations",
        json={"email": email, "role": "learner"},
        headers=inviter.write_headers,
    )
    assert invited.status_code == 201, invited.text
    return Call(json={"token": last_token(cell.world.outbox)})


async def own_progress_file(cell: Cell) -> Call:
    exported = await cell.me.client.get("/v1/me/progress/matrix/export")
    assert exported.status_code == 200, exported.text
    return Call(json=exported.json())


async def signed_link(cell: Cell) -> Call:
    """The caller's own download link (a link is signed for the one person it was made for);
    the owner's for a caller with none."""
    has_own = cell.caller != "anonymous"
    parts = urlsplit((cell.own if has_own else cell.world.own["owner"]).download_url)
    key = parts.path.removeprefix("/v1/files/")
    return Call(values={"key": key}, params=dict(parse_qsl(parts.query)))


async def an_upload(cell: Cell) -> Call:
    return Call(files={"file": ("notes.txt", b"what I learned\n", "text/plain")})


AVATAR_PNG = png(32, 32)


async def an_avatar_upload(cell: Cell) -> Call:
    return Call(files={"file": ("me.png", AVATAR_PNG, "image/png")})


async def an_avatar(cell: Cell) -> Call:
    """An avatar of the caller's person, to remove."""
    me = cell.me
    await ok(
        me.client.put(
            "/v1/me/avatar", files=(await an_avatar_upload(cell)).files, headers=me.write_headers
        )
    )
    return Call()


async def adas_avatar_in_sizes(cell: Cell) -> Call:
    """Ada's (her profile is public) avatar, its sizes made as the worker would."""
    ada = cell.world.browsers["owner"]
    await ok(
        ada.client.put(
            "/v1/me/avatar", files=(await an_avatar_upload(cell)).files, headers=ada.write_headers
        )
    )
    assert await run_image_variants(cell.world.resources) == 1
    return Call(params={"size": "64"})


TUS = {"tus-resumable": "1.0.0"}
TUS_BYTES = b"what I learned\n"


def tus_creation_headers() -> dict[str, str]:
    """A resumable upload of `TUS_BYTES` into the note of the matrix roadmap's topic."""
    named = {"roadmap": "matrix", "topic": "http", "filename": "notes.txt"}
    metadata = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in named.items())
    return TUS | {"upload-length": str(len(TUS_BYTES)), "upload-metadata": metadata}


async def a_tus_creation(cell: Cell) -> Call:
    return Call(headers=tus_creation_headers())


def a_tus_upload(*, append: bool = False) -> Arrange:
    """An upload the caller's person began; with `append`, its bytes to send."""

    async def arrange(cell: Cell) -> Call:
        me = cell.me
        created = await me.client.post(
            "/v1/me/uploads", headers=me.write_headers | tus_creation_headers()
        )
        assert created.status_code == 201, created.text
        values = {"upload_id": created.headers["location"].rstrip("/").rsplit("/", 1)[-1]}
        if not append:
            return Call(values=values, headers=TUS)
        headers = TUS | {"upload-offset": "0", "content-type": "application/offset+octet-stream"}
        return Call(values=values, headers=headers, content=TUS_BYTES)

    return arrange


async def searching(cell: Cell) -> Call:
    return Call(params={"q": "http"})


async def to_the_key_holder(cell: Cell) -> Call:
    return Call(json={"user_id": cell.world.ids["key"]})


async def a_new_flag(cell: Cell) -> Call:
    return Call(values={"flag": "fresh-flag"}, json={"enabled": True})


def flag_change(**body: Any) -> Arrange:
    async def arrange(cell: Cell) -> Call:
        return Call(json=body or None, headers={"if-match": cell.world.flag_etag})

    return arrange


async def graphql_query(cell: Cell) -> Call:
    return Call(params={"query": "{ __typename }"})


SUCCESS: dict[str, Success] = {
    "GET /livez": Success(200),
    "GET /startupz": Success(200),
    "GET /metrics": Success(200),
    "GET /readyz": Success(200),
    "GET /v1/roadmaps": Success(200),
    "GET /v1/roadmaps/{slug}": Success(200),
    "GET /v1/roadmaps/{slug}/tree": Success(200),
    "GET /v1/roadmaps/{slug}/topics/{topic_slug}": Success(200),
    "GET /v1/roadmaps/{slug}/export": Success(200),
    "POST /v1/roadmaps/import": Success(201, sends(**MATRIX_COPY)),
    "POST /v1/auth/register": Success(
        202, sends(email="new@example.org", password=PASSWORD, display_name="New")
    ),
    "POST /v1/auth/verify-email": Success(204, verification_token),
    "POST /v1/auth/login": Success(200, sends(email=ADA, password=PASSWORD)),
    "POST /v1/auth/login/mfa": Success(200, second_factor("/v1/auth/login")),
    "POST /v1/auth/token": Success(200, sends(email=ADA, password=PASSWORD)),
    "POST /v1/auth/token/mfa": Success(200, second_factor("/v1/auth/token")),
    "POST /v1/auth/refresh": Success(200, refresh_token),
    "POST /v1/auth/password-reset": Success(202, sends(email=ADA)),
    "POST /v1/auth/password-reset/confirm": Success(204, reset_token),
    "GET /v1/auth/oidc/providers": Success(200),
    # No sign-in provider is configured in this world (a provider is a running server); the
    # unknown one's 404 is what an admitted caller gets. tests/accounts/test_oidc.py signs in.
    "GET /v1/auth/oidc/{provider}/login": Success(404),
    "GET /v1/auth/oidc/{provider}/callback": Success(404),
    "GET /v1/me": Success(200),
    "GET /v1/orgs": Success(200),
    "GET /v1/me/notifications": Success(200),
    "PUT /v1/me/notifications": Success(200, sends(weekly_digest=False)),
    "POST /v1/notifications/unsubscribe": Success(200, unsubscribe_token),
    "POST /v1/auth/logout": Success(204),
    "POST /v1/auth/logout-all": Success(204),
    "POST /v1/me/password": Success(
        200, sends(current_password=PASSWORD, new_password=NEW_PASSWORD)
    ),
    "GET /v1/me/sessions": Success(200),
    "DELETE /v1/me/sessions/{session_id}": Success(204, own("session_id")),
    "GET /v1/me/security-events": Success(200),
    "POST /v1/me/api-keys": Success(201, sends(name="ci", scopes=["progress:read"])),
    "GET /v1/me/api-keys": Success(200),
    "DELETE /v1/me/api-keys/{key_id}": Success(204, own("key_id")),
    "POST /v1/me/mfa/totp": Success(200),
    "POST /v1/me/mfa/totp/confirm": Success(200, totp_code),
    "POST /v1/me/mfa/totp/disable": Success(204, two_factors_on),
    "POST /v1/orgs": Success(201, sends(slug="new-org", name="New")),
    "POST /v1/invitations/accept": Success(200, an_invitation),
    "GET /v1/orgs/{org}": Success(200),
    "GET /v1/orgs/{org}/members": Success(200),
    "GET /v1/orgs/{org}/audit": Success(200),
    "PATCH /v1/orgs/{org}": Success(200, sends(name="Cohort Seven")),
    "DELETE /v1/orgs/{org}": Success(204),
    "PUT /v1/orgs/{org}/members/{user_id}/role": Success(204, sends(role="mentor")),
    "DELETE /v1/orgs/{org}/members/{user_id}": Success(204),
    "POST /v1/orgs/{org}/transfer-ownership": Success(204, to_the_key_holder, refused_too=True),
    "POST /v1/orgs/{org}/invitations": Success(201, sends(email="new@example.org", role="learner")),
    "GET /v1/admin/users": Success(200),
    "GET /v1/admin/users/{user_id}": Success(200),
    "PUT /v1/admin/users/{user_id}/admin": Success(200, sends(is_admin=True)),
    "POST /v1/admin/users/{user_id}/sign-out": Success(204),
    "POST /v1/orgs/{org}/webhooks": Success(
        201, sends(url="https://8.8.8.8/hook", event_types=["*"])
    ),
    "GET /v1/orgs/{org}/webhooks": Success(200),
    "DELETE /v1/orgs/{org}/webhooks/{endpoint_id}": Success(204),
    "GET /v1/orgs/{org}/webhooks/{endpoint_id}/deliveries": Success(200),
    "POST /v1/orgs/{org}/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver": Success(202),
    "POST /v1/orgs/{org}/webhooks/{endpoint_id}/test": Success(202),
    "GET /v1/admin/dlq": Success(200),
    "DELETE /v1/admin/dlq": Success(200),
    "GET /v1/admin/dlq/{letter_id}": Success(200),
    "DELETE /v1/admin/dlq/{letter_id}": Success(204),
    "POST /v1/admin/dlq/{letter_id}/replay": Success(202),
    "GET /v1/me/profile": Success(200),
    "PATCH /v1/me/profile": Success(200, sends(time_zone="Europe/Berlin")),
    "GET /v1/me/progress/{roadmap}": Success(200),
    "PUT /v1/me/progress/{roadmap}/{topic}": Success(200, sends(status="in_progress")),
    "POST /v1/me/progress/{roadmap}/undo": Success(200),
    "GET /v1/me/progress/{roadmap}/history": Success(200),
    "GET /v1/me/progress/{roadmap}/summary": Success(200),
    "GET /v1/me/progress/{roadmap}/export": Success(200),
    "POST /v1/me/progress/{roadmap}/import": Success(200, own_progress_file),
    "GET /v1/me/stats": Success(200),
    "GET /v1/me/progress/{roadmap}/{topic}/note": Success(200),
    "PUT /v1/me/progress/{roadmap}/{topic}/note": Success(
        200, own(if_match="note_etag", markdown="Revised")
    ),
    "GET /v1/me/progress/{roadmap}/{topic}/resources": Success(200),
    "POST /v1/me/progress/{roadmap}/{topic}/resources": Success(
        201, sends(title="RFC 9110", url="https://www.rfc-editor.org/rfc/rfc9110")
    ),
    "DELETE /v1/me/progress/{roadmap}/{topic}/resources/{resource_id}": Success(
        204, own("resource_id")
    ),
    "GET /v1/me/reviews/due": Success(200),
    "POST /v1/me/reviews/{card_id}": Success(200, own("card_id", rating="good")),
    "GET /v1/users/{handle}/badges/{roadmap}.svg": Success(200),
    "GET /v1/roadmaps/{slug}/outline": Success(200),
    "GET /v1/roadmaps/{slug}/revisions": Success(200),
    "GET /v1/roadmaps/{slug}/revisions/{number}": Success(200),
    "POST /v1/roadmaps": Success(201, sends(slug="fresh", title="Fresh")),
    "PATCH /v1/roadmaps/{slug}": Success(
        200, own("slug", if_match="roadmap_etag", title="Renamed")
    ),
    "POST /v1/roadmaps/{slug}/forks": Success(201, sends(slug="my-fork")),
    "POST /v1/roadmaps/{slug}/topics": Success(201, own("slug", title="Caching")),
    "PATCH /v1/roadmaps/{slug}/topics/{topic_slug}": Success(
        200, own("slug", if_match="topic_etag", title="HTTP/2")
    ),
    "DELETE /v1/roadmaps/{slug}/topics/{topic_slug}": Success(
        204, own("slug", if_match="topic_etag")
    ),
    "POST /v1/roadmaps/{slug}/revisions": Success(201, own("slug", note="First cut")),
    "GET /v1/search": Success(200, searching),
    "POST /v1/me/progress/{roadmap}/{topic}/note/attachments": Success(201, an_upload),
    "GET /v1/me/progress/{roadmap}/{topic}/note/attachments": Success(200),
    "DELETE /v1/me/progress/{roadmap}/{topic}/note/attachments/{file_id}": Success(
        204, own("file_id")
    ),
    "GET /v1/files/{key}": Success(200, signed_link, refused_too=True),
    "OPTIONS /v1/me/uploads": Success(204),
    "POST /v1/me/uploads": Success(201, a_tus_creation),
    "HEAD /v1/me/uploads/{upload_id}": Success(200, a_tus_upload()),
    "PATCH /v1/me/uploads/{upload_id}": Success(204, a_tus_upload(append=True)),
    "DELETE /v1/me/uploads/{upload_id}": Success(204, a_tus_upload()),
    "PUT /v1/me/avatar": Success(200, an_avatar_upload),
    "DELETE /v1/me/avatar": Success(204, an_avatar),
    "GET /v1/users/{handle}/avatar": Success(200, adas_avatar_in_sizes),
    "GET /v1/orgs/{org}/progress": Success(200),
    "PUT /v1/orgs/{org}/sharing": Success(200, sends(share_details=False)),
    "POST /v1/orgs/{org}/assignments": Success(201, sends(roadmap="matrix")),
    "GET /v1/orgs/{org}/assignments": Success(200),
    "DELETE /v1/orgs/{org}/assignments/{assignment_id}": Success(204),
    "GET /v1/me/assignments": Success(200),
    "GET /v1/orgs/{org}/feed": Success(200),
    "GET /v1/orgs/{org}/feed/stream": Success(200),
    "GET /v1/me/stream": Success(200),
    "GET /v1/orgs/{org}/rooms": Success(200),
    "POST /v1/orgs/{org}/rooms": Success(201, sends(key="matrix-room", title="Matrix")),
    "POST /v1/orgs/{org}/rooms/{room}/tickets": Success(201),
    "GET /v1/orgs/{org}/rooms/{room}/messages": Success(200),
    "DELETE /v1/orgs/{org}/rooms/{room}/messages/{seq}": Success(204),
    "GET /graphql": Success(200, graphql_query),
    "POST /graphql": Success(200, sends(query="{ __typename }")),
    "GET /v1/admin/flags": Success(200),
    "GET /v1/admin/flags/{flag}": Success(200),
    "PUT /v1/admin/flags/{flag}": Success(201, a_new_flag),
    "PATCH /v1/admin/flags/{flag}": Success(200, flag_change(enabled=False)),
    "DELETE /v1/admin/flags/{flag}": Success(204, flag_change()),
    "DELETE /v1/me": Success(204, a_throwaway_account),
}


# --- GraphQL -----------------------------------------------------------------------------------
# Each GraphQL field has a REST twin whose rule it must apply: the same callers, the same
# refusals, read from the problem in the first error's `extensions`. (The subscription's twin,
# GET /v1/me/stream, is checked over a real socket: tests/graphql/test_subscriptions.py.)
GRAPHQL_TWINS: dict[str, str] = {
    "GET /v1/roadmaps": "{ roadmaps { total } }",
    "GET /v1/roadmaps/{slug}": '{ roadmap(slug: "backend") { slug } }',
    "GET /v1/roadmaps/{slug}/tree": '{ roadmap(slug: "backend") { tree { slug } } }',
    "GET /v1/roadmaps/{slug}/topics/{topic_slug}": '{ topic(roadmap: "backend", slug: "http")'
    " { slug } }",
    "GET /v1/me": "{ me { userId } }",
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
    # 200, or a failed mutation document's own status: the problem says which refusal it was.
    assert response.headers["content-type"] == "application/json", response.text
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
    "GET /sign-in/code": "page",
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
    "POST /account/delete": "learner form",
    "GET /search": "page",
    "POST /orgs/{org}/members/{user_id}/role": "learner form",
    "POST /orgs/{org}/members/{user_id}/remove": "learner form",
    "GET /orgs/{org}/feed": "learner page",
    "GET /orgs/{org}/progress": "learner page",
    "POST /orgs/{org}/assignments": "learner form",
    "POST /orgs/{org}/assignments/{assignment_id}/delete": "learner form",
    "GET /orgs/{org}/rooms/{room}": "learner page",
    "POST /orgs/{org}/rooms/{room}/messages": "learner form",
    "POST /orgs/{org}/rooms/{room}/messages/{seq}/delete": "learner form",
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
    "assignment_id": "999999",
    "room": "lobby",
    "seq": "1",
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


# --- gRPC ----------------------------------------------------------------------------------------
# Each gRPC method has a REST twin whose rule it must apply. gRPC has no cookies: the members
# call with an access token of their own (a password sign-in of their API client), the key
# holder with its keys, and the refusal is read from the status and its problem type.
GRPC_TWINS: dict[str, str] = {
    "Roadmaps/ListRoadmaps": "GET /v1/roadmaps",
    "Roadmaps/GetTree": "GET /v1/roadmaps/{slug}/tree",
    "Roadmaps/GetTopic": "GET /v1/roadmaps/{slug}/topics/{topic_slug}",
    "Progress/SetStatus": "PUT /v1/me/progress/{roadmap}/{topic}",
    "Progress/Summary": "GET /v1/me/progress/{roadmap}/summary",
    "Progress/WatchProgress": "GET /v1/me/stream",
}


def grpc_outcome(error: grpc.aio.AioRpcError | None) -> str:
    if error is None:
        return "ok"
    problem_type = dict(error.trailing_metadata() or ()).get("problem-type", "")
    refusals = {
        (grpc.StatusCode.UNAUTHENTICATED, "/problems/not-authenticated"): "401",
        (grpc.StatusCode.PERMISSION_DENIED, "/problems/insufficient-scope"): "scope",
        (grpc.StatusCode.PERMISSION_DENIED, "/problems/role-required"): "role",
        (grpc.StatusCode.PERMISSION_DENIED, "/problems/not-platform-admin"): "not-admin",
        (grpc.StatusCode.NOT_FOUND, "/problems/org-not-found"): "hidden",
    }
    return refusals.get((error.code(), problem_type), "ok")


async def call_grpc(channel: grpc.aio.Channel, method: str, metadata: tuple[Any, ...]) -> None:
    roadmaps, progress = RoadmapsStub(channel), ProgressStub(channel)
    if method == "Roadmaps/ListRoadmaps":
        await roadmaps.ListRoadmaps(roadmaps_pb2.ListRoadmapsRequest(), metadata=metadata)
    elif method == "Roadmaps/GetTree":
        await roadmaps.GetTree(roadmaps_pb2.GetTreeRequest(roadmap="backend"), metadata=metadata)
    elif method == "Roadmaps/GetTopic":
        request = roadmaps_pb2.GetTopicRequest(roadmap="backend", topic="http")
        await roadmaps.GetTopic(request, metadata=metadata)
    elif method == "Progress/SetStatus":
        change = progress_pb2.SetStatusRequest(
            roadmap="matrix", topic="http", status=progress_pb2.TOPIC_STATUS_DONE
        )
        await progress.SetStatus(change, metadata=metadata)
    elif method == "Progress/Summary":
        await progress.Summary(progress_pb2.SummaryRequest(roadmap="matrix"), metadata=metadata)
    else:  # WatchProgress: an admitted caller's stream ends at its (tiny) maximum lifetime
        async for _ in progress.WatchProgress(
            progress_pb2.WatchProgressRequest(), metadata=metadata
        ):
            pass


def test_every_grpc_twin_names_a_route_with_a_rule() -> None:
    assert set(GRPC_TWINS.values()) <= set(ACCESS)


async def test_every_caller_gets_the_same_outcome_through_grpc(
    world: World, matrix_app: FastAPI, connection: AsyncConnection
) -> None:
    metadata: dict[str, tuple[Any, ...]] = {"anonymous": ()}
    for caller in CALLERS:
        if caller in ROLES or caller in ("outsider", "admin"):
            email = (await world.clients[caller].get("/v1/me")).json()["email"]
            token = await world.clients[caller].post(
                "/v1/auth/token", json={"email": email, "password": PASSWORD}
            )
            assert token.status_code == 200, token.text
            metadata[caller] = (("authorization", f"Bearer {token.json()['access_token']}"),)
    metadata["key"] = (("authorization", world.headers["key"]["authorization"]),)
    server = GrpcServer(matrix_app.state.resources)
    await server.start("127.0.0.1:0")
    mismatches = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            for method, operation in sorted(GRPC_TWINS.items()):
                for caller in CALLERS:
                    sent = metadata.get(caller, ())
                    if caller == "key-without-scope":
                        key = world.keys_without[ACCESS[operation].scope]
                        sent = (("authorization", f"Bearer {key}"),)
                    savepoint = await connection.begin_nested()
                    try:
                        await call_grpc(channel, method, sent)
                        error = None
                    except grpc.aio.AioRpcError as refused:
                        error = refused
                    await savepoint.rollback()
                    want, got = expected(ACCESS[operation], caller), grpc_outcome(error)
                    if got != want:
                        mismatches.append(f"{method} through gRPC as {caller}: {got}, want {want}")
    finally:
        await server.stop(grace_seconds=0)

    assert mismatches == []
