"""gzip and brotli for large responses, negotiated by Accept-Encoding (RFC 9110 §12.5.3).

Pure ASGI: the whole body of an ordinary response is compressed at once; streaming responses
(more than one body message) and bodies that already carry a Content-Encoding pass through, so
a stream is never buffered. Small bodies are sent as they are: below about a packet, compressing
costs CPU and saves nothing.

A compressed body is a different representation, so it gets a different strong ETag: the coding
is appended inside the quotes ("abc" becomes "abc-br"). Validators that come back in If-Match or
If-None-Match have the suffix removed before the app compares them, and a 304 answers with the
tag the client sent, so conditional requests work whichever coding a client accepts.

The same bytes are often sent again and again (a public tree from the cache, to every browser),
and compressing them costs far more than sending them: brotli takes milliseconds for a 160 kB
tree. So the middleware remembers what it compressed, by coding and a hash of the exact body,
in a bounded least-recently-used map (`SKILLTREE_HTTP_COMPRESSION_MEMO_BYTES`). Keyed by the
body itself, a remembered result only ever answers a response that has those very bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Callable
from typing import Generic, TypeVar

import brotli
from cachetools import LRUCache
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skilltree.platform.http.middleware import HttpMiddleware, first_raw_header

# Preferred first when a client accepts both equally: brotli is smaller for JSON.
CODINGS = ("br", "gzip")
COMPRESSIBLE_TYPES = frozenset(
    {"application/json", "application/yaml", "application/xml", "image/svg+xml", "text/csv"}
)
VALIDATOR_HEADERS = (b"if-none-match", b"if-match")
CODING_SUFFIX = re.compile(r'-(br|gzip)"')
# Distinct Accept-Encoding values (and response content types) whose answer is remembered.
REMEMBERED = 64
GZIP_LEVEL = 6
T = TypeVar("T")
BROTLI_QUALITY = 5  # of 11: most of the gain, a fraction of the CPU of the top levels
# Pages (text/html) are each a learner's own, so nearly every one is compressed afresh, and
# the roadmap page is 400 kB: quality 4 makes it 10 % larger than 5 for 57 % of the CPU
# (docs/decisions/0077-a-learners-page-states-in-the-cache.md).
HTML_BROTLI_QUALITY = 4


def parse_accept_encoding(header: str) -> dict[str, float]:
    """{coding: q} from an Accept-Encoding value; a malformed q counts as 0 (not acceptable)."""
    qualities: dict[str, float] = {}
    for item in header.split(","):
        coding, *parameters = (part.strip() for part in item.split(";"))
        if not coding:
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        qualities[coding.lower()] = quality
    return qualities


def choose_coding(header: str | None) -> str | None:
    """The coding to use, or None for the identity: the highest q wins, brotli on a tie."""
    if not header:
        return None  # no Accept-Encoding: any coding is allowed, but identity is the safe choice
    qualities = parse_accept_encoding(header)
    wildcard = qualities.get("*", 0.0)
    best, best_quality = None, 0.0
    for coding in CODINGS:
        quality = qualities.get(coding, wildcard)
        if quality > best_quality:
            best, best_quality = coding, quality
    # The identity is always acceptable (§12.5.3) but preferred only when the client says so.
    identity = qualities.get("identity", 0.0)
    return best if best is not None and best_quality >= identity else None


class Remembered(Generic[T]):
    """`answer` by header value, remembered: clients send a handful of Accept-Encoding values
    and the app's responses a handful of content types, and parsing one costs more than the
    rest of the request's compression work."""

    def __init__(self, answer: Callable[[str], T]) -> None:
        self._answer = answer
        self._answers: dict[bytes, T] = {}

    def __call__(self, value: bytes) -> T:
        try:
            return self._answers[value]
        except KeyError:
            pass
        answer = self._answer(value.decode("latin-1"))
        if len(self._answers) >= REMEMBERED:
            self._answers.clear()  # whatever clients send, the memo stays small
        self._answers[value] = answer
        return answer


class RememberedCodings:
    """`choose_coding` by Accept-Encoding value, remembered."""

    def __init__(self) -> None:
        self._codings = Remembered(choose_coding)

    def choose(self, accept_encoding: bytes | None) -> str | None:
        return None if accept_encoding is None else self._codings(accept_encoding)


def compress(body: bytes, coding: str, quality: int = BROTLI_QUALITY) -> bytes:
    """`body` in `coding`; `quality` is brotli's (gzip has one level)."""
    if coding == "br":
        compressed: bytes = brotli.compress(body, quality=quality)
        return compressed
    # mtime=0: the same body always compresses to the same bytes (stable ETags, cacheable).
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


def media_type_of(content_type: str) -> str:
    """A Content-Type's media type, without parameters, in lower case."""
    return content_type.split(";")[0].strip().lower()


def brotli_quality(content_type: str) -> int:
    """The brotli quality for a response of this content type."""
    return HTML_BROTLI_QUALITY if media_type_of(content_type) == "text/html" else BROTLI_QUALITY


def is_compressible(content_type: str) -> bool:
    media_type = media_type_of(content_type)
    return (
        media_type.startswith("text/")
        or media_type in COMPRESSIBLE_TYPES
        or media_type.endswith(("+json", "+xml"))
    )


def _with_coding(etag: str, coding: str) -> str:
    return etag[:-1] + f'-{coding}"' if etag.endswith('"') else etag


def strip_codings(validators: str) -> tuple[str, str | None]:
    """An If-Match / If-None-Match value without our coding suffixes, and the coding seen."""
    match = CODING_SUFFIX.search(validators)
    if match is None:
        return validators, None
    return CODING_SUFFIX.sub('"', validators), match.group(1)


def with_coding(etag: str, coding: str) -> str:
    """The ETag of a representation in `coding` ("abc" becomes "abc-br")."""
    return _with_coding(etag, coding)


def _strip_validator_codings(scope: Scope) -> str | None:
    """Remove our coding suffixes from If-Match / If-None-Match; return the coding seen. The
    request's headers are copied only when it sends one of those (most requests do not)."""
    if not any(name in VALIDATOR_HEADERS for name, _ in scope["headers"]):
        return None
    seen: str | None = None
    headers: list[tuple[bytes, bytes]] = []
    for name, value in scope["headers"]:
        if name in VALIDATOR_HEADERS:
            stripped, coding = strip_codings(value.decode("latin-1"))
            if coding is not None:
                seen = coding
                value = stripped.encode("latin-1")
        headers.append((name, value))
    scope["headers"] = headers
    return seen


class CompressionMemo:
    """Compressed bodies by (coding, body digest), bounded by their total size in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self._entries: LRUCache[tuple[str, bytes], bytes] | None = (
            LRUCache(maxsize=max_bytes, getsizeof=len) if max_bytes > 0 else None
        )

    def compress(self, body: bytes, coding: str, quality: int = BROTLI_QUALITY) -> bytes:
        if self._entries is None:
            return compress(body, coding, quality)
        key = (f"{coding}:{quality}", hashlib.blake2b(body, digest_size=16).digest())
        compressed = self._entries.get(key)
        if compressed is None:
            compressed = compress(body, coding, quality)
            # An entry larger than the whole budget is not kept (cachetools refuses it).
            if len(compressed) <= self._entries.maxsize:
                self._entries[key] = compressed
        return compressed


class CompressionMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, minimum_size: int, memo_bytes: int = 0) -> None:
        super().__init__(app)
        self.minimum_size = minimum_size
        self.memo = CompressionMemo(memo_bytes)
        self.codings = RememberedCodings()
        # Content types come from the app's own responses: a handful, remembered.
        self._is_compressible = Remembered(is_compressible)
        self._brotli_quality = Remembered(brotli_quality)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        coding = self.codings.choose(first_raw_header(scope["headers"], b"accept-encoding"))
        validator_coding = _strip_validator_codings(scope)
        start: Message | None = None
        passing_through = False

        async def send_compressed(message: Message) -> None:
            nonlocal start, passing_through
            if passing_through:
                await send(message)
                return
            if message["type"] == "http.response.start":
                start = message
                return
            assert start is not None, "a body before the response start"
            # The response's raw headers, changed as `MutableHeaders` would change them.
            headers = start["headers"] = list(start["headers"])
            raw_etag = first_raw_header(headers, b"etag")
            etag = None if raw_etag is None else raw_etag.decode("latin-1")
            if start["status"] == 304 and validator_coding and etag is not None:
                etag = _with_coding(etag, validator_coding)
                _set(headers, b"etag", etag)
            content_type = first_raw_header(headers, b"content-type") or b""
            compressible = self._is_compressible(content_type)
            if compressible:
                _add_vary(headers, b"Accept-Encoding")
            body = message.get("body", b"")
            if (
                message.get("more_body", False)  # streaming: never buffered
                or coding is None
                or not compressible
                or first_raw_header(headers, b"content-encoding") is not None
                or len(body) < self.minimum_size
            ):
                passing_through = True
                await send(start)
                await send(message)
                return
            compressed = self.memo.compress(body, coding, self._brotli_quality(content_type))
            _set(headers, b"content-encoding", coding)
            _set(headers, b"content-length", str(len(compressed)))
            if etag is not None:
                _set(headers, b"etag", _with_coding(etag, coding))
            passing_through = True
            await send(start)
            await send({"type": "http.response.body", "body": compressed, "more_body": False})

        await self.app(scope, receive, send_compressed)


def _set(headers: list[tuple[bytes, bytes]], name: bytes, value: str) -> None:
    """Set `name` as `MutableHeaders.__setitem__` does: the first one replaced in place, any
    other removed, appended when there is none."""
    at = [index for index, (key, _) in enumerate(headers) if key == name]
    item = (name, value.encode("latin-1"))
    if not at:
        headers.append(item)
        return
    headers[at[0]] = item
    for index in reversed(at[1:]):
        del headers[index]


def _add_vary(headers: list[tuple[bytes, bytes]], token: bytes) -> None:
    """`MutableHeaders.add_vary_header`: every `vary` value and `token` joined into the first."""
    values = [value for key, value in headers if key == b"vary"]
    _set(headers, b"vary", b", ".join([*values, token]).decode("latin-1"))
