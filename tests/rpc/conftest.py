"""A real gRPC server on a free loopback port, over the test app's resources, and a client.

The server shares the app's database (the test's rolled-back transaction), clock and fan-out,
as `skilltree grpc` shares them with `skilltree serve`: people sign up and get their keys and
tokens over HTTP, then call over gRPC. gRPC adds nothing a database engine could change (the
services are the REST API's, tested on every backend), so it runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from skilltree.rpc.server import GrpcServer
from tests.support.progress import ada

__all__ = ["ada"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> AsyncEngine:
    selected: AsyncEngine = request.getfixturevalue(f"{request.param}_engine")
    return selected


@pytest.fixture
async def grpc_server(app: FastAPI) -> AsyncIterator[GrpcServer]:
    server = GrpcServer(app.state.resources)
    await server.start("127.0.0.1:0")
    yield server
    await server.stop(grace_seconds=0)


@pytest.fixture
async def channel(grpc_server: GrpcServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_server.port}") as opened:
        yield opened
