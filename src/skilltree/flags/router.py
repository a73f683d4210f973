"""`/v1/admin/flags`: list, read, create or replace, change the rules of, and delete feature
flags (platform administrators only). The same operations as `skilltree flags`.

Changes need If-Match with the flag's ETag (428 without, 412 when stale), except a PUT that
creates: nothing is stored, so nobody's change can be lost.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status

from skilltree.accounts.dependencies import PlatformAdmin
from skilltree.flags import service
from skilltree.flags.dependencies import Changes
from skilltree.flags.schemas import (
    FLAG_KEY_PATTERN,
    MAX_FLAG_KEY_LENGTH,
    FlagIn,
    FlagListOut,
    FlagOut,
    RulesPatch,
)
from skilltree.platform.http import conditional
from skilltree.platform.http.conditional import PRIVATE, CreateOrReplace, RequireIfMatch
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import DbSession

router = APIRouter(prefix=f"{API_PREFIX}/admin/flags", tags=["administration"])

FlagKey = Annotated[
    str,
    Path(
        pattern=FLAG_KEY_PATTERN,
        max_length=MAX_FLAG_KEY_LENGTH,
        examples=["search-typo-tolerance"],
        description="Lower-case letters, digits, '-' and '.'",
    ),
]


@router.get("", response_model=FlagListOut, responses=problem_responses(401, 403))
async def list_flags(current: PlatformAdmin, db: DbSession) -> FlagListOut:
    """Every flag with its rules, by key."""
    return FlagListOut(items=[FlagOut.of(view) for view in await service.list_flags(db)])


@router.get("/{flag}", response_model=FlagOut, responses=problem_responses(401, 403, 404, 422))
async def get_flag(
    flag: FlagKey, current: PlatformAdmin, db: DbSession, request: Request
) -> Response:
    """One flag with its rules and its ETag (send it as If-Match to change the flag)."""
    return conditional.respond(
        request, FlagOut.of(await service.get_flag(db, flag)), cache_control=PRIVATE
    )


@router.put(
    "/{flag}",
    response_model=FlagOut,
    responses={
        201: {"description": "The flag was created", "model": FlagOut},
        **problem_responses(401, 403, 412, 422, 428),
    },
)
async def put_flag(
    flag: FlagKey,
    body: FlagIn,
    changes: Changes,
    precondition: CreateOrReplace,
    db: DbSession,
    request: Request,
) -> Response:
    """Create a flag, or replace its description, default and rollout (its overrides stay)."""

    def check(stored: service.FlagView | None) -> None:
        current = FlagOut.nothing(flag) if stored is None else FlagOut.of(stored)
        precondition.check_upsert(current, stored=stored is not None)

    view, created = await service.put_flag(
        db,
        changes,
        flag,
        description=body.description,
        enabled=body.enabled,
        rollout_percentage=body.rollout_percentage,
        check=check,
    )
    if created:
        return conditional.respond(
            request,
            FlagOut.of(view),
            cache_control=PRIVATE,
            status_code=status.HTTP_201_CREATED,
            headers={"location": f"{API_PREFIX}/admin/flags/{flag}"},
        )
    return conditional.respond(request, FlagOut.of(view), cache_control=PRIVATE)


@router.patch(
    "/{flag}",
    response_model=FlagOut,
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
async def change_rules(
    flag: FlagKey,
    body: RulesPatch,
    changes: Changes,
    precondition: RequireIfMatch,
    db: DbSession,
    request: Request,
) -> Response:
    """Change a flag's rules: its default, rollout percentage, and per-user and
    per-organisation overrides (`null` removes one)."""
    rule_changes = service.RuleChanges(
        description=body.description,
        enabled=body.enabled,
        rollout_percentage=body.rollout_percentage,
        clear_rollout="rollout_percentage" in body.model_fields_set
        and body.rollout_percentage is None,
        users=body.users,
        organisations=body.organisations,
    )
    view = await service.change_rules(
        db,
        changes,
        flag,
        rule_changes,
        check=lambda stored: precondition.check(
            FlagOut.of(stored) if stored else FlagOut.nothing(flag)
        ),
    )
    return conditional.respond(request, FlagOut.of(view), cache_control=PRIVATE)


@router.delete(
    "/{flag}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
async def delete_flag(
    flag: FlagKey, changes: Changes, precondition: RequireIfMatch, db: DbSession
) -> Response:
    """Delete a flag: the code's own default answers from then on."""
    await service.delete_flag(
        db,
        changes,
        flag,
        check=lambda stored: precondition.check(
            FlagOut.of(stored) if stored else FlagOut.nothing(flag)
        ),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
