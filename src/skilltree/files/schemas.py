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


class FileListOut(BaseModel):
    items: list[FileOut]
