"""WatchProgress: the caller's status changes, pushed by the live fan-out as they commit, to a
stream that ends its subscription when the client hangs up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import pytest
from fastapi import FastAPI

from skilltree.identity import Scope
from skilltree.platform.broadcast import Broadcaster
from skilltree.rpc.server import GrpcServer
from skilltree.rpc.v1 import progress_pb2 as pb
from skilltree.rpc.v1.progress_pb2_grpc import ProgressStub
from tests.support.accounts import Browser
from tests.support.progress import People, mark
from tests.support.rpc import api_key_metadata, token_metadata

WAIT = 5.0


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait for what the server does on its own time (subscribing, unsubscribing)."""
    async with asyncio.timeout(WAIT):
        while not condition():  # noqa: ASYNC110  (no event to wait on: the count is polled)
            await asyncio.sleep(0.01)


class Watchers:
    """Subscribers of the app's fan-out beyond those it had at the start (feature flags listen
    to it too)."""

    def __init__(self, app: FastAPI) -> None:
        self.broadcaster: Broadcaster = app.state.resources.broadcaster
        self.before = self.broadcaster.subscriber_count()

    def count(self) -> int:
        return self.broadcaster.subscriber_count() - self.before


async def test_a_change_made_over_rest_reaches_the_stream(
    app: FastAPI, channel: grpc.aio.Channel, ada: Browser
) -> None:
    watchers = Watchers(app)
    call = ProgressStub(channel).WatchProgress(
        pb.WatchProgressRequest(), metadata=await token_metadata(ada)
    )
    await eventually(lambda: watchers.count() == 1)

    await mark(ada, "etags", "done")
    event = await asyncio.wait_for(call.read(), WAIT)

    assert isinstance(event, pb.ProgressEvent)
    assert (event.roadmap, event.topic) == ("web", "etags")
    assert (event.from_status, event.to_status) == (
        pb.TOPIC_STATUS_UNSPECIFIED,
        pb.TOPIC_STATUS_DONE,
    )
    assert event.id
    call.cancel()


async def test_a_change_made_over_grpc_reaches_the_stream_and_no_one_elses(
    app: FastAPI, channel: grpc.aio.Channel, ada: Browser, people: People
) -> None:
    watchers = Watchers(app)
    # (One call at a time on the test's single database connection: each call's sign-in
    # is done before the next begins.)
    ada_metadata = await token_metadata(ada)
    grace_metadata = await token_metadata(await people("Grace"))
    stub = ProgressStub(channel)
    ada_call = stub.WatchProgress(pb.WatchProgressRequest(), metadata=ada_metadata)
    await eventually(lambda: watchers.count() == 1)
    grace_call = stub.WatchProgress(pb.WatchProgressRequest(), metadata=grace_metadata)
    await eventually(lambda: watchers.count() == 2)

    await stub.SetStatus(
        pb.SetStatusRequest(roadmap="web", topic="indexes", status=pb.TOPIC_STATUS_IN_PROGRESS),
        metadata=ada_metadata,
    )
    event = await asyncio.wait_for(ada_call.read(), WAIT)

    assert (event.topic, event.to_status) == ("indexes", pb.TOPIC_STATUS_IN_PROGRESS)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(grace_call.read(), 0.3)
    ada_call.cancel()
    grace_call.cancel()


async def test_a_client_that_hangs_up_leaves_no_subscriber_behind(
    app: FastAPI, channel: grpc.aio.Channel, ada: Browser
) -> None:
    watchers = Watchers(app)
    call = ProgressStub(channel).WatchProgress(
        pb.WatchProgressRequest(), metadata=await token_metadata(ada)
    )
    await eventually(lambda: watchers.count() == 1)

    call.cancel()

    await eventually(lambda: watchers.count() == 0)


async def test_a_closed_channel_leaves_no_subscriber_behind(
    app: FastAPI, grpc_server: GrpcServer, ada: Browser
) -> None:
    watchers = Watchers(app)
    metadata = await token_metadata(ada)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_server.port}") as own_channel:
        ProgressStub(own_channel).WatchProgress(pb.WatchProgressRequest(), metadata=metadata)
        await eventually(lambda: watchers.count() == 1)

    await eventually(lambda: watchers.count() == 0)


async def test_resuming_after_an_id_replays_what_was_missed(
    app: FastAPI, channel: grpc.aio.Channel, ada: Browser
) -> None:
    watchers = Watchers(app)
    metadata = await token_metadata(ada)
    stub = ProgressStub(channel)
    first = stub.WatchProgress(pb.WatchProgressRequest(), metadata=metadata)
    await eventually(lambda: watchers.count() == 1)
    await mark(ada, "etags", "done")
    seen = await asyncio.wait_for(first.read(), WAIT)
    first.cancel()
    await mark(ada, "indexes", "skipped")  # while no one watches

    resumed = stub.WatchProgress(pb.WatchProgressRequest(after_id=seen.id), metadata=metadata)
    missed = await asyncio.wait_for(resumed.read(), WAIT)

    assert (missed.topic, missed.to_status) == ("indexes", pb.TOPIC_STATUS_SKIPPED)
    resumed.cancel()


async def test_watching_needs_the_read_scope(channel: grpc.aio.Channel, ada: Browser) -> None:
    call = ProgressStub(channel).WatchProgress(
        pb.WatchProgressRequest(), metadata=await api_key_metadata(ada, Scope.PROGRESS_WRITE)
    )

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call.read()

    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_stream_ends_at_its_deadline_and_unsubscribes(
    app: FastAPI, channel: grpc.aio.Channel, ada: Browser
) -> None:
    watchers = Watchers(app)
    call = ProgressStub(channel).WatchProgress(
        pb.WatchProgressRequest(), metadata=await token_metadata(ada), timeout=0.5
    )
    await eventually(lambda: watchers.count() == 1)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call.read()

    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await eventually(lambda: watchers.count() == 0)


async def test_shutdown_ends_streams_as_unavailable(
    app: FastAPI, grpc_server: GrpcServer, channel: grpc.aio.Channel, ada: Browser
) -> None:
    watchers = Watchers(app)
    call = ProgressStub(channel).WatchProgress(
        pb.WatchProgressRequest(), metadata=await token_metadata(ada)
    )
    await eventually(lambda: watchers.count() == 1)

    stopping = asyncio.create_task(grpc_server.stop(grace_seconds=2))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await asyncio.wait_for(call.read(), WAIT)
    await stopping

    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert watchers.count() <= 0  # (the drain ends the feature flags' listener too)
