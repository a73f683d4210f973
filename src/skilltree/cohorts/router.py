"""HTTP routes of the cohorts domain: the mentors' view, assignments and the activity feed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from skilltree.accounts.dependencies import require_scope
from skilltree.cohorts import service
from skilltree.cohorts.schemas import (
    ActivityOut,
    AssignmentIn,
    AssignmentListOut,
    AssignmentOut,
    FeedOut,
    MemberStandingOut,
    MentorViewOut,
    RoadmapRefOut,
    RoadmapStandingOut,
    SharingIn,
    SharingOut,
    StuckTopicOut,
)
from skilltree.identity import Principal, Scope
from skilltree.orgs.dependencies import OrgManager, OrgReader
from skilltree.platform.http.bounds import RowId
from skilltree.platform.http.idempotency import IDEMPOTENT
from skilltree.platform.http.pagination import CursorParam, Cursors, LimitParam, page_links
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.pagination import DEFAULT_PAGE_SIZE, decode_position
from skilltree.platform.state import AppResources, DbSession

router = APIRouter(prefix=API_PREFIX, tags=["cohorts"])

READ_ERRORS = problem_responses(401, 403, 404)
WRITE_ERRORS = problem_responses(401, 403, 404, 409, 422)
PRIVATE = "private, no-store"

ProgressReader = Annotated[Principal, Depends(require_scope(Scope.PROGRESS_READ))]


@router.get("/orgs/{org}/progress", response_model=MentorViewOut, responses=READ_ERRORS)
async def mentor_view(
    member: OrgReader, db: DbSession, resources: AppResources, response: Response
) -> MentorViewOut:
    """Every member × the organisation's roadmaps (its own and those assigned): percent done,
    last activity, current streak, the topics in progress longest. Owners and mentors only.
    A member who opted out of sharing details shows the percentage only."""
    view = await service.mentor_view(db, member, resources.clock.now())
    response.headers["Cache-Control"] = PRIVATE
    return MentorViewOut(
        roadmaps=[RoadmapRefOut(slug=r.slug, title=r.title) for r in view.roadmaps],
        members=[_standing_out(m) for m in view.members],
    )


def _standing_out(member: service.MemberStanding) -> MemberStandingOut:
    return MemberStandingOut(
        user_id=member.user_id,
        display_name=member.display_name,
        role=member.role.value,
        details_shared=member.details_shared,
        current_streak=member.current_streak,
        last_activity_at=member.last_activity_at,
        roadmaps=[
            RoadmapStandingOut(
                roadmap=r.slug,
                title=r.title,
                percent_done=r.tally.percent_done,
                done=r.tally.counts["done"],
                total=r.tally.total,
                last_activity_at=r.last_activity_at,
                stuck=None
                if r.stuck is None
                else [
                    StuckTopicOut(topic=s.slug, title=s.title, in_progress_since=s.since)
                    for s in r.stuck
                ],
            )
            for r in member.roadmaps
        ],
    )


@router.put("/orgs/{org}/sharing", response_model=SharingOut, responses=WRITE_ERRORS)
async def set_sharing(body: SharingIn, member: OrgManager, db: DbSession) -> SharingOut:
    """Choose what this organisation's mentors see of your progress."""
    return SharingOut(share_details=await service.set_sharing(db, member, body.share_details))


@router.post(
    "/orgs/{org}/assignments",
    response_model=AssignmentListOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[IDEMPOTENT],
    responses=WRITE_ERRORS,
)
async def assign(
    body: AssignmentIn, member: OrgManager, db: DbSession, resources: AppResources
) -> AssignmentListOut:
    """Assign a roadmap (or one section) to the organisation, or to some members (one
    assignment each), with an optional due date. Owners and mentors."""
    created = await service.assign(
        db,
        member,
        resources.clock.now(),
        roadmap_slug=body.roadmap,
        section_slug=body.section,
        user_ids=body.user_ids,
        due_at=body.due_at,
    )
    return AssignmentListOut(items=[_assignment_out(a) for a in created])


@router.get("/orgs/{org}/assignments", response_model=AssignmentListOut, responses=READ_ERRORS)
async def list_assignments(member: OrgReader, db: DbSession) -> AssignmentListOut:
    """Owners and mentors see every assignment; learners those addressed to them."""
    return AssignmentListOut(
        items=[_assignment_out(a) for a in await service.assignments(db, member)]
    )


@router.delete(
    "/orgs/{org}/assignments/{assignment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=WRITE_ERRORS,
)
async def unassign(assignment_id: RowId, member: OrgManager, db: DbSession) -> None:
    await service.unassign(db, member, assignment_id)


@router.get("/me/assignments", response_model=AssignmentListOut, responses=READ_ERRORS)
async def my_assignments(
    current: ProgressReader, db: DbSession, response: Response
) -> AssignmentListOut:
    """What your organisations assigned to you, with whether you completed each."""
    response.headers["Cache-Control"] = PRIVATE
    return AssignmentListOut(
        items=[_assignment_out(a) for a in await service.my_assignments(db, current.user_id)]
    )


@router.get(
    "/orgs/{org}/feed", response_model=FeedOut, responses=problem_responses(400, 401, 403, 404)
)
async def feed(
    member: OrgReader,
    db: DbSession,
    cursors: Cursors,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = DEFAULT_PAGE_SIZE,
) -> FeedOut:
    """What members did, newest first, a page at a time (follow `links.next`). Live:
    `GET /v1/orgs/{org}/feed/stream`."""
    scope = f"org-feed:{member.org.id}"
    position = decode_position(cursors, scope, cursor)
    page = await service.feed(db, member, position, limit)
    links = page_links(request, response, cursors, scope, page)
    response.headers["Cache-Control"] = PRIVATE
    return FeedOut(items=[activity_out(line) for line in page.items], links=links)


def activity_out(line: service.ActivityView) -> ActivityOut:
    return ActivityOut(
        id=line.id,
        kind=line.kind,
        actor_id=line.actor_id,
        data=line.data,
        occurred_at=line.occurred_at,
    )


def _assignment_out(view: service.AssignmentView) -> AssignmentOut:
    return AssignmentOut(
        id=view.id,
        org=view.org,
        roadmap=view.roadmap,
        roadmap_title=view.roadmap_title,
        section=view.section,
        assignee_id=view.assignee_id,
        due_at=view.due_at,
        created_at=view.created_at,
        completed_by=view.completed_by,
    )
