"""Object storage behind one interface: the local disk (embedded default) or an S3 bucket.

Objects are written from an async iterator of chunks and read back by byte range, so no
caller ever holds a whole file in memory. A write lands under a temporary name and is renamed
into place when complete: a reader never sees half an object, and a failed upload leaves
nothing behind but a temporary file that is removed.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import anyio

from skilltree.platform.config import FilesSettings

READ_CHUNK = 64 * 1024


class ObjectStorage(Protocol):
    async def save(self, key: str, chunks: AsyncIterator[bytes]) -> None: ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes start..end (inclusive; None: to the end)."""
        ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...


class LocalDiskStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        # Keys are made by the server from [a-z0-9/]; this refuses anything else anyway.
        if not key or ".." in key or key.startswith("/") or "\\" in key:
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / key

    async def save(self, key: str, chunks: AsyncIterator[bytes]) -> None:
        path = self._path(key)
        partial = path.with_name(path.name + ".partial")
        await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
        try:
            async with await anyio.open_file(partial, "wb") as sink:
                async for chunk in chunks:
                    await sink.write(chunk)
            await anyio.to_thread.run_sync(os.replace, partial, path)
        except BaseException:
            await anyio.Path(partial).unlink(missing_ok=True)
            raise

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        remaining = None if end is None else end - start + 1
        async with await anyio.open_file(self._path(key), "rb") as source:
            await source.seek(start)
            while remaining is None or remaining > 0:
                size = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                chunk = await source.read(size)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    async def delete(self, key: str) -> None:
        await anyio.Path(self._path(key)).unlink(missing_ok=True)

    async def exists(self, key: str) -> bool:
        return await anyio.Path(self._path(key)).is_file()


# S3's smallest part (every part but the last must be at least this large).
S3_MIN_PART_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class S3Location:
    bucket: str
    endpoint_url: str | None  # None: AWS itself; otherwise any S3-compatible server
    region: str
    access_key_id: str | None
    secret_access_key: str | None
    part_bytes: int = S3_MIN_PART_BYTES


class S3Storage:
    """An S3-compatible bucket, through aioboto3 (botocore on aiohttp: no blocking calls).

    Uploads stream as multipart uploads: one part (`part_bytes`, at least S3's 5 MiB) is held
    in memory at a time, whatever the object's size. An object smaller than one part is a single
    PUT. An upload that fails is aborted, so no half object and no orphaned parts remain, and
    S3 never shows an object before its upload completes.
    """

    def __init__(self, location: S3Location) -> None:
        # Imported here: botocore takes longer to import than the rest of the service, and a
        # deployment on local disk never needs it.
        import aioboto3

        self.location = location
        self.session = aioboto3.Session(
            aws_access_key_id=location.access_key_id,
            aws_secret_access_key=location.secret_access_key,
            region_name=location.region,
        )

    def _client(self) -> Any:
        return self.session.client("s3", endpoint_url=self.location.endpoint_url)

    async def save(self, key: str, chunks: AsyncIterator[bytes]) -> None:
        bucket = self.location.bucket
        async with self._client() as s3:
            part = bytearray()
            upload_id: str | None = None
            parts: list[dict[str, Any]] = []
            try:
                async for chunk in chunks:
                    part += chunk
                    if len(part) >= self.location.part_bytes:
                        if upload_id is None:
                            created = await s3.create_multipart_upload(Bucket=bucket, Key=key)
                            upload_id = created["UploadId"]
                        parts.append(await _upload_part(s3, bucket, key, upload_id, parts, part))
                        part = bytearray()
                if upload_id is None:
                    await s3.put_object(Bucket=bucket, Key=key, Body=bytes(part))
                    return
                if part:
                    parts.append(await _upload_part(s3, bucket, key, upload_id, parts, part))
                await s3.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
            except BaseException:
                if upload_id is not None:
                    await s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
                raise

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        wanted = f"bytes={start}-{'' if end is None else end}"
        async with self._client() as s3:
            found = await s3.get_object(Bucket=self.location.bucket, Key=key, Range=wanted)
            body = found["Body"]
            try:
                async for chunk in body.iter_chunks(READ_CHUNK):
                    yield chunk
            finally:
                body.close()

    async def delete(self, key: str) -> None:
        async with self._client() as s3:
            await s3.delete_object(Bucket=self.location.bucket, Key=key)

    async def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        async with self._client() as s3:
            try:
                await s3.head_object(Bucket=self.location.bucket, Key=key)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                    return False
                raise
            return True


async def _upload_part(
    s3: Any, bucket: str, key: str, upload_id: str, parts: list[dict[str, Any]], data: bytearray
) -> dict[str, Any]:
    number = len(parts) + 1
    sent = await s3.upload_part(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(data)
    )
    return {"PartNumber": number, "ETag": sent["ETag"]}


def storage_for(settings: FilesSettings) -> ObjectStorage:
    """The storage the settings choose."""
    if settings.storage == "local":
        return LocalDiskStorage(settings.storage_dir)
    secret = settings.s3_secret_access_key.get_secret_value()
    return _s3_storage(
        S3Location(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url or None,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id or None,
            secret_access_key=secret or None,
            part_bytes=settings.s3_part_bytes,
        )
    )


@lru_cache(maxsize=8)
def _s3_storage(location: S3Location) -> S3Storage:
    # One botocore session per bucket for the process: building one reads the service model
    # files from disk, which per request would cost more than the request.
    return S3Storage(location)
