"""Errors of the rooms domain."""

from __future__ import annotations

from skilltree.platform.errors import Conflict, DomainError, NotFound


class RoomNotFound(NotFound):
    type_slug = "room-not-found"
    title = "Room not found"

    def __init__(self, key: str) -> None:
        super().__init__(f"This organisation has no room {key!r}.", room=key)


class RoomKeyTaken(Conflict):
    type_slug = "room-key-taken"
    title = "Room name taken"

    def __init__(self, key: str) -> None:
        super().__init__(f"This organisation already has a room {key!r}.", room=key)


class MessageNotFound(NotFound):
    type_slug = "message-not-found"
    title = "Message not found"

    def __init__(self, seq: int) -> None:
        super().__init__(f"This room has no message {seq}.", seq=seq)


class InvalidMessage(DomainError):
    status = 422
    type_slug = "invalid-message"
    title = "Invalid message"
