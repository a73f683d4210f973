"""The rules of files: what may be uploaded, by whom, how much; who may download it.

An upload streams through `_guarded`, which hashes and counts every chunk on its way to
storage and stops the upload the moment it breaks a rule (size per kind, the learner's quota,
the type read from the first bytes): nothing is buffered beyond one chunk and the head used
to recognise the type. An object whose upload fails is deleted; one whose row is deleted is
removed from storage after the commit.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import unicodedata
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.files import repository, signing
from skilltree.files.errors import (
    FileNotFound,
    FileTooLarge,
    ImageTooLarge,
    InvalidDownloadLink,
    QuotaExceeded,
    UnsupportedFileType,
)
from skilltree.files.models import StoredFile
from skilltree.files.sniffing import HEAD_BYTES, IMAGE_TYPES, image_pixels, sniff
from skilltree.files.storage import ObjectStorage
from skilltree.identity import Viewer
from skilltree.platform.db import after_commit
from skilltree.platform.events import Event
from skilltree.progress import service as progress
from skilltree.roadmaps import service as roadmaps

ATTACHMENT = "attachment"
ATTACHMENT_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
)


@dataclass(frozen=True)
class Limits:
    attachment_max_bytes: int
    quota_bytes: int
    image_max_pixels: int


@dataclass(frozen=True)
class FileView:
    id: int
    key: str
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime


async def upload_attachment(
    session: AsyncSession,
    storage: ObjectStorage,
    viewer: Viewer,
    user_id: int,
    roadmap: str,
    topic: str,
    *,
    filename: Callable[[], str],
    chunks: AsyncIterator[bytes],
    limits: Limits,
    now: datetime,
) -> FileView:
    """Store a file attached to the learner's note on the topic. `filename` is asked once the
    stream is read (a multipart part names its file in headers read along with the body)."""
    view = await roadmaps.get_topic(session, roadmap, topic, viewer)
    used = await repository.used_bytes(session, user_id)
    if used >= limits.quota_bytes:
        raise QuotaExceeded(limits.quota_bytes, used)
    return await store_attachment(
        session,
        storage,
        user_id,
        view.topic.id,
        filename=filename,
        chunks=chunks,
        limits=limits,
        used=used,
        now=now,
    )


async def store_attachment(
    session: AsyncSession,
    storage: ObjectStorage,
    user_id: int,
    topic_id: int,
    *,
    filename: Callable[[], str],
    chunks: AsyncIterator[bytes],
    limits: Limits,
    used: int,
    now: datetime,
) -> FileView:
    """Stream `chunks` into a new object under every rule of an attachment (size, quota, type
    from the bytes, image dimensions) and record it; nothing is left in storage if one breaks."""
    key = f"attachments/{user_id}/{secrets.token_hex(16)}"
    guard = _Guard(limits.attachment_max_bytes, limits.quota_bytes, used)
    try:
        await storage.save(key, guard.through(chunks))
        if guard.content_type in IMAGE_TYPES:
            pixels = image_pixels(guard.head)
            if pixels is None or pixels > limits.image_max_pixels:
                raise ImageTooLarge(limits.image_max_pixels)
    except BaseException:
        await storage.delete(key)
        raise
    row = StoredFile(
        key=key,
        user_id=user_id,
        kind=ATTACHMENT,
        topic_id=topic_id,
        filename=safe_filename(filename(), guard.content_type),
        content_type=guard.content_type,
        size=guard.size,
        sha256=guard.sha256.hexdigest(),
        created_at=now,
    )
    repository.add(session, row)
    await repository.flush(session)
    return _view(row)


class _Guard:
    def __init__(self, max_bytes: int, quota: int, used: int) -> None:
        self.max_bytes = max_bytes
        self.quota = quota
        self.used = used
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.head = b""
        self.content_type = ""

    async def through(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        pending = b""  # held back only until the type is known
        async for chunk in chunks:
            self._count(chunk)
            if not self.content_type:
                pending += chunk
                if len(pending) < HEAD_BYTES:
                    continue
                self._recognise(pending)
                chunk, pending = pending, b""
            yield chunk
        if not self.content_type:
            self._recognise(pending)
            if pending:
                yield pending
        if self.size == 0:
            raise UnsupportedFileType(None, list(ATTACHMENT_TYPES))

    def _count(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.sha256.update(chunk)
        if self.size > self.max_bytes:
            raise FileTooLarge(self.max_bytes)
        if self.used + self.size > self.quota:
            raise QuotaExceeded(self.quota, self.used)

    def _recognise(self, head: bytes) -> None:
        self.head = head[:HEAD_BYTES] if len(head) > HEAD_BYTES else head
        detected = sniff(self.head).content_type
        if detected not in ATTACHMENT_TYPES:
            raise UnsupportedFileType(detected, list(ATTACHMENT_TYPES))
        self.content_type = detected
        if detected in IMAGE_TYPES:
            # Image headers sit in the first bytes; keep a larger head for the bomb check.
            self.head = head[: 64 * 1024]


async def list_attachments(
    session: AsyncSession, viewer: Viewer, user_id: int, roadmap: str, topic: str
) -> list[FileView]:
    view = await roadmaps.get_topic(session, roadmap, topic, viewer)
    return [_view(row) for row in await repository.attachments(session, user_id, view.topic.id)]


async def delete_attachment(
    session: AsyncSession,
    storage: ObjectStorage,
    viewer: Viewer,
    user_id: int,
    roadmap: str,
    topic: str,
    file_id: int,
) -> None:
    view = await roadmaps.get_topic(session, roadmap, topic, viewer)
    row = await repository.owned(session, user_id, file_id)
    if row is None or row.topic_id != view.topic.id:
        raise FileNotFound()
    await _delete(session, storage, [row])


async def on_note_changed(session: AsyncSession, storage: ObjectStorage, event: Event) -> None:
    """A deleted note takes its attachments with it (bytes included)."""
    user_id, topic_id = int(event.data["user_id"]), int(event.data["topic_id"])
    if await progress.note_text(session, user_id, topic_id) is not None:
        return
    await _delete(session, storage, list(await repository.attachments(session, user_id, topic_id)))


async def delete_files_of(session: AsyncSession, storage: ObjectStorage, user_id: int) -> int:
    """Every stored file of a user, bytes included after the commit: for deleting an account,
    whose rows would cascade but whose objects would stay in storage. Returns how many."""
    rows = list(await repository.files_of(session, user_id))
    await _delete(session, storage, rows)
    return len(rows)


async def _delete(session: AsyncSession, storage: ObjectStorage, rows: list[StoredFile]) -> None:
    keys = [row.key for row in rows]
    await repository.delete_rows(session, [row.id for row in rows])

    async def remove_objects() -> None:
        # After the commit: a rolled-back deletion must still find its bytes.
        for key in keys:
            await storage.delete(key)

    after_commit(session, remove_objects)


def download_url(secret: SecretStr, file: FileView, user_id: int, ttl_seconds: int) -> str:
    expires = int(time.time()) + ttl_seconds
    signature = signing.sign(secret, file.key, expires, user_id)
    return f"/v1/files/{file.key}?expires={expires}&signature={signature}"


async def open_download(
    session: AsyncSession,
    secret: SecretStr,
    key: str,
    expires: int,
    signature: str,
    user_id: int | None,
) -> FileView:
    """The file a signed link points at, if the link is intact, unexpired and the caller's."""
    if user_id is None or not signing.verify(secret, key, expires, user_id, signature, time.time()):
        raise InvalidDownloadLink()
    row = await repository.by_key(session, key)
    if row is None or row.user_id != user_id:
        raise FileNotFound()
    return _view(row)


_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}


def safe_filename(name: str, content_type: str) -> str:
    """A display name that is safe in a header and on any disk: no path, no control or quote
    characters, at most 100 characters, and the extension of the type actually stored."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFKC", base)
    stem = base.rsplit(".", 1)[0] if "." in base else base
    stem = "".join(ch for ch in stem if ch.isprintable() and ch not in "\"'`;")
    stem = stem.strip(" .")[:100] or "file"
    return stem + EXTENSIONS.get(content_type, "")


def ascii_filename(name: str) -> str:
    """The name for the plain `filename=` parameter: ASCII, no quotes."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _UNSAFE.sub("_", folded).strip() or "file"


def _view(row: StoredFile) -> FileView:
    return FileView(
        row.id, row.key, row.filename, row.content_type, row.size, row.sha256, row.created_at
    )
