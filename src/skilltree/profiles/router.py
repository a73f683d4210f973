"""HTTP routes of the profiles domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from skilltree.accounts.dependencies import require_scope
from skilltree.identity import Principal, Scope
from skilltree.platform.errors import UnprocessableContent
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import AppResources, DbSession
from skilltree.profiles import service
from skilltree.profiles.schemas import AvatarOut, ProfileOut, ProfilePatch

router = APIRouter(prefix=API_PREFIX, tags=["profiles"])

ProfileReader = Annotated[Principal, Depends(require_scope(Scope.PROGRESS_READ))]
ProfileWriter = Annotated[Principal, Depends(require_scope(Scope.PROGRESS_WRITE))]


@router.get("/me/profile", response_model=ProfileOut, responses=problem_responses(401, 403))
async def get_profile(current: ProfileReader, db: DbSession, response: Response) -> ProfileOut:
    """Your profile; the defaults until you change something."""
    response.headers["Cache-Control"] = "private, no-store"
    view = await service.get_profile(db, current.user_id)
    return await _out(db, view)


@router.patch(
    "/me/profile", response_model=ProfileOut, responses=problem_responses(401, 403, 409, 422)
)
async def update_profile(
    body: ProfilePatch, current: ProfileWriter, db: DbSession, resources: AppResources
) -> ProfileOut:
    """Change the settings you send; the others stay as they are. `handle: null` clears it."""
    sent = frozenset(body.model_fields_set)
    for name in sent - {"handle"}:
        if getattr(body, name) is None:
            raise UnprocessableContent(f"{name!r} cannot be null.", field=name)
    changes = service.ProfileChanges(fields=sent, **body.model_dump(include=set(sent)))
    view = await service.update_profile(db, current.user_id, changes, resources.clock.now())
    return await _out(db, view)


async def _out(db: DbSession, view: service.ProfileView) -> ProfileOut:
    avatar = await service.avatar_links(db, view)
    return ProfileOut(
        display_name=await service.display_name(db, view.user_id),
        handle=view.handle,
        time_zone=view.time_zone,
        is_public=view.is_public,
        share_progress_by_concept=view.share_progress_by_concept,
        updated_at=view.updated_at,
        avatar=None
        if avatar is None
        else AvatarOut(
            url=avatar.default, sizes={str(size): url for size, url in avatar.sizes.items()}
        ),
    )
