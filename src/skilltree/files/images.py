"""Making smaller images with Pillow: avatar sizes (square) and thumbnails (aspect kept).

Everything here is synchronous and CPU-bound; the task runs it in a worker thread. An image is
decoded only after its header's dimensions pass the pixel cap (a decompression bomb claims
its size honestly in the header, then costs gigabytes when decoded). The output is always a
new WebP built from the pixels alone: EXIF (camera, GPS position), ICC profiles and comments of
the upload do not travel into it, and the EXIF orientation is applied first so a portrait
photo stays upright once the tag that said so is gone.

Pillow is imported by the functions that decode and encode, so it loads in the worker that
makes the first variant, not in every web worker that imports the files service.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

OUTPUT_TYPE = "image/webp"
# Same pixels and settings give the same bytes: making a variant twice stores the same object.
WEBP_QUALITY = 85


class UnreadableImage(Exception):
    """The bytes are not an image Pillow can decode, or claim more pixels than allowed."""


@dataclass(frozen=True)
class Rendered:
    data: bytes
    width: int
    height: int
    content_type: str = OUTPUT_TYPE


def render(
    original: IO[bytes], edges: list[int], *, square: bool, max_pixels: int
) -> list[Rendered]:
    """One copy per edge, each at most that many pixels on its longer side (`square` crops to
    the centre first). The original is read from its file as Pillow decodes it (the header
    first, the pixels only once the header passed the cap), and decoded once, however many
    copies are made."""
    upright = _decode_upright(original, max(edges), max_pixels)
    return [_encode(_resized(upright, edge, square=square)) for edge in edges]


def _decode_upright(original: IO[bytes], largest_edge: int, max_pixels: int) -> Image.Image:
    from PIL import Image, ImageOps

    try:
        with Image.open(original) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise UnreadableImage(f"{width}x{height} is more than {max_pixels} pixels")
            if image.format == "JPEG":
                # Decode at a reduced scale when the JPEG allows it: less memory, same result.
                image.draft("RGB", (largest_edge, largest_edge))
            upright = ImageOps.exif_transpose(image)
            return upright.convert("RGBA" if _has_alpha(upright) else "RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise UnreadableImage(str(error)) from error


def _resized(image: Image.Image, edge: int, *, square: bool) -> Image.Image:
    from PIL import Image, ImageOps

    if square:
        return ImageOps.fit(image, (edge, edge), Image.Resampling.LANCZOS)
    smaller = image.copy()
    smaller.thumbnail((edge, edge), Image.Resampling.LANCZOS)
    return smaller


def _encode(pixels: Image.Image) -> Rendered:
    from PIL import Image

    # A fresh image from the pixels alone: no `info` (EXIF, ICC, XMP, comments) is carried over.
    clean = Image.frombytes(pixels.mode, pixels.size, pixels.tobytes())
    out = io.BytesIO()
    clean.save(out, format="WEBP", quality=WEBP_QUALITY, method=4)
    return Rendered(out.getvalue(), clean.width, clean.height)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
