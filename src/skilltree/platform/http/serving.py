"""uvicorn with a drain window: SIGTERM turns readiness false first, and stops the server later.

uvicorn stops listening the moment it receives SIGTERM. Behind a balancer (nginx, a Kubernetes
Service) that is too early: the balancer keeps sending new connections until its next health
check, and those are refused. `DrainingServer` delays uvicorn's own handling of the first SIGTERM
by `drain_seconds`, during which `/readyz` says 503 (platform/draining.py) and everything else
is served as usual. Then uvicorn's graceful shutdown runs: it stops accepting, finishes the
requests in flight (up to `timeout_graceful_shutdown`), and runs the lifespan shutdown. SIGINT
(Ctrl-C in a terminal) and a second SIGTERM stop at once.
"""

from __future__ import annotations

import signal
import threading
from socket import socket
from types import FrameType

import uvicorn
from uvicorn.supervisors import multiprocess

from skilltree.platform.draining import begin_draining, is_draining
from skilltree.platform.observability.logging import get_logger

log = get_logger("skilltree.serve")


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
