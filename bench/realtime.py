"""How many idle WebSocket connections and SSE streams one worker holds, what each costs in
memory (against a bare ASGI app under the same uvicorn, in the same run), and how long a chat
message takes to reach every member of a 1,000-member room spread over two instances.

    .venv/bin/python -m bench.realtime idle --connections 10000
    .venv/bin/python -m bench.realtime fanout --members 1000 --messages 50   # needs Redis

Goals: 10,000 of each in one process, under 1 GB in all; fan-out p99 under 100 ms on loopback.
Every loop is bounded in count and in time (`--seconds`); the file descriptor limit is raised
to its hard maximum first (servers started here inherit it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import resource
import secrets
import sqlite3
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.servers import BIN, Server, serve, wait_until_idle
from skilltree.platform.config import HttpSettings

SKILLTREE_APP = "skilltree.app:create_app_from_environment"
BARE_APP = "bench.realtime:bare_app"
REDIS_URL = os.environ.get("SKILLTREE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
EMAIL = "bench@example.org"
PASSWORD = "correct horse battery staple 42"  # noqa: S105  (a throwaway account)
CONCURRENCY = 100
# The server's default presence TTL is 30 s; clients beat every third of it (`welcome`).
HEARTBEAT_SECONDS = 10.0


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The baseline: accepts a WebSocket or starts an event stream and holds it, nothing else."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    if scope["path"] != "/sse":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b": open\n\n", "more_body": True})
    while (await receive())["type"] != "http.disconnect":
        pass


def raise_file_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@contextmanager
def installation(extra: dict[str, str] | None = None) -> Iterator[dict[str, str]]:
    """A migrated SQLite installation with one verified account; yields the environment."""
    with tempfile.TemporaryDirectory() as workdir:
        env = {
            "SKILLTREE_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/bench.db",
            "SKILLTREE_MAIL_OUTBOX_DIR": f"{workdir}/outbox",
            "SKILLTREE_RATE_LIMIT_ENABLED": "false",
            "SKILLTREE_LOG_ACCESS_LOG": "false",
            "SKILLTREE_LOG_LEVEL": "WARNING",
            "SKILLTREE_REALTIME_RATE_MESSAGES": "10000",
            "SKILLTREE_REALTIME_SEND_QUEUE": "4096",
            **(extra or {}),
        }
        full = os.environ | env
        subprocess.run(
            [str(BIN / "skilltree"), "migrate", "upgrade"],
            env=full,
            check=True,
            capture_output=True,
        )
        password_file = Path(workdir) / "password"
        password_file.write_text(PASSWORD)
        subprocess.run(
            [
                str(BIN / "skilltree"),
                "user",
                "create",
                EMAIL,
                "--name",
                "Bench",
                "--password-file",
                str(password_file),
            ],
            env=full,
            check=True,
            capture_output=True,
        )
        yield env


async def sign_in(server: Server) -> tuple[httpx.AsyncClient, str]:
    """A bearer client and a new organisation (its lobby is the room of the run)."""
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as anonymous:
        token = (
            await anonymous.post("/v1/auth/token", json={"email": EMAIL, "password": PASSWORD})
        ).json()
    client = httpx.AsyncClient(
        base_url=server.base,
        timeout=30,
        headers={"authorization": f"Bearer {token['access_token']}"},
    )
    org = f"bench-{uuid.uuid4().hex[:6]}"
    (await client.post("/v1/orgs", json={"slug": org, "name": org})).raise_for_status()
    (await client.post(f"/v1/orgs/{org}/rooms/lobby/tickets")).raise_for_status()
    return client, org


def mint_tickets(env: dict[str, str], count: int, room_size: int | None = None) -> list[str]:
    """Tickets written straight into the database: the benchmark measures holding sockets,
    not issuing tickets (one authenticated POST each, measured by `make bench`'s writes).
    With `room_size`, the sockets are spread over rooms of that many members (rooms copied
    from the first ticket's, in the same organisation); else all are in that one room."""
    path = env["SKILLTREE_DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")
    database = sqlite3.connect(path)
    with database:
        # The sign-in the first ticket was issued with (a bearer token family): every socket
        # re-checks it, as a socket opened with a ticket from the API would.
        user_id, room_id, credential = database.execute(
            "SELECT user_id, room_id, credential FROM room_tickets LIMIT 1"
        ).fetchone()
        rooms = [room_id]
        if room_size is not None:
            for number in range(1, -(-count // room_size)):
                cursor = database.execute(
                    "INSERT INTO rooms (org_id, key, title, created_by, created_at, last_seq)"
                    " SELECT org_id, ?, ?, created_by, created_at, 0 FROM rooms WHERE id = ?",
                    (f"bench-{number}", f"Bench {number}", room_id),
                )
                rooms.append(cursor.lastrowid)
        expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        secrets_ = [secrets.token_urlsafe(32) for _ in range(count)]
        database.executemany(
            "INSERT INTO room_tickets (ticket_hash, user_id, room_id, expires_at, credential)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (
                    hashlib.sha256(s.encode()).hexdigest(),
                    user_id,
                    rooms[index // room_size] if room_size else room_id,
                    expires,
                    credential,
                )
                for index, s in enumerate(secrets_)
            ],
        )
    database.close()
    return secrets_


async def bounded(
    count: int, seconds: float, open_one: Callable[[int], Awaitable[Any]]
) -> list[Any]:
    """Open up to `count` connections, CONCURRENCY at a time, for at most `seconds`."""
    opened: list[Any] = []
    deadline = time.monotonic() + seconds
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> None:
        async with gate:
            if time.monotonic() > deadline:
                return
            try:
                opened.append(await open_one(index))
            except (OSError, TimeoutError, ConnectionError, Exception) as error:
                if len(opened) % 1000 == 0:
                    print(f"  connection {index} failed: {error!r}")

    await asyncio.gather(*(one(i) for i in range(count)))
    return opened


async def open_stream(port: int, path: str, token: str | None) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = f"authorization: Bearer {token}\r\n" if token else ""
    writer.write(
        f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{auth}"
        "accept: text/event-stream\r\n\r\n".encode()
    )
    status = await asyncio.wait_for(reader.readline(), 30)
    if b" 200 " not in status:
        writer.close()
        raise ConnectionError(status.decode(errors="replace").strip())
    writer.transport.pause_reading()  # type: ignore[attr-defined]  # idle: reads nothing more
    return writer


async def measure_idle(
    server: Server,
    count: int,
    seconds: float,
    kind: str,
    target: Callable[[int], Awaitable[Any]],
    keep: list[Any] | None = None,
) -> dict[str, float]:
    """Open and hold `count` connections, then report the worker's memory per connection;
    with `keep`, the connections stay open (added to it) instead of being closed."""
    wait_until_idle(server.worker_pid(), quiet_seconds=0.5)
    before = server.rss_mb()
    started = time.monotonic()
    held = await bounded(count, seconds, target)
    took = time.monotonic() - started
    await asyncio.sleep(2)
    after = server.rss_mb()
    if keep is not None:
        keep.extend(held)
    else:
        for item in held:
            item.transport.abort()
    per = (after - before) * 1024 / max(len(held), 1)
    print(
        f"  {server.name:9} {kind:3}: {len(held):6} held in {took:5.1f} s; "
        f"worker {before:6.1f} -> {after:6.1f} MiB ({per:5.1f} KiB each)"
    )
    return {"held": len(held), "before": before, "after": after, "per_kib": per}


async def idle(
    count: int, seconds: float, deflate: bool, kinds: list[str], room_size: int | None
) -> None:
    print(f"file descriptor limit: {raise_file_limit()}")
    print(f"room sockets: {'all in one room' if room_size is None else f'{room_size} a room'}")
    print(f"servers accept permessage-deflate (clients offer it, as browsers do): {deflate}")
    results: dict[str, dict[str, float]] = {}
    # A fresh worker for each kind: memory freed by closed connections stays in the process
    # and would be reused by the next kind, hiding what it costs.
    with installation() as env:
        if "ws" in kinds:
            with serve("bare", "uvicorn", BARE_APP, env, ws_deflate=deflate) as bare:
                ws_url = bare.base.replace("http://", "ws://") + "/"
                results["bare ws"] = await measure_idle(
                    bare,
                    count,
                    seconds,
                    "ws",
                    lambda _i: connect(ws_url, max_queue=1, ping_interval=None),
                )
        if "sse" in kinds:
            with serve("bare", "uvicorn", BARE_APP, env, ws_deflate=deflate) as bare:
                results["bare sse"] = await measure_idle(
                    bare, count, seconds, "sse", lambda _i: open_stream(bare.port, "/sse", None)
                )
        if "ws" in kinds or "sse" in kinds:
            with serve(
                "skilltree", "uvicorn", SKILLTREE_APP, env, factory=True, ws_deflate=deflate
            ) as server:
                org, token = await signed_in_member(server)
                if "ws" in kinds:
                    sockets = room_sockets(server, env, count, room_size)
                    results["skilltree ws"] = await measure_idle(
                        server, count, seconds, "ws", sockets
                    )
        if "together" in kinds:
            await hold_together(env, count, seconds, deflate, room_size)
        if "sse" in kinds:
            with serve(
                "skilltree", "uvicorn", SKILLTREE_APP, env, factory=True, ws_deflate=deflate
            ) as server:
                streams = feed_streams(server, org, token)
                results["skilltree sse"] = await measure_idle(
                    server, count, seconds, "sse", streams
                )
    for kind in kinds:
        if kind == "together":
            continue
        ours, baseline = results[f"skilltree {kind}"], results[f"bare {kind}"]
        ratio = ours["per_kib"] / baseline["per_kib"] if baseline["per_kib"] > 0 else float("nan")
        print(
            f"{kind}: skilltree holds {ours['held']:.0f} ({ours['per_kib']:.1f} KiB each, "
            f"worker {ours['after']:.0f} MiB); "
            f"bare ASGI {baseline['per_kib']:.1f} KiB each; ratio {ratio:.1f}x"
        )


Opener = Callable[[int], Awaitable[Any]]  # opens the i-th connection


async def signed_in_member(server: Server) -> tuple[str, str]:
    """The benchmark member's organisation and bearer token (the installation's, so valid on
    every server of it)."""
    client, org = await sign_in(server)
    token = client.headers["authorization"].removeprefix("Bearer ")
    await client.aclose()
    return org, token


def room_sockets(server: Server, env: dict[str, str], count: int, room_size: int | None) -> Opener:
    """Opens the i-th of `count` idle room sockets, each with a ticket of its own."""
    tickets = mint_tickets(env, count, room_size)
    base = server.base.replace("http://", "ws://") + "/v1/rooms/connect?ticket="
    return lambda i: connect(base + tickets[i], max_queue=1, ping_interval=None)


def feed_streams(server: Server, org: str, token: str) -> Opener:
    """Opens an idle event stream of the organisation's feed."""
    path = f"/v1/orgs/{org}/feed/stream"
    return lambda _i: open_stream(server.port, path, token)


async def hold_together(
    env: dict[str, str], count: int, seconds: float, deflate: bool, room_size: int | None
) -> None:
    """`count` room sockets and then `count` feed streams held at once by one worker: the
    process's whole memory with both kinds open, not each kind's alone."""
    with serve(
        "skilltree", "uvicorn", SKILLTREE_APP, env, factory=True, ws_deflate=deflate
    ) as server:
        org, token = await signed_in_member(server)
        open_socket = room_sockets(server, env, count, room_size)
        start = server.rss_mb()
        held: list[Any] = []
        sockets = await measure_idle(server, count, seconds, "ws", open_socket, keep=held)
        open_feed = feed_streams(server, org, token)
        streams = await measure_idle(server, count, seconds, "sse", open_feed, keep=held)
        print(
            f"together: one worker holds {sockets['held']:.0f} room sockets and "
            f"{streams['held']:.0f} feed streams at once; worker {start:.0f} -> "
            f"{streams['after']:.0f} MiB"
        )
        for item in held:
            item.transport.abort()


def log_summary(path: Path) -> list[str]:
    """The warnings and errors a server logged, counted by event (its JSON log, one object a
    line; anything else — a traceback on stderr — counted by its first words)."""
    counts: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            key = "stderr: " + line.strip()[:100]
        else:
            if not isinstance(record, dict) or record.get("level") not in ("warning", "error"):
                continue
            key = f"{record.get('level')}: {record.get('event')}"
            if "error" in record:
                key += f" ({str(record['error'])[:100]})"
        counts[key] = counts.get(key, 0) + 1
    return [f"{n:6} x {key}" for key, n in sorted(counts.items(), key=lambda kv: -kv[1])]


async def fanout(members: int, messages: int, seconds: float, logs: Path, deflate: bool) -> None:
    print(f"file descriptor limit: {raise_file_limit()}")
    print(f"servers accept permessage-deflate (clients offer it, as browsers do): {deflate}")
    prefix = f"skilltree-bench:{uuid.uuid4().hex[:8]}:"
    redis_env = {"SKILLTREE_REDIS_URL": REDIS_URL, "SKILLTREE_REDIS_KEY_PREFIX": prefix}
    log_paths = [logs / "first.log", logs / "second.log"]
    with (
        installation(redis_env) as env,
        log_paths[0].open("wb") as first_log,
        log_paths[1].open("wb") as second_log,
        serve(
            "first",
            "uvicorn",
            SKILLTREE_APP,
            env,
            factory=True,
            log_file=first_log,
            ws_deflate=deflate,
        ) as first,
        serve(
            "second",
            "uvicorn",
            SKILLTREE_APP,
            env,
            factory=True,
            log_file=second_log,
            ws_deflate=deflate,
        ) as second,
    ):
        client, _org = await sign_in(first)
        tickets = mint_tickets(env, members + 1)
        bases = [
            s.base.replace("http://", "ws://") + "/v1/rooms/connect?ticket="
            for s in (first, second)
        ]
        sockets: list[ClientConnection] = await bounded(
            members,
            seconds,
            lambda i: connect(
                bases[i % 2] + tickets[i],
                max_queue=None,
                ping_interval=None,
            ),
        )
        print(f"  {len(sockets)} members connected, half to each instance")
        latencies: list[float] = []
        received = [0] * len(sockets)
        warmed: set[int] = set()
        all_warm, done = asyncio.Event(), asyncio.Event()
        expected = len(sockets) * messages

        async def listen(index: int, socket: ClientConnection) -> None:
            with contextlib.suppress(ConnectionClosed):
                async for raw in socket:
                    if '"type":"message"' not in str(raw):
                        continue  # presence, typing: not what is measured
                    body = json.loads(raw)["body"]
                    if body == "warm-up":
                        warmed.add(index)
                        if len(warmed) == len(sockets):
                            all_warm.set()
                    elif body.startswith("t="):
                        latencies.append(time.time() - float(body[2:]))
                        received[index] += 1
                        if len(latencies) >= expected:
                            done.set()

        async def heartbeat() -> None:
            # As every client does (docs/realtime.md): without it, presence expires after
            # 30 s and the room is flooded with a thousand `offline` frames mid-measurement.
            while True:
                await asyncio.sleep(HEARTBEAT_SECONDS)
                for socket in sockets:
                    with contextlib.suppress(ConnectionClosed):
                        await socket.send('{"type":"heartbeat"}')

        listeners = [asyncio.create_task(listen(i, s)) for i, s in enumerate(sockets)]
        beating = asyncio.create_task(heartbeat())
        sender = await connect(bases[0] + tickets[members], ping_interval=None, open_timeout=120)
        # Every join was announced to everyone present (presence): wait until that backlog
        # has drained, shown by one message reaching every member, before measuring.
        await sender.send(json.dumps({"type": "message", "body": "warm-up"}))
        try:
            await asyncio.wait_for(all_warm.wait(), timeout=seconds)
        except TimeoutError:
            print(f"  only {len(warmed)} members had the warm-up message within {seconds} s")
        for _ in range(messages):
            await sender.send(json.dumps({"type": "message", "body": f"t={time.time()}"}))
            await asyncio.sleep(0.1)
        try:
            await asyncio.wait_for(done.wait(), timeout=seconds)
        except TimeoutError:
            print(f"  only {len(latencies)} of {expected} deliveries within {seconds} s")
        # Every member that missed something, by how its socket ended: a close the server
        # sent (its code and reason), a connection that dropped, or one still open.
        endings: dict[str, list[int]] = {}
        for index, socket in enumerate(sockets):
            if received[index] == messages:
                continue
            if socket.close_code is None:
                ending = "still open"
            else:
                ending = f"closed {socket.close_code} {socket.close_reason!r}"
            endings.setdefault(ending, []).append(received[index])
        for ending, counts in sorted(endings.items()):
            print(
                f"  {len(counts)} members missed messages, socket {ending}: "
                f"received {min(counts)}-{max(counts)} of {messages}"
            )
        for task in [*listeners, beating]:
            task.cancel()
        for socket in [*sockets, sender]:
            socket.transport.abort()
        await client.aclose()
    for path in log_paths:
        summary = log_summary(path)
        print(f"  {path.name}: {len(summary)} kinds of warning/error")
        for line in summary[:15]:
            print(f"    {line}")
    if latencies:
        ordered = sorted(latencies)

        def p(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

        missing = expected - len(latencies)
        print(
            f"fan-out to {len(sockets)} members over 2 instances, {messages} messages, "
            f"{len(latencies)} of {expected} deliveries arrived"
            + (f" (percentiles of those; {missing} never did)" if missing else "")
            + ": "
            f"p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {ordered[-1] * 1000:.1f} ms, "
            f"mean {statistics.fmean(latencies) * 1000:.1f} ms"
        )


def load_average() -> str:
    """The machine's load (1, 5, 15 minutes): figures from a busy machine read differently."""
    return "load average " + ", ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["idle", "fanout"])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=1_000)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=120.0, help="bound on each phase")
    parser.add_argument(
        "--deflate",
        choices=["on", "off"],
        default=None,
        help="whether the servers accept permessage-deflate (default: as `skilltree serve`)",
    )
    parser.add_argument(
        "--kinds",
        choices=["ws", "sse", "both", "together"],
        default="both",
        help="idle: which connections to hold (each in a fresh worker; together: both kinds "
        "held at once by one worker, which needs 2 × --connections file descriptors on each side)",
    )
    parser.add_argument(
        "--room-size",
        type=int,
        default=None,
        help="idle: spread the room sockets over rooms of this many (default: one room)",
    )
    parser.add_argument(
        "--logs",
        type=Path,
        default=Path(tempfile.gettempdir()) / "skilltree-bench-realtime",
        help="where fanout keeps each server's log (read after the run)",
    )
    args = parser.parse_args()
    print(f"start: {load_average()}")
    deflate = (
        HttpSettings().ws_per_message_deflate if args.deflate is None else args.deflate == "on"
    )
    if args.mode == "idle":
        kinds = ["ws", "sse"] if args.kinds == "both" else [args.kinds]
        asyncio.run(idle(args.connections, args.seconds, deflate, kinds, args.room_size))
    else:
        args.logs.mkdir(parents=True, exist_ok=True)
        asyncio.run(fanout(args.members, args.messages, args.seconds, args.logs, deflate))
    print(f"end: {load_average()}")


if __name__ == "__main__":
    main()
