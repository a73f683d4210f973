"""Resumable uploads (tus 1.0.0) driven by a real tus client (tuspy) against the service on a
loopback port, on local disk and on an S3-compatible server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError

from skilltree.files import resumable, service
from skilltree.files.storage import S3Location, storage_for
from skilltree.files.tasks import delete_expired_uploads
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import FilesSettings, Settings
from skilltree.platform.queue.tasks import Job
from tests.files.conftest import ATTACHMENTS, KIB, People, make_image_variants, png
from tests.files.s3server import ACCESS_KEY, SECRET_KEY
from tests.files.test_s3_storage import _bucket_keys, s3_endpoint, s3_location
from tests.search.conftest import PUBLIC_ROADMAP, import_roadmap
from tests.support.accounts import Browser, bearer_headers, user_id
from tests.support.processes import free_port

__all__ = ["s3_endpoint", "s3_location"]  # fixtures shared with the storage tests

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = 64 * KIB
# The server runs in the test's own loop beside S3 calls; a busy machine slows both.
LOADED_MACHINE_TIMEOUT = 30.0


@pytest.fixture(params=["local", "s3"])
def storage_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(
    settings: Settings, storage_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Settings:
    limits = {
        "attachment_max_bytes": 512 * KIB,
        "quota_bytes": 800 * KIB,
        "upload_expiry_seconds": 60,  # shorter than an access token lives
    }
    if storage_kind == "local":
        files = FilesSettings(storage_dir=tmp_path / "files", **limits)
    else:
        location: S3Location = request.getfixturevalue("s3_location")
        files = FilesSettings(
            storage="s3",
            s3_bucket=location.bucket,
            s3_endpoint_url=location.endpoint_url or "",
            s3_access_key_id=ACCESS_KEY,
            s3_secret_access_key=SECRET_KEY,  # type: ignore[arg-type]
            **limits,
        )
    return settings.model_copy(update={"files": files})


async def stored_keys(settings: Settings, request: pytest.FixtureRequest) -> list[str]:
    """Every object in the storage the test runs on (attachments and partial uploads)."""
    if settings.files.storage == "s3":
        return sorted(await _bucket_keys(request.getfixturevalue("s3_location")))
    root = settings.files.storage_dir
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[str]:
    """The test's app served by uvicorn on a loopback port, in the test's own event loop (the
    tus client runs in a thread beside it)."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    running = uvicorn.Server(config)
    task = asyncio.create_task(running.serve())
    while not running.started:  # noqa: ASYNC110  (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    await task


@pytest.fixture
async def ada(people: People) -> Browser:
    learner = await people("Ada")
    await import_roadmap(learner, PUBLIC_ROADMAP)
    return learner


@pytest.fixture
async def tus_client(server: str, ada: Browser) -> TusClient:
    return TusClient(f"{server}/v1/me/uploads", headers=await bearer_headers(ada))


def metadata(filename: str = "notes.txt") -> dict[str, str]:
    return {"roadmap": "web", "topic": "retries", "filename": filename}


def words(size: int) -> bytes:
    """Plain text of `size` bytes that differs everywhere (so a misplaced chunk would show)."""
    text = b"".join(b"line %07d of the notes\n" % n for n in range(size // 20 + 1))
    return text[:size]


async def attachment_bytes(learner: Browser) -> list[bytes]:
    items = (await learner.client.get(ATTACHMENTS)).json()["items"]
    return [(await learner.client.get(item["download_url"])).content for item in items]


async def test_a_file_uploaded_in_chunks_becomes_the_notes_attachment(
    tus_client: TusClient, ada: Browser, settings: Settings, request: pytest.FixtureRequest
) -> None:
    data = words(300 * KIB)
    uploader = tus_client.uploader(
        file_stream=_stream(data), chunk_size=CHUNK, metadata=metadata(), upload_checksum=True
    )

    await asyncio.to_thread(uploader.upload)

    assert [hashlib.sha256(got).hexdigest() for got in await attachment_bytes(ada)] == [
        hashlib.sha256(data).hexdigest()
    ]
    [item] = (await ada.client.get(ATTACHMENTS)).json()["items"]
    assert (item["filename"], item["content_type"]) == ("notes.txt", "text/plain")
    # The parts are gone once joined: only the attachment is stored.
    [key] = await stored_keys(settings, request)
    assert key.startswith("attachments/")


async def test_an_interrupted_upload_resumes_from_heads_offset_with_the_same_bytes(
    tus_client: TusClient, ada: Browser, server: str
) -> None:
    data = words(200 * KIB)
    first = tus_client.uploader(file_stream=_stream(data), chunk_size=CHUNK, metadata=metadata())
    await asyncio.to_thread(first.upload, 2 * CHUNK)  # the client stops after two chunks
    assert first.url is not None
    # A PATCH cut off midway keeps none of its bytes: the offset stays where it was.
    assert await _broken_patch(first.url, tus_client.headers, 2 * CHUNK, data) == 2 * CHUNK

    # Constructed with a URL, the uploader asks HEAD for the offset (blocking: in a thread).
    again = await asyncio.to_thread(
        tus_client.uploader, file_stream=_stream(data), url=first.url, chunk_size=CHUNK
    )
    assert again.offset == 2 * CHUNK  # asked by HEAD
    await asyncio.to_thread(again.upload)

    [stored] = await attachment_bytes(ada)
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()


async def test_termination_deletes_the_upload_and_its_bytes(
    tus_client: TusClient, settings: Settings, request: pytest.FixtureRequest
) -> None:
    uploader = tus_client.uploader(
        file_stream=_stream(words(100 * KIB)), chunk_size=CHUNK, metadata=metadata()
    )
    await asyncio.to_thread(uploader.upload, CHUNK)
    assert len(await stored_keys(settings, request)) == 1  # one part so far

    async with httpx.AsyncClient(
        timeout=LOADED_MACHINE_TIMEOUT, headers=tus_client.headers | TUS
    ) as http:
        terminated = await http.delete(uploader.url)
        after = await http.head(uploader.url)

    assert terminated.status_code == 204
    assert after.status_code == 404
    assert await stored_keys(settings, request) == []


async def test_an_expired_upload_is_gone_and_the_clean_up_deletes_its_bytes(
    tus_client: TusClient,
    app: FastAPI,
    clock: FrozenClock,
    settings: Settings,
    request: pytest.FixtureRequest,
) -> None:
    uploader = tus_client.uploader(
        file_stream=_stream(words(100 * KIB)), chunk_size=CHUNK, metadata=metadata()
    )
    await asyncio.to_thread(uploader.upload, CHUNK)
    async with httpx.AsyncClient(
        timeout=LOADED_MACHINE_TIMEOUT, headers=tus_client.headers | TUS
    ) as http:
        assert "Upload-Expires" in (await http.head(uploader.url)).headers
        clock.advance(seconds=settings.files.upload_expiry_seconds + 1)
        expired = await http.head(uploader.url)
        job = Job(resources=app.state.resources, task_id="t", attempt=1, max_attempts=1)
        await delete_expired_uploads(job, {})
        forgotten = await http.head(uploader.url)

    assert expired.status_code == 410
    assert forgotten.status_code == 404
    assert await stored_keys(settings, request) == []


async def test_another_learners_upload_is_not_found(
    tus_client: TusClient, people: People, server: str
) -> None:
    uploader = tus_client.uploader(
        file_stream=_stream(words(100 * KIB)), chunk_size=CHUNK, metadata=metadata()
    )
    await asyncio.to_thread(uploader.upload, CHUNK)
    bob = await bearer_headers(await people("Bob"))

    async with httpx.AsyncClient(timeout=LOADED_MACHINE_TIMEOUT, headers=bob | TUS) as http:
        head = await http.head(uploader.url)
        patch = await http.patch(uploader.url, content=b"x", headers=_chunk_headers(CHUNK))
        delete = await http.delete(uploader.url)

    assert (head.status_code, patch.status_code, delete.status_code) == (404, 404, 404)
    assert patch.json()["type"].endswith("/upload-not-found")
    resumed = await asyncio.to_thread(
        tus_client.uploader, file_stream=_stream(words(100 * KIB)), url=uploader.url
    )
    assert resumed.offset == CHUNK  # nothing Bob sent was kept


async def test_bytes_sent_from_another_offset_are_a_409(tus_client: TusClient) -> None:
    uploader = tus_client.uploader(
        file_stream=_stream(words(100 * KIB)), chunk_size=CHUNK, metadata=metadata()
    )
    await asyncio.to_thread(uploader.upload, CHUNK)

    async with httpx.AsyncClient(
        timeout=LOADED_MACHINE_TIMEOUT, headers=tus_client.headers | TUS
    ) as http:
        behind = await http.patch(uploader.url, content=b"a", headers=_chunk_headers(0))
        ahead = await http.patch(uploader.url, content=b"a", headers=_chunk_headers(CHUNK + 5))

    assert behind.status_code == ahead.status_code == 409
    assert behind.json()["offset"] == CHUNK
    assert behind.headers["tus-resumable"] == "1.0.0"


async def test_a_wrong_checksum_keeps_nothing_of_the_patch(tus_client: TusClient) -> None:
    uploader = tus_client.uploader(
        file_stream=_stream(words(100 * KIB)), chunk_size=CHUNK, metadata=metadata()
    )
    await asyncio.to_thread(uploader.upload, CHUNK)
    wrong = "sha256 " + base64.b64encode(hashlib.sha256(b"other").digest()).decode()

    async with httpx.AsyncClient(
        timeout=LOADED_MACHINE_TIMEOUT, headers=tus_client.headers | TUS
    ) as http:
        refused = await http.patch(
            uploader.url,
            content=b"more words",
            headers=_chunk_headers(CHUNK) | {"Upload-Checksum": wrong},
        )
        offset = (await http.head(uploader.url)).headers["upload-offset"]

    assert refused.status_code == 460
    assert offset == str(CHUNK)


async def test_limits_are_checked_at_creation_and_the_type_at_the_first_bytes(
    tus_client: TusClient, server: str, settings: Settings, request: pytest.FixtureRequest
) -> None:
    async with httpx.AsyncClient(
        timeout=LOADED_MACHINE_TIMEOUT, headers=tus_client.headers | TUS
    ) as http:
        too_large = await _create(http, server, 600 * KIB)
        first = await _create(http, server, 500 * KIB)
        beyond_quota = await _create(http, server, 400 * KIB)  # 500 KiB are reserved
        no_version = await http.post(
            f"{server}/v1/me/uploads", headers={"Tus-Resumable": "0.2.2", "Upload-Length": "9"}
        )
        program = await http.patch(
            f"{server}{first.headers['location']}",
            content=b"MZ\x90\x00" + bytes(CHUNK),
            headers=_chunk_headers(0),
        )
        options = await http.options(f"{server}/v1/me/uploads")

    assert too_large.status_code == 413
    assert first.status_code == 201
    assert beyond_quota.status_code == 507
    assert no_version.status_code == 412
    assert no_version.headers["tus-version"] == "1.0.0"
    assert program.status_code == 415
    assert await stored_keys(settings, request) == []
    assert options.status_code == 204
    assert set(options.headers["tus-extension"].split(",")) >= {
        "creation",
        "termination",
        "expiration",
        "checksum",
    }


async def test_an_upload_needs_a_note_it_can_see(tus_client: TusClient, server: str) -> None:
    async with httpx.AsyncClient(
        timeout=LOADED_MACHINE_TIMEOUT, headers=tus_client.headers | TUS
    ) as http:
        unnamed = await http.post(f"{server}/v1/me/uploads", headers={"Upload-Length": "10"})
        unknown = await _create(http, server, 10, topic="no-such-topic")

    assert unnamed.status_code == 400
    assert unknown.status_code == 404


def test_tuspy_reports_an_unknown_server_as_a_communication_error() -> None:
    client = TusClient(f"http://127.0.0.1:{free_port()}/v1/me/uploads")
    with pytest.raises(TusCommunicationError):
        client.uploader(file_stream=_stream(b"abc"), metadata=metadata()).upload()


def _stream(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


def _chunk_headers(offset: int) -> dict[str, str]:
    return {"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}


async def _create(
    http: httpx.AsyncClient, server: str, length: int, topic: str = "retries"
) -> httpx.Response:
    encoded = {
        key: base64.b64encode(value.encode()).decode()
        for key, value in (metadata() | {"topic": topic}).items()
    }
    return await http.post(
        f"{server}/v1/me/uploads",
        headers={
            "Upload-Length": str(length),
            "Upload-Metadata": ",".join(f"{key} {value}" for key, value in encoded.items()),
        },
    )


async def _broken_patch(url: str, headers: dict[str, str], offset: int, data: bytes) -> int:
    """Send part of a PATCH and drop the connection; return the offset HEAD reports after."""

    async def body() -> AsyncIterator[bytes]:
        yield data[offset : offset + 1000]
        raise ConnectionResetError("the network went away")

    async with httpx.AsyncClient(timeout=LOADED_MACHINE_TIMEOUT, headers=headers | TUS) as http:
        with pytest.raises(ConnectionResetError):
            await http.patch(url, content=body(), headers=_chunk_headers(offset))
        await asyncio.sleep(0.2)  # the server notices the client is gone
        return int((await http.head(url)).headers["upload-offset"])


async def test_deleting_a_users_files_removes_their_attachments_and_partial_uploads(
    tus_client: TusClient,
    ada: Browser,
    app: FastAPI,
    settings: Settings,
    request: pytest.FixtureRequest,
) -> None:
    """What deleting an account will call: its rows would cascade, its objects would stay."""
    finished = tus_client.uploader(file_stream=_stream(words(10 * KIB)), metadata=metadata())
    await asyncio.to_thread(finished.upload)
    partial = tus_client.uploader(
        file_stream=_stream(words(100 * KIB)), chunk_size=CHUNK, metadata=metadata()
    )
    await asyncio.to_thread(partial.upload, CHUNK)
    assert len(await stored_keys(settings, request)) == 2  # an attachment and a part
    user = await user_id(ada)
    storage = storage_for(settings.files)

    async with app.state.resources.database.unit_of_work() as session:
        assert await service.delete_files_of(session, storage, user) == 1
        await resumable.forget_uploads_of(session, storage, user)

    assert await stored_keys(settings, request) == []
    assert (await ada.client.get(ATTACHMENTS)).json()["items"] == []


async def test_an_image_uploaded_resumably_gets_its_thumbnail(
    tus_client: TusClient, ada: Browser, app: FastAPI
) -> None:
    uploader = tus_client.uploader(
        file_stream=_stream(png(400, 200)), chunk_size=CHUNK, metadata=metadata("plan.png")
    )
    await asyncio.to_thread(uploader.upload)

    assert await make_image_variants(app) == 1

    [item] = (await ada.client.get(ATTACHMENTS)).json()["items"]
    thumbnail = await ada.client.get(item["thumbnail_url"])
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "image/webp"
