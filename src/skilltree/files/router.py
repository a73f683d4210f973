"""HTTP routes of files: note attachments (upload, list, delete), signed downloads, avatars."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from skilltree.accounts.dependencies import MaybePrincipal, require_scope
from skilltree.files import service
from skilltree.files.dependencies import Storage, limits_of
from skilltree.files.errors import InvalidUpload
from skilltree.files.multipart import FilePart, file_chunks
from skilltree.files.schemas import AvatarOut, FileListOut, FileOut
from skilltree.files.storage import ObjectStorage
from skilltree.identity import MAX_SLUG_LENGTH, SLUG_PATTERN, Principal, Scope
from skilltree.orgs import service as orgs
from skilltree.platform.http.bounds import RowId
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import AppResources, DbSession
from skilltree.profiles.schemas import HANDLE_PATTERN

router = APIRouter(prefix=API_PREFIX, tags=["files"])

RoadmapPath = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)]
TopicPath = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)]
Reader = Annotated[Principal, Depends(require_scope(Scope.PROGRESS_READ))]
Writer = Annotated[Principal, Depends(require_scope(Scope.PROGRESS_WRITE))]
ATTACHMENTS = "/me/progress/{roadmap}/{topic}/note/attachments"
# Uploads are limited per kind by the route, while they stream (not by the global body limit).
UPLOAD_PATH_SUFFIX = "/note/attachments"
AVATAR_PATH = "/me/avatar"
HandlePath = Annotated[str, Path(pattern=HANDLE_PATTERN, max_length=40)]
PRIVATE = "private, no-store"


def _out(file: service.FileView, resources: AppResources, user_id: int) -> FileOut:
    ttl = resources.settings.files.download_url_ttl_seconds
    secret = resources.settings.app.secret_key
    url = service.download_url(secret, file, user_id, ttl)
    thumbnail = None
    if file.thumbnail_key is not None:
        thumbnail = service.signed_url(secret, file.thumbnail_key, user_id, ttl)
    return FileOut(
        id=file.id,
        filename=file.filename,
        content_type=file.content_type,
        size=file.size,
        sha256=file.sha256,
        created_at=file.created_at,
        download_url=url,
        thumbnail_url=thumbnail,
    )


UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        }
    },
}


@router.post(
    ATTACHMENTS,
    response_model=FileOut,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(400, 401, 403, 404, 413, 415, 422, 507),
    # The body is streamed, not parsed by FastAPI, so the document states it here: without it
    # the operation seems to take no body, and a client sending none meets a 400.
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def upload_attachment(
    request: Request,
    roadmap: RoadmapPath,
    topic: TopicPath,
    current: Writer,
    session: DbSession,
    resources: AppResources,
    storage: Storage,
) -> FileOut:
    """Attach a file to your note: multipart/form-data with a part named `file`.

    The body is streamed to storage; its type is read from its first bytes (PNG, JPEG, GIF,
    WebP, PDF or UTF-8 text), its size counted against the per-file limit (413) and your
    quota (507) as it arrives.
    """
    content_type = _multipart_type(request)
    part = FilePart()
    view = await service.upload_attachment(
        session,
        storage,
        await orgs.viewer_of(session, current),
        current.user_id,
        roadmap,
        topic,
        filename=lambda: part.filename,
        chunks=file_chunks(request.stream(), content_type, part),
        limits=limits_of(resources),
        now=resources.clock.now(),
    )
    return _out(view, resources, current.user_id)


def _multipart_type(request: Request) -> str:
    content_type = request.headers.get("content-type")
    if content_type is None or not content_type.startswith("multipart/form-data"):
        raise InvalidUpload("Send the file as multipart/form-data in a part named 'file'.")
    return content_type


@router.get(ATTACHMENTS, response_model=FileListOut, responses=problem_responses(401, 403, 404))
async def list_attachments(
    roadmap: RoadmapPath,
    topic: TopicPath,
    current: Reader,
    session: DbSession,
    resources: AppResources,
    response: Response,
) -> FileListOut:
    """Your note's attachments, each with a signed download link."""
    viewer = await orgs.viewer_of(session, current)
    files = await service.list_attachments(session, viewer, current.user_id, roadmap, topic)
    response.headers["cache-control"] = PRIVATE
    return FileListOut(items=[_out(file, resources, current.user_id) for file in files])


@router.delete(
    ATTACHMENTS + "/{file_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
)
async def delete_attachment(
    roadmap: RoadmapPath,
    topic: TopicPath,
    file_id: RowId,
    current: Writer,
    session: DbSession,
    storage: Storage,
) -> Response:
    """Delete an attachment; its bytes leave storage once the deletion is committed."""
    viewer = await orgs.viewer_of(session, current)
    await service.delete_attachment(
        session, storage, viewer, current.user_id, roadmap, topic, file_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/files/{key:path}",
    responses=problem_responses(403, 404, 416),
    response_class=StreamingResponse,
)
async def download(
    request: Request,
    key: Annotated[str, Path(max_length=100, pattern=r"^[a-z0-9/]+$")],
    # A Unix time; bounded so that no number past any clock reaches the signature check.
    expires: Annotated[int, Query(ge=0, le=10**12)],
    signature: Annotated[str, Query(max_length=100)],
    current: MaybePrincipal,
    session: DbSession,
    resources: AppResources,
    storage: Storage,
) -> Response:
    """A file through its signed link: ETag, If-None-Match, single byte ranges."""
    file = await service.open_download(
        session,
        resources.settings.app.secret_key,
        key,
        expires,
        signature,
        current.user_id if current else None,
    )
    etag = f'"{file.sha256}"'
    headers = {
        "etag": etag,
        "accept-ranges": "bytes",
        "cache-control": PRIVATE,
        "content-disposition": _disposition(file),
        "x-content-type-options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    try:
        wanted = _range(request.headers.get("range"), file.size)
    except _Unsatisfiable:
        headers["content-range"] = f"bytes */{file.size}"
        return Response(status_code=416, headers=headers)
    if wanted is None:
        headers["content-length"] = str(file.size)
        return StreamingResponse(
            _stream(storage, file.key, 0, None), media_type=file.content_type, headers=headers
        )
    start, end = wanted
    headers["content-range"] = f"bytes {start}-{end}/{file.size}"
    headers["content-length"] = str(end - start + 1)
    return StreamingResponse(
        _stream(storage, file.key, start, end),
        status_code=206,
        media_type=file.content_type,
        headers=headers,
    )


async def _stream(
    storage: ObjectStorage, key: str, start: int, end: int | None
) -> AsyncIterator[bytes]:
    async for chunk in storage.read(key, start, end):
        yield chunk


class _Unsatisfiable(Exception):
    """A range that starts past the end of the file (416)."""


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """One byte range of RFC 9110 §14.1.2, or None for the whole file (several ranges, or a
    header we do not understand, are answered with the whole file, as the RFC allows)."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes=") :].strip().partition("-")
    try:
        if first == "":
            length = int(last)
            if length <= 0:
                raise _Unsatisfiable()
            return max(0, size - length), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        raise _Unsatisfiable()
    return start, min(end, size - 1)


def _disposition(file: service.FileView) -> str:
    # Images are shown inline (their type was checked from the bytes); everything else is a
    # download, so a text file is never rendered by the browser as a page of this origin.
    kind = "inline" if file.content_type.startswith("image/") else "attachment"
    ascii_name = service.ascii_filename(file.filename)
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file.filename)}"


@router.put(
    AVATAR_PATH,
    response_model=AvatarOut,
    responses=problem_responses(400, 401, 403, 413, 415, 422, 507),
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def put_avatar(
    request: Request,
    current: Writer,
    session: DbSession,
    resources: AppResources,
    storage: Storage,
) -> AvatarOut:
    """Set your avatar: multipart/form-data with a part named `file`, in place of any old one.

    PNG, JPEG, WebP or GIF, decided from the bytes (415 otherwise); at most
    `SKILLTREE_FILES_AVATAR_MAX_BYTES` (413) and within your quota (507); an image whose header
    claims more than `SKILLTREE_FILES_IMAGE_MAX_PIXELS` pixels is a 422. Its sizes (64, 128,
    256) are made in the background.
    """
    content_type = _multipart_type(request)
    avatar = await service.upload_avatar(
        session,
        storage,
        current.user_id,
        chunks=file_chunks(request.stream(), content_type, FilePart()),
        limits=limits_of(resources),
        now=resources.clock.now(),
    )
    return AvatarOut(
        content_type=avatar.file.content_type,
        size=avatar.file.size,
        sha256=avatar.file.sha256,
        created_at=avatar.file.created_at,
        sizes=list(avatar.sizes),
    )


@router.delete(
    AVATAR_PATH, status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401, 403, 404)
)
async def delete_avatar(current: Writer, session: DbSession, storage: Storage) -> Response:
    """Remove your avatar; it and its sizes leave storage once the deletion is committed."""
    await service.delete_avatar(session, storage, current.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class AvatarSize(enum.IntEnum):
    SMALL = 64
    MEDIUM = 128
    LARGE = 256


AVATAR_IMAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/webp": {"schema": {"type": "string", "format": "binary"}}}},
    304: {"description": "Not Modified: the ETag sent in If-None-Match is still current"},
}


@router.get(
    "/users/{handle}/avatar",
    response_class=Response,
    responses=AVATAR_IMAGE | problem_responses(404, 422),
)
async def get_avatar(
    request: Request,
    handle: HandlePath,
    current: MaybePrincipal,
    session: DbSession,
    resources: AppResources,
    storage: Storage,
    size: Annotated[AvatarSize, Query(description="Pixels a side")] = AvatarSize.MEDIUM,
) -> Response:
    """A user's avatar, square WebP of `size` pixels a side: anyone's if their profile is
    public (cacheable), your own otherwise. A 404 until its sizes are made."""
    image = await service.avatar_image(session, handle, size, current.user_id if current else None)
    etag = f'"{image.sha256}"'
    max_age = resources.settings.files.avatar_max_age_seconds
    headers = {
        "etag": etag,
        # A private profile's avatar is its owner's alone: no shared cache may keep it.
        "cache-control": f"public, max-age={max_age}" if image.public else "private, no-cache",
        "x-content-type-options": "nosniff",
        "content-disposition": "inline",
    }
    if etag in _etags(request.headers.get("if-none-match")):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    data = b"".join([chunk async for chunk in storage.read(image.key)])  # at most a few KiB
    return Response(data, media_type=image.content_type, headers=headers)


def _etags(header: str | None) -> set[str]:
    """The entity tags of an If-None-Match header (`*` matches any)."""
    if not header:
        return set()
    if header.strip() == "*":
        return {"*"}
    return {tag.strip() for tag in header.split(",")}
