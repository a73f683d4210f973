"""The 1,024-connection run reads responses and counts what the goals are about correctly."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from bench.crowd import CrowdResult, problem_type, read_response, retry_after_seconds


def stream(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_a_response_is_read_with_its_body_and_a_chunked_one_to_its_end() -> None:
    reader = stream(
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 35\r\n\r\n"
        b'{"type": "/problems/overloaded"}   '
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        b"HTTP/1.1 304 Not Modified\r\n\r\n"
    )

    status, headers, body = await read_response(reader)
    assert (status, headers["retry-after"], problem_type(body)) == (
        503,
        "1",
        "/problems/overloaded",
    )
    assert (await read_response(reader))[0] == 200
    assert (await read_response(reader))[0] == 304


def test_stalls_are_seconds_of_the_run_without_a_response() -> None:
    result = CrowdResult("tree", seconds=5, completed_per_second=[0, 12, 0, 0, 9, 40, 3])

    assert result.stalls == 3  # the seconds after the run (requests still in flight) do not count
    assert result.stalled_seconds == [0, 2, 3]


def test_only_503_is_load_shedding_and_admitted_latency_leaves_it_out() -> None:
    result = CrowdResult("write", 2, [1, 1], Counter({200: 98, 503: 5, 500: 1}), 4)
    result.admitted_ms = [float(ms) for ms in range(1, 101)]

    assert result.other_5xx == 1
    assert result.shed_without_retry_after == 1
    assert result.admitted_percentile(0.99) == 100.0
    assert problem_type(b"not json") == "?"


def test_a_client_that_honours_retry_after_waits_so_long_but_not_past_the_run() -> None:
    far, near = time.monotonic() + 60, time.monotonic() + 0.5

    assert retry_after_seconds("1", far) == 1.0
    assert retry_after_seconds("30", near) <= 0.5
    assert retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT", far) == 1.0
