"""The signed-in learner's account: two-factor authentication (TOTP with a QR code drawn on
the server as SVG, then the recovery codes, shown once)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from skilltree.accounts import mfa
from skilltree.accounts import service as accounts
from skilltree.accounts.dependencies import Accounts
from skilltree.accounts.service import SignedIn
from skilltree.platform.errors import DomainError
from skilltree.platform.state import DbSession
from skilltree.web.account_router import set_session_cookie
from skilltree.web.account_settings import account_settings
from skilltree.web.errors import PageRoute
from skilltree.web.session import Member, SignedInForm, csrf_token
from skilltree.web.templating import page

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def qr_svg(text: str) -> str:
    """A QR code as inline SVG (no script, no style attribute: the page's CSP allows it)."""
    import segno  # loads with the first enrolment only

    svg: str = segno.make(text, error="m").svg_inline(scale=5, dark="#000", light="#fff")
    return svg


def _account(request: Request, current: SignedIn, status_code: int = 200, **extra: Any) -> Response:
    context = {
        "current": current,
        "csrf": csrf_token(current),
        "two_factor": current.user.mfa_enabled,
        "errors": [],
        **extra,
    }
    return page(request, "account.html", context, status_code=status_code)


@router.get("/account")
async def account_page(request: Request, current: Member, db: DbSession, ctx: Accounts) -> Response:
    return _account(request, current, **await account_settings(db, ctx, current))


@router.post("/account/two-factor")
async def start_two_factor(
    request: Request, form: SignedInForm, db: DbSession, ctx: Accounts
) -> Response:
    enrolment = await mfa.start_enrolment(db, ctx.secret_box, form.current.user.id)
    return _account(
        request,
        form.current,
        enrolment={"secret": enrolment.secret, "qr": qr_svg(enrolment.otpauth_uri)},
    )


@router.post("/account/two-factor/confirm")
async def confirm_two_factor(
    request: Request, form: SignedInForm, db: DbSession, ctx: Accounts
) -> Response:
    code = form.get("code").strip().replace(" ", "")
    try:
        codes, kept = await accounts.enable_mfa(
            db,
            ctx,
            form.current,
            code,
            user_agent=request.headers.get("user-agent", ""),
            ip=request.client.host if request.client else "",
        )
    except DomainError as error:
        return _account(
            request,
            form.current,
            error.status,
            errors=[f"{error.detail} Start again to get a new QR code."],
        )
    response = _account(request, kept, recovery_codes=codes)
    # A privilege change: this browser gets a fresh session (and CSRF token), others end.
    set_session_cookie(response, ctx, kept)
    return response
