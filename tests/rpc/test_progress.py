"""Progress over gRPC: SetStatus and Summary as the REST API records and counts them."""

from __future__ import annotations

import grpc
import pytest

from skilltree.identity import Scope
from skilltree.rpc.v1 import progress_pb2 as pb
from skilltree.rpc.v1.progress_pb2_grpc import ProgressStub
from tests.support.accounts import Browser
from tests.support.progress import mark
from tests.support.rpc import api_key_metadata, problem_type, token_metadata


async def test_set_status_records_what_rest_reads(channel: grpc.aio.Channel, ada: Browser) -> None:
    metadata = await token_metadata(ada)

    stored = await ProgressStub(channel).SetStatus(
        pb.SetStatusRequest(
            roadmap="web", topic="etags", status=pb.TOPIC_STATUS_DONE, confidence=4
        ),
        metadata=metadata,
    )

    assert (stored.roadmap, stored.topic, stored.status) == ("web", "etags", pb.TOPIC_STATUS_DONE)
    assert stored.confidence == 4
    rest = (await ada.client.get("/v1/me/progress/web/summary")).json()
    assert rest["summary"]["counts"]["done"] == 1


async def test_the_summary_counts_as_rests_does(channel: grpc.aio.Channel, ada: Browser) -> None:
    await mark(ada, "etags", "done")
    await mark(ada, "indexes", "in_progress")
    rest = (await ada.client.get("/v1/me/progress/web/summary")).json()

    summary = await ProgressStub(channel).Summary(
        pb.SummaryRequest(roadmap="web"), metadata=await token_metadata(ada)
    )

    assert summary.summary.total == rest["summary"]["total"] == 4
    assert (summary.summary.done, summary.summary.in_progress) == (1, 1)
    assert summary.summary.percent_done == rest["summary"]["percent_done"]
    assert summary.summary.remaining_hours == rest["summary"]["remaining_hours"]
    assert [(s.slug, s.status) for s in summary.sections] == [
        ("http", pb.TOPIC_STATUS_IN_PROGRESS),
        ("databases", pb.TOPIC_STATUS_IN_PROGRESS),
    ]


async def test_an_api_key_with_the_scopes_reads_and_writes(
    channel: grpc.aio.Channel, ada: Browser
) -> None:
    metadata = await api_key_metadata(ada, Scope.PROGRESS_READ, Scope.PROGRESS_WRITE)
    stub = ProgressStub(channel)

    await stub.SetStatus(
        pb.SetStatusRequest(roadmap="web", topic="indexes", status=pb.TOPIC_STATUS_SKIPPED),
        metadata=metadata,
    )
    summary = await stub.Summary(pb.SummaryRequest(roadmap="web"), metadata=metadata)

    assert summary.summary.skipped == 1


async def test_no_credentials_is_unauthenticated(channel: grpc.aio.Channel, ada: Browser) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ProgressStub(channel).Summary(pb.SummaryRequest(roadmap="web"))

    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert problem_type(raised.value) == "/problems/not-authenticated"


@pytest.mark.parametrize(
    "authorization", ["Bearer not-a-real-token", "Bearer st_nonexistentkey", "Basic YWRhOnB3"]
)
async def test_a_bad_credential_is_unauthenticated_even_where_anonymous_would_do(
    channel: grpc.aio.Channel, ada: Browser, authorization: str
) -> None:
    from skilltree.rpc.v1 import roadmaps_pb2
    from skilltree.rpc.v1.roadmaps_pb2_grpc import RoadmapsStub

    metadata = (("authorization", authorization),)
    with pytest.raises(grpc.aio.AioRpcError) as summary:
        await ProgressStub(channel).Summary(pb.SummaryRequest(roadmap="web"), metadata=metadata)
    with pytest.raises(grpc.aio.AioRpcError) as listing:
        await RoadmapsStub(channel).ListRoadmaps(
            roadmaps_pb2.ListRoadmapsRequest(), metadata=metadata
        )

    assert summary.value.code() == listing.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_an_api_key_without_the_write_scope_is_permission_denied_and_changes_nothing(
    channel: grpc.aio.Channel, ada: Browser
) -> None:
    metadata = await api_key_metadata(ada, Scope.PROGRESS_READ)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ProgressStub(channel).SetStatus(
            pb.SetStatusRequest(roadmap="web", topic="etags", status=pb.TOPIC_STATUS_DONE),
            metadata=metadata,
        )

    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert problem_type(raised.value) == "/problems/insufficient-scope"
    rest = (await ada.client.get("/v1/me/progress/web/summary")).json()
    assert rest["summary"]["counts"]["done"] == 0


async def test_an_api_key_without_the_read_scope_cannot_read(
    channel: grpc.aio.Channel, ada: Browser
) -> None:
    metadata = await api_key_metadata(ada, Scope.PROGRESS_WRITE)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ProgressStub(channel).Summary(pb.SummaryRequest(roadmap="web"), metadata=metadata)

    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"topic": "etags"}, "status"),
        ({"topic": "etags", "status": pb.TOPIC_STATUS_DONE, "confidence": 9}, "confidence"),
        ({"topic": "Not a slug", "status": pb.TOPIC_STATUS_DONE}, "topic"),
    ],
)
async def test_bad_input_is_an_invalid_argument_that_changes_nothing(
    channel: grpc.aio.Channel, ada: Browser, request_fields: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ProgressStub(channel).SetStatus(
            pb.SetStatusRequest(roadmap="web", **request_fields),  # type: ignore[arg-type]
            metadata=await token_metadata(ada),
        )

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in str(dict(raised.value.trailing_metadata() or ()))
    history = (await ada.client.get("/v1/me/progress/web/history")).json()
    assert history["items"] == []


async def test_an_unknown_topic_is_not_found(channel: grpc.aio.Channel, ada: Browser) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ProgressStub(channel).SetStatus(
            pb.SetStatusRequest(roadmap="web", topic="nothing", status=pb.TOPIC_STATUS_DONE),
            metadata=await token_metadata(ada),
        )

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_call_past_its_deadline_is_deadline_exceeded_and_changes_nothing(
    channel: grpc.aio.Channel, ada: Browser
) -> None:
    metadata = await token_metadata(ada)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ProgressStub(channel).SetStatus(
            pb.SetStatusRequest(roadmap="web", topic="etags", status=pb.TOPIC_STATUS_DONE),
            metadata=metadata,
            timeout=0.000_001,
        )

    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    history = (await ada.client.get("/v1/me/progress/web/history")).json()
    assert history["items"] == []


async def test_a_cached_summary_is_fresh_after_a_change(
    channel: grpc.aio.Channel, ada: Browser
) -> None:
    metadata = await token_metadata(ada)
    stub = ProgressStub(channel)
    before = await stub.Summary(pb.SummaryRequest(roadmap="web"), metadata=metadata)

    await mark(ada, "etags", "done")
    after = await stub.Summary(pb.SummaryRequest(roadmap="web"), metadata=metadata)

    assert (before.summary.done, after.summary.done) == (0, 1)
