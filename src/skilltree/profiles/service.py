"""The rules of profiles: defaults for users who never changed a setting, unique handles.

A user without a profile row has the defaults (UTC, private, concept sharing on), so every
other domain can ask for settings without caring whether the row exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import directory
from skilltree.platform.cache import stale_on_commit
from skilltree.profiles import repository
from skilltree.profiles.avatar_link import LINK as AVATARS
from skilltree.profiles.errors import HandleTaken, ProfileNotFound
from skilltree.profiles.models import Profile

DEFAULT_TIME_ZONE = "UTC"


@dataclass(frozen=True)
class ProfileView:
    user_id: int
    handle: str | None
    time_zone: str
    is_public: bool
    share_progress_by_concept: bool
    updated_at: datetime | None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class ProfileChanges:
    """Only the settings the caller sent; None in `handle` clears it."""

    fields: frozenset[str]
    display_name: str | None = None
    handle: str | None = None
    time_zone: str | None = None
    is_public: bool | None = None
    share_progress_by_concept: bool | None = None


async def display_name(session: AsyncSession, user_id: int) -> str:
    """The name other people see (kept on the account, changed with the profile)."""
    found = await directory.people(session, [user_id])
    return found[0].display_name if found else ""


def cache_namespace(user_id: int) -> str:
    """Named by cached data that depends on profile settings (progress shared by concept)."""
    return f"profile:{user_id}"


async def get_profile(session: AsyncSession, user_id: int) -> ProfileView:
    return _view(user_id, await repository.get(session, user_id))


async def update_profile(
    session: AsyncSession, user_id: int, changes: ProfileChanges, now: datetime
) -> ProfileView:
    profile = await repository.get(session, user_id)
    if profile is None:
        profile = Profile(
            user_id=user_id,
            time_zone=DEFAULT_TIME_ZONE,
            is_public=False,
            share_progress_by_concept=True,
            updated_at=now,
        )
        repository.add(session, profile)
    if "display_name" in changes.fields and changes.display_name is not None:
        await directory.rename(session, user_id, changes.display_name)
    if "handle" in changes.fields and changes.handle != profile.handle:
        await _check_handle_free(session, changes.handle, user_id)
        profile.handle = changes.handle
    for name in ("time_zone", "is_public", "share_progress_by_concept"):
        value = getattr(changes, name)
        if name in changes.fields and value is not None:
            setattr(profile, name, value)
    profile.updated_at = now
    stale_on_commit(session, cache_namespace(user_id))
    try:
        # A savepoint, so a concurrent claim of the same handle fails only this write.
        async with session.begin_nested():
            await repository.flush(session)
    except IntegrityError as error:
        raise HandleTaken(changes.handle or "") from error
    return _view(user_id, profile)


async def public_profile(session: AsyncSession, handle: str) -> ProfileView:
    """The profile behind a handle if its owner made it public; ProfileNotFound otherwise."""
    profile = await repository.get_by_handle(session, handle)
    if profile is None or not profile.is_public:
        raise ProfileNotFound(handle)
    return _view(profile.user_id, profile)


async def visible_profile(session: AsyncSession, handle: str, viewer_id: int | None) -> ProfileView:
    """The profile behind a handle if it is public or the viewer's own; ProfileNotFound
    otherwise (a private profile answers exactly like a missing one)."""
    profile = await repository.get_by_handle(session, handle)
    if profile is None or not (profile.is_public or profile.user_id == viewer_id):
        raise ProfileNotFound(handle)
    return _view(profile.user_id, profile)


@dataclass(frozen=True)
class AvatarLinks:
    """Where a profile's avatar is served, one link per size. The links carry the avatar's
    version, so a new avatar has new links and a cached old one is never shown in its place."""

    default: str
    sizes: dict[int, str]


async def avatar_links(session: AsyncSession, view: ProfileView) -> AvatarLinks | None:
    """The avatar's links, once its sizes are made; None without an avatar or a handle (the
    avatar is served by handle)."""
    if view.handle is None or AVATARS.version is None:
        return None
    ready = await AVATARS.version(session, view.user_id)
    if ready is None:
        return None
    base = f"/v1/users/{view.handle}/avatar"
    sizes = {size: f"{base}?size={size}&v={ready.version}" for size in ready.sizes}
    # The middle size by default: the route's own default, sharp enough for a profile header.
    return AvatarLinks(default=sizes[sorted(ready.sizes)[len(ready.sizes) // 2]], sizes=sizes)


async def _check_handle_free(session: AsyncSession, handle: str | None, user_id: int) -> None:
    if handle is None:
        return
    holder = await repository.get_by_handle(session, handle)
    if holder is not None and holder.user_id != user_id:
        raise HandleTaken(handle)


def _view(user_id: int, profile: Profile | None) -> ProfileView:
    if profile is None:
        return ProfileView(user_id, None, DEFAULT_TIME_ZONE, False, True, None)
    return ProfileView(
        user_id=user_id,
        handle=profile.handle,
        time_zone=profile.time_zone,
        is_public=profile.is_public,
        share_progress_by_concept=profile.share_progress_by_concept,
        updated_at=profile.updated_at,
    )
