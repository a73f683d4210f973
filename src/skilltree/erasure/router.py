"""DELETE /v1/me: deleting one's own account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response, status

from skilltree.accounts.dependencies import Accounts, OwnerSignIn
from skilltree.erasure import service
from skilltree.erasure.schemas import DeleteAccountIn
from skilltree.files.dependencies import Storage
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import DbSession

router = APIRouter(prefix=API_PREFIX, tags=["accounts"])


@router.delete(
    "/me", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401, 403, 409, 422)
)
async def delete_account(
    current: OwnerSignIn,
    response: Response,
    db: DbSession,
    ctx: Accounts,
    storage: Storage,
    body: Annotated[DeleteAccountIn | None, Body()] = None,
) -> None:
    """Delete your account and everything you made: progress, notes, files, private roadmaps,
    sessions, keys. Needs the current password, or a browser session opened in the last 5
    minutes (how an account that signs in only through a provider confirms), and a code when
    two-factor authentication is on; API keys cannot. Public roadmaps stay, unlinked from you.
    Refused (409) while you are the last owner of an organisation. Irreversible."""
    sent = body or DeleteAccountIn()
    await service.delete_account(db, ctx, storage, current, password=sent.password, code=sent.code)
    response.delete_cookie(ctx.auth.session_cookie, path="/")
