"""The GraphQL object types, built from the services' read models (as the REST schemas are).

Field names follow GraphQL's camelCase (strawberry converts `topic_count` to `topicCount`);
values are the REST API's, so a client moving between the two sees the same data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from skilltree.graphql.context import GraphQLContext
from skilltree.orgs import service as orgs
from skilltree.progress import notes
from skilltree.progress.rollup import NodeState
from skilltree.progress.rollup import Tally as RollupTally
from skilltree.reviews import service as reviews
from skilltree.roadmaps import service as roadmaps
from skilltree.roadmaps.builtin.locations import locate

GraphInfo = Info[GraphQLContext, None]


@strawberry.type(description="Where skilltree's own code implements a topic.")
class Reference:
    kind: str = strawberry.field(description="module, endpoint, test or file")
    target: str
    path: str | None = strawberry.field(description="The file that holds it")
    line_start: int | None
    line_end: int | None

    @classmethod
    def of(cls, reference: dict[str, Any], info: GraphInfo) -> Reference:
        kind, target = str(reference["kind"]), str(reference["target"])
        location = locate(kind, target, info.context.endpoints())
        return cls(
            kind=kind,
            target=target,
            path=location.path if location else None,
            line_start=location.line_start if location else None,
            line_end=location.line_end if location else None,
        )


@strawberry.type(description="A topic in a roadmap's tree, with its sub-topics.")
class TopicNode:
    node: strawberry.Private[roadmaps.TopicNode[roadmaps.TopicDetail]]

    @strawberry.field
    def slug(self) -> str:
        return self.node.topic.slug

    @strawberry.field
    def title(self) -> str:
        return self.node.topic.title

    @strawberry.field
    def summary(self) -> str:
        return self.node.topic.summary

    @strawberry.field
    def level(self) -> str | None:
        return self.node.topic.level

    @strawberry.field
    def tags(self) -> list[str]:
        return list(self.node.topic.tags)

    @strawberry.field
    def concept(self) -> str | None:
        return self.node.topic.concept

    @strawberry.field
    def estimate_hours(self) -> float | None:
        return self.node.topic.estimate_hours

    @strawberry.field(description="Where this codebase implements the topic (the concept map).")
    def implemented_in(self, info: GraphInfo) -> list[Reference]:
        return [Reference.of(reference, info) for reference in self.node.topic.implemented_in]

    @strawberry.field
    def children(self) -> list[TopicNode]:
        return [TopicNode(node=child) for child in self.node.children]


@strawberry.type(description="A topic with its place in the tree.")
class TopicLink:
    slug: str
    title: str


@strawberry.type(description="One topic, as GET /v1/roadmaps/{slug}/topics/{topic} shows it.")
class Topic:
    view: strawberry.Private[roadmaps.TopicView]

    @strawberry.field
    def id(self) -> int:
        return self.view.topic.id

    @strawberry.field
    def roadmap(self) -> str:
        return self.view.roadmap.slug

    @strawberry.field
    def slug(self) -> str:
        return self.view.topic.slug

    @strawberry.field
    def title(self) -> str:
        return self.view.topic.title

    @strawberry.field
    def summary(self) -> str:
        return self.view.topic.summary

    @strawberry.field
    def why(self) -> str:
        return self.view.topic.why

    @strawberry.field
    def concept(self) -> str | None:
        return self.view.topic.concept

    @strawberry.field
    def estimate_hours(self) -> float | None:
        return self.view.topic.estimate_hours

    @strawberry.field
    def implemented_in(self, info: GraphInfo) -> list[Reference]:
        return [Reference.of(reference, info) for reference in self.view.topic.implemented_in]

    @strawberry.field(description="Ancestors from the section down to the parent.")
    def path(self) -> list[TopicLink]:
        return [TopicLink(slug=t.slug, title=t.title) for t in self.view.ancestors]

    @strawberry.field
    def children(self) -> list[TopicLink]:
        return [TopicLink(slug=t.slug, title=t.title) for t in self.view.children]


@strawberry.type(description="A roadmap you may see.")
class Roadmap:
    listing: strawberry.Private[roadmaps.RoadmapListing]

    @strawberry.field
    def slug(self) -> str:
        return self.listing.roadmap.slug

    @strawberry.field
    def title(self) -> str:
        return self.listing.roadmap.title

    @strawberry.field
    def description(self) -> str:
        return self.listing.roadmap.description

    @strawberry.field
    def source(self) -> str:
        return self.listing.roadmap.source

    @strawberry.field
    def version(self) -> int:
        return self.listing.roadmap.version

    @strawberry.field
    def visibility(self) -> str:
        return self.listing.roadmap.visibility

    @strawberry.field
    def topic_count(self) -> int:
        return self.listing.topic_count

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.listing.roadmap.updated_at

    @strawberry.field(description="The whole topic tree (batched: one query for every roadmap).")
    async def tree(self, info: GraphInfo) -> list[TopicNode]:
        loaders = info.context.loaders
        assert loaders is not None
        sections = await loaders.trees.load(self.listing.roadmap)
        return [TopicNode(node=node) for node in sections]


@strawberry.type(description="Leaf topics by status, and hours.")
class Tally:
    total: int
    todo: int
    in_progress: int
    done: int
    skipped: int
    percent_done: float
    total_hours: float
    remaining_hours: float

    @classmethod
    def of(cls, tally: RollupTally) -> Tally:
        counts = tally.counts
        return cls(
            total=tally.total,
            todo=counts["todo"],
            in_progress=counts["in_progress"],
            done=counts["done"],
            skipped=counts["skipped"],
            percent_done=tally.percent_done,
            total_hours=round(tally.total_hours, 2),
            remaining_hours=round(tally.remaining_hours, 2),
        )


@strawberry.type(description="A topic's status for you, rolled up from its children.")
class TopicState:
    state: strawberry.Private[NodeState]

    @strawberry.field
    def slug(self) -> str:
        return self.state.node.topic.slug

    @strawberry.field
    def title(self) -> str:
        return self.state.node.topic.title

    @strawberry.field
    def status(self) -> str:
        return self.state.status

    @strawberry.field(description="own, concept, derived or default")
    def source(self) -> str:
        return self.state.source

    @strawberry.field
    def confidence(self) -> int | None:
        return self.state.mark.confidence if self.state.mark else None

    @strawberry.field
    def updated_at(self) -> datetime | None:
        return self.state.mark.updated_at if self.state.mark else None

    @strawberry.field
    def summary(self) -> Tally:
        return Tally.of(self.state.tally)

    @strawberry.field
    def children(self) -> list[TopicState]:
        return [TopicState(state=child) for child in self.state.children]


@strawberry.type(description="Your progress on one roadmap.")
class RoadmapProgress:
    roadmap: str
    summary: Tally
    topics: list[TopicState]


@strawberry.type(description="Your note on a topic (blank before you write one).")
class Note:
    markdown: str
    html: str
    updated_at: datetime | None

    @classmethod
    def of(cls, note: notes.NoteView) -> Note:
        return cls(markdown=note.markdown, html=note.html, updated_at=note.updated_at)


@strawberry.type(description="A review card due now.")
class DueCard:
    id: int
    due: datetime
    roadmap: str | None
    topic: str | None
    title: str | None

    @classmethod
    def of(cls, item: reviews.DueCard) -> DueCard:
        label = item.topic
        return cls(
            id=item.card.id,
            due=item.card.due,
            roadmap=label.roadmap_slug if label else None,
            topic=label.slug if label else None,
            title=label.title if label else None,
        )


@strawberry.type(description="A member of an organisation.")
class Member:
    user_id: int
    display_name: str
    role: str
    joined_at: datetime


@strawberry.type(description="An organisation you belong to, with your role in it.")
class Organisation:
    membership: strawberry.Private[orgs.Member]

    @strawberry.field
    def slug(self) -> str:
        return self.membership.org.slug

    @strawberry.field
    def name(self) -> str:
        return self.membership.org.name

    @strawberry.field
    def role(self) -> str:
        return self.membership.role.value

    @strawberry.field
    def created_at(self) -> datetime:
        return self.membership.org.created_at

    @strawberry.field(description="Every member (batched: one query for every organisation).")
    async def members(self, info: GraphInfo) -> list[Member]:
        loaders = info.context.loaders
        assert loaders is not None
        found = await loaders.members.load(self.membership)
        return [
            Member(
                user_id=m.user_id,
                display_name=m.display_name,
                role=m.role.value,
                joined_at=m.joined_at,
            )
            for m in found
        ]
