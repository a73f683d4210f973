"""`subscription { progressEvents }`: the caller's status changes, live, over graphql-transport-ws.

The changes come from the real-time fan-out (`platform/broadcast.py`): once a status change
commits, `realtime.live.LiveProjector` publishes it on the person's `progress:<id>` channel, in
this process or, with Redis, in every instance, whichever client made it (REST, GraphQL, the web
app). A subscription holds one listener on that channel while it runs and releases it when it
ends: the client completes it, the socket closes, the sign-in is revoked, the client reads too
slowly, or the server shuts down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import strawberry
from prometheus_client import Gauge

from skilltree.accounts.errors import NotAuthenticated
from skilltree.graphql.arguments import slug_argument
from skilltree.graphql.context import GraphQLContext
from skilltree.graphql.types import GraphInfo
from skilltree.identity import Scope
from skilltree.platform.broadcast import Subscription as Listener
from skilltree.platform.errors import DomainError
from skilltree.realtime.live import progress_channel
from skilltree.roadmaps import service as roadmaps

OPEN_SUBSCRIPTIONS = Gauge(
    "skilltree_graphql_subscriptions",
    "GraphQL subscriptions open on this instance (each holds one fan-out listener).",
    multiprocess_mode="livesum",
)


class SubscriptionEnded(DomainError):
    status = 503
    type_slug = "subscription-ended"
    title = "Subscription ended"


@strawberry.type(description="A change of one of your topics' status.")
class ProgressChange:
    progress_event_id: int = strawberry.field(description="The change in your progress history")
    roadmap: str
    topic: str
    title: str
    from_status: str | None = strawberry.field(description="null: no mark before (todo)")
    to_status: str | None = strawberry.field(description="null: the mark was removed (todo)")
    occurred_at: datetime


@dataclass(frozen=True)
class Watch:
    user_id: int
    roadmap_id: int | None  # None: every roadmap

    def wants(self, change: dict[str, Any]) -> bool:
        return self.roadmap_id is None or change.get("roadmap_id") == self.roadmap_id


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Your status changes as they happen, made from any client (needs "
        "progress:read, like GET /v1/me/stream). Over WebSocket at /graphql, graphql-transport-ws."
    )
    async def progress_events(
        self, info: GraphInfo, roadmap: str | None = None
    ) -> AsyncIterator[ProgressChange]:
        # Admitted before the stream starts: a refusal is the protocol's `error` message.
        watch = await _admit(info.context, roadmap)
        return _changes(info.context, watch)


async def _admit(context: GraphQLContext, roadmap: str | None) -> Watch:
    async with context.resources.database.unit_of_work() as session:
        caller = await context.authenticate(session)
        principal = caller.principal_for(Scope.PROGRESS_READ)
        roadmap_id = None
        if roadmap is not None:
            slug = slug_argument(roadmap, "roadmap")
            roadmap_id = (await roadmaps.get_roadmap(session, slug, caller.viewer)).roadmap.id
    return Watch(principal.user_id, roadmap_id)


async def _changes(context: GraphQLContext, watch: Watch) -> AsyncIterator[ProgressChange]:
    resources = context.resources
    settings = resources.settings.realtime
    channel = progress_channel(watch.user_id)
    loop = asyncio.get_running_loop()
    async with resources.broadcaster.subscribe([channel], settings.send_queue) as listener:
        OPEN_SUBSCRIPTIONS.inc()
        try:
            next_check = loop.time() + settings.credential_check_seconds
            while True:
                delivery = await listener.next(max(next_check - loop.time(), 0.0))
                _check_open(listener)
                if delivery is not None:
                    if watch.wants(delivery.message):
                        yield await _change_of(context, delivery.message)
                    continue
                if loop.time() >= next_check:
                    await _check_signed_in(context)
                    next_check = loop.time() + settings.credential_check_seconds
        finally:
            OPEN_SUBSCRIPTIONS.dec()


def _check_open(listener: Listener) -> None:
    if listener.ended is not None:
        raise SubscriptionEnded(f"{listener.ended}: subscribe again.")
    if listener.overflowed:
        raise SubscriptionEnded("Too slow: the changes came faster than you read them.")


async def _check_signed_in(context: GraphQLContext) -> None:
    """The socket's credential, authenticated again as a new request would be (decision 0037)."""
    async with context.resources.database.unit_of_work() as session:
        caller = await context.authenticate(session)
    if caller.failure is not None or caller.principal is None:
        context.signed_out = True
        raise NotAuthenticated("Your sign-in ended: sign in again.")


async def _change_of(context: GraphQLContext, change: dict[str, Any]) -> ProgressChange:
    topic_id = int(change["topic_id"])
    async with context.resources.database.unit_of_work(writes=False) as session:
        label = (await roadmaps.topic_labels(session, [topic_id])).get(topic_id)
    return ProgressChange(
        progress_event_id=int(change["progress_event_id"]),
        roadmap=label.roadmap_slug if label else "",
        topic=str(change["topic"]),
        title=label.title if label else "",
        from_status=change.get("from"),
        to_status=change.get("to"),
        occurred_at=datetime.fromisoformat(str(change["occurred_at"])),
    )
