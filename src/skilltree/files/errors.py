"""Errors of the files domain."""

from __future__ import annotations

from skilltree.platform.errors import DomainError, NotFound, PayloadTooLarge


class FileTooLarge(PayloadTooLarge):
    type_slug = "file-too-large"
    title = "File too large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"A file of this kind holds at most {limit} bytes.", limit=limit)


class QuotaExceeded(DomainError):
    status = 507
    type_slug = "storage-quota-exceeded"
    title = "Storage quota exceeded"

    def __init__(self, quota: int, used: int) -> None:
        super().__init__(
            f"Your files may take {quota} bytes in all; {used} are used. Delete some first.",
            quota=quota,
            used=used,
        )


class UnsupportedFileType(DomainError):
    status = 415
    type_slug = "unsupported-file-type"
    title = "Unsupported file type"

    def __init__(self, detected: str | None, allowed: list[str]) -> None:
        found = detected or "not recognised"
        super().__init__(
            f"The file's content is {found}; accepted: {', '.join(allowed)}.",
            detected=detected,
            allowed=allowed,
        )


class ImageTooLarge(DomainError):
    status = 422
    type_slug = "image-too-large"
    title = "Image dimensions too large"

    def __init__(self, max_pixels: int) -> None:
        super().__init__(
            f"Images may have at most {max_pixels} pixels (a decompression bomb guard).",
            max_pixels=max_pixels,
        )


class FileNotFound(NotFound):
    type_slug = "file-not-found"
    title = "File not found"

    def __init__(self) -> None:
        super().__init__("There is no such file, or it is not yours.")


class InvalidDownloadLink(DomainError):
    status = 403
    type_slug = "invalid-download-link"
    title = "Invalid or expired download link"

    def __init__(self) -> None:
        super().__init__("The link is expired, altered, or was made for someone else.")


class InvalidUpload(DomainError):
    status = 400
    type_slug = "invalid-upload"
    title = "Invalid upload"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
