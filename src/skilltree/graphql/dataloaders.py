"""Batched loading of every relation a GraphQL document may nest, so no query runs per item.

A list of roadmaps each asking for its tree, or of organisations each asking for its members,
is answered by one batched service call per relation and level, whatever the list's length
(`tests/graphql/test_queries.py` counts the statements). Each loader lives for one request:
its cache never serves one caller's data to another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from skilltree.orgs import service as orgs
from skilltree.roadmaps import service as roadmaps

if TYPE_CHECKING:
    from skilltree.graphql.context import GraphQLContext


# A roadmap's sections, each with its subtopics.
Sections = tuple[roadmaps.TopicNode[roadmaps.TopicDetail], ...]


class Loaders:
    def __init__(self, context: GraphQLContext) -> None:
        self._context = context
        # Keys are roadmaps the caller was already shown (listing applied visibility).
        self.trees: DataLoader[roadmaps.RoadmapRef, Sections] = DataLoader(
            self._trees, cache_key_fn=lambda roadmap: roadmap.id
        )
        # Keys are the caller's own memberships (from orgs.my_orgs / membership_of).
        self.members: DataLoader[orgs.Member, list[orgs.MemberView]] = DataLoader(
            self._members, cache_key_fn=lambda member: member.org.id
        )

    async def _trees(self, listed: Sequence[roadmaps.RoadmapRef]) -> list[Sections]:
        async with self._context.db() as session:
            trees = await roadmaps.trees_of(session, listed)
        return [trees[roadmap.id] for roadmap in listed]

    async def _members(self, memberships: Sequence[orgs.Member]) -> list[list[orgs.MemberView]]:
        async with self._context.db() as session:
            found = await orgs.members_of_orgs(session, memberships)
        return [found[member.org.id] for member in memberships]
