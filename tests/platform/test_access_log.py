"""The access log as its readers see it: one JSON line per request on stdout, with the fields
docs/observability.md names, in the shape structlog gives every other line, at the configured
level, and none lost when the server is stopped right after answering."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from skilltree.platform.config import LogSettings
from skilltree.platform.http.middleware import AccessLogMiddleware, RequestIdMiddleware
from skilltree.platform.observability.logging import (
    AccessLines,
    configure_logging,
    get_logger,
    log_access,
)
from tests.support.processes import (
    base_env,
    free_port,
    migrate,
    running,
    serve_command,
    wait_until_ready,
)

# docs/observability.md, "Access log": the request's own fields, then what every line has.
FIELDS = [
    "method",
    "route",
    "path",
    "status",
    "duration_ms",
    "bytes",
    "client",
    "event",
    "request_id",
    "level",
    "logger",
    "timestamp",
]


def build_app() -> FastAPI:
    app = FastAPI()

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, int]:
        return {"thing": thing_id}

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def access_lines(out: str) -> list[dict[str, object]]:
    """Every access-log line, each checked to be one whole JSON object."""
    lines = [json.loads(line) for line in out.splitlines() if '"skilltree.access"' in line]
    return [line for line in lines if line["logger"] == "skilltree.access"]


async def test_each_request_writes_one_line_with_the_documented_fields_in_order(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(LogSettings(level="INFO", format="json"))
    capsys.readouterr()
    before = datetime.now(UTC)

    responses = [
        await client.get(f"/v1/things/{n}", headers={"x-request-id": f"req-{n}"}) for n in range(3)
    ]

    await asyncio.sleep(0)  # the lines of a loop turn are written at the next
    lines = access_lines(capsys.readouterr().out)
    assert len(lines) == 3
    for n, (line, response) in enumerate(zip(lines, responses, strict=True)):
        assert list(line) == FIELDS
        assert line["method"] == "GET"
        assert line["route"] == "/v1/things/{thing_id}"
        assert line["path"] == f"/v1/things/{n}"
        assert line["status"] == 200
        assert line["bytes"] == len(response.content)
        assert line["client"] == "127.0.0.1"
        assert line["event"] == "request"
        assert line["request_id"] == f"req-{n}" == response.headers["x-request-id"]
        assert line["level"] == "info"
        assert isinstance(line["duration_ms"], float)
        stamp = str(line["timestamp"])
        assert stamp.endswith("Z")
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert before - timedelta(seconds=1) <= at <= datetime.now(UTC) + timedelta(seconds=1)


async def test_an_unmatched_path_is_logged_under_its_path(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(LogSettings(level="INFO", format="json"))
    capsys.readouterr()

    await client.get("/nowhere")

    await asyncio.sleep(0)  # the lines of a loop turn are written at the next
    [line] = access_lines(capsys.readouterr().out)
    assert (line["route"], line["path"], line["status"]) == ("/nowhere", "/nowhere", 404)


def test_the_line_is_the_one_structlog_writes_for_the_same_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every other line goes through structlog: a log pipeline sees one shape."""
    configure_logging(LogSettings(level="INFO", format="json"))
    fields: dict[str, object] = {
        "method": "GET",
        "route": "/v1/roadmaps/{slug}/tree",
        "path": "/v1/roadmaps/backend/tree",
        "status": 200,
        "duration_ms": 0.125,
        "bytes": 160417,
        "client": None,
    }
    capsys.readouterr()

    log_access(dict(fields), debug=False)
    get_logger("skilltree.access").info("request", **fields)

    written, by_structlog = capsys.readouterr().out.splitlines()
    # Byte for byte up to the time, which differs by the microseconds between the two calls.
    assert written.split('"timestamp":')[0] == by_structlog.split('"timestamp":')[0]
    assert written.endswith('Z"}')
    assert by_structlog.endswith('Z"}')


@pytest.mark.parametrize("now", [1_700_000_000.0, 1_700_000_000.25, 1_700_000_059.999999])
def test_the_time_is_written_as_structlog_writes_it(
    now: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = AccessLines(logging.INFO, threading.RLock())
    monkeypatch.setattr("skilltree.platform.observability.logging.time.time", lambda: now)

    stamp = lines._timestamp()

    expected = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
    assert stamp == expected


async def test_the_level_applies(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(LogSettings(level="WARNING", format="json"))
    await client.get("/v1/things/1")
    await asyncio.sleep(0)  # the lines of a loop turn are written at the next
    assert access_lines(capsys.readouterr().out) == []

    configure_logging(LogSettings(level="INFO", format="json"))
    await client.get("/livez")
    await asyncio.sleep(0)  # the lines of a loop turn are written at the next
    assert access_lines(capsys.readouterr().out) == []  # probes are at debug level

    configure_logging(LogSettings(level="DEBUG", format="json"))
    await client.get("/livez")
    await asyncio.sleep(0)  # the lines of a loop turn are written at the next
    [probe] = access_lines(capsys.readouterr().out)
    assert (probe["path"], probe["level"]) == ("/livez", "debug")


async def test_the_console_format_writes_readable_lines(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(LogSettings(level="INFO", format="console"))
    try:
        await client.get("/v1/things/7", headers={"x-request-id": "console-1"})
        await asyncio.sleep(0)  # the lines of a loop turn are written at the next
        out = capsys.readouterr().out
    finally:
        configure_logging(LogSettings(level="INFO", format="json"))

    [line] = [line for line in out.splitlines() if "skilltree.access" in line]
    assert not line.startswith("{")
    assert "request" in line
    assert "console-1" in line
    assert "/v1/things/7" in line


async def test_the_lines_of_a_loop_turn_are_written_together_at_the_next(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(LogSettings(level="INFO", format="json"))
    capsys.readouterr()

    for n in range(3):
        log_access({"method": "GET", "path": f"/{n}"}, debug=False)
    waiting = capsys.readouterr().out
    await asyncio.sleep(0)

    assert waiting == ""
    assert [line["path"] for line in access_lines(capsys.readouterr().out)] == ["/0", "/1", "/2"]


def test_lines_left_by_a_loop_that_stopped_are_written_by_the_next(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(LogSettings(level="INFO", format="json"))
    capsys.readouterr()

    # A line logged in a loop's last turn: the turn that would have written it never comes.
    first = asyncio.new_event_loop()

    def stop_then_log() -> None:
        first.stop()
        log_access({"method": "GET", "path": "/first"}, debug=False)

    first.call_soon(stop_then_log)
    first.run_forever()
    first.close()
    asyncio.run(_log_and_turn("/second"))

    paths = [line["path"] for line in access_lines(capsys.readouterr().out)]
    assert paths == ["/first", "/second"]


async def _log_and_turn(path: str) -> None:
    log_access({"method": "GET", "path": path}, debug=False)
    await asyncio.sleep(0)


def test_a_process_ending_with_an_error_writes_the_waiting_lines(tmp_path: Path) -> None:
    """The loop never turns again: the lines are written at exit."""
    script = (
        "import asyncio\n"
        "from skilltree.platform.config import LogSettings\n"
        "from skilltree.platform.observability.logging import configure_logging, log_access\n"
        "configure_logging(LogSettings(level='INFO', format='json'))\n"
        "async def main():\n"
        "    log_access({'method': 'GET', 'path': '/last'}, debug=False)\n"
        "    raise RuntimeError('boom')\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 1
    assert "RuntimeError: boom" in done.stderr
    assert [line["path"] for line in access_lines(done.stdout)] == ["/last"]


def test_sigterm_right_after_requests_loses_no_line(tmp_path: Path) -> None:
    """A real server, its stdout a file as under `docker logs`, stopped the moment the last
    answer arrives: every request's line is in its output."""
    env = base_env(
        f"sqlite+aiosqlite:///{tmp_path / 'skilltree.db'}",
        SKILLTREE_LOG_LEVEL="INFO",
        SKILLTREE_LOG_FORMAT="json",
        SKILLTREE_HTTP_DRAIN_SECONDS="0",
        SKILLTREE_MAIL_OUTBOX_DIR=str(tmp_path / "mail"),
    )
    migrate(env["SKILLTREE_DATABASE_URL"])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    output = tmp_path / "serve.log"
    with running(serve_command(port), env, output) as server:
        wait_until_ready(base, server, log=output)
        ids = [f"last-{n}" for n in range(40)]
        with httpx.Client(base_url=base, timeout=10) as http:
            for n, request_id in enumerate(ids):
                path = "/v1/roadmaps" if n % 2 else "/v1/roadmaps/nothing-here/tree"
                assert http.get(path, headers={"x-request-id": request_id}).status_code < 500
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("the server did not stop within 30 s of SIGTERM")

    logged = [
        line["request_id"]
        for line in access_lines(output.read_text())
        if str(line.get("request_id", "")).startswith("last-")
    ]
    assert sorted(logged) == sorted(ids)
