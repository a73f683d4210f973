"""uvicorn with a drain window: SIGTERM turns readiness false first, and stops the server later.

uvicorn stops listening the moment it receives SIGTERM. Behind a balancer (nginx, a Kubernetes
Service) that is too early: the balancer keeps sending new connections until its next health
check, and those are refused. `DrainingServer` delays uvicorn's own handling of the first SIGTERM
by `drain_seconds`, during which `/readyz` says 503 (platform/draining.py) and everything else
is served as usual. Then uvicorn's graceful shutdown runs: it stops accepting, finishes the
requests in flight (up to `timeout_graceful_shutdown`), and runs the lifespan shutdown. SIGINT
(Ctrl-C in a terminal) and a second SIGTERM stop at once.

A response's head and body leave in one write (`HeadWithBodyProtocol`). uvicorn writes the
status line and headers the moment the app starts its response, and the body with the next
message, two system calls a few microseconds apart. A process killed between them (SIGKILL, the
kernel's OOM killer) leaves a balancer holding a head without a body: it has begun answering
its client, so it can no longer retry the request on another instance, and the client gets a
truncated response where it would have got an answer. A body of up to `JOINED_BYTES` leaves
joined to its head (most answers: a problem, a page of JSON, a 304); a larger one, whose
transfer a kill can cut short anyway, follows in a write of its own, since copying it cost more
than the system call it saves. Served, one write instead of two costs about the same CPU as the
loop callback that sends a head whose body is late.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from socket import socket
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import multiprocess

from skilltree.platform.draining import begin_draining, is_draining
from skilltree.platform.observability.logging import get_logger

log = get_logger("skilltree.serve")
# What `skilltree serve` gives uvicorn as its HTTP protocol (`--http`).
HTTP_PROTOCOL = "skilltree.platform.http.serving:HeadWithBodyProtocol"
# Bodies up to this size are joined to their head; larger ones follow it in a write of their own.
JOINED_BYTES = 16 * 1024


class HeldWrite:
    """A connection's transport whose writes wait for the next write, or for the end of the
    event loop's turn, whichever comes first: a response's head goes out with its body in one
    system call, and a head whose body is not ready in the same turn (a stream) goes out alone
    at the turn's end. What uvicorn's protocols call is passed on by methods of its own (a
    lookup through `__getattr__` costs every request a failed attribute search); anything else
    is the transport's own."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = data
            self._loop.call_soon(self._send_held)
        else:
            self._held = None
            if len(data) <= JOINED_BYTES:
                self._transport.write(held + data)
            else:
                # Copied into one buffer, or handed to the loop's vectored write (which copies
                # what it cannot send at once), a large body cost the tree a quarter more CPU
                # per request: it goes out as uvicorn sends it.
                self._transport.write(held)
                self._transport.write(data)

    def writelines(self, data: Any) -> None:
        self._send_held()
        self._transport.writelines(data)

    def write_eof(self) -> None:
        self._send_held()
        self._transport.write_eof()

    def _send_held(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self._send_held()  # what was written is sent before the connection ends
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HeadWithBodyProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `HeldWrite` transport: a response's head and body in
    one write (see the module's docstring). A WebSocket upgrade hands the same transport on."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        held = HeldWrite(transport, asyncio.get_running_loop())
        super().connection_made(held)  # type: ignore[arg-type]


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self.drain_seconds <= 0 or is_draining():
            super().handle_exit(sig, frame)
            return
        begin_draining()
        log.info("server.draining", seconds=self.drain_seconds)
        timer = threading.Timer(self.drain_seconds, super().handle_exit, args=(sig, frame))
        timer.daemon = True
        timer.start()


def serve(config: uvicorn.Config, drain_seconds: float) -> None:
    """Run uvicorn as `uvicorn.run` does, with draining servers in every worker process."""
    if config.workers > 1:
        sockets = [config.bind_socket()]
        _draining_worker_processes(drain_seconds)
        multiprocess.Multiprocess(config, sockets=sockets).run()
        return
    server = DrainingServer(config, drain_seconds)
    server.run()
    if not server.started:
        raise SystemExit(3)  # uvicorn's STARTUP_FAILURE


class DrainingProcess(multiprocess.Process):
    """A worker process of uvicorn's supervisor whose server drains. It is pickled into a
    spawned process, so it carries the drain window as a plain attribute."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket], drain_seconds: float) -> None:
        self.drain_seconds = drain_seconds
        super().__init__(config, sockets)

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(self.config, self.drain_seconds)
        return self._server


def _draining_worker_processes(drain_seconds: float) -> None:
    # uvicorn's supervisor creates its worker processes by this module attribute's name, with
    # no hook to choose the class; the drain window is bound here.
    def process(config: uvicorn.Config, sockets: list[socket]) -> multiprocess.Process:
        return DrainingProcess(config, sockets, drain_seconds)

    multiprocess.Process = process  # type: ignore[misc,assignment]
