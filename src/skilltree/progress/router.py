"""HTTP routes of the progress domain: statuses, history, summaries, notes, files, badges.

Everything under /v1/me is the caller's own and never anyone else's: routes take the user from
the credential, never from the path. Personal data is sent with `Cache-Control: private,
no-store` so shared caches never keep it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from starlette.types import Scope as StarletteScope

from skilltree.accounts.dependencies import kept_sign_in
from skilltree.identity import MAX_SLUG_LENGTH, SLUG_PATTERN, Scope
from skilltree.platform.cache import Computed, Key, LocalCopy
from skilltree.platform.http import conditional
from skilltree.platform.http.conditional import CreateOrReplace
from skilltree.platform.http.credentials import Credentials
from skilltree.platform.http.fast_path import FindPersonal, PersonalRead
from skilltree.platform.http.idempotency import IDEMPOTENT
from skilltree.platform.http.negotiation import negotiate
from skilltree.platform.http.pagination import CursorParam, Cursors, LimitParam, page_links
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.pagination import DEFAULT_PAGE_SIZE, decode_position
from skilltree.platform.state import AppCache, AppResources, DbSession, Resources, resources_of
from skilltree.profiles import service as profiles
from skilltree.progress import badges, exporting, notes, service
from skilltree.progress.dependencies import Reader, Writer
from skilltree.progress.rollup import NodeState, Tally
from skilltree.progress.schemas import (
    EventOut,
    HeatmapDayOut,
    HistoryOut,
    ImportResultOut,
    NoteIn,
    NoteOut,
    ProgressFileIn,
    ResourceIn,
    ResourceListOut,
    ResourceOut,
    RoadmapProgressOut,
    SectionSummaryOut,
    StatsOut,
    StatusIn,
    SummaryOut,
    TallyOut,
    TopicProgressOut,
    TopicStateOut,
    UndoOut,
)
from skilltree.roadmaps import service as roadmaps
from skilltree.roadmaps.service import TopicRef

router = APIRouter(prefix=API_PREFIX, tags=["progress"])

RoadmapPath = Annotated[
    str, Path(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH, examples=["backend"])
]
TopicPath = Annotated[
    str, Path(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH, examples=["idempotency-keys"])
]
PRIVATE = conditional.PRIVATE
EXPORT_TYPES = ("application/json", "text/csv", "text/markdown")
READ_ERRORS = problem_responses(400, 401, 403, 404)
WRITE_ERRORS = problem_responses(401, 403, 404, 409, 413, 422)
NOTE_WRITE_ERRORS = problem_responses(401, 403, 404, 412, 413, 422, 428)


@router.get("/me/progress/{roadmap}", response_model=RoadmapProgressOut, responses=READ_ERRORS)
async def get_progress(
    roadmap: RoadmapPath, learner: Reader, session: DbSession, request: Request
) -> Response:
    """Every topic's status, nested like the roadmap, parents rolled up from their children.
    Send the ETag back in If-None-Match: 304 while nothing changed."""
    # The app's resources and cache straight from the request: two dependencies fewer to
    # resolve on the most frequent personal read.
    resources = resources_of(request)

    async def render() -> Computed:
        progress = await service.roadmap_progress(session, learner, roadmap)
        body = RoadmapProgressOut(
            roadmap=roadmap,
            summary=_tally_out(progress.tally),
            topics=[_state_out(state) for state in progress.sections],
        )
        return _personal(body)

    return await _cached_progress(
        request, session, learner, roadmap, "topics", render, resources, resources.cache
    )


@router.put(
    "/me/progress/{roadmap}/{topic}", response_model=TopicProgressOut, responses=WRITE_ERRORS
)
async def set_status(
    roadmap: RoadmapPath, topic: TopicPath, body: StatusIn, learner: Writer, session: DbSession
) -> TopicProgressOut:
    """Set a topic's status (and how confident you feel). Repeating the same request changes
    nothing; `done` puts the topic in your review queue, `todo` takes it out."""
    mark = await service.set_status(session, learner, roadmap, topic, body.status, body.confidence)
    return TopicProgressOut(
        roadmap=roadmap,
        topic=topic,
        status=body.status,
        confidence=mark.confidence,
        updated_at=mark.updated_at,
    )


@router.post(
    "/me/progress/{roadmap}/undo",
    response_model=UndoOut,
    # Each undo goes one change further back: a blind retry would undo two.
    dependencies=[IDEMPOTENT],
    responses=WRITE_ERRORS,
)
async def undo(roadmap: RoadmapPath, learner: Writer, session: DbSession) -> UndoOut:
    """Revert your newest change on this roadmap that is not undone yet (409 when none is).
    Send an Idempotency-Key to retry safely: a retry replays the first undo."""
    event, topic = await service.undo_last(session, learner, roadmap)
    assert event.undoes_event_id is not None
    return UndoOut(undone_event_id=event.undoes_event_id, event=_event_out(event, topic))


@router.get("/me/progress/{roadmap}/history", response_model=HistoryOut, responses=READ_ERRORS)
async def get_history(
    roadmap: RoadmapPath,
    learner: Reader,
    session: DbSession,
    cursors: Cursors,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = DEFAULT_PAGE_SIZE,
) -> HistoryOut:
    """Your changes on this roadmap, newest first, a page at a time (follow `links.next`)."""
    scope = f"progress-history:{learner.user_id}:{roadmap}"
    position = decode_position(cursors, scope, cursor)
    history = await service.history(session, learner, roadmap, position, limit)
    links = page_links(request, response, cursors, scope, history.page)
    response.headers["Cache-Control"] = PRIVATE
    return HistoryOut(
        items=[_event_out(e, history.topics[e.topic_id]) for e in history.page.items],
        links=links,
    )


@router.get("/me/progress/{roadmap}/summary", response_model=SummaryOut, responses=READ_ERRORS)
async def get_summary(
    roadmap: RoadmapPath,
    learner: Reader,
    session: DbSession,
    request: Request,
    resources: AppResources,
    cache: AppCache,
) -> Response:
    """Counts by status, percent done and remaining hours for the roadmap and each section.
    Send the ETag back in If-None-Match: 304 while nothing changed."""

    async def render() -> Computed:
        progress = await service.roadmap_progress(session, learner, roadmap)
        body = SummaryOut(
            roadmap=roadmap,
            summary=_tally_out(progress.tally),
            sections=[
                SectionSummaryOut(
                    slug=section.node.topic.slug,
                    title=section.node.topic.title,
                    status=section.status,
                    summary=_tally_out(section.tally),
                )
                for section in progress.sections
            ],
        )
        return _personal(body)

    return await _cached_progress(
        request, session, learner, roadmap, "summary", render, resources, cache
    )


async def _cached_progress(
    request: Request,
    session: DbSession,
    learner: service.Learner,
    roadmap: str,
    view: str,
    render: Callable[[], Awaitable[Computed]],
    resources: AppResources,
    cache: AppCache,
) -> Response:
    """A learner's own progress view, from the cache under their user id: no one else's key."""
    # Checked on every read, cached or not: access to an organisation's roadmap can end.
    await service.check_access(session, learner, roadmap)
    key = progress_key(learner.user_id, roadmap, view)
    cached = await cache.fetch(key, render, resources.settings.cache.progress_ttl_seconds)
    return conditional.Representation.from_bytes(cached).respond(request)


def progress_key(user_id: int, roadmap: str, view: str) -> Key:
    """Where a learner's view of their progress on a roadmap is cached: under their user id,
    no one else's key."""
    return Key(f"learner:{user_id}:{roadmap}:{view}", service.cache_namespaces(user_id, roadmap))


def _kept_view(view: str) -> FindPersonal:
    """How the fast path finds a learner's cached view (decision 0080): the caller as kept,
    allowed to read progress, and the view's local copy, with no statement. `check_access`
    runs no statement either, for a public roadmap only: one is visible to every learner, and
    its public tree held here, trusted as the anonymous fast path trusts it, shows it is
    public now (any change of its visibility marks the tree stale). Anything else (another
    roadmap, a caller not kept) goes down the stack, which checks access with a statement."""

    async def find(
        resources: Resources, match: re.Match[str], credentials: Credentials, scope: StarletteScope
    ) -> LocalCopy | None:
        signed_in = await kept_sign_in(resources, credentials, scope)
        if signed_in is None or not signed_in.principal.has_scope(Scope.PROGRESS_READ):
            return None
        roadmap = match["roadmap"]
        cache = resources.cache
        if cache.local_entry(roadmaps.tree_key(roadmap)) is None:
            return None
        return cache.local_entry(progress_key(signed_in.account.id, roadmap, view))

    return find


_SLUG = SLUG_PATTERN.removeprefix("^").removesuffix("$")
# The learner's cached views the fast path may answer (platform/http/fast_path.py).
PERSONAL_READS = (
    PersonalRead(
        f"{API_PREFIX}/me/progress/{{roadmap}}",
        re.compile(f"{API_PREFIX}/me/progress/(?P<roadmap>{_SLUG})"),
        _kept_view("topics"),
    ),
    PersonalRead(
        f"{API_PREFIX}/me/progress/{{roadmap}}/summary",
        re.compile(f"{API_PREFIX}/me/progress/(?P<roadmap>{_SLUG})/summary"),
        _kept_view("summary"),
    ),
)


def _personal(body: RoadmapProgressOut | SummaryOut) -> Computed:
    representation = conditional.Representation.of(body, cache_control=PRIVATE)
    return Computed(representation.to_bytes())


@router.get(
    "/me/progress/{roadmap}/export",
    response_class=Response,
    responses={
        200: {
            "description": "Your progress as JSON (re-importable), CSV or a markdown checklist",
            "content": {media_type: {} for media_type in EXPORT_TYPES},
        },
        **problem_responses(401, 403, 404, 406),
    },
)
async def export_progress(
    roadmap: RoadmapPath, request: Request, learner: Reader, session: DbSession
) -> Response:
    """Download your progress; `Accept` picks the format (406 when none of them is acceptable)."""
    media_type = negotiate(request.headers.get("accept"), EXPORT_TYPES)
    progress = await service.roadmap_progress(session, learner, roadmap)
    if media_type == "application/json":
        body = exporting.to_json(progress, learner.clock.now())
        extension = "json"
    elif media_type == "text/csv":
        body, extension = exporting.to_csv(progress).encode(), "csv"
        media_type = "text/csv; charset=utf-8"
    else:
        body, extension = exporting.to_checklist(progress).encode(), "md"
        media_type = "text/markdown; charset=utf-8"
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{roadmap}-progress.{extension}"',
            "Cache-Control": PRIVATE,
            # Caches must key the response on Accept: one URL, three representations.
            "Vary": "Accept",
        },
    )


@router.post(
    "/me/progress/{roadmap}/import", response_model=ImportResultOut, responses=WRITE_ERRORS
)
async def import_progress(
    roadmap: RoadmapPath, body: ProgressFileIn, learner: Writer, session: DbSession
) -> ImportResultOut:
    """Restore a JSON export. Only differences are recorded, so re-importing is harmless."""
    marks = [service.ImportedMark(t.topic_id, t.slug, t.status, t.confidence) for t in body.topics]
    result = await service.import_marks(session, learner, roadmap, marks)
    return ImportResultOut(roadmap=roadmap, changed=result.changed, unchanged=result.unchanged)


@router.get("/me/stats", response_model=StatsOut, responses=READ_ERRORS)
async def get_stats(learner: Reader, session: DbSession, response: Response) -> StatsOut:
    """Your streaks and daily activity, counted in your profile's time zone."""
    stats = await service.stats(session, learner.user_id, learner.clock.now())
    response.headers["Cache-Control"] = PRIVATE
    return StatsOut(
        time_zone=stats.time_zone,
        current_streak=stats.streaks.current,
        longest_streak=stats.streaks.longest,
        heatmap=[HeatmapDayOut(date=day, count=count) for day, count in stats.heatmap],
    )


@router.get("/me/progress/{roadmap}/{topic}/note", response_model=NoteOut, responses=READ_ERRORS)
async def get_note(
    roadmap: RoadmapPath, topic: TopicPath, learner: Reader, session: DbSession, request: Request
) -> Response:
    """Your note on the topic (blank before you write one), with the ETag a PUT needs."""
    note = await notes.get_note(session, learner.user_id, learner.viewer, roadmap, topic)
    return conditional.respond(request, _note_out(note), cache_control=PRIVATE)


@router.put(
    "/me/progress/{roadmap}/{topic}/note",
    response_model=NoteOut,
    responses={
        201: {"description": "The first note on this topic", "model": NoteOut},
        **NOTE_WRITE_ERRORS,
    },
)
async def put_note(
    roadmap: RoadmapPath,
    topic: TopicPath,
    body: NoteIn,
    learner: Writer,
    precondition: CreateOrReplace,
    session: DbSession,
    resources: AppResources,
    request: Request,
) -> Response:
    """Write your note (markdown); the response carries the sanitised HTML. Blank deletes it.

    Replacing a note needs If-Match with its ETag (428 without, 412 when stale), so a second
    device cannot silently overwrite the first. The first note on a topic needs none (201);
    `If-None-Match: *` makes a write "create only"."""

    def check(current: notes.NoteView) -> None:
        precondition.check_upsert(_note_out(current), stored=current.stored)

    saved = await notes.save_note(
        session,
        learner.user_id,
        learner.viewer,
        roadmap,
        topic,
        markdown=body.markdown,
        max_chars=resources.settings.progress.note_max_chars,
        now=learner.clock.now(),
        check=check,
    )
    # A PUT that creates says so (RFC 9110 §9.3.4).
    status_code = status.HTTP_201_CREATED if saved.created else status.HTTP_200_OK
    return conditional.respond(
        request, _note_out(saved.note), cache_control=PRIVATE, status_code=status_code
    )


@router.get(
    "/me/progress/{roadmap}/{topic}/resources",
    response_model=ResourceListOut,
    responses=READ_ERRORS,
)
async def list_resources(
    roadmap: RoadmapPath, topic: TopicPath, learner: Reader, session: DbSession, response: Response
) -> ResourceListOut:
    found = await notes.list_resources(session, learner.user_id, learner.viewer, roadmap, topic)
    response.headers["Cache-Control"] = PRIVATE
    return ResourceListOut(items=[_resource_out(resource) for resource in found])


@router.post(
    "/me/progress/{roadmap}/{topic}/resources",
    response_model=ResourceOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[IDEMPOTENT],
    responses=WRITE_ERRORS,
)
async def add_resource(
    roadmap: RoadmapPath, topic: TopicPath, body: ResourceIn, learner: Writer, session: DbSession
) -> ResourceOut:
    """Keep a link of your own on a topic (http or https only)."""
    resource = await notes.add_resource(
        session,
        learner.user_id,
        learner.viewer,
        roadmap,
        topic,
        title=body.title,
        url=body.url,
        now=learner.clock.now(),
    )
    return _resource_out(resource)


@router.delete(
    "/me/progress/{roadmap}/{topic}/resources/{resource_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=WRITE_ERRORS,
)
async def delete_resource(
    roadmap: RoadmapPath,
    topic: TopicPath,
    resource_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    learner: Writer,
    session: DbSession,
) -> None:
    await notes.delete_resource(
        session, learner.user_id, learner.viewer, roadmap, topic, resource_id
    )


@router.get(
    "/users/{handle}/badges/{roadmap}.svg",
    response_class=Response,
    responses={
        200: {"description": "An SVG badge", "content": {"image/svg+xml": {}}},
        **problem_responses(404),
    },
)
async def get_badge(
    handle: Annotated[str, Path(max_length=40, examples=["ada"])],
    roadmap: RoadmapPath,
    session: DbSession,
    resources: AppResources,
    cache: AppCache,
) -> Response:
    """A README badge with a learner's percent done on a public roadmap, if their profile is
    public (404 otherwise, whether or not the handle exists)."""
    # Looked up on every request, so a profile made private stops its badges at once.
    profile = await profiles.public_profile(session, handle)

    async def render() -> Computed:
        progress = await service.public_summary(session, profile.user_id, roadmap)
        svg = badges.render(progress.roadmap.title, progress.tally.percent_done)
        return Computed(svg.encode())

    key = Key(
        f"badge:{profile.user_id}:{roadmap}",
        service.cache_namespaces(profile.user_id, roadmap),
    )
    svg = await cache.fetch(key, render, resources.settings.cache.badge_ttl_seconds)
    max_age = resources.settings.progress.badge_max_age_seconds
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={"Cache-Control": f"public, max-age={max_age}"},
    )


def _tally_out(tally: Tally) -> TallyOut:
    return TallyOut(
        total=tally.total,
        counts={name: tally.counts[name] for name in ("todo", "in_progress", "done", "skipped")},
        percent_done=tally.percent_done,
        total_hours=round(tally.total_hours, 2),
        remaining_hours=round(tally.remaining_hours, 2),
    )


def _state_out(state: NodeState) -> TopicStateOut:
    topic = state.node.topic
    return TopicStateOut(
        slug=topic.slug,
        title=topic.title,
        status=state.status,
        source=state.source,
        confidence=state.mark.confidence if state.mark else None,
        updated_at=state.mark.updated_at if state.mark else None,
        percent_done=state.tally.percent_done,
        children=[_state_out(child) for child in state.children],
    )


def _event_out(event: service.Event, topic: TopicRef) -> EventOut:
    return EventOut(
        id=event.id,
        topic=topic.slug,
        topic_title=topic.title,
        from_status=event.from_status,
        to_status=event.to_status,
        confidence=event.confidence,
        occurred_at=event.occurred_at,
        request_id=event.request_id,
        undoes_event_id=event.undoes_event_id,
    )


def _note_out(note: notes.NoteView) -> NoteOut:
    return NoteOut(markdown=note.markdown, html=note.html, updated_at=note.updated_at)


def _resource_out(resource: notes.Resource) -> ResourceOut:
    return ResourceOut(
        id=resource.id, title=resource.title, url=resource.url, created_at=resource.created_at
    )
