"""The account page's other sections: where I am signed in, my API keys, my profile, and
deleting the account.

Each form does what the matching `/v1/me/...` route does through the same services; the API
key's secret is on the page that answers its creation only, never stored or shown again.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from skilltree.accounts import api_keys
from skilltree.accounts import service as accounts
from skilltree.accounts.dependencies import Accounts
from skilltree.accounts.schemas import ApiKeyIn
from skilltree.accounts.service import AccountsContext, SignedIn
from skilltree.erasure import service as erasure
from skilltree.files.dependencies import Storage
from skilltree.identity.scopes import Scope
from skilltree.platform.errors import DomainError, UnprocessableContent
from skilltree.platform.state import AppResources, DbSession
from skilltree.profiles import service as profiles
from skilltree.profiles.schemas import ProfilePatch
from skilltree.web.errors import PageRoute
from skilltree.web.session import SignedInForm, csrf_token
from skilltree.web.templating import page

router = APIRouter(route_class=PageRoute, include_in_schema=False)

RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
SCOPE_LABELS = {
    Scope.PROGRESS_READ.value: "read my progress",
    Scope.PROGRESS_WRITE.value: "change my progress",
    Scope.ROADMAPS_WRITE.value: "create and edit roadmaps",
    Scope.ADMIN.value: "administer (administrators only)",
}


async def account_settings(
    db: DbSession, ctx: AccountsContext, current: SignedIn
) -> dict[str, Any]:
    """What the account page shows besides two-factor authentication."""
    sessions = await accounts.list_sessions(db, ctx, current.user.id)
    this = current.browser_session.id if current.browser_session else None
    profile = await profiles.get_profile(db, current.user.id)
    return {
        "sessions": [{"record": s, "current": s.id == this} for s in sessions],
        "keys": await api_keys.list_keys(db, current.user.id),
        "profile": profile,
        "avatar": await profiles.avatar_links(db, profile),
        "scopes": {
            value: label
            for value, label in SCOPE_LABELS.items()
            if value != Scope.ADMIN.value or current.user.is_admin
        },
    }


async def _settings_page(
    request: Request,
    db: DbSession,
    ctx: AccountsContext,
    current: SignedIn,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    context = {
        "current": current,
        "csrf": csrf_token(current),
        "two_factor": current.user.mfa_enabled,
        "errors": [],
        **await account_settings(db, ctx, current),
        **extra,
    }
    return page(request, "account.html", context, status_code=status_code)


@router.post("/account/sessions/{session_id}/end")
async def end_session(
    session_id: RowId, form: SignedInForm, db: DbSession, ctx: Accounts
) -> Response:
    await accounts.end_session(db, ctx, form.current.user.id, session_id)
    browser = form.current.browser_session
    if browser is not None and browser.id == session_id:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(ctx.auth.session_cookie, path="/")
        return response
    return RedirectResponse("/account?ended=1#sessions-h", status_code=303)


@router.post("/account/api-keys")
async def create_api_key(
    request: Request, form: SignedInForm, db: DbSession, ctx: Accounts
) -> Response:
    days = form.get("expires_in_days").strip()
    data: dict[str, Any] = {
        "name": form.get("name"),
        "scopes": [value for value in form.form.getlist("scopes") if isinstance(value, str)],
        "expires_in_days": days or None,
    }
    try:
        try:
            body = ApiKeyIn.model_validate(data)
        except ValidationError as error:
            raise UnprocessableContent(
                "Name the key and choose at least one scope (and, if it expires, in 1 to 3650 "
                "days).",
                errors=[str(item["msg"]) for item in error.errors()],
            ) from None
        key, secret = await api_keys.create_key(
            db,
            ctx.clock,
            form.current.user,
            name=body.name,
            scopes=body.scopes,
            expires_in_days=body.expires_in_days,
        )
    except DomainError as error:
        return await _settings_page(
            request, db, ctx, form.current, error.status, key_errors=[error.detail]
        )
    # The secret is in this answer only (no redirect: a reload must not show it again).
    return await _settings_page(
        request, db, ctx, form.current, new_key={"key": key, "secret": secret}
    )


@router.post("/account/api-keys/{key_id}/revoke")
async def revoke_api_key(
    key_id: RowId, form: SignedInForm, db: DbSession, ctx: Accounts
) -> Response:
    await api_keys.revoke_key(db, ctx.clock, form.current.user.id, key_id)
    return RedirectResponse("/account?revoked=1#keys-h", status_code=303)


@router.post("/account/profile")
async def update_profile(
    request: Request,
    form: SignedInForm,
    db: DbSession,
    ctx: Accounts,
    resources: AppResources,
) -> Response:
    data = {
        "display_name": form.get("display_name"),
        "handle": form.get("handle").strip() or None,
        "time_zone": form.get("time_zone").strip() or None,
        "is_public": form.get("is_public") == "on",
        "share_progress_by_concept": form.get("share_progress_by_concept") == "on",
    }
    try:
        try:
            patch = ProfilePatch.model_validate(data)
        except ValidationError as error:
            raise UnprocessableContent(
                "Check the profile.",
                errors=[
                    f"{item['loc'][0] if item['loc'] else ''}: {item['msg']}"
                    for item in error.errors()
                ],
            ) from None
        changes = profiles.ProfileChanges(fields=frozenset(data), **patch.model_dump())
        await profiles.update_profile(db, form.current.user.id, changes, resources.clock.now())
    except DomainError as error:
        lines = [error.detail, *[str(e) for e in error.extensions.get("errors", [])]]
        return await _settings_page(
            request,
            db,
            ctx,
            form.current,
            error.status,
            profile_errors=lines,
            name_draft=form.get("display_name")[:200],
        )
    return RedirectResponse("/account?profile=1#profile-h", status_code=303)


@router.post("/account/delete")
async def delete_account(
    request: Request, form: SignedInForm, db: DbSession, ctx: Accounts, storage: Storage
) -> Response:
    """What `DELETE /v1/me` does, from the account page's form."""
    code = form.get("code").strip().replace(" ", "") or None
    try:
        # No password: accepted only right after a sign-in (an account that signs in through
        # a provider has none to type); otherwise the problem says to send it.
        await erasure.delete_account(
            db, ctx, storage, form.current, password=form.get("password") or None, code=code
        )
    except DomainError as error:
        # A wrong password is the form's mistake, not a missing sign-in: 422, never a 401.
        status = 422 if error.status == 401 else error.status
        return await _settings_page(
            request, db, ctx, form.current, status, delete_errors=[error.detail]
        )
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(ctx.auth.session_cookie, path="/")
    return response
