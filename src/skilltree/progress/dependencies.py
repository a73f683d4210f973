"""Who is recording or reading progress: the learner, with the viewer their roadmaps need."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from skilltree.accounts.dependencies import require_scope
from skilltree.identity import Principal, Scope
from skilltree.orgs import service as orgs
from skilltree.platform.observability.context import current_request_id
from skilltree.platform.state import DbSession, Resources, resources_of
from skilltree.progress import service


async def _learner(current: Principal, session: DbSession, resources: Resources) -> service.Learner:
    viewer = await orgs.viewer_of(session, current)
    return service.Learner(
        user_id=current.user_id,
        viewer=viewer,
        clock=resources.clock,
        request_id=current_request_id(),
    )


# The app's resources are read from the request rather than asked for as a dependency: each
# dependency is resolved again for every route that names it, and these run on every read.
async def progress_reader(
    current: Annotated[Principal, Depends(require_scope(Scope.PROGRESS_READ))],
    session: DbSession,
    request: Request,
) -> service.Learner:
    return await _learner(current, session, resources_of(request))


async def progress_writer(
    current: Annotated[Principal, Depends(require_scope(Scope.PROGRESS_WRITE))],
    session: DbSession,
    request: Request,
) -> service.Learner:
    return await _learner(current, session, resources_of(request))


Reader = Annotated[service.Learner, Depends(progress_reader)]
Writer = Annotated[service.Learner, Depends(progress_writer)]
