"""`python -m bench.run --crowd`: the read endpoints and the write at 1,024 connections.

wrk reports neither which statuses came back nor when, so this mode drives the server with its
own client: one asyncio task per connection (keep-alive HTTP/1.1 over a raw socket, as wrk),
each sending its next request when the last was answered, for the given seconds; requests still
in flight then are waited for (up to `TIMEOUT_SECONDS`). Per endpoint it reports

- stalls: whole seconds of the run in which no response at all completed;
- 5xx other than 503: errors the overload should never cause;
- 503 with Retry-After (load shed at once, platform/fair_pool.py) and 503 without it;
- p50 and p99 latency of the admitted requests (every answer other than a 503);
- errors: requests that got no answer within `TIMEOUT_SECONDS`, or whose connection failed;
- the worker's CPU per answer, admitted or shed (load bends it less than latency).

By default a client asks again the moment it is answered, 503 or not: the worst case, a crowd
that ignores Retry-After. With `--crowd-honour-retry-after` a connection that got a 503 with
Retry-After waits that long first, as the answer asks.

One skilltree worker, the same staging as `make bench`. The open-files limit is raised first
(bench/run.py): the client and the server each hold more than 1,024 sockets.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bench.endpoints import Endpoint
from bench.servers import ServerKind, serve, wait_until_idle
from bench.stage import SKILLTREE_APP

if TYPE_CHECKING:
    from bench.run import Stage

TIMEOUT_SECONDS = 30.0


@dataclass
class CrowdResult:
    name: str
    seconds: int
    completed_per_second: list[int]
    statuses: Counter[int] = field(default_factory=Counter)
    shed_with_retry_after: int = 0
    admitted_ms: list[float] = field(default_factory=list)
    errors: int = 0
    problems: Counter[str] = field(default_factory=Counter)  # 5xx answers by problem type
    worker_cpu_seconds: float = float("nan")  # the worker's CPU over the run

    @property
    def cpu_ms_per_answer(self) -> float:
        """The worker's CPU per answer (admitted or shed), which load bends less than time."""
        return self.worker_cpu_seconds * 1000 / self.answered if self.answered else float("nan")

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def stalls(self) -> int:
        return len(self.stalled_seconds)

    @property
    def stalled_seconds(self) -> list[int]:
        """Which seconds of the run had no answer (0 is the first)."""
        per_second = self.completed_per_second[: self.seconds]
        return [second for second, count in enumerate(per_second) if count == 0]

    @property
    def other_5xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500 and status != 503)

    @property
    def shed_without_retry_after(self) -> int:
        return self.statuses[503] - self.shed_with_retry_after

    def admitted_percentile(self, fraction: float) -> float:
        if not self.admitted_ms:
            return float("nan")
        ordered = sorted(self.admitted_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def problem_type(body: bytes) -> str:
    """The `type` of an RFC 9457 problem body ("?" for any other body)."""
    try:
        return str(json.loads(body).get("type", "?"))
    except (ValueError, AttributeError):
        return "?"


def retry_after_seconds(value: str, deadline: float) -> float:
    """How long a client that honours Retry-After (in seconds) waits, within the run."""
    try:
        wait = float(value)
    except ValueError:
        wait = 1.0  # an HTTP date: skilltree sends none
    return max(0.0, min(wait, deadline - time.monotonic()))


def request_bytes(endpoint: Endpoint, host: str, body: str | None) -> bytes:
    lines = [f"{endpoint.method} {endpoint.path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{key}: {value}" for key, value in endpoint.headers.items()]
    payload = (body or "").encode()
    if body is not None:
        lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of one response (a chunked body is read and dropped)."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        key, _, value = line.decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while size := int((await reader.readline()).strip(), 16):
            await reader.readexactly(size + 2)
        await reader.readline()
    return status, headers, body


async def drive_crowd(
    base: str,
    endpoint: Endpoint,
    connections: int,
    seconds: int,
    *,
    honour_retry_after: bool = False,
) -> CrowdResult:
    address = urlsplit(base)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    bodies: tuple[str | None, ...] = endpoint.bodies or (None,)
    requests = [request_bytes(endpoint, f"{host}:{port}", body) for body in bodies]
    result = CrowdResult(endpoint.name, seconds, [0] * (seconds + int(TIMEOUT_SECONDS) + 2))
    start = time.monotonic()
    deadline = start + seconds

    def completed(status: int, headers: dict[str, str], body: bytes, began: float) -> None:
        now = time.monotonic()
        result.completed_per_second[
            min(int(now - start), len(result.completed_per_second) - 1)
        ] += 1
        result.statuses[status] += 1
        if status >= 500:
            result.problems[problem_type(body)] += 1
        if status == 503:
            result.shed_with_retry_after += "retry-after" in headers
        else:
            result.admitted_ms.append((now - began) * 1000)

    async def connection(number: int) -> None:
        sent = number
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while time.monotonic() < deadline:
            try:
                if streams is None:
                    streams = await asyncio.wait_for(
                        asyncio.open_connection(host, port), TIMEOUT_SECONDS
                    )
                reader, writer = streams
                began = time.monotonic()
                writer.write(requests[sent % len(requests)])
                sent += 1
                status, headers, body = await asyncio.wait_for(
                    read_response(reader), TIMEOUT_SECONDS
                )
                completed(status, headers, body, began)
                if headers.get("connection", "").lower() == "close":
                    writer.close()
                    streams = None
                if honour_retry_after and status == 503 and "retry-after" in headers:
                    await asyncio.sleep(retry_after_seconds(headers["retry-after"], deadline))
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
                result.errors += 1
                if streams is not None:
                    streams[1].close()
                streams = None
        if streams is not None:
            streams[1].close()

    await asyncio.gather(*(connection(n) for n in range(connections)))
    return result


CROWD_ROW = "{:<42} {:>8} {:>7} {:>6} {:>8} {:>8} {:>8} {:>9} {:>9} {:>7} {:>8}"


def print_crowd(results: list[CrowdResult]) -> None:
    print(CROWD_ROW.format("endpoint", "answered", "req/s", "stalls", "5xx!=503", "503+RA",
                           "503-RA", "p50 adm", "p99 adm", "errors", "cpu/ans"))  # fmt: skip
    for r in results:
        print(
            CROWD_ROW.format(
                r.name,
                r.answered,
                f"{r.answered / r.seconds:.0f}",
                r.stalls,
                r.other_5xx,
                r.shed_with_retry_after,
                r.shed_without_retry_after,
                f"{r.admitted_percentile(0.50):.0f}",
                f"{r.admitted_percentile(0.99):.0f}",
                r.errors,
                f"{r.cpu_ms_per_answer:.2f}",
            )
        )
    for r in results:
        if r.stalls:
            print(f"{r.name}: seconds without an answer: {r.stalled_seconds}")
        failed = {status: n for status, n in r.statuses.items() if status >= 400}
        if failed:
            print(f"{r.name}: answers by status: {dict(sorted(r.statuses.items()))}")
        if r.problems:
            kinds = ", ".join(f"{kind} × {n}" for kind, n in r.problems.most_common())
            print(f"{r.name}: 5xx by problem type: {kinds}")
    print(
        "\nstalls: seconds with no response; 503+RA / 503-RA: shed with / without Retry-After;"
        " p50/p99 adm: latency in ms of the admitted requests (every answer but a 503); errors:"
        f" no answer within {TIMEOUT_SECONDS:.0f} s, or a failed connection; cpu/ans: the"
        " worker's CPU in ms per answer, admitted or shed."
    )


def crowd_run(
    stage: Stage,
    kind: ServerKind,
    seconds: int,
    connections: int,
    *,
    honour_retry_after: bool = False,
    only: str = "",
) -> None:
    from skilltree.platform.config import DatabaseSettings, HttpSettings

    settings = DatabaseSettings()
    http = HttpSettings()
    print(
        f"skilltree's admission control: {http.max_in_flight} requests in flight (0: no bound),"
        f" at most {http.max_waiting} more wait for a slot, for at most"
        f" {http.max_wait_seconds:g} s; more are shed (503, Retry-After)",
        flush=True,
    )
    print(
        f"skilltree's pool: {settings.pool_size} connections + {settings.max_overflow} overflow;"
        f" at most {settings.pool_max_waiting} requests wait for one, for at most"
        f" {settings.pool_timeout_seconds:g} s; more are shed (503, Retry-After)",
        flush=True,
    )
    endpoints = [e for e in stage.endpoints if (e.read or e.key == "write") and only in e.name]
    results = []
    with serve("skilltree", kind, SKILLTREE_APP, stage.env, factory=True) as app:
        for endpoint in endpoints:
            run = drive_crowd(
                app.base, endpoint, connections, seconds, honour_retry_after=honour_retry_after
            )
            before = app.cpu_seconds()
            result = asyncio.run(run)
            result.worker_cpu_seconds = app.cpu_seconds() - before
            results.append(result)
            wait_until_idle(app.worker_pid())
    clients = (
        "wait as long as Retry-After says after a 503"
        if honour_retry_after
        else "ask again at once after a 503 (Retry-After ignored)"
    )
    print(f"\n## {connections} connections, {seconds} s per endpoint, one worker ({kind})\n")
    print(f"The clients {clients}.\n")
    print_crowd(results)
