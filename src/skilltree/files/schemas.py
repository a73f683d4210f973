"""API models of files."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class FileOut(BaseModel):
    id: int
    filename: str = Field(description="Sanitised; the extension is the stored type's")
    content_type: str = Field(description="Decided from the file's bytes, not the upload's header")
    size: int
    sha256: str
    created_at: datetime
    download_url: str = Field(description="Signed, expiring, usable only by you")
    thumbnail_url: str | None = Field(
        default=None,
        description="An image's thumbnail (WebP, at most 256 px a side), signed like "
        "download_url; null until the background task has made it, and for other files",
    )


class FileListOut(BaseModel):
    items: list[FileOut]


class AvatarOut(BaseModel):
    content_type: str = Field(description="The uploaded image's type, from its bytes")
    size: int
    sha256: str
    created_at: datetime
    sizes: list[int] = Field(
        description="Sizes already made (square WebP, pixels a side); empty right after an "
        "upload: they are made in the background, and until then the avatar route is a 404"
    )
