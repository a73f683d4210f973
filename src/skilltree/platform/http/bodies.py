"""Reading request bodies with a hard size limit, without trusting Content-Length."""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import UploadFile

from skilltree.platform.errors import PayloadTooLarge


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, refused with 413 as soon as it grows past max_bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(
                f"The body exceeds the limit of {max_bytes} bytes.", limit=max_bytes
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    """An uploaded file's content; reading one byte past the limit proves it is too large."""
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"The file exceeds the limit of {max_bytes} bytes.", limit=max_bytes)
    return data
