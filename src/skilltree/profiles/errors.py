"""Errors of the profiles domain."""

from __future__ import annotations

from skilltree.platform.errors import Conflict, NotFound


class HandleTaken(Conflict):
    type_slug = "handle-taken"
    title = "Handle taken"

    def __init__(self, handle: str) -> None:
        super().__init__(f"The handle {handle!r} belongs to someone else.", handle=handle)


class ProfileNotFound(NotFound):
    type_slug = "profile-not-found"
    title = "Profile not found"

    def __init__(self, handle: str) -> None:
        # Private profiles answer exactly like missing ones: a handle reveals nothing.
        super().__init__(f"There is no public profile {handle!r}.", handle=handle)
