"""Study rooms with real WebSocket clients against a real server on loopback."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.accounts import Browser, bearer_headers, user_id
from tests.support.live import (
    ALLOWED_ORIGIN,
    LIVE_DATABASES,
    LiveServer,
    base_environment,
    join,
    live_database,
    new_org,
    person,
    running_servers,
)
from tests.support.rooms import (
    drain,
    messages,
    open_room,
    presence_change,
    receive,
    receive_until,
    say,
)

RATE = 40
REALTIME = {
    "presence_ttl_seconds": 1.5,
    "credential_check_seconds": 0.5,
    "max_message_chars": 60000,
    "rate_messages": RATE,
    "rate_window_seconds": 60,
    "send_queue": 16,
    "ticket_seconds": 5,
    "typing_interval_seconds": 0.5,
}


@pytest.fixture(scope="module", params=LIVE_DATABASES)
async def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("rooms")
    async with live_database(request.param, base_environment(workdir, **REALTIME)) as env:
        with running_servers(env, workdir) as servers:
            yield servers[0]


@pytest.fixture(scope="module")
async def people(server: LiveServer) -> AsyncIterator[dict[str, Browser]]:
    """Ada owns every organisation here, Mia mentors, Lee and Kim learn."""
    found = {name.lower(): await person(server, name) for name in ("Ada", "Mia", "Lee", "Kim")}
    yield found
    for browser in found.values():
        await browser.client.aclose()


@pytest.fixture
async def org(server: LiveServer, people: dict[str, Browser]) -> str:
    slug = await new_org(people["ada"])
    await join(people["ada"], people["mia"], server, slug, "mentor")
    await join(people["ada"], people["lee"], server, slug, "learner")
    await join(people["ada"], people["kim"], server, slug, "learner")
    return slug


async def test_a_message_reaches_everyone_in_the_room_sanitised_and_numbered(
    server: LiveServer, people: dict[str, Browser], org: str
) -> None:
    lee = await open_room(server, people["lee"], org)
    kim = await open_room(server, people["kim"], org)
    welcome = await receive_until(kim, "welcome")

    await say(lee, "  hello \u202e<b>room</b>  ", client_id="c1")
    (to_kim,) = await messages(kim, 1)
    (to_lee,) = await messages(lee, 1)

    assert welcome["room"] == "lobby"
    assert to_kim["seq"] == welcome["last_seq"] + 1
    assert to_kim["body"] == "hello <b>room</b>"
    assert to_kim["author"] == "Lee"
    assert to_lee["client_id"] == "c1"
    await lee.close()
    await kim.close()


async def test_concurrent_senders_reach_every_listener_in_one_gap_free_order(
    server: LiveServer, people: dict[str, Browser], org: str
) -> None:
    senders = [await open_room(server, people[n], org) for n in ("ada", "lee", "kim")]
    listener = await open_room(server, people["mia"], org)
    await receive_until(listener, "welcome")

    async def burst(socket: object, name: str) -> None:
        for number in range(10):
            await say(socket, f"{name}-{number}")  # type: ignore[arg-type]

    await asyncio.gather(*(burst(s, n) for s, n in zip(senders, "ALK", strict=True)))
    heard = await messages(listener, 30)
    heard_by_sender = await messages(senders[0], 30)

    seqs = [m["seq"] for m in heard]
    assert seqs == list(range(seqs[0], seqs[0] + 30))
    assert [m["seq"] for m in heard_by_sender] == seqs
    for name in "ALK":  # each sender's own messages keep their order
        own = [m["body"] for m in heard if m["body"].startswith(name)]
        assert own == [f"{name}-{n}" for n in range(10)]
    for socket in [*senders, listener]:
        await socket.close()


async def test_reconnecting_with_the_last_sequence_replays_exactly_what_was_missed(
    server: LiveServer, people: dict[str, Browser], org: str
) -> None:
    lee = await open_room(server, people["lee"], org)
    kim = await open_room(server, people["kim"], org)
    await say(lee, "before")
    (seen,) = await messages(kim, 1)
    await kim.close()
    for text in ("one", "two", "three"):
        await say(lee, text)
    await messages(lee, 4)

    back = await open_room(server, people["kim"], org, last_seq=seen["seq"])
    await receive_until(back, "welcome")
    replayed = await messages(back, 3)
    done = await receive_until(back, "replayed")
    await say(lee, "live")
    (live,) = await messages(back, 1)

    assert [m["body"] for m in replayed] == ["one", "two", "three"]
    assert [m["seq"] for m in replayed] == [seen["seq"] + 1, seen["seq"] + 2, seen["seq"] + 3]
    assert done["last_seq"] == seen["seq"] + 3
    assert (live["body"], live["seq"]) == ("live", seen["seq"] + 4)
    await lee.close()
    await back.close()


async def test_a_ticket_opens_one_socket_only(
    server: LiveServer, people: dict[str, Browser], org: str
) -> None:
    response = await people["lee"].client.post(
        f"/v1/orgs/{org}/rooms/lobby/tickets", headers=people["lee"].write_headers
    )
    url = server.url.replace("http://", "ws://") + response.json()["url"]
    from websockets.asyncio.client import connect

    first = await connect(url)
    with pytest.raises(InvalidStatus) as refused:
        await connect(url)

    assert refused.value.response.status_code == 403
    await first.close()


async def test_a_forged_ticket_is_refused(server: LiveServer) -> None:
    from websockets.asyncio.client import connect

    with pytest.raises(InvalidStatus) as refused:
        await connect(server.url.replace("http://", "ws://") + "/v1/rooms/connect?ticket=nope")

    assert refused.value.response.status_code == 403


async def test_a_foreign_origin_is_refused_and_an_allowed_one_admitted(
    server: LiveServer, people: dict[str, Browser], org: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await open_room(server, people["lee"], org, origin="https://evil.example")
    admitted = await open_room(server, people["lee"], org, origin=ALLOWED_ORIGIN)

    assert refused.value.response.status_code == 403
    assert (await receive(admitted))["type"] == "welcome"
    await admitted.close()


async def test_frames_go_uncompressed_even_to_a_client_that_offers_deflate(
    server: LiveServer, people: dict[str, Browser], org: str
) -> None:
    """Decision 0054: permessage-deflate would compress every frame once per socket."""
    socket = await open_room(server, people["lee"], org, compression="deflate")
    welcome = await receive(socket)

    assert socket.response is not None
    assert socket.response.headers.get("Sec-WebSocket-Extensions") is None
    assert welcome["type"] == "welcome"
    await socket.close()


async def test_outsiders_get_no_ticket(server: LiveServer, org: str) -> None:
    eve = await person(server, "Eve")
    response = await eve.client.post(
        f"/v1/orgs/{org}/rooms/lobby/tickets", headers=eve.write_headers
    )
    await eve.client.aclose()

    assert response.status_code == 404


async def test_typing_and_read_receipts_reach_the_others(
    server: LiveServer, people: dict[str, Browser], org: str
) -> None:
    lee_id = await user_id(people["lee"])
    lee = await open_room(server, people["lee"], org)
    kim = await open_room(server, people["kim"], org)
    await receive_until(kim, "welcome")
    await say(kim, "read me")
    (message,) = await messages(lee, 1)

    await lee.send(json.dumps({"type": "typing"}))
    typing = await receive_until(kim, "typing")
    await lee.send(json.dumps({"type": "read", "seq": message["seq"]}))
    receipt = await receive_until(kim, "read")
    later = await open_room(server, people["mia"], org)
    welcome = await receive_until(later, "welcome")

    assert typing["user_id"] == lee_id
    assert (receipt["user_id"], receipt["seq"]) == (lee_id, message["seq"])
    assert welcome["reads"][str(lee_id)] == message["seq"]
    for socket in (lee, kim, later):
        await socket.close()


async def test_presence_expires_when_heartbeats_stop(
    server: LiveServer, people: dict[str, Browser], org: str
) -> None:
    lee_id = await user_id(people["lee"])
    kim = await open_room(server, people["kim"], org)
    lee = await open_room(server, people["lee"], org)  # sends no heartbeats
    online = await presence_change(kim, lee_id, "online")

    async def keep_kim_alive() -> None:
        while True:
            await kim.send(json.dumps({"type": "heartbeat"}))
            await asyncio.sleep(0.4)

    beating = asyncio.create_task(keep_kim_alive())
    try:
        offline = await presence_change(kim, lee_id, "offline", seconds=8)
    finally:
        beating.cancel()

    assert lee_id not in online["offline"]
    assert lee_id not in offline["online"]
    await lee.close()
    await kim.close()


async def test_mentors_delete_messages_learners_may_not_and_replay_shows_it(
    server: LiveServer, people: dict[str, Browser], org: str
) -> None:
    lee = await open_room(server, people["lee"], org)
    mia = await open_room(server, people["mia"], org)
    welcome = await receive_until(mia, "welcome")
    await say(lee, "regrettable")
    (message,) = await messages(mia, 1)

    await lee.send(json.dumps({"type": "delete", "seq": message["seq"]}))
    refusal = await receive_until(lee, "error")
    await mia.send(json.dumps({"type": "delete", "seq": message["seq"]}))
    deletion = await receive_until(lee, "deletion")
    late = await open_room(server, people["kim"], org, last_seq=welcome["last_seq"])
    replayed = [await receive(late) for _ in range(3)]

    assert refusal["code"] == "role-required"
    assert deletion["target_seq"] == message["seq"]
    assert [f["type"] for f in replayed] == ["welcome", "message", "deletion"]
    assert (replayed[1]["body"], replayed[1]["deleted"]) == (None, True)
    for socket in (lee, mia, late):
        await socket.close()


async def test_a_bad_frame_gets_an_error_not_a_disconnect(
    server: LiveServer, people: dict[str, Browser], org: str
) -> None:
    lee = await open_room(server, people["lee"], org)
    await receive_until(lee, "welcome")

    replies = []
    for frame in ("not json", json.dumps({"type": "dance"}), json.dumps({"type": "message"})):
        await lee.send(frame)
        replies.append(await receive_until(lee, "error"))
    await say(lee, "x" * 60001)
    replies.append(await receive_until(lee, "error"))
    await say(lee, "still here")
    (fine,) = await messages(lee, 1)

    assert [r["code"] for r in replies] == [
        "invalid-frame",
        "invalid-frame",
        "invalid-message",
        "invalid-message",
    ]
    assert fine["body"] == "still here"
    await lee.close()


async def test_a_connection_over_its_rate_limit_is_refused_then_closed(
    server: LiveServer, people: dict[str, Browser], org: str
) -> None:
    lee = await open_room(server, people["lee"], org)
    await receive_until(lee, "welcome")

    for number in range(RATE + 1):
        await say(lee, f"spam {number}")
    refusal = await receive_until(lee, "error", seconds=30)
    for _ in range(RATE + 1):
        await say(lee, "more")
    with pytest.raises(ConnectionClosed) as closed:
        await drain(lee)

    assert refusal["code"] == "rate-limited"
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4029, "rate limit exceeded")


def flood_needed_to_fill(message_bytes: int) -> int:
    """How many messages of `message_bytes` surely fill the send queue of a client that reads
    nothing: everything the kernel can buffer between the server and it (the send buffer's
    autotuning maximum, its fixed 4 KiB receive buffer, and a generous 1 MiB for what its
    library and the server's transport read or hold ahead), then the queue and one more."""
    try:
        send_buffer = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        send_buffer = 32 * 2**20  # not Linux: assume a large one
    held = send_buffer + 2**20
    return -(-held // message_bytes) + int(REALTIME["send_queue"]) + 1


async def test_a_slow_consumer_is_closed_and_never_slows_the_room(
    server: LiveServer, people: dict[str, Browser], org: str
) -> None:
    size = 59_000
    total = flood_needed_to_fill(size)
    # Each flooder is its own connection and stays under the per-connection rate limit. Its
    # client takes the room's frames off the socket as they come (open_room's default), so
    # closing it at the end is a prompt handshake, not a wait behind megabytes unread.
    flooders = [
        await open_room(server, people["ada" if n % 2 else "lee"], org)
        for n in range(-(-total // (RATE // 2)))
    ]
    # Mia's client takes every frame off the socket as it comes (no queue limit).
    fast = await open_room(server, people["mia"], org, max_queue=None)
    await receive_until(fast, "welcome")
    # Kim's client reads nothing after the handshake, with a receive buffer of 4 KiB and no
    # compression (bytes on the wire are the bytes sent): once the buffers between it and the
    # server are full, the server's writes to it stop and its bounded send queue fills. It
    # sends no keepalive pings either: their answers would wait behind the data it never reads.
    slow = await open_room(
        server,
        people["kim"],
        org,
        max_queue=1,
        receive_buffer=4096,
        compression=None,
        ping_interval=None,
    )

    async def flood(flooder: object, numbers: range) -> None:
        for number in numbers:
            await say(flooder, f"{number} {secrets.token_urlsafe(size)[:size]}")  # type: ignore[arg-type]

    share = RATE // 2
    hearing = asyncio.create_task(messages(fast, total, seconds=120))
    await asyncio.gather(
        *(flood(f, range(i * share, min(total, (i + 1) * share))) for i, f in enumerate(flooders))
    )
    heard = await hearing
    with pytest.raises(ConnectionClosed) as closed:
        await drain(slow, seconds=60)

    numbers = [int(m["body"].partition(" ")[0]) for m in heard]
    assert sorted(numbers) == list(range(total))
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4008
    assert "slow consumer" in closed.value.rcvd.reason
    await asyncio.gather(*(socket.close() for socket in (fast, *flooders)))


async def test_a_member_who_leaves_is_closed_out(
    server: LiveServer, people: dict[str, Browser], org: str
) -> None:
    lee_id = await user_id(people["lee"])
    lee = await open_room(server, people["lee"], org)
    await receive_until(lee, "welcome")

    removed = await people["ada"].client.delete(
        f"/v1/orgs/{org}/members/{lee_id}", headers=people["ada"].write_headers
    )
    with pytest.raises(ConnectionClosed) as closed:
        await drain(lee)

    assert removed.status_code == 204
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_rooms_for_topics_are_listed_with_their_history(
    server: LiveServer, people: dict[str, Browser], org: str
) -> None:
    ada = people["ada"]
    key = f"room-{uuid.uuid4().hex[:6]}"
    created = await ada.client.post(
        f"/v1/orgs/{org}/rooms", json={"key": key, "title": "Caching"}, headers=ada.write_headers
    )
    again = await ada.client.post(
        f"/v1/orgs/{org}/rooms", json={"key": key, "title": "Again"}, headers=ada.write_headers
    )
    socket = await open_room(server, people["lee"], org, room=key)
    await say(socket, "first")
    await messages(socket, 1)
    listed = await people["kim"].client.get(f"/v1/orgs/{org}/rooms")
    log = await people["kim"].client.get(f"/v1/orgs/{org}/rooms/{key}/messages")

    assert created.status_code == 201
    assert again.status_code == 409
    assert {r["key"] for r in listed.json()["items"]} == {"lobby", key}
    assert [e["body"] for e in log.json()["items"]] == ["first"]
    await socket.close()


async def bearer_client(server: LiveServer, member: Browser) -> Browser:
    """The same person as an API client: a bearer access token of a new token family."""
    headers = await bearer_headers(member)
    return Browser(httpx.AsyncClient(base_url=server.url, timeout=10, headers=headers), "")


async def test_ending_a_sign_in_closes_the_sockets_it_opened(
    server: LiveServer, people: dict[str, Browser], org: str
) -> None:
    sam = await person(server, "Sam")
    await join(people["ada"], sam, server, org, "learner")
    api = await bearer_client(server, sam)
    in_browser = await open_room(server, sam, org)
    by_token = await open_room(server, api, org)
    await receive_until(in_browser, "welcome")
    await receive_until(by_token, "welcome")

    signed_out = await sam.client.post("/v1/auth/logout", headers=sam.write_headers)
    with pytest.raises(ConnectionClosed) as browser_closed:
        await drain(in_browser, seconds=10)
    # The token's socket is another sign-in: it stays open until the token is revoked.
    await say(by_token, "still here")
    (still,) = await messages(by_token, 1)
    revoked = await api.client.post("/v1/auth/logout")
    with pytest.raises(ConnectionClosed) as token_closed:
        await drain(by_token, seconds=10)

    assert signed_out.status_code == 204
    assert browser_closed.value.rcvd is not None
    assert (browser_closed.value.rcvd.code, browser_closed.value.rcvd.reason) == (
        4401,
        "signed out",
    )
    assert still["body"] == "still here"
    assert revoked.status_code == 204
    assert token_closed.value.rcvd is not None
    assert token_closed.value.rcvd.code == 4401
    await api.client.aclose()
    await sam.client.aclose()
