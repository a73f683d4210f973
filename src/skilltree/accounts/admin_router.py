"""HTTP routes for the operator's administrators (`/v1/admin/...`).

Every route depends on AdminSignIn, so the rule lives in one place: a signed-in user with
`is_admin`, or that user's API key with the `admin` scope.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from skilltree.accounts import admin
from skilltree.accounts.dependencies import Accounts, AdminSignIn
from skilltree.accounts.schemas import AdminRoleIn, AdminUserListOut, AdminUserOut
from skilltree.accounts.service import Account
from skilltree.platform.http.bounds import MAX_OFFSET, RowId
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import DbSession

router = APIRouter(prefix=f"{API_PREFIX}/admin", tags=["administration"])


@router.get("/users", response_model=AdminUserListOut, responses=problem_responses(401, 403, 422))
async def list_users(
    current: AdminSignIn,
    db: DbSession,
    email: Annotated[str | None, Query(max_length=320, description="Part of the e-mail")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> AdminUserListOut:
    """Every account, oldest first; `email` narrows to addresses containing it."""
    users, total = await admin.list_users(db, email_contains=email, limit=limit, offset=offset)
    return AdminUserListOut(
        items=[_admin_user_out(u) for u in users], total=total, limit=limit, offset=offset
    )


@router.get(
    "/users/{user_id}", response_model=AdminUserOut, responses=problem_responses(401, 403, 404)
)
async def get_user(user_id: RowId, current: AdminSignIn, db: DbSession) -> AdminUserOut:
    return _admin_user_out(await admin.get_user(db, user_id))


@router.put(
    "/users/{user_id}/admin",
    response_model=AdminUserOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def set_admin(
    user_id: RowId, body: AdminRoleIn, current: AdminSignIn, db: DbSession, ctx: Accounts
) -> AdminUserOut:
    """Grant or revoke the administrator role. The user is signed out everywhere, so the change
    applies from their next sign-in. The last administrator cannot be demoted."""
    user = await admin.set_admin(db, ctx, current.user, user_id, is_admin=body.is_admin)
    return _admin_user_out(user)


@router.post(
    "/users/{user_id}/sign-out",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
)
async def sign_out_user(user_id: RowId, current: AdminSignIn, db: DbSession, ctx: Accounts) -> None:
    """End every browser session and token family of a user (a stolen laptop, a leaked token)."""
    await admin.sign_out_everywhere(db, ctx, current.user, user_id)


def _admin_user_out(account: Account) -> AdminUserOut:
    return AdminUserOut.model_validate(account, from_attributes=True)
