"""The rules of organisations: who may do what is decided here, once, by role."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import event, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session

from skilltree.accounts import directory
from skilltree.accounts.principal_cache import (
    EVERYONE,
    bound_to,
    changes_roles,
    forget_roles_on_commit,
)
from skilltree.audit import service as audit
from skilltree.audit.service import EventKind
from skilltree.identity import ANONYMOUS, Principal, Viewer
from skilltree.orgs import repository
from skilltree.orgs.errors import (
    InvitationInvalid,
    LastOwner,
    MemberNotFound,
    OrgNotFound,
    OrgSlugTaken,
    RoleRequired,
)
from skilltree.orgs.models import Invitation, Membership, Organisation
from skilltree.platform import emails, events
from skilltree.platform.clock import Clock
from skilltree.platform.crypto import digest
from skilltree.platform.transactional_mail import TransactionalMailer

INVITATION_DAYS = 7


class Role(StrEnum):
    OWNER = "owner"
    MENTOR = "mentor"
    LEARNER = "learner"


# Who may invite whom: owners anyone; mentors bring in learners (a cohort lead's everyday job).
MAY_INVITE: dict[Role, frozenset[Role]] = {
    Role.OWNER: frozenset(Role),
    Role.MENTOR: frozenset({Role.LEARNER}),
    Role.LEARNER: frozenset(),
}


@dataclass(frozen=True, slots=True)
class OrgView:
    id: int
    slug: str
    name: str
    created_at: datetime

    @classmethod
    def of(cls, org: Organisation) -> OrgView:
        return cls(id=org.id, slug=org.slug, name=org.name, created_at=org.created_at)


@dataclass(frozen=True, slots=True)
class MemberView:
    user_id: int
    display_name: str
    role: Role
    joined_at: datetime


@dataclass(frozen=True, slots=True)
class InvitationView:
    email: str
    role: Role
    expires_at: datetime


@dataclass(frozen=True)
class Member:
    """The caller's place in an organisation, as the policy dependency found it."""

    org: OrgView
    role: Role
    caller: Principal

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            allowed = " or ".join(role.value for role in roles)
            raise RoleRequired(f"Only an organisation {allowed} may do this.", role=self.role.value)


async def membership_of(db: AsyncSession, slug: str, caller: Principal) -> Member:
    """The caller's membership, or OrgNotFound — also when the organisation exists but the
    caller is not in it, so non-members cannot probe which organisations exist."""
    org = await repository.get_org(db, slug)
    membership = await repository.get_membership(db, org.id, caller.user_id) if org else None
    if org is None or membership is None:
        raise OrgNotFound(slug)
    return Member(OrgView.of(org), Role(membership.role), caller)


async def create(
    db: AsyncSession, clock: Clock, caller: Principal, *, slug: str, name: str
) -> OrgView:
    if await repository.get_org(db, slug) is not None:
        raise OrgSlugTaken(slug)
    org = Organisation(slug=slug, name=name, created_at=clock.now())
    repository.add(db, org)
    try:
        await repository.flush(db)
    except IntegrityError as error:  # created concurrently
        raise OrgSlugTaken(slug) from error
    repository.add(
        db,
        Membership(org_id=org.id, user_id=caller.user_id, role=Role.OWNER, joined_at=clock.now()),
    )
    await repository.flush(db)
    return OrgView.of(org)


async def roles_of(db: AsyncSession, user_id: int) -> dict[int, str]:
    """Organisation id -> the user's role there, for access checks elsewhere."""
    return await repository.roles_of(db, user_id)


async def viewer_of(db: AsyncSession, caller: Principal | None) -> Viewer:
    """The caller with their organisation roles, as visibility rules need them; anonymous
    visitors see what is public."""
    if caller is None:
        return ANONYMOUS
    return Viewer(user_id=caller.user_id, org_roles=await _caller_roles(db, caller.user_id))


async def _caller_roles(db: AsyncSession, user_id: int) -> Mapping[int, str]:
    """The caller's roles, kept beside the caller between requests where the process keeps
    callers (accounts/principal_cache.py): every change of a membership is announced on
    commit, so a removal or a demotion on any instance holds from its next request."""
    bound = bound_to(db)
    if bound is None or _changes_memberships(db):
        return await repository.roles_of(db, user_id)  # this unit of work's own view
    cache, opened_at = bound
    kept = cache.find_roles(user_id)
    if kept is not None:
        return kept
    roles = await repository.roles_of(db, user_id)
    cache.keep_roles(user_id, roles, generation=opened_at)
    return roles


def _changes_memberships(db: AsyncSession) -> bool:
    """Whether this unit of work changes memberships or organisations: it reads its own."""
    if changes_roles(db):
        return True
    pending = (*db.new, *db.dirty, *db.deleted)
    return any(isinstance(row, Membership | Organisation) for row in pending)


# Every change of a membership row, whichever flow makes it (join, leave, removal, change of
# role, transfer), marks its user: once the unit of work commits, every instance forgets the
# roles it kept for them. A statement changing memberships or organisations in bulk (deleting
# an organisation) names no rows: it marks everyone.
_MEMBERSHIP_MAPPER = inspect(Membership)
_ORGANISATION_MAPPER = inspect(Organisation)


@event.listens_for(Membership, "after_insert")
@event.listens_for(Membership, "after_update")
@event.listens_for(Membership, "after_delete")
def _membership_changed(_mapper: object, _connection: object, membership: Membership) -> None:
    session = Session.object_session(membership)
    if session is not None:
        forget_roles_on_commit(session, membership.user_id)


@event.listens_for(Session, "do_orm_execute")
def _memberships_changed_in_bulk(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and state.bind_mapper in (
        _MEMBERSHIP_MAPPER,
        _ORGANISATION_MAPPER,
    ):
        forget_roles_on_commit(state.session, EVERYONE)


async def audit_log(db: AsyncSession, member: Member) -> Sequence[audit.AuditEvent]:
    """The organisation's security events (role changes, joins): for its owners."""
    member.require(Role.OWNER)
    return await audit.events_of_org(db, member.org.id)


async def my_orgs(db: AsyncSession, caller: Principal) -> list[tuple[OrgView, Role]]:
    return [
        (OrgView.of(org), Role(role)) for org, role in await repository.orgs_of(db, caller.user_id)
    ]


async def rename(db: AsyncSession, member: Member, name: str) -> OrgView:
    member.require(Role.OWNER)
    org = await _org(db, member)
    org.name = name
    return OrgView.of(org)


async def delete(db: AsyncSession, member: Member) -> None:
    member.require(Role.OWNER)
    await repository.delete_org(db, member.org.id)


async def owner_emails(db: AsyncSession, org_id: int) -> list[str]:
    """Where to write about the organisation's operational problems (a disabled webhook)."""
    owners = [m.user_id for m in await repository.members_of(db, org_id) if m.role == Role.OWNER]
    return [person.email for person in await directory.people(db, owners)]


async def members_of_orgs(
    db: AsyncSession, callers: Sequence[Member]
) -> dict[int, list[MemberView]]:
    """`members` for several organisations the caller belongs to, by organisation id, in two
    queries however many organisations and members (a batched API read)."""
    memberships = await repository.members_of_orgs(db, [member.org.id for member in callers])
    people = {
        p.user_id: p for p in await directory.people(db, sorted({m.user_id for m in memberships}))
    }
    found: dict[int, list[MemberView]] = {member.org.id: [] for member in callers}
    for membership in memberships:
        person = people.get(membership.user_id)
        if person is not None:
            found[membership.org_id].append(
                MemberView(
                    user_id=person.user_id,
                    display_name=person.display_name,
                    role=Role(membership.role),
                    joined_at=membership.joined_at,
                )
            )
    for views in found.values():
        views.sort(key=lambda view: (view.display_name, view.user_id))
    return found


@dataclass(frozen=True)
class MemberInfo:
    """A member as other domains see one (cohort views, feeds, rooms)."""

    user_id: int
    display_name: str
    role: Role
    joined_at: datetime
    email: str


async def member_infos(db: AsyncSession, org_id: int) -> list[MemberInfo]:
    """The organisation's members with their e-mail addresses, by display name."""
    memberships = {m.user_id: m for m in await repository.members_of(db, org_id)}
    return [
        MemberInfo(
            person.user_id,
            person.display_name,
            Role(memberships[person.user_id].role),
            memberships[person.user_id].joined_at,
            person.email,
        )
        for person in await directory.people(db, list(memberships))
    ]


async def members(db: AsyncSession, member: Member) -> list[MemberView]:
    """The organisation's members, by display name (without their e-mail addresses)."""
    return [
        MemberView(info.user_id, info.display_name, info.role, info.joined_at)
        for info in await member_infos(db, member.org.id)
    ]


async def member_infos_by_slug(db: AsyncSession, slug: str) -> list[MemberInfo]:
    org = await repository.get_org(db, slug)
    return await member_infos(db, org.id) if org is not None else []


async def org_ids_of(db: AsyncSession, user_id: int) -> list[int]:
    """The user's organisations; kept with the caller like `viewer_of`'s roles, so that the
    live feed of a finished topic (realtime/live.py, after the write's commit) reads nothing
    for a learner the process knows."""
    return sorted(await _caller_roles(db, user_id))


async def org_slug(db: AsyncSession, org_id: int) -> str | None:
    org = await repository.get_org_by_id(db, org_id)
    return org.slug if org is not None else None


async def change_role(
    db: AsyncSession, clock: Clock, member: Member, user_id: int, role: Role
) -> None:
    member.require(Role.OWNER)
    target = await _member(db, member, user_id)
    if role != Role.OWNER and await _is_last_owner(db, target):
        raise LastOwner()
    previous, target.role = target.role, role
    events.emit(
        db,
        "member.role_changed",
        at=clock.now(),
        org_id=member.org.id,
        data={"org": member.org.slug, "user_id": user_id, "previous": previous, "role": role},
    )
    await audit.record(
        db,
        EventKind.ROLE_CHANGED,
        user_id=user_id,
        at=clock.now(),
        org_id=member.org.id,
        org=member.org.slug,
        by=member.caller.user_id,
        previous=previous,
        role=role.value,
    )


async def remove(db: AsyncSession, member: Member, user_id: int) -> None:
    """Owners remove anyone; everyone may leave. The last owner may do neither."""
    if user_id != member.caller.user_id:
        member.require(Role.OWNER)
    target = await _member(db, member, user_id)
    if await _is_last_owner(db, target):
        raise LastOwner()
    # Through the row, not a DELETE statement: the mapper event marks this user alone.
    await repository.delete_membership(db, target)


async def transfer_ownership(db: AsyncSession, clock: Clock, member: Member, user_id: int) -> None:
    """Make another member the owner; the current owner stays on as a mentor."""
    member.require(Role.OWNER)
    if user_id == member.caller.user_id:
        raise MemberNotFound(user_id)
    target = await _member(db, member, user_id)
    mine = await _member(db, member, member.caller.user_id)
    target.role = Role.OWNER
    mine.role = Role.MENTOR
    await audit.record(
        db,
        EventKind.ROLE_CHANGED,
        user_id=user_id,
        at=clock.now(),
        org_id=member.org.id,
        org=member.org.slug,
        by=member.caller.user_id,
        role=Role.OWNER.value,
        transfer=True,
    )


async def _org(db: AsyncSession, member: Member) -> Organisation:
    org = await repository.get_org_by_id(db, member.org.id)  # in the session already
    if org is None:
        raise OrgNotFound(member.org.slug)
    return org


async def _member(db: AsyncSession, member: Member, user_id: int) -> Membership:
    """Another member of the caller's organisation, or MemberNotFound."""
    target = await repository.get_membership(db, member.org.id, user_id)
    if target is None:
        raise MemberNotFound(user_id)
    return target


async def require_no_sole_ownership(db: AsyncSession, user_id: int) -> None:
    """Before a person leaves every organisation at once (account deletion): none may be left
    without an owner, so ownership is transferred (or the organisation deleted) first."""
    for org_id, role in (await repository.roles_of(db, user_id)).items():
        if role == Role.OWNER and await repository.count_owners(db, org_id) == 1:
            raise LastOwner()


async def _is_last_owner(db: AsyncSession, membership: Membership) -> bool:
    return (
        membership.role == Role.OWNER and await repository.count_owners(db, membership.org_id) == 1
    )


async def invite(
    db: AsyncSession,
    clock: Clock,
    mailer: TransactionalMailer,
    public_url: str,
    member: Member,
    *,
    email: str,
    role: Role,
) -> InvitationView:
    if role not in MAY_INVITE[member.role]:
        raise RoleRequired(
            f"A {member.role.value} cannot invite a {role.value}.", role=member.role.value
        )
    token = secrets.token_urlsafe(32)
    now = clock.now()
    invitation = Invitation(
        org_id=member.org.id,
        email=email.strip().lower(),
        role=role,
        token_hash=digest(token),
        invited_by=member.caller.user_id,
        created_at=now,
        expires_at=now + timedelta(days=INVITATION_DAYS),
    )
    repository.add(db, invitation)
    await repository.flush(db)
    events.emit(
        db,
        "invitation.created",
        at=now,
        org_id=member.org.id,
        data={"org": member.org.slug, "email": invitation.email, "role": role.value},
    )
    message = emails.render(
        "invitation",
        to=invitation.email,
        inviter=member.caller.display_name,
        org=member.org.name,
        role=role.value,
        days=INVITATION_DAYS,
        link=f"{public_url}/invitations#token={token}",
    )
    mailer.enqueue(db, message)
    return InvitationView(invitation.email, role, invitation.expires_at)


async def accept(db: AsyncSession, clock: Clock, caller: Principal, token: str) -> OrgView:
    """Join with the invited role. Only the account whose verified e-mail was invited may."""
    invitation = await repository.get_invitation(db, digest(token))
    now = clock.now()
    if invitation is None or invitation.accepted_at is not None or now >= invitation.expires_at:
        raise InvitationInvalid()
    if caller.email != invitation.email or not caller.email_verified:
        raise InvitationInvalid("This invitation was sent to another e-mail address.")
    invitation.accepted_at = now
    org = await repository.get_org_by_id(db, invitation.org_id)
    if org is None:
        raise InvitationInvalid()
    if await repository.get_membership(db, org.id, caller.user_id) is None:
        repository.add(
            db,
            Membership(org_id=org.id, user_id=caller.user_id, role=invitation.role, joined_at=now),
        )
        await repository.flush(db)
        events.emit(
            db,
            "member.joined",
            at=now,
            org_id=org.id,
            data={"org": org.slug, "user_id": caller.user_id, "role": invitation.role},
        )
    await audit.record(
        db,
        EventKind.INVITATION_ACCEPTED,
        user_id=caller.user_id,
        at=now,
        org_id=org.id,
        org=org.slug,
        role=invitation.role,
    )
    return OrgView.of(org)
