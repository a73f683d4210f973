"""HTTP routes for custom roadmaps: create, edit, fork, and publish revisions.

Creating routes accept an Idempotency-Key; changing routes require If-Match with the ETag of
the representation being changed (428 without it, 412 when stale). Each route checks, in this
order: signed in (401), can see (404), may edit (403), precondition (428/412).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status

from skilltree.identity import Principal
from skilltree.platform.http import conditional
from skilltree.platform.http.conditional import RequireIfMatch
from skilltree.platform.http.idempotency import IDEMPOTENT
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.observability.context import current_request_id
from skilltree.platform.state import AppResources, DbSession
from skilltree.roadmaps import editing, progress_link, revisions, service
from skilltree.roadmaps.dependencies import (
    CurrentViewer,
    RoadmapWriter,
    SlugPath,
    TopicSlugPath,
    WriterViewer,
)
from skilltree.roadmaps.editing import Access, Editor, NewTopic, RoadmapChanges, TopicChanges
from skilltree.roadmaps.policies import Visibility
from skilltree.roadmaps.presenters import cache_control, roadmap_out, route_handlers, topic_out
from skilltree.roadmaps.schemas import (
    ForkIn,
    RevisionDocumentOut,
    RevisionIn,
    RevisionListOut,
    RevisionOut,
    RoadmapIn,
    RoadmapOut,
    RoadmapPatchIn,
    TopicIn,
    TopicOut,
    TopicPatchIn,
)

router = APIRouter(prefix=API_PREFIX, tags=["custom roadmaps"])

CREATE_ERRORS = problem_responses(401, 403, 404, 409, 422)
UPDATE_ERRORS = problem_responses(401, 403, 404, 409, 412, 422, 428)
RevisionNumber = Annotated[int, Path(ge=1, le=1_000_000)]


@router.post(
    "/roadmaps",
    response_model=RoadmapOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[IDEMPOTENT],
    responses=CREATE_ERRORS,
)
async def create_roadmap(
    request: Request,
    body: RoadmapIn,
    writer: RoadmapWriter,
    viewer: WriterViewer,
    session: DbSession,
    resources: AppResources,
) -> Response:
    """Create an empty roadmap that you own (private unless you say otherwise)."""
    access = await _access(session, writer, body.visibility, body.org)
    listing = await editing.create_roadmap(
        session,
        Editor(viewer, resources.clock),
        slug=body.slug,
        title=body.title,
        description=body.description,
        access=access,
    )
    return _created_roadmap(request, listing, resources)


@router.patch("/roadmaps/{slug}", response_model=RoadmapOut, responses=UPDATE_ERRORS)
async def update_roadmap(
    request: Request,
    slug: SlugPath,
    body: RoadmapPatchIn,
    writer: RoadmapWriter,
    viewer: WriterViewer,
    precondition: RequireIfMatch,
    session: DbSession,
    resources: AppResources,
) -> Response:
    """Rename, re-describe or share a roadmap. Requires If-Match."""
    precondition.check(roadmap_out(await editing.editable_roadmap(session, slug, viewer)))
    access = None
    if body.visibility is not None or body.org is not None:
        # An org without visibility=organisation is refused (422) by organisation_for.
        org_id = await service.organisation_for(session, writer, body.visibility, body.org)
        access = Access(body.visibility, org_id) if body.visibility else None
    changes = RoadmapChanges(title=body.title, description=body.description, access=access)
    listing = await editing.update_roadmap(session, Editor(viewer, resources.clock), slug, changes)
    return conditional.respond(
        request, roadmap_out(listing), cache_control=cache_control(listing.roadmap, resources)
    )


@router.post(
    "/roadmaps/{slug}/forks",
    response_model=RoadmapOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[IDEMPOTENT],
    responses=CREATE_ERRORS,
)
async def fork_roadmap(
    request: Request,
    slug: SlugPath,
    body: ForkIn,
    writer: RoadmapWriter,
    viewer: WriterViewer,
    session: DbSession,
    resources: AppResources,
) -> Response:
    """Copy any roadmap you can see; the copy is yours, private unless you say otherwise."""
    access = await _access(session, writer, body.visibility, body.org)
    listing = await editing.fork_roadmap(
        session,
        Editor(viewer, resources.clock),
        slug,
        slug=body.slug,
        title=body.title,
        access=access,
    )
    carry = body.carry_progress
    if carry is None:
        carry = body.visibility != Visibility.ORGANISATION
    if carry:
        learner = progress_link.Writer(
            user_id=viewer.user_id or 0,
            viewer=viewer,
            clock=resources.clock,
            request_id=current_request_id(),
        )
        await progress_link.carry_over(session, learner, slug, listing.roadmap.slug)
    return _created_roadmap(request, listing, resources)


@router.post(
    "/roadmaps/{slug}/topics",
    response_model=TopicOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[IDEMPOTENT],
    responses=CREATE_ERRORS,
)
async def add_topic(
    request: Request,
    slug: SlugPath,
    body: TopicIn,
    writer: RoadmapWriter,
    viewer: WriterViewer,
    session: DbSession,
    resources: AppResources,
) -> Response:
    """Add a topic under `parent` (or as a section) at `position` (or at the end)."""
    view = await editing.add_topic(
        session,
        Editor(viewer, resources.clock),
        slug,
        NewTopic(
            title=body.title,
            slug=body.slug,
            parent=body.parent,
            position=body.position,
            summary=body.summary,
            why=body.why,
            level=body.level,
            tags=tuple(body.tags),
        ),
    )
    return conditional.respond(
        request,
        topic_out(view, route_handlers(request)),
        cache_control=cache_control(view.roadmap, resources),
        status_code=status.HTTP_201_CREATED,
        headers={"location": f"{API_PREFIX}/roadmaps/{slug}/topics/{view.topic.slug}"},
    )


@router.patch(
    "/roadmaps/{slug}/topics/{topic_slug}", response_model=TopicOut, responses=UPDATE_ERRORS
)
async def update_topic(
    request: Request,
    slug: SlugPath,
    topic_slug: TopicSlugPath,
    body: TopicPatchIn,
    writer: RoadmapWriter,
    viewer: WriterViewer,
    precondition: RequireIfMatch,
    session: DbSession,
    resources: AppResources,
) -> Response:
    """Rename, move (`parent`, `position`) or re-describe a topic; its id stays the same.
    Requires If-Match."""
    current = await editing.editable_topic(session, slug, topic_slug, viewer)
    precondition.check(topic_out(current, route_handlers(request)))
    # Fields the client left out stay KEEP; an explicit null (parent) is a change.
    changes = TopicChanges(**{name: getattr(body, name) for name in body.model_fields_set})
    editor = Editor(viewer, resources.clock)
    view = await editing.update_topic(session, editor, slug, topic_slug, changes)
    return conditional.respond(
        request,
        topic_out(view, route_handlers(request)),
        cache_control=cache_control(view.roadmap, resources),
    )


@router.delete(
    "/roadmaps/{slug}/topics/{topic_slug}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=UPDATE_ERRORS,
)
async def delete_topic(
    request: Request,
    slug: SlugPath,
    topic_slug: TopicSlugPath,
    writer: RoadmapWriter,
    viewer: WriterViewer,
    precondition: RequireIfMatch,
    session: DbSession,
    resources: AppResources,
) -> None:
    """Delete a topic and its subtopics. Requires If-Match."""
    current = await editing.editable_topic(session, slug, topic_slug, viewer)
    precondition.check(topic_out(current, route_handlers(request)))
    await editing.delete_topic(session, Editor(viewer, resources.clock), slug, topic_slug)


@router.post(
    "/roadmaps/{slug}/revisions",
    response_model=RevisionOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[IDEMPOTENT],
    responses=CREATE_ERRORS,
)
async def publish_revision(
    slug: SlugPath,
    body: RevisionIn,
    writer: RoadmapWriter,
    viewer: WriterViewer,
    session: DbSession,
    resources: AppResources,
    response: Response,
) -> RevisionOut:
    """Publish the roadmap as it is now as its next, immutable revision."""
    revision = await revisions.publish(session, Editor(viewer, resources.clock), slug, body.note)
    out = _revision_out(revision)
    response.headers["location"] = out.links["self"]
    return out


@router.get(
    "/roadmaps/{slug}/revisions", response_model=RevisionListOut, responses=problem_responses(404)
)
async def list_revisions(
    request: Request,
    slug: SlugPath,
    session: DbSession,
    viewer: CurrentViewer,
    resources: AppResources,
) -> Response:
    """Published revisions, newest first."""
    roadmap, published = await revisions.history(session, slug, viewer)
    body = RevisionListOut(items=[_revision_out(revision) for revision in published])
    return conditional.respond(request, body, cache_control=cache_control(roadmap, resources))


@router.get(
    "/roadmaps/{slug}/revisions/{number}",
    response_model=RevisionDocumentOut,
    responses=problem_responses(404),
)
async def get_revision(
    request: Request,
    slug: SlugPath,
    number: RevisionNumber,
    session: DbSession,
    viewer: CurrentViewer,
    resources: AppResources,
) -> Response:
    """One revision with the whole document as it was published (never changes)."""
    revision = await revisions.get_revision(session, slug, number, viewer)
    out = _revision_out(revision)
    body = RevisionDocumentOut(**out.model_dump(), document=revision.document)
    return conditional.respond(
        request, body, cache_control=cache_control(revision.roadmap, resources)
    )


async def _access(
    session: DbSession, writer: Principal, visibility: Visibility, org: str | None
) -> editing.Access:
    return Access(visibility, await service.organisation_for(session, writer, visibility, org))


def _created_roadmap(
    request: Request, listing: service.RoadmapListing, resources: AppResources
) -> Response:
    out = roadmap_out(listing)
    return conditional.respond(
        request,
        out,
        cache_control=cache_control(listing.roadmap, resources),
        status_code=status.HTTP_201_CREATED,
        headers={"location": out.links["self"]},
    )


def _revision_out(revision: revisions.Revision) -> RevisionOut:
    roadmap = revision.roadmap
    return RevisionOut(
        number=revision.number,
        content_hash=revision.content_hash,
        note=revision.note,
        published_at=revision.published_at,
        links={
            "self": f"{API_PREFIX}/roadmaps/{roadmap.slug}/revisions/{revision.number}",
            "roadmap": f"{API_PREFIX}/roadmaps/{roadmap.slug}",
        },
    )
