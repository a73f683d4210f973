"""Errors of the files domain."""

from __future__ import annotations

from skilltree.platform.errors import Conflict, DomainError, NotFound, PayloadTooLarge


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


class AvatarNotFound(NotFound):
    type_slug = "avatar-not-found"
    title = "Avatar not found"

    def __init__(self) -> None:
        super().__init__(
            "There is no avatar here, or its sizes are still being made: try again shortly."
        )


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


# Resumable uploads (tus 1.0.0). Every answer of a tus route names the protocol version.
TUS_VERSION = "1.0.0"


class _TusError(DomainError):
    def __init__(self, detail: str, **extensions: object) -> None:
        super().__init__(detail, **extensions)
        self.headers["Tus-Resumable"] = TUS_VERSION


class UploadNotFound(_TusError, NotFound):
    type_slug = "upload-not-found"
    title = "Upload not found"

    def __init__(self) -> None:
        super().__init__("There is no such upload, or it is not yours.")


class UploadExpired(_TusError):
    status = 410
    type_slug = "upload-expired"
    title = "Upload expired"

    def __init__(self) -> None:
        super().__init__("This upload expired; its bytes are deleted. Start a new one.")


class OffsetMismatch(_TusError, Conflict):
    type_slug = "upload-offset-mismatch"
    title = "Upload offset mismatch"

    def __init__(self, offset: int) -> None:
        super().__init__(
            f"The upload is at offset {offset}; ask HEAD and send the bytes from there.",
            offset=offset,
        )


class ChecksumMismatch(_TusError):
    # The tus checksum extension's own status: the bytes of this PATCH were not kept.
    status = 460
    type_slug = "upload-checksum-mismatch"
    title = "Checksum mismatch"

    def __init__(self) -> None:
        super().__init__("The bytes received do not match Upload-Checksum; send them again.")


class TusVersionUnsupported(_TusError):
    status = 412
    type_slug = "tus-version-unsupported"
    title = "tus version not supported"

    def __init__(self) -> None:
        super().__init__(f"Send Tus-Resumable: {TUS_VERSION}.", supported=[TUS_VERSION])
        self.headers["Tus-Version"] = TUS_VERSION


class InvalidTusRequest(_TusError):
    status = 400
    type_slug = "invalid-upload"
    title = "Invalid upload"


class NotAnUploadChunk(_TusError):
    status = 415
    type_slug = "unsupported-media-type"
    title = "Unsupported media type"

    def __init__(self) -> None:
        super().__init__("Send the bytes of a PATCH as application/offset+octet-stream.")
