"""Organisations: mine, a new one, its members and roadmaps, invitations and their accept page.

The e-mailed invitation link (`/invitations#token=...`) keeps its token in the fragment, like
every e-mailed link; the accept page's script moves it into the form.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.datastructures import QueryParams
from starlette.responses import RedirectResponse, Response

from skilltree.accounts.dependencies import Accounts
from skilltree.accounts.service import SignedIn
from skilltree.cohorts import service as cohorts
from skilltree.identity import MAX_SLUG_LENGTH, SLUG_PATTERN, Viewer
from skilltree.orgs import service as orgs
from skilltree.platform.errors import DomainError, UnprocessableContent
from skilltree.platform.http.bounds import RowId
from skilltree.platform.http.filtering import parse_list_query
from skilltree.platform.state import AppResources, DbSession, Resources
from skilltree.roadmaps import service as roadmaps
from skilltree.roadmaps.listing import ROADMAP_LIST
from skilltree.rooms import service as rooms
from skilltree.web.errors import PageRoute
from skilltree.web.session import Member, SignedInForm, Visitor, csrf_token, viewer_of
from skilltree.web.templating import page

router = APIRouter(route_class=PageRoute, include_in_schema=False)

OrgSlug = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)]
ORG_ROADMAPS = 100


def _base(current: SignedIn | None, **context: Any) -> dict[str, Any]:
    return {"current": current, "csrf": csrf_token(current), "errors": [], **context}


@router.get("/orgs")
async def orgs_page(request: Request, current: Member, db: DbSession) -> Response:
    mine = await orgs.my_orgs(db, current.principal)
    return page(request, "orgs.html", _base(current, orgs=mine, values={}))


@router.post("/orgs")
async def create_org(
    request: Request, form: SignedInForm, db: DbSession, ctx: Accounts
) -> Response:
    values = {"slug": form.get("slug").strip(), "name": form.get("name").strip()}
    try:
        if not values["name"] or len(values["name"]) > 200:
            raise UnprocessableContent("Give the organisation a name (up to 200 characters).")
        if not _is_slug(values["slug"]):
            raise UnprocessableContent(
                "The short name is lower-case letters, digits and single hyphens."
            )
        org = await orgs.create(db, ctx.clock, form.current.principal, **values)
    except DomainError as error:
        mine = await orgs.my_orgs(db, form.current.principal)
        context = _base(form.current, orgs=mine, values=values, errors=[error.detail])
        return page(request, "orgs.html", context, status_code=error.status)
    return RedirectResponse(f"/orgs/{org.slug}", status_code=303)


def _is_slug(value: str) -> bool:
    import re

    return len(value) <= MAX_SLUG_LENGTH and re.fullmatch(SLUG_PATTERN, value) is not None


@router.get("/orgs/{org}")
async def org_page(
    request: Request, org: OrgSlug, current: Member, db: DbSession, invited: str = ""
) -> Response:
    return await _org(request, org, current, db, invited=invited[:320])


async def _org(
    request: Request,
    slug: str,
    current: SignedIn,
    db: DbSession,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    member = await orgs.membership_of(db, slug, current.principal)
    people = await orgs.members(db, member)
    viewer = await viewer_of(db, current)
    query = parse_list_query(QueryParams("visibility=organisation"), ROADMAP_LIST)
    listings, _ = await roadmaps.list_roadmaps(db, viewer, query, ORG_ROADMAPS, 0)
    org_roadmaps = [item.roadmap for item in listings if item.roadmap.org_id == member.org.id]
    resources: Resources = request.app.state.resources
    now = resources.clock.now()
    context = _base(
        current,
        member=member,
        people=people,
        names={p.user_id: p.display_name for p in people},
        roadmaps=org_roadmaps,
        may_invite=[role.value for role in orgs.MAY_INVITE[member.role]],
        manages=member.role in cohorts.MANAGERS,
        assignments=await cohorts.assignments(db, member),
        assignable=org_roadmaps + await _public_roadmaps(db, viewer),
        rooms=await rooms.rooms(db, member, now),
        **extra,
    )
    return page(request, "org.html", context, status_code=status_code)


@router.post("/orgs/{org}/invitations")
async def invite(
    request: Request, org: OrgSlug, form: SignedInForm, db: DbSession, ctx: Accounts
) -> Response:
    member = await orgs.membership_of(db, org, form.current.principal)
    email = form.get("email").strip()
    try:
        role = orgs.Role(form.get("role"))
        if "@" not in email or len(email) > 320:
            raise UnprocessableContent("Enter the e-mail address to invite.")
        invitation = await orgs.invite(
            db, ctx.clock, ctx.mailer, ctx.mail.public_url, member, email=email, role=role
        )
    except (DomainError, ValueError) as error:
        detail = error.detail if isinstance(error, DomainError) else "Choose a role."
        status = error.status if isinstance(error, DomainError) else 422
        return await _org(request, org, form.current, db, status, errors=[detail])
    return RedirectResponse(f"/orgs/{org}?invited={invitation.email}", status_code=303)


MemberId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post("/orgs/{org}/members/{user_id}/role")
async def change_role(
    request: Request,
    org: OrgSlug,
    user_id: MemberId,
    form: SignedInForm,
    db: DbSession,
    ctx: Accounts,
) -> Response:
    """Promote or demote a member (owners only; the last owner stays an owner)."""
    member = await orgs.membership_of(db, org, form.current.principal)
    try:
        role = orgs.Role(form.get("role"))
        await orgs.change_role(db, ctx.clock, member, user_id, role)
    except (DomainError, ValueError) as error:
        detail = error.detail if isinstance(error, DomainError) else "Choose a role."
        status = error.status if isinstance(error, DomainError) else 422
        return await _org(request, org, form.current, db, status, errors=[detail])
    return RedirectResponse(f"/orgs/{org}?changed={user_id}#members-h", status_code=303)


@router.post("/orgs/{org}/members/{user_id}/remove")
async def remove_member(
    request: Request, org: OrgSlug, user_id: MemberId, form: SignedInForm, db: DbSession
) -> Response:
    """Owners remove anyone; anyone may leave; the last owner may do neither."""
    member = await orgs.membership_of(db, org, form.current.principal)
    try:
        await orgs.remove(db, member, user_id)
    except DomainError as error:
        return await _org(request, org, form.current, db, error.status, errors=[error.detail])
    if user_id == form.current.user.id:
        return RedirectResponse("/orgs", status_code=303)
    return RedirectResponse(f"/orgs/{org}?removed={user_id}#members-h", status_code=303)


async def _public_roadmaps(db: DbSession, viewer: Viewer) -> list[Any]:
    """What an organisation may assign besides its own roadmaps (cohorts.service decides)."""
    query = parse_list_query(QueryParams("visibility=public"), ROADMAP_LIST)
    listings, _ = await roadmaps.list_roadmaps(db, viewer, query, ORG_ROADMAPS, 0)
    return [item.roadmap for item in listings]


async def _org_refused(
    request: Request, org: str, current: SignedIn, db: DbSession, error: DomainError
) -> Response:
    return await _org(request, org, current, db, error.status, assign_errors=[error.detail])


@router.post("/orgs/{org}/assignments")
async def assign(
    request: Request, org: OrgSlug, form: SignedInForm, db: DbSession, resources: AppResources
) -> Response:
    """Owners and mentors assign a roadmap (or one section) to everyone or to one member."""
    member = await orgs.membership_of(db, org, form.current.principal)
    try:
        roadmap = _slug_field(form.get("roadmap"), "Choose a roadmap to assign.")
        section = form.get("section").strip() or None
        if section is not None:
            section = _slug_field(section, "Name the section by its short name (its address).")
        await cohorts.assign(
            db,
            member,
            resources.clock.now(),
            roadmap_slug=roadmap,
            section_slug=section,
            user_ids=_assignees(form.get("assignee")),
            due_at=_end_of_day(form.get("due")),
        )
    except DomainError as error:
        return await _org_refused(request, org, form.current, db, error)
    return RedirectResponse(f"/orgs/{org}?assigned=1#assignments-h", status_code=303)


@router.post("/orgs/{org}/assignments/{assignment_id}/delete")
async def unassign(
    request: Request, org: OrgSlug, assignment_id: RowId, form: SignedInForm, db: DbSession
) -> Response:
    member = await orgs.membership_of(db, org, form.current.principal)
    try:
        await cohorts.unassign(db, member, assignment_id)
    except DomainError as error:
        return await _org_refused(request, org, form.current, db, error)
    return RedirectResponse(f"/orgs/{org}?unassigned=1#assignments-h", status_code=303)


def _slug_field(value: str, problem: str) -> str:
    if not _is_slug(value.strip()):
        raise UnprocessableContent(problem)
    return value.strip()


def _assignees(value: str) -> list[int] | None:
    """Everyone (the default) assigns to the organisation; a user id, to that member."""
    if value in ("", "everyone"):
        return None
    if not value.isdigit() or len(value) > 18:
        raise UnprocessableContent("Choose everyone or one member.")
    return [int(value)]


def _end_of_day(value: str) -> datetime | None:
    """A date field means "by the end of that day", in UTC (a form knows no time zone)."""
    if not value.strip():
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise UnprocessableContent("Give the due date as a date (YYYY-MM-DD).") from None
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


@router.get("/invitations")
async def invitation_page(request: Request, current: Visitor) -> Response:
    return page(request, "invitation.html", _base(current))


@router.post("/invitations")
async def accept_invitation(
    request: Request, form: SignedInForm, db: DbSession, ctx: Accounts
) -> Response:
    try:
        org = await orgs.accept(db, ctx.clock, form.current.principal, form.get("token").strip())
    except DomainError as error:
        context = _base(form.current, errors=[error.detail])
        return page(request, "invitation.html", context, status_code=error.status)
    return RedirectResponse(f"/orgs/{org.slug}", status_code=303)
