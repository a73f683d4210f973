"""A bearer caller's own ready reads (`/v1/me`, their progress on a public roadmap) are answered
in front of the application (decision 0080) exactly as the full stack answers them, and only
while every rule the stack applies still holds: each request is sent to an app with the fast
path and to one without it, over one database and one Redis (or none), and the responses and
access-log lines must be the same but for the request id; then revocation, a change of
progress and the roadmap going private must show on the very next request."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from skilltree.accounts.sessions import DatabaseSessionStore, RedisSessionStore
from skilltree.app import create_app
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import (
    LogSettings,
    RedisSettings,
    Settings,
)
from skilltree.platform.db import Database
from skilltree.platform.observability.logging import configure_logging
from tests.support.accounts import (
    Browser,
    api_key,
    bearer_headers,
    register_and_verify,
    sign_in,
    store_questions,
    user_id,
)
from tests.support.fast_path import (
    BOTH_BACKENDS,
    access_lines,
    client_of,
    comparable,
    fast_path_of,
    production_shape,
    serving,
    two_apps,
)
from tests.support.orgs import create_org, invite_and_join
from tests.support.progress import WEB, import_roadmap, mark

ME = "/v1/me"
PROGRESS = "/v1/me/progress/web"
SUMMARY = "/v1/me/progress/web/summary"
PRIVATE_PROGRESS = "/v1/me/progress/notes"
PRIVATE = {"slug": "notes", "title": "Notes", "topics": [{"slug": "one", "title": "One"}]}


@pytest.fixture
def settings(settings: Settings, shared_state: RedisSettings) -> Settings:
    return production_shape(settings, shared_state)


@dataclass
class Learner:
    browser: Browser  # signed in with a session cookie
    token: dict[str, str]  # Authorization with an access token
    reader_key: dict[str, str]  # an API key allowed to read progress
    writer_key: dict[str, str]  # an API key allowed to write progress only
    writer_key_id: int


async def learner_of(client: httpx.AsyncClient, outbox: Path) -> Learner:
    await register_and_verify(client, outbox)
    browser = await sign_in(client)
    await import_roadmap(browser, WEB, visibility="public")
    await import_roadmap(browser, PRIVATE)
    assert (await mark(browser, "indexes", "done")).status_code == 200
    reader, _ = await api_key(browser, ["progress:read"])
    writer, writer_id = await api_key(browser, ["progress:write"])
    return Learner(browser, await bearer_headers(browser), reader, writer, writer_id)


def credentials(learner: Learner) -> list[dict[str, str]]:
    return [learner.token, learner.reader_key, learner.writer_key]


async def warm(client: httpx.AsyncClient, learner: Learner) -> None:
    """What the fast path answers from: the public tree and the learner's views in the cache,
    and each credential kept by the principal cache (each request through the stack)."""
    assert (await client.get("/v1/roadmaps/web/tree")).status_code == 200
    for headers in credentials(learner):
        for path in (ME, PROGRESS, SUMMARY):
            await client.get(path, headers=headers)


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    headers: dict[str, str]
    status: int
    in_front: bool  # answered before the application


def cases_for(learner: Learner, etag: str, me_etag: str, cookie_name: str) -> list[Case]:
    token = learner.token
    session = learner.browser.client.cookies[cookie_name]
    return [
        Case("GET", PROGRESS, token, 200, True),
        Case("GET", PROGRESS, {**token, "accept-encoding": "br"}, 200, True),
        Case("GET", PROGRESS, {**token, "accept-encoding": "gzip"}, 200, True),
        Case("GET", PROGRESS, {**token, "accept-encoding": "identity"}, 200, True),
        Case("GET", PROGRESS, {**token, "if-none-match": etag}, 304, True),
        Case("GET", PROGRESS, {**token, "if-none-match": etag[:-1] + '-br"'}, 304, True),
        Case("GET", PROGRESS, {**token, "origin": "http://test"}, 200, True),
        Case("GET", SUMMARY, token, 200, True),
        Case("GET", ME, token, 200, True),
        Case("GET", ME, {**token, "if-none-match": me_etag}, 304, True),
        Case("GET", PROGRESS, learner.reader_key, 200, True),
        Case("GET", ME, learner.writer_key, 200, True),  # who you are needs no scope
        # A bearer credential is used whatever cookie comes with it, as the application does.
        Case("GET", PROGRESS, {**token, "cookie": f"{cookie_name}=not-a-session"}, 200, True),
        Case("GET", PROGRESS, {"cookie": f"{cookie_name}={session}"}, 200, True),
        Case("GET", ME, {"cookie": f"theme=dark; {cookie_name}={session}"}, 200, True),
        Case("GET", PROGRESS, learner.writer_key, 403, False),  # no progress:read
        Case("GET", PROGRESS, {"authorization": "Bearer not-a-token"}, 401, False),
        Case("GET", PROGRESS, {"authorization": "Basic YTpi"}, 401, False),
        Case("GET", PROGRESS, {"cookie": f"{cookie_name}=not-a-session"}, 401, False),
        Case("GET", PROGRESS, {"cookie": "theme=dark"}, 401, False),
        Case("GET", PROGRESS, {}, 401, False),
        # A private roadmap: access is checked with a statement.
        Case("GET", PRIVATE_PROGRESS, token, 200, False),
        Case("GET", "/v1/me/progress/nothing-here", token, 404, False),
        Case("GET", PROGRESS + "?view=all", token, 200, False),
        Case("HEAD", PROGRESS, token, 200, False),  # the GET's answer without the body
    ]


async def requests_to_compare(client: httpx.AsyncClient, cases: list[Case]) -> list[httpx.Response]:
    return [await client.request(c.method, c.path, headers=c.headers) for c in cases]


@BOTH_BACKENDS
async def test_a_learners_own_reads_are_answered_in_front_as_the_full_stack_answers_them(
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    outbox: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(LogSettings(level="INFO", format="json"))
    async with (
        two_apps(settings, database, clock) as (fast_app, ordinary_app),
        client_of(fast_app) as browser,
        client_of(fast_app) as fast,
        client_of(ordinary_app) as ordinary,
    ):
        learner = await learner_of(browser, outbox)
        for client in (fast, ordinary):
            await warm(client, learner)
        token = learner.token
        etag = (await fast.get(PROGRESS, headers={**token, "accept-encoding": "identity"})).headers[
            "etag"
        ]
        me_etag = (await fast.get(ME, headers=token)).headers["etag"]
        cases = cases_for(learner, etag, me_etag, settings.auth.session_cookie)
        answered_before = fast_path_of(fast_app).answered
        await asyncio.sleep(0)  # the access log writes a loop turn's lines at the next
        capsys.readouterr()
        by_fast_path = await requests_to_compare(fast, cases)
        await asyncio.sleep(0)
        fast_log = capsys.readouterr().out
        answered = fast_path_of(fast_app).answered - answered_before
        by_stack = await requests_to_compare(ordinary, cases)
        await asyncio.sleep(0)
        ordinary_log = capsys.readouterr().out

    assert [comparable(r) for r in by_fast_path] == [comparable(r) for r in by_stack]
    assert access_lines(fast_log) == access_lines(ordinary_log)
    assert [r.status_code for r in by_fast_path] == [case.status for case in cases]
    assert answered == sum(case.in_front for case in cases)
    assert by_fast_path[1].headers["content-encoding"] == "br"
    assert by_fast_path[0].headers["cache-control"] == "private, no-store"


@BOTH_BACKENDS
async def test_what_the_stack_would_refuse_or_change_shows_on_the_very_next_request(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    app = create_app(settings, database=database, clock=clock)
    async with (
        serving(app) as browser,
        client_of(app) as api,
        client_of(app) as other,
    ):
        ada = await learner_of(browser, outbox)
        await register_and_verify(other, outbox, email="bob@example.org", name="Bob")
        bob = await bearer_headers(await sign_in(other, email="bob@example.org"))
        await warm(api, ada)
        assert (await api.get(PROGRESS, headers=bob)).status_code == 200
        assert (await api.get(PROGRESS, headers=bob)).status_code == 200
        fast_path = fast_path_of(app)
        answered = fast_path.answered

        # A change of Ada's progress (through the browser) shows at once.
        assert (await api.get(SUMMARY, headers=ada.token)).status_code == 200  # in front
        assert (await mark(ada.browser, "indexes", "todo")).status_code == 200
        summary = await api.get(SUMMARY, headers=ada.token)

        # Bob's progress read was answered in front too; Ada makes her roadmap private.
        tree = await browser.get("/v1/roadmaps/web")
        private = await browser.patch(
            "/v1/roadmaps/web",
            json={"visibility": "private"},
            headers={"if-match": tree.headers["etag"], **ada.browser.write_headers},
        )
        assert private.status_code == 200, private.text
        hidden = await api.get(PROGRESS, headers=bob)

        # Revoked credentials are refused at once.
        deleted = await browser.delete(
            f"/v1/me/api-keys/{ada.writer_key_id}", headers=ada.browser.write_headers
        )
        assert deleted.status_code == 204, deleted.text
        writer_me = await api.get(ME, headers=ada.writer_key)
        signed_out = await browser.post("/v1/auth/logout-all", headers=ada.browser.write_headers)
        assert signed_out.status_code == 204, signed_out.text
        token_me = await api.get(ME, headers=ada.token)
        answered_since = fast_path.answered - answered

    assert hidden.status_code == 404
    assert summary.json()["summary"]["counts"]["done"] == 0
    assert writer_me.status_code == 401
    assert token_me.status_code == 401
    # Only the summary read before the change: every request after one went down the stack.
    assert answered_since == 1


@BOTH_BACKENDS
async def test_a_browser_session_is_answered_in_front_only_while_it_needs_no_write(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    """A kept session is used as it is until its idle expiry is due to slide (a write, once a
    minute of use): that request goes down the stack, the next one is answered in front again;
    a session signed out is refused at once."""
    name = settings.auth.session_cookie
    app = create_app(settings, database=database, clock=clock)
    async with serving(app) as browser, client_of(app) as api:
        ada = await learner_of(browser, outbox)
        session = {"cookie": f"{name}={browser.cookies[name]}"}
        await api.get("/v1/roadmaps/web/tree")
        await api.get(PROGRESS, headers=session)
        fast_path = fast_path_of(app)
        answered_before = fast_path.answered
        in_front = await api.get(PROGRESS, headers=session)
        clock.advance(minutes=2)
        sliding = await api.get(PROGRESS, headers=session)
        slid = await api.get(PROGRESS, headers=session)
        answered = fast_path.answered - answered_before
        signed_out = await browser.post("/v1/auth/logout", headers=ada.browser.write_headers)
        assert signed_out.status_code == 204, signed_out.text
        ended = await api.get(PROGRESS, headers=session)

    assert [in_front.status_code, sliding.status_code, slid.status_code] == [200, 200, 200]
    assert answered == 2  # before and after the slide, not the slide itself
    assert ended.status_code == 401


@BOTH_BACKENDS
async def test_a_session_read_the_fast_path_sends_down_the_stack_asks_its_store_once(
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    outbox: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a change of progress the learner's progress is not ready in front: the fast path
    has found the kept session (asking its store whether it is still there) and sends the
    request down the stack, which uses that answer instead of asking the store again."""
    name = settings.auth.session_cookie
    app = create_app(settings, database=database, clock=clock)
    async with serving(app) as browser, client_of(app) as api:
        ada = await learner_of(browser, outbox)
        session = {"cookie": f"{name}={browser.cookies[name]}"}
        await api.get("/v1/roadmaps/web/tree")
        assert (await api.get(PROGRESS, headers=session)).status_code == 200
        assert (await mark(ada.browser, "etags", "done")).status_code == 200
        fast_path = fast_path_of(app)
        answered_before = fast_path.answered
        asked = store_questions(monkeypatch)
        after_change = await api.get(PROGRESS, headers=session)
        answered = fast_path.answered - answered_before
        again = await api.get(PROGRESS, headers=session)

    assert after_change.status_code == 200
    assert answered == 0  # computed by the stack
    assert after_change.json()["topics"] == again.json()["topics"]
    assert len(asked) == 2  # once for each request


@BOTH_BACKENDS
async def test_a_session_store_out_of_reach_is_the_stacks_outage_not_a_500(
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    outbox: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = settings.auth.session_cookie
    app = create_app(settings, database=database, clock=clock)
    async with serving(app) as browser, client_of(app) as api:
        await learner_of(browser, outbox)
        session = {"cookie": f"{name}={browser.cookies[name]}"}
        await api.get("/v1/roadmaps/web/tree")
        assert (await api.get(PROGRESS, headers=session)).status_code == 200

        async def unreachable(_store: object, _token_hash: str) -> bool:
            raise RedisConnectionError("Error 111 connecting to redis:6379. Connection refused.")

        for store in (RedisSessionStore, DatabaseSessionStore):
            monkeypatch.setattr(store, "still_stored", unreachable)
        answer = await api.get(PROGRESS, headers=session)

    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"]


@BOTH_BACKENDS
async def test_a_session_read_in_front_takes_an_admission_slot_and_a_token_read_does_not(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    """A session is checked against its store, a round trip: bounded like the application's
    requests. A token kept in memory costs no round trip and is not."""
    name = settings.auth.session_cookie
    one_at_a_time = settings.http.model_copy(update={"max_in_flight": 1, "max_waiting": 0})
    app = create_app(
        settings.model_copy(update={"http": one_at_a_time}), database=database, clock=clock
    )
    async with serving(app) as browser, client_of(app) as api:
        learner = await learner_of(browser, outbox)
        session = {"cookie": f"{name}={browser.cookies[name]}"}
        await warm(api, learner)
        await api.get(PROGRESS, headers=session)
        slots = fast_path_of(app).slots
        assert slots is not None
        assert slots.try_take()  # the one slot, as a request in flight would hold it
        try:
            by_session = await api.get(PROGRESS, headers=session)
            by_token = await api.get(PROGRESS, headers=learner.token)
        finally:
            slots.release()
        after = await api.get(PROGRESS, headers=session)

    assert by_session.status_code == 503
    assert by_session.json()["type"] == "/problems/overloaded"
    assert by_token.status_code == 200
    assert after.status_code == 200


@BOTH_BACKENDS
async def test_a_member_removed_from_an_organisation_no_longer_reads_progress_on_its_roadmap(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    """Access to an organisation's roadmap ends with the membership, which marks neither the
    roadmap nor the learner's progress stale: such reads are never answered in front."""
    app = create_app(settings, database=database, clock=clock)
    async with (
        serving(app) as owner_client,
        client_of(app) as member_client,
        client_of(app) as api,
    ):
        await register_and_verify(owner_client, outbox)
        ada = await sign_in(owner_client)
        await create_org(ada)
        await register_and_verify(member_client, outbox, email="bob@example.org", name="Bob")
        bob = await sign_in(member_client, email="bob@example.org")
        await invite_and_join(ada, bob, outbox, "learner", "bob@example.org")
        shared = await owner_client.post(
            "/v1/roadmaps/import",
            json=WEB,
            params={"visibility": "organisation", "org": "cohort-7"},
            headers=ada.write_headers,
        )
        assert shared.status_code == 201, shared.text
        token, bob_id = await bearer_headers(bob), await user_id(bob)
        answered_before = fast_path_of(app).answered
        member = [await api.get(PROGRESS, headers=token) for _ in range(2)]
        removed = await owner_client.delete(
            f"/v1/orgs/cohort-7/members/{bob_id}", headers=ada.write_headers
        )
        assert removed.status_code == 204, removed.text
        after = await api.get(PROGRESS, headers=token)
        answered = fast_path_of(app).answered - answered_before

    assert [r.status_code for r in member] == [200, 200]
    assert after.status_code == 404
    assert answered == 0


@pytest.mark.redis
@pytest.mark.parametrize("shared_state", ["redis"], indirect=True)
async def test_a_token_revoked_on_one_instance_is_refused_by_anothers_fast_path_within_100_ms(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    first = create_app(settings, database=database, clock=clock)
    second = create_app(settings, database=database, clock=clock)  # both with the fast path
    async with serving(first) as browser, serving(second) as api:
        ada = await learner_of(browser, outbox)
        await api.get(ME, headers=ada.token)
        kept = await api.get(ME, headers=ada.token)
        answered = fast_path_of(second).answered
        signed_out = await browser.post("/v1/auth/logout-all", headers=ada.browser.write_headers)
        assert signed_out.status_code == 204, signed_out.text
        started = time.monotonic()
        while (after := await api.get(ME, headers=ada.token)).status_code == 200:
            assert time.monotonic() - started < 0.1, "still answered after 100 ms"
            await asyncio.sleep(0.002)

    assert kept.status_code == 200
    assert answered >= 1
    assert after.status_code == 401
