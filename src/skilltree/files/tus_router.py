"""Resumable uploads over the tus 1.0.0 protocol: core, creation, termination, expiration and
checksum (https://tus.io/protocols/resumable-upload), under `/v1/me/uploads`.

    POST   /v1/me/uploads        Upload-Length, Upload-Metadata (roadmap, topic, filename)
    HEAD   /v1/me/uploads/{id}   Upload-Offset: where to resume
    PATCH  /v1/me/uploads/{id}   Upload-Offset + application/offset+octet-stream bytes
    DELETE /v1/me/uploads/{id}   termination

HTTP only: headers in, `files.resumable` called, headers out. The finished upload is an
attachment of the note, listed with the note's other attachments.
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from email.utils import format_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response, status
from starlette.requests import ClientDisconnect

from skilltree.accounts.dependencies import require_scope
from skilltree.files import resumable
from skilltree.files.dependencies import Storage, limits_of
from skilltree.files.errors import (
    TUS_VERSION,
    InvalidTusRequest,
    NotAnUploadChunk,
    TusVersionUnsupported,
)
from skilltree.identity import Principal, Scope
from skilltree.orgs import service as orgs
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import AppResources, DbSession

UPLOADS = "/me/uploads"
# Bodies of these routes stream to storage under the limits of the upload (not the global
# body limit, which stays for every other route).
TUS_PATH_PREFIX = f"{API_PREFIX}{UPLOADS}"
EXTENSIONS = "creation,termination,expiration,checksum"
CHUNK_TYPE = "application/offset+octet-stream"
MAX_METADATA_BYTES = 4096


router = APIRouter(prefix=API_PREFIX, tags=["files"])

_Reader = Depends(require_scope(Scope.PROGRESS_READ))
_Writer = Depends(require_scope(Scope.PROGRESS_WRITE))


def _speaking_tus(scope_check: Any) -> Any:
    """The caller, once signed in with the scope (401/403 first), and once the request names
    the tus version it speaks (412 otherwise; every tus request but OPTIONS does)."""

    async def check(request: Request, current: Principal = scope_check) -> Principal:
        if request.headers.get("tus-resumable") != TUS_VERSION:
            raise TusVersionUnsupported()
        return current

    return Depends(check)


Reader = Annotated[Principal, _speaking_tus(_Reader)]
Writer = Annotated[Principal, _speaking_tus(_Writer)]
UploadId = Annotated[str, Path(max_length=64)]


def _header(name: str, schema: dict[str, Any], description: str, required: bool = True) -> Any:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "schema": schema,
        "description": description,
    }


# The protocol's headers, read by hand (a wrong version is tus's 412, not a validation 422) and
# so stated here for the API description: clients and fuzzers see what the server requires.
TUS_RESUMABLE = _header(
    "Tus-Resumable",
    {"type": "string", "enum": [TUS_VERSION]},
    "The tus version spoken (412 otherwise).",
)
# No file is larger than what a signed 64-bit integer counts (the column that stores it).
MAX_BYTES = 2**63 - 1
UPLOAD_LENGTH = _header(
    "Upload-Length",
    {"type": "integer", "minimum": 0, "maximum": MAX_BYTES},
    "The whole file's size in bytes.",
)
UPLOAD_METADATA = _header(
    "Upload-Metadata",
    {"type": "string", "maxLength": MAX_METADATA_BYTES},
    "Comma-separated `key base64(value)` pairs: `roadmap` and `topic` name the note (required), "
    "`filename` the file.",
)
UPLOAD_OFFSET = _header(
    "Upload-Offset",
    {"type": "integer", "minimum": 0, "maximum": MAX_BYTES},
    "Where these bytes start (HEAD's offset).",
)
UPLOAD_CHECKSUM = _header(
    "Upload-Checksum",
    {"type": "string"},
    "`<algorithm> base64(digest)` of this request's bytes (tus checksum extension).",
    required=False,
)
CHUNK_BODY = {
    "required": True,
    "content": {CHUNK_TYPE: {"schema": {"type": "string", "format": "binary"}}},
}


def _tus(*headers: Any, body: dict[str, Any] | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {"parameters": [TUS_RESUMABLE, *headers]}
    if body is not None:
        extra["requestBody"] = body
    return extra


# tus's own status for a checksum that does not match (HTTPStatus does not know it).
CHECKSUM_MISMATCH: dict[int | str, dict[str, Any]] = {
    460: {"description": "Checksum Mismatch (tus checksum extension)"}
}


@router.options(UPLOADS, status_code=status.HTTP_204_NO_CONTENT)
async def describe_uploads(resources: AppResources) -> Response:
    """What this server speaks of tus: its version, extensions, largest upload, checksums."""
    headers = {
        "Tus-Resumable": TUS_VERSION,
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": EXTENSIONS,
        "Tus-Max-Size": str(resources.settings.files.attachment_max_bytes),
        "Tus-Checksum-Algorithm": ",".join(resumable.CHECKSUM_ALGORITHMS),
    }
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=headers)


@router.post(
    UPLOADS,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(400, 401, 403, 404, 412, 413, 415, 507),
    openapi_extra=_tus(UPLOAD_LENGTH, UPLOAD_METADATA),
)
async def create_upload(
    request: Request, current: Writer, session: DbSession, resources: AppResources
) -> Response:
    """Start a resumable upload of an attachment to your note (tus creation).

    `Upload-Length` is the file's size; `Upload-Metadata` names the note (`roadmap`, `topic`)
    and may name the file (`filename`). The size limit and your quota are checked here.
    """
    metadata = _metadata(request.headers.get("upload-metadata", ""))
    for required in ("roadmap", "topic"):
        if not metadata.get(required):
            raise InvalidTusRequest(
                f"Upload-Metadata must name the note's {required!r}.", missing=required
            )
    files = resources.settings.files
    state = await resumable.create_upload(
        session,
        await orgs.viewer_of(session, current),
        current.user_id,
        roadmap=metadata["roadmap"],
        topic=metadata["topic"],
        filename=metadata.get("filename") or "file",
        length=_length(request.headers.get("upload-length")),
        limits=limits_of(resources),
        lifetime=timedelta(seconds=files.upload_expiry_seconds),
        now=resources.clock.now(),
    )
    headers = _headers(state) | {"Location": f"{TUS_PATH_PREFIX}/{state.id}"}
    return Response(status_code=status.HTTP_201_CREATED, headers=headers)


@router.head(
    UPLOADS + "/{upload_id}",
    status_code=status.HTTP_200_OK,
    responses=problem_responses(401, 403, 404, 410, 412),
    openapi_extra=_tus(),
)
async def upload_offset(
    upload_id: UploadId, current: Reader, session: DbSession, resources: AppResources
) -> Response:
    """Where the upload stands: `Upload-Offset` is the byte to resume from."""
    state = await resumable.upload_state(session, current.user_id, upload_id, resources.clock.now())
    return Response(headers=_headers(state) | {"Cache-Control": "no-store"})


@router.patch(
    UPLOADS + "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 401, 403, 404, 409, 410, 412, 413, 415, 422, 507)
    | CHECKSUM_MISMATCH,
    openapi_extra=_tus(UPLOAD_OFFSET, UPLOAD_CHECKSUM, body=CHUNK_BODY),
)
async def append_to_upload(
    request: Request,
    upload_id: UploadId,
    current: Writer,
    session: DbSession,
    resources: AppResources,
    storage: Storage,
) -> Response:
    """Send bytes from `Upload-Offset` (which must be the upload's offset: 409 otherwise), as
    `application/offset+octet-stream`, optionally with `Upload-Checksum`. The last byte makes
    the attachment, its type read from the file's first bytes."""
    if request.headers.get("content-type", "").split(";")[0].strip() != CHUNK_TYPE:
        raise NotAnUploadChunk()
    checksum_header = request.headers.get("upload-checksum")
    try:
        state = await resumable.append(
            session,
            storage,
            current.user_id,
            upload_id,
            offset=_offset(request.headers.get("upload-offset")),
            chunks=request.stream(),
            checksum=resumable.Checksum.parse(checksum_header) if checksum_header else None,
            limits=limits_of(resources),
            now=resources.clock.now(),
        )
    except ClientDisconnect:
        # What resumable uploads are for, not a fault: nothing of this PATCH was kept.
        raise InvalidTusRequest(
            "The connection closed before the bytes ended; ask HEAD for the offset."
        ) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=_headers(state))


@router.delete(
    UPLOADS + "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 412),
    openapi_extra=_tus(),
)
async def terminate_upload(
    upload_id: UploadId, current: Writer, session: DbSession, storage: Storage
) -> Response:
    """Abandon an upload (tus termination): its bytes so far are deleted."""
    await resumable.terminate(session, storage, current.user_id, upload_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers={"Tus-Resumable": TUS_VERSION})


def _headers(state: resumable.UploadState) -> dict[str, str]:
    return {
        "Tus-Resumable": TUS_VERSION,
        "Upload-Offset": str(state.offset),
        "Upload-Length": str(state.length),
        "Upload-Expires": format_datetime(state.expires_at, usegmt=True),
    }


def _length(header: str | None) -> int:
    if header is None:
        # No Upload-Defer-Length: the size limit and the quota are checked before any byte.
        raise InvalidTusRequest("Send Upload-Length: the size of the whole file.")
    return _non_negative(header, "Upload-Length")


def _offset(header: str | None) -> int:
    if header is None:
        raise InvalidTusRequest("Send Upload-Offset: the offset these bytes start at.")
    return _non_negative(header, "Upload-Offset")


def _non_negative(header: str, name: str) -> int:
    if not header.isdigit() or len(header) > 18:
        raise InvalidTusRequest(f"{name} must be a non-negative integer.")
    return int(header)


def _metadata(header: str) -> dict[str, str]:
    """`Upload-Metadata: key base64value,key2 base64value2` (values are optional)."""
    if len(header) > MAX_METADATA_BYTES:
        raise InvalidTusRequest("Upload-Metadata is too long.", limit=MAX_METADATA_BYTES)
    pairs: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in header.split(","))):
        key, _, encoded = item.partition(" ")
        try:
            pairs[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidTusRequest(f"Upload-Metadata's {key!r} is not base64 UTF-8.") from None
    return pairs
