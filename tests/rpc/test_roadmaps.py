"""Roadmaps over gRPC: the roadmaps, trees and topics of GET /v1/roadmaps…, by the same rules."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from skilltree.rpc.v1 import roadmaps_pb2 as pb
from skilltree.rpc.v1.roadmaps_pb2_grpc import RoadmapsStub
from tests.support.accounts import Browser, bearer_headers
from tests.support.progress import API, People, import_roadmap


async def test_an_anonymous_caller_lists_the_public_roadmaps(
    channel: grpc.aio.Channel, ada: Browser, people: People
) -> None:
    other = await people("Grace")
    await import_roadmap(other, API, visibility="private")

    found = await RoadmapsStub(channel).ListRoadmaps(pb.ListRoadmapsRequest())

    assert [roadmap.slug for roadmap in found.roadmaps] == ["web"]
    assert found.total == 1
    assert found.roadmaps[0].visibility == "public"
    assert found.roadmaps[0].topic_count == 7


async def test_a_bearer_token_shows_the_callers_private_roadmaps_too(
    channel: grpc.aio.Channel, ada: Browser
) -> None:
    await import_roadmap(ada, API, visibility="private")
    metadata = tuple((await bearer_headers(ada)).items())

    found = await RoadmapsStub(channel).ListRoadmaps(pb.ListRoadmapsRequest(), metadata=metadata)

    assert sorted(roadmap.slug for roadmap in found.roadmaps) == ["api", "web"]


async def test_the_tree_is_the_rest_trees_nesting(channel: grpc.aio.Channel, ada: Browser) -> None:
    rest = (await ada.client.get("/v1/roadmaps/web/tree")).json()

    tree = await RoadmapsStub(channel).GetTree(pb.GetTreeRequest(roadmap="web"))

    def slugs(nodes: list[dict]) -> list:  # type: ignore[type-arg]
        return [(node["slug"], slugs(node["children"])) for node in nodes]

    def grpc_slugs(nodes: list[pb.TopicNode]) -> list:  # type: ignore[type-arg]
        return [(node.slug, grpc_slugs(list(node.children))) for node in nodes]

    assert grpc_slugs(list(tree.topics)) == slugs(rest["topics"])
    assert tree.roadmap.title == "Web"
    status_codes = tree.topics[0].children[0]
    assert status_codes.slug == "status-codes"
    assert status_codes.estimate_hours == 2


async def test_a_topic_has_its_path_and_children(channel: grpc.aio.Channel, ada: Browser) -> None:
    topic = await RoadmapsStub(channel).GetTopic(pb.GetTopicRequest(roadmap="web", topic="caching"))

    assert topic.title == "Caching"
    assert [link.slug for link in topic.path] == ["http"]
    assert [link.slug for link in topic.children] == ["etags", "cache-control"]
    assert not topic.HasField("estimate_hours")


async def test_a_missing_roadmap_is_not_found_with_the_rest_problem(
    channel: grpc.aio.Channel, ada: Browser
) -> None:
    rest = (await ada.client.get("/v1/roadmaps/nowhere/tree")).json()

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await RoadmapsStub(channel).GetTree(pb.GetTreeRequest(roadmap="nowhere"))

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == rest["detail"]
    assert dict(raised.value.trailing_metadata() or ())["problem-type"] == rest["type"]
    status = rpc_status.from_call(raised.value)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.domain, info.reason) == ("skilltree", "ROADMAP_NOT_FOUND")
    assert info.metadata["type"] == rest["type"]
    assert info.metadata["http_status"] == "404"


async def test_someone_elses_private_roadmap_is_not_found_not_forbidden(
    channel: grpc.aio.Channel, ada: Browser, people: People
) -> None:
    other = await people("Grace")
    await import_roadmap(other, API, visibility="private")
    metadata = tuple((await bearer_headers(ada)).items())

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await RoadmapsStub(channel).GetTree(pb.GetTreeRequest(roadmap="api"), metadata=metadata)

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("roadmap", ["", "Not A Slug", "x" * 81])
async def test_a_malformed_slug_is_an_invalid_argument(
    channel: grpc.aio.Channel, roadmap: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await RoadmapsStub(channel).GetTree(pb.GetTreeRequest(roadmap=roadmap))

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(raised.value.trailing_metadata() or ())["problem-type"] == (
        "/problems/validation-error"
    )


async def test_a_page_beyond_the_limit_is_an_invalid_argument(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await RoadmapsStub(channel).ListRoadmaps(pb.ListRoadmapsRequest(limit=101))

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
