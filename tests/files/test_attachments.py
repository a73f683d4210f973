"""Note attachments: streamed in, typed by their bytes, limited, downloaded by signed links."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx
from fastapi import FastAPI

from skilltree.files import signing
from tests.files.conftest import (
    ATTACHMENTS,
    KIB,
    People,
    png,
    png_claiming,
    stored_objects,
    upload,
)
from tests.support.accounts import Browser

ATTACHMENTS_TEMPLATE = "/v1/me/progress/{roadmap}/{topic}/note/attachments"


async def test_an_image_is_stored_under_a_server_key_and_downloaded_by_its_link(
    ada: Browser, storage_dir: Path
) -> None:
    image = png()

    created = await upload(ada, image, filename="My diagram.PNG")

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["content_type"] == "image/png"
    assert body["size"] == len(image)
    assert body["sha256"] == hashlib.sha256(image).hexdigest()
    assert body["filename"] == "My diagram.png"
    [stored] = stored_objects(storage_dir)
    assert stored.read_bytes() == image
    assert "diagram" not in str(stored)  # the key is the server's, not the client's name
    listed = (await ada.client.get(ATTACHMENTS)).json()["items"]
    assert [item["id"] for item in listed] == [body["id"]]
    download = await ada.client.get(listed[0]["download_url"])
    assert download.status_code == 200
    assert download.content == image
    assert download.headers["content-type"] == "image/png"
    assert download.headers["etag"] == f'"{body["sha256"]}"'
    assert download.headers["content-disposition"].startswith('inline; filename="My diagram.png"')
    assert download.headers["x-content-type-options"] == "nosniff"


async def test_downloads_answer_conditional_and_range_requests(ada: Browser) -> None:
    created = (await upload(ada, png())).json()
    url, etag = created["download_url"], f'"{created["sha256"]}"'

    unchanged = await ada.client.get(url, headers={"if-none-match": etag})
    first_ten = await ada.client.get(url, headers={"range": "bytes=0-9"})
    last_four = await ada.client.get(url, headers={"range": "bytes=-4"})
    beyond = await ada.client.get(url, headers={"range": f"bytes={created['size']}-"})

    assert unchanged.status_code == 304
    assert first_ten.status_code == 206
    assert first_ten.content == png()[:10]
    assert first_ten.headers["content-range"] == f"bytes 0-9/{created['size']}"
    assert last_four.content == png()[-4:]
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{created['size']}"


async def test_the_type_comes_from_the_bytes_not_the_name_or_header(
    ada: Browser, storage_dir: Path
) -> None:
    html = b"<html><script>alert(document.cookie)</script></html>"
    executable = b"MZ\x90\x00" + bytes(4000)

    disguised = await upload(ada, html + bytes([0]) * 10, "cat.png", "image/png")
    program = await upload(ada, executable, "notes.txt", "text/plain")
    empty = await upload(ada, b"", "empty.txt", "text/plain")
    text = await upload(ada, b"# My notes\n\nplain words", "../../etc/pass;wd.exe", "x/y")

    for refused in (disguised, program, empty):
        assert refused.status_code == 415, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert text.status_code == 201
    assert text.json()["content_type"] == "text/plain"
    assert text.json()["filename"] == "passwd.txt"
    assert len(stored_objects(storage_dir)) == 1


async def test_a_file_over_the_limit_is_refused_while_streaming_and_leaves_nothing(
    ada: Browser, storage_dir: Path
) -> None:
    too_large = b"words " * (300 * KIB // 6)

    refused = await upload(ada, too_large, "big.txt", "text/plain")

    assert refused.status_code == 413
    assert refused.json()["type"].endswith("/file-too-large")
    assert refused.json()["limit"] == 256 * KIB
    assert stored_objects(storage_dir) == []
    assert (await ada.client.get(ATTACHMENTS)).json()["items"] == []


async def test_the_quota_is_a_507_problem(ada: Browser, storage_dir: Path) -> None:
    chunk = b"notes " * (200 * KIB // 6)

    first = await upload(ada, chunk, "one.txt", "text/plain")
    second = await upload(ada, chunk, "two.txt", "text/plain")
    third = await upload(ada, chunk, "three.txt", "text/plain")

    assert first.status_code == second.status_code == 201
    assert third.status_code == 507
    assert third.json()["type"].endswith("/storage-quota-exceeded")
    assert len(stored_objects(storage_dir)) == 2


async def test_an_image_claiming_too_many_pixels_is_refused(
    ada: Browser, storage_dir: Path
) -> None:
    refused = await upload(ada, png_claiming(50_000, 50_000), "bomb.png")

    assert refused.status_code == 422
    assert refused.json()["type"].endswith("/image-too-large")
    assert stored_objects(storage_dir) == []


async def test_a_link_works_only_for_its_owner_unaltered_and_unexpired(
    ada: Browser, people: People, app: FastAPI, client: httpx.AsyncClient
) -> None:
    bob = await people("Bob")
    created = (await upload(ada, png())).json()
    url = created["download_url"]
    key = url.split("/v1/files/")[1].split("?")[0]
    ada_id = (await ada.client.get("/v1/me")).json()["id"]
    secret = app.state.resources.settings.app.secret_key
    past = int(time.time()) - 1
    expired = f"/v1/files/{key}?expires={past}&signature={signing.sign(secret, key, past, ada_id)}"

    assert (await bob.client.get(url)).status_code == 403
    assert (await client.get(url)).status_code == 403
    assert (await ada.client.get(url[:-2] + "xx")).status_code == 403
    assert (await ada.client.get(expired)).status_code == 403
    assert (await ada.client.get(url)).status_code == 200
    # A signature that is not even ASCII is wrong like any other, not a 500.
    foreign = url.split("&signature=")[0] + "&signature=P%F2%B8%C3%B4-%C3%92"
    assert "&signature=" in url
    assert (await ada.client.get(foreign)).status_code == 403


async def test_deleting_an_attachment_removes_its_bytes(ada: Browser, storage_dir: Path) -> None:
    created = (await upload(ada, png())).json()

    deleted = await ada.client.delete(f"{ATTACHMENTS}/{created['id']}", headers=ada.write_headers)

    assert deleted.status_code == 204
    assert stored_objects(storage_dir) == []
    assert (await ada.client.get(created["download_url"])).status_code == 404


async def test_a_malformed_or_missing_multipart_body_is_a_400(ada: Browser) -> None:
    headers = {**ada.write_headers, "content-type": "multipart/form-data; boundary=xyz"}

    truncated = await ada.client.post(
        ATTACHMENTS, content=b"--xyz\r\nContent-Dispo", headers=headers
    )
    no_file = await ada.client.post(
        ATTACHMENTS,
        data={"title": "no file here"},
        files={"other": ("a.txt", b"x")},
        headers=ada.write_headers,
    )
    raw = await ada.client.post(
        ATTACHMENTS, content=png(), headers={**ada.write_headers, "content-type": "image/png"}
    )

    assert truncated.status_code == 400
    assert no_file.status_code == 400
    assert raw.status_code == 400


async def test_the_document_states_the_upload_is_a_multipart_body_with_a_file(
    app: FastAPI, ada: Browser
) -> None:
    body = app.openapi()["paths"][ATTACHMENTS_TEMPLATE]["post"].get("requestBody")

    without_a_body = await ada.client.post(ATTACHMENTS, headers=ada.write_headers)

    assert without_a_body.status_code == 400
    assert body is not None
    assert body["required"] is True
    assert body["content"]["multipart/form-data"]["schema"]["required"] == ["file"]
