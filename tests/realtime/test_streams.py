"""Server-sent event streams against a real server on loopback, read as EventSource reads them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from tests.support.accounts import PASSWORD, Browser, bearer_headers, user_id
from tests.support.live import (
    LIVE_DATABASES,
    LiveServer,
    base_environment,
    join,
    live_database,
    new_org,
    person,
    running_servers,
)
from tests.support.progress import WEB, import_roadmap, mark
from tests.support.sse import ServerEvent, events, next_event

REALTIME = {
    "heartbeat_seconds": 0.3,
    "credential_check_seconds": 0.3,
    "stream_max_seconds": 4,
    "history_size": 5,
    "retry_ms": 1500,
}


@pytest.fixture(scope="module", params=LIVE_DATABASES)
async def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("live")
    async with live_database(request.param, base_environment(workdir, **REALTIME)) as env:
        with running_servers(env, workdir) as servers:
            yield servers[0]


@pytest.fixture(scope="module")
async def ada(server: LiveServer) -> AsyncIterator[Browser]:
    """The owner of every organisation in this module (signing up costs two argon2id hashes
    at production strength, so the same people serve every test)."""
    owner = await person(server, "Ada")
    yield owner
    await owner.client.aclose()


@pytest.fixture(scope="module")
async def lee(server: LiveServer) -> AsyncIterator[Browser]:
    learner = await person(server, "Lee")
    yield learner
    await learner.client.aclose()


@asynccontextmanager
async def open_stream(
    person: Browser, path: str, last_event_id: str | None = None
) -> AsyncIterator[tuple[httpx.Response, AsyncIterator[ServerEvent]]]:
    headers = {"last-event-id": last_event_id} if last_event_id else {}
    async with person.client.stream("GET", path, headers=headers, timeout=20) as response:
        yield response, events(response)


@pytest.fixture
async def cohort(server: LiveServer, ada: Browser, lee: Browser) -> tuple[str, Browser, Browser]:
    """A new organisation with Lee as a learner; Ada owns it and imported a public roadmap
    named after it (web-<org>)."""
    owner, learner = ada, lee
    org = await new_org(owner)
    await join(owner, learner, server, org, "learner")
    await import_roadmap(owner, {**WEB, "slug": f"web-{org}"}, visibility="public")
    return org, owner, learner


async def test_the_feed_stream_sends_what_members_do_with_ids_and_a_retry_hint(
    cohort: tuple[str, Browser, Browser],
) -> None:
    org, owner, learner = cohort
    async with open_stream(owner, f"/v1/orgs/{org}/feed/stream") as (response, stream):
        opening = await next_event(stream)
        await mark(learner, "indexes", "done", roadmap=f"web-{org}")
        event = await next_event(stream)

    assert response.headers["content-type"].startswith("text/event-stream")
    assert opening.retry == 1500
    assert event.event == "feed"
    assert event.id
    assert event.json["kind"] == "topic.done"
    assert event.json["data"]["topic"] == "indexes"


async def test_a_quiet_stream_sends_heartbeats(cohort: tuple[str, Browser, Browser]) -> None:
    org, owner, _learner = cohort
    async with open_stream(owner, f"/v1/orgs/{org}/feed/stream") as (_response, stream):
        await next_event(stream)
        heartbeat = await next_event(stream, skip_comments=False, seconds=3)

    assert heartbeat.event == "comment"


async def test_last_event_id_resumes_with_exactly_what_was_missed(
    cohort: tuple[str, Browser, Browser],
) -> None:
    org, owner, learner = cohort
    roadmap = f"web-{org}"
    async with open_stream(owner, f"/v1/orgs/{org}/feed/stream") as (_response, stream):
        await next_event(stream)
        await mark(learner, "status-codes", "done", roadmap=roadmap)
        seen = await next_event(stream)
    for topic in ("etags", "cache-control"):
        await mark(learner, topic, "done", roadmap=roadmap)

    async with open_stream(owner, f"/v1/orgs/{org}/feed/stream", seen.id) as (_r, stream):
        await next_event(stream)
        missed = [await next_event(stream) for _ in range(3)]
        await mark(learner, "indexes", "done", roadmap=roadmap)
        live = await next_event(stream)

    described = [(e.json["kind"], e.json["data"].get("topic")) for e in missed]
    assert described == [
        ("topic.done", "etags"),
        ("topic.done", "cache-control"),
        ("section.finished", None),
    ]
    assert live.json["data"]["topic"] == "indexes"
    ids = [seen.id, *(e.id for e in missed), live.id]
    assert len(set(ids)) == 5


@pytest.mark.parametrize("last_event_id", ["999999999-0", "not-an-id"])
async def test_a_last_event_id_the_history_does_not_reach_gets_a_reset(
    cohort: tuple[str, Browser, Browser], last_event_id: str
) -> None:
    org, owner, _learner = cohort

    async with open_stream(owner, f"/v1/orgs/{org}/feed/stream", last_event_id) as (_r, stream):
        await next_event(stream)
        reset = await next_event(stream)

    assert reset.event == "reset"


async def test_the_stream_ends_at_its_maximum_lifetime_asking_to_reconnect(
    cohort: tuple[str, Browser, Browser],
) -> None:
    org, owner, _learner = cohort
    async with open_stream(owner, f"/v1/orgs/{org}/feed/stream") as (_response, stream):
        await next_event(stream)
        closing = await next_event(stream, seconds=10)
        with pytest.raises(AssertionError, match="the stream ended"):
            await next_event(stream, seconds=5)

    assert closing.event == "close"
    assert "lifetime" in closing.json["reason"]


async def test_signing_out_ends_the_stream(server: LiveServer) -> None:
    mia = await person(server, "Mia")
    org = await new_org(mia)
    try:
        async with open_stream(mia, f"/v1/orgs/{org}/feed/stream") as (_response, stream):
            await next_event(stream)
            signed_out = await mia.client.post("/v1/auth/logout", headers=mia.write_headers)
            closing = await next_event(stream, seconds=5)
    finally:
        await mia.client.aclose()

    assert signed_out.status_code == 204
    assert closing.event == "close"
    assert closing.json["reason"] == "signed out"


async def test_revoking_a_token_ends_the_streams_it_opened(server: LiveServer) -> None:
    kai = await person(server, "Kai")
    org = await new_org(kai)
    api = httpx.AsyncClient(base_url=server.url, headers=await bearer_headers(kai), timeout=20)
    try:
        async with (
            api.stream("GET", "/v1/me/stream") as mine,
            api.stream("GET", f"/v1/orgs/{org}/feed/stream") as feed,
        ):
            own, cohort = events(mine), events(feed)
            await next_event(own)
            await next_event(cohort)
            revoked = await api.post("/v1/auth/logout")
            closings = [await next_event(own, seconds=5), await next_event(cohort, seconds=5)]
        # The browser session is another sign-in: it still works.
        me = await kai.client.get("/v1/me")
    finally:
        await api.aclose()
        await kai.client.aclose()

    assert revoked.status_code == 204
    assert [(c.event, c.json["reason"]) for c in closings] == [("close", "signed out")] * 2
    assert me.status_code == 200


async def test_leaving_the_organisation_ends_its_stream(
    cohort: tuple[str, Browser, Browser],
) -> None:
    org, _owner, learner = cohort
    me = await user_id(learner)
    async with open_stream(learner, f"/v1/orgs/{org}/feed/stream") as (_response, stream):
        await next_event(stream)
        left = await learner.client.delete(
            f"/v1/orgs/{org}/members/{me}", headers=learner.write_headers
        )
        closing = await next_event(stream, seconds=5)

    assert left.status_code == 204
    assert closing.json["reason"] == "signed out"


async def test_the_personal_stream_hears_about_an_assignment(
    cohort: tuple[str, Browser, Browser],
) -> None:
    org, owner, learner = cohort
    async with open_stream(learner, "/v1/me/stream") as (_response, stream):
        await next_event(stream)
        assigned = await owner.client.post(
            f"/v1/orgs/{org}/assignments",
            json={"roadmap": f"web-{org}"},
            headers=owner.write_headers,
        )
        notice = await next_event(stream)

    assert assigned.status_code == 201
    assert notice.event == "notice"
    assert notice.json["kind"] == "assignment.assigned"
    assert notice.json["data"]["roadmap"] == f"web-{org}"


async def test_the_personal_stream_hears_about_an_invitation_and_a_finished_import(
    server: LiveServer, ada: Browser, lee: Browser
) -> None:
    org = await new_org(ada)
    async with open_stream(lee, "/v1/me/stream") as (_response, stream):
        await next_event(stream)
        invited = await ada.client.post(
            f"/v1/orgs/{org}/invitations",
            json={"email": lee.client.headers["x-test-email"], "role": "mentor"},
            headers=ada.write_headers,
        )
        invitation = await next_event(stream)
        await import_roadmap(lee, {**WEB, "slug": f"mine-{org}"})
        imported = await next_event(stream)

    assert invited.status_code == 201
    assert (invitation.event, invitation.json["kind"]) == ("notice", "invitation.received")
    assert invitation.json["data"] == {"org": org, "role": "mentor"}
    assert imported.json["kind"] == "import.finished"
    assert imported.json["data"]["roadmap"] == f"mine-{org}"
    assert imported.json["data"]["created"] is True
    assert imported.json["data"]["added"] == imported.json["data"]["topic_count"] > 0


async def test_deleting_the_account_ends_its_streams(server: LiveServer) -> None:
    dee = await person(server, "Dee")
    try:
        async with open_stream(dee, "/v1/me/stream") as (_response, stream):
            await next_event(stream)
            deleted = await dee.client.request(
                "DELETE", "/v1/me", json={"password": PASSWORD}, headers=dee.write_headers
            )
            closing = await next_event(stream, seconds=5)
    finally:
        await dee.client.aclose()

    assert deleted.status_code == 204, deleted.text
    assert closing.event == "close"
    assert closing.json["reason"] == "signed out"
