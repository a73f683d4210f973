"""The gRPC server: grpcio's asyncio server with the skilltree.v1 services, the standard health
service and server reflection, sharing the HTTP server's settings, database and services.

Health (`grpc.health.v1.Health`) says SERVING while the database (and Redis, when configured)
answer, checked every `SKILLTREE_GRPC_HEALTH_CHECK_SECONDS`, and NOT_SERVING once they do not
or once shutdown began. At SIGTERM: health turns NOT_SERVING (balancers stop sending), the
live streams end (WatchProgress callers see UNAVAILABLE and call another instance), and calls
in flight get the grace period to finish before they are cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from skilltree.platform.http.rate_limit import RateLimiter, create_counters
from skilltree.platform.state import Resources
from skilltree.rpc.progress import Progress
from skilltree.rpc.roadmaps import Roadmaps
from skilltree.rpc.v1 import progress_pb2, progress_pb2_grpc, roadmaps_pb2, roadmaps_pb2_grpc

log = structlog.get_logger(__name__)

SERVICE_NAMES = (
    roadmaps_pb2.DESCRIPTOR.services_by_name["Roadmaps"].full_name,
    progress_pb2.DESCRIPTOR.services_by_name["Progress"].full_name,
)
PROBE_TIMEOUT_SECONDS = 2.0
SHUTDOWN_REASON = "server shutting down"


class GrpcServer:
    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        limits = resources.settings.grpc
        self.server = grpc.aio.server(
            options=[("grpc.max_receive_message_length", limits.max_receive_bytes)]
        )
        limiter = _rate_limiter(resources)
        roadmaps_pb2_grpc.add_RoadmapsServicer_to_server(Roadmaps(resources, limiter), self.server)
        progress_pb2_grpc.add_ProgressServicer_to_server(Progress(resources, limiter), self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self._watcher: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self, address: str) -> int:
        """Listen on `host:port` (port 0: a free one) and return the port."""
        self.port = self.server.add_insecure_port(address)
        await self.server.start()
        await self.check_health()
        self._watcher = asyncio.create_task(self._watch_health())
        return self.port

    async def check_health(self) -> bool:
        """Ask the dependencies, and tell the health service what they said."""
        answering = await self._dependencies_answer()
        serving = health_pb2.HealthCheckResponse
        status = serving.SERVING if answering else serving.NOT_SERVING
        for name in (health.OVERALL_HEALTH, *SERVICE_NAMES):
            await self.health.set(name, status)
        return answering

    async def stop(self, grace_seconds: float) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.health.enter_graceful_shutdown()
        await self.resources.broadcaster.drain(SHUTDOWN_REASON, grace_seconds=grace_seconds)
        await self.server.stop(grace_seconds)

    async def _watch_health(self) -> None:
        every = self.resources.settings.grpc.health_check_seconds
        while True:
            await asyncio.sleep(every)
            await self.check_health()

    async def _dependencies_answer(self) -> bool:
        probes = [self.resources.database.ping()]
        if self.resources.redis is not None:
            probes.append(self.resources.redis.ping())  # type: ignore[arg-type]
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                await asyncio.gather(*probes)
        except Exception as error:  # whatever the failure, the instance cannot serve
            log.warning("grpc.health_check_failed", error=type(error).__name__)
            return False
        return True


def _rate_limiter(resources: Resources) -> RateLimiter | None:
    """The HTTP API's limits and counters (SKILLTREE_RATE_LIMIT_*), unless they are off."""
    settings = resources.settings
    if not settings.rate_limit.enabled:
        return None
    counters = create_counters(settings.redis, resources.redis)
    return RateLimiter(settings.rate_limit, counters, session_cookie=settings.auth.session_cookie)


async def serve(resources: Resources, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    server = GrpcServer(resources)
    bound = await server.start(f"{host}:{port}")
    log.info("grpc.listening", host=host, port=bound)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    grace = resources.settings.grpc.graceful_shutdown_seconds
    log.info("grpc.stopping", grace_seconds=grace)
    await server.stop(grace)
