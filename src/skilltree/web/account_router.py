"""Account pages: sign up, confirm the address, sign in (with the code step), sign out.

Links in e-mails carry their token in the fragment (`/verify-email#token=...`), which browsers
never send to a server, so tokens stay out of access logs and Referer headers. The landing
page's script moves it into the form and submits it; without JavaScript the reader pastes the
code from the e-mail into the same form.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from starlette.responses import RedirectResponse, Response

from skilltree.accounts import service as accounts
from skilltree.accounts.dependencies import Accounts
from skilltree.accounts.schemas import EmailIn, LoginIn, RegisterIn, ResetPasswordIn, TokenIn
from skilltree.accounts.service import AccountsContext, SignedIn
from skilltree.platform.errors import DomainError
from skilltree.platform.state import DbSession
from skilltree.web.errors import PageRoute
from skilltree.web.session import AnonymousForm, SignedInForm, Visitor, safe_next
from skilltree.web.templating import page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
M = TypeVar("M", bound=BaseModel)

FIELD_NAMES = {"email": "E-mail", "password": "Password", "display_name": "Name", "token": "Code"}


def _text(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _problems(error: ValidationError) -> list[str]:
    return [
        f"{FIELD_NAMES.get(str(item['loc'][0]), str(item['loc'][0]))}: {item['msg']}"
        for item in error.errors()
    ]


def _form_page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    context.setdefault("errors", [])
    context.setdefault("current", None)
    return page(request, template, context, status_code=status_code)


def _client(request: Request) -> dict[str, str]:
    return {
        "user_agent": request.headers.get("user-agent", ""),
        "ip": request.client.host if request.client else "",
    }


def set_session_cookie(response: Response, ctx: AccountsContext, signed_in: SignedIn) -> None:
    """The same cookie as POST /v1/auth/login sets: HttpOnly, SameSite=Lax, Secure in prod."""
    assert signed_in.secret is not None, "only a freshly opened session has its secret"
    response.set_cookie(
        ctx.auth.session_cookie,
        signed_in.secret,
        max_age=ctx.auth.session_absolute_hours * 3600,
        path="/",
        httponly=True,
        secure=ctx.auth.cookie_secure,
        samesite="lax",
    )


def _validated(model: type[M], data: dict[str, str]) -> M | list[str]:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        return _problems(error)


@router.get("/sign-up")
async def sign_up_page(request: Request, current: Visitor) -> Response:
    if current is not None:
        return RedirectResponse("/", status_code=303)
    return _form_page(request, "sign_up.html", values={})


@router.post("/sign-up")
async def sign_up(request: Request, form: AnonymousForm, db: DbSession, ctx: Accounts) -> Response:
    values = {name: _text(form, name) for name in ("email", "password", "display_name")}
    parsed = _validated(RegisterIn, values)
    if isinstance(parsed, list):
        return _form_page(request, "sign_up.html", 422, values=values, errors=parsed)
    try:
        await accounts.register(
            db, ctx, email=parsed.email, password=parsed.password, display_name=parsed.display_name
        )
    except DomainError as error:
        return _form_page(
            request, "sign_up.html", error.status, values=values, errors=[error.detail]
        )
    return RedirectResponse("/sign-up/check-your-inbox", status_code=303)


@router.get("/sign-up/check-your-inbox")
async def check_inbox(request: Request) -> Response:
    return _form_page(request, "check_inbox.html")


@router.get("/verify-email")
async def verify_email_page(request: Request) -> Response:
    return _form_page(request, "verify_email.html")


@router.post("/verify-email")
async def verify_email(
    request: Request, form: AnonymousForm, db: DbSession, ctx: Accounts
) -> Response:
    parsed = _validated(TokenIn, {"token": _text(form, "token").strip()})
    if isinstance(parsed, list):
        return _form_page(request, "verify_email.html", 422, errors=parsed)
    try:
        await accounts.verify_email(db, ctx, parsed.token)
    except DomainError as error:
        return _form_page(request, "verify_email.html", error.status, errors=[error.detail])
    return RedirectResponse("/sign-in?verified=1", status_code=303)


@router.get("/sign-in")
async def sign_in_page(request: Request, current: Visitor, ctx: Accounts) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    if current is not None:
        return RedirectResponse(next_path, status_code=303)
    return _form_page(
        request,
        "sign_in.html",
        values={},
        next=next_path,
        verified=request.query_params.get("verified") == "1",
        reset=request.query_params.get("reset") == "1",
        # The API's OpenID Connect routes, one button per configured provider.
        providers=[provider.name for provider in ctx.auth.oidc_providers],
    )


@router.post("/sign-in")
async def sign_in(request: Request, form: AnonymousForm, db: DbSession, ctx: Accounts) -> Response:
    values = {"email": _text(form, "email"), "password": _text(form, "password")}
    next_path = safe_next(_text(form, "next"))
    parsed = _validated(LoginIn, values)
    if isinstance(parsed, list):
        return _form_page(
            request,
            "sign_in.html",
            422,
            values={"email": values["email"]},
            errors=parsed,
            next=next_path,
        )
    try:
        outcome = await accounts.login(
            db, ctx, email=parsed.email, password=parsed.password, **_client(request)
        )
    except DomainError as error:
        response = _form_page(
            request,
            "sign_in.html",
            error.status,
            values={"email": values["email"]},
            errors=[error.detail],
            next=next_path,
        )
        response.headers.update(error.headers)
        return response
    if isinstance(outcome, accounts.MfaChallenge):
        return _form_page(request, "sign_in_code.html", challenge=outcome.token, next=next_path)
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, ctx, outcome)
    return response


@router.get("/sign-in/code")
async def sign_in_code_page(request: Request) -> Response:
    """Where a provider's sign-in lands when the account has two-factor authentication: the
    challenge is in the fragment (`#challenge=…`), which the page's script moves into the form."""
    return _form_page(request, "sign_in_code.html", challenge="", next="/")


@router.post("/sign-in/code")
async def sign_in_code(
    request: Request, form: AnonymousForm, db: DbSession, ctx: Accounts
) -> Response:
    next_path = safe_next(_text(form, "next"))
    code = _text(form, "code").strip().replace(" ", "")
    is_totp = code.isdigit() and len(code) == 6
    try:
        outcome = await accounts.complete_mfa(
            db,
            ctx,
            challenge=_text(form, "challenge"),
            code=code if is_totp else None,
            recovery_code=None if is_totp else code,
            **_client(request),
        )
    except DomainError as error:
        return _form_page(
            request, "sign_in.html", error.status, values={}, errors=[error.detail], next=next_path
        )
    if not isinstance(outcome, SignedIn):
        return RedirectResponse("/sign-in", status_code=303)
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, ctx, outcome)
    return response


@router.post("/sign-out")
async def sign_out(form: SignedInForm, db: DbSession, ctx: Accounts) -> Response:
    await accounts.logout(db, ctx, form.current)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(ctx.auth.session_cookie, path="/")
    return response


@router.get("/reset-password")
async def reset_password_page(request: Request) -> Response:
    return _form_page(request, "reset_password.html", values={})


@router.post("/reset-password/request")
async def request_reset(
    request: Request, form: AnonymousForm, db: DbSession, ctx: Accounts
) -> Response:
    values = {"email": _text(form, "email")}
    parsed = _validated(EmailIn, values)
    if isinstance(parsed, list):
        return _form_page(request, "reset_password.html", 422, values=values, errors=parsed)
    await accounts.request_password_reset(db, ctx, parsed.email)
    # The same answer whether or not the address has an account (no account discovery).
    return _form_page(request, "reset_password.html", values=values, requested=True)


@router.post("/reset-password")
async def reset_password(
    request: Request, form: AnonymousForm, db: DbSession, ctx: Accounts
) -> Response:
    data = {"token": _text(form, "token").strip(), "password": _text(form, "password")}
    parsed = _validated(ResetPasswordIn, data)
    if isinstance(parsed, list):
        return _form_page(request, "reset_password.html", 422, values={}, errors=parsed)
    try:
        await accounts.reset_password(db, ctx, parsed.token, parsed.password)
    except DomainError as error:
        return _form_page(
            request, "reset_password.html", error.status, values={}, errors=[error.detail]
        )
    return RedirectResponse("/sign-in?reset=1", status_code=303)
