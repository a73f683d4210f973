"""What the profiles domain asks of files: whether a user's avatar is ready, and its version.

Files already depends on profiles (an avatar is served only if the profile lets the viewer
see it), so profiles may not import files back: files supplies this lookup when the app is
built (`app.py`), and the profile links the avatar through it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class ReadyAvatar:
    version: str  # changes with the avatar: part of its links, so caches never mix two
    sizes: tuple[int, ...]  # pixels a side, as `GET /v1/users/{handle}/avatar?size=` takes


# (session, user id) -> the user's avatar once its sizes are made, or None
AvatarVersion = Callable[[AsyncSession, int], Awaitable[ReadyAvatar | None]]


@dataclass
class AvatarLink:
    version: AvatarVersion | None = None


LINK = AvatarLink()


def link_avatars(version: AvatarVersion) -> None:
    """Called once where the app is built."""
    LINK.version = version
