"""HTTP routes of the organisations domain."""

from __future__ import annotations

from fastapi import APIRouter, status

from skilltree.accounts.dependencies import AccountOwner, Accounts, CurrentPrincipal
from skilltree.audit.schemas import SecurityEventListOut, SecurityEventOut
from skilltree.orgs import service
from skilltree.orgs.dependencies import OrgManager, OrgReader
from skilltree.orgs.schemas import (
    AcceptIn,
    InvitationIn,
    InvitationOut,
    MemberListOut,
    MemberOut,
    OrgIn,
    OrgListOut,
    OrgOut,
    OrgRenameIn,
    RoleIn,
    TransferIn,
)
from skilltree.orgs.service import Role
from skilltree.platform.http.bounds import RowId
from skilltree.platform.http.idempotency import IDEMPOTENT
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import DbSession

router = APIRouter(prefix=API_PREFIX, tags=["organisations"])

READ_ERRORS = problem_responses(401, 403, 404)
WRITE_ERRORS = problem_responses(401, 403, 404, 409, 422)


@router.post(
    "/orgs",
    response_model=OrgOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[IDEMPOTENT],
    responses=WRITE_ERRORS,
)
async def create_org(body: OrgIn, current: AccountOwner, db: DbSession, ctx: Accounts) -> OrgOut:
    """Create an organisation; you become its owner."""
    org = await service.create(db, ctx.clock, current, slug=body.slug, name=body.name)
    return OrgOut(slug=org.slug, name=org.name, role=Role.OWNER, created_at=org.created_at)


@router.get("/orgs", response_model=OrgListOut, responses=READ_ERRORS)
async def list_orgs(current: CurrentPrincipal, db: DbSession) -> OrgListOut:
    """The organisations you belong to, with your role in each."""
    return OrgListOut(
        items=[
            OrgOut(slug=org.slug, name=org.name, role=role, created_at=org.created_at)
            for org, role in await service.my_orgs(db, current)
        ]
    )


@router.get("/orgs/{org}", response_model=OrgOut, responses=READ_ERRORS)
async def get_org(member: OrgReader) -> OrgOut:
    """An organisation you belong to (404 otherwise, whether or not it exists)."""
    return OrgOut(
        slug=member.org.slug,
        name=member.org.name,
        role=member.role,
        created_at=member.org.created_at,
    )


@router.patch("/orgs/{org}", response_model=OrgOut, responses=WRITE_ERRORS)
async def rename_org(body: OrgRenameIn, member: OrgManager, db: DbSession) -> OrgOut:
    org = await service.rename(db, member, body.name)
    return OrgOut(slug=org.slug, name=org.name, role=member.role, created_at=org.created_at)


@router.delete("/orgs/{org}", status_code=status.HTTP_204_NO_CONTENT, responses=WRITE_ERRORS)
async def delete_org(member: OrgManager, db: DbSession) -> None:
    await service.delete(db, member)


@router.get("/orgs/{org}/members", response_model=MemberListOut, responses=READ_ERRORS)
async def list_members(member: OrgReader, db: DbSession) -> MemberListOut:
    return MemberListOut(
        items=[
            MemberOut(
                user_id=m.user_id, display_name=m.display_name, role=m.role, joined_at=m.joined_at
            )
            for m in await service.members(db, member)
        ]
    )


@router.put(
    "/orgs/{org}/members/{user_id}/role",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=WRITE_ERRORS,
)
async def change_role(
    user_id: RowId, body: RoleIn, member: OrgManager, db: DbSession, ctx: Accounts
) -> None:
    """Owners set a member's role; the last owner cannot step down."""
    await service.change_role(db, ctx.clock, member, user_id, body.role)


@router.delete(
    "/orgs/{org}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=WRITE_ERRORS
)
async def remove_member(user_id: RowId, member: OrgManager, db: DbSession) -> None:
    """Owners remove members; anyone may remove themselves (leave)."""
    await service.remove(db, member, user_id)


@router.post(
    "/orgs/{org}/transfer-ownership", status_code=status.HTTP_204_NO_CONTENT, responses=WRITE_ERRORS
)
async def transfer_ownership(
    body: TransferIn, member: OrgManager, db: DbSession, ctx: Accounts
) -> None:
    """Hand the organisation to another member; you stay on as a mentor."""
    await service.transfer_ownership(db, ctx.clock, member, body.user_id)


@router.post(
    "/orgs/{org}/invitations",
    response_model=InvitationOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[IDEMPOTENT],
    responses=WRITE_ERRORS,
)
async def invite(
    body: InvitationIn, member: OrgManager, db: DbSession, ctx: Accounts
) -> InvitationOut:
    """E-mail an invitation (valid 7 days). Owners invite any role, mentors invite learners."""
    invitation = await service.invite(
        db, ctx.clock, ctx.mailer, ctx.mail.public_url, member, email=body.email, role=body.role
    )
    return InvitationOut(
        email=invitation.email, role=invitation.role, expires_at=invitation.expires_at
    )


@router.post(
    "/invitations/accept", response_model=OrgOut, responses=problem_responses(400, 401, 403, 422)
)
async def accept_invitation(
    body: AcceptIn, current: AccountOwner, db: DbSession, ctx: Accounts
) -> OrgOut:
    """Join the organisation you were invited to, signed in with the invited e-mail address."""
    org = await service.accept(db, ctx.clock, current, body.token)
    membership = await service.membership_of(db, org.slug, current)
    return OrgOut(slug=org.slug, name=org.name, role=membership.role, created_at=org.created_at)


@router.get("/orgs/{org}/audit", response_model=SecurityEventListOut, responses=READ_ERRORS)
async def org_audit(member: OrgReader, db: DbSession) -> SecurityEventListOut:
    """The organisation's latest 100 security events (role changes, joins). Owners only."""
    events = await service.audit_log(db, member)
    return SecurityEventListOut(items=[SecurityEventOut.model_validate(e) for e in events])
