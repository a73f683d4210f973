"""Files fixtures: storage in the test's own directory, small limits, a learner with a roadmap."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from sqlalchemy import select

from skilltree.platform.config import FilesSettings, Settings
from skilltree.platform.queue.models import OutboxMessage
from skilltree.platform.queue.tasks import Job
from skilltree.platform.state import Resources
from tests.search.conftest import PUBLIC_ROADMAP, import_roadmap
from tests.support.accounts import Browser

People = Callable[[str], Awaitable[Browser]]
KIB = 1024
ATTACHMENTS = "/v1/me/progress/web/retries/note/attachments"


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    return tmp_path / "files"


@pytest.fixture
def settings(settings: Settings, storage_dir: Path) -> Settings:
    files = FilesSettings(
        storage_dir=storage_dir, attachment_max_bytes=256 * KIB, quota_bytes=400 * KIB
    )
    return settings.model_copy(update={"files": files})


@pytest.fixture
async def ada(people: People) -> Browser:
    learner = await people("Ada")
    await import_roadmap(learner, PUBLIC_ROADMAP)
    return learner


def png(width: int = 8, height: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims other dimensions (a decompression bomb's lie)."""
    data = bytearray(png())
    # IHDR: length(4) "IHDR"(4) width(4) height(4) ... at offset 8; CRC after 13 data bytes.
    struct.pack_into(">II", data, 16, width, height)
    crc = zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF
    struct.pack_into(">I", data, 29, crc)
    return bytes(data)


def stored_objects(storage_dir: Path) -> list[Path]:
    return [path for path in storage_dir.rglob("*") if path.is_file()]


async def upload(
    learner: Browser,
    content: bytes,
    filename: str = "diagram.png",
    client_type: str = "image/png",
    url: str = ATTACHMENTS,
) -> httpx.Response:
    return await learner.client.post(
        url, files={"file": (filename, content, client_type)}, headers=learner.write_headers
    )


AVATAR = "/v1/me/avatar"


async def put_avatar(
    learner: Browser, content: bytes, client_type: str = "image/png"
) -> httpx.Response:
    return await learner.client.put(
        AVATAR, files={"file": ("me.png", content, client_type)}, headers=learner.write_headers
    )


async def make_image_variants(app: FastAPI) -> int:
    """Runs every queued `files.image-variants` task, as the worker would; how many ran."""
    return await run_image_variants(app.state.resources)


async def run_image_variants(resources: Resources) -> int:
    from skilltree.files.service import VARIANTS_TASK
    from skilltree.files.tasks import make_image_variants as handler

    job = Job(resources=resources, task_id="test", attempt=1, max_attempts=5)
    query = select(OutboxMessage).where(OutboxMessage.task_name == VARIANTS_TASK)
    async with resources.database.unit_of_work() as session:
        payloads = [row.args[0] for row in (await session.scalars(query)).all()]
    for payload in payloads:
        await handler(job, payload)
    return len(payloads)


def jpeg_with_exif(width: int, height: int, orientation: int) -> bytes:
    """A JPEG whose EXIF says where it was taken, with what, and how to turn it upright."""
    image = Image.new("RGB", (width, height), (20, 120, 220))
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "Camera Maker"  # Make
    exif[0x0131] = "secret-editor"  # Software
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()
