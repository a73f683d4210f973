"""HTTP routes of the roadmaps domain: parse the request, call the service, shape the response."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response, status
from starlette.datastructures import UploadFile

from skilltree.identity import MAX_SLUG_LENGTH, SLUG_PATTERN
from skilltree.platform.broadcast import user_channel
from skilltree.platform.cache import Computed
from skilltree.platform.db import after_commit
from skilltree.platform.errors import PayloadTooLarge, UnprocessableContent
from skilltree.platform.http import conditional
from skilltree.platform.http.bodies import read_body, read_upload
from skilltree.platform.http.deprecation import Deprecation
from skilltree.platform.http.fast_path import CachedRead
from skilltree.platform.http.filtering import parse_list_query
from skilltree.platform.http.idempotency import IDEMPOTENT
from skilltree.platform.http.negotiation import negotiate
from skilltree.platform.http.offsets import OffsetParams, link_header, page_links
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.observability.context import current_request_id
from skilltree.platform.state import AppCache, AppResources, DbSession, Resources
from skilltree.roadmaps import progress_link, service
from skilltree.roadmaps.dependencies import (
    CurrentViewer,
    RoadmapWriter,
    SlugPath,
    TopicSlugPath,
    WriterViewer,
)
from skilltree.roadmaps.document import RoadmapDoc, TopicDoc
from skilltree.roadmaps.exporting import to_csv, to_markdown
from skilltree.roadmaps.importing import ImportLimits, ParsedRoadmap, RoadmapTooLarge
from skilltree.roadmaps.listing import ROADMAP_LIST
from skilltree.roadmaps.policies import Visibility
from skilltree.roadmaps.presenters import (
    cache_control,
    public_representation,
    roadmap_out,
    route_handlers,
    topic_out,
    tree_json,
)
from skilltree.roadmaps.schemas import (
    CheckedMarkOut,
    ImportChangesOut,
    ImportProgressOut,
    ImportReportOut,
    PreviewNodeOut,
    RoadmapListOut,
    RoadmapOut,
    RoadmapTreeOut,
    SkippedLineOut,
    TopicChangeOut,
    TopicOut,
)

router = APIRouter(prefix=API_PREFIX, tags=["roadmaps"])

# The tree was first served at /outline; that name answers, deprecated, until the sunset.
OUTLINE_DEPRECATION = Deprecation(
    since=datetime(2026, 11, 27, tzinfo=UTC), sunset=datetime(2027, 6, 30, tzinfo=UTC)
)

LIST_PARAMETERS: dict[str, Any] = {
    "parameters": [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "schema": schema,
        }
        for name, description, schema in (
            (
                "visibility",
                "public, organisation or private (also visibility[ne])",
                {"type": "string", "enum": ["public", "organisation", "private"]},
            ),
            (
                "source",
                "builtin, import, custom or fork (also source[ne])",
                {"type": "string", "enum": ["builtin", "import", "custom", "fork"]},
            ),
            ("title[contains]", "Case-insensitive substring of the title", {"type": "string"}),
            (
                "updated_at[gte]",
                "An RFC 3339 date-time (with its offset); also gt, lt, lte, eq",
                {"type": "string", "format": "date-time"},
            ),
        )
    ]
}

IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "description": "A markdown checklist, or a roadmap document as JSON or YAML.",
        "content": {
            "text/markdown": {"schema": {"type": "string", "minLength": 1}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["title", "topics"],
                    "properties": {
                        "title": {"type": "string", "minLength": 1, "maxLength": 300},
                        "topics": {"type": "array"},
                    },
                }
            },
            "application/yaml": {"schema": {"type": "string", "minLength": 1}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


@router.get(
    "/roadmaps",
    response_model=RoadmapListOut,
    responses=problem_responses(400),
    openapi_extra=LIST_PARAMETERS,
)
async def list_roadmaps(
    request: Request,
    session: DbSession,
    viewer: CurrentViewer,
    page: OffsetParams,
    sort: Annotated[
        str | None,
        Query(
            description="Comma-separated fields, '-' for descending: title, slug, "
            "updated_at, created_at"
        ),
    ] = None,
) -> Response:
    """The roadmaps you may see, filtered, sorted and a page at a time.

    Filters: `visibility`, `source` (eq, ne), `title` (eq, contains), `updated_at` and
    `created_at` (eq, gt, gte, lt, lte), written `field=value` or `field[op]=value`. Unknown
    fields or operators are a 400 problem naming the parameter.
    """
    query = parse_list_query(request.query_params, ROADMAP_LIST)
    listings, total = await service.list_roadmaps(session, viewer, query, page.limit, page.offset)
    links = page_links(request, page, total)
    body = RoadmapListOut(
        items=[roadmap_out(item) for item in listings],
        total=total,
        limit=page.limit,
        offset=page.offset,
        links=links,
    )
    # The list depends on who asks: never stored by a shared cache.
    return conditional.respond(
        request, body, cache_control=conditional.PRIVATE, headers={"link": link_header(links)}
    )


@router.get("/roadmaps/{slug}", response_model=RoadmapOut, responses=problem_responses(404))
async def get_roadmap(
    request: Request,
    slug: SlugPath,
    session: DbSession,
    viewer: CurrentViewer,
    resources: AppResources,
) -> Response:
    listing = await service.get_roadmap(session, slug, viewer)
    return conditional.respond(
        request, roadmap_out(listing), cache_control=cache_control(listing.roadmap, resources)
    )


_SLUG = SLUG_PATTERN.removeprefix("^").removesuffix("$")
# The reads whose public answers the fast path may send from the cache's local copies
# (platform/http/fast_path.py): the same keys as the routes below.
CACHED_READS = (
    CachedRead(
        f"{API_PREFIX}/roadmaps/{{slug}}/tree",
        re.compile(f"{API_PREFIX}/roadmaps/(?P<slug>{_SLUG})/tree"),
        lambda match: service.tree_key(match["slug"]),
    ),
    CachedRead(
        f"{API_PREFIX}/roadmaps/{{slug}}/topics/{{topic_slug}}",
        re.compile(f"{API_PREFIX}/roadmaps/(?P<slug>{_SLUG})/topics/(?P<topic>{_SLUG})"),
        lambda match: service.topic_key(match["slug"], match["topic"]),
    ),
)


@router.get(
    "/roadmaps/{slug}/tree", response_model=RoadmapTreeOut, responses=problem_responses(404)
)
async def get_tree(
    request: Request,
    slug: SlugPath,
    session: DbSession,
    viewer: CurrentViewer,
    resources: AppResources,
    cache: AppCache,
) -> Response:
    """The whole topic tree, nested, in a constant number of queries (none when cached)."""

    async def render() -> Computed:
        tree = await service.tree_rows(session, slug, viewer)
        return public_representation(tree_json(tree), tree.roadmap, resources)

    cached = await cache.fetch(
        service.tree_key(slug), render, resources.settings.cache.roadmap_ttl_seconds
    )
    return conditional.Representation.from_bytes(cached).respond(request)


@router.get(
    "/roadmaps/{slug}/outline",
    response_model=RoadmapTreeOut,
    responses=problem_responses(404),
    deprecated=True,
)
async def get_outline(
    request: Request,
    slug: SlugPath,
    session: DbSession,
    viewer: CurrentViewer,
    resources: AppResources,
    cache: AppCache,
) -> Response:
    """Deprecated: the tree's first address, answering until its Sunset date. Use /tree."""
    response = await get_tree(request, slug, session, viewer, resources, cache)
    return OUTLINE_DEPRECATION.apply(response, successor=f"{API_PREFIX}/roadmaps/{slug}/tree")


@router.get(
    "/roadmaps/{slug}/topics/{topic_slug}",
    response_model=TopicOut,
    responses=problem_responses(404),
)
async def get_topic(
    request: Request,
    slug: SlugPath,
    topic_slug: TopicSlugPath,
    session: DbSession,
    viewer: CurrentViewer,
    resources: AppResources,
    cache: AppCache,
) -> Response:
    """One topic with its place in the tree and where this codebase implements it."""

    async def render() -> Computed:
        view = await service.get_topic(session, slug, topic_slug, viewer)
        out = topic_out(view, route_handlers(request))
        return public_representation(out, view.roadmap, resources)

    cached = await cache.fetch(
        service.topic_key(slug, topic_slug), render, resources.settings.cache.roadmap_ttl_seconds
    )
    return conditional.Representation.from_bytes(cached).respond(request)


ExportFormat = Literal["markdown", "json", "csv"]
# Offered in this order: markdown stays the answer to no Accept (or */*) as before negotiation.
EXPORT_FORMATS: dict[str, ExportFormat] = {
    "text/markdown": "markdown",
    "application/json": "json",
    "text/csv": "csv",
}


@router.get(
    "/roadmaps/{slug}/export",
    response_class=Response,
    responses={
        200: {
            "description": "The roadmap as a file",
            "content": {media_type: {} for media_type in EXPORT_FORMATS},
        },
        **problem_responses(404, 406),
    },
)
async def export_roadmap(
    request: Request,
    slug: SlugPath,
    session: DbSession,
    viewer: CurrentViewer,
    format: Annotated[
        ExportFormat | None,
        Query(description="For links: picks the format and overrides Accept"),
    ] = None,
) -> Response:
    """Download the roadmap: a markdown checklist, JSON that re-imports losslessly, or CSV (one
    row per topic: path, title, level, estimate). `Accept` picks the format (406 when none is
    available); `format` overrides it, for links that cannot send headers."""
    chosen = format or _negotiated_format(request)
    document = await service.export_document(session, slug, viewer)
    body, media_type, extension = _export(document, chosen)
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{slug}.{extension}"',
            # Caches must key the response on Accept: one URL, three representations.
            "Vary": "Accept",
        },
    )


def _negotiated_format(request: Request) -> ExportFormat:
    return EXPORT_FORMATS[negotiate(request.headers.get("accept"), tuple(EXPORT_FORMATS))]


def _export(document: RoadmapDoc, chosen: ExportFormat) -> tuple[bytes, str, str]:
    """The body, media type and file extension of one export format."""
    if chosen == "json":
        body = orjson.dumps(
            document.model_dump(mode="json", exclude_defaults=True), option=orjson.OPT_INDENT_2
        )
        return body, "application/json", "json"
    if chosen == "csv":
        return to_csv(document).encode(), "text/csv; charset=utf-8", "csv"
    return to_markdown(document).encode(), "text/markdown; charset=utf-8", "md"


@router.post(
    "/roadmaps/import",
    response_model=ImportReportOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[IDEMPOTENT],
    openapi_extra=IMPORT_BODY,
    responses={
        200: {"description": "Dry run, or an existing roadmap updated", "model": ImportReportOut},
        **problem_responses(409, 413, 415, 422),
    },
)
async def import_roadmap(
    request: Request,
    response: Response,
    session: DbSession,
    resources: AppResources,
    writer: RoadmapWriter,
    viewer: WriterViewer,
    dry_run: Annotated[bool, Query(description="Parse and report; write nothing")] = False,
    slug: Annotated[str | None, Query(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)] = None,
    visibility: Annotated[
        Visibility | None,
        Query(description="New roadmaps: private (default), organisation or public"),
    ] = None,
    org: Annotated[
        str | None,
        Query(
            pattern=SLUG_PATTERN,
            max_length=MAX_SLUG_LENGTH,
            description="The organisation of an organisation roadmap (you must own or mentor it)",
        ),
    ] = None,
    apply_progress: Annotated[
        bool,
        Query(
            description="Record the file's ticked boxes ([x], [/], [-]) as your progress; "
            "empty boxes never undo progress"
        ),
    ] = False,
) -> ImportReportOut:
    """Create or update a roadmap from a markdown checklist, JSON or YAML.

    Re-importing the same file changes nothing; an edited file changes only what changed, and
    topics keep their ids (and so everyone's progress) across re-imports.
    """
    limits = _limits(resources)
    try:
        data, filename, content_type = await _read_import(request, limits.max_bytes)
    except PayloadTooLarge as error:
        raise RoadmapTooLarge(error.detail, limit=limits.max_bytes) from None
    upload = service.Upload(data, filename, content_type, limits)
    report = await service.import_upload(
        session,
        upload,
        writer,
        viewer,
        dry_run=dry_run,
        slug=slug,
        visibility=visibility,
        org=org,
        clock=resources.clock,
    )
    progress_out = None
    if apply_progress:
        marks = service.checklist_marks(report.parsed)
        changed = 0
        if not dry_run:
            learner = progress_link.Writer(
                user_id=writer.user_id,
                viewer=viewer,
                clock=resources.clock,
                request_id=current_request_id(),
            )
            changed = await progress_link.apply_marks(session, learner, report.slug, marks)
        progress_out = ImportProgressOut(
            applied=not dry_run,
            marks=[CheckedMarkOut(topic=slug_, status=mark) for slug_, mark in marks],
            changed=changed,
        )
    if report.created and not dry_run:
        response.headers["Location"] = f"{API_PREFIX}/roadmaps/{report.slug}"
    else:
        response.status_code = status.HTTP_200_OK
    out = _report_out(report)
    out.progress = progress_out
    if not dry_run:
        _announce_import(session, resources, writer.user_id, out)
    return out


def _announce_import(
    session: DbSession, resources: Resources, user_id: int, out: ImportReportOut
) -> None:
    """Once the import is committed, the importer's own live stream hears it finished (their
    other tabs and devices: an import made by a script through the API shows in the browser)."""
    notice = {
        "kind": "import.finished",
        "occurred_at": resources.clock.now().isoformat(),
        "data": {
            "roadmap": out.roadmap,
            "title": out.title,
            "created": out.created,
            "topic_count": out.topic_count,
            "added": len(out.changes.added),
            "updated": len(out.changes.updated),
            "removed": len(out.changes.removed),
        },
    }

    async def publish() -> None:
        await resources.broadcaster.publish(user_channel(user_id), notice)

    after_commit(session, publish)


async def _read_import(request: Request, max_bytes: int) -> tuple[bytes, str | None, str | None]:
    content_type = request.headers.get("content-type")
    if content_type and content_type.startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=1) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise UnprocessableContent("The multipart body needs a 'file' part.", field="file")
            data = await read_upload(upload, max_bytes)
            return data, upload.filename, upload.content_type
    return await read_body(request, max_bytes), None, content_type


def _limits(resources: AppResources) -> ImportLimits:
    settings = resources.settings.importing
    return ImportLimits(
        max_bytes=settings.max_bytes, max_depth=settings.max_depth, max_topics=settings.max_topics
    )


def _report_out(report: service.ImportReport) -> ImportReportOut:
    parsed: ParsedRoadmap = report.parsed
    plan = report.plan
    return ImportReportOut(
        roadmap=report.slug,
        title=parsed.document.title,
        created=report.created,
        dry_run=report.dry_run,
        version=report.roadmap.version if report.roadmap else None,
        topic_count=len(plan.added) + len(plan.updated) + plan.unchanged,
        item_count=len(parsed.items),
        changes=ImportChangesOut(
            added=[p.slug for p in plan.added],
            updated=[
                TopicChangeOut(slug=u.planned.slug, fields=list(u.changed)) for u in plan.updated
            ],
            removed=[t.slug for t in plan.removed],
            unchanged=plan.unchanged,
        ),
        repaired_encoding=parsed.repaired_encoding,
        warnings=parsed.warnings,
        skipped=[SkippedLineOut(line=line, text=text) for line, text in parsed.skipped],
        preview=[_preview(t) for t in parsed.document.topics] if report.dry_run else None,
    )


def _preview(topic: TopicDoc) -> PreviewNodeOut:
    return PreviewNodeOut(
        slug=topic.slug or "",
        title=topic.title,
        line=topic.line,
        status=topic.status,
        children=[_preview(child) for child in topic.children],
    )
