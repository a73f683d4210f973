"""Authorisation for organisation routes, in one place.

`OrgReader` resolves the caller's membership of the organisation in the path (any credential);
`OrgManager` does the same for changes, which need a real sign-in (no API key). What each role
may do is decided by the service (`Member.require`), never by checks scattered in routes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from skilltree.accounts.dependencies import AccountOwner, CurrentPrincipal
from skilltree.identity import MAX_SLUG_LENGTH, SLUG_PATTERN
from skilltree.orgs import service
from skilltree.orgs.service import Member
from skilltree.platform.state import DbSession

OrgSlug = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)]


async def org_reader(org: OrgSlug, current: CurrentPrincipal, db: DbSession) -> Member:
    return await service.membership_of(db, org, current)


async def org_manager(org: OrgSlug, current: AccountOwner, db: DbSession) -> Member:
    return await service.membership_of(db, org, current)


OrgReader = Annotated[Member, Depends(org_reader)]
OrgManager = Annotated[Member, Depends(org_manager)]
