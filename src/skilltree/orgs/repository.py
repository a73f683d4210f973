"""Every query of the organisations domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.orgs.models import Invitation, Membership, Organisation


async def get_org(session: AsyncSession, slug: str) -> Organisation | None:
    query = select(Organisation).where(Organisation.slug == slug)
    return (await session.execute(query)).scalar_one_or_none()


async def get_membership(session: AsyncSession, org_id: int, user_id: int) -> Membership | None:
    return await session.get(Membership, (org_id, user_id))


async def orgs_of(session: AsyncSession, user_id: int) -> Sequence[tuple[Organisation, str]]:
    query = (
        select(Organisation, Membership.role)
        .join(Membership, Membership.org_id == Organisation.id)
        .where(Membership.user_id == user_id)
        .order_by(Organisation.name)
    )
    return [(org, role) for org, role in (await session.execute(query)).all()]


async def roles_of(session: AsyncSession, user_id: int) -> dict[int, str]:
    """Organisation id -> the user's role there: what access checks need, read from the
    memberships alone, without loading (or sorting) the organisations."""
    query = select(Membership.org_id, Membership.role).where(Membership.user_id == user_id)
    return {row.org_id: row.role for row in await session.execute(query)}


async def members_of(session: AsyncSession, org_id: int) -> Sequence[Membership]:
    query = select(Membership).where(Membership.org_id == org_id)
    return (await session.execute(query)).scalars().all()


async def members_of_orgs(session: AsyncSession, org_ids: Sequence[int]) -> Sequence[Membership]:
    query = select(Membership).where(Membership.org_id.in_(org_ids))
    return (await session.execute(query)).scalars().all()


async def count_owners(session: AsyncSession, org_id: int) -> int:
    query = select(func.count()).where(Membership.org_id == org_id, Membership.role == "owner")
    return (await session.execute(query)).scalar_one()


async def get_invitation(session: AsyncSession, token_hash: str) -> Invitation | None:
    query = select(Invitation).where(Invitation.token_hash == token_hash)
    return (await session.execute(query)).scalar_one_or_none()


async def delete_org(session: AsyncSession, org_id: int) -> None:
    await session.execute(delete(Organisation).where(Organisation.id == org_id))


async def delete_membership(session: AsyncSession, row: Membership) -> None:
    await session.delete(row)
    await session.flush()


def add(session: AsyncSession, row: Organisation | Membership | Invitation) -> None:
    session.add(row)


async def flush(session: AsyncSession) -> None:
    await session.flush()


async def get_org_by_id(session: AsyncSession, org_id: int) -> Organisation | None:
    return await session.get(Organisation, org_id)
