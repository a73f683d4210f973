"""The learning pages: home and dashboard, a roadmap's tree, a topic, and their forms.

Each handler parses the request, calls the domain services the API calls, and renders a
template. A form post answers with a redirect (303, so a reload never re-posts); the page's
script posts the same form with `Accept: application/json` and gets the new state instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import quote
from weakref import WeakKeyDictionary

from cachetools import LRUCache
from fastapi import APIRouter, Path, Query, Request
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import ValidationError
from starlette.datastructures import QueryParams
from starlette.responses import JSONResponse, RedirectResponse, Response

from skilltree.accounts.service import SignedIn
from skilltree.cohorts import service as cohorts
from skilltree.identity import ANONYMOUS, MAX_SLUG_LENGTH, SLUG_PATTERN, Viewer
from skilltree.platform.errors import UnprocessableContent
from skilltree.platform.http.conditional import Precondition, PreconditionFailed, etag_of
from skilltree.platform.http.fast_path import PersonalRead
from skilltree.platform.http.filtering import parse_list_query
from skilltree.platform.state import AppResources, DbSession
from skilltree.progress import notes
from skilltree.progress import service as progress
from skilltree.progress.rollup import STATUSES, Status
from skilltree.progress.schemas import NoteOut, ResourceIn
from skilltree.reviews import service as reviews
from skilltree.roadmaps import service as roadmaps
from skilltree.roadmaps.errors import RoadmapNotFound
from skilltree.roadmaps.listing import ROADMAP_LIST
from skilltree.web import code, outlines, ready_pages
from skilltree.web.errors import PageRoute
from skilltree.web.heatmap import heatmap
from skilltree.web.session import (
    SignedInForm,
    Visitor,
    csrf_token,
    learner_of,
    viewer_of,
)
from skilltree.web.templating import page
from skilltree.web.tree_states import topic_progress, tree_states
from skilltree.web.views import (
    STATUS_LABELS,
    Bar,
    Row,
    continue_with,
    rows_from_progress,
    rows_from_tree,
    states_json,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)

BUILTIN = "backend"
DASHBOARD_ROADMAPS = 50
DUE_SHOWN = 5
STALE_NOTE = (
    "This note was changed in another tab or device since you opened it. Your text is in the "
    "editor; the saved note is shown above it. Keep what you need and save again."
)

Slug = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)]


def _base(current: SignedIn | None, **context: Any) -> dict[str, Any]:
    return {"current": current, "csrf": csrf_token(current), "labels": STATUS_LABELS, **context}


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


@router.get("/")
async def home(
    request: Request, db: DbSession, current: Visitor, resources: AppResources
) -> Response:
    if current is None:
        return await _landing(request, db)
    learner = await learner_of(db, current, resources)
    query = parse_list_query(QueryParams(), ROADMAP_LIST)
    listings, _ = await roadmaps.list_roadmaps(db, learner.viewer, query, DASHBOARD_ROADMAPS, 0)
    mine = [
        listing.roadmap
        for listing in listings
        if listing.roadmap.source == "builtin"
        or listing.roadmap.owner_id == current.user.id
        or listing.roadmap.org_id in learner.viewer.org_roles
    ]
    cards = []
    next_up = None
    for roadmap in mine:
        state = await progress.roadmap_progress(db, learner, roadmap.slug)
        rows = rows_from_progress(state.sections)
        cards.append({"roadmap": roadmap, "bar": Bar.of(state.tally)})
        if next_up is None:
            row = continue_with(rows)
            if row is not None:
                next_up = (roadmap, row)
    stats = await progress.stats(db, current.user.id, learner.clock.now())
    due = await reviews.due_cards(db, current.user.id, learner.clock.now(), None, DUE_SHOWN)
    return page(
        request,
        "dashboard.html",
        _base(
            current,
            cards=cards,
            next_up=next_up,
            stats=stats,
            calendar=heatmap(stats.heatmap),
            due=due.items,
            more_due=due.next is not None,
            assignments=await cohorts.my_assignments(db, current.user.id),
        ),
    )


async def _landing(request: Request, db: DbSession) -> Response:
    try:
        tree = await roadmaps.get_outline(db, BUILTIN, ANONYMOUS)
    except RoadmapNotFound:
        tree = None
    leaves = {}
    if tree is not None:
        for section in rows_from_tree(tree.sections):
            leaves[section.slug] = sum(1 for row in _walk(section.children) if not row.children)
    return page(request, "landing.html", _base(None, tree=tree, leaves=leaves))


@router.get("/roadmaps/{slug}")
async def roadmap_page(
    request: Request,
    slug: Slug,
    db: DbSession,
    current: Visitor,
    resources: AppResources,
    left: Annotated[bool, Query()] = False,
) -> Response:
    if current is None:
        roadmap = await roadmaps.require_roadmap(db, slug, ANONYMOUS)
        _, skeleton = await outlines.outline_markup(request.app, db, roadmap, forms=False)
        return _roadmap_page(request, None, roadmap, None, skeleton.blank(), False, left)
    learner = await learner_of(db, current, resources)
    found = await roadmaps.require_roadmap(db, slug, learner.viewer)
    key = ready_pages.page_key(slug, current)
    if key is None or request.url.query or not ready_pages.keepable(found):
        return await _learner_roadmap_page(request, db, resources, current, learner, found, left)

    async def render() -> tuple[bytes, bool]:
        # Read again once the cache has read its namespace tokens: a change committed since
        # `found` was read is on this page, or leaves it under a stale token (decision 0083).
        roadmap = await roadmaps.require_roadmap(db, slug, learner.viewer)
        rendered = await _learner_roadmap_page(
            request, db, resources, current, learner, roadmap, left=False
        )
        return bytes(rendered.body), ready_pages.keepable(roadmap)

    # Kept rendered between views, and answered in front of the application while nothing it
    # shows changed (web/ready_pages.py, `PERSONAL_READS`).
    return (await ready_pages.fetch(resources, key, render)).respond(request)


async def _learner_roadmap_page(
    request: Request,
    db: DbSession,
    resources: AppResources,
    current: SignedIn,
    learner: progress.Learner,
    found: roadmaps.RoadmapRef,
    left: bool,
) -> Response:
    """A learner's page of a roadmap they may see: their status on every topic, forms to
    change them."""
    outline, skeleton = await outlines.outline_markup(request.app, db, found, forms=True)
    # Kept in the cache between views, made stale by the learner's and the roadmap's changes
    # (web/tree_states.py).
    states = await tree_states(db, resources, current.user.id, outline)
    tree = skeleton.fill(states.statuses, states.bars, csrf_token(current))
    can_edit = roadmaps.may_edit(learner.viewer, outline.roadmap)
    return _roadmap_page(request, current, outline.roadmap, states.bar, tree, can_edit, left)


def _roadmap_page(
    request: Request,
    current: SignedIn | None,
    roadmap: roadmaps.RoadmapRef,
    bar: Bar | None,
    tree: bytes,
    can_edit: bool,
    left: bool,
) -> Response:
    return page(
        request,
        "roadmap.html",
        _base(
            current,
            roadmap=roadmap,
            bar=bar,
            left=left and current is not None,
            can_edit=can_edit,
            imported=request.query_params.get("imported") == "1",
        ),
        spliced=("tree", tree),
    )


_SLUG = SLUG_PATTERN.removeprefix("^").removesuffix("$")
# A session's ready roadmap and topic pages, answered in front of the application
# (web/ready_pages.py).
PERSONAL_READS = (
    PersonalRead(
        "/roadmaps/{slug}",
        re.compile(f"/roadmaps/(?P<slug>{_SLUG})"),
        ready_pages.find_roadmap_page,
    ),
    PersonalRead(
        "/roadmaps/{slug}/topics/{topic}",
        re.compile(f"/roadmaps/(?P<slug>{_SLUG})/topics/(?P<topic>{_SLUG})"),
        ready_pages.find_topic_page,
    ),
)


@router.post("/roadmaps/{slug}/topics/{topic}/status")
async def set_status(
    request: Request,
    slug: Slug,
    topic: Slug,
    form: SignedInForm,
    db: DbSession,
    resources: AppResources,
) -> Response:
    status = _status(form.get("status"))
    learner = await learner_of(db, form.current, resources)
    await progress.set_status(db, learner, slug, topic, status, None)
    message = "Marked “{title}” " + STATUS_LABELS[status].lower() + "."
    return await _after_change(request, db, learner, slug, form.get("next"), message, topic)


@router.post("/roadmaps/{slug}/undo")
async def undo(
    request: Request, slug: Slug, form: SignedInForm, db: DbSession, resources: AppResources
) -> Response:
    learner = await learner_of(db, form.current, resources)
    event, topic = await progress.undo_last(db, learner, slug)
    restored = STATUS_LABELS.get(event.to_status or "todo", "to do").lower()
    message = "Undone: “{title}” is " + restored + " again."
    return await _after_change(request, db, learner, slug, form.get("next"), message, topic.slug)


async def _after_change(
    request: Request,
    db: DbSession,
    learner: progress.Learner,
    slug: str,
    next_path: str,
    message: str,
    topic: str,
) -> Response:
    if _wants_json(request):
        state = await progress.roadmap_progress(db, learner, slug)
        rows = rows_from_progress(state.sections)
        title = next((row.title for row in _walk(rows) if row.slug == topic), topic)
        return JSONResponse(
            {
                "message": message.format(title=title),
                "topic": topic,
                "bar": Bar.of(state.tally).as_json(),
                "rows": states_json(rows),
            },
            headers={"cache-control": "no-store"},
        )
    target = next_path if next_path.startswith(f"/roadmaps/{slug}") else f"/roadmaps/{slug}"
    return RedirectResponse(f"{target}#t-{topic}", status_code=303)


def _status(value: str) -> Status:
    for status in STATUSES:
        if status == value:
            return status
    raise UnprocessableContent(f"Choose one of: {', '.join(STATUSES)}.")


@router.get("/roadmaps/{slug}/topics/{topic}")
async def topic_page(
    request: Request,
    slug: Slug,
    topic: Slug,
    db: DbSession,
    current: Visitor,
    resources: AppResources,
) -> Response:
    if current is None or request.url.query:
        return await _topic(request, slug, topic, db, current, resources)
    viewer = await viewer_of(db, current)
    found = await roadmaps.require_roadmap(db, slug, viewer)
    key = ready_pages.topic_page_key(slug, topic, current)
    if key is None or not ready_pages.keepable(found):
        return await _topic_of(request, db, current, resources, viewer, found, topic)

    async def render() -> tuple[bytes, bool]:
        # Read again once the cache has read its namespace tokens (as `roadmap_page`).
        roadmap = await roadmaps.require_roadmap(db, slug, viewer)
        rendered = await _topic_of(request, db, current, resources, viewer, roadmap, topic)
        return bytes(rendered.body), ready_pages.keepable(roadmap)

    # Kept rendered between views, and answered in front of the application while nothing it
    # shows changed (web/ready_pages.py, `PERSONAL_READS`).
    return (await ready_pages.fetch(resources, key, render)).respond(request)


async def _topic(
    request: Request,
    slug: str,
    topic_slug: str,
    db: DbSession,
    current: SignedIn | None,
    resources: AppResources,
    *,
    draft: str | None = None,
    preview: str | None = None,
    note_error: str | None = None,
    status_code: int = 200,
) -> Response:
    viewer = await viewer_of(db, current)
    roadmap = await roadmaps.require_roadmap(db, slug, viewer)
    return await _topic_of(
        request,
        db,
        current,
        resources,
        viewer,
        roadmap,
        topic_slug,
        draft=draft,
        preview=preview,
        note_error=note_error,
        status_code=status_code,
    )


async def _topic_of(
    request: Request,
    db: DbSession,
    current: SignedIn | None,
    resources: AppResources,
    viewer: Viewer,
    roadmap: roadmaps.RoadmapRef,
    topic_slug: str,
    *,
    draft: str | None = None,
    preview: str | None = None,
    note_error: str | None = None,
    status_code: int = 200,
) -> Response:
    """The page of a topic of a roadmap the viewer may see."""
    # One tree (kept per roadmap version) serves the topic, its progress and its history.
    tree, topics = await outlines.details(request.app, db, roadmap)
    view = roadmaps.topic_view_of(roadmap, topics, topic_slug)
    context = _base(
        current,
        view=view,
        references=_references(request, view.topic.implemented_in),
        draft=draft,
        preview=preview,
        note_error=note_error,
    )
    if current is not None:
        learner = progress.Learner(
            user_id=current.user.id, viewer=viewer, clock=resources.clock, request_id=None
        )
        # From the cache between views, made stale by the learner's changes and the
        # roadmap's (web/tree_states.py).
        node = _node_of(tree.sections, topic_slug)
        mine = await topic_progress(db, resources, learner, tree, node)
        (row,) = rows_from_tree((node,))
        row.status = mine.status
        note = await notes.note_on(db, current.user.id, view.topic.id)
        links = await notes.resources_on(db, current.user.id, view.topic.id)
        context |= {
            "row": row,
            "note": note,
            "note_etag": etag_of(_note_out(note)),
            "links": links,
            "history": mine.history,
        }
    return page(request, "topic.html", context, status_code=status_code)


def _node_of(
    nodes: Sequence[roadmaps.TopicNode[Any]], slug: str
) -> roadmaps.TopicNode[roadmaps.TopicDetail]:
    """The node of the topic `slug` (the caller knows it is in the tree)."""
    for node in roadmaps.walk(nodes):
        if node.topic.slug == slug:
            return node
    raise LookupError(slug)


def _walk(rows: list[Row]) -> list[Row]:
    out: list[Row] = []
    for row in rows:
        out.append(row)
        out.extend(_walk(row.children))
    return out


def _note_out(note: notes.NoteView) -> NoteOut:
    return NoteOut(markdown=note.markdown, html=note.html, updated_at=note.updated_at)


@router.post("/roadmaps/{slug}/topics/{topic}/note")
async def save_note(
    request: Request,
    slug: Slug,
    topic: Slug,
    form: SignedInForm,
    db: DbSession,
    resources: AppResources,
) -> Response:
    markdown = form.get("markdown").replace("\r\n", "\n")
    if form.get("intent") == "preview":
        # markdown-it loads with the first note previewed, not in every worker (decision 0062).
        from skilltree.progress.rendering import render_note

        html = render_note(markdown)
        if _wants_json(request):
            return JSONResponse({"html": html}, headers={"cache-control": "no-store"})
        return await _topic(
            request, slug, topic, db, form.current, resources, draft=markdown, preview=html
        )
    # The form's hidden ETag plays If-Match: a save from a stale tab is refused, not merged.
    precondition = Precondition(form.get("etag") or None)

    def check(current_note: notes.NoteView) -> None:
        precondition.check_upsert(_note_out(current_note), stored=current_note.stored)

    learner = await learner_of(db, form.current, resources)
    try:
        await notes.save_note(
            db,
            form.current.user.id,
            learner.viewer,
            slug,
            topic,
            markdown=markdown,
            max_chars=resources.settings.progress.note_max_chars,
            now=learner.clock.now(),
            check=check,
        )
    except PreconditionFailed:
        return await _topic(
            request,
            slug,
            topic,
            db,
            form.current,
            resources,
            draft=markdown,
            note_error=STALE_NOTE,
            status_code=412,
        )
    return RedirectResponse(f"/roadmaps/{slug}/topics/{topic}#note", status_code=303)


@router.post("/roadmaps/{slug}/topics/{topic}/resources")
async def add_resource(
    slug: Slug, topic: Slug, form: SignedInForm, db: DbSession, resources: AppResources
) -> Response:
    try:
        link = ResourceIn(title=form.get("title").strip(), url=form.get("url").strip())
    except ValidationError as error:
        raise UnprocessableContent(
            "A link needs a title and an http or https address.",
            errors=[item["msg"] for item in error.errors()],
        ) from None
    viewer = await viewer_of(db, form.current)
    await notes.add_resource(
        db,
        form.current.user.id,
        viewer,
        slug,
        topic,
        title=link.title,
        url=str(link.url),
        now=resources.clock.now(),
    )
    return RedirectResponse(f"/roadmaps/{slug}/topics/{topic}#links", status_code=303)


def _references(request: Request, references: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each reference with what the page shows of it: source, a docs link, a command."""
    shown: list[dict[str, Any]] = []
    for reference in references:
        kind, target = reference.get("kind"), str(reference.get("target", ""))
        item: dict[str, Any] = {"kind": kind, "target": target}
        if kind == "module":
            item["excerpt"] = code.module_excerpt(target)
        elif kind == "endpoint":
            item["docs"] = _docs_link(request, target)
        elif kind == "test":
            item["test"] = code.test_ref(target)
        shown.append(item)
    return shown


def _docs_link(request: Request, endpoint: str) -> str | None:
    """Swagger UI's deep link to an operation: /docs#/{tag}/{operation id}."""
    app = request.app
    links = _links_by_app.get(app)
    if links is None:
        links = _links_by_app[app] = LRUCache(maxsize=DOCS_LINKS_KEPT)
    try:
        return links[endpoint]
    except KeyError:
        pass
    link = links[endpoint] = _walked_docs_link(app, endpoint)
    return link


# Each app's links by endpoint, found with the first topic page that shows one: the routes do
# not change once the app is built, and walking them took a tenth of a topic page. Bounded,
# as a roadmap may name any endpoint.
DOCS_LINKS_KEPT = 1024
_links_by_app: WeakKeyDictionary[object, LRUCache[str, str | None]] = WeakKeyDictionary()


def _walked_docs_link(app: Any, endpoint: str) -> str | None:
    method, _, path = endpoint.partition(" ")
    for route in iter_route_contexts(app.routes):
        if route.path == path and method in (route.methods or ()):
            original = route.original_route
            if not isinstance(original, APIRoute):
                return None
            tags = route.tags or ["default"]
            return f"/docs#/{quote(str(tags[0]))}/{original.unique_id}"
    return None
