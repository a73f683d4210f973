"""The rules of files: what may be uploaded, by whom, how much; who may download it.

An upload streams through `_Guard`, which hashes and counts every chunk on its way to
storage and stops the upload the moment it breaks a rule (size per kind, the learner's quota,
the type read from the first bytes): nothing is buffered beyond one chunk and the head used
to recognise the type. An object whose upload fails is deleted; one whose row is deleted is
removed from storage after the commit.

An image (an avatar, an image attachment) gets smaller copies — avatar sizes, a thumbnail —
from the `files.image-variants` task, queued in the upload's transaction: Pillow's decoding
never runs inside a request (decision 0052).
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import time
import unicodedata
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

import anyio
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.files import images, repository, signing
from skilltree.files.errors import (
    AvatarNotFound,
    FileNotFound,
    FileTooLarge,
    ImageTooLarge,
    InvalidDownloadLink,
    QuotaExceeded,
    UnsupportedFileType,
)
from skilltree.files.models import ImageVariant, StoredFile
from skilltree.files.sniffing import HEAD_BYTES, IMAGE_TYPES, image_pixels, sniff
from skilltree.files.storage import ObjectStorage
from skilltree.identity import Viewer
from skilltree.platform.db import after_commit
from skilltree.platform.events import Event
from skilltree.platform.queue import outbox
from skilltree.profiles import service as profiles
from skilltree.profiles.avatar_link import ReadyAvatar
from skilltree.progress import service as progress
from skilltree.roadmaps import service as roadmaps

ATTACHMENT = "attachment"
AVATAR = "avatar"
AVATAR_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
VARIANTS_TASK = "files.image-variants"
THUMBNAIL = "thumbnail"
THUMBNAIL_EDGE = 256
AVATAR_SIZES = (64, 128, 256)
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
    avatar_max_bytes: int = 5 * 1024 * 1024


@dataclass(frozen=True)
class FileView:
    id: int
    key: str
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime
    # An image attachment's thumbnail, once the task has made it.
    thumbnail_key: str | None = None


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
    guard = _Guard(limits.attachment_max_bytes, limits.quota_bytes, used, ATTACHMENT_TYPES)
    await _save_checked(storage, key, guard, chunks, limits.image_max_pixels)
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
    await _record(session, row, now)
    return _view(row)


async def _save_checked(
    storage: ObjectStorage,
    key: str,
    guard: _Guard,
    chunks: AsyncIterator[bytes],
    image_max_pixels: int,
) -> None:
    try:
        await storage.save(key, guard.through(chunks))
        if guard.content_type in IMAGE_TYPES:
            pixels = image_pixels(guard.head)
            if pixels is None or pixels > image_max_pixels:
                raise ImageTooLarge(image_max_pixels)
    except BaseException:
        await storage.delete(key)
        raise


async def _record(session: AsyncSession, row: StoredFile, now: datetime) -> None:
    """Add the row; an image also gets its variants queued, in the same transaction."""
    repository.add(session, row)
    await repository.flush(session)
    if row.content_type in IMAGE_TYPES:
        outbox.enqueue(session, VARIANTS_TASK, {"file_id": row.id, "key": row.key}, now=now)


class _Guard:
    def __init__(self, max_bytes: int, quota: int, used: int, allowed: tuple[str, ...]) -> None:
        self.max_bytes = max_bytes
        self.allowed = allowed
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
            raise UnsupportedFileType(None, list(self.allowed))

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
        if detected not in self.allowed:
            raise UnsupportedFileType(detected, list(self.allowed))
        self.content_type = detected
        if detected in IMAGE_TYPES:
            # Image headers sit in the first bytes; keep a larger head for the bomb check.
            self.head = head[: 64 * 1024]


async def list_attachments(
    session: AsyncSession, viewer: Viewer, user_id: int, roadmap: str, topic: str
) -> list[FileView]:
    view = await roadmaps.get_topic(session, roadmap, topic, viewer)
    rows = await repository.attachments(session, user_id, view.topic.id)
    thumbnails = {
        variant.file_id: variant.key
        for variant in await repository.variants_of(session, [row.id for row in rows])
        if variant.name == THUMBNAIL
    }
    return [_view(row, thumbnails.get(row.id)) for row in rows]


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
    """Rows now, bytes after the commit: each file's and each of its variants'."""
    ids = [row.id for row in rows]
    keys = [row.key for row in rows]
    keys += [variant.key for variant in await repository.variants_of(session, ids)]
    await repository.delete_rows(session, ids)

    async def remove_objects() -> None:
        # After the commit: a rolled-back deletion must still find its bytes.
        for key in keys:
            await storage.delete(key)

    after_commit(session, remove_objects)


def download_url(secret: SecretStr, file: FileView, user_id: int, ttl_seconds: int) -> str:
    return signed_url(secret, file.key, user_id, ttl_seconds)


def signed_url(secret: SecretStr, key: str, user_id: int, ttl_seconds: int) -> str:
    """A link to one stored object (a file or a variant of it) for this user alone."""
    expires = int(time.time()) + ttl_seconds
    signature = signing.sign(secret, key, expires, user_id)
    return f"/v1/files/{key}?expires={expires}&signature={signature}"


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
    if row is not None and row.user_id == user_id:
        return _view(row)
    variant = await repository.variant_by_key(session, key)
    original = None if variant is None else await repository.by_id(session, variant.file_id)
    if variant is None or original is None or original.user_id != user_id:
        raise FileNotFound()
    stem = original.filename.rsplit(".", 1)[0]
    name = safe_filename(f"{stem}-{variant.name}", images.OUTPUT_TYPE)
    return FileView(
        original.id,
        variant.key,
        name,
        variant.content_type,
        variant.size,
        variant.sha256,
        variant.created_at,
    )


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


def _view(row: StoredFile, thumbnail_key: str | None = None) -> FileView:
    return FileView(
        row.id,
        row.key,
        row.filename,
        row.content_type,
        row.size,
        row.sha256,
        row.created_at,
        thumbnail_key,
    )


# --- Avatars ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AvatarView:
    file: FileView
    sizes: tuple[int, ...]  # the sizes made so far (none until the task has run)


@dataclass(frozen=True)
class AvatarImage:
    """One size of an avatar, and whether anyone may cache it."""

    key: str
    content_type: str
    size: int
    sha256: str
    public: bool


async def upload_avatar(
    session: AsyncSession,
    storage: ObjectStorage,
    user_id: int,
    *,
    chunks: AsyncIterator[bytes],
    limits: Limits,
    now: datetime,
) -> AvatarView:
    """Store a new avatar (an image, by its bytes) in place of the old one, whose bytes and
    sizes leave storage after the commit. Its sizes are made in the background."""
    previous = list(await repository.files_of_kind(session, user_id, AVATAR))
    # The avatar being replaced does not count against the quota of its replacement.
    used = await repository.used_bytes(session, user_id) - sum(row.size for row in previous)
    if used >= limits.quota_bytes:
        raise QuotaExceeded(limits.quota_bytes, used)
    key = f"avatars/{user_id}/{secrets.token_hex(16)}"
    guard = _Guard(limits.avatar_max_bytes, limits.quota_bytes, used, AVATAR_TYPES)
    await _save_checked(storage, key, guard, chunks, limits.image_max_pixels)
    await _delete(session, storage, previous)
    row = StoredFile(
        key=key,
        user_id=user_id,
        kind=AVATAR,
        topic_id=None,
        filename=safe_filename("avatar", guard.content_type),
        content_type=guard.content_type,
        size=guard.size,
        sha256=guard.sha256.hexdigest(),
        created_at=now,
    )
    await _record(session, row, now)
    return AvatarView(_view(row), ())


async def delete_avatar(session: AsyncSession, storage: ObjectStorage, user_id: int) -> None:
    if not await delete_avatar_of(session, storage, user_id):
        raise AvatarNotFound()


async def delete_avatar_of(session: AsyncSession, storage: ObjectStorage, user_id: int) -> bool:
    """Remove a user's avatar and all its sizes (rows now, bytes after the commit); for the
    avatar route and for deleting an account. False if there was none."""
    rows = list(await repository.files_of_kind(session, user_id, AVATAR))
    await _delete(session, storage, rows)
    return bool(rows)


async def avatar_image(
    session: AsyncSession, handle: str, size: int, viewer_id: int | None
) -> AvatarImage:
    """One size of the avatar behind a handle: for everyone if the profile is public, for its
    owner alone otherwise (to anyone else a private profile is as absent as a missing one)."""
    profile = await profiles.visible_profile(session, handle, viewer_id)
    rows = await repository.files_of_kind(session, profile.user_id, AVATAR)
    found = None if not rows else await repository.variant(session, rows[-1].id, str(size))
    if found is None:
        raise AvatarNotFound()
    return AvatarImage(found.key, found.content_type, found.size, found.sha256, profile.is_public)


async def avatar_version(session: AsyncSession, user_id: int) -> ReadyAvatar | None:
    """A short version of the user's avatar once all its sizes are made (None before, and
    without an avatar): the profile puts it in the avatar's links (profiles.avatar_link)."""
    rows = await repository.files_of_kind(session, user_id, AVATAR)
    if not rows:
        return None
    made = await repository.variants_of(session, [rows[-1].id])
    if len(made) < len(AVATAR_SIZES):
        return None
    return ReadyAvatar(rows[-1].sha256[:16], AVATAR_SIZES)


# --- Variants (the background task's work) ----------------------------------------------------


def variant_key(original_key: str, name: str) -> str:
    """Derived from the original's key, so a variant made twice lands on the same object."""
    return f"variants/{original_key}/{name}"


def variant_names(kind: str) -> list[str]:
    return [str(edge) for edge in AVATAR_SIZES] if kind == AVATAR else [THUMBNAIL]


async def make_variants(
    session: AsyncSession,
    storage: ObjectStorage,
    file_id: int,
    original_key: str,
    *,
    max_pixels: int,
    now: datetime,
) -> int:
    """Make (or make again: same bytes, same keys, same rows) the variants of a stored image.
    Returns how many; 0 if the file was deleted first, whose variants are then removed."""
    row = await repository.by_id(session, file_id)
    if row is None or row.key != original_key:
        # Deleted before (or while) its variants were made: leave no object behind.
        for name in [*variant_names(AVATAR), THUMBNAIL]:
            await storage.delete(variant_key(original_key, name))
        return 0
    names = variant_names(row.kind)
    edges = [THUMBNAIL_EDGE if name == THUMBNAIL else int(name) for name in names]
    # The original goes from storage to a temporary file one chunk at a time, and Pillow reads
    # from that file only what it decodes: a large original is never a bytes in memory.
    async with anyio.TemporaryFile("w+b") as spool:
        async for chunk in storage.read(row.key):
            await spool.write(chunk)
        await spool.seek(0)
        rendered = await anyio.to_thread.run_sync(
            functools.partial(
                images.render,
                spool.wrapped,
                edges,
                square=row.kind == AVATAR,
                max_pixels=max_pixels,
            )
        )
    for name, copy in zip(names, rendered, strict=True):
        await _store_variant(session, storage, row, name, copy, now)
    return len(names)


async def _store_variant(
    session: AsyncSession,
    storage: ObjectStorage,
    row: StoredFile,
    name: str,
    rendered: images.Rendered,
    now: datetime,
) -> None:
    key = variant_key(row.key, name)
    await storage.save(key, _once(rendered.data))
    digest = hashlib.sha256(rendered.data).hexdigest()
    existing = await repository.variant(session, row.id, name)
    variant = existing or ImageVariant(file_id=row.id, name=name, key=key, created_at=now)
    variant.content_type = rendered.content_type
    variant.width, variant.height = rendered.width, rendered.height
    variant.size, variant.sha256 = len(rendered.data), digest
    if existing is None:
        repository.add(session, variant)
    await repository.flush(session)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


# --- Backfill: variants for images stored before (or without) them ----------------------------

BACKFILL_BATCH = 500
_VARIANTS_WANTED = {AVATAR: len(AVATAR_SIZES), ATTACHMENT: 1}


def backfill_message_id(file_id: int) -> str:
    """The outbox id of a file's backfill task: the same on every run, so a second run sees
    the first one's and queues nothing twice."""
    return f"{VARIANTS_TASK}:backfill:{file_id}"


async def images_missing_variants(session: AsyncSession) -> int:
    """How many stored images lack some of their variants (for a progress bar)."""
    return await repository.count_missing_variants(session, sorted(IMAGE_TYPES), _VARIANTS_WANTED)


@dataclass(frozen=True)
class Backfill:
    queued: int  # tasks queued by this run
    already_queued: int  # missing variants, but a previous run queued their task already


async def backfill_variants(
    session: AsyncSession, now: datetime, advance: Callable[[int], None]
) -> Backfill:
    """Queue the variants task for every image (avatar or attachment) missing some of its
    variants, in the caller's transaction; `advance` is told how many images were looked at.
    A file whose backfill task is still in the outbox (or was published and its row not yet
    cleaned up) is not queued again; a task that failed for good is the dead letters' to
    replay (`skilltree dlq replay`)."""
    queued = already = 0
    after_id = 0
    types = sorted(IMAGE_TYPES)
    while batch := await repository.missing_variants_after(
        session, types, _VARIANTS_WANTED, after_id, BACKFILL_BATCH
    ):
        ids = {row.id: backfill_message_id(row.id) for row in batch}
        seen = await repository.queued_message_ids(session, list(ids.values()))
        for row in batch:
            if ids[row.id] in seen:
                already += 1
                continue
            payload = {"file_id": row.id, "key": row.key}
            outbox.enqueue(session, VARIANTS_TASK, payload, now=now, message_id=ids[row.id])
            queued += 1
        after_id = batch[-1].id
        advance(len(batch))
    return Backfill(queued, already)
