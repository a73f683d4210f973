"""Resumable uploads (tus 1.0.0): the rules, whatever carries them over HTTP.

An upload is created with its length and its note; its limits (the size of an attachment, the
learner's quota, counting the uploads still in progress) are checked then, before any byte.
Each PATCH streams into a part of its own in storage (`uploads/{user}/{upload}/{offset}-…`),
and the offset moves on only when the part is whole and, if one was sent, its checksum right:
a PATCH cut off midway leaves the offset where it was, and the client resumes from HEAD's
answer. The last byte joins the parts, in order, into an attachment through the same guard as
a multipart upload (type from the first bytes, image dimensions, SHA-256), in the request's
transaction (decision 0048). Uploads are looked up by (owner, id): another learner's upload is
a 404 before any byte is read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.files import repository
from skilltree.files.errors import (
    ChecksumMismatch,
    FileTooLarge,
    InvalidTusRequest,
    OffsetMismatch,
    QuotaExceeded,
    UnsupportedFileType,
    UploadExpired,
    UploadNotFound,
)
from skilltree.files.models import ResumableUpload
from skilltree.files.service import ATTACHMENT, ATTACHMENT_TYPES, FileView, Limits, store_attachment
from skilltree.files.sniffing import HEAD_BYTES, sniff
from skilltree.files.storage import ObjectStorage
from skilltree.identity import Viewer
from skilltree.platform.db import after_commit
from skilltree.roadmaps import service as roadmaps

# Upload-Checksum algorithms (the tus checksum extension). SHA-1 is what most tus clients send
# by default; it guards against corruption in transit here, not against an adversary (the
# stored file's SHA-256 is computed by the server from the bytes).
CHECKSUM_ALGORITHMS = ("sha256", "sha1")


@dataclass(frozen=True)
class UploadState:
    id: str
    length: int
    offset: int
    expires_at: datetime
    file: FileView | None = None  # set once the last byte arrived


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    @classmethod
    def parse(cls, header: str) -> Checksum:
        """`Upload-Checksum: <algorithm> <base64 digest>`."""
        algorithm, _, encoded = header.strip().partition(" ")
        if algorithm not in CHECKSUM_ALGORITHMS:
            raise InvalidTusRequest(
                f"Checksum algorithm {algorithm!r} is not supported; use one of "
                f"{', '.join(CHECKSUM_ALGORITHMS)}.",
                supported=list(CHECKSUM_ALGORITHMS),
            )
        try:
            digest = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidTusRequest("Upload-Checksum's digest is not base64.") from None
        return cls(algorithm, digest)


async def create_upload(
    session: AsyncSession,
    viewer: Viewer,
    user_id: int,
    *,
    roadmap: str,
    topic: str,
    filename: str,
    length: int,
    limits: Limits,
    lifetime: timedelta,
    now: datetime,
) -> UploadState:
    """A new upload of `length` bytes for the learner's note on the topic."""
    view = await roadmaps.get_topic(session, roadmap, topic, viewer)
    if length == 0:
        raise UnsupportedFileType(None, list(ATTACHMENT_TYPES))
    if length > limits.attachment_max_bytes:
        raise FileTooLarge(limits.attachment_max_bytes)
    used = await repository.used_bytes(session, user_id)
    used += await repository.reserved_bytes(session, user_id, now)
    if used + length > limits.quota_bytes:
        raise QuotaExceeded(limits.quota_bytes, used)
    row = ResumableUpload(
        id=secrets.token_hex(16),
        user_id=user_id,
        kind=ATTACHMENT,
        topic_id=view.topic.id,
        filename=filename[:255],
        length=length,
        received=0,
        parts=[],
        file_id=None,
        created_at=now,
        expires_at=now + lifetime,
    )
    repository.add(session, row)
    await repository.flush(session)
    return _state(row)


async def upload_state(
    session: AsyncSession, user_id: int, upload_id: str, now: datetime
) -> UploadState:
    return _state(await _live_upload(session, user_id, upload_id, now))


async def append(
    session: AsyncSession,
    storage: ObjectStorage,
    user_id: int,
    upload_id: str,
    *,
    offset: int,
    chunks: AsyncIterator[bytes],
    checksum: Checksum | None,
    limits: Limits,
    now: datetime,
) -> UploadState:
    """Store the bytes of one PATCH sent from `offset`; the upload's offset moves on only when
    they all arrived (and match the checksum). The last byte makes the attachment."""
    row = await _live_upload(session, user_id, upload_id, now)
    if row.file_id is not None or offset != row.received:
        raise OffsetMismatch(row.received)
    part_key = f"uploads/{user_id}/{row.id}/{offset}-{secrets.token_hex(4)}"
    part = _Part(room=row.length - offset, checksum=checksum, is_first=offset == 0)
    try:
        await storage.save(part_key, part.through(chunks))
        part.verify()
    except BaseException:
        await storage.delete(part_key)
        raise
    received = offset + part.size
    parts = [*row.parts, part_key]
    if not await repository.advance_upload(session, row.id, offset, received, parts):
        # Another PATCH from the same offset won the race; this one's bytes are not needed.
        await storage.delete(part_key)
        raise OffsetMismatch(row.received)
    if received < row.length:
        return UploadState(row.id, row.length, received, row.expires_at)
    try:
        file = await _complete(session, storage, row, parts, limits, now)
    except BaseException:
        # The refusal rolls the offset back to before this PATCH: its part goes too.
        await storage.delete(part_key)
        raise
    return UploadState(row.id, row.length, received, row.expires_at, file)


async def terminate(
    session: AsyncSession, storage: ObjectStorage, user_id: int, upload_id: str
) -> None:
    """The tus termination extension: the upload and its bytes so far are gone."""
    row = await repository.owned_upload(session, user_id, upload_id)
    if row is None:
        raise UploadNotFound()
    await _forget(session, storage, [row])


async def delete_expired(
    session: AsyncSession, storage: ObjectStorage, now: datetime, batch: int = 500
) -> int:
    """Forget uploads past their expiry, their partial bytes with them (after the commit)."""
    rows = list(await repository.expired_uploads(session, now, batch))
    await _forget(session, storage, rows)
    return len(rows)


async def forget_uploads_of(session: AsyncSession, storage: ObjectStorage, user_id: int) -> None:
    """Every upload of a learner, with its partial bytes (account deletion)."""
    await _forget(session, storage, list(await repository.uploads_of(session, user_id)))


async def _forget(
    session: AsyncSession, storage: ObjectStorage, rows: Sequence[ResumableUpload]
) -> None:
    keys = [key for row in rows for key in row.parts]
    for row in rows:
        await repository.delete_upload(session, row.id)

    async def remove_parts() -> None:
        for key in keys:
            await storage.delete(key)

    after_commit(session, remove_parts)


async def _live_upload(
    session: AsyncSession, user_id: int, upload_id: str, now: datetime
) -> ResumableUpload:
    row = await repository.owned_upload(session, user_id, upload_id)
    if row is None:
        raise UploadNotFound()
    if row.expires_at <= now and row.file_id is None:
        raise UploadExpired()
    return row


async def _complete(
    session: AsyncSession,
    storage: ObjectStorage,
    row: ResumableUpload,
    parts: list[str],
    limits: Limits,
    now: datetime,
) -> FileView:
    # The quota was checked at creation with this upload's length reserved; it is counted
    # here without it (the upload is what is being stored).
    used = await repository.used_bytes(session, row.user_id)
    assert row.topic_id is not None  # attachments always name their note's topic
    file = await store_attachment(
        session,
        storage,
        row.user_id,
        row.topic_id,
        filename=lambda: row.filename,
        chunks=_joined(storage, parts),
        limits=limits,
        used=used,
        now=now,
    )
    await repository.finish_upload(session, row.id, file.id)

    async def remove_parts() -> None:
        for key in parts:
            await storage.delete(key)

    after_commit(session, remove_parts)
    return file


async def _joined(storage: ObjectStorage, parts: list[str]) -> AsyncIterator[bytes]:
    for key in parts:
        async for chunk in storage.read(key):
            yield chunk


class _Part:
    """Counts one PATCH's bytes against the room left in the upload, hashes them for
    Upload-Checksum, and refuses an unwanted type at the first bytes of the upload rather than
    after the last (the type is decided again, with the image checks, when it completes)."""

    def __init__(self, room: int, checksum: Checksum | None, *, is_first: bool) -> None:
        self.room = room
        self.size = 0
        self.checksum = checksum
        self.digest: Any = hashlib.new(checksum.algorithm) if checksum else None
        self.head = b"" if is_first else None

    async def through(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self.size += len(chunk)
            if self.size > self.room:
                raise InvalidTusRequest(
                    "More bytes than Upload-Length leaves room for.", room=self.room
                )
            if self.digest is not None:
                self.digest.update(chunk)
            if self.head is not None:
                self.head += chunk
                if len(self.head) >= HEAD_BYTES:
                    self._check_type()
            yield chunk
        if self.head:
            self._check_type()

    def _check_type(self) -> None:
        assert self.head is not None
        detected = sniff(self.head[:HEAD_BYTES]).content_type
        if detected not in ATTACHMENT_TYPES:
            raise UnsupportedFileType(detected, list(ATTACHMENT_TYPES))
        self.head = None

    def verify(self) -> None:
        if self.checksum is not None and self.digest.digest() != self.checksum.digest:
            raise ChecksumMismatch()


def _state(row: ResumableUpload) -> UploadState:
    return UploadState(row.id, row.length, row.received, row.expires_at)
