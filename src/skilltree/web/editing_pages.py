"""Making roadmaps of one's own: import a checklist (preview first), fork, and edit.

Each form does what the matching API route does, through the same services: the import is
`POST /v1/roadmaps/import` (`dry_run` for the preview, `apply_progress` for the ticked boxes),
the fork `POST /v1/roadmaps/{slug}/forks`, the edits `PATCH`/`DELETE /v1/roadmaps/{slug}/...`.
An edit form carries the ETag the API would send for what it changes, checked like the API's
If-Match: a form opened before someone else's change is refused (412) and the page shows the
roadmap as it is now.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from skilltree.accounts.service import SignedIn
from skilltree.identity import MAX_SLUG_LENGTH, SLUG_PATTERN, Viewer
from skilltree.orgs import service as orgs
from skilltree.platform.db import AFTER_COMMIT
from skilltree.platform.errors import DomainError, UnprocessableContent
from skilltree.platform.http.conditional import Precondition, PreconditionFailed, etag_of
from skilltree.platform.observability.context import current_request_id
from skilltree.platform.state import AppResources, DbSession
from skilltree.progress import service as progress
from skilltree.roadmaps import editing
from skilltree.roadmaps import service as roadmaps
from skilltree.roadmaps.errors import RoadmapNotEditable
from skilltree.roadmaps.importing import ImportLimits
from skilltree.roadmaps.policies import Visibility
from skilltree.roadmaps.presenters import roadmap_out
from skilltree.roadmaps.schemas import ForkIn, RoadmapPatchIn, TopicIn, TopicPatchIn
from skilltree.web.errors import PageRoute
from skilltree.web.session import Member, SignedInForm, csrf_token, viewer_of
from skilltree.web.templating import page
from skilltree.web.views import STATUS_LABELS

router = APIRouter(route_class=PageRoute, include_in_schema=False)
M = TypeVar("M", bound=BaseModel)

Slug = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)]
FIELD_NAMES = {"slug": "Short name", "title": "Title", "parent": "Parent", "position": "Position"}
STALE_EDIT = (
    "This roadmap changed since you opened the page (in another tab, or by someone else). "
    "Nothing was saved: the page now shows the roadmap as it is. Make your change again."
)
MARKDOWN = "text/markdown"


def _base(current: SignedIn, **context: Any) -> dict[str, Any]:
    return {
        "current": current,
        "csrf": csrf_token(current),
        "errors": [],
        "labels": STATUS_LABELS,
        **context,
    }


def _problems(error: ValidationError) -> list[str]:
    return [
        f"{FIELD_NAMES.get(str(item['loc'][0]), str(item['loc'][0]))}: {item['msg']}"
        if item["loc"]
        else str(item["msg"])
        for item in error.errors()
    ]


def _validated(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise UnprocessableContent("Check the form.", errors=_problems(error)) from None


def _error_lines(error: DomainError) -> list[str]:
    extra = error.extensions.get("errors")
    lines = [str(error.detail)]
    if isinstance(extra, list):
        lines.extend(str(item) for item in extra)
    return lines


async def _sharing_choices(db: DbSession, current: SignedIn) -> list[Any]:
    """The organisations the learner may share a roadmap with (owners and mentors)."""
    mine = await orgs.my_orgs(db, current.principal)
    return [org for org, role in mine if role in (orgs.Role.OWNER, orgs.Role.MENTOR)]


# --- import -------------------------------------------------------------------------------


@router.get("/import")
async def import_page(request: Request, current: Member, db: DbSession) -> Response:
    context = _base(current, values={}, share=await _sharing_choices(db, current))
    return page(request, "import.html", context)


@router.post("/import")
async def import_checklist(
    request: Request, form: SignedInForm, db: DbSession, resources: AppResources
) -> Response:
    """First post: the dry run's preview (nothing written). Second: the import itself, of
    exactly the bytes previewed (carried in the preview page's form)."""
    values = {
        "text": form.get("text"),
        "slug": form.get("slug").strip(),
        "visibility": form.get("visibility") or "private",
        "org": form.get("org").strip(),
        "apply_progress": form.get("apply_progress") == "on",
    }
    share = await _sharing_choices(db, form.current)
    confirm = form.get("intent") == "import"
    try:
        data, filename, content_type = _document(form, resources.settings.importing.max_bytes)
        report = await _run_import(
            db, form.current, resources, values, data, filename, content_type, dry_run=not confirm
        )
    except DomainError as error:
        context = _base(form.current, values=values, share=share, errors=_error_lines(error))
        return page(request, "import.html", context, status_code=error.status)
    if confirm:
        return RedirectResponse(f"/roadmaps/{report.slug}?imported=1", status_code=303)
    marks = roadmaps.checklist_marks(report.parsed) if values["apply_progress"] else []
    context = _base(
        form.current,
        values=values,
        share=share,
        report=report,
        marks=marks,
        preview=report.parsed.document.topics,
        carried=base64.b64encode(data).decode(),
        filename=filename or "",
        content_type=content_type or "",
    )
    return page(request, "import.html", context)


def _document(form: Any, max_bytes: int) -> tuple[bytes, str | None, str | None]:
    """What to import: the previewed bytes, an uploaded file, or the pasted text."""
    carried = form.get("carried")
    if carried:
        try:
            data = base64.b64decode(carried, validate=True)
        except (binascii.Error, ValueError):
            raise UnprocessableContent(
                "The previewed document was damaged; preview it again."
            ) from None
        return data, form.get("filename") or None, form.get("content_type") or MARKDOWN
    upload = form.form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        data = upload.file.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise UnprocessableContent(f"The file is larger than {max_bytes} bytes.")
        return data, upload.filename, upload.content_type
    text = form.get("text").replace("\r\n", "\n")
    if not text.strip():
        raise UnprocessableContent("Paste a markdown checklist or choose a file.")
    data = text.encode()
    if len(data) > max_bytes:
        raise UnprocessableContent(f"The text is larger than {max_bytes} bytes.")
    return data, None, MARKDOWN


async def _run_import(
    db: DbSession,
    current: SignedIn,
    resources: AppResources,
    values: dict[str, Any],
    data: bytes,
    filename: str | None,
    content_type: str | None,
    *,
    dry_run: bool,
) -> roadmaps.ImportReport:
    settings = resources.settings.importing
    limits = ImportLimits(
        max_bytes=settings.max_bytes, max_depth=settings.max_depth, max_topics=settings.max_topics
    )
    slug = values["slug"] or None
    if slug is not None:
        _validated(ForkIn, {"slug": slug})  # the same slug rule as everywhere
    try:
        visibility = Visibility(values["visibility"])
    except ValueError:
        raise UnprocessableContent("Choose who may see the roadmap.") from None
    org = values["org"] or None if visibility == Visibility.ORGANISATION else None
    viewer = await viewer_of(db, current)
    upload = roadmaps.Upload(data, filename, content_type, limits)
    report = await roadmaps.import_upload(
        db,
        upload,
        current.principal,
        viewer,
        dry_run=dry_run,
        slug=slug,
        visibility=visibility,
        org=org,
        clock=resources.clock,
    )
    if values["apply_progress"] and not dry_run:
        learner = progress.Learner(current.user.id, viewer, resources.clock, current_request_id())
        await progress.apply_checklist_marks(
            db, learner, report.slug, roadmaps.checklist_marks(report.parsed)
        )
    return report


# --- fork ---------------------------------------------------------------------------------


@router.post("/roadmaps/{slug}/fork")
async def fork(
    request: Request, slug: Slug, form: SignedInForm, db: DbSession, resources: AppResources
) -> Response:
    body = _validated(
        ForkIn, {"slug": form.get("slug").strip(), "title": form.get("title").strip() or None}
    )
    viewer = await viewer_of(db, form.current)
    copy = await editing.fork_roadmap(
        db,
        editing.Editor(viewer, resources.clock),
        slug,
        slug=body.slug,
        title=body.title,
        access=editing.Access(Visibility.PRIVATE),
    )
    learner = progress.Learner(form.current.user.id, viewer, resources.clock, current_request_id())
    await progress.carry_over(db, learner, slug, copy.roadmap.slug)
    return RedirectResponse(f"/roadmaps/{copy.roadmap.slug}/edit?forked=1", status_code=303)


# --- edit ---------------------------------------------------------------------------------


@router.get("/roadmaps/{slug}/edit")
async def edit_page(request: Request, slug: Slug, current: Member, db: DbSession) -> Response:
    return await _edit(request, slug, current, db, forked=request.query_params.get("forked") == "1")


async def _edit(
    request: Request,
    slug: str,
    current: SignedIn,
    db: DbSession,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    viewer = await viewer_of(db, current)
    tree = await roadmaps.get_tree(db, slug, viewer)
    if not viewer.can_edit(tree.roadmap):
        raise RoadmapNotEditable(slug)
    listing = await roadmaps.listing_of(db, tree.roadmap)
    rows = [
        {"topic": node.topic, "depth": depth, "parent": parent}
        for depth, parent, node in _flatten(tree.sections)
    ]
    context = _base(
        current,
        roadmap=tree.roadmap,
        roadmap_etag=etag_of(roadmap_out(listing)),
        rows=rows,
        **extra,
    )
    return page(request, "edit.html", context, status_code=status_code)


EditNode = roadmaps.TopicNode[roadmaps.TopicDetail]


def _flatten(
    nodes: Sequence[EditNode], depth: int = 0, parent: str = ""
) -> list[tuple[int, str, EditNode]]:
    """Every topic in the tree's order, with its depth and its parent's slug."""
    out: list[tuple[int, str, EditNode]] = []
    for node in nodes:
        out.append((depth, parent, node))
        out.extend(_flatten(node.children, depth + 1, node.topic.slug))
    return out


@asynccontextmanager
async def _all_or_nothing(db: DbSession) -> AsyncIterator[None]:
    """A change refused half-way (a move under its own subtopic, say) leaves nothing behind:
    not its rows (a savepoint) and not its after-commit callbacks."""
    callbacks = list(db.info.get(AFTER_COMMIT, []))
    try:
        async with db.begin_nested():
            yield
    except DomainError:
        db.info[AFTER_COMMIT] = callbacks
        raise


def _check_unchanged(listing: roadmaps.RoadmapListing, form: Any) -> None:
    """The page's forms carry the roadmap's ETag (the API's, for `GET /v1/roadmaps/{slug}`),
    which changes with every edit: a form from a page opened before any change is refused
    (412) rather than applied to a roadmap its author has not seen."""
    Precondition(form.get("etag") or None).check(roadmap_out(listing))


async def _editable(
    db: DbSession, slug: str, current: SignedIn
) -> tuple[Viewer, roadmaps.RoadmapListing]:
    """The roadmap as it is, locked until the edit commits (404, 403 as the API answers)."""
    viewer = await viewer_of(db, current)
    return viewer, await editing.editable_roadmap(db, slug, viewer)


async def _refused(
    request: Request, slug: str, form: Any, db: DbSession, error: DomainError
) -> Response:
    lines = [STALE_EDIT] if isinstance(error, PreconditionFailed) else _error_lines(error)
    return await _edit(request, slug, form.current, db, error.status, errors=lines)


@router.post("/roadmaps/{slug}/edit")
async def update_roadmap(
    request: Request, slug: Slug, form: SignedInForm, db: DbSession, resources: AppResources
) -> Response:
    try:
        viewer, roadmap = await _editable(db, slug, form.current)
        body = _validated(
            RoadmapPatchIn,
            {"title": form.get("title").strip(), "description": form.get("description").strip()},
        )
        _check_unchanged(roadmap, form)
        changes = editing.RoadmapChanges(title=body.title, description=body.description)
        await editing.update_roadmap(db, editing.Editor(viewer, resources.clock), slug, changes)
    except DomainError as error:
        return await _refused(request, slug, form, db, error)
    return RedirectResponse(f"/roadmaps/{slug}/edit?saved=1", status_code=303)


@router.post("/roadmaps/{slug}/edit/topics")
async def add_topic(
    request: Request, slug: Slug, form: SignedInForm, db: DbSession, resources: AppResources
) -> Response:
    try:
        viewer, roadmap = await _editable(db, slug, form.current)
        _check_unchanged(roadmap, form)
        body = _validated(
            TopicIn, {"title": form.get("title").strip(), "parent": form.get("parent") or None}
        )
        new = editing.NewTopic(title=body.title, parent=body.parent)
        added = await editing.add_topic(db, editing.Editor(viewer, resources.clock), slug, new)
    except DomainError as error:
        return await _refused(request, slug, form, db, error)
    return RedirectResponse(f"/roadmaps/{slug}/edit#e-{added.topic.slug}", status_code=303)


@router.post("/roadmaps/{slug}/edit/topics/{topic}")
async def update_topic(
    request: Request,
    slug: Slug,
    topic: Slug,
    form: SignedInForm,
    db: DbSession,
    resources: AppResources,
) -> Response:
    """Rename and/or move: the title, the parent (blank: a section) and the place among the
    new siblings (blank: kept, or last when the parent changes)."""
    position = form.get("position").strip()
    data: dict[str, Any] = {"title": form.get("title").strip()}
    try:
        viewer, roadmap = await _editable(db, slug, form.current)
        if "parent" in form.form:
            data["parent"] = form.get("parent") or None
        if position:
            if not position.isdigit():
                raise UnprocessableContent("Position: a whole number, 1 for the first place.")
            data["position"] = max(int(position) - 1, 0)
        body = _validated(TopicPatchIn, data)
        _check_unchanged(roadmap, form)
        view = await editing.editable_topic(db, slug, topic, viewer)
        old_parent = view.ancestors[-1].slug if view.ancestors else None
        changes: dict[str, Any] = {}
        if body.title != view.topic.title:
            changes["title"] = body.title
        if "parent" in data and body.parent != old_parent:
            changes["parent"] = body.parent
        if "position" in data:
            changes["position"] = body.position
        async with _all_or_nothing(db):
            moved = await editing.update_topic(
                db,
                editing.Editor(viewer, resources.clock),
                slug,
                topic,
                editing.TopicChanges(**changes),
            )
    except DomainError as error:
        return await _refused(request, slug, form, db, error)
    return RedirectResponse(f"/roadmaps/{slug}/edit#e-{moved.topic.slug}", status_code=303)


@router.post("/roadmaps/{slug}/edit/topics/{topic}/delete")
async def delete_topic(
    request: Request,
    slug: Slug,
    topic: Slug,
    form: SignedInForm,
    db: DbSession,
    resources: AppResources,
) -> Response:
    try:
        viewer, roadmap = await _editable(db, slug, form.current)
        _check_unchanged(roadmap, form)
        await editing.delete_topic(db, editing.Editor(viewer, resources.clock), slug, topic)
    except DomainError as error:
        return await _refused(request, slug, form, db, error)
    return RedirectResponse(f"/roadmaps/{slug}/edit?deleted={topic}", status_code=303)
