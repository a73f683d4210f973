"""Both storages keep the same contract; S3 against a real S3 API server on loopback."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aioboto3
import httpx
import pytest
from fastapi import FastAPI

from skilltree.files.storage import (
    S3_MIN_PART_BYTES,
    LocalDiskStorage,
    ObjectStorage,
    S3Location,
    S3Storage,
    storage_for,
)
from skilltree.platform.config import FilesSettings, Settings
from tests.files.conftest import (
    ATTACHMENTS,
    AVATAR,
    KIB,
    People,
    make_image_variants,
    png,
    put_avatar,
    upload,
)
from tests.files.s3server import ACCESS_KEY, SECRET_KEY, s3_server
from tests.files.test_cleanup import deliver_note_events
from tests.search.conftest import PUBLIC_ROADMAP, import_roadmap, write_note
from tests.support.accounts import Browser

MIB = 1024 * 1024


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
async def s3_location(s3_endpoint: str) -> S3Location:
    location = S3Location(
        bucket=f"skilltree-{uuid.uuid4().hex[:12]}",
        endpoint_url=s3_endpoint,
        region="us-east-1",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
    )
    async with _client(location) as s3:
        await s3.create_bucket(Bucket=location.bucket)
    return location


def _client(location: S3Location) -> object:
    session = aioboto3.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name="us-east-1"
    )
    return session.client("s3", endpoint_url=location.endpoint_url)


async def _bucket_keys(location: S3Location) -> list[str]:
    async with _client(location) as s3:  # type: ignore[attr-defined]
        listed = await s3.list_objects_v2(Bucket=location.bucket)
        return [item["Key"] for item in listed.get("Contents", [])]


async def _open_multipart_uploads(location: S3Location) -> list[str]:
    async with _client(location) as s3:  # type: ignore[attr-defined]
        listed = await s3.list_multipart_uploads(Bucket=location.bucket)
        return [item["Key"] for item in listed.get("Uploads", [])]


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStorage:
    if request.param == "local":
        return LocalDiskStorage(tmp_path / "objects")
    location: S3Location = request.getfixturevalue("s3_location")
    return S3Storage(location)


async def _chunks(data: bytes, size: int = 64 * KIB) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _read_all(
    storage: ObjectStorage, key: str, start: int = 0, end: int | None = None
) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, start, end)])


async def test_an_object_larger_than_several_parts_reads_back_whole_and_by_range(
    storage: ObjectStorage,
) -> None:
    data = os.urandom(2 * S3_MIN_PART_BYTES + 123)  # three parts on S3

    await storage.save("attachments/1/large", _chunks(data))

    assert await storage.exists("attachments/1/large")
    assert hashlib.sha256(await _read_all(storage, "attachments/1/large")).digest() == (
        hashlib.sha256(data).digest()
    )
    middle = S3_MIN_PART_BYTES - 10
    assert (
        await _read_all(storage, "attachments/1/large", middle, middle + 19)
        == (data[middle : middle + 20])
    )
    assert await _read_all(storage, "attachments/1/large", len(data) - 5) == data[-5:]


async def test_a_small_object_is_stored_and_deleted(storage: ObjectStorage) -> None:
    await storage.save("attachments/1/small", _chunks(b"hello"))

    assert await _read_all(storage, "attachments/1/small") == b"hello"
    await storage.delete("attachments/1/small")
    assert not await storage.exists("attachments/1/small")
    await storage.delete("attachments/1/small")  # deleting twice is harmless


async def test_a_failed_upload_leaves_no_object_behind(storage: ObjectStorage) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(S3_MIN_PART_BYTES + 1)  # one part already sent on S3
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await storage.save("attachments/1/broken", broken())

    assert not await storage.exists("attachments/1/broken")


async def test_a_failed_multipart_upload_is_aborted_on_s3(s3_location: S3Location) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(S3_MIN_PART_BYTES + 1)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await S3Storage(s3_location).save("attachments/1/broken", broken())

    assert await _open_multipart_uploads(s3_location) == []
    assert await _bucket_keys(s3_location) == []


def test_settings_choose_the_storage(tmp_path: Path) -> None:
    assert isinstance(storage_for(FilesSettings(storage_dir=tmp_path)), LocalDiskStorage)
    chosen = storage_for(FilesSettings(storage="s3", s3_bucket="notes"))
    assert isinstance(chosen, S3Storage)
    assert chosen.location.bucket == "notes"


def test_s3_storage_without_a_bucket_is_refused() -> None:
    with pytest.raises(ValueError, match="S3_BUCKET"):
        FilesSettings(storage="s3")


# The service on S3: uploads, signed downloads with ranges, and deletions reach the bucket.


@pytest.fixture
def settings(settings: Settings, s3_location: S3Location) -> Settings:
    files = FilesSettings(
        storage="s3",
        s3_bucket=s3_location.bucket,
        s3_endpoint_url=s3_location.endpoint_url or "",
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=SECRET_KEY,  # type: ignore[arg-type]
        attachment_max_bytes=256 * KIB,
        quota_bytes=400 * KIB,
    )
    return settings.model_copy(update={"files": files})


@pytest.fixture
async def learner(people: People) -> Browser:
    ada = await people("Ada")
    await import_roadmap(ada, PUBLIC_ROADMAP)
    return ada


async def test_an_attachment_on_s3_is_uploaded_downloaded_and_deleted(
    learner: Browser, s3_location: S3Location
) -> None:
    image = png(64, 64)

    created = await upload(learner, image)

    assert created.status_code == 201, created.text
    [key] = await _bucket_keys(s3_location)
    assert key.startswith("attachments/")
    url = created.json()["download_url"]
    whole = await learner.client.get(url)
    assert whole.content == image
    ranged = await learner.client.get(url, headers={"range": "bytes=1-3"})
    assert ranged.status_code == 206
    assert ranged.content == image[1:4]
    deleted = await learner.client.delete(
        f"{ATTACHMENTS}/{created.json()['id']}", headers=learner.write_headers
    )
    assert deleted.status_code == 204
    assert await _bucket_keys(s3_location) == []


async def test_a_refused_upload_leaves_nothing_in_the_bucket(
    learner: Browser, s3_location: S3Location
) -> None:
    refused = await upload(learner, b"\x7fELF" + b"\x00" * 4096, filename="tool")

    assert refused.status_code == 415
    assert await _bucket_keys(s3_location) == []


async def test_deleting_the_note_deletes_its_attachments_from_the_bucket(
    learner: Browser, app: FastAPI, s3_location: S3Location
) -> None:
    await write_note(learner, "web", "retries", "see the diagram")
    assert (await upload(learner, png())).status_code == 201
    await deliver_note_events(app)
    assert len(await _bucket_keys(s3_location)) == 1  # a saved note keeps its files

    await write_note(learner, "web", "retries", "")
    await deliver_note_events(app)

    assert await _bucket_keys(s3_location) == []


async def test_a_download_link_of_s3_is_refused_to_another_learner(
    learner: Browser, people: People
) -> None:
    url = (await upload(learner, png())).json()["download_url"]
    other = await people("Grace")

    refused: httpx.Response = await other.client.get(url)

    assert refused.status_code == 403


def test_the_same_bucket_settings_share_one_storage() -> None:
    first = storage_for(FilesSettings(storage="s3", s3_bucket="notes"))
    again = storage_for(FilesSettings(storage="s3", s3_bucket="notes"))
    other = storage_for(FilesSettings(storage="s3", s3_bucket="avatars"))

    assert first is again
    assert other is not first


# Avatars and thumbnails on S3: the variants land in the bucket, and leave it with their image.


async def test_an_avatar_and_its_sizes_leave_the_bucket_with_it(
    learner: Browser, app: FastAPI, s3_location: S3Location
) -> None:
    assert (await put_avatar(learner, png(100, 100))).status_code == 200
    await make_image_variants(app)
    keys = await _bucket_keys(s3_location)
    assert len(keys) == 4
    assert sorted(key.rsplit("/", 1)[-1] for key in keys if key.startswith("variants/")) == [
        "128",
        "256",
        "64",
    ]

    deleted = await learner.client.delete(AVATAR, headers=learner.write_headers)

    assert deleted.status_code == 204
    assert await _bucket_keys(s3_location) == []


async def test_a_thumbnail_made_twice_is_one_object_and_leaves_with_its_attachment(
    learner: Browser, app: FastAPI, s3_location: S3Location
) -> None:
    created = await upload(learner, png(300, 300))
    await make_image_variants(app)
    first = await _bucket_keys(s3_location)
    await make_image_variants(app)

    assert await _bucket_keys(s3_location) == first
    assert len(first) == 2
    deleted = await learner.client.delete(
        f"{ATTACHMENTS}/{created.json()['id']}", headers=learner.write_headers
    )
    assert deleted.status_code == 204
    assert await _bucket_keys(s3_location) == []
