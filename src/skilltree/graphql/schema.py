"""The GraphQL schema: queries and mutations over the same services the REST routes call.

Each resolver asks the context for what its REST twin's dependency asks for (`viewer()` for
`CurrentViewer`, `learner(Scope.PROGRESS_READ)` for progress's `Reader`, `principal()` for
`CurrentPrincipal`), validates its arguments with the REST request models, and calls one
service function. No rule lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache, partial

import strawberry
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)
from strawberry.extensions.base_extension import SchemaExtension
from strawberry.types import ExecutionContext

from graphql import GraphQLError
from skilltree.graphql.arguments import bounded, checked, slug_argument
from skilltree.graphql.extensions import ProblemErrors, UnitOfWork
from skilltree.graphql.subscriptions import Subscription
from skilltree.graphql.types import (
    DueCard,
    GraphInfo,
    Note,
    Organisation,
    Roadmap,
    RoadmapProgress,
    Tally,
    Topic,
    TopicState,
)
from skilltree.identity import Scope
from skilltree.orgs import service as orgs
from skilltree.platform.config import Settings
from skilltree.platform.filtering import parse_list_query
from skilltree.platform.http.conditional import PreconditionFailed, PreconditionRequired
from skilltree.platform.pagination import MAX_PAGE_SIZE
from skilltree.progress import notes
from skilltree.progress import service as progress
from skilltree.progress.schemas import NoteIn, StatusIn
from skilltree.reviews import service as reviews
from skilltree.reviews.schemas import ReviewIn
from skilltree.roadmaps import service as roadmaps
from skilltree.roadmaps.listing import ROADMAP_LIST


@strawberry.type(description="One page of the roadmaps you may see.")
class RoadmapPage:
    items: list[Roadmap]
    total: int


@strawberry.type(description="What you, the caller, have: progress, notes, reviews, teams.")
class Me:
    user_id: int

    @strawberry.field(description="Like GET /v1/me/progress/{roadmap} (needs progress:read).")
    async def progress(self, info: GraphInfo, roadmap: str) -> RoadmapProgress:
        learner = info.context.learner(Scope.PROGRESS_READ)
        slug = slug_argument(roadmap, "roadmap")
        async with info.context.db() as session:
            found = await progress.roadmap_progress(session, learner, slug)
        return RoadmapProgress(
            roadmap=slug,
            summary=Tally.of(found.tally),
            topics=[TopicState(state=state) for state in found.sections],
        )

    @strawberry.field(description="Like GET /v1/me/progress/{roadmap}/{topic}/note.")
    async def note(self, info: GraphInfo, roadmap: str, topic: str) -> Note:
        learner = info.context.learner(Scope.PROGRESS_READ)
        slug, topic_slug = slug_argument(roadmap, "roadmap"), slug_argument(topic, "topic")
        async with info.context.db() as session:
            found = await notes.get_note(session, learner.user_id, learner.viewer, slug, topic_slug)
        return Note.of(found)

    @strawberry.field(description="Like GET /v1/me/reviews/due: the longest-waiting first.")
    async def reviews_due(self, info: GraphInfo, limit: int = 20) -> list[DueCard]:
        learner = info.context.learner(Scope.PROGRESS_READ)
        bounded(limit, "limit", 1, MAX_PAGE_SIZE)
        now = info.context.resources.clock.now()
        async with info.context.db() as session:
            page = await reviews.due_cards(session, learner.user_id, now, None, limit)
        return [DueCard.of(item) for item in page.items]

    @strawberry.field(description="Like GET /v1/orgs: the organisations you belong to.")
    async def organisations(self, info: GraphInfo) -> list[Organisation]:
        caller = info.context.principal()
        async with info.context.db() as session:
            found = await orgs.my_orgs(session, caller)
        return [Organisation(membership=orgs.Member(org, role, caller)) for org, role in found]

    @strawberry.field(description="Like GET /v1/orgs/{org}: one of your organisations.")
    async def organisation(self, info: GraphInfo, slug: str) -> Organisation:
        caller = info.context.principal()
        org = slug_argument(slug, "slug")
        async with info.context.db() as session:
            return Organisation(membership=await orgs.membership_of(session, org, caller))


@strawberry.type
class Query:
    @strawberry.field(description="Like GET /v1/roadmaps: the roadmaps you may see, by title.")
    async def roadmaps(self, info: GraphInfo, limit: int = 50, offset: int = 0) -> RoadmapPage:
        viewer = info.context.viewer()
        bounded(limit, "limit", 1, MAX_PAGE_SIZE)
        bounded(offset, "offset", 0, 1_000_000)
        query = parse_list_query([], ROADMAP_LIST)
        async with info.context.db() as session:
            listings, total = await roadmaps.list_roadmaps(session, viewer, query, limit, offset)
        return RoadmapPage(items=[Roadmap(listing=item) for item in listings], total=total)

    @strawberry.field(description="Like GET /v1/roadmaps/{slug}.")
    async def roadmap(self, info: GraphInfo, slug: str) -> Roadmap:
        viewer = info.context.viewer()
        async with info.context.db() as session:
            listing = await roadmaps.get_roadmap(session, slug_argument(slug, "slug"), viewer)
        return Roadmap(listing=listing)

    @strawberry.field(description="Like GET /v1/roadmaps/{roadmap}/topics/{slug}.")
    async def topic(self, info: GraphInfo, roadmap: str, slug: str) -> Topic:
        viewer = info.context.viewer()
        roadmap_slug, topic_slug = slug_argument(roadmap, "roadmap"), slug_argument(slug, "slug")
        async with info.context.db() as session:
            view = await roadmaps.get_topic(session, roadmap_slug, topic_slug, viewer)
        return Topic(view=view)

    @strawberry.field(description="You: needs a session, an access token or an API key.")
    def me(self, info: GraphInfo) -> Me:
        return Me(user_id=info.context.principal().user_id)


@strawberry.type(description="A topic's status after a change.")
class TopicProgress:
    roadmap: str
    topic: str
    status: str
    confidence: int | None
    updated_at: datetime


@strawberry.type(description="What an undo reverted.")
class Undone:
    undone_event_id: int
    topic: str
    from_status: str | None
    to_status: str | None


@strawberry.type(description="A review recorded, and when the card is due next.")
class Reviewed:
    id: int
    rating: str
    reviewed_at: datetime
    due: datetime


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Like PUT /v1/me/progress/{roadmap}/{topic}.")
    async def set_status(
        self,
        info: GraphInfo,
        roadmap: str,
        topic: str,
        status: str,
        confidence: int | None = None,
    ) -> TopicProgress:
        learner = info.context.learner(Scope.PROGRESS_WRITE)
        slug, topic_slug = slug_argument(roadmap, "roadmap"), slug_argument(topic, "topic")
        body = checked(StatusIn, status=status, confidence=confidence)
        async with info.context.db() as session:
            mark = await progress.set_status(
                session, learner, slug, topic_slug, body.status, body.confidence
            )
        return TopicProgress(
            roadmap=slug,
            topic=topic_slug,
            status=body.status,
            confidence=mark.confidence,
            updated_at=mark.updated_at,
        )

    @strawberry.mutation(description="Like POST /v1/me/progress/{roadmap}/undo.")
    async def undo(self, info: GraphInfo, roadmap: str) -> Undone:
        learner = info.context.learner(Scope.PROGRESS_WRITE)
        slug = slug_argument(roadmap, "roadmap")
        async with info.context.db() as session:
            event, topic = await progress.undo_last(session, learner, slug)
        assert event.undoes_event_id is not None
        return Undone(
            undone_event_id=event.undoes_event_id,
            topic=topic.slug,
            from_status=event.from_status,
            to_status=event.to_status,
        )

    @strawberry.mutation(
        description="Like PUT /v1/me/progress/{roadmap}/{topic}/note. Replacing a stored note "
        "needs `ifUpdatedAt`, its `updatedAt` as you read it (the REST API's If-Match)."
    )
    async def save_note(
        self,
        info: GraphInfo,
        roadmap: str,
        topic: str,
        markdown: str,
        if_updated_at: datetime | None = None,
    ) -> Note:
        learner = info.context.learner(Scope.PROGRESS_WRITE)
        slug, topic_slug = slug_argument(roadmap, "roadmap"), slug_argument(topic, "topic")
        body = checked(NoteIn, markdown=markdown)

        def check(current: notes.NoteView) -> None:
            if not current.stored:
                return  # a first write loses nobody's work
            if if_updated_at is None:
                raise PreconditionRequired("Send ifUpdatedAt: the note's updatedAt as you read it.")
            if current.updated_at != if_updated_at:
                raise PreconditionFailed("The note changed since you read it; read it again.")

        async with info.context.db() as session:
            saved = await notes.save_note(
                session,
                learner.user_id,
                learner.viewer,
                slug,
                topic_slug,
                markdown=body.markdown,
                max_chars=info.context.resources.settings.progress.note_max_chars,
                now=learner.clock.now(),
                check=check,
            )
        return Note.of(saved.note)

    @strawberry.mutation(description="Like POST /v1/me/reviews/{card}: again, hard, good or easy.")
    async def review_card(self, info: GraphInfo, card_id: int, rating: str) -> Reviewed:
        learner = info.context.learner(Scope.PROGRESS_WRITE)
        bounded(card_id, "cardId", 1, 2**31 - 1)
        body = checked(ReviewIn, rating=rating)
        now = learner.clock.now()
        async with info.context.db() as session:
            card = await reviews.review(session, learner.user_id, card_id, body.rating, now)
        return Reviewed(id=card.id, rating=body.rating.value, reviewed_at=now, due=card.due)


def _introspection_allowed(settings: Settings) -> bool:
    configured = settings.graphql.introspection
    return settings.app.env != "production" if configured is None else configured


def build_schema(settings: Settings) -> strawberry.Schema:
    """The schema with this installation's limits (docs/api-styles.md)."""
    limits = settings.graphql
    return _schema(
        limits.max_depth, limits.max_aliases, limits.max_tokens, _introspection_allowed(settings)
    )


@cache
def _schema(
    max_depth: int, max_aliases: int, max_tokens: int, introspection: bool
) -> strawberry.Schema:
    """Built once per set of limits: building walks every type (tens of milliseconds), and a
    schema holds no per-request state, so every app of a process may share it."""
    # Factories, not instances: each request gets extensions of its own.
    extensions: list[Callable[[], SchemaExtension]] = [
        ProblemErrors,
        UnitOfWork,
        partial(QueryDepthLimiter, max_depth=max_depth),
        partial(MaxAliasesLimiter, max_alias_count=max_aliases),
        partial(MaxTokensLimiter, max_token_count=max_tokens),
    ]
    if not introspection:
        extensions.append(partial(AddValidationRules, [NoSchemaIntrospectionCustomRule]))
    return Schema(query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions)


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Expected errors are answers, not incidents: `ProblemErrors` logs the bugs."""
