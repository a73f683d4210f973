"""A signed-in learner's roadmap and topic pages are answered in front of the application
(decision 0083) exactly as the full stack answers them, and only while nothing they show has
changed: each request is sent to an app with the fast path and to one without it, over one
database and one Redis (or none), and the responses and access-log lines must be the same but
for the request id; then every change a page shows must show on the very next request."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from skilltree.accounts.context import Account, SignedIn
from skilltree.accounts.sessions import SessionRecord
from skilltree.app import create_app
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import LogSettings, RedisSettings, Settings
from skilltree.platform.db import Database
from skilltree.platform.http import conditional
from skilltree.platform.observability.logging import configure_logging
from skilltree.progress import service as progress
from skilltree.roadmaps.read_models import RoadmapRef
from skilltree.web import ready_pages
from tests.support.accounts import Browser, bearer_headers, register_and_verify, sign_in, user_id
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

PAGE = "/roadmaps/web"
TOPIC = "/roadmaps/web/topics/indexes"
PRIVATE_PAGE = "/roadmaps/notes"
PRIVATE = {"slug": "notes", "title": "Notes", "topics": [{"slug": "one", "title": "One"}]}
HTML = {"accept": "text/html"}


@pytest.fixture
def settings(settings: Settings, shared_state: RedisSettings) -> Settings:
    return production_shape(settings, shared_state)


async def learner_of(client: httpx.AsyncClient, outbox: Path) -> Browser:
    await register_and_verify(client, outbox)
    browser = await sign_in(client)
    await import_roadmap(browser, WEB, visibility="public")
    await import_roadmap(browser, PRIVATE)
    assert (await mark(browser, "indexes", "done")).status_code == 200
    return browser


def cookie(settings: Settings, browser: Browser) -> dict[str, str]:
    name = settings.auth.session_cookie
    return {"cookie": f"{name}={browser.client.cookies[name]}"}


def cases_for(
    session: dict[str, str], token: dict[str, str], etags: tuple[str, str], name: str
) -> list[tuple[str, str, dict[str, str], int, bool]]:
    """(method, path, headers, status, answered in front)."""
    etag, topic_etag = etags
    return [
        ("GET", PAGE, session, 200, True),
        ("GET", PAGE, {**session, **HTML}, 200, True),
        ("GET", PAGE, {**session, "accept-encoding": "br"}, 200, True),
        ("GET", PAGE, {**session, "accept-encoding": "gzip"}, 200, True),
        ("GET", PAGE, {**session, "accept-encoding": "identity"}, 200, True),
        ("GET", PAGE, {**session, "if-none-match": etag}, 304, True),
        ("GET", PAGE, {**session, "if-none-match": etag[:-1] + '-br"'}, 304, True),
        ("GET", PAGE, {**session, "if-none-match": '"another"'}, 200, True),
        ("GET", PAGE, {**session, "origin": "http://test"}, 200, True),
        ("GET", PAGE, {"cookie": f"theme=dark; {session['cookie']}"}, 200, True),
        # Pages know callers by their cookie alone: with a bearer credential, the stack decides.
        ("GET", PAGE, {**session, **token}, 200, False),
        ("GET", PAGE, {"cookie": f"{name}=not-a-session", **HTML}, 200, False),  # anonymous
        ("GET", PAGE, HTML, 200, False),
        ("GET", PAGE + "?left=true", session, 200, False),
        ("GET", PAGE + "?imported=1", session, 200, False),
        ("GET", PRIVATE_PAGE, session, 200, False),  # kept for no one: access needs a statement
        ("GET", "/roadmaps/nothing-here", session, 404, False),  # problem+json
        ("HEAD", PAGE, session, 200, False),
        ("GET", TOPIC, session, 200, True),
        ("GET", TOPIC, {**session, "accept-encoding": "br"}, 200, True),
        ("GET", TOPIC, {**session, "if-none-match": topic_etag}, 304, True),
        ("GET", TOPIC, {**session, **token}, 200, False),
        ("GET", TOPIC, HTML, 200, False),
        ("GET", TOPIC + "?view=all", session, 200, False),
        ("GET", "/roadmaps/notes/topics/one", session, 200, False),
        ("GET", "/roadmaps/web/topics/nothing-here", session, 404, False),
    ]


@BOTH_BACKENDS
async def test_a_learners_pages_are_answered_in_front_as_the_full_stack_answers_them(
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    outbox: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(LogSettings(level="INFO", format="json"))
    async with (
        two_apps(settings, database, clock) as (fast_app, ordinary_app),
        client_of(fast_app) as browser_client,
        client_of(fast_app) as fast,
        client_of(ordinary_app) as ordinary,
    ):
        browser = await learner_of(browser_client, outbox)
        session = cookie(settings, browser)
        token = await bearer_headers(browser)
        for client in (fast, ordinary):
            for path in (PAGE, PRIVATE_PAGE, TOPIC):  # what each app keeps
                assert (await client.get(path, headers=session)).status_code == 200
        identity = {**session, "accept-encoding": "identity"}
        etags = [(await fast.get(path, headers=identity)).headers["etag"] for path in (PAGE, TOPIC)]
        cases = cases_for(session, token, (etags[0], etags[1]), settings.auth.session_cookie)
        answered_before = fast_path_of(fast_app).answered
        await asyncio.sleep(0)  # the access log writes a loop turn's lines at the next
        capsys.readouterr()
        by_fast_path = [await fast.request(m, path, headers=h) for m, path, h, *_ in cases]
        await asyncio.sleep(0)
        fast_log = capsys.readouterr().out
        answered = fast_path_of(fast_app).answered - answered_before
        by_stack = [await ordinary.request(m, path, headers=h) for m, path, h, *_ in cases]
        await asyncio.sleep(0)
        ordinary_log = capsys.readouterr().out

    assert [comparable(r) for r in by_fast_path] == [comparable(r) for r in by_stack]
    assert access_lines(fast_log) == access_lines(ordinary_log)
    assert [r.status_code for r in by_fast_path] == [case[3] for case in cases]
    assert answered == sum(case[4] for case in cases)
    page = by_fast_path[0]
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["vary"] == "Cookie, Accept-Encoding, Origin"
    assert page.headers["content-security-policy"].startswith("default-src 'none'; script-src")
    assert page.headers["referrer-policy"] == "same-origin"
    assert by_fast_path[2].headers["content-encoding"] == "br"
    assert by_fast_path[5].headers["vary"] == "Cookie, Accept-Encoding, Origin"  # the 304's too
    assert browser.csrf_token in page.text
    assert 'class="who">Ada<' in page.text
    topic = by_fast_path[18]
    assert topic.headers["content-security-policy"] == page.headers["content-security-policy"]
    assert "<h1>Indexes</h1>" in topic.text
    assert by_fast_path[19].headers["content-encoding"] == "br"


def statuses(page: str) -> dict[str, str]:
    """Each topic's status on a roadmap page, by slug."""
    found = re.findall(r'id="t-([a-z0-9-]+)" data-slug="[a-z0-9-]+" data-status="([a-z_]*)"', page)
    return dict(found)


def title(page: str) -> str:
    found = re.search(r"<h1>([^<]*)</h1>", page)
    assert found is not None
    return found.group(1)


def who(page: str) -> str | None:
    """The name the page's header shows, None when it shows no one signed in."""
    found = re.search(r'class="who">([^<]*)<', page)
    return None if found is None else found.group(1)


class Viewer:
    """Views a page with a session's cookie, counting the views answered in front."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient, session: dict[str, str]) -> None:
        self.fast_path = fast_path_of(app)
        self.client = client
        self.session = session

    async def view(self, path: str = PAGE) -> tuple[httpx.Response, bool]:
        """The page, and whether it was answered in front."""
        before = self.fast_path.answered
        response = await self.client.get(path, headers={**self.session, **HTML})
        return response, self.fast_path.answered > before

    async def ready(self, path: str = PAGE) -> str:
        """The page once it is answered in front: the state before a change."""
        await self.view(path)
        response, in_front = await self.view(path)
        assert response.status_code == 200, response.text
        assert in_front
        return response.text


@BOTH_BACKENDS
async def test_every_change_the_page_shows_shows_on_the_very_next_request(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    app = create_app(settings, database=database, clock=clock)
    async with serving(app) as client, client_of(app) as other, client_of(app) as pages:
        ada = await learner_of(client, outbox)
        await register_and_verify(other, outbox, email="bob@example.org", name="Bob")
        bob = await sign_in(other, email="bob@example.org")
        viewer = Viewer(app, pages, cookie(settings, ada))
        bobs = Viewer(app, pages, cookie(settings, bob))

        # A status set through the page's own form.
        assert statuses(await viewer.ready())["status-codes"] == "todo"
        posted = await client.post(
            "/roadmaps/web/topics/status-codes/status",
            data={"status": "in_progress", "csrf_token": ada.csrf_token},
            headers={"origin": "http://test"},
        )
        assert posted.status_code == 303, posted.text
        by_form, _ = await viewer.view()

        # A status set through the API.
        await viewer.ready()
        assert (await mark(ada, "status-codes", "done")).status_code == 200
        by_api, _ = await viewer.view()

        # The account's name.
        await viewer.ready()
        renamed = await client.patch(
            "/v1/me/profile", json={"display_name": "Ada L."}, headers=ada.write_headers
        )
        assert renamed.status_code == 200, renamed.text
        by_name, _ = await viewer.view()

        # An edit of the roadmap, seen by another learner too.
        await viewer.ready()
        await bobs.ready()
        etag = (await client.get("/v1/roadmaps/web")).headers["etag"]
        edited = await client.patch(
            "/v1/roadmaps/web",
            json={"title": "The Web"},
            headers={"if-match": etag, **ada.write_headers},
        )
        assert edited.status_code == 200, edited.text
        by_edit, _ = await viewer.view()
        bobs_edit, _ = await bobs.view()

        # Signed out: the next request is a visitor's page.
        await bobs.ready()
        signed_out = await other.post("/v1/auth/logout", headers=bob.write_headers)
        assert signed_out.status_code == 204, signed_out.text
        ended, ended_in_front = await bobs.view()

        # The roadmap made private: another learner no longer sees it, its owner does.
        bob = await sign_in(other, email="bob@example.org")
        bobs = Viewer(app, pages, cookie(settings, bob))
        await bobs.ready()
        await viewer.ready()
        etag = (await client.get("/v1/roadmaps/web")).headers["etag"]
        private = await client.patch(
            "/v1/roadmaps/web",
            json={"visibility": "private"},
            headers={"if-match": etag, **ada.write_headers},
        )
        assert private.status_code == 200, private.text
        bobs_private, _ = await bobs.view()
        owners_private, owners_in_front = await viewer.view()
        again, again_in_front = await viewer.view()

    assert statuses(by_form.text)["status-codes"] == "in_progress"
    assert statuses(by_api.text)["status-codes"] == "done"
    assert who(by_name.text) == "Ada L."
    assert title(by_edit.text) == title(bobs_edit.text) == "The Web"
    assert ended.status_code == 200
    assert who(ended.text) is None
    assert 'href="/sign-in"' in ended.text
    assert not ended_in_front
    assert bobs_private.status_code == 404
    assert owners_private.status_code == again.status_code == 200
    assert not owners_in_front
    assert not again_in_front


@BOTH_BACKENDS
async def test_a_page_is_answered_in_front_only_while_its_session_needs_no_write(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    """A kept session is used as it is until its idle expiry is due to slide (a write, once a
    minute of use): that request goes down the stack, which sends the same page; the next one
    is answered in front again."""
    app = create_app(settings, database=database, clock=clock)
    async with serving(app) as client, client_of(app) as pages:
        ada = await learner_of(client, outbox)
        viewer = Viewer(app, pages, cookie(settings, ada))
        page = await viewer.ready()
        clock.advance(minutes=2)
        sliding, sliding_in_front = await viewer.view()
        slid, slid_in_front = await viewer.view()

    assert sliding.text == slid.text == page
    assert not sliding_in_front
    assert slid_in_front


@BOTH_BACKENDS
async def test_an_organisations_roadmap_page_is_never_answered_in_front(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    """Who may edit an organisation's roadmap, and see it, changes with a membership, which
    marks neither the roadmap nor the learner stale."""
    app = create_app(settings, database=database, clock=clock)
    async with serving(app) as owner_client, client_of(app) as member_client:
        await register_and_verify(owner_client, outbox)
        ada = await sign_in(owner_client)
        await create_org(ada)
        await register_and_verify(member_client, outbox, email="bob@example.org", name="Bob")
        bob = await sign_in(member_client, email="bob@example.org")
        await invite_and_join(ada, bob, outbox, "mentor", "bob@example.org")
        shared = await owner_client.post(
            "/v1/roadmaps/import",
            json=WEB,
            params={"visibility": "organisation", "org": "cohort-7"},
            headers=ada.write_headers,
        )
        assert shared.status_code == 201, shared.text
        viewer = Viewer(app, member_client, cookie(settings, bob))
        mentor = [await viewer.view() for _ in range(2)]
        bob_id = await user_id(bob)
        demoted = await owner_client.put(
            f"/v1/orgs/cohort-7/members/{bob_id}/role",
            json={"role": "learner"},
            headers=ada.write_headers,
        )
        assert demoted.status_code == 204, demoted.text
        learner, learner_in_front = await viewer.view()

    assert [in_front for _, in_front in mentor] == [False, False]
    assert "Edit this roadmap" in mentor[1][0].text
    assert learner.status_code == 200
    assert "Edit this roadmap" not in learner.text
    assert not learner_in_front


@BOTH_BACKENDS
async def test_each_session_is_sent_its_own_page(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    """A page's forms carry its session's CSRF token: two sessions of one learner are two
    pages."""
    app = create_app(settings, database=database, clock=clock)
    async with serving(app) as client, client_of(app) as second, client_of(app) as pages:
        first = await learner_of(client, outbox)
        other = await sign_in(second)
        first_page = await Viewer(app, pages, cookie(settings, first)).ready()
        other_page = await Viewer(app, pages, cookie(settings, other)).ready()

    assert first.csrf_token != other.csrf_token
    assert first.csrf_token in first_page
    assert other.csrf_token not in first_page
    assert other.csrf_token in other_page
    assert first.csrf_token not in other_page


def test_a_page_is_kept_by_the_session_and_the_name_it_shows() -> None:
    """A request that found its caller before a rename committed, and renders once the rename
    made its namespaces new, keeps the old name's page where no later request looks."""
    current = signed_in(display_name="Ada", token_hash="a" * 64)

    key = ready_pages.page_key("web", current)

    assert key is not None
    assert key != ready_pages.page_key("web", replace(current, user=renamed(current, "Ada L.")))
    other_session = signed_in(display_name="Ada", token_hash="b" * 64)
    assert key != ready_pages.page_key("web", other_session)
    assert key.namespaces == progress.cache_namespaces(current.user.id, "web")
    assert ready_pages.page_key("web", replace(current, browser_session=None)) is None


def test_only_a_public_roadmap_of_no_organisation_is_kept() -> None:
    """An organisation's editors change with its memberships, which mark nothing stale."""
    at = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    public = RoadmapRef(1, "web", "Web", "", "import", 1, "public", 7, None, at)

    assert ready_pages.keepable(public)
    assert not ready_pages.keepable(replace(public, org_id=3))
    assert not ready_pages.keepable(replace(public, visibility="private"))
    assert not ready_pages.keepable(replace(public, visibility="organisation", org_id=3))


def signed_in(display_name: str, token_hash: str) -> SignedIn:
    at = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    account = Account(7, "ada@example.org", display_name, True, False, False, at)
    session = SessionRecord(1, 7, token_hash, "csrf", at, at, at, at, "test", "127.0.0.1")
    return SignedIn(account, session)


def renamed(current: SignedIn, display_name: str) -> Account:
    return replace(current.user, display_name=display_name)


# A page, what an edit changes on it, and the title the edit gives the page.
EDITS = {
    "roadmap page": (PAGE, "/v1/roadmaps/web", "The Web"),
    "topic page": (TOPIC, "/v1/roadmaps/web/topics/indexes", "B-tree indexes"),
}


@BOTH_BACKENDS
@pytest.mark.parametrize(("path", "edited_path", "new_title"), EDITS.values(), ids=EDITS.keys())
async def test_an_edit_committed_while_a_page_is_being_found_shows_on_the_next_view(
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    outbox: Path,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    edited_path: str,
    new_title: str,
) -> None:
    """The page reads the roadmap before the cache reads its namespaces' tokens: an edit that
    commits in between must not leave the old roadmap's page under the new tokens."""
    app = create_app(settings, database=database, clock=clock)
    async with serving(app) as client, client_of(app) as pages:
        ada = await learner_of(client, outbox)
        viewer = Viewer(app, pages, cookie(settings, ada))
        await viewer.ready(path)  # the roadmap's tree as it is, kept by its version
        assert (await mark(ada, "status-codes", "done")).status_code == 200
        etag = (await client.get(edited_path)).headers["etag"]
        fetch = ready_pages.fetch

        async def edited_meanwhile(*args: Any) -> conditional.Representation:
            monkeypatch.setattr(ready_pages, "fetch", fetch)
            edited = await client.patch(
                edited_path,
                json={"title": new_title},
                headers={"if-match": etag, **ada.write_headers},
            )
            assert edited.status_code == 200, edited.text
            return await fetch(*args)

        monkeypatch.setattr(ready_pages, "fetch", edited_meanwhile)
        await viewer.view(path)
        after = await viewer.ready(path)

    assert title(after) == new_title


def test_kept_pages_stay_within_their_bytes_once_prepared() -> None:
    """A page the fast path prepared holds its body twice and its codings: counted, so the
    least recently used page goes to make room."""
    kept = ready_pages.KeptPages(max_bytes=25_000)
    first, second = (
        ready_pages.representation_of(f"<p>{n}</p>".encode() + bytes(range(256)) * 39)
        for n in (1, 2)
    )
    kept.keep(first)
    kept.keep(second)
    assert kept.representation(first.etag) == first
    assert kept.representation(second.etag) == second

    assert kept.prepared(first.etag, minimum_size=1024) is not None

    assert kept.representation(first.etag) == first
    assert kept.representation(second.etag) is None


def note_of(page: str) -> str | None:
    found = re.search(r"<div class=\"note-html\" data-note-saved>(.*?)</div>", page, re.S)
    return None if found is None else found.group(1).strip()


def links_of(page: str) -> list[str]:
    return re.findall(r'rel="noopener noreferrer nofollow">([^<]*)</a>', page)


def topic_status(page: str) -> str:
    found = re.search(r'<header class="topic-head" [^>]* data-status="([a-z_]*)"', page)
    assert found is not None
    return found.group(1)


@BOTH_BACKENDS
async def test_every_change_a_topic_page_shows_shows_on_the_very_next_request(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    app = create_app(settings, database=database, clock=clock)
    async with serving(app) as client, client_of(app) as pages:
        ada = await learner_of(client, outbox)
        viewer = Viewer(app, pages, cookie(settings, ada))
        form = {"origin": "http://test"}

        # A note saved through the page's form.
        assert note_of(await viewer.ready(TOPIC)) is None
        saved = await client.post(
            f"{TOPIC}/note",
            data={"markdown": "Covering **indexes**", "csrf_token": ada.csrf_token},
            headers=form,
        )
        assert saved.status_code == 303, saved.text
        by_note, _ = await viewer.view(TOPIC)

        # A link kept through the page's form, then deleted through the API.
        await viewer.ready(TOPIC)
        added = await client.post(
            f"{TOPIC}/resources",
            data={
                "title": "Use the index",
                "url": "https://use-the-index.example/",
                "csrf_token": ada.csrf_token,
            },
            headers=form,
        )
        assert added.status_code == 303, added.text
        by_link, _ = await viewer.view(TOPIC)
        await viewer.ready(TOPIC)
        kept = await client.get("/v1/me/progress/web/indexes/resources")
        deleted = await client.delete(
            f"/v1/me/progress/web/indexes/resources/{kept.json()['items'][0]['id']}",
            headers=ada.write_headers,
        )
        assert deleted.status_code == 204, deleted.text
        by_deletion, _ = await viewer.view(TOPIC)

        # A status set through the API, with its line in the history.
        await viewer.ready(TOPIC)
        assert (await mark(ada, "indexes", "in_progress")).status_code == 200
        by_status, _ = await viewer.view(TOPIC)

        # An edit of the topic.
        await viewer.ready(TOPIC)
        etag = (await client.get("/v1/roadmaps/web/topics/indexes")).headers["etag"]
        edited = await client.patch(
            "/v1/roadmaps/web/topics/indexes",
            json={"title": "B-tree indexes"},
            headers={"if-match": etag, **ada.write_headers},
        )
        assert edited.status_code == 200, edited.text
        by_edit, _ = await viewer.view(TOPIC)

        # The account's name.
        await viewer.ready(TOPIC)
        renamed = await client.patch(
            "/v1/me/profile", json={"display_name": "Ada L."}, headers=ada.write_headers
        )
        assert renamed.status_code == 200, renamed.text
        by_name, _ = await viewer.view(TOPIC)

    assert note_of(by_note.text) == "<p>Covering <strong>indexes</strong></p>"
    assert links_of(by_link.text) == ["Use the index"]
    assert links_of(by_deletion.text) == []
    assert topic_status(by_status.text) == "in_progress"
    assert "Done → In progress" in by_status.text
    assert title(by_edit.text) == "B-tree indexes"
    assert who(by_name.text) == "Ada L."
