"""The server around the services: health with the database, reflection, deadlines, shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from fastapi import FastAPI
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from skilltree.platform.config import RateLimitSettings
from skilltree.platform.state import Resources
from skilltree.rpc import calls
from skilltree.rpc.server import GrpcServer
from skilltree.rpc.v1 import roadmaps_pb2
from skilltree.rpc.v1.roadmaps_pb2_grpc import RoadmapsStub
from tests.support.processes import ROOT, SKILLTREE, base_env, free_port, migrate

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def health_of(channel: grpc.aio.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(answer.status)


@pytest.mark.parametrize("service", ["", "skilltree.v1.Roadmaps", "skilltree.v1.Progress"])
async def test_health_is_serving_while_the_database_answers(
    channel: grpc.aio.Channel, service: str
) -> None:
    assert await health_of(channel, service) == SERVING


async def test_health_is_not_serving_when_the_database_does_not_answer(
    grpc_server: GrpcServer, channel: grpc.aio.Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable() -> None:
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(grpc_server.resources.database, "ping", unreachable)

    assert await grpc_server.check_health() is False
    assert await health_of(channel) == NOT_SERVING
    assert await health_of(channel, "skilltree.v1.Progress") == NOT_SERVING


async def test_reflection_lists_every_service(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")

    responses = [answer async for answer in stub.ServerReflectionInfo(iter([request]))]

    names = {service.name for service in responses[0].list_services_response.service}
    assert names == {
        "skilltree.v1.Roadmaps",
        "skilltree.v1.Progress",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


async def test_reflection_describes_the_messages(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol="skilltree.v1.Progress")

    responses = [answer async for answer in stub.ServerReflectionInfo(iter([request]))]

    files = responses[0].file_descriptor_response.file_descriptor_proto
    assert any(b"WatchProgress" in file for file in files)


class SlowCallContext:
    """What `calls.run` reads of a call: its deadline, its metadata, and how it aborts."""

    def __init__(self, seconds_left: float) -> None:
        self.seconds_left = seconds_left
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def time_remaining(self) -> float:
        return self.seconds_left

    def invocation_metadata(self) -> tuple[()]:
        return ()

    async def abort(self, code: grpc.StatusCode, details: str, **_: Any) -> None:
        self.aborted = (code, details)
        raise grpc.aio.AbortError()


async def test_work_still_running_at_the_deadline_is_cancelled(
    grpc_server: GrpcServer,
) -> None:
    context = SlowCallContext(seconds_left=0.2)
    stopped: list[str] = []

    async def slow_work(caller: calls.Caller) -> None:
        try:
            await asyncio.sleep(30)
        finally:
            stopped.append("cancelled where it waited")

    with pytest.raises(grpc.aio.AbortError):
        await calls.run(context, grpc_server.resources, slow_work, writes=True)  # type: ignore[arg-type]

    assert stopped == ["cancelled where it waited"]
    assert context.aborted is not None
    assert context.aborted[0] == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_a_call_that_arrives_expired_does_no_work(grpc_server: GrpcServer) -> None:
    context = SlowCallContext(seconds_left=0.001)
    started: list[str] = []

    async def work(caller: calls.Caller) -> None:
        started.append("started")

    with pytest.raises(grpc.aio.AbortError):
        await calls.run(context, grpc_server.resources, work, writes=True)  # type: ignore[arg-type]

    assert started == []


async def test_a_deadline_long_enough_is_met(channel: grpc.aio.Channel) -> None:
    found = await RoadmapsStub(channel).ListRoadmaps(roadmaps_pb2.ListRoadmapsRequest(), timeout=10)

    assert found.total >= 0


def test_the_grpc_command_serves_and_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    env = base_env(f"sqlite+aiosqlite:///{tmp_path / 'grpc.db'}")
    migrate(env["SKILLTREE_DATABASE_URL"])
    port = free_port()
    log = tmp_path / "grpc.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [str(SKILLTREE), "grpc", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=output,
        )
    try:
        assert asyncio.run(_wait_for_health(f"127.0.0.1:{port}", process)) == SERVING
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


async def _wait_for_health(address: str, process: subprocess.Popen[bytes]) -> int:
    # Generous: a loaded machine takes tens of seconds to import and start a server.
    deadline = time.monotonic() + 180
    async with grpc.aio.insecure_channel(address) as channel:
        while time.monotonic() < deadline:
            assert process.poll() is None, "skilltree grpc exited"
            try:
                return await health_of(channel)
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.1)
    raise AssertionError(f"skilltree grpc did not answer on {address}")


async def test_calls_over_the_read_limit_are_resource_exhausted_with_a_retry_delay(
    app: FastAPI,
) -> None:
    resources: Resources = app.state.resources
    limited = resources.settings.model_copy(
        update={"rate_limit": RateLimitSettings(enabled=True, read="2/minute")}
    )
    server = GrpcServer(dataclasses.replace(resources, settings=limited))
    await server.start("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = RoadmapsStub(channel)
            for _ in range(2):
                await stub.ListRoadmaps(roadmaps_pb2.ListRoadmapsRequest())
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.ListRoadmaps(roadmaps_pb2.ListRoadmapsRequest())
    finally:
        await server.stop(grace_seconds=0)

    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(raised.value)  # type: ignore[arg-type]
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert status.details[1].Unpack(retry)
    assert 0 < retry.retry_delay.seconds <= 60
