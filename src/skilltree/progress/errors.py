"""Errors of the progress domain."""

from __future__ import annotations

from skilltree.platform.errors import Conflict, NotFound, PayloadTooLarge, UnprocessableContent


class NothingToUndo(Conflict):
    type_slug = "nothing-to-undo"
    title = "Nothing to undo"

    def __init__(self, roadmap: str) -> None:
        super().__init__(f"You have no change on {roadmap!r} left to undo.", roadmap=roadmap)


class NoteTooLarge(PayloadTooLarge):
    type_slug = "note-too-large"
    title = "Note too large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"A note holds at most {limit} characters.", limit=limit)


class TooManyResources(Conflict):
    type_slug = "too-many-resources"
    title = "Too many resources"

    def __init__(self, limit: int) -> None:
        super().__init__(f"A topic holds at most {limit} personal resources.", limit=limit)


class ResourceNotFound(NotFound):
    type_slug = "resource-not-found"
    title = "Resource not found"

    def __init__(self, resource_id: int) -> None:
        super().__init__(f"You have no resource {resource_id} here.", resource_id=resource_id)


class InvalidProgressImport(UnprocessableContent):
    type_slug = "invalid-progress-import"
    title = "Invalid progress import"
