"""Reading one file part of a multipart/form-data body as a stream of chunks.

python-multipart's push parser is fed the request body as it arrives; the file part's bytes
are handed on chunk by chunk and everything else is dropped, so memory holds one network
chunk at a time however large the upload. Starlette's `request.form()` would instead spool the
whole part to a temporary file before the route sees a byte.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.multipart import MultipartParser, parse_options_header

from skilltree.files.errors import InvalidUpload

FIELD = "file"
MAX_PART_HEADER_BYTES = 4096


@dataclass
class FilePart:
    """The part named `file`: its file name, once its headers have been read."""

    filename: str = ""
    found: bool = False


def boundary_of(content_type: str | None) -> bytes:
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidUpload("Send the file as multipart/form-data in a part named 'file'.")
    return boundary


class _Reader:
    """Parser callbacks: collect the file part's data, note its file name."""

    def __init__(self, part: FilePart) -> None:
        self.part = part
        self.ready: list[bytes] = []
        self.header = b""
        self.value = b""
        self.headers: dict[bytes, bytes] = {}
        self.in_file = False
        self.done = False

    def on_part_begin(self) -> None:
        self.headers = {}
        self.in_file = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header.lower()] = self.value
        self.header, self.value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        if options.get(b"name") == FIELD.encode() and not self.part.found:
            self.part.found = True
            self.part.filename = options.get(b"filename", b"").decode("utf-8", "replace")
            self.in_file = True

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.ready.append(data[start:end])

    def on_part_end(self) -> None:
        self.in_file = False

    def on_end(self) -> None:
        self.done = True


async def file_chunks(
    body: AsyncIterator[bytes], content_type: str | None, part: FilePart
) -> AsyncIterator[bytes]:
    """The bytes of the `file` part, as they arrive; `part.filename` is set before the first."""
    reader = _Reader(part)
    parser = MultipartParser(
        boundary_of(content_type),
        {
            "on_part_begin": reader.on_part_begin,
            "on_part_data": reader.on_part_data,
            "on_part_end": reader.on_part_end,
            "on_header_field": reader.on_header_field,
            "on_header_value": reader.on_header_value,
            "on_header_end": reader.on_header_end,
            "on_headers_finished": reader.on_headers_finished,
            "on_end": reader.on_end,
        },
        max_header_size=MAX_PART_HEADER_BYTES,
    )
    try:
        async for received in body:
            parser.write(received)
            while reader.ready:
                yield reader.ready.pop(0)
        parser.finalize()
    except InvalidUpload:
        raise
    except Exception as error:  # python-multipart raises its own errors on malformed bodies
        if type(error).__module__.startswith("python_multipart"):
            raise InvalidUpload("The multipart body is malformed.") from error
        raise
    while reader.ready:
        yield reader.ready.pop(0)
    if not part.found:
        raise InvalidUpload("The multipart body has no part named 'file'.")
    if not reader.done:
        raise InvalidUpload("The multipart body ended before its closing boundary.")
