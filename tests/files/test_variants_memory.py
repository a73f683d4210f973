"""The image-variants task streams the original from storage: a large image is never read
whole into memory, and the decompression-bomb cap still holds."""

from __future__ import annotations

import io
import random
import tracemalloc
from pathlib import Path

import pytest
from fastapi import FastAPI
from PIL import Image

from skilltree.files.images import UnreadableImage, render
from skilltree.platform.config import FilesSettings, Settings
from tests.files.conftest import ATTACHMENTS, KIB, make_image_variants, png_claiming, upload
from tests.support.accounts import Browser

MIB = 1024 * KIB


@pytest.fixture
def settings(settings: Settings) -> Settings:
    files = settings.files.model_copy(
        update={"attachment_max_bytes": 16 * MIB, "quota_bytes": 32 * MIB}
    )
    assert isinstance(files, FilesSettings)
    return settings.model_copy(update={"files": files})


async def thumbnail_url(learner: Browser) -> str:
    [item] = (await learner.client.get(ATTACHMENTS)).json()["items"]
    return str(item["thumbnail_url"])


def noisy_jpeg(width: int, height: int) -> bytes:
    """A photo-sized JPEG that does not compress away (random pixels)."""
    noise = random.Random(16).randbytes(width * height * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), noise).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


async def test_a_large_image_is_never_held_whole_in_memory(ada: Browser, app: FastAPI) -> None:
    photo = noisy_jpeg(2400, 1600)
    assert len(photo) > 4 * MIB
    assert (await upload(ada, photo, "photo.jpg", "image/jpeg")).status_code == 201

    tracemalloc.start()
    try:
        assert await make_image_variants(app) == 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Reading it whole would take the file's size at once; chunks and a thumbnail take little.
    assert peak < len(photo) / 2, f"peak {peak / MIB:.1f} MiB for a {len(photo) / MIB:.1f} MiB file"
    thumbnail = await ada.client.get(await thumbnail_url(ada))
    assert Image.open(io.BytesIO(thumbnail.content)).size == (256, 171)


def test_the_pixel_cap_is_checked_before_a_streamed_image_is_decoded(tmp_path: Path) -> None:
    original = tmp_path / "original"
    original.write_bytes(png_claiming(8_000, 6_000))

    refused = "8000x6000 is more than 40000000 pixels"
    with original.open("rb") as source, pytest.raises(UnreadableImage, match=refused):
        render(source, [256], square=False, max_pixels=40_000_000)
