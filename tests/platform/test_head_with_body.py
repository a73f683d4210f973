"""A response's head and body leave in one write (platform/http/serving.py, `HeldWrite`), so a
process killed between the two cannot leave a balancer holding a head without its body.
Every served test (`skilltree serve` runs `HeadWithBodyProtocol`) uses it too: the live
servers' streams, sockets and shutdowns (tests/realtime, tests/rooms, tests/platform/
test_shutdown.py) and the instance killed behind nginx (tests/deploy/test_load_balancing.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import httpx

from skilltree.platform.http.serving import JOINED_BYTES, HeldWrite
from tests.support.processes import (
    base_env,
    free_port,
    migrate,
    run_cli,
    running,
    serve_command,
    wait_until_ready,
)


class Recorded:
    """A transport that records what is done to it, one entry per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def writelines(self, data: Any) -> None:
        self.calls.append(("writelines", b"".join(data)))

    def write_eof(self) -> None:
        self.calls.append(("write_eof", None))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", None))

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort", None))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name == "sockname" else default


def held_over(recorded: Recorded) -> HeldWrite:
    return HeldWrite(cast(asyncio.Transport, recorded), asyncio.get_running_loop())


async def test_a_head_and_its_body_leave_in_one_write() -> None:
    recorded = Recorded()
    transport = held_over(recorded)

    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    await asyncio.sleep(0)

    assert recorded.calls == [("write", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")]


async def test_a_large_body_follows_its_head_uncopied() -> None:
    recorded = Recorded()
    transport = held_over(recorded)
    body = b"x" * (JOINED_BYTES + 1)

    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(body)

    assert recorded.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\n"), ("write", body)]


async def test_a_head_whose_body_is_not_ready_leaves_at_the_end_of_the_loops_turn() -> None:
    recorded = Recorded()
    transport = held_over(recorded)

    transport.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    before_the_turn_ends = list(recorded.calls)
    await asyncio.sleep(0)

    assert before_the_turn_ends == []
    assert recorded.calls == [("write", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")]


async def test_what_was_written_goes_before_the_end_and_an_abort_drops_it() -> None:
    closed, ended, aborted = Recorded(), Recorded(), Recorded()

    transport = held_over(closed)
    transport.write(b"last")
    transport.close()
    transport = held_over(ended)
    transport.write(b"frame")
    transport.write_eof()
    transport = held_over(aborted)
    transport.write(b"lost")
    transport.abort()
    await asyncio.sleep(0)

    assert closed.calls == [("write", b"last"), ("close", None)]
    assert ended.calls == [("write", b"frame"), ("write_eof", None)]
    assert aborted.calls == [("abort", None)]


async def test_anything_else_is_the_transports_own() -> None:
    transport = held_over(Recorded())

    assert transport.get_extra_info("sockname") == ("127.0.0.1", 8000)
    assert not transport.is_closing()


def test_skilltree_serve_answers_whole_over_one_connection(tmp_path: Path) -> None:
    """The protocol `skilltree serve` runs: many requests over one kept-alive connection, each
    answer whole, a small one (the probe) and a large one (the built-in roadmap's tree)."""
    env = base_env(f"sqlite+aiosqlite:///{tmp_path}/serve.db")
    migrate(env["SKILLTREE_DATABASE_URL"])
    run_cli(env, "roadmap", "load-builtin")
    port = free_port()
    with running(serve_command(port), env, tmp_path / "serve.log") as server:
        wait_until_ready(f"http://127.0.0.1:{port}", server)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            probes = [client.get("/livez") for _ in range(10)]
            trees = [client.get("/v1/roadmaps/backend/tree") for _ in range(3)]

    assert {probe.status_code for probe in probes} == {200}
    assert {tree.status_code for tree in trees} == {200}
    assert len({tree.content for tree in trees}) == 1
    assert trees[0].json()["roadmap"]["slug"] == "backend"
