"""Image attachments get a thumbnail from the worker, listed as a signed link of its own."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi import FastAPI
from PIL import Image

from tests.files.conftest import (
    ATTACHMENTS,
    People,
    jpeg_with_exif,
    make_image_variants,
    png,
    stored_objects,
    upload,
)
from tests.support.accounts import Browser


async def listed(learner: Browser) -> dict[str, object]:
    response = await learner.client.get(ATTACHMENTS)
    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    return dict(item)


async def test_an_image_attachment_lists_its_thumbnail_once_made(
    ada: Browser, app: FastAPI
) -> None:
    assert (await upload(ada, png(600, 300))).status_code == 201
    assert (await listed(ada))["thumbnail_url"] is None

    await make_image_variants(app)

    url = str((await listed(ada))["thumbnail_url"])
    thumbnail = await ada.client.get(url)
    assert thumbnail.status_code == 200, thumbnail.text
    assert thumbnail.headers["content-type"] == "image/webp"
    assert thumbnail.headers["x-content-type-options"] == "nosniff"
    assert Image.open(io.BytesIO(thumbnail.content)).size == (256, 128)  # the aspect kept


async def test_a_thumbnail_link_is_refused_to_another_learner(
    ada: Browser, app: FastAPI, people: People
) -> None:
    await upload(ada, png(64, 64))
    await make_image_variants(app)
    url = str((await listed(ada))["thumbnail_url"])
    other = await people("Grace")

    assert (await other.client.get(url)).status_code == 403


async def test_a_photo_thumbnail_is_upright_and_has_no_exif(ada: Browser, app: FastAPI) -> None:
    await upload(ada, jpeg_with_exif(90, 60, orientation=6), "photo.jpg", "image/jpeg")
    await make_image_variants(app)

    thumbnail = await ada.client.get(str((await listed(ada))["thumbnail_url"]))

    image = Image.open(io.BytesIO(thumbnail.content))
    assert image.size == (60, 90)  # turned as its EXIF said, not enlarged
    assert image.getexif() == {}
    assert "exif" not in image.info


async def test_other_files_get_no_thumbnail(ada: Browser, app: FastAPI) -> None:
    await upload(ada, b"what I learned\n", "notes.txt", "text/plain")

    assert await make_image_variants(app) == 0
    assert (await listed(ada))["thumbnail_url"] is None


async def test_deleting_an_attachment_deletes_its_thumbnail(
    ada: Browser, app: FastAPI, storage_dir: Path
) -> None:
    created = await upload(ada, png(64, 64))
    await make_image_variants(app)
    assert len(stored_objects(storage_dir)) == 2

    deleted = await ada.client.delete(
        f"{ATTACHMENTS}/{created.json()['id']}", headers=ada.write_headers
    )

    assert deleted.status_code == 204
    assert stored_objects(storage_dir) == []
