"""`skilltree.v1.Roadmaps`: the roadmap reads of GET /v1/roadmaps…, over gRPC.

Each method asks for what its REST twin's dependency asks for (the `CurrentViewer`: anonymous
callers see public roadmaps), calls the same service function, and shapes the answer with the
same presenters before it becomes protobuf.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf import timestamp_pb2

from skilltree.identity import Visibility
from skilltree.platform.cache import Computed, Key
from skilltree.platform.filtering import parse_list_query
from skilltree.platform.http.rate_limit import RateLimiter
from skilltree.platform.state import Resources
from skilltree.roadmaps import service
from skilltree.roadmaps.listing import ROADMAP_LIST
from skilltree.roadmaps.presenters import roadmap_out, topic_out
from skilltree.roadmaps.schemas import ReferenceOut, RoadmapOut
from skilltree.rpc.calls import Caller, Context, run, slug
from skilltree.rpc.problems import InvalidArgument
from skilltree.rpc.v1 import roadmaps_pb2 as pb
from skilltree.rpc.v1.roadmaps_pb2_grpc import RoadmapsServicer

DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET = 50, 100, 1_000_000  # those of GET /v1/roadmaps


class Roadmaps(RoadmapsServicer):
    def __init__(self, resources: Resources, limiter: RateLimiter | None = None) -> None:
        self.resources = resources
        self.limiter = limiter

    async def ListRoadmaps(
        self, request: pb.ListRoadmapsRequest, context: Context
    ) -> pb.ListRoadmapsResponse:
        async def work(caller: Caller) -> pb.ListRoadmapsResponse:
            limit = request.limit or DEFAULT_LIMIT
            if not (1 <= limit <= MAX_LIMIT and 0 <= request.offset <= MAX_OFFSET):
                raise InvalidArgument(
                    f"limit must be between 1 and {MAX_LIMIT}, offset between 0 and {MAX_OFFSET}."
                )
            query = parse_list_query([], ROADMAP_LIST)
            listings, total = await service.list_roadmaps(
                caller.session, caller.viewer, query, limit, request.offset
            )
            return pb.ListRoadmapsResponse(
                roadmaps=[_roadmap(roadmap_out(item)) for item in listings], total=total
            )

        return await run(context, self.resources, work, writes=False, limiter=self.limiter)

    async def GetTree(self, request: pb.GetTreeRequest, context: Context) -> pb.RoadmapTree:
        async def work(caller: Caller) -> pb.RoadmapTree:
            roadmap = slug(request.roadmap, "roadmap")

            async def render() -> Computed:
                tree = await service.get_tree(caller.session, roadmap, caller.viewer)
                listing = service.RoadmapListing(tree.roadmap, tree.topic_count)
                message = pb.RoadmapTree(
                    roadmap=_roadmap(roadmap_out(listing)),
                    topics=[_node(node) for node in tree.sections],
                )
                public = tree.roadmap.visibility == Visibility.PUBLIC
                return Computed(message.SerializeToString(), shareable=public)

            # Beside the REST tree's entry, under the same namespace: the same writes make
            # both stale. Only a public roadmap's tree is stored (`shareable`), as over REST.
            key = Key(f"roadmap:{roadmap}:tree:protobuf", (service.cache_namespace(roadmap),))
            ttl = caller.resources.settings.cache.roadmap_ttl_seconds
            return pb.RoadmapTree.FromString(await caller.resources.cache.fetch(key, render, ttl))

        return await run(context, self.resources, work, writes=False, limiter=self.limiter)

    async def GetTopic(self, request: pb.GetTopicRequest, context: Context) -> pb.Topic:
        async def work(caller: Caller) -> pb.Topic:
            roadmap, topic = slug(request.roadmap, "roadmap"), slug(request.topic, "topic")
            view = await service.get_topic(caller.session, roadmap, topic, caller.viewer)
            # No HTTP routes here to find endpoint references in: modules and tests are found.
            out = topic_out(view)
            return pb.Topic(
                id=out.id,
                roadmap=out.roadmap,
                slug=out.slug,
                title=out.title,
                summary=out.summary,
                why=out.why,
                level=out.level or "",
                tags=out.tags,
                concept=out.concept or "",
                estimate_hours=out.estimate_hours,
                implemented_in=[_reference(item) for item in out.implemented_in],
                path=[pb.TopicLink(slug=t.slug, title=t.title) for t in out.path],
                children=[pb.TopicLink(slug=t.slug, title=t.title) for t in out.children],
            )

        return await run(context, self.resources, work, writes=False, limiter=self.limiter)


def _roadmap(out: RoadmapOut) -> pb.Roadmap:
    return pb.Roadmap(
        slug=out.slug,
        title=out.title,
        description=out.description,
        source=out.source,
        version=out.version,
        visibility=out.visibility,
        topic_count=out.topic_count,
        updated_at=timestamp(out.updated_at),
    )


def _node(node: service.TopicNode[service.TopicDetail]) -> pb.TopicNode:
    topic = node.topic
    return pb.TopicNode(
        slug=topic.slug,
        title=topic.title,
        summary=topic.summary,
        level=topic.level or "",
        tags=topic.tags,
        implemented=bool(topic.implemented_in),
        concept=topic.concept or "",
        estimate_hours=topic.estimate_hours,
        children=[_node(child) for child in node.children],
    )


def _reference(out: ReferenceOut) -> pb.Reference:
    return pb.Reference(
        kind=out.kind,
        target=out.target,
        path=out.path or "",
        line_start=out.line_start or 0,
        line_end=out.line_end or 0,
    )


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp
