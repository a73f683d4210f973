"""The due list's first page kept in the cache (decision 0082) never shows what the uncached
route would not: each request is sent to an app that keeps it and to one whose cache is off,
over one database, one clock and one Redis (or none), and the statuses, headers, bodies and
access-log lines must be the same but for the request id. What the fast path would answer
in front of the application (`kept_due_list`, asked before the request goes down the stack)
must be that answer too, or nothing. Then each change of the queue, of progress, of a
roadmap, of the account, of the caller's credentials and of the time must show on the very
next request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from skilltree.app import create_app
from skilltree.platform.cache import LocalCopy
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import LogSettings, RedisSettings, Settings
from skilltree.platform.db import Database
from skilltree.platform.http.conditional import Representation
from skilltree.platform.http.credentials import Credentials
from skilltree.platform.observability.logging import configure_logging
from skilltree.platform.state import Resources
from skilltree.reviews.router import kept_due_list
from tests.support.accounts import (
    Browser,
    api_key,
    bearer_headers,
    register_and_verify,
    sign_in,
)
from tests.support.fast_path import (
    BOTH_BACKENDS,
    access_lines,
    client_of,
    comparable,
    fast_path_of,
    production_shape,
)
from tests.support.orgs import create_org, invite_and_join
from tests.support.progress import WEB, import_roadmap, mark
from tests.support.queries import count_statements

DUE = "/v1/me/reviews/due"
URL = f"http://test{DUE}"


@pytest.fixture
def settings(settings: Settings, shared_state: RedisSettings) -> Settings:
    return production_shape(settings, shared_state)


@dataclass
class Apps:
    kept_app: FastAPI  # keeps the first page in its cache
    kept: httpx.AsyncClient
    plain: httpx.AsyncClient  # an app whose cache is off: the route as it was
    clients: AsyncExitStack  # the learners' own clients of the kept app

    @property
    def resources(self) -> Resources:
        resources: Resources = self.kept_app.state.resources
        return resources

    async def in_front(self, headers: dict[str, str]) -> LocalCopy | None:
        """What the fast path would answer from what the kept app holds now."""
        session = headers.get("cookie", "").partition("=")[2] or None
        credentials = Credentials(headers.get("authorization"), session)
        return await kept_due_list(self.resources, credentials, URL)

    async def next_answer(self, headers: dict[str, str], path: str = DUE) -> Answer:
        """The next request's answer: the front's (asked first, as the fast path would be),
        the kept route's and the uncached route's, checked to be the same."""
        # As sent, uncompressed: the body and the ETag compared are the representation's.
        headers = {"accept-encoding": "identity", **headers}
        found = await self.in_front(headers) if path == DUE else None
        by_kept = await self.kept.get(path, headers=headers)
        by_plain = await self.plain.get(path, headers=headers)
        assert comparable(by_kept) == comparable(by_plain)
        if found is not None:
            representation = Representation.from_bytes(found.value)
            assert by_plain.status_code == 200
            assert representation.body == by_plain.content
            assert representation.etag == by_plain.headers["etag"]
        return Answer(by_kept, in_front=found is not None)

    async def kept_again(self, headers: dict[str, str]) -> bool:
        """Whether the page is answered in front once more after a change. With Redis, the
        writer's own announcement is heard after its next read, and makes the tokens that
        read remembered untrusted: answered in front from the read after that."""
        for _ in range(20):
            if (await self.next_answer(headers)).in_front:
                return True
            await asyncio.sleep(0.01)
        return False

    async def refused(self, headers: dict[str, str]) -> tuple[int, bool]:
        """The kept app's status for the due list and whether the front would answer it: for
        credentials a change has ended, which another app without Redis does not hear of."""
        found = await self.in_front(headers)
        return (await self.kept.get(DUE, headers=headers)).status_code, found is not None


@dataclass
class Answer:
    response: httpx.Response
    in_front: bool

    @property
    def topics(self) -> list[str]:
        return [card["topic"] for card in self.response.json()["items"]]

    @property
    def titles(self) -> list[str]:
        return [card["title"] for card in self.response.json()["items"]]


@asynccontextmanager
async def apps(settings: Settings, database: Database, clock: FrozenClock) -> AsyncIterator[Apps]:
    kept_app = create_app(settings, database=database, clock=clock)
    cache_off = settings.cache.model_copy(update={"enabled": False})
    without_cache = settings.model_copy(update={"cache": cache_off})
    plain_app = create_app(without_cache, database=database, clock=clock)
    async with (
        kept_app.router.lifespan_context(kept_app),
        plain_app.router.lifespan_context(plain_app),
        client_of(kept_app) as kept,
        client_of(plain_app) as plain,
        AsyncExitStack() as clients,
    ):
        yield Apps(kept_app, kept, plain, clients)


async def learner(apps: Apps, outbox: Path, email: str = "ada@example.org") -> Browser:
    """A signed-in learner of the kept app (its own client), the web roadmap public."""
    client = await apps.clients.enter_async_context(client_of(apps.kept_app))
    await register_and_verify(client, outbox, email=email, name=email.split("@")[0])
    return await sign_in(client, email=email)


async def rate(browser: Browser, card_id: int, rating: str) -> datetime:
    response = await browser.client.post(
        f"/v1/me/reviews/{card_id}", json={"rating": rating}, headers=browser.write_headers
    )
    assert response.status_code == 200, response.text
    return datetime.fromisoformat(response.json()["due"])


def card_of(answer: Answer, topic: str) -> int:
    (card,) = [card for card in answer.response.json()["items"] if card["topic"] == topic]
    return int(card["id"])


def move_to(clock: FrozenClock, instant: datetime) -> None:
    """The clock set to `instant` exactly (to the microsecond)."""
    clock.advance(microseconds=(instant - clock.now()) // timedelta(microseconds=1))


async def etag_of(browser: Browser, path: str) -> str:
    response = await browser.client.get(path)
    assert response.status_code == 200, response.text
    return response.headers["etag"]


async def edit_topic(browser: Browser, topic: str, **changes: Any) -> None:
    path = f"/v1/roadmaps/web/topics/{topic}"
    headers = {"if-match": await etag_of(browser, path), **browser.write_headers}
    if changes:
        response = await browser.client.patch(path, json=changes, headers=headers)
        assert response.status_code == 200, response.text
    else:
        response = await browser.client.delete(path, headers=headers)
        assert response.status_code == 204, response.text


@BOTH_BACKENDS
async def test_the_kept_first_page_is_answered_as_the_uncached_route_answers_it(
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    outbox: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(LogSettings(level="INFO", format="json"))
    async with apps(settings, database, clock) as pair:
        ada = await learner(pair, outbox)
        await import_roadmap(ada, WEB, visibility="public")
        for topic in ("etags", "indexes", "status-codes"):
            assert (await mark(ada, topic, "done")).status_code == 200
            clock.advance(seconds=1)
        token = await bearer_headers(ada)
        reader, _ = await api_key(ada, ["progress:read"])
        writer, _ = await api_key(ada, ["progress:write"])
        first = await pair.next_answer(token)
        again = await pair.next_answer(token)
        etag = first.response.headers["etag"]
        cases: list[tuple[str, str, dict[str, str]]] = [
            ("GET", DUE, token),
            ("GET", DUE, {**token, "accept-encoding": "br"}),
            ("GET", DUE, {**token, "accept-encoding": "gzip"}),
            ("GET", DUE, {**token, "accept-encoding": "identity"}),
            ("GET", DUE, {**token, "if-none-match": etag}),
            ("GET", DUE, {**token, "if-none-match": '"another"'}),
            ("GET", DUE, {**token, "origin": "http://test"}),
            ("GET", DUE, {**token, "host": "elsewhere.example"}),
            ("GET", DUE, reader),
            ("GET", f"{DUE}?limit=20", token),  # the first page, asked for by its limit
            ("GET", f"{DUE}?limit=2", token),
            ("HEAD", DUE, token),
            ("GET", DUE, writer),  # no progress:read
            ("GET", DUE, {"authorization": "Bearer not-a-token"}),
            ("GET", DUE, {}),
        ]
        await asyncio.sleep(0)  # the access log writes a loop turn's lines at the next
        capsys.readouterr()
        by_kept = [await pair.kept.request(m, path, headers=h) for m, path, h in cases]
        await asyncio.sleep(0)
        kept_log = capsys.readouterr().out
        by_plain = [await pair.plain.request(m, path, headers=h) for m, path, h in cases]
        await asyncio.sleep(0)
        plain_log = capsys.readouterr().out
        writer_in_front = await pair.in_front(writer)

    assert [comparable(r) for r in by_kept] == [comparable(r) for r in by_plain]
    assert access_lines(kept_log) == access_lines(plain_log)
    statuses = [r.status_code for r in by_kept]
    assert statuses == [200, 200, 200, 200, 304, 200, 200, 200, 200, 200, 200, 200, 403, 401, 401]
    assert first.topics == ["etags", "indexes", "status-codes"]
    assert again.in_front
    assert not first.in_front
    assert by_kept[0].headers["cache-control"] == "private, no-store"
    assert by_kept[7].json()["links"]["self"] == f"http://elsewhere.example{DUE}"
    assert 'rel="next"' in by_kept[10].headers["link"]
    assert writer_in_front is None


@BOTH_BACKENDS
async def test_the_fast_path_answers_a_kept_first_page_in_front(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    async with apps(settings, database, clock) as pair:
        ada = await learner(pair, outbox)
        await import_roadmap(ada, WEB, visibility="public")
        assert (await mark(ada, "etags", "done")).status_code == 200
        token = await bearer_headers(ada)
        await pair.next_answer(token)
        answered_before = fast_path_of(pair.kept_app).answered
        again = await pair.next_answer(token)
        answered = fast_path_of(pair.kept_app).answered - answered_before

    assert again.in_front
    assert answered == 1


async def test_a_kept_first_page_is_answered_without_a_statement(
    ada: Browser, engine: AsyncEngine, clock: FrozenClock
) -> None:
    """Made once (four statements, `test_router.py`), then read from the cache; after a
    rating, made again from the page and the next due card alone."""
    for topic in ("etags", "indexes"):
        assert (await mark(ada, topic, "done")).status_code == 200
    (card, _) = (await ada.client.get(DUE)).json()["items"]

    with count_statements(engine) as kept:
        again = await ada.client.get(DUE)
    await rate(ada, card["id"], "good")
    with count_statements(engine) as after_rating:
        rated = await ada.client.get(DUE)

    assert len(again.json()["items"]) == 2
    assert kept.count == 0, kept.statements
    assert [c["topic"] for c in rated.json()["items"]] == ["indexes"]
    assert after_rating.count == 2, after_rating.statements


@BOTH_BACKENDS
async def test_every_change_of_the_queue_or_its_labels_shows_on_the_very_next_request(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    async with apps(settings, database, clock) as pair:
        ada = await learner(pair, outbox)
        await import_roadmap(ada, WEB, visibility="public")
        token = await bearer_headers(ada)
        for topic in ("etags", "indexes"):
            assert (await mark(ada, topic, "done")).status_code == 200
            clock.advance(seconds=1)
        seen: dict[str, Answer] = {}

        async def after(change: str) -> None:
            """The first answer after a change (never from the front: the page is stale),
            then the next (from the front: kept again)."""
            seen[change] = await pair.next_answer(token)
            assert not seen[change].in_front, change
            assert await pair.kept_again(token), change

        await after("start")
        etag = seen["start"].response.headers["etag"]
        unchanged = await pair.kept.get(DUE, headers={**token, "if-none-match": etag})

        await rate(ada, card_of(seen["start"], "etags"), "good")
        await after("rated")
        changed = await pair.kept.get(DUE, headers={**token, "if-none-match": etag})
        assert (await mark(ada, "status-codes", "done")).status_code == 200
        await after("done")
        assert (await mark(ada, "indexes", "todo")).status_code == 200
        await after("back to todo")
        undone = await ada.client.post("/v1/me/progress/web/undo", headers=ada.write_headers)
        assert undone.status_code == 200, undone.text
        await after("undone")
        imported = await ada.client.post(
            "/v1/me/progress/web/import",
            json={
                "format": "skilltree-progress/1",
                "topics": [{"slug": "cache-control", "status": "done"}],
            },
            headers=ada.write_headers,
        )
        assert imported.status_code == 200, imported.text
        await after("imported")
        await edit_topic(ada, "status-codes", title="HTTP status codes")
        await after("renamed")
        await edit_topic(ada, "status-codes", slug="statuses")
        await after("slug changed")
        await edit_topic(ada, "statuses")
        await after("topic deleted")
        reimported = dict(WEB, topics=[*WEB["topics"][:1], _databases("Indexing")])
        await import_roadmap(ada, reimported, visibility="public")
        await after("roadmap imported again")

    assert unchanged.status_code == 304
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert seen["start"].topics == ["etags", "indexes"]
    assert seen["rated"].topics == ["indexes"]
    assert seen["done"].topics == ["indexes", "status-codes"]
    assert seen["back to todo"].topics == ["status-codes"]
    assert seen["undone"].topics == ["status-codes", "indexes"]
    assert seen["imported"].topics == ["status-codes", "indexes", "cache-control"]
    assert seen["renamed"].titles == ["HTTP status codes", "Indexes", "Cache-Control"]
    assert seen["slug changed"].topics == ["statuses", "indexes", "cache-control"]
    assert seen["topic deleted"].topics == ["indexes", "cache-control"]
    assert seen["roadmap imported again"].titles == ["Indexing", "Cache-Control"]


def _databases(title: str) -> dict[str, Any]:
    """The web roadmap's databases section, its one topic titled `title`."""
    section = WEB["topics"][1]
    return dict(section, children=[dict(section["children"][0], title=title)])


@BOTH_BACKENDS
async def test_a_card_coming_due_shows_at_once_where_the_page_had_room(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    async with apps(settings, database, clock) as pair:
        ada = await learner(pair, outbox)
        await import_roadmap(ada, WEB, visibility="public")
        token = await bearer_headers(ada)
        for topic in ("etags", "indexes"):
            assert (await mark(ada, topic, "done")).status_code == 200
            clock.advance(seconds=1)
        listed = await pair.next_answer(token)
        comes_due = await rate(ada, card_of(listed, "etags"), "again")
        rated = await pair.next_answer(token)
        assert await pair.kept_again(token)
        move_to(clock, comes_due - timedelta(microseconds=1))
        just_before = await pair.next_answer(token)
        clock.advance(microseconds=1)
        at_its_time = await pair.next_answer(token)
        kept_again = await pair.kept_again(token)

    assert rated.topics == ["indexes"]
    assert just_before.in_front
    assert just_before.topics == ["indexes"]
    assert not at_its_time.in_front
    assert at_its_time.topics == ["indexes", "etags"]
    assert kept_again


@BOTH_BACKENDS
async def test_a_card_coming_due_behind_a_full_page_gives_it_a_next_link_at_once(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    many = {
        "slug": "many",
        "title": "Many",
        "topics": [{"slug": f"t{n:02}", "title": f"Topic {n}"} for n in range(21)],
    }
    async with apps(settings, database, clock) as pair:
        ada = await learner(pair, outbox)
        await import_roadmap(ada, many, visibility="public")
        token = await bearer_headers(ada)
        for n in range(21):
            assert (await mark(ada, f"t{n:02}", "done", roadmap="many")).status_code == 200
        full = await pair.next_answer(token)
        comes_due = await rate(ada, card_of(full, "t00"), "again")
        twenty = await pair.next_answer(token)
        assert await pair.kept_again(token)
        move_to(clock, comes_due - timedelta(microseconds=1))
        just_before = await pair.next_answer(token)
        clock.advance(microseconds=1)
        at_its_time = await pair.next_answer(token)
        once_more = await pair.next_answer(token)
        and_again = await pair.next_answer(token)
        kept = await pair.kept.get(DUE, headers=token)

    assert full.response.json()["links"]["next"] is not None
    assert len(twenty.topics) == 20
    assert "t00" not in twenty.topics
    assert twenty.response.json()["links"]["next"] is None
    assert just_before.in_front
    assert not at_its_time.in_front
    assert at_its_time.topics == twenty.topics
    assert 'rel="next"' in at_its_time.response.headers["link"]
    assert at_its_time.response.json()["links"]["next"] is not None
    # Kept again, and answered in front with its Link header as the route sends it.
    assert and_again.in_front
    assert once_more.response.headers["link"] == at_its_time.response.headers["link"]
    assert and_again.response.headers["link"] == at_its_time.response.headers["link"]
    assert and_again.response.json() == at_its_time.response.json()
    assert kept.status_code == 200


@BOTH_BACKENDS
async def test_a_page_with_a_card_on_an_organisations_roadmap_is_made_on_every_request(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    """An organisation's roadmap goes with the organisation, its topics and the cards on them
    too, and that marks no namespace stale: such a page is never kept."""
    async with apps(settings, database, clock) as pair:
        ada = await learner(pair, outbox)
        await create_org(ada)
        bob = await learner(pair, outbox, email="bob@example.org")
        await invite_and_join(ada, bob, outbox, "learner", "bob@example.org")
        shared = await ada.client.post(
            "/v1/roadmaps/import",
            json=WEB,
            params={"visibility": "organisation", "org": "cohort-7"},
            headers=ada.write_headers,
        )
        assert shared.status_code == 201, shared.text
        assert (await mark(bob, "etags", "done")).status_code == 200
        token = await bearer_headers(bob)
        member = [await pair.next_answer(token) for _ in range(2)]
        deleted = await ada.client.delete("/v1/orgs/cohort-7", headers=ada.write_headers)
        assert deleted.status_code == 204, deleted.text
        after = await pair.next_answer(token)

    assert [answer.topics for answer in member] == [["etags"], ["etags"]]
    assert not any(answer.in_front for answer in member)
    assert after.topics == []


@BOTH_BACKENDS
async def test_credentials_that_may_not_read_or_no_longer_work_are_never_answered(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    name = settings.auth.session_cookie
    async with apps(settings, database, clock) as pair:
        ada = await learner(pair, outbox)
        await import_roadmap(ada, WEB, visibility="public")
        assert (await mark(ada, "etags", "done")).status_code == 200
        reader, reader_id = await api_key(ada, ["progress:read"])
        writer, _ = await api_key(ada, ["progress:write"])
        session = {"cookie": f"{name}={ada.client.cookies[name]}"}
        kept = [await pair.next_answer(headers) for headers in (reader, reader, session, session)]
        not_allowed = [await pair.next_answer(writer) for _ in range(2)]
        revoked = await ada.client.delete(f"/v1/me/api-keys/{reader_id}", headers=ada.write_headers)
        assert revoked.status_code == 204, revoked.text
        by_revoked = await pair.refused(reader)
        signed_out = await ada.client.post("/v1/auth/logout", headers=ada.write_headers)
        assert signed_out.status_code == 204, signed_out.text
        by_ended = await pair.refused(session)

    # The page is the learner's, whichever credential made it.
    assert [answer.in_front for answer in kept] == [False, True, True, True]
    assert [a.response.status_code for a in not_allowed] == [403, 403]
    assert not any(answer.in_front for answer in not_allowed)
    assert by_revoked == (401, False)
    assert by_ended == (401, False)


@BOTH_BACKENDS
async def test_an_erased_account_leaves_nothing_kept_for_whoever_gets_its_id(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    """SQLite hands the highest id out again once its row is gone."""
    async with apps(settings, database, clock) as pair:
        ada = await learner(pair, outbox)
        await import_roadmap(ada, WEB, visibility="public")
        assert (await mark(ada, "etags", "done")).status_code == 200
        token = await bearer_headers(ada)
        kept = [await pair.next_answer(token) for _ in range(2)]
        erased = await ada.client.request("DELETE", "/v1/me", json={}, headers=ada.write_headers)
        assert erased.status_code == 204, erased.text
        by_erased = await pair.refused(token)
        cy = await learner(pair, outbox, email="cy@example.org")
        cy_token = await bearer_headers(cy)
        newcomer = [await pair.next_answer(cy_token) for _ in range(2)]

    assert [answer.topics for answer in kept] == [["etags"], ["etags"]]
    assert by_erased == (401, False)
    assert [answer.topics for answer in newcomer] == [[], []]
    assert not newcomer[0].in_front
