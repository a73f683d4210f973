"""What the operator's administrators may do to accounts: look them up, grant or revoke the
administrator role, and sign a user out everywhere (the first step of any incident response).

Every action is a security event, attributed to the administrator and the affected user.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import repository
from skilltree.accounts.errors import LastAdministrator, UserNotFound
from skilltree.accounts.models import User
from skilltree.accounts.service import Account, AccountsContext, end_every_sign_in
from skilltree.audit import service as audit
from skilltree.audit.service import EventKind


async def list_users(
    db: AsyncSession, *, email_contains: str | None, limit: int, offset: int
) -> tuple[list[Account], int]:
    users, total = await repository.list_users(
        db, email_contains=email_contains, limit=limit, offset=offset
    )
    return [Account.of(user) for user in users], total


async def get_user(db: AsyncSession, user_id: int) -> Account:
    return Account.of(await _user(db, user_id))


async def _user(db: AsyncSession, user_id: int) -> User:
    user = await repository.get_user(db, user_id)
    if user is None:
        raise UserNotFound(user_id)
    return user


async def set_admin(
    db: AsyncSession, ctx: AccountsContext, admin: Account, user_id: int, *, is_admin: bool
) -> Account:
    """Grant or revoke the administrator role. The user's sessions and tokens end either way:
    a privilege change takes effect on a fresh sign-in, never on a session opened before it."""
    user = await _user(db, user_id)
    if user.is_admin == is_admin:
        return Account.of(user)
    if not is_admin and await repository.count_admins(db) <= 1:
        raise LastAdministrator()
    user.is_admin = is_admin
    await end_every_sign_in(db, ctx, user.id)
    kind = EventKind.ADMIN_GRANTED if is_admin else EventKind.ADMIN_REVOKED
    await audit.record(db, kind, user_id=user.id, at=ctx.clock.now(), by=admin.id)
    return Account.of(user)


async def sign_out_everywhere(
    db: AsyncSession, ctx: AccountsContext, admin: Account, user_id: int
) -> None:
    user = await _user(db, user_id)
    await end_every_sign_in(db, ctx, user.id)
    await audit.record(
        db, EventKind.SIGNED_OUT_BY_ADMIN, user_id=user.id, at=ctx.clock.now(), by=admin.id
    )
