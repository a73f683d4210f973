"""gzip and brotli negotiated by Accept-Encoding, with ETags that stay usable, and the same bytes
compressed only once."""

from __future__ import annotations

import gzip
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import brotli
import httpx
import pytest
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from skilltree.platform.http import compression
from skilltree.platform.http.compression import (
    BROTLI_QUALITY,
    CompressionMemo,
    CompressionMiddleware,
    choose_coding,
)
from skilltree.platform.http.compression import compress as compression_compress
from tests.support.accounts import Browser

People = Callable[[str], Awaitable[Browser]]


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        (None, None),
        ("", None),
        ("gzip", "gzip"),
        ("gzip, br", "br"),
        ("br;q=0.5, gzip", "gzip"),
        ("br;q=0, gzip;q=0", None),
        ("*", "br"),
        ("*;q=0.1, br;q=0", "gzip"),
        ("gzip;q=0.5, identity;q=1", None),
        ("gzip;q=oops", None),
        ("deflate, compress", None),
        ("GZIP;Q=0.8", "gzip"),
    ],
)
def test_the_coding_follows_the_q_values(header: str | None, chosen: str | None) -> None:
    assert choose_coding(header) == chosen


@pytest.fixture
async def public_tree(people: People) -> str:
    """A public roadmap whose tree is several kilobytes of JSON."""
    ada = await people("Ada")
    lines = "".join(f"- Topic number {n} about caching and queues\n" for n in range(60))
    response = await ada.client.post(
        "/v1/roadmaps/import",
        content=f"# Big\n\n## Section\n\n{lines}".encode(),
        headers={"content-type": "text/markdown"} | ada.write_headers,
        params={"visibility": "public"},
    )
    assert response.status_code == 201
    return "/v1/roadmaps/big/tree"


@pytest.mark.parametrize(
    ("coding", "decompress"), [("gzip", gzip.decompress), ("br", brotli.decompress)]
)
async def test_large_responses_are_compressed_with_the_accepted_coding(
    client: httpx.AsyncClient,
    public_tree: str,
    coding: str,
    decompress: Callable[[bytes], bytes],
) -> None:
    plain = await client.get(public_tree, headers={"accept-encoding": "identity"})

    # A raw stream, so httpx does not decode the body itself.
    request = client.build_request("GET", public_tree, headers={"accept-encoding": coding})
    response = await client.send(request, stream=True)
    raw = b"".join([chunk async for chunk in response.aiter_raw()])

    assert response.headers["content-encoding"] == coding
    assert "Accept-Encoding" in response.headers["vary"]
    assert int(response.headers["content-length"]) == len(raw) < len(plain.content)
    assert decompress(raw) == plain.content
    assert "content-encoding" not in plain.headers
    assert "Accept-Encoding" in plain.headers["vary"]


async def test_small_responses_are_sent_as_they_are(
    client: httpx.AsyncClient, public_tree: str
) -> None:
    response = await client.get("/v1/roadmaps/big", headers={"accept-encoding": "br"})

    assert len(response.content) < 1024
    assert "content-encoding" not in response.headers


async def test_a_compressed_representation_has_its_own_etag_that_revalidates(
    client: httpx.AsyncClient, public_tree: str
) -> None:
    plain = await client.get(public_tree, headers={"accept-encoding": "identity"})
    compressed = await client.get(public_tree, headers={"accept-encoding": "gzip"})

    revalidated = await client.get(
        public_tree,
        headers={"accept-encoding": "gzip", "if-none-match": compressed.headers["etag"]},
    )

    assert compressed.headers["etag"] == plain.headers["etag"][:-1] + '-gzip"'
    assert revalidated.status_code == 304
    assert revalidated.headers["etag"] == compressed.headers["etag"]


async def test_if_match_accepts_the_etag_of_a_compressed_read(people: People) -> None:
    ada = await people("Ada")
    lines = "".join(f"- Topic number {n} with a long enough title\n" for n in range(60))
    await ada.client.post(
        "/v1/roadmaps/import",
        content=f"# Big\n\n## Section\n\n{lines}".encode(),
        headers={"content-type": "text/markdown"} | ada.write_headers,
    )
    read = await ada.client.get(
        "/v1/roadmaps/big/topics/section", headers={"accept-encoding": "br"}
    )
    assert read.headers["content-encoding"] == "br"

    response = await ada.client.patch(
        "/v1/roadmaps/big/topics/section",
        json={"title": "Renamed"},
        headers={"if-match": read.headers["etag"]} | ada.write_headers,
    )

    assert response.status_code == 200


async def _stream(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"x" * 4096

    return StreamingResponse(chunks(), media_type="text/plain")


async def _already_encoded(request: Request) -> Response:
    return Response(gzip.compress(b"y" * 4096), headers={"content-encoding": "gzip"})


async def test_streaming_and_already_encoded_responses_pass_through() -> None:
    app = CompressionMiddleware(
        Starlette(routes=[Route("/stream", _stream), Route("/encoded", _already_encoded)]),
        minimum_size=100,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        streamed = await client.get("/stream", headers={"accept-encoding": "gzip"})
        encoded = await client.get("/encoded", headers={"accept-encoding": "br"})

    assert "content-encoding" not in streamed.headers
    assert streamed.content == b"x" * 4096 * 3
    assert encoded.headers["content-encoding"] == "gzip"
    assert encoded.content == b"y" * 4096  # httpx decoded the app's own gzip


class CountingCompressor:
    """Stands in for the compression itself, counting the bodies it is asked to compress."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, body: bytes, coding: str, quality: int = BROTLI_QUALITY) -> bytes:
        self.calls += 1
        return compression_compress(body, coding, quality)


@pytest.fixture
def compressor(monkeypatch: pytest.MonkeyPatch) -> CountingCompressor:
    counting = CountingCompressor()
    monkeypatch.setattr(compression, "compress", counting)
    return counting


def _document_app(documents: dict[str, bytes], memo_bytes: int) -> CompressionMiddleware:
    async def document(request: Request) -> Response:
        return Response(documents[request.path_params["name"]], media_type="application/json")

    return CompressionMiddleware(
        Starlette(routes=[Route("/{name}", document)]), minimum_size=100, memo_bytes=memo_bytes
    )


async def test_the_same_bytes_are_compressed_once_and_sent_to_everyone(
    compressor: CountingCompressor,
) -> None:
    tree = b'{"topics": "%s"}' % (b"caching " * 2000)
    app = _document_app({"tree": tree}, memo_bytes=1024 * 1024)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answers = [
            await client.get("/tree", headers={"accept-encoding": coding})
            for coding in ("br", "br", "br", "gzip", "gzip")
        ]

    assert compressor.calls == 2  # once per coding
    assert [answer.headers["content-encoding"] for answer in answers] == ["br"] * 3 + ["gzip"] * 2
    assert all(answer.content == tree for answer in answers)  # httpx decompressed each


async def test_changed_bytes_are_compressed_anew(compressor: CountingCompressor) -> None:
    documents = {"tree": b'{"v": "%s"}' % (b"one " * 500)}
    app = _document_app(documents, memo_bytes=1024 * 1024)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        before = await client.get("/tree", headers={"accept-encoding": "br"})
        documents["tree"] = b'{"v": "%s"}' % (b"two " * 500)
        after = await client.get("/tree", headers={"accept-encoding": "br"})

    assert compressor.calls == 2
    assert before.content != after.content
    assert after.content == documents["tree"]


def test_the_memo_keeps_only_what_fits_its_budget(compressor: CountingCompressor) -> None:
    bodies = [bytes(random.Random(seed).randbytes(3000)) for seed in range(3)]  # incompressible
    memo = CompressionMemo(max_bytes=7000)  # room for two

    for body in [*bodies, bodies[2], bodies[0]]:
        memo.compress(body, "gzip")

    # bodies[0] was the least recently used when bodies[2] arrived, so it was compressed again.
    assert compressor.calls == 4
    assert CompressionMemo(max_bytes=0).compress(bodies[0], "gzip") == gzip.compress(
        bodies[0], compresslevel=compression.GZIP_LEVEL, mtime=0
    )


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-type", b"application/json")],
        [(b"content-type", b"application/json"), (b"vary", b"Cookie")],
        [
            (b"vary", b"Cookie"),
            (b"content-type", b"application/json"),
            (b"etag", b'"a"'),
            (b"vary", b"Origin"),
            (b"content-length", b"3000"),
            (b"etag", b'"b"'),
        ],
        [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"3000")],
        [(b"content-type", b"image/png"), (b"vary", b"Cookie"), (b"etag", b'"a"')],
    ],
)
@pytest.mark.parametrize("accept_encoding", ["gzip", "identity"])
async def test_response_headers_are_changed_as_starlettes_mutable_headers_change_them(
    headers: list[tuple[bytes, bytes]], accept_encoding: str
) -> None:
    """The middleware edits the raw header list; the result is the one `MutableHeaders` gives."""
    body = b"x" * 3000

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.body", "body": body})

    sent: list[Message] = []

    async def keep(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"accept-encoding", accept_encoding.encode())],
    }
    await CompressionMiddleware(app, minimum_size=1024)(scope, _nothing, keep)

    expected = MutableHeaders(raw=list(headers))
    content_type = expected.get("content-type", "")
    if compression.is_compressible(content_type):
        expected.add_vary_header("Accept-Encoding")
        if accept_encoding == "gzip":
            expected["content-encoding"] = "gzip"
            expected["content-length"] = str(len(sent[1]["body"]))
            if "etag" in expected:
                expected["etag"] = compression.with_coding(expected["etag"], "gzip")
    assert sent[0]["headers"] == expected.raw
    assert (sent[1]["body"] == body) == (expected.get("content-encoding") is None)


async def _nothing() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
