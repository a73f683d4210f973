"""What a file is, decided from its first bytes (never from the client's Content-Type or name).

`filetype` reads magic numbers; text has none, so a head that is valid UTF-8 without NUL
bytes counts as plain text (markdown notes, logs, code).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

HEAD_BYTES = 8 * 1024  # enough for every magic number filetype knows, and a text check
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
TEXT = "text/plain"


@dataclass(frozen=True)
class Sniffed:
    content_type: str | None  # None: not recognised


def sniff(head: bytes) -> Sniffed:
    # filetype's tables load with the first upload, not in every worker (decision 0062).
    import filetype  # type: ignore[import-untyped]

    kind = filetype.guess(head)
    if kind is not None:
        return Sniffed(str(kind.mime))
    if head and b"\x00" not in head and _is_utf8_prefix(head):
        return Sniffed(TEXT)
    return Sniffed(None)


def _is_utf8_prefix(head: bytes) -> bool:
    # The head may end inside a multi-byte character: allow up to three bytes cut off.
    for cut in range(4):
        try:
            head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return True
    return False


def image_pixels(head: bytes) -> int | None:
    """Width x height from an image's header, without decoding its pixels (None: unreadable).

    Pillow reads dimensions lazily from the header, which is what a decompression bomb lies
    about: a 40 KB PNG can claim 50,000 x 50,000 pixels.
    """
    # Pillow loads with the first image uploaded, not in every web worker.
    from PIL import Image

    try:
        with Image.open(io.BytesIO(head)) as image:
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        return None
    return int(width) * int(height)
