"""`/v1/admin/dlq`: list, show, replay and purge dead letters (platform administrators only).

The same operations as `skilltree dlq`, through background.service.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from skilltree.accounts.dependencies import PlatformAdmin
from skilltree.background import service
from skilltree.background.schemas import DeadLetterListOut, DeadLetterOut, PurgeOut, ReplayOut
from skilltree.platform.http.bounds import RowId
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import AppResources, DbSession

router = APIRouter(prefix=f"{API_PREFIX}/admin/dlq", tags=["administration"])

TaskFilter = Annotated[str | None, Query(max_length=200, description="Only this task's letters")]


@router.get("", response_model=DeadLetterListOut, responses=problem_responses(401, 403, 422))
async def list_dead_letters(
    current: PlatformAdmin,
    db: DbSession,
    task: TaskFilter = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DeadLetterListOut:
    """Dead letters, newest first."""
    found = await service.page(db, limit=limit, offset=offset, task_name=task)
    return DeadLetterListOut(
        items=[DeadLetterOut.of(letter) for letter in found.items],
        total=found.total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/{letter_id}", response_model=DeadLetterOut, responses=problem_responses(401, 403, 404)
)
async def get_dead_letter(letter_id: RowId, current: PlatformAdmin, db: DbSession) -> DeadLetterOut:
    """One dead letter with its payload and last error."""
    return DeadLetterOut.of(await service.get(db, letter_id))


@router.post(
    "/{letter_id}/replay",
    response_model=ReplayOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(401, 403, 404),
)
async def replay_dead_letter(
    letter_id: RowId, current: PlatformAdmin, db: DbSession, resources: AppResources
) -> ReplayOut:
    """Queue the task again with a fresh set of attempts; the letter is removed."""
    message_id = await service.replay(db, letter_id, now=resources.clock.now())
    return ReplayOut(message_id=message_id)


@router.delete(
    "/{letter_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(401, 403, 404),
)
async def delete_dead_letter(letter_id: RowId, current: PlatformAdmin, db: DbSession) -> Response:
    """Drop one dead letter for good."""
    await service.delete(db, letter_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("", response_model=PurgeOut, responses=problem_responses(401, 403, 422))
async def purge_dead_letters(
    current: PlatformAdmin, db: DbSession, task: TaskFilter = None
) -> PurgeOut:
    """Drop every dead letter (or every one of a task) for good."""
    return PurgeOut(purged=await service.purge(db, task_name=task))
