"""Avatars: uploaded like any file, typed by their bytes, served in sizes the worker makes."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from PIL import Image
from sqlalchemy import select

from skilltree.files import service
from skilltree.files.models import ImageVariant
from skilltree.files.storage import LocalDiskStorage
from skilltree.platform.config import Settings
from skilltree.platform.queue.retry import PermanentFailure
from tests.files.conftest import (
    AVATAR,
    KIB,
    People,
    jpeg_with_exif,
    make_image_variants,
    png,
    png_claiming,
    put_avatar,
    stored_objects,
    upload,
)
from tests.support.accounts import Browser

AVATAR_OF_ADA = "/v1/users/ada/avatar"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    files = settings.files.model_copy(update={"avatar_max_bytes": 64 * KIB})
    return settings.model_copy(update={"files": files})


async def with_handle(learner: Browser, *, public: bool) -> Browser:
    changed = await learner.client.patch(
        "/v1/me/profile", json={"handle": "ada", "is_public": public}, headers=learner.write_headers
    )
    assert changed.status_code == 200, changed.text
    return learner


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


async def test_an_avatar_is_served_in_each_size_once_the_worker_made_them(
    ada: Browser, app: FastAPI
) -> None:
    await with_handle(ada, public=True)

    put = await put_avatar(ada, png(300, 200))

    assert put.status_code == 200, put.text
    assert put.json()["content_type"] == "image/png"
    assert put.json()["sizes"] == []
    waiting = await ada.client.get(AVATAR_OF_ADA)
    assert waiting.status_code == 404
    assert waiting.json()["type"].endswith("/avatar-not-found")
    await make_image_variants(app)
    for size in (64, 128, 256):
        served = await ada.client.get(AVATAR_OF_ADA, params={"size": size})
        assert served.status_code == 200, served.text
        assert served.headers["content-type"] == "image/webp"
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.headers["cache-control"] == "public, max-age=3600"
        assert opened(served.content).size == (size, size)


async def test_a_public_avatar_is_revalidated_with_its_etag(
    ada: Browser, app: FastAPI, people: People
) -> None:
    await with_handle(ada, public=True)
    await put_avatar(ada, png(100, 100))
    await make_image_variants(app)
    stranger = await people("Grace")
    first = await stranger.client.get(AVATAR_OF_ADA, params={"size": 64})

    again = await stranger.client.get(
        AVATAR_OF_ADA, params={"size": 64}, headers={"if-none-match": first.headers["etag"]}
    )

    assert first.status_code == 200
    assert first.headers["etag"].startswith('"')
    assert not first.headers["etag"].startswith("W/")
    assert again.status_code == 304
    assert again.content == b""


async def test_a_private_profile_shows_its_avatar_to_its_owner_alone(
    ada: Browser, app: FastAPI, people: People
) -> None:
    await with_handle(ada, public=False)
    await put_avatar(ada, png(100, 100))
    await make_image_variants(app)
    stranger = await people("Grace")

    own = await ada.client.get(AVATAR_OF_ADA)
    theirs = await stranger.client.get(AVATAR_OF_ADA)

    assert own.status_code == 200
    assert own.headers["cache-control"] == "private, no-cache"
    assert theirs.status_code == 404
    assert theirs.json()["type"].endswith("/profile-not-found")


async def test_a_size_not_offered_is_refused(ada: Browser) -> None:
    await with_handle(ada, public=True)

    refused = await ada.client.get(AVATAR_OF_ADA, params={"size": 1000})

    assert refused.status_code == 422


@pytest.mark.parametrize(
    ("content", "client_type"),
    [
        (b"<html><script>alert(1)</script></html>", "image/png"),
        (b"%PDF-1.7\n" + b"0" * 100, "image/png"),  # an attachment may be a PDF; an avatar not
        (b"just words", "image/jpeg"),
    ],
)
async def test_an_avatar_that_is_not_an_image_is_415_and_stores_nothing(
    ada: Browser, storage_dir: Path, content: bytes, client_type: str
) -> None:
    refused = await put_avatar(ada, content, client_type)

    assert refused.status_code == 415
    assert refused.json()["type"].endswith("/unsupported-file-type")
    assert stored_objects(storage_dir) == []


async def test_an_avatar_over_the_size_limit_is_413(ada: Browser, storage_dir: Path) -> None:
    refused = await put_avatar(ada, png() + b"\x00" * (70 * KIB))

    assert refused.status_code == 413
    assert stored_objects(storage_dir) == []


async def test_a_decompression_bomb_is_422(ada: Browser, storage_dir: Path) -> None:
    refused = await put_avatar(ada, png_claiming(50_000, 50_000))

    assert refused.status_code == 422
    assert refused.json()["type"].endswith("/image-too-large")
    assert stored_objects(storage_dir) == []


async def test_an_avatar_beyond_the_quota_is_507(ada: Browser) -> None:
    for size in (250, 150):  # 400 KiB: the whole quota
        filled = await upload(ada, b"a" * size * KIB, "notes.txt", "text/plain")
        assert filled.status_code == 201, filled.text

    refused = await put_avatar(ada, png())

    assert refused.status_code == 507
    assert refused.json()["type"].endswith("/storage-quota-exceeded")


async def test_a_new_avatar_replaces_the_old_one_and_its_sizes(
    ada: Browser, app: FastAPI, storage_dir: Path
) -> None:
    await put_avatar(ada, png(100, 100))
    await make_image_variants(app)
    old = {path.relative_to(storage_dir) for path in stored_objects(storage_dir)}

    await put_avatar(ada, png(120, 120))
    await make_image_variants(app)

    now = {path.relative_to(storage_dir) for path in stored_objects(storage_dir)}
    assert len(old) == len(now) == 4  # the original and three sizes
    assert old.isdisjoint(now)


async def test_deleting_the_avatar_deletes_its_sizes(
    ada: Browser, app: FastAPI, storage_dir: Path
) -> None:
    await with_handle(ada, public=True)
    await put_avatar(ada, png(100, 100))
    await make_image_variants(app)

    deleted = await ada.client.delete(AVATAR, headers=ada.write_headers)

    assert deleted.status_code == 204
    assert stored_objects(storage_dir) == []
    assert (await ada.client.get(AVATAR_OF_ADA)).status_code == 404
    again = await ada.client.delete(AVATAR, headers=ada.write_headers)
    assert again.status_code == 404


async def test_making_the_sizes_twice_stores_the_same_objects(
    ada: Browser, app: FastAPI, storage_dir: Path
) -> None:
    await put_avatar(ada, jpeg_with_exif(90, 60, orientation=6))
    await make_image_variants(app)
    first = {path: path.read_bytes() for path in stored_objects(storage_dir)}
    rows = await _variant_rows(app)

    await make_image_variants(app)

    assert {path: path.read_bytes() for path in stored_objects(storage_dir)} == first
    assert await _variant_rows(app) == rows
    assert len(rows) == 3


async def test_sizes_carry_no_metadata_and_stand_upright(
    ada: Browser, app: FastAPI, storage_dir: Path
) -> None:
    await with_handle(ada, public=True)
    # 90 wide, 60 high, but EXIF says "turn 90°": a portrait. A blue bar marks the top.
    photo = Image.new("RGB", (90, 60), (255, 255, 255))
    photo.paste((0, 0, 255), (0, 0, 30, 60))  # left edge: the top once turned clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Camera Maker"
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    await put_avatar(ada, buffer.getvalue())
    await make_image_variants(app)

    served = opened((await ada.client.get(AVATAR_OF_ADA, params={"size": 256})).content)

    assert served.getexif() == {}
    assert "exif" not in served.info
    assert "icc_profile" not in served.info
    top = _rgb(served, 128, 2)
    bottom = _rgb(served, 128, 253)
    assert top[2] > 200
    assert top[0] < 80
    assert bottom[0] > 200


async def test_an_image_that_does_not_decode_fails_for_good(
    ada: Browser, app: FastAPI, storage_dir: Path
) -> None:
    broken = png(64, 64)[:60] + b"\x00" * 200  # a PNG header, then nothing an image is made of
    assert (await put_avatar(ada, broken)).status_code == 200

    with pytest.raises(PermanentFailure):
        await make_image_variants(app)


async def test_sizes_made_after_the_avatar_was_deleted_are_removed(
    ada: Browser, app: FastAPI, storage_dir: Path
) -> None:
    await put_avatar(ada, png(100, 100))
    await ada.client.delete(AVATAR, headers=ada.write_headers)
    # The task was queued before the deletion; it finds no file and leaves no object.
    key = "variants/avatars/1/" + "0" * 32
    storage = LocalDiskStorage(storage_dir)
    await storage.save(f"{key}/64", _once(b"left over"))

    async with app.state.resources.database.unit_of_work() as session:
        made = await service.make_variants(
            session, storage, 10**9, key.removeprefix("variants/"), max_pixels=10, now=_now(app)
        )

    assert made == 0
    assert stored_objects(storage_dir) == []


async def test_delete_avatar_of_removes_a_users_avatar_for_account_deletion(
    ada: Browser, app: FastAPI, storage_dir: Path
) -> None:
    await put_avatar(ada, png(100, 100))
    await make_image_variants(app)
    user_id = (await ada.client.get("/v1/me")).json()["id"]
    storage = LocalDiskStorage(storage_dir)

    async with app.state.resources.database.unit_of_work() as session:
        assert await service.delete_avatar_of(session, storage, user_id) is True

    assert stored_objects(storage_dir) == []


async def _variant_rows(app: FastAPI) -> list[tuple[str, str, int, str]]:
    async with app.state.resources.database.unit_of_work() as session:
        rows = (await session.scalars(select(ImageVariant).order_by(ImageVariant.id))).all()
        return [(row.name, row.key, row.size, row.sha256) for row in rows]


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _now(app: FastAPI) -> datetime:
    now: datetime = app.state.resources.clock.now()
    return now


def _rgb(image: Image.Image, x: int, y: int) -> tuple[int, int, int]:
    red, green, blue = image.convert("RGB").getpixel((x, y))  # type: ignore[misc]
    return int(red), int(green), int(blue)


async def test_the_profile_links_its_avatar_once_the_sizes_are_made(
    ada: Browser, app: FastAPI, people: People
) -> None:
    await with_handle(ada, public=True)
    await put_avatar(ada, png(100, 100))
    assert (await ada.client.get("/v1/me/profile")).json()["avatar"] is None  # not made yet

    await make_image_variants(app)

    avatar = (await ada.client.get("/v1/me/profile")).json()["avatar"]
    assert set(avatar["sizes"]) == {"64", "128", "256"}
    assert avatar["url"] == avatar["sizes"]["128"]
    stranger = await people("Grace")
    for size, url in avatar["sizes"].items():
        served = await stranger.client.get(url)  # a public profile's avatar: anyone, cacheable
        assert served.status_code == 200, served.text
        assert served.headers["cache-control"] == "public, max-age=3600"
        assert opened(served.content).size == (int(size), int(size))


async def test_a_new_avatar_gets_new_links(ada: Browser, app: FastAPI) -> None:
    await with_handle(ada, public=True)
    await put_avatar(ada, png(100, 100))
    await make_image_variants(app)
    before = (await ada.client.get("/v1/me/profile")).json()["avatar"]["url"]

    await put_avatar(ada, png(120, 80))
    await make_image_variants(app)

    after = (await ada.client.get("/v1/me/profile")).json()["avatar"]["url"]
    assert after != before  # a cache holding the old one never answers for the new one
    assert after.startswith("/v1/users/ada/avatar?size=128&v=")


async def test_without_a_handle_the_profile_links_no_avatar(ada: Browser, app: FastAPI) -> None:
    await put_avatar(ada, png(100, 100))
    await make_image_variants(app)

    assert (await ada.client.get("/v1/me/profile")).json()["avatar"] is None


async def test_the_account_page_shows_the_avatar(ada: Browser, app: FastAPI) -> None:
    await with_handle(ada, public=True)
    await put_avatar(ada, png(100, 100))
    await make_image_variants(app)
    avatar = (await ada.client.get("/v1/me/profile")).json()["avatar"]

    page = await ada.client.get("/account")

    assert page.status_code == 200
    html = page.text.replace("&amp;", "&")
    assert f'<img class="avatar" src="{avatar["url"]}"' in html
    assert f'<a href="{avatar["sizes"]["256"]}">' in html
